"""Noticing records unlinked in the ERP (Odoo keeps no feed of deletions) and records a load missed.

Cheap in the common case: per model, one ``search_count`` of the ids up to the highest id loaded, against
the warehouse's count of live rows up to that id. Odoo's ids only grow, so both sides count the same set
unless something was deleted (fewer in the ERP) or never loaded (more in the ERP, e.g. written by a
transaction that committed later than the overlap window allows). Only then are all ids compared.

Deleted records are loaded again as their last-known row from the warehouse with ``is_deleted = true`` and
``deleted_at``, in the same load package as the run's other rows: if the run dies before the load commits,
nothing changed in the warehouse and the next run finds the same difference again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable

import psycopg
import pyarrow as pa
from psycopg import sql

from pipelines.common.quarantine import SCHEMA as QUARANTINE_SCHEMA

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class IdDifference:
    """What the id comparison found for one model."""

    deleted: list[int] = dataclasses.field(default_factory=list)
    """Live in the warehouse, gone from the ERP."""
    missing: list[int] = dataclasses.field(default_factory=list)
    """In the ERP, never loaded (and not waiting in the quarantine)."""


class Warehouse:
    """The raw tables of the ERP as the last load left them."""

    def __init__(self, database_url: str, dataset: str, source: str = "erp") -> None:
        self.dataset = dataset
        self.source = source
        self._conn = psycopg.connect(database_url, autocommit=True)

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.close()

    def _table(self, table: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.dataset), sql.Identifier(table))

    def columns(self, table: str) -> list[str]:
        """The table's columns (empty when it does not exist yet)."""
        rows = self._conn.execute(
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
            (self.dataset, table),
        ).fetchall()
        return [r[0] for r in rows]

    def live_extent(self, table: str) -> tuple[int, int]:
        """(highest id, number of live rows) of the table."""
        row = self._conn.execute(
            sql.SQL("select coalesce(max(id), 0), count(*) filter (where is_deleted is not true) from {}")
            .format(self._table(table))
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def live_ids(self, table: str, up_to_id: int | None = None) -> set[int]:
        query = sql.SQL("select id from {} where is_deleted is not true").format(self._table(table))
        if up_to_id is None:
            return {r[0] for r in self._conn.execute(query)}
        return {r[0] for r in self._conn.execute(query + sql.SQL(" and id <= %s"), (up_to_id,))}

    def live_ids_among(self, table: str, ids: list[int]) -> set[int]:
        query = sql.SQL("select id from {} where is_deleted is not true and id = any(%s)").format(self._table(table))
        return {r[0] for r in self._conn.execute(query, (ids,))}

    def open_rejections(self, model: str) -> set[str]:
        """Record ids of ``model`` waiting in the quarantine."""
        exists = self._conn.execute("select to_regclass(%s)", (f"{QUARANTINE_SCHEMA}.records",)).fetchone()
        if not exists or exists[0] is None:
            return set()
        rows = self._conn.execute(
            f"select distinct record_id from {QUARANTINE_SCHEMA}.records "
            "where source = %s and object = %s and resolved_at is null and record_id is not null",
            (self.source, model),
        )
        return {r[0] for r in rows}

    def last_known_rows(self, table: str, ids: Iterable[int], schema: pa.Schema) -> pa.Table:
        """The warehouse's rows of ``ids`` in ``schema`` (columns the table lacks are null)."""
        present = set(self.columns(table))
        selected = [
            sql.Identifier(f.name) if f.name in present else sql.SQL("null") for f in schema
        ]
        query = sql.SQL("select {} from {} where id = any(%s) order by id").format(
            sql.SQL(", ").join(selected), self._table(table)
        )
        rows = self._conn.execute(query, (list(ids),)).fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
        return pa.Table.from_arrays(
            [pa.array(list(values), f.type) for values, f in zip(columns, schema, strict=True)], schema=schema
        )


def compare_ids(
    warehouse: Warehouse, table: str, max_id: int, live_count: int, erp_count: int,
    erp_ids: Callable[[], set[int]], quarantined: set[str],
) -> IdDifference | None:
    """The difference between the ERP's and the warehouse's ids up to ``max_id``; None when the counts agree.

    ``erp_ids`` is only called when the counts differ. Records waiting in the quarantine are in the ERP
    but deliberately not in the warehouse, so they are counted on the warehouse's side.
    """
    candidates = [int(i) for i in quarantined if i.isdigit() and int(i) <= max_id]
    waiting = set(candidates) - warehouse.live_ids_among(table, candidates) if candidates else set()
    if erp_count == live_count + len(waiting):
        return None
    local = warehouse.live_ids(table, max_id)
    remote = erp_ids()
    return IdDifference(deleted=sorted(local - remote), missing=sorted(remote - local - waiting))
