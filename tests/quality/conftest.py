"""Fixtures of the data-quality tests: the demo book in the three sandboxes, loaded by the real loads."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxes import book
from tests.sandbox_harness import load_book

SEED = 42
SCALE = "demo"


@dataclasses.dataclass
class LoadedBook:
    """A warehouse holding the demo book's raw layer, and the book it came from."""

    url: str
    home: Path
    companies: list[book.Company]


@pytest.fixture(scope="module")
def loaded_book(tmp_path_factory: pytest.TempPathFactory, module_database: str) -> Iterator[LoadedBook]:
    """The demo book served by the three sandboxes and loaded into ``raw_*`` by the real loads."""
    home, anchor = load_book(module_database, tmp_path_factory.mktemp("quality-book"), seed=SEED, scale=SCALE)
    yield LoadedBook(module_database, home, list(book.iter_companies(SEED, SCALE, anchor)))
