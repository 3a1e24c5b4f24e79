"""Bulk API 2.0 query jobs (``jobs/query``): asynchronous snapshots read back as paged CSV.

A job's query runs in a worker thread on its own SQLite connection, so polling sees ``UploadComplete``,
then ``InProgress``, then ``JobComplete``, as with the real service. Jobs live in memory: like results on
the real platform they are transient, and a restart forgets them.
"""

from __future__ import annotations

import array
import base64
import dataclasses
import logging
import threading
import time
from typing import Any

from sandboxes.salesforce.auth import ApiSession
from sandboxes.salesforce.errors import SalesforceError, not_found
from sandboxes.salesforce.query import fetch_rows, snapshot_rowids
from sandboxes.salesforce.soql import CompiledQuery, compile_soql
from sandboxes.salesforce.store import SalesforceStore
from sandboxes.salesforce.values import now_stamp

logger = logging.getLogger(__name__)

DEFAULT_MAX_RECORDS = 500_000
MIN_PROCESSING_SECONDS = 0.2
"""A floor on a job's run time, so a poll right after creation sees it in progress, as clients expect."""
DELIMITERS = {"COMMA": ",", "TAB": "\t", "SEMICOLON": ";", "PIPE": "|", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}


@dataclasses.dataclass
class BulkQueryJob:
    id: str
    operation: str
    object: str
    query: str
    compiled: CompiledQuery
    created_by: str
    created_date: str
    system_modstamp: str
    line_ending: str
    column_delimiter: str
    api_version: str
    state: str = "UploadComplete"
    rowids: array.array | None = None
    error_message: str | None = None
    started: float = dataclasses.field(default_factory=time.monotonic)
    processing_ms: int = 0

    def info(self, detailed: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created_date,
            "systemModstamp": self.system_modstamp,
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        }
        if detailed:
            body.update(
                {
                    "jobType": "V2Query",
                    "numberRecordsProcessed": len(self.rowids) if self.rowids is not None else 0,
                    "retries": 0,
                    "totalProcessingTime": self.processing_ms,
                    "isPkChunkingSupported": True,
                }
            )
            if self.error_message:
                body["errorMessage"] = self.error_message
        return body


def _locator(offset: int) -> str:
    """Salesforce's locators are opaque to clients; base64 of the next offset is what the service sends."""
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _offset(locator: str) -> int | None:
    try:
        return int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        return None


class BulkQueryJobs:
    """The org's Bulk 2.0 query jobs."""

    def __init__(self, store: SalesforceStore) -> None:
        self.store = store
        self._jobs: dict[str, BulkQueryJob] = {}
        self._lock = threading.Lock()
        self._sequence = 0
        self.jobs_created_today = 0

    def create(self, session: ApiSession, body: Any, version: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise SalesforceError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        soql = body.get("query")
        if not isinstance(soql, str) or not soql.strip():
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : Query is required for query jobs")
        line_ending = body.get("lineEnding", "LF")
        delimiter = body.get("columnDelimiter", "COMMA")
        if line_ending not in LINE_ENDINGS or delimiter not in DELIMITERS:
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : Invalid lineEnding or columnDelimiter")
        compiled = compile_soql(soql, session.permissions, include_deleted=operation == "queryAll")
        if compiled.count_only or compiled.offset:
            raise SalesforceError(
                400, "INVALIDJOB", "InvalidJob : Bulk API 2.0 does not support COUNT() or OFFSET in queries"
            )
        stamp = now_stamp()
        with self._lock:
            self._sequence += 1
            job_id = "750" + f"{self._sequence:012d}" + "AAA"
        job = BulkQueryJob(
            id=job_id,
            operation=operation,
            object=compiled.sobject.name,
            query=soql,
            compiled=compiled,
            created_by=session.user_id,
            created_date=stamp,
            system_modstamp=stamp,
            line_ending=line_ending,
            column_delimiter=delimiter,
            api_version=version,
        )
        self._jobs[job_id] = job
        self.jobs_created_today += 1
        created = job.info()
        threading.Thread(target=self._execute, args=(job,), name=f"bulk-{job_id}", daemon=True).start()
        return created

    def _execute(self, job: BulkQueryJob) -> None:
        job.state = "InProgress"
        db = self.store.reader()
        try:
            rowids = snapshot_rowids(db, job.compiled)
            remaining = MIN_PROCESSING_SECONDS - (time.monotonic() - job.started)
            if remaining > 0:
                time.sleep(remaining)
            with self._lock:
                if job.state == "Aborted":
                    return
                job.rowids = rowids
                job.state = "JobComplete"
        except Exception as exc:  # a failed job reports its error to the poller, as the real service does
            logger.exception("bulk query job %s failed", job.id)
            job.error_message = str(exc)
            job.state = "Failed"
        finally:
            db.close()
            job.processing_ms = int((time.monotonic() - job.started) * 1000)
            job.system_modstamp = now_stamp()

    def _job(self, session: ApiSession, job_id: str) -> BulkQueryJob:
        job = self._jobs.get(job_id)
        if job is None or job.created_by != session.user_id:
            raise not_found()
        return job

    def info(self, session: ApiSession, job_id: str) -> dict[str, Any]:
        return self._job(session, job_id).info(detailed=True)

    def list(self, session: ApiSession) -> dict[str, Any]:
        mine = [j.info() for j in self._jobs.values() if j.created_by == session.user_id]
        return {"done": True, "records": mine, "nextRecordsUrl": None}

    def set_state(self, session: ApiSession, job_id: str, body: Any) -> dict[str, Any]:
        job = self._job(session, job_id)
        if not isinstance(body, dict) or body.get("state") != "Aborted":
            raise SalesforceError(400, "INVALIDJOBSTATE", "Invalid state: a query job can only be set to Aborted")
        with self._lock:
            if job.state not in ("UploadComplete", "InProgress"):
                raise SalesforceError(400, "INVALIDJOBSTATE", f"Aborting already {job.state} Job not allowed")
            job.state = "Aborted"
            job.system_modstamp = now_stamp()
        return job.info()

    def delete(self, session: ApiSession, job_id: str) -> None:
        job = self._job(session, job_id)
        if job.state in ("UploadComplete", "InProgress"):
            raise SalesforceError(400, "INVALIDJOBSTATE", "Deleting a job in progress is not allowed; abort it first")
        del self._jobs[job_id]

    def results(
        self, session: ApiSession, job_id: str, max_records: str | None, locator: str | None
    ) -> tuple[bytes, dict[str, str]]:
        """One CSV page of a completed job, with the ``Sforce-Locator`` of the next page (``null`` at the end)."""
        job = self._job(session, job_id)
        if job.state != "JobComplete" or job.rowids is None:
            raise SalesforceError(400, "INVALIDJOBSTATE", f"Job is not complete; current state: {job.state}")
        try:
            page_size = int(max_records) if max_records else DEFAULT_MAX_RECORDS
        except ValueError:
            raise SalesforceError(400, "INVALIDQUERYLOCATOR", "maxRecords must be a positive integer") from None
        if page_size <= 0:
            raise SalesforceError(400, "INVALIDQUERYLOCATOR", "maxRecords must be a positive integer")
        offset = 0
        if locator and locator != "null":
            decoded = _offset(locator)
            if decoded is None or not 0 <= decoded <= len(job.rowids):
                raise SalesforceError(400, "INVALIDQUERYLOCATOR", "Invalid query locator")
            offset = decoded
        end = min(offset + page_size, len(job.rowids))
        rows = fetch_rows(self.store.db, job.compiled, job.rowids[offset:end])
        text = job.compiled.csv_text(rows, DELIMITERS[job.column_delimiter], LINE_ENDINGS[job.line_ending])
        headers = {
            "Sforce-Locator": _locator(end) if end < len(job.rowids) else "null",
            "Sforce-NumberOfRecords": str(len(rows)),
        }
        return text.encode(), headers
