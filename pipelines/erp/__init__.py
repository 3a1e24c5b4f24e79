"""The ERP source (Odoo): customers, products, invoices and their lines, payments, into ``raw_erp``.

One merge resource per model (see ``settings.MODELS``), read with the read-only API key over JSON-2.
Incremental by ``write_date`` with an overlap window; deletions noticed by comparing ids (see
``deletions``); the cursor and the overlap window's digests live in dlt's state, which dlt keeps in the
warehouse with the load, so any machine resumes from where the last committed load ended.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from typing import Any

import dlt
import pyarrow as pa

from pipelines.common.prefetch import prefetched
from pipelines.common.runner import LoadContext, dataset_for
from pipelines.erp import settings as erp
from pipelines.erp.deletions import LiveRows, Warehouse, compare_ids, waiting_in_quarantine
from pipelines.erp.helpers import ErpReader, RecentWindow, SharedClient, shift
from pipelines.erp.tables import PageConverter

logger = logging.getLogger(__name__)

__all__ = ["erp_source"]


@dlt.source(name="erp", max_table_nesting=0)
def erp_source(context: LoadContext) -> Any:
    """The ERP's raw tables; build a fresh source for every run."""
    context.notes.setdefault("api", "odoo json-2 (read-only key)")
    client = SharedClient(context.settings.erp, users=len(erp.MODELS))
    return [_model_resource(spec, context, client) for spec in erp.MODELS]


def _model_resource(spec: erp.ModelSpec, context: LoadContext, client: SharedClient) -> Any:
    @dlt.resource(
        name=spec.table,
        write_disposition="merge",
        primary_key="id",
        # A record read twice in one run (written again while the run read it) keeps its latest version.
        columns={"_revloop_extracted_at": {"data_type": "timestamp", "dedup_sort": "desc"}},
    )
    def records() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        with ErpReader(context.settings.erp, client) as reader, \
                Warehouse(context.database_url, dataset_for(context.system)) as warehouse:
            fields, schema_notes = reader.available_fields(spec)
            if schema_notes:
                context.notes.setdefault("schema_changes", []).extend(schema_notes)
            converter = PageConverter(spec, fields, context.protector, context.quarantine,
                                      warehouse.open_rejections(spec.model))
            loaded_before = bool(warehouse.columns(spec.table)) and not context.full_refresh
            if spec.incremental:
                yield from _incremental(spec, reader, warehouse, converter, state, context, loaded_before)
            else:
                yield from _whole(spec, reader, warehouse, converter, context, loaded_before)
            _count(context, "api_calls", spec.table, reader.calls)
            _add_seconds(context, "http", reader.seconds)
            _add_seconds(context, "convert_and_protect", converter.seconds)

    return records


def _incremental(spec: erp.ModelSpec, reader: ErpReader, warehouse: Warehouse, converter: PageConverter,
                 state: dict[str, Any], context: LoadContext, loaded_before: bool) -> Iterator[pa.Table]:
    domain = list(spec.domain)
    cursor: str | None = None if context.full_refresh else state.get("cursor")
    checking = loaded_before and cursor is not None
    live = LiveRows(state.get(LiveRows.STATE_KEY) if checking else None,
                    lambda: warehouse.live_extent(spec.table) if loaded_before else (0, 0),
                    time.time(), erp.LIVE_ROWS_RECOUNT.total_seconds())
    if checking:
        yield from _deletions_and_gaps(spec, reader, warehouse, converter, context, domain, live)
    since = shift(cursor, -erp.OVERLAP) if cursor else None
    window = RecentWindow(None if context.full_refresh else state.get("recent"), erp.OVERLAP, erp.RECENT_IDS_CAP)
    for page in prefetched(reader.changed_since(spec.model, domain, converter.field_names, since), 2, "erp-pages"):
        table = converter.convert(window.unchanged(page))
        if table is not None:
            live.loaded(table)
            yield table
    if window.skipped:
        _count(context, "unchanged_rereads_skipped", spec.table, window.skipped)
    if live.counted_now and checking:
        _count(context, "live_rows_counted", spec.table, live.count)
    state["cursor"] = max(filter(None, (cursor, window.newest)), default=None)
    state["recent"] = window.state()
    state[LiveRows.STATE_KEY] = live.state()


def _whole(spec: erp.ModelSpec, reader: ErpReader, warehouse: Warehouse, converter: PageConverter,
           context: LoadContext, loaded_before: bool) -> Iterator[pa.Table]:
    """A small model read whole: whatever the warehouse has and the ERP no longer has was deleted."""
    seen: set[int] = set()
    for page in reader.changed_since(spec.model, list(spec.domain), converter.field_names, None):
        seen.update(r["id"] for r in page if isinstance(r.get("id"), int))
        table = converter.convert(page)
        if table is not None:
            yield table
    if loaded_before:
        gone = sorted(warehouse.live_ids(spec.table) - seen)
        if gone:
            yield _deleted(spec, warehouse, converter, context, gone)


def _deletions_and_gaps(spec: erp.ModelSpec, reader: ErpReader, warehouse: Warehouse, converter: PageConverter,
                        context: LoadContext, domain: list[Any], live: LiveRows) -> Iterator[pa.Table]:
    max_id = live.up_to
    if max_id == 0:
        return
    waiting = waiting_in_quarantine(warehouse, spec.table, max_id, converter.open_rejections)
    live.also_new(waiting)  # counted as loaded at last if this run reads a clean version of them
    erp_count = reader.search_count(spec.model, [*domain, ("id", "<=", max_id)])
    difference = compare_ids(
        warehouse, spec.table, max_id, live.count, erp_count, lambda: reader.ids(spec.model, domain, max_id),
        waiting,
    )
    if difference is None:
        return
    live.recount()
    logger.info("ERP %s: %d deleted, %d never loaded (ids up to %d compared)", spec.model,
                len(difference.deleted), len(difference.missing), max_id)
    if difference.deleted:
        yield _deleted(spec, warehouse, converter, context, difference.deleted)
    if difference.missing:
        _count(context, "missed_records_recovered", spec.table, len(difference.missing))
        for page in reader.read_ids(spec.model, converter.field_names, difference.missing):
            table = converter.convert(page)
            if table is not None:
                yield table


def _deleted(spec: erp.ModelSpec, warehouse: Warehouse, converter: PageConverter, context: LoadContext,
             ids: list[int]) -> pa.Table:
    _count(context, "deleted", spec.table, len(ids))
    rows = warehouse.last_known_rows(spec.table, ids, converter.schema)
    return converter.deleted(rows, dt.datetime.now(dt.UTC))


def _count(context: LoadContext, note: str, table: str, value: int) -> None:
    counts = context.notes.setdefault(note, {})
    counts[table] = counts.get(table, 0) + value


def _add_seconds(context: LoadContext, what: str, seconds: float) -> None:
    timings = context.notes.setdefault("seconds", {})
    timings[what] = round(timings.get(what, 0.0) + seconds, 3)
