"""Fixtures of the dbt tests: the three sandboxes at demo scale, loaded into one database per module, built."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.catalog import SYSTEMS, source_factory
from pipelines.common.runner import run_load
from revloop.dbt import DbtProject, TransformSummary
from revloop.settings import ErpSettings, PaymentsSettings, SalesforceSettings, Settings
from sandboxes import book
from tests.sandbox_harness import RunningSandbox, start_sandbox

SEED = 42
SCALE = "demo"


@dataclasses.dataclass
class BuiltWarehouse:
    """A warehouse loaded from the sandboxes and built by dbt, with the book it came from."""

    url: str
    project: DbtProject
    first_build: TransformSummary
    companies: list[book.Company]


def _settings(sandboxes: dict[str, RunningSandbox], home: Path) -> Settings:
    def fields(system: str) -> dict[str, str]:
        prefix = f"REVLOOP_{system.upper()}_"
        return {k.removeprefix(prefix).lower(): v for k, v in sandboxes[system].env().items()}

    return Settings(
        home=home,
        salesforce=SalesforceSettings(**fields("salesforce")),
        erp=ErpSettings(**fields("erp")),
        payments=PaymentsSettings(**fields("payments")),
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, module_database: str) -> Iterator[BuiltWarehouse]:
    """The demo book in all three sandboxes, loaded by the real loads, and ``dbt build`` run once over it."""
    root = tmp_path_factory.mktemp("dbt-book")
    sandboxes: dict[str, RunningSandbox] = {}
    try:
        for system in SYSTEMS:
            sandboxes[system] = start_sandbox(system, root / system, seed=SEED, scale=SCALE)
        # the sandboxes anchor their book on the UTC date they were first seeded: now
        today = dt.datetime.now(dt.UTC).date()
        settings = _settings(sandboxes, root / "home")
        for system in SYSTEMS:
            run_load(system, source_factory(system), settings, module_database,
                     pipelines_dir=root / "home" / "dlt")
        project = DbtProject(module_database)
        summary = project.build()
        yield BuiltWarehouse(module_database, project, summary, list(book.iter_companies(SEED, SCALE, today)))
    finally:
        for running in sandboxes.values():
            running.stop()
