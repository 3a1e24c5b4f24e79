"""The org's state in SQLite: one table per sObject with a typed column per field, plus settings.

Only the event-loop thread writes, through :attr:`SalesforceStore.db`; background readers (Bulk query
jobs) open their own connections with :meth:`SalesforceStore.reader`, which WAL lets run alongside writes.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sandboxes.book import RUNTIME_ID_BASE, salesforce_id
from sandboxes.salesforce.schema import SOBJECTS, SObject

logger = logging.getLogger(__name__)

ROWID = "_rowid"
DELETED_AT = "_deleted_at"


def table_ddl(sobject: SObject) -> list[str]:
    """CREATE statements for one object's table and its indexes."""
    columns = [f"{ROWID} INTEGER PRIMARY KEY"]
    for field in sobject.fields.values():
        columns.append(f'"{field.name}" {field.sql_type}')
    columns.append(f"{DELETED_AT} TEXT")
    table = sobject.name
    statements = [f'CREATE TABLE IF NOT EXISTS "{table}" ({", ".join(columns)})']
    statements.append(f'CREATE UNIQUE INDEX IF NOT EXISTS "ix_{table}_Id" ON "{table}" ("Id")')
    # The cursors integrations page on, and the recycle-bin filter every query applies.
    for column in ("SystemModstamp", "LastModifiedDate", "CreatedDate"):
        statements.append(f'CREATE INDEX IF NOT EXISTS "ix_{table}_{column}" ON "{table}" ("IsDeleted", "{column}")')
        statements.append(f'CREATE INDEX IF NOT EXISTS "ix_{table}_{column}_all" ON "{table}" ("{column}")')
    statements.append(f'CREATE INDEX IF NOT EXISTS "ix_{table}_deleted_at" ON "{table}" ({DELETED_AT})')
    for field in sobject.fields.values():
        if field.external_id or field.type == "reference" and field.reference_to != "User":
            statements.append(f'CREATE INDEX IF NOT EXISTS "ix_{table}_{field.name}" ON "{table}" ("{field.name}")')
    return statements


class SalesforceStore:
    """Rows of every sObject, id allocation and small settings, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = self._connect(path)
        self._create_schema()

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA temp_store=MEMORY")
        db.execute("PRAGMA cache_size=-65536")
        return db

    def reader(self) -> sqlite3.Connection:
        """A separate connection for reading from another thread."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA temp_store=MEMORY")
        return db

    def _create_schema(self) -> None:
        with self.transaction():
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            for sobject in SOBJECTS.values():
                for statement in table_ddl(sobject):
                    self.db.execute(statement)

    def drop_all(self) -> None:
        """Remove every record table (a reset); tokens and settings are kept by their owners."""
        with self.transaction():
            for sobject in SOBJECTS.values():
                self.db.execute(f'DROP TABLE IF EXISTS "{sobject.name}"')
            self.db.execute("DELETE FROM meta WHERE key LIKE 'seq:%' OR key IN ('seeded_on', 'seed', 'scale')")
        self._create_schema()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A transaction, or a savepoint when one is already open (so callers can nest)."""
        if self.db.in_transaction:
            name = f"sp{id(object())}"
            self.db.execute(f"SAVEPOINT {name}")
            try:
                yield self.db
            except BaseException:
                self.db.execute(f"ROLLBACK TO {name}")
                self.db.execute(f"RELEASE {name}")
                raise
            self.db.execute(f"RELEASE {name}")
            return
        self.db.execute("BEGIN")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---- settings -----------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def next_id(self, sobject: SObject) -> str:
        """A new Id for a record made at run time, numbered above the book's range."""
        return salesforce_id(sobject.key_prefix, self.allocate_numbers(sobject, 1))

    def allocate_numbers(self, sobject: SObject, count: int) -> int:
        """Reserve ``count`` run-time Id numbers for ``sobject``; returns the first."""
        key = f"seq:{sobject.name}"
        first = int(self.get_meta(key) or RUNTIME_ID_BASE)
        self.set_meta(key, str(first + count))
        return first

    # ---- records ------------------------------------------------------------------------------------

    def insert_many(self, sobject: SObject, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows given as value tuples in ``columns`` order (the seeding path; no validation)."""
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        self.db.executemany(f'INSERT INTO "{sobject.name}" ({names}) VALUES ({marks})', rows)

    def insert(self, sobject: SObject, values: dict[str, Any]) -> None:
        self.insert_many(sobject, list(values), [list(values.values())])

    def update(self, sobject: SObject, record_id: str, values: dict[str, Any]) -> None:
        if not values:
            return
        assignments = ", ".join(f'"{c}" = ?' for c in values)
        self.db.execute(f'UPDATE "{sobject.name}" SET {assignments} WHERE "Id" = ?', [*values.values(), record_id])

    def get(self, sobject: SObject, record_id: str) -> dict[str, Any] | None:
        """The record's stored values (deleted ones included), or None."""
        cursor = self.db.execute(f'SELECT * FROM "{sobject.name}" WHERE "Id" = ?', (record_id,))
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cursor.description], row, strict=True))

    def ids_where(self, sobject: SObject, field: str, value: Any, include_deleted: bool = False) -> list[str]:
        sql = f'SELECT "Id" FROM "{sobject.name}" WHERE "{field}" = ?'
        if not include_deleted:
            sql += ' AND "IsDeleted" = 0'
        return [row[0] for row in self.db.execute(sql + " ORDER BY _rowid LIMIT 50", (value,))]

    def count(self, sobject: SObject, include_deleted: bool = False) -> int:
        sql = f'SELECT COUNT(*) FROM "{sobject.name}"'
        if not include_deleted:
            sql += ' WHERE "IsDeleted" = 0'
        return int(self.db.execute(sql).fetchone()[0])

    def counts(self) -> dict[str, int]:
        return {name: self.count(sobject) for name, sobject in SOBJECTS.items()}

    def close(self) -> None:
        self.db.close()
