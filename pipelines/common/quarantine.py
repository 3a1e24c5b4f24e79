"""Bad records go to ``raw_quarantine.records`` with the field and the reason; the rest of the batch loads.

Rows are written as soon as a record is rejected, before the batch's load commits (write-ahead), and are
unique per record version, so a load that dies and is re-run does not quarantine the same record twice.
The offending value and the whole record are kept encrypted (they may hold PII), so nothing is lost and
an operator can repair and replay the record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from typing import Any

import psycopg

from revloop.crypto import FieldCipher

logger = logging.getLogger(__name__)

SCHEMA = "raw_quarantine"

DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {SCHEMA}.records (
    id              bigserial primary key,
    source          text not null,
    object          text not null,
    record_id       text,
    field           text not null,
    reason          text not null,
    value_enc       text,
    payload_enc     text not null,
    payload_sha256  text not null,
    first_seen_at   timestamptz not null default now(),
    last_seen_at    timestamptz not null default now(),
    occurrences     integer not null default 1,
    resolved_at     timestamptz,
    unique (source, object, record_id, field, payload_sha256)
);
create index if not exists records_open_idx on {SCHEMA}.records (source, object, record_id)
    where resolved_at is null;
comment on table {SCHEMA}.records is
    'Records a load rejected: which field, why; value and payload encrypted. resolved_at is set once a later
     version of the record loads cleanly.';
"""


class BadValue(ValueError):
    """A field's value cannot be loaded as its declared type."""

    def __init__(self, field: str, reason: str, value: object = None) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.value = value


@dataclasses.dataclass(frozen=True)
class Rejection:
    object: str
    record_id: str | None
    field: str
    reason: str
    value: object
    payload: dict[str, Any]


class Quarantine:
    """Writes rejections of one source to the warehouse as they happen."""

    def __init__(self, database_url: str, source: str, cipher: FieldCipher) -> None:
        self.database_url = database_url
        self.source = source
        self.cipher = cipher
        self.count = 0
        self.by_object: dict[str, int] = {}
        self._conn: psycopg.Connection | None = None

    def __enter__(self) -> Quarantine:
        self._conn = psycopg.connect(self.database_url, autocommit=True)
        # The systems load concurrently and share this schema: ``if not exists`` alone races (two
        # sessions both see no schema and one fails on the catalog's unique index), so serialize the DDL.
        with self._conn.transaction():
            self._conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"revloop.ddl.{SCHEMA}",))
            self._conn.execute(DDL)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def reject(self, rejection: Rejection) -> None:
        """Record one bad record (logged without its values: they may be PII)."""
        assert self._conn is not None, "use Quarantine as a context manager"
        payload_text = json.dumps(rejection.payload, sort_keys=True, default=str)
        digest = hashlib.sha256(payload_text.encode()).hexdigest()
        field_name = f"{SCHEMA}.records.{self.source}.{rejection.object}"
        self._conn.execute(
            f"""insert into {SCHEMA}.records
                    (source, object, record_id, field, reason, value_enc, payload_enc, payload_sha256)
                values (%s, %s, %s, %s, %s, %s, %s, %s)
                on conflict (source, object, record_id, field, payload_sha256)
                do update set last_seen_at = now(), occurrences = {SCHEMA}.records.occurrences + 1""",
            (
                self.source, rejection.object, rejection.record_id, rejection.field, rejection.reason,
                self.cipher.encrypt(None if rejection.value is None else str(rejection.value), field_name + ".value"),
                self.cipher.encrypt(payload_text, field_name + ".payload"),
                digest,
            ),
        )
        self.count += 1
        self.by_object[rejection.object] = self.by_object.get(rejection.object, 0) + 1
        logger.warning(
            "quarantined %s %s %s: field %s: %s",
            self.source, rejection.object, rejection.record_id, rejection.field, rejection.reason,
        )

    def resolve(self, object_name: str, record_ids: list[str]) -> int:
        """Mark open rejections of these records resolved (a later version loaded cleanly)."""
        assert self._conn is not None, "use Quarantine as a context manager"
        if not record_ids:
            return 0
        cursor = self._conn.execute(
            f"""update {SCHEMA}.records set resolved_at = now()
                where source = %s and object = %s and record_id = any(%s) and resolved_at is null""",
            (self.source, object_name, record_ids),
        )
        return cursor.rowcount
