"""The REST API's resources under ``/services/data/vNN.N/``: routing table and handlers.

Each handler receives the authenticated :class:`ApiSession`; authentication, the API budget and the
``Sforce-Limit-Info`` header are applied once, by the caller, for every resource.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sandboxes.common.app import json_response
from sandboxes.salesforce.auth import ApiSession
from sandboxes.salesforce.bulk import BulkQueryJobs
from sandboxes.salesforce.composite import CollectionService
from sandboxes.salesforce.describe import basic_info, describe, describe_global, not_modified_since
from sandboxes.salesforce.errors import SalesforceError, not_found
from sandboxes.salesforce.query import QueryCursors, batch_size_from
from sandboxes.salesforce.records import MultipleMatches, RecordService, require_readable
from sandboxes.salesforce.schema import sobject
from sandboxes.salesforce.soql import compile_soql
from sandboxes.salesforce.store import DELETED_AT, SalesforceStore
from sandboxes.salesforce.values import format_datetime, parse_datetime

MAX_REPLICATION_IDS = 600_000
REPLICATION_WINDOW = dt.timedelta(days=30)

Handler = Callable[[Request, ApiSession, str, dict[str, str]], Awaitable[Response]]


@dataclasses.dataclass
class Limits:
    """Daily allocations reported by ``limits`` (the API budget itself is kept by the backend)."""

    api_max: int
    api_used: int
    bulk_jobs_created: int

    def body(self) -> dict[str, Any]:
        def allocation(maximum: int, used: int = 0) -> dict[str, int]:
            return {"Max": maximum, "Remaining": max(0, maximum - used)}

        return {
            "ConcurrentAsyncGetReportInstances": allocation(200),
            "DailyApiRequests": allocation(self.api_max, self.api_used),
            "DailyAsyncApexExecutions": allocation(250_000),
            "DailyBulkApiBatches": allocation(15_000),
            "DailyBulkV2QueryFileStorageMB": allocation(1_000_000),
            "DailyBulkV2QueryJobs": allocation(10_000, self.bulk_jobs_created),
            "DataStorageMB": allocation(1_024),
            "FileStorageMB": allocation(1_024),
            "HourlyODataCallout": allocation(10_000),
        }


async def json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as exc:
        line = raw[: exc.pos].count(b"\n") + 1
        column = exc.pos - (raw.rfind(b"\n", 0, exc.pos) + 1) + 1
        bad = raw[exc.pos : exc.pos + 1].decode(errors="replace") or "EOF"
        raise SalesforceError(
            400,
            "JSON_PARSER_ERROR",
            f"Unexpected character ('{bad}'): expected a valid value (JSON String, Number, Array, Object or token "
            f"'null', 'true' or 'false') at [line:{line}, column:{column}]",
        ) from None


class RestApi:
    """Routes a path below ``/services/data/vNN.N/`` to its handler."""

    def __init__(self, store: SalesforceStore, limits: Callable[[], Limits], bulk: BulkQueryJobs) -> None:
        self.store = store
        self.records = RecordService(store)
        self.collections = CollectionService(self.records)
        self.cursors = QueryCursors(store.db)
        self.bulk = bulk
        self.limits = limits
        object_pattern = r"(?P<object>[A-Za-z][A-Za-z0-9_]*)"
        self._table: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (r"", {"GET": self.resources}),
            (r"limits", {"GET": self.get_limits}),
            (r"sobjects", {"GET": self.get_describe_global}),
            (rf"sobjects/{object_pattern}", {"GET": self.get_basic_info, "POST": self.create}),
            (rf"sobjects/{object_pattern}/describe", {"GET": self.get_describe}),
            (rf"sobjects/{object_pattern}/updated", {"GET": self.get_updated}),
            (rf"sobjects/{object_pattern}/deleted", {"GET": self.get_deleted}),
            (
                rf"sobjects/{object_pattern}/(?P<id>[^/]+)",
                {"GET": self.get_record, "PATCH": self.update, "DELETE": self.delete},
            ),
            (
                rf"sobjects/{object_pattern}/(?P<field>[A-Za-z0-9_]+)/(?P<value>.+)",
                {"GET": self.get_by_external_id, "PATCH": self.upsert, "DELETE": self.delete_by_external_id},
            ),
            (r"(?P<endpoint>query|queryAll)", {"GET": self.query}),
            (r"(?P<endpoint>query|queryAll)/(?P<locator>[^/]+)", {"GET": self.query_more}),
            (
                r"composite/sobjects",
                {"POST": self.collection_create, "PATCH": self.collection_update, "DELETE": self.collection_delete},
            ),
            (rf"composite/sobjects/{object_pattern}/(?P<field>[A-Za-z0-9_]+)", {"PATCH": self.collection_upsert}),
            (r"jobs/query", {"GET": self.bulk_list, "POST": self.bulk_create}),
            (
                r"jobs/query/(?P<job>[A-Za-z0-9]+)",
                {"GET": self.bulk_info, "PATCH": self.bulk_state, "DELETE": self.bulk_delete},
            ),
            (r"jobs/query/(?P<job>[A-Za-z0-9]+)/results", {"GET": self.bulk_results}),
        ]  # type: ignore[assignment]
        self._table = [(re.compile(f"^{pattern}$"), methods) for pattern, methods in self._table]  # type: ignore[misc]

    async def dispatch(self, request: Request, session: ApiSession, version: str, path: str) -> Response:
        for pattern, methods in self._table:
            match = pattern.match(path)
            if match is None:
                continue
            handler = methods.get(request.method)
            if handler is None:
                allowed = ",".join(sorted(methods))
                raise SalesforceError(
                    405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}"
                )
            return await handler(request, session, version, match.groupdict())
        raise not_found()

    # ---- org -----------------------------------------------------------------------------------------

    async def resources(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        base = f"/services/data/v{version}"
        names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs")
        return json_response({name: f"{base}/{name}" for name in names})

    async def get_limits(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        return json_response(self.limits().body())

    # ---- describe ------------------------------------------------------------------------------------

    async def get_describe_global(
        self, request: Request, session: ApiSession, version: str, args: dict[str, str]
    ) -> Response:
        return json_response(describe_global(session.permissions, version))

    async def get_basic_info(
        self, request: Request, session: ApiSession, version: str, args: dict[str, str]
    ) -> Response:
        target = require_readable(session, sobject(args["object"]))
        return json_response(basic_info(target, session.permissions, version))

    async def get_describe(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        target = require_readable(session, sobject(args["object"]))
        if not_modified_since(request.headers.get("if-modified-since")):
            # Salesforce's answer for metadata unchanged since that date: no body, so a client keeps its copy
            return Response(status_code=304)
        return json_response(describe(target, session.permissions, version))

    # ---- records -------------------------------------------------------------------------------------

    async def create(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        target = require_readable(session, sobject(args["object"]))
        body = await json_body(request)
        with self.store.transaction():
            record_id = self.records.create(session, target, body)
        return json_response({"id": record_id, "success": True, "errors": []}, status_code=201)

    async def get_record(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        target = require_readable(session, sobject(args["object"]))
        fields = request.query_params.get("fields")
        record = self.records.retrieve(session, target, args["id"], version, fields.split(",") if fields else None)
        return json_response(record)

    async def update(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        target = require_readable(session, sobject(args["object"]))
        body = await json_body(request)
        with self.store.transaction():
            self.records.update(session, target, args["id"], body)
        return Response(status_code=204)

    async def delete(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        target = require_readable(session, sobject(args["object"]))
        with self.store.transaction():
            self.records.delete(session, target, args["id"])
        return Response(status_code=204)

    async def upsert(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        target = require_readable(session, sobject(args["object"]))
        body = await json_body(request)
        update_only = request.query_params.get("updateOnly", "false").lower() == "true"
        try:
            with self.store.transaction():
                outcome = self.records.upsert(session, target, args["field"], args["value"], body, update_only)
        except MultipleMatches as exc:
            return self._multiple_choices(exc, version)
        return json_response(
            {"id": outcome.record_id, "success": True, "errors": [], "created": outcome.created},
            status_code=201 if outcome.created else 200,
        )

    async def get_by_external_id(
        self, request: Request, session: ApiSession, version: str, args: dict[str, str]
    ) -> Response:
        target = require_readable(session, sobject(args["object"]))
        try:
            record_id = self.records.find_by_external_id(session, target, args["field"], args["value"])
        except MultipleMatches as exc:
            return self._multiple_choices(exc, version)
        fields = request.query_params.get("fields")
        return json_response(
            self.records.retrieve(session, target, record_id, version, fields.split(",") if fields else None)
        )

    async def delete_by_external_id(
        self, request: Request, session: ApiSession, version: str, args: dict[str, str]
    ) -> Response:
        target = require_readable(session, sobject(args["object"]))
        try:
            record_id = self.records.find_by_external_id(session, target, args["field"], args["value"])
        except MultipleMatches as exc:
            return self._multiple_choices(exc, version)
        with self.store.transaction():
            self.records.delete(session, target, record_id)
        return Response(status_code=204)

    @staticmethod
    def _multiple_choices(exc: MultipleMatches, version: str) -> Response:
        urls = [f"/services/data/v{version}/sobjects/{exc.sobject.name}/{record_id}" for record_id in exc.ids]
        return json_response(urls, status_code=300)

    # ---- replication -----------------------------------------------------------------------------------

    def _replication_window(self, request: Request) -> tuple[str, str]:
        bounds = []
        for name in ("start", "end"):
            text = request.query_params.get(name)
            if not text:
                raise SalesforceError(400, "MISSING_ARGUMENT", f"{name} parameter is required")
            # An unencoded "+" in the zone arrives as a space.
            moment = parse_datetime(text.replace(" ", "+"))
            if moment is None:
                raise SalesforceError(400, "INVALID_REPLICATION_DATE", f"invalid {name} date: {text}")
            bounds.append(moment.replace(second=0, microsecond=0))
        start, end = bounds
        now = dt.datetime.now(dt.UTC)
        if start >= end:
            raise SalesforceError(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate")
        if start < now - REPLICATION_WINDOW:
            raise SalesforceError(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago")
        # Salesforce ignores seconds in the parameters; coverage cannot go past the present moment.
        end = min(end, now)
        return format_datetime(start), format_datetime(end)

    async def get_updated(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        target = require_readable(session, sobject(args["object"]))
        start, end = self._replication_window(request)
        ids = [
            row[0]
            for row in self.store.db.execute(
                f'SELECT "Id" FROM "{target.name}" WHERE "IsDeleted" = 0 '
                'AND "SystemModstamp" >= ? AND "SystemModstamp" < ? '
                f"ORDER BY _rowid LIMIT {MAX_REPLICATION_IDS + 1}",
                (start, end),
            )
        ]
        if len(ids) > MAX_REPLICATION_IDS:
            raise SalesforceError(400, "EXCEEDED_ID_LIMIT", "The number of ids exceeds the limit of 600,000")
        return json_response({"ids": ids, "latestDateCovered": end})

    async def get_deleted(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        target = require_readable(session, sobject(args["object"]))
        start, end = self._replication_window(request)
        rows = self.store.db.execute(
            f'SELECT "Id", {DELETED_AT} FROM "{target.name}" WHERE "IsDeleted" = 1 AND {DELETED_AT} >= ? '
            f"AND {DELETED_AT} < ? ORDER BY {DELETED_AT}",
            (start, end),
        ).fetchall()
        earliest = self.store.db.execute(f'SELECT MIN({DELETED_AT}) FROM "{target.name}"').fetchone()[0]
        return json_response(
            {
                "deletedRecords": [{"id": record_id, "deletedDate": deleted} for record_id, deleted in rows],
                "earliestDateAvailable": earliest or start,
                "latestDateCovered": end,
            }
        )

    # ---- SOQL ------------------------------------------------------------------------------------------

    async def query(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        soql = request.query_params.get("q")
        if soql is None:
            raise SalesforceError(400, "MALFORMED_QUERY", "A query string must be provided in the q parameter")
        include_deleted = args["endpoint"] == "queryAll"
        compiled = compile_soql(soql, session.permissions, include_deleted)
        batch_size = batch_size_from(request.headers.get("sforce-query-options"))
        return json_response(self.cursors.run(compiled, session.user_id, batch_size, version, args["endpoint"]))

    async def query_more(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        return json_response(self.cursors.more(args["locator"], session.user_id, version))

    # ---- sObject Collections -------------------------------------------------------------------------

    async def collection_create(
        self, request: Request, session: ApiSession, version: str, args: dict[str, str]
    ) -> Response:
        return json_response(self.collections.create(session, await json_body(request)))

    async def collection_update(
        self, request: Request, session: ApiSession, version: str, args: dict[str, str]
    ) -> Response:
        return json_response(self.collections.update(session, await json_body(request)))

    async def collection_delete(
        self, request: Request, session: ApiSession, version: str, args: dict[str, str]
    ) -> Response:
        params = request.query_params
        return json_response(self.collections.delete(session, params.get("ids"), params.get("allOrNone")))

    async def collection_upsert(
        self, request: Request, session: ApiSession, version: str, args: dict[str, str]
    ) -> Response:
        body = await json_body(request)
        return json_response(self.collections.upsert(session, args["object"], args["field"], body))

    # ---- Bulk API 2.0 query --------------------------------------------------------------------------

    async def bulk_create(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        return json_response(self.bulk.create(session, await json_body(request), version))

    async def bulk_list(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        return json_response(self.bulk.list(session))

    async def bulk_info(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        return json_response(self.bulk.info(session, args["job"]))

    async def bulk_state(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        return json_response(self.bulk.set_state(session, args["job"], await json_body(request)))

    async def bulk_delete(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        self.bulk.delete(session, args["job"])
        return Response(status_code=204)

    async def bulk_results(self, request: Request, session: ApiSession, version: str, args: dict[str, str]) -> Response:
        params = request.query_params
        content, headers = self.bulk.results(session, args["job"], params.get("maxRecords"), params.get("locator"))
        return Response(content, headers=headers, media_type="text/csv")
