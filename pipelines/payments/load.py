"""One run of the payments source: decide backfill or incremental, read, and hand each table its rows."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import dlt
import pyarrow as pa
import stripe

from pipelines.common.runner import LoadContext, dataset_for
from pipelines.payments.events import FeedChanges, changes_from_feed, newer_than_stored, stale_parents
from pipelines.payments.helpers import StripeReader
from pipelines.payments.settings import (
    CHILD_TABLES,
    EVENT,
    EVENT_OVERLAP_SECONDS,
    EVENT_RETENTION_SECONDS,
    EVENT_TABLE,
    EVENT_WINDOWS,
    OBJECTS,
    PII,
    REFETCH_PARENT_EVENTS,
    ROWS_PER_TABLE,
    SNAPSHOT_SAFETY_SECONDS,
)
from pipelines.payments.stored import Warehouse
from pipelines.payments.tables import TableBuilder, Versioned, parse_columns
from revloop.connectors.payments import connect

logger = logging.getLogger(__name__)

SYSTEM = "payments"
LINE_TABLE = "invoice_line"
CURSOR_STATE_KEY = "events_cursor"
RETRIEVE_THREADS = 8
"""Objects read again at the same time; the reader's pacer keeps them within the API's rate."""


@dataclasses.dataclass
class Plan:
    """How this run reads: ``backfill`` (first run or full refresh), ``relist`` (cursor past the events'
    retention: list everything again and mark what vanished deleted) or ``incremental`` (events feed)."""

    mode: str
    previous_cursor: int | None
    changes: FeedChanges | None = None


class PaymentsLoad:
    """The readers, builders and plan shared by the resources of one run of the payments source."""

    def __init__(self, context: LoadContext) -> None:
        settings = context.settings.payments
        if settings.reader_key is None:
            raise ValueError(
                "REVLOOP_PAYMENTS_READER_KEY is not set: ingestion reads with a restricted read-only key"
            )
        self.context = context
        # whole seconds: Stripe's ``created`` filters take integers only
        self.overlap_seconds = int(EVENT_OVERLAP_SECONDS if context.events_overlap_seconds is None
                                   else context.events_overlap_seconds)
        self.reader = StripeReader(connect(settings, reader=True))
        self.warehouse = Warehouse(context.database_url, dataset_for(SYSTEM), SYSTEM)
        self.extracted_at = dt.datetime.now(dt.UTC)
        declared: dict[str, object] = {
            **{table: spec["columns"] for table, spec in OBJECTS.items()},
            **{table: spec["columns"] for table, spec in CHILD_TABLES.items()},
            EVENT_TABLE: EVENT,
        }
        self.builders = {
            table: TableBuilder(table, parse_columns(cast(Sequence[str], columns)), context.quarantine.reject)
            for table, columns in declared.items()
        }
        self._plan: Plan | None = None
        self._plan_lock = threading.Lock()
        self._open_rejections: dict[str, set[str]] = {}
        self._protect_seconds = 0.0
        notes = context.notes
        notes.setdefault("api", "list pages through StripeClient's requestor, parsed with orjson")
        notes.setdefault("deleted", {})
        notes.setdefault("stale_snapshots_skipped", 0)

    # -- the plan ---------------------------------------------------------------------------------------

    def plan(self) -> Plan:
        """Decided on first use, inside the extraction (where the pipeline's state is available)."""
        with self._plan_lock:
            if self._plan is None:
                self._plan = self._make_plan()
            return self._plan

    def _make_plan(self) -> Plan:
        state = dlt.current.source_state()
        cursor = state.get(CURSOR_STATE_KEY)
        started = int(time.time())
        notes = self.context.notes
        if self.context.full_refresh or cursor is None:
            plan = Plan("backfill", None)
        elif cursor < started - EVENT_RETENTION_SECONDS:
            plan = Plan("relist", int(cursor))
            notes["retention_fallback"] = (
                f"events cursor {dt.datetime.fromtimestamp(cursor, dt.UTC):%Y-%m-%d %H:%M} is older than the"
                " events feed keeps; all objects listed again, vanished ones marked deleted"
            )
        else:
            plan = Plan("incremental", int(cursor))
        notes["mode"] = plan.mode
        if plan.previous_cursor is not None and plan.mode == "incremental":
            since = plan.previous_cursor - self.overlap_seconds
            events = self.reader.created_since("/v1/events", since, EVENT_WINDOWS)
            plan.changes = changes_from_feed(events, self._event_sourced_tables(), REFETCH_PARENT_EVENTS)
            notes["events_read"] = len(plan.changes.events)
            notes["duplicate_events"] = plan.changes.duplicates
            state[CURSOR_STATE_KEY] = max(plan.previous_cursor, plan.changes.newest_created or 0)
        else:
            # Events from the start of the listing on are replayed by the next cycle (with the overlap).
            state[CURSOR_STATE_KEY] = started
        notes["events_cursor"] = state[CURSOR_STATE_KEY]
        logger.info("payments load: %s (cursor %s)", plan.mode, state[CURSOR_STATE_KEY])
        return plan

    @staticmethod
    def _event_sourced_tables() -> list[str]:
        return [table for table, spec in OBJECTS.items() if spec["events"]]

    # -- resources --------------------------------------------------------------------------------------

    def object_rows(self, table: str) -> Iterator[Any]:
        """The rows of ``table`` for this run (a generator for ``dlt.resource``)."""
        plan = self.plan()
        if plan.mode == "incremental" and OBJECTS[table]["events"]:
            yield from self._changed(table, plan)
        elif plan.mode == "incremental":
            since = (plan.previous_cursor or 0) - self.overlap_seconds
            yield from self._listed(table, {"created": {"gte": since}}, relist=False)
        else:
            yield from self._listed(table, {}, relist=plan.mode == "relist")

    def event_rows(self) -> Iterator[Any]:
        """Every event read in this run, kept in ``event`` (merge on the event id)."""
        plan = self.plan()
        builder = self.builders[EVENT_TABLE]
        if plan.mode == "incremental":
            assert plan.changes is not None
            # Events re-read from the overlap window are already stored: immutable, so not written again.
            known = self.warehouse.existing_ids(EVENT_TABLE, [e["id"] for e in plan.changes.events])
            events: Iterable[Sequence[Mapping[str, Any]]] = [[e for e in plan.changes.events if e["id"] not in known]]
        else:
            # The longest list (every state change of the last 30 days): paged as several windows at once.
            events = (page.records for page in self.reader.pages_in_windows("/v1/events", EVENT_WINDOWS))
        batch: list[Versioned] = []
        for records in events:
            batch.extend(Versioned(e, int(e["created"]) if isinstance(e.get("created"), int) else 0, e.get("id"))
                         for e in records)
            if len(batch) >= ROWS_PER_TABLE:
                yield self._finish(EVENT_TABLE, builder.build(batch, self.extracted_at))
                batch = []
        if batch:
            yield self._finish(EVENT_TABLE, builder.build(batch, self.extracted_at))

    # -- listing ----------------------------------------------------------------------------------------

    def _listed(self, table: str, params: dict[str, Any], *, relist: bool) -> Iterator[Any]:
        """All objects of ``table`` from its list (``params`` filter it), in batches of pages."""
        path = str(OBJECTS[table]["path"])
        seen: dict[str, set[Any]] = {table: set(), LINE_TABLE: set()}
        batch: list[Versioned] = []
        lines: list[Versioned] = []
        emitted = False
        for page in self.reader.pages(path, params):
            observed = int(page.read_at) - SNAPSHOT_SAFETY_SECONDS
            for record in page.records:
                batch.append(Versioned(record, observed))
                if table == "invoice":
                    lines.extend(Versioned(line, observed) for line in self._lines_of(record))
            if relist:
                # Every id served counts as present, quarantined ones too: their stored rows are not deleted.
                seen[table].update(record.get("id") for record in page.records)
                seen[LINE_TABLE].update(line.record.get("id") for line in lines)
            if len(batch) >= ROWS_PER_TABLE:
                yield from self._emit(table, batch, lines)
                batch, lines, emitted = [], [], True
        if batch or not emitted:
            # An empty first listing still yields its (empty) table, so every table exists from the start.
            yield from self._emit(table, batch, lines)
        if relist:
            yield from self._vanished(table, seen[table])
            if table == "invoice":
                yield from self._vanished(LINE_TABLE, seen[LINE_TABLE])

    def _emit(self, table: str, batch: list[Versioned], lines: list[Versioned]) -> Iterator[Any]:
        yield self._finish(table, self.builders[table].build(batch, self.extracted_at))
        if lines or table == "invoice":
            yield self._finish(LINE_TABLE, self.builders[LINE_TABLE].build(lines, self.extracted_at))

    def _vanished(self, table: str, seen: set[Any]) -> Iterator[Any]:
        """Rows still live in the warehouse that the full listing no longer returned: deleted at the source."""
        gone = self._all_live(table) - seen
        if gone:
            self._count_deleted(table, len(gone))
            tombstones = self.warehouse.tombstones(table, gone, int(time.time()), None, self.extracted_at)
            if tombstones is not None:
                yield self._hinted(table, tombstones)

    def _all_live(self, table: str) -> set[str]:
        return {object_id for ids in self.warehouse.live_ids(table).values() for object_id in ids}

    # -- events -----------------------------------------------------------------------------------------

    def _changed(self, table: str, plan: Plan) -> Iterator[Any]:
        """The newest snapshot of each object of ``table`` the feed changed, unless the warehouse has newer."""
        assert plan.changes is not None
        snapshots = dict(plan.changes.snapshots.get(table, {}))
        refetch = plan.changes.refetch.get(table, {})
        stored = self.warehouse.versions(table, set(snapshots) | set(refetch))
        known = {object_id: version[0] for object_id, version in stored.items()}
        for object_id, snapshot in snapshots.items():
            known[object_id] = max(known.get(object_id, -1), snapshot.observed_at)
        stale = stale_parents(refetch, known)
        self.context.notes["parents_read_again"] = self.context.notes.get("parents_read_again", 0) + len(stale)
        for object_id, current in zip(stale, self._retrieve_all(table, stale), strict=True):
            if current is not None:
                folded = snapshots.get(object_id)
                snapshots[object_id] = dataclasses.replace(
                    current, observed_at=max(current.observed_at, folded.observed_at if folded else 0)
                )
        if not snapshots:
            return
        fresh = newer_than_stored(snapshots, stored)
        self.context.notes["stale_snapshots_skipped"] += len(snapshots) - len(fresh)
        deleted = sum(1 for snapshot in fresh if snapshot.deleted)
        if deleted:
            self._count_deleted(table, deleted)
        for start in range(0, len(fresh), ROWS_PER_TABLE):
            chunk = fresh[start:start + ROWS_PER_TABLE]
            yield self._finish(table, self.builders[table].build(chunk, self.extracted_at))
            if table == "invoice":
                yield from self._replace_lines(chunk)

    def _retrieve_all(self, table: str, object_ids: Sequence[str]) -> list[Versioned | None]:
        """:meth:`_retrieve` of each id, several at a time (each read waits on the network, not the CPU)."""
        if len(object_ids) <= 1:
            return [self._retrieve(table, object_id) for object_id in object_ids]
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(RETRIEVE_THREADS, len(object_ids)),
                                                   thread_name_prefix="stripe-retrieve") as pool:
            return list(pool.map(lambda object_id: self._retrieve(table, object_id), object_ids))

    def _retrieve(self, table: str, object_id: str) -> Versioned | None:
        read_at = time.time()
        try:
            record = self.reader.get(f"{OBJECTS[table]['path']}/{object_id}")
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None  # deleted since: its own event says so
            raise
        return Versioned(record, int(read_at) - SNAPSHOT_SAFETY_SECONDS)

    def _replace_lines(self, invoices: list[Versioned]) -> Iterator[Any]:
        """The lines of these invoice snapshots; lines stored for them but gone from the snapshot are deleted."""
        lines = [
            Versioned(line, snapshot.observed_at, snapshot.event_id)
            for snapshot in invoices if not snapshot.deleted
            for line in self._lines_of(snapshot.record)
        ]
        current = {line.record["id"] for line in lines}
        if lines:
            yield self._finish(LINE_TABLE, self.builders[LINE_TABLE].build(lines, self.extracted_at))
        stored = self.warehouse.live_ids(LINE_TABLE, "invoice", among=[s.record["id"] for s in invoices])
        newest = max(invoices, key=lambda s: s.observed_at)
        gone = {line_id for ids in stored.values() for line_id in ids if line_id not in current}
        if gone:
            self._count_deleted(LINE_TABLE, len(gone))
            tombstones = self.warehouse.tombstones(LINE_TABLE, gone, newest.observed_at, newest.event_id,
                                                   self.extracted_at)
            if tombstones is not None:
                yield self._hinted(LINE_TABLE, tombstones)

    # -- shared -----------------------------------------------------------------------------------------

    def _lines_of(self, invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
        invoice_id = invoice.get("id")
        return [
            line if line.get("invoice") == invoice_id else {**line, "invoice": invoice_id}
            for line in self.reader.all_lines(invoice)
        ]

    def _finish(self, table: str, arrow: pa.Table) -> Any:
        """Protect the PII columns, close quarantine entries the batch repairs, and tag child tables."""
        started = time.perf_counter()
        arrow = self.context.protector.protect_table(table, arrow, PII.get(table, {}))
        self._resolve_quarantine(table, arrow)
        self._protect_seconds += time.perf_counter() - started
        stats = self.reader.stats
        self.context.notes["seconds"] = {
            "http": round(stats.seconds_in_http, 3), "parse_json": round(stats.seconds_parsing, 3),
            "protect": round(self._protect_seconds, 3), "requests": stats.requests,
            "paced": round(self.reader.pacer.seconds_waited, 3),
        }
        return self._hinted(table, arrow)

    def _hinted(self, table: str, arrow: pa.Table) -> Any:
        if table in CHILD_TABLES:
            return dlt.mark.with_hints(arrow, dlt.mark.make_hints(
                table_name=table, write_disposition="merge", primary_key=list(CHILD_TABLES[table]["primary_key"]),
            ), create_table_variant=True)
        return arrow

    def _resolve_quarantine(self, table: str, arrow: pa.Table) -> None:
        if table not in self._open_rejections:
            self._open_rejections[table] = self.warehouse.open_rejections(table)
        open_ids = self._open_rejections[table]
        if not open_ids or arrow.num_rows == 0:
            return
        repaired = [object_id for object_id in arrow.column("id").to_pylist() if object_id in open_ids]
        if repaired:
            self.context.quarantine.resolve(table, repaired)
            open_ids.difference_update(repaired)

    def _count_deleted(self, table: str, count: int) -> None:
        deleted = self.context.notes["deleted"]
        deleted[table] = deleted.get(table, 0) + count
