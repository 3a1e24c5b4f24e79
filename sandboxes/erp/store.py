"""The ERP sandbox's state: one SQLite file (WAL) with a table per Odoo model, under the system's folder."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandboxes.book import RUNTIME_ID_BASE
from sandboxes.erp.schema import MODELS, ddl

logger = logging.getLogger(__name__)

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def utc_now() -> str:
    """Now in UTC with microseconds, as stored; reads show Odoo's ``YYYY-MM-DD HH:MM:SS``.

    Odoo keeps microseconds in PostgreSQL too, which is why ``write_date > '<a value read back>'`` can
    match the very record it was read from: incremental readers should compare with ``>=`` and dedupe.
    """
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class Store:
    """A SQLite connection shared by the server's worker threads, one transaction at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "journal_mode = WAL", "synchronous = NORMAL", "case_sensitive_like = ON", "temp_store = MEMORY",
            "cache_size = -65536", "mmap_size = 268435456",
        ):
            self.conn.execute(f"PRAGMA {pragma}")
        self.lock = threading.RLock()
        self._next_ids: dict[str, int] = {}
        self._create_schema()

    def _create_schema(self) -> None:
        with self.lock:
            for statement in ddl():
                self.conn.execute(statement)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: committed on success, rolled back on any exception."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def wipe(self) -> None:
        """Drop every table and create them empty again."""
        with self.lock:
            tables = [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                self.conn.execute(f"DROP TABLE IF EXISTS {table}")
            self._next_ids.clear()
            self._create_schema()

    def next_id(self, table: str) -> int:
        """A fresh id for ``table``: run-time records live above the book's ids (``RUNTIME_ID_BASE``)."""
        with self.lock:
            current = self._next_ids.get(table)
            if current is None:
                row = self.conn.execute(f"SELECT MAX(id) FROM {table}").fetchone()
                current = max(int(row[0] or 0) + 1, RUNTIME_ID_BASE)
            self._next_ids[table] = current + 1
            return current

    def forget_ids(self) -> None:
        """Drop the id cache (after a reset or a rolled-back batch that consumed ids is harmless to keep)."""
        with self.lock:
            self._next_ids.clear()

    def meta(self, key: str) -> str | None:
        with self.lock:
            row = self.conn.execute("SELECT value FROM sandbox_meta WHERE key = ?", (key,)).fetchone()
            return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self.conn.execute(
                "INSERT INTO sandbox_meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def counts(self) -> dict[str, int]:
        """Record counts per model (transient wizards excluded)."""
        with self.lock:
            return {
                name: int(self.conn.execute(f"SELECT COUNT(*) FROM {model.table}").fetchone()[0])
                for name, model in MODELS.items()
                if not model.transient
            }
