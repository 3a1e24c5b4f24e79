"""Loads an Airbyte source's stdout (the Airbyte protocol, one JSON message a line) into PostgreSQL.

Stands in for an Airbyte destination the way the platform's raw tables do: one table per stream holding
each record as ``jsonb`` with its emission time, written with ``COPY`` in batches. It also keeps what a
benchmark report needs from the other message types: the last state per stream, error traces, warning
and error logs, and rotated connector configs (Airbyte's Salesforce source emits a ``CONNECTOR_CONFIG``
control message whenever the refresh token rotates; the caller must use it for the next run).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson
import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

_BATCH_ROWS = 5_000
_MAX_NOTES = 40


@dataclasses.dataclass
class AirbyteRun:
    """What one ``read`` (or ``discover``) produced besides the rows written."""

    records: Counter[str] = dataclasses.field(default_factory=Counter)
    catalog: dict[str, Any] | None = None
    new_config: dict[str, Any] | None = None
    errors: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    stream_status: dict[str, str] = dataclasses.field(default_factory=dict)
    states: int = 0
    unparsed_lines: int = 0

    def note(self, bucket: list[str], text: str) -> None:
        if len(bucket) < _MAX_NOTES and text not in bucket:
            # Tracebacks end with what went wrong: keep the end of long texts.
            bucket.append(text if len(text) <= 2000 else "..." + text[-2000:])


def raw_table(schema: str, stream: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(stream))


class AirbyteLoader:
    """Writes records into ``<schema>.<stream>`` tables (``_airbyte_data jsonb``, ``_airbyte_emitted_at``)."""

    def __init__(self, conn: psycopg.Connection[Any] | None, schema: str) -> None:
        self.conn = conn
        self.schema = schema
        self.run = AirbyteRun()
        self._buffers: dict[str, list[tuple[str, dt.datetime]]] = {}
        self._created: set[str] = set()
        if conn is not None:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.commit()

    def consume(self, lines: Iterable[bytes]) -> AirbyteRun:
        """Read every message from ``lines`` (a connector's stdout) and flush what is buffered."""
        for line in lines:
            if line.strip():
                self._handle(line)
        self.flush()
        return self.run

    def _handle(self, line: bytes) -> None:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            # Connectors sometimes print plain text (library warnings) on stdout.
            self.run.unparsed_lines += 1
            return
        kind = message.get("type")
        if kind == "RECORD":
            record = message["record"]
            self._add(record["stream"], record.get("data", {}), record.get("emitted_at"))
        elif kind == "STATE":
            self.run.states += 1
        elif kind == "LOG":
            log = message.get("log", {})
            level = log.get("level", "")
            if level in ("ERROR", "FATAL"):
                self.run.note(self.run.errors, log.get("message", ""))
            elif level == "WARN":
                self.run.note(self.run.warnings, log.get("message", ""))
        elif kind == "TRACE":
            self._trace(message.get("trace", {}))
        elif kind == "CONTROL":
            control = message.get("control", {})
            if control.get("type") == "CONNECTOR_CONFIG":
                self.run.new_config = control.get("connectorConfig", {}).get("config")
        elif kind == "CATALOG":
            self.run.catalog = message.get("catalog")

    def _trace(self, trace: dict[str, Any]) -> None:
        if trace.get("type") == "ERROR":
            error = trace.get("error", {})
            text = error.get("message", "")
            if error.get("internal_message"):
                text += f" ({error['internal_message']})"
            self.run.note(self.run.errors, text)
        elif trace.get("type") == "STREAM_STATUS":
            status = trace.get("stream_status", {})
            name = status.get("stream_descriptor", {}).get("name", "?")
            self.run.stream_status[name] = status.get("status", "?")

    def _add(self, stream: str, data: dict[str, Any], emitted_at_ms: int | None) -> None:
        self.run.records[stream] += 1
        if self.conn is None:
            return
        emitted = dt.datetime.fromtimestamp((emitted_at_ms or 0) / 1000, tz=dt.UTC)
        # PostgreSQL's jsonb cannot hold NUL characters.
        payload = orjson.dumps(data).decode().replace("\\u0000", "")
        buffer = self._buffers.setdefault(stream, [])
        buffer.append((payload, emitted))
        if len(buffer) >= _BATCH_ROWS:
            self._flush_stream(stream)

    def flush(self) -> None:
        for stream in list(self._buffers):
            self._flush_stream(stream)

    def _flush_stream(self, stream: str) -> None:
        rows = self._buffers.pop(stream, [])
        if not rows or self.conn is None:
            return
        table = raw_table(self.schema, stream)
        if stream not in self._created:
            self.conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} (_airbyte_data jsonb NOT NULL, _airbyte_emitted_at timestamptz)")
                .format(table)
            )
            self._created.add(stream)
        copy_rows = sql.SQL("COPY {} (_airbyte_data, _airbyte_emitted_at) FROM STDIN").format(table)
        with self.conn.cursor() as cur, cur.copy(copy_rows) as copy:
            for row in rows:
                copy.write_row(row)
        self.conn.commit()
