"""REST ``query``/``queryAll``: query cursors that snapshot matching rows, and the pages read from them."""

from __future__ import annotations

import array
import collections
import dataclasses
import secrets
import sqlite3
import time
from typing import Any

import orjson

from sandboxes.salesforce.errors import SalesforceError
from sandboxes.salesforce.soql import CompiledQuery

DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
CURSORS_PER_USER = 10
"""Salesforce keeps at most 10 open query cursors per user and releases the oldest beyond that."""
CURSOR_IDLE_SECONDS = 15 * 60


@dataclasses.dataclass
class QueryCursor:
    """A query's matching rows at the time it ran, in result order."""

    locator: str
    user_id: str
    compiled: CompiledQuery
    rowids: array.array
    batch_size: int
    endpoint: str
    last_used: float


def batch_size_from(header: str | None) -> int:
    """The ``Sforce-Query-Options: batchSize=N`` request (a hint Salesforce clamps to 200..2000)."""
    if not header:
        return DEFAULT_BATCH_SIZE
    for option in header.split(","):
        name, _, value = option.partition("=")
        if name.strip().lower() == "batchsize":
            try:
                return max(MIN_BATCH_SIZE, min(DEFAULT_BATCH_SIZE, int(value.strip())))
            except ValueError:
                return DEFAULT_BATCH_SIZE
    return DEFAULT_BATCH_SIZE


def snapshot_rowids(db: sqlite3.Connection, compiled: CompiledQuery) -> array.array:
    sql, params = compiled.rowid_sql()
    rowids = array.array("q")
    cursor = db.execute(sql, params)
    while chunk := cursor.fetchmany(50_000):
        rowids.extend(row[0] for row in chunk)
    return rowids


def fetch_rows(
    db: sqlite3.Connection, compiled: CompiledQuery, rowids: array.array | list[int]
) -> list[tuple[Any, ...]]:
    """Rows for ``rowids`` in that order (rows deleted since the snapshot are dropped)."""
    if not len(rowids):
        return []
    rows = db.execute(compiled.page_sql(), (orjson.dumps(list(rowids)).decode(),)).fetchall()
    by_rowid = {row[0]: row for row in rows}
    return [by_rowid[r] for r in rowids if r in by_rowid]


class QueryCursors:
    """Open query cursors by locator, with Salesforce's per-user cap and idle expiry."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._cursors: collections.OrderedDict[str, QueryCursor] = collections.OrderedDict()

    def run(
        self, compiled: CompiledQuery, user_id: str, batch_size: int, version: str, endpoint: str
    ) -> dict[str, Any]:
        """Answer a new query: its first batch, and a cursor for the rest when there is more."""
        if compiled.count_only:
            sql, params = compiled.count_sql()
            return {"totalSize": int(self.db.execute(sql, params).fetchone()[0]), "done": True, "records": []}
        rowids = snapshot_rowids(self.db, compiled)
        cursor = QueryCursor(
            locator="01g" + secrets.token_hex(8)[:12].upper() + "AAA",
            user_id=user_id,
            compiled=compiled,
            rowids=rowids,
            batch_size=batch_size,
            endpoint=endpoint,
            last_used=time.monotonic(),
        )
        return self._page(cursor, 0, version, register=True)

    def more(self, locator_and_offset: str, user_id: str, version: str) -> dict[str, Any]:
        """Answer a ``nextRecordsUrl`` request (``<locator>-<offset>``)."""
        self._expire()
        locator, _, offset_text = locator_and_offset.rpartition("-")
        cursor = self._cursors.get(locator)
        if cursor is None or cursor.user_id != user_id or not offset_text.isdigit():
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        offset = int(offset_text)
        if offset > len(cursor.rowids):
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        cursor.last_used = time.monotonic()
        self._cursors.move_to_end(locator)
        return self._page(cursor, offset, version, register=False)

    def _page(self, cursor: QueryCursor, offset: int, version: str, register: bool) -> dict[str, Any]:
        end = min(offset + cursor.batch_size, len(cursor.rowids))
        rows = fetch_rows(self.db, cursor.compiled, cursor.rowids[offset:end])
        done = end >= len(cursor.rowids)
        page: dict[str, Any] = {"totalSize": len(cursor.rowids), "done": done}
        if not done:
            page["nextRecordsUrl"] = f"/services/data/v{version}/{cursor.endpoint}/{cursor.locator}-{end}"
            if register:
                self._register(cursor)
        else:
            self._cursors.pop(cursor.locator, None)
        page["records"] = [cursor.compiled.to_record(row, version) for row in rows]
        return page

    def _register(self, cursor: QueryCursor) -> None:
        self._expire()
        mine = [c.locator for c in self._cursors.values() if c.user_id == cursor.user_id]
        for locator in mine[: max(0, len(mine) - CURSORS_PER_USER + 1)]:
            del self._cursors[locator]
        self._cursors[cursor.locator] = cursor

    def _expire(self) -> None:
        cutoff = time.monotonic() - CURSOR_IDLE_SECONDS
        for locator in [c.locator for c in self._cursors.values() if c.last_used < cutoff]:
            del self._cursors[locator]

    def clear(self) -> None:
        self._cursors.clear()
