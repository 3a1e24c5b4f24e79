"""Fixtures of the data-quality tests: the demo book in the three sandboxes, loaded by the real loads."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.catalog import SYSTEMS, source_factory
from pipelines.common.runner import run_load
from revloop.settings import ErpSettings, PaymentsSettings, SalesforceSettings, Settings
from sandboxes import book
from tests.sandbox_harness import RunningSandbox, start_sandbox

SEED = 42
SCALE = "demo"


@dataclasses.dataclass
class LoadedBook:
    """A warehouse holding the demo book's raw layer, and the book it came from."""

    url: str
    home: Path
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
def loaded_book(tmp_path_factory: pytest.TempPathFactory, module_database: str) -> Iterator[LoadedBook]:
    """The demo book served by the three sandboxes and loaded into ``raw_*`` by the real loads."""
    root = tmp_path_factory.mktemp("quality-book")
    sandboxes: dict[str, RunningSandbox] = {}
    try:
        for system in SYSTEMS:
            sandboxes[system] = start_sandbox(system, root / system, seed=SEED, scale=SCALE)
        today = dt.datetime.now(dt.UTC).date()  # the sandboxes anchor their book on the day they were seeded
        settings = _settings(sandboxes, root / "home")
        for system in SYSTEMS:
            run_load(system, source_factory(system), settings, module_database, pipelines_dir=root / "home" / "dlt")
    finally:
        for running in sandboxes.values():
            running.stop()
    yield LoadedBook(module_database, root / "home", list(book.iter_companies(SEED, SCALE, today)))
