"""Fixtures of the dbt tests: the three sandboxes at demo scale, loaded into one database per module, built."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from revloop.dbt import DbtProject, TransformSummary
from sandboxes import book
from tests.sandbox_harness import load_book

SEED = 42
SCALE = "demo"


@dataclasses.dataclass
class BuiltWarehouse:
    """A warehouse loaded from the sandboxes and built by dbt, with the book it came from."""

    url: str
    project: DbtProject
    first_build: TransformSummary
    companies: list[book.Company]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, module_database: str) -> Iterator[BuiltWarehouse]:
    """The demo book in all three sandboxes, loaded by the real loads, and ``dbt build`` run once over it."""
    _, anchor = load_book(module_database, tmp_path_factory.mktemp("dbt-book"), seed=SEED, scale=SCALE)
    project = DbtProject(module_database)
    summary = project.build()
    yield BuiltWarehouse(module_database, project, summary, list(book.iter_companies(SEED, SCALE, anchor)))
