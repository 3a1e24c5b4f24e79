"""The Salesforce source: every object of :data:`settings.OBJECTS` into ``raw_salesforce``, merged on ``id``.

Per object and run: ``describe`` gives the columns (and is compared with the previous run's snapshot);
``SELECT COUNT()`` of the run's filter (``SystemModstamp >= cursor - overlap``, through ``queryAll`` so
deleted rows come with ``IsDeleted = true``) picks Bulk API 2.0 or REST; pages become typed Arrow tables,
bad records go to the quarantine, PII columns are encrypted and hashed, and the new cursor (the largest
``SystemModstamp`` read) is saved in the resource state, which dlt commits with the load.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import dlt
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from dlt.extract.resource import DltResource

from pipelines.common.prefetch import prefetched
from pipelines.common.quarantine import SCHEMA as QUARANTINE_SCHEMA
from pipelines.common.quarantine import Quarantine
from pipelines.common.runner import LoadContext
from pipelines.salesforce import settings as constants
from pipelines.salesforce.client import SalesforceReader
from pipelines.salesforce.helpers import csv_columns, rest_columns, select_soql, typed_table, where_since
from pipelines.salesforce.schema import column_name, field_specs, schema_changes, snapshot, table_name
from pipelines.salesforce.window import RecentVersions, recent_state

logger = logging.getLogger(__name__)

SYSTEM = "salesforce"

_SCHEMA_CHANGE_HINTS = dlt.mark.make_hints(
    table_name=constants.SCHEMA_CHANGES_TABLE,
    write_disposition="append",
    columns={
        "id": {"data_type": "text", "nullable": False},
        "object": {"data_type": "text"},
        "field": {"data_type": "text"},
        "change": {"data_type": "text"},
        "old_type": {"data_type": "text", "nullable": True},
        "new_type": {"data_type": "text", "nullable": True},
        "detected_at": {"data_type": "timestamp", "timezone": True},
    },
)


class QuarantineRepairs:
    """Resolves the open quarantine entries of records that load cleanly.

    A page's ids are sent to the quarantine as they are when the page is small (one round trip). A large
    page's are first matched against the object's open entries, read once: sending the 10,000 ids of every
    Bulk page cost a large backfill more than a second of CPU for a quarantine that is almost always empty.
    Once this run has rejected a record of the object itself, every id is sent again, since a later page
    may hold a clean version of a record rejected earlier.
    """

    def __init__(self, quarantine: Quarantine, database_url: str, sobject: str) -> None:
        self.quarantine = quarantine
        self.database_url = database_url
        self.sobject = sobject
        self.rejected_before = self.quarantine.by_object.get(sobject, 0)
        self.open_ids: set[str] | None = None

    def loaded(self, ids: pa.Array | pa.ChunkedArray) -> None:
        """These records loaded cleanly."""
        rejected_in_this_run = self.quarantine.by_object.get(self.sobject, 0) > self.rejected_before
        if len(ids) <= constants.REST_BATCH_SIZE or rejected_in_this_run:
            self.quarantine.resolve(self.sobject, ids.to_pylist())
            return
        if self.open_ids is None:
            self.open_ids = self._open_ids()
        repaired = [record_id for record_id in ids.to_pylist() if record_id in self.open_ids] if self.open_ids else []
        if repaired:
            self.quarantine.resolve(self.sobject, repaired)
            self.open_ids.difference_update(repaired)

    def _open_ids(self) -> set[str]:
        with psycopg.connect(self.database_url) as conn:
            return {row[0] for row in conn.execute(
                f"select distinct record_id from {QUARANTINE_SCHEMA}.records where source = %s and object = %s"
                " and resolved_at is null and record_id is not null",
                (SYSTEM, self.sobject),
            )}


def _parse_cursor(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _object_rows(
    reader: SalesforceReader, context: LoadContext, sobject: str, bulk_threshold: int
) -> Iterator[Any]:
    """The pages of one object for this run, then the new cursor into the resource state."""
    try:
        yield from _read_object(reader, context, sobject, bulk_threshold)
    finally:
        reader.release()


def _read_object(
    reader: SalesforceReader, context: LoadContext, sobject: str, bulk_threshold: int
) -> Iterator[Any]:
    resource = table_name(sobject)
    state = dlt.current.resource_state(resource)
    notes = context.notes

    specs = field_specs(reader.describe(sobject))
    current = snapshot(specs)
    detected_at = dt.datetime.now(dt.UTC)
    changes = schema_changes(sobject, state.get("describe"), current, detected_at)
    reported = [c for c in changes if c["change"] != "added"]
    if changes:
        notes.setdefault("schema_changes", []).extend(
            {k: c[k] for k in ("object", "field", "change", "old_type", "new_type")} for c in changes
        )
        for change in reported:
            logger.warning(
                "salesforce: %s.%s %s (%s -> %s); the old column is kept",
                sobject, change["field"], change["change"], change["old_type"], change["new_type"],
            )
        yield dlt.mark.with_hints(changes, _SCHEMA_CHANGE_HINTS, create_table_variant=True)

    cursor = _parse_cursor(state.get("cursor"))
    since = None if cursor is None or context.full_refresh else cursor - constants.OVERLAP
    if since is not None and any(c["change"] == "added" for c in changes):
        # A field became visible: re-read the object so existing rows get its values, not only new changes.
        since = None
        notes.setdefault("resynced", []).append(sobject)
    where = where_since(constants.CURSOR_FIELD, since)
    soql = select_soql(sobject, specs, where)
    first_page = None
    if since is None:
        matching = reader.count(sobject, where)  # a whole object: its size picks the API before anything is read
    else:
        # An increment is usually small: its first REST page is the count (``totalSize``) and, most of the
        # time, all there is; only a large one is read again through Bulk.
        first_page = reader.rest_first_page(sobject, soql)
        matching = int(first_page["totalSize"])
    use_bulk = matching >= bulk_threshold and matching > 0
    notes.setdefault("api", {})[sobject] = "bulk" if use_bulk else "rest"
    notes.setdefault("matching", {})[sobject] = matching

    # Bulk result pages are read one ahead: Salesforce prepares the next page while this one converts.
    pages = (
        (csv_columns(page, specs) for page in prefetched(reader.bulk_pages(sobject, soql), 1, "salesforce-bulk"))
        if use_bulk
        else (rest_columns(records, specs) for records in reader.rest_pages(sobject, soql, first_page))
        if matching
        else iter(())
    )
    pii = {column_name(field): kind for field, kind in constants.PII_FIELDS.get(sobject, {}).items()}
    previous_versions = None if context.full_refresh else recent_state(state.get("recent"))
    versions = RecentVersions(previous_versions, constants.OVERLAP, constants.RECENT_VERSIONS_CAP)
    skip_unchanged = since is not None
    cursor_column = column_name(constants.CURSOR_FIELD)
    newest = cursor
    deleted = 0
    extracted_at = dt.datetime.now(dt.UTC)
    repairs = QuarantineRepairs(context.quarantine, context.database_url, sobject)
    for columns in pages:
        if not columns or not len(next(iter(columns.values()))):
            continue
        table = typed_table(sobject, columns, specs, context.quarantine, extracted_at)
        if not table.num_rows:
            continue
        repairs.loaded(table.column("id"))
        table = versions.unchanged_dropped(table, cursor_column, skip=skip_unchanged)
        if not table.num_rows:
            continue
        page_newest = pc.max(table.column(cursor_column)).as_py()
        if page_newest is not None and (newest is None or page_newest > newest):
            newest = page_newest
        deleted += int(pc.sum(table.column("is_deleted")).as_py() or 0)
        yield context.protector.protect_table(resource, table, pii)

    notes.setdefault("deleted_seen", {})[sobject] = deleted
    notes["api_calls"], notes["http_seconds"] = reader.calls, round(reader.http_seconds, 3)
    notes["token_refreshes"] = reader.token_refreshes
    notes["describes_not_modified"] = reader.describes_not_modified
    if versions.skipped:
        notes.setdefault("unchanged_rereads_skipped", {})[sobject] = versions.skipped
    state["recent"] = versions.state(previous_versions)
    state["describe"] = current
    if newest is not None:
        state["cursor"] = newest.isoformat()


@dlt.source(name=SYSTEM)
def salesforce_source(
    context: LoadContext,
    objects: Sequence[str] = constants.OBJECTS,
    bulk_threshold: int = constants.BULK_THRESHOLD,
) -> Iterator[DltResource]:
    """One merge resource per sObject (table = dlt's snake_case of its name, key ``id``).

    Args:
        context: the load's context (settings, quarantine, PII protector, notes for the summary).
        objects: the sObjects to load (default: all of :data:`settings.OBJECTS`).
        bulk_threshold: matching records from which Bulk API 2.0 is used instead of REST.
    """
    reader = SalesforceReader(context.settings.salesforce, context.database_url, context.protector.cipher)
    reader.acquire(len(objects))
    for sobject in objects:
        yield dlt.resource(
            _object_rows,
            name=table_name(sobject),
            write_disposition="merge",
            primary_key="id",
            # Newest version wins when a page holds a record twice; re-reads across runs replace by key.
            columns={column_name(constants.CURSOR_FIELD): {"dedup_sort": "desc"}},
            # The objects are read side by side (dlt's extract pool): an increment is a handful of short
            # queries, each mostly waiting on the network, and a load waits for their longest, not their sum.
            parallelized=True,
        )(reader, context, sobject, bulk_threshold)

