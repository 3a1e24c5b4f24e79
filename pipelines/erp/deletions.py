"""Noticing records unlinked in the ERP (Odoo keeps no feed of deletions) and records a load missed.

Cheap in the common case: per model, one ``search_count`` of the ids up to the highest id loaded, against
the warehouse's count of live rows up to that id. Odoo's ids only grow, so both sides count the same set
unless something was deleted (fewer in the ERP) or never loaded (more in the ERP, e.g. written by a
transaction that committed later than the overlap window allows). Only then are all ids compared.

The warehouse's side is not counted in the table at every run (a scan of the table: 0.2 s per cycle on
the large book): :class:`LiveRows` keeps the highest id and the live count in the resource state, which
dlt commits with the load, and moves them by what each run loads. After a comparison, without a stored
count, or once the count is older than ``settings.LIVE_ROWS_RECOUNT``, the table is counted.

Deleted records are loaded again as their last-known row from the warehouse with ``is_deleted = true`` and
``deleted_at``, in the same load package as the run's other rows: if the run dies before the load commits,
nothing changed in the warehouse and the next run finds the same difference again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Any

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


class LiveRows:
    """The highest id loaded into a table and its live rows up to that id, as the last committed load left
    them, kept in the resource state and moved by what this run loads.

    Ids only grow in Odoo and the state is committed with the load it describes, so a row loaded with an
    id above the stored highest one is new, as is a formerly quarantined record loaded at last; only a
    comparison (tombstones, recovered records) changes the count otherwise, and after one the table is
    counted again. A stored count that does not match the ERP therefore costs one comparison, never a
    missed deletion; one that no longer matches the warehouse (rows removed there) is corrected by the
    periodic count.
    """

    STATE_KEY = "live_rows"

    def __init__(self, stored: Any, count_table: Callable[[], tuple[int, int]], now: float,
                 recount_after_seconds: float) -> None:
        fields = ("up_to", "count", "counted_at")
        if (isinstance(stored, dict) and all(isinstance(stored.get(f), int | float) for f in fields)
                and now - stored["counted_at"] < recount_after_seconds):
            self.up_to, self.count, self.counted_at = int(stored["up_to"]), int(stored["count"]), stored["counted_at"]
            self.counted_now = False
        else:
            (self.up_to, self.count), self.counted_at = count_table(), now
            self.counted_now = True
        self._new: set[int] = set()
        self._also_new: set[int] = set()
        self._recount = False

    def also_new(self, ids: Iterable[int]) -> None:
        """Ids at or below the highest that are not live in the warehouse: counted if this run loads them."""
        self._also_new.update(ids)

    def loaded(self, table: pa.Table) -> None:
        """Rows of ``table`` are being loaded by this run (live rows, not tombstones)."""
        for record_id in table.column("id").to_pylist():
            if isinstance(record_id, int) and (record_id > self.up_to or record_id in self._also_new):
                self._new.add(record_id)

    def recount(self) -> None:
        """Forget the count: the next run counts the table (after a comparison changed what is live)."""
        self._recount = True

    def state(self) -> dict[str, float] | None:
        if self._recount:
            return None
        return {"up_to": max(self.up_to, max(self._new, default=0)), "count": self.count + len(self._new),
                "counted_at": self.counted_at}


def waiting_in_quarantine(warehouse: Warehouse, table: str, max_id: int, quarantined: set[str]) -> set[int]:
    """Ids up to ``max_id`` waiting in the quarantine with no live row: in the ERP, deliberately not loaded."""
    candidates = [int(i) for i in quarantined if i.isdigit() and int(i) <= max_id]
    return set(candidates) - warehouse.live_ids_among(table, candidates) if candidates else set()


def compare_ids(
    warehouse: Warehouse, table: str, max_id: int, live_count: int, erp_count: int,
    erp_ids: Callable[[], set[int]], waiting: set[int],
) -> IdDifference | None:
    """The difference between the ERP's and the warehouse's ids up to ``max_id``; None when the counts agree.

    ``erp_ids`` is only called when the counts differ. Records waiting in the quarantine (``waiting``,
    see :func:`waiting_in_quarantine`) are in the ERP but deliberately not in the warehouse, so they are
    counted on the warehouse's side.
    """
    if erp_count == live_count + len(waiting):
        return None
    local = warehouse.live_ids(table, max_id)
    remote = erp_ids()
    return IdDifference(deleted=sorted(local - remote), missing=sorted(remote - local - waiting))
