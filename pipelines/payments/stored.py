"""What the warehouse already holds of the payments data: row versions, live ids, open quarantine entries.

Only incremental cycles and re-listings ask, and only about the ids they touch, so a cycle's cost follows
the size of the change, not the size of the book.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql

from pipelines.common.quarantine import SCHEMA as QUARANTINE_SCHEMA

_ARROW_OF_PG = {
    "text": pa.string(), "character varying": pa.string(), "bigint": pa.int64(), "integer": pa.int64(),
    "boolean": pa.bool_(), "double precision": pa.float64(), "timestamp with time zone": pa.timestamp("us", "UTC"),
    "jsonb": pa.string(), "json": pa.string(), "date": pa.date32(),
}


class Warehouse:
    """Read-only questions about ``raw_payments`` (and the quarantine) in the load's database."""

    def __init__(self, database_url: str, dataset: str, source: str) -> None:
        self.database_url = database_url
        self.dataset = dataset
        self.source = source

    def _exists(self, conn: psycopg.Connection, table: str) -> bool:
        row = conn.execute("select to_regclass(%s)", (f"{self.dataset}.{table}",)).fetchone()
        return bool(row and row[0])

    def versions(self, table: str, ids: Collection[str]) -> dict[str, tuple[int, str | None]]:
        """``id -> (Unix seconds of _revloop_observed_at, _revloop_event_id)`` of the stored rows among ``ids``."""
        if not ids:
            return {}
        with psycopg.connect(self.database_url) as conn:
            if not self._exists(conn, table):
                return {}
            rows = conn.execute(
                sql.SQL("select id, extract(epoch from _revloop_observed_at)::bigint, _revloop_event_id"
                        " from {}.{} where id = any(%s)")
                .format(sql.Identifier(self.dataset), sql.Identifier(table)),
                (list(ids),),
            ).fetchall()
        return {row[0]: (int(row[1]), row[2]) for row in rows if row[1] is not None}

    def existing_ids(self, table: str, ids: Collection[str]) -> set[str]:
        """Which of ``ids`` the table already holds."""
        if not ids:
            return set()
        with psycopg.connect(self.database_url) as conn:
            if not self._exists(conn, table):
                return set()
            rows = conn.execute(
                sql.SQL("select id from {}.{} where id = any(%s)").format(
                    sql.Identifier(self.dataset), sql.Identifier(table)),
                (list(ids),),
            ).fetchall()
        return {row[0] for row in rows}

    def live_ids(self, table: str, column: str = "id", among: Collection[str] | None = None) -> dict[str, set[str]]:
        """Ids of rows not marked deleted, grouped by ``column`` (``id`` itself by default).

        ``among`` limits the rows to those whose ``column`` is one of these values.
        """
        with psycopg.connect(self.database_url) as conn:
            if not self._exists(conn, table):
                return {}
            query = sql.SQL("select {}, id from {}.{} where not coalesce(is_deleted, false)").format(
                sql.Identifier(column), sql.Identifier(self.dataset), sql.Identifier(table)
            )
            params: tuple[Any, ...] = ()
            if among is not None:
                query += sql.SQL(" and {} = any(%s)").format(sql.Identifier(column))
                params = (list(among),)
            result: dict[str, set[str]] = {}
            for group, object_id in conn.execute(query, params):
                result.setdefault(group, set()).add(object_id)
        return result

    def tombstones(self, table: str, ids: Collection[str], observed_at: int, event_id: str | None,
                   extracted_at: dt.datetime) -> pa.Table | None:
        """The stored rows ``ids`` with ``is_deleted`` set: merged back, they mark the records deleted.

        The rows are copied whole (PII columns stay encrypted as stored), since a merge replaces rows.
        """
        if not ids:
            return None
        with psycopg.connect(self.database_url) as conn:
            if not self._exists(conn, table):
                return None
            types = conn.execute(
                "select column_name, data_type from information_schema.columns"
                " where table_schema = %s and table_name = %s order by ordinal_position",
                (self.dataset, table),
            ).fetchall()
            names = [name for name, _ in types if not name.startswith("_dlt_")]
            cursor = conn.execute(
                sql.SQL("select {} from {}.{} where id = any(%s)").format(
                    sql.SQL(", ").join(map(sql.Identifier, names)), sql.Identifier(self.dataset),
                    sql.Identifier(table),
                ),
                (list(ids),),
            )
            rows = cursor.fetchall()
        if not rows:
            return None
        kinds: dict[str, str] = dict(types)
        columns: dict[str, list[Any]] = {name: [row[i] for row in rows] for i, name in enumerate(names)}
        columns["is_deleted"] = [True] * len(rows)
        columns["_revloop_observed_at"] = [dt.datetime.fromtimestamp(observed_at, dt.UTC)] * len(rows)
        columns["_revloop_event_id"] = [event_id] * len(rows)
        columns["_revloop_extracted_at"] = [extracted_at] * len(rows)
        fields = [pa.field(name, _ARROW_OF_PG.get(kinds[name], pa.string())) for name in names]
        return pa.Table.from_pydict(columns, schema=pa.schema(fields))

    def open_rejections(self, table: str) -> set[str]:
        """Ids of this table's records with an unresolved quarantine entry."""
        with psycopg.connect(self.database_url) as conn:
            if conn.execute("select to_regclass(%s)", (f"{QUARANTINE_SCHEMA}.records",)).fetchone() == (None,):
                return set()
            rows = conn.execute(
                f"select distinct record_id from {QUARANTINE_SCHEMA}.records"
                " where source = %s and object = %s and resolved_at is null and record_id is not null",
                (self.source, table),
            ).fetchall()
        return {row[0] for row in rows}
