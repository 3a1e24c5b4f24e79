"""Fixtures of the dbt tests: the three sandboxes at demo scale, loaded into one database per module, built."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg
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


def rows(url: str, query: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        cursor = conn.execute(query, params)  # type: ignore[call-overload]
        columns = [c.name for c in cursor.description or ()]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def one(url: str, query: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> dict[str, Any]:
    found = rows(url, query, params)
    assert len(found) == 1, f"expected one row, got {len(found)}: {query} {params}"
    return found[0]


def write_as_a_load(url: str, system: str, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, int]:
    """Change raw rows the way a load of ``system`` does, and return its ``rows_by_table``.

    Each statement may use ``%(load_id)s``: a load id newer than every load of the system, which the rows a
    load writes carry in ``_dlt_load_id``. The load is recorded as complete in ``_dlt_loads`` in the same
    transaction, as dlt records it once all its tables are written. The returned counts name the tables
    the statements wrote (``update``/``insert into`` ``raw_<system>.<table>``).
    """
    schema = f"raw_{system}"
    rows_by_table: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        newest = conn.execute(f"select max(load_id) from {schema}._dlt_loads").fetchone()
        load_id = repr(max(time.time(), float(newest[0] if newest and newest[0] else 0) + 0.001))
        for statement, params in changes:
            cursor = conn.execute(statement, {**params, "load_id": load_id})  # type: ignore[call-overload]
            words = statement.split()
            table = words[words.index("update") + 1] if "update" in words else words[words.index("into") + 1]
            rows_by_table[table.split(".")[-1]] = rows_by_table.get(table.split(".")[-1], 0) + cursor.rowcount
        conn.execute(
            f"insert into {schema}._dlt_loads (load_id, schema_name, status, inserted_at, schema_version_hash)"
            f" select %s, schema_name, 0, now(), schema_version_hash from {schema}._dlt_loads"
            " order by load_id desc limit 1",
            (load_id,),
        )
    return rows_by_table
