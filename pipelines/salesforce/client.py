"""Salesforce calls for the source: describe, counts, REST query pages and Bulk API 2.0 result pages.

Every call goes through simple-salesforce over a session that trusts only the configured CA, and through
one policy: transient failures (5xx, timeouts, dropped connections, ``REQUEST_LIMIT_EXCEEDED`` and 429
with ``Retry-After``, ``UNABLE_TO_LOCK_ROW``) are retried with backoff and jitter; ``INVALID_SESSION_ID``
refreshes the token once and repeats the call; anything else (a malformed query, a missing object) fails
the run at once.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from pipelines.common.retry import retrying
from pipelines.salesforce import settings as constants
from revloop.connectors.salesforce import SalesforceAuthError, SharedTokens, client_for
from revloop.crypto import FieldCipher
from revloop.http import PinnedCAAdapter
from revloop.settings import SalesforceSettings
from revloop.token_store import IssuedToken

logger = logging.getLogger(__name__)

T = TypeVar("T")

_TRANSIENT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})
_RETRY_AFTER_STATUSES = frozenset({403, 429, 503})


def error_code(exc: SalesforceError) -> str | None:
    """The ``errorCode`` of a Salesforce error body (``[{"message", "errorCode", "fields"}]``)."""
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("errorCode")
    if isinstance(content, dict):
        return content.get("errorCode") or content.get("exceptionCode")
    return None


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the same request may well succeed in a moment."""
    if isinstance(exc, requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError):
        return True
    if isinstance(exc, SalesforceRefusedRequest | SalesforceMalformedRequest):
        return error_code(exc) in _TRANSIENT_CODES
    if isinstance(exc, SalesforceGeneralError):
        return exc.status >= 500 or exc.status == 429
    if isinstance(exc, SalesforceAuthError):  # the token endpoint, busy or down
        return exc.transient
    return False


class _TimeoutAdapter(PinnedCAAdapter):
    """The pinned-CA adapter with a default timeout: simple-salesforce sets none, and a hung socket must
    become a retried failure rather than a stuck load."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = constants.HTTP_TIMEOUT_SECONDS
        return super().send(request, **kwargs)


def _http_session(base_url: str, ca_file: Any) -> requests.Session:
    session = requests.Session()
    if ca_file is not None:
        session.mount(base_url.rstrip("/") + "/", _TimeoutAdapter(ca_file, pool_connections=2, pool_maxsize=8))
        session.verify = str(ca_file)
    return session


def _query_more(sf: Salesforce, url: str, headers: dict[str, str]) -> Any:
    return sf.query_more(url, identifier_is_url=True, headers=headers)


DESCRIBE_MAX_AGE = dt.timedelta(minutes=5)
_REST_QUERY_OPTIONS = {"Sforce-Query-Options": f"batchSize={constants.REST_BATCH_SIZE}"}
_DESCRIBES: dict[tuple[str, str | None, str], tuple[dt.datetime, dict[str, Any]]] = {}
_DESCRIBES_LOCK = threading.Lock()


class SalesforceReader:
    """An authenticated, retrying reader of one org.

    Attributes:
        http_seconds: time spent waiting for Salesforce (for the benchmark's breakdown).
        calls: API calls made.
    """

    def __init__(self, settings: SalesforceSettings, database_url: str, cipher: FieldCipher) -> None:
        if not settings.instance_url:
            raise ValueError("REVLOOP_SALESFORCE_INSTANCE_URL is not set")
        self.settings = settings
        self.http = _http_session(settings.instance_url, settings.ca_file)
        self._retry_after = threading.local()
        self.http.hooks["response"].append(self._note_retry_after)
        self.tokens = SharedTokens(settings, database_url, cipher, session=self.http)
        self.sf: Salesforce = client_for(self._token(self.tokens.current), settings, self.http)
        self.http_seconds = 0.0
        self.calls = 0
        self.token_refreshes = 0
        self.describes_not_modified = 0
        self._users = 0
        self._counts_lock = threading.Lock()
        self._refresh_lock = threading.Lock()

    def acquire(self, users: int = 1) -> None:
        """Count ``users`` (the source's resources) that share this reader."""
        with self._counts_lock:
            self._users += users

    def release(self) -> None:
        """One user is done; the last one closes the connections (kept-alive sockets would otherwise
        linger until the process exits)."""
        with self._counts_lock:
            self._users -= 1
            last = self._users <= 0
        if last:
            self.http.close()

    # ---- the call policy ----------------------------------------------------------------------------

    def _note_retry_after(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Keep the server's ``Retry-After`` of a refused response: simple-salesforce's errors drop headers."""
        if response.status_code in _RETRY_AFTER_STATUSES and "Retry-After" in response.headers:
            try:
                self._retry_after.seconds = float(response.headers["Retry-After"])
            except ValueError:
                self._retry_after.seconds = None

    def _token(self, get: Callable[[], IssuedToken]) -> IssuedToken:
        """A token from the shared store, retrying while the token endpoint is unavailable."""
        for attempt in retrying(is_transient, self._asked_wait, what="salesforce token request"):
            with attempt:
                return get()
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _asked_wait(self, exc: BaseException) -> float | None:
        if not isinstance(exc, SalesforceError | SalesforceAuthError):
            return None
        seconds = getattr(self._retry_after, "seconds", None)
        self._retry_after.seconds = None
        return seconds

    def call(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        """``fn(client)`` under the retry policy, refreshing the token once on ``INVALID_SESSION_ID``."""

        def once() -> T:
            started = time.perf_counter()
            client = self.sf
            try:
                self._count(calls=1)
                try:
                    return fn(client)
                except SalesforceExpiredSession:
                    return fn(self._refreshed(client, what))
            finally:
                self._count(http_seconds=time.perf_counter() - started)

        for attempt in retrying(is_transient, self._asked_wait, what=f"salesforce {what}"):
            with attempt:
                return once()
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _refreshed(self, rejected: Salesforce, what: str) -> Salesforce:
        """A client with a new token in place of ``rejected``'s; the objects read side by side share one
        refresh (a second thread finding the client already replaced uses the new one)."""
        with self._refresh_lock:
            if self.sf is rejected:
                logger.info("salesforce: session expired during %s; refreshing the token", what)
                session_id = rejected.session_id
                token = self._token(lambda: self.tokens.replace(session_id))
                self.sf = client_for(token, self.settings, self.http)
                self._count(token_refreshes=1)
            self._count(calls=1)
            return self.sf

    def _count(self, *, calls: int = 0, http_seconds: float = 0.0, token_refreshes: int = 0,
               describes_not_modified: int = 0) -> None:
        with self._counts_lock:
            self.calls += calls
            self.http_seconds += http_seconds
            self.token_refreshes += token_refreshes
            self.describes_not_modified += describes_not_modified

    # ---- reads ------------------------------------------------------------------------------------

    def describe(self, sobject: str) -> dict[str, Any]:
        """``sobjects/<sobject>/describe`` as the integration user sees it.

        A process keeps the describes it read (per org, user and object) and asks again with
        ``If-Modified-Since``: Salesforce answers ``304 Not Modified`` without a body while the object's
        metadata is unchanged, so a warm process's frequent small loads pay one short call per object, and a
        new or removed field still shows on the next load.
        """
        key = (self.settings.instance_url or "", self.tokens.client_id, sobject)
        with _DESCRIBES_LOCK:
            cached = _DESCRIBES.get(key)
        if cached is not None and dt.datetime.now(dt.UTC) - cached[0] > DESCRIBE_MAX_AGE:
            # whatever the server counts as a metadata change (a user's field access may not count), a copy
            # is read again in full after a while
            cached = None
        # one second earlier than the copy was read: HTTP dates have whole seconds, a change in the same
        # second as the read must still count as newer
        asked_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        headers = {"If-Modified-Since": email.utils.format_datetime(cached[0], usegmt=True)} if cached else None

        def read(sf: Salesforce) -> dict[str, Any] | None:
            try:
                return getattr(sf, sobject).describe(headers=headers)
            except SalesforceGeneralError as exc:
                if cached is not None and exc.status == 304:
                    return None
                raise

        found = self.call(f"describe {sobject}", read)
        if found is None and cached is not None:
            self._count(describes_not_modified=1)
            return cached[1]
        assert found is not None
        with _DESCRIBES_LOCK:
            _DESCRIBES[key] = (asked_at, found)
        return found

    def count(self, sobject: str, where: str) -> int:
        """``SELECT COUNT()`` through ``queryAll`` (deleted rows included, as the load reads them)."""
        soql = f"SELECT COUNT() FROM {sobject}{where}"
        return int(self.call(f"count {sobject}", lambda sf: sf.query(soql, include_deleted=True))["totalSize"])

    def rest_first_page(self, sobject: str, soql: str) -> dict[str, Any]:
        """The first page of a ``queryAll`` (REST); its ``totalSize`` counts every matching record."""
        return self.call(f"query {sobject}",
                         lambda sf: sf.query(soql, include_deleted=True, headers=_REST_QUERY_OPTIONS))

    def rest_pages(self, sobject: str, soql: str,
                   first: dict[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Record batches of a ``queryAll`` (REST), following ``nextRecordsUrl``; each page call is retried.

        ``first``: the query's first page when it was already read (:meth:`rest_first_page`).
        """
        options = _REST_QUERY_OPTIONS
        page = first if first is not None else self.rest_first_page(sobject, soql)
        while True:
            yield page["records"]
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = self.call(f"query {sobject} (more)", functools.partial(_query_more, url=next_url, headers=options))

    def bulk_pages(self, sobject: str, soql: str) -> Iterator[bytes]:
        """CSV pages of a Bulk API 2.0 ``queryAll`` job: create, wait, then page by ``Sforce-Locator``.

        A page is fetched again by the same locator after a transient failure, so a retry re-reads one
        page, not the job. The job is deleted once read (results otherwise stay on the server for days).
        """
        def bulk(sf: Salesforce) -> Any:
            return getattr(sf.bulk2, sobject)._client  # the per-call layer, so each step can be retried

        job = self.call(f"bulk create {sobject}", lambda sf: bulk(sf).create_job("queryAll", soql))
        job_id = job["id"]
        self.call(
            f"bulk wait {sobject}", lambda sf: bulk(sf).wait_for_job(job_id, True, constants.BULK_POLL_SECONDS)
        )
        locator = ""
        while True:
            at = locator
            result = self.call(
                f"bulk results {sobject}",
                lambda sf: bulk(sf).get_query_results(job_id, at, constants.BULK_PAGE_RECORDS),  # noqa: B023
            )
            yield result["records"].encode()
            locator = result["locator"]
            if not locator:
                break
        try:
            self.call(f"bulk delete {sobject}", lambda sf: bulk(sf).delete_job(job_id, True))
        except ValueError:
            pass  # deleted: simple-salesforce tries to parse the 204's empty body as JSON
        except (SalesforceError, requests.RequestException) as exc:
            # Housekeeping only: the data is read, and Salesforce drops job results after a few days anyway.
            logger.warning("salesforce: could not delete bulk job %s: %s", job_id, exc)
