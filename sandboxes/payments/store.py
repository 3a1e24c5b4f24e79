"""The payments sandbox's state: one SQLite file holding every Stripe object, event and delivery.

Objects are kept whole as JSON (what the API returns) beside the few columns lists filter and page on.
Lists page on ``(created, seq)``: ``seq`` is insertion order and breaks ties between objects created
in the same second, which is what makes Stripe's cursors stable.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created INTEGER NOT NULL,
    customer TEXT,
    parent TEXT,
    tag TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_by_kind ON objects (kind, created, seq);
CREATE INDEX IF NOT EXISTS objects_by_customer ON objects (kind, customer, created, seq);
CREATE INDEX IF NOT EXISTS objects_by_parent ON objects (kind, parent, created, seq);
CREATE INDEX IF NOT EXISTS objects_by_tag ON objects (kind, tag, created, seq);
CREATE TABLE IF NOT EXISTS idempotency (
    key_owner TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    created INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (key_owner, idempotency_key)
);
CREATE INDEX IF NOT EXISTS idempotency_by_created ON idempotency (created);
CREATE TABLE IF NOT EXISTS api_keys (
    secret TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    endpoint_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    duplicate INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_by_endpoint ON deliveries (endpoint_id, id);
CREATE INDEX IF NOT EXISTS deliveries_pending_by_endpoint ON deliveries (endpoint_id) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS settlements (
    payment_intent TEXT PRIMARY KEY,
    settles_at REAL NOT NULL,
    outcome TEXT NOT NULL
);
"""

OBJECT_COLUMNS = ("id", "kind", "created", "customer", "parent", "tag", "deleted", "body")


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


class Store:
    """A single SQLite connection used from the server's event loop thread only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=OFF")
        self.conn.execute("PRAGMA cache_size=-65536")
        self.conn.executescript(SCHEMA)
        self._depth = 0

    def close(self) -> None:
        self.conn.close()

    # -- transactions ---------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit; nested uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    # -- meta -------------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- objects ----------------------------------------------------------------------------------------

    def insert(
        self, obj: dict[str, Any], *, customer: str | None = None, parent: str | None = None, tag: str | None = None
    ) -> None:
        self.conn.execute(
            "INSERT INTO objects (id, kind, created, customer, parent, tag, deleted, body) VALUES (?,?,?,?,?,?,0,?)",
            (obj["id"], obj["object"], obj.get("created", obj.get("date")), customer, parent, tag, dumps(obj)),
        )

    def insert_many(self, rows: Iterable[Sequence[Any]]) -> int:
        """Bulk insert rows shaped like :data:`OBJECT_COLUMNS` (``body`` already serialised)."""
        cursor = self.conn.executemany(
            "INSERT INTO objects (id, kind, created, customer, parent, tag, deleted, body) VALUES (?,?,?,?,?,?,?,?)",
            rows,
        )
        return cursor.rowcount

    def save(self, obj: dict[str, Any], *, tag: str | None = None, deleted: bool = False) -> None:
        """Write back a changed object (its kind, created and links never change)."""
        self.conn.execute(
            "UPDATE objects SET body = ?, tag = coalesce(?, tag), deleted = ? WHERE id = ?",
            (dumps(obj), tag, int(deleted), obj["id"]),
        )

    def get(self, object_id: str, kind: str | None = None, *, include_deleted: bool = False) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT kind, deleted, body FROM objects WHERE id = ?", (object_id,)).fetchone()
        if row is None or (kind is not None and row[0] != kind) or (row[1] and not include_deleted):
            return None
        return orjson.loads(row[2])

    def is_deleted(self, object_id: str) -> bool:
        row = self.conn.execute("SELECT deleted FROM objects WHERE id = ?", (object_id,)).fetchone()
        return bool(row and row[0])

    def position(self, object_id: str, kind: str) -> tuple[int, int] | None:
        """The ``(created, seq)`` of an object, for cursors."""
        row = self.conn.execute(
            "SELECT created, seq FROM objects WHERE id = ? AND kind = ?", (object_id, kind)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def page(
        self,
        kind: str,
        *,
        where: Sequence[str] = (),
        args: Sequence[Any] = (),
        after: tuple[int, int] | None = None,
        before: tuple[int, int] | None = None,
        limit: int = 10,
    ) -> tuple[list[bytes], bool]:
        """One page of raw JSON bodies, newest first, and whether more exist in the paging direction."""
        clauses = ["kind = ?", "deleted = 0", *where]
        params: list[Any] = [kind, *args]
        ascending = False
        if after is not None:
            clauses.append("(created, seq) < (?, ?)")
            params.extend(after)
        elif before is not None:
            clauses.append("(created, seq) > (?, ?)")
            params.extend(before)
            ascending = True
        order = "ASC" if ascending else "DESC"
        # As a BLOB, the stored UTF-8 text comes back as the bytes that go on the wire, not decoded to a
        # str and encoded back (~300 KiB per page of 100 invoices).
        sql = (
            f"SELECT CAST(body AS BLOB) FROM objects WHERE {' AND '.join(clauses)} "
            f"ORDER BY created {order}, seq {order} LIMIT ?"
        )
        rows = self.conn.execute(sql, (*params, limit + 1)).fetchall()
        has_more = len(rows) > limit
        bodies = [row[0] for row in rows[:limit]]
        if ascending:
            bodies.reverse()
        return bodies, has_more

    def count(self, kind: str, where: Sequence[str] = (), args: Sequence[Any] = ()) -> int:
        clauses = ["kind = ?", "deleted = 0", *where]
        sql = f"SELECT count(*) FROM objects WHERE {' AND '.join(clauses)}"
        return int(self.conn.execute(sql, (kind, *args)).fetchone()[0])

    def find(self, kind: str, where: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        """All objects of ``kind`` matching ``where``, oldest first (for small related sets: an invoice's lines)."""
        rows = self.conn.execute(
            f"SELECT body FROM objects WHERE kind = ? AND deleted = 0 AND {where} ORDER BY created, seq",
            (kind, *args),
        ).fetchall()
        return [orjson.loads(row[0]) for row in rows]

    def counts_by_kind(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT kind, count(*) FROM objects WHERE deleted = 0 GROUP BY kind").fetchall()
        return {kind: count for kind, count in rows}

    def wipe(self) -> None:
        """Drop every object, event, delivery, idempotency record and settlement (keys and meta stay)."""
        with self.transaction():
            for table in ("objects", "idempotency", "deliveries", "settlements"):
                self.conn.execute(f"DELETE FROM {table}")
            self.conn.execute("DELETE FROM meta WHERE key != 'anchor_date'")
