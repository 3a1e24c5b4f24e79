"""Reading the ERP: retried JSON-2 calls, the model's available fields, and keyset paging by write_date.

Paging is by ``(write_date, id)`` without OFFSET. Odoo stores ``write_date`` with microseconds but reads
it back in whole seconds, so the order a page comes in (true write_date, then id) cannot be resumed from
the last row's visible values alone. The reader therefore restarts each page at the last row's second,
skipping the ids it already returned for that second, and reads a second that holds more than a page of
records by id (a "drain"), so it always advances and never skips a record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from pipelines.common.retry import retrying
from pipelines.erp import settings as erp
from revloop.connectors.erp import Json2Reader, is_transient, retry_after
from revloop.settings import ErpSettings

logger = logging.getLogger(__name__)
_REPORTED_SCHEMA_PROBLEMS: set[str] = set()

Record = dict[str, Any]
Domain = list[Any]

ALL_RECORDS_CONTEXT = {"active_test": False}
"""Archived records (``active = false``) are still records: read and count them too."""

EXPECTED_TYPES: dict[str, frozenset[str]] = {
    erp.INT: frozenset({"integer"}),
    erp.TEXT: frozenset({"char", "text", "selection", "html"}),
    erp.BOOL: frozenset({"boolean"}),
    erp.DATETIME: frozenset({"datetime"}),
    erp.DATE: frozenset({"date"}),
    erp.DECIMAL: frozenset({"float", "monetary"}),
    erp.CURRENCY_CODE: frozenset({"char"}),
    erp.MANY2ONE: frozenset({"many2one"}),
    erp.MANY2ONE_ID: frozenset({"many2one"}),
    erp.CURRENCY: frozenset({"many2one"}),
    erp.ID_LIST: frozenset({"one2many", "many2many"}),
}


class SharedClient:
    """One JSON-2 connection pool for all the models of a run, closed when the last model is read.

    Opening a client costs ~50 ms (a TLS context with the CA bundle) whether or not the URL is https;
    per model and run, that was a third of an incremental cycle's ERP time.
    """

    def __init__(self, settings: ErpSettings, users: int) -> None:
        self.client = Json2Reader(settings, reader=True)
        self._users = users
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users <= 0:
                self.client.close()


class ErpReader:
    """The read-only API key's view of the ERP; every call retried on transient failures."""

    def __init__(self, settings: ErpSettings, client: SharedClient | None = None) -> None:
        if settings.reader_api_key is None:
            logger.warning("REVLOOP_ERP_READER_API_KEY is not set: reading with the sync key")
        self._shared = client
        self._client = client.client if client is not None else Json2Reader(settings, reader=True)
        self.calls = 0
        self.seconds = 0.0
        """Time spent in calls (waiting, transfer and JSON decoding), for the load summary."""

    def __enter__(self) -> ErpReader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._shared is not None:
            self._shared.release()
        else:
            self._client.close()

    def call(self, model: str, method: str, **arguments: Any) -> Any:
        """``model.method(**arguments)`` with backoff on 5xx, 429 (``Retry-After``) and broken connections."""
        for attempt in retrying(is_transient, retry_after, what=f"ERP {model}.{method}"):
            with attempt:
                self.calls += 1
                started = time.perf_counter()
                try:
                    return self._client.call(model, method, **arguments)
                finally:
                    self.seconds += time.perf_counter() - started
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def available_fields(self, spec: erp.ModelSpec) -> tuple[list[tuple[str, str]], list[str]]:
        """The spec's fields the server has with the expected type, and what differs (for the summary)."""
        described = self.call(spec.model, "fields_get", attributes=["type"])
        fields: list[tuple[str, str]] = []
        problems: list[str] = []
        for name, kind in (*erp.MAGIC_FIELDS, *spec.fields):
            odoo_type = (described.get(name) or {}).get("type")
            if odoo_type is None:
                problems.append(f"{spec.model}.{name}: not on the server; not loaded")
            elif odoo_type not in EXPECTED_TYPES[kind]:
                problems.append(f"{spec.model}.{name}: type is {odoo_type}, expected {kind}; not loaded")
            else:
                fields.append((name, kind))
        for problem in problems:
            # once per process: a warm loop loads every minute, and the summary's notes carry them each time
            if problem not in _REPORTED_SCHEMA_PROBLEMS:
                _REPORTED_SCHEMA_PROBLEMS.add(problem)
                logger.warning("ERP schema: %s", problem)
            else:
                logger.debug("ERP schema: %s", problem)
        return fields, problems

    def search_count(self, model: str, domain: Domain) -> int:
        return int(self.call(model, "search_count", domain=domain, context=ALL_RECORDS_CONTEXT))

    def search_read(self, model: str, domain: Domain, fields: Sequence[str], order: str, limit: int) -> list[Record]:
        return self.call(  # type: ignore[no-any-return]
            model, "search_read", domain=domain, fields=list(fields), order=order, limit=limit,
            context=ALL_RECORDS_CONTEXT,
        )

    def ids(self, model: str, domain: Domain, up_to_id: int) -> set[int]:
        """Every id matching ``domain`` up to ``up_to_id``, paged by id."""
        found: set[int] = set()
        last = 0
        while True:
            page = self.call(
                model, "search", domain=[*domain, ("id", "<=", up_to_id), ("id", ">", last)], order="id asc",
                limit=erp.ID_PAGE_SIZE, context=ALL_RECORDS_CONTEXT,
            )
            found.update(page)
            if len(page) < erp.ID_PAGE_SIZE:
                return found
            last = page[-1]

    def read_ids(self, model: str, fields: Sequence[str], ids: Sequence[int]) -> Iterator[list[Record]]:
        """The records of ``ids`` (those that still exist), a page at a time."""
        ordered = sorted(ids)
        for start in range(0, len(ordered), erp.PAGE_SIZE):
            chunk = ordered[start:start + erp.PAGE_SIZE]
            yield self.search_read(model, [("id", "in", chunk)], fields, "id asc", erp.PAGE_SIZE)

    def changed_since(self, model: str, domain: Domain, fields: Sequence[str], since: str | None,
                      page_size: int = erp.PAGE_SIZE) -> Iterator[list[Record]]:
        """Pages of the records with ``write_date >= since`` (all when None), in write_date order.

        A record written while the pass runs moves behind the reader's position and is read again, in its
        new state, before the pass ends; a record is never skipped.
        """
        lower = since
        seen_at_lower: set[int] = set()
        while True:
            window = [("write_date", ">=", lower)] if lower else []
            rows = self.search_read(model, [*domain, *window], fields, "write_date asc, id asc", page_size)
            fresh = [r for r in rows if not (r["write_date"] == lower and r["id"] in seen_at_lower)]
            if fresh:
                yield fresh
            if len(rows) < page_size:
                return
            last = rows[-1]["write_date"]
            if rows[0]["write_date"] == last:
                yield from self._drain_second(model, domain, fields, last, seen_at_lower, page_size)
                lower, seen_at_lower = next_second(last), set()
            else:
                lower, seen_at_lower = last, {r["id"] for r in rows if r["write_date"] == last}

    def _drain_second(self, model: str, domain: Domain, fields: Sequence[str], second: str, seen: set[int],
                      page_size: int) -> Iterator[list[Record]]:
        """Every record written within ``second`` (more than a page of them), by id."""
        after_id = 0
        window = [("write_date", ">=", second), ("write_date", "<", next_second(second))]
        while True:
            rows = self.search_read(model, [*domain, *window, ("id", ">", after_id)], fields, "id asc", page_size)
            fresh = [r for r in rows if r["id"] not in seen]
            if fresh:
                yield fresh
            if len(rows) < page_size:
                return
            after_id = rows[-1]["id"]


def next_second(value: str) -> str:
    """The Odoo datetime one second after ``value``."""
    moment = dt.datetime.strptime(value, erp.ODOO_DATETIME_FORMAT) + dt.timedelta(seconds=1)
    return moment.strftime(erp.ODOO_DATETIME_FORMAT)


def shift(value: str, delta: dt.timedelta) -> str:
    """The Odoo datetime ``value + delta``."""
    return (dt.datetime.strptime(value, erp.ODOO_DATETIME_FORMAT) + delta).strftime(erp.ODOO_DATETIME_FORMAT)


class RecentWindow:
    """What the last run read within ``overlap`` of its newest write_date, to skip unchanged re-reads.

    The next run re-reads that window on purpose (late commits); a record read again with exactly the
    content already loaded is skipped instead of merged again. Content, not write_date, is compared:
    Odoo shows write_date in whole seconds, so two versions written within one second look alike.
    """

    def __init__(self, previous: list[list[Any]] | None, overlap: dt.timedelta, cap: int) -> None:
        self.previous: dict[int, str] = {int(i): digest for i, digest in previous or []}
        self.overlap = overlap
        self.cap = cap
        self.newest: str | None = None
        self._rows: dict[int, Record] = {}
        self.skipped = 0

    def unchanged(self, rows: list[Record]) -> list[Record]:
        """Remember ``rows`` and return those not already loaded with the same content."""
        for row in rows:
            written = row.get("write_date")
            if written:
                if self.newest is None or written > self.newest:
                    self.newest = written
                self._rows[row["id"]] = row
        if len(self._rows) > 2 * self.cap:
            self._prune()
        if not self.previous:
            return rows
        kept = [r for r in rows if r["id"] not in self.previous or self.previous[r["id"]] != _digest(r)]
        self.skipped += len(rows) - len(kept)
        return kept

    def _prune(self) -> None:
        if self.newest is None:
            return
        floor = shift(self.newest, -self.overlap)
        self._rows = {i: r for i, r in self._rows.items() if r["write_date"] >= floor}

    def state(self) -> list[list[Any]]:
        """The (id, content digest) pairs for the next run; none when the window holds too many."""
        if self.newest is None:
            return [[i, digest] for i, digest in self.previous.items()]
        self._prune()
        if len(self._rows) > self.cap:
            return []
        return [[i, _digest(r)] for i, r in self._rows.items()]


def _digest(row: Record) -> str:
    return hashlib.blake2b(orjson.dumps(row, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()
