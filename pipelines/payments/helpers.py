"""Reading the payments API: raw pages through the ``stripe`` SDK, retried, parsed with orjson.

The SDK still makes every call (authentication, headers, its own network retries on 5xx, 409 and
``Stripe-Should-Retry``), but the body is parsed once with orjson instead of being turned into
``StripeObject`` trees: measured on list pages of 100 invoices, that is several times faster
(see docs/ingestion/payments.md). Errors are raised as the SDK's own exceptions.

Responses are requested as streams, as the SDK does for file downloads, and read whole at once: the SDK
formats every buffered body into a debug log line (decoded, searched and ``repr``-ed, logged or not),
which with ``requests`` reading it in 10 KiB chunks cost 4.7 ms of CPU per page of 100 invoices; the
stream costs 3.0 ms.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
import stripe
import urllib3

from pipelines.common.prefetch import prefetched
from pipelines.common.retry import retrying
from pipelines.payments.settings import MAX_READS_PER_SECOND, PAGE_SIZE

logger = logging.getLogger(__name__)

PREFETCH_PAGES = 4
"""Pages read ahead of the consumer: the next request is in flight while the last page is parsed."""


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: connection failures, timeouts, 5xx, rate limits and lock timeouts (409/429).

    Validation and permission errors (other 4xx) are not: retrying cannot change their answer.
    """
    if isinstance(exc, stripe.APIConnectionError):
        return True
    if isinstance(exc, stripe.StripeError):
        status = exc.http_status or 0
        return status in (409, 429) or status >= 500
    return False


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked to wait (``Retry-After``), if it did."""
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class Page:
    """One list page and the moment its request was sent (its rows reflect every change before that)."""

    records: list[dict[str, Any]]
    read_at: float


@dataclasses.dataclass
class CallStats:
    """Where reading time went, for the summary and the benchmark."""

    requests: int = 0
    seconds_in_http: float = 0.0
    seconds_parsing: float = 0.0
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def add(self, http_seconds: float, parse_seconds: float) -> None:
        with self.lock:
            self.requests += 1
            self.seconds_in_http += http_seconds
            self.seconds_parsing += parse_seconds


class RequestPacer:
    """Keeps requests to ``per_second`` on average, shared by every thread of one reader.

    A token bucket holding one second's worth of requests, as rate limiters like Stripe's are described:
    a short cycle's few requests go at once, a backfill's long run of pages is spread out. A request that
    finds the bucket empty takes its token on credit and sleeps until it would have been refilled.
    """

    def __init__(self, per_second: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.per_second = per_second
        self.clock = clock
        self.sleep = sleep
        self.tokens = per_second
        self.updated = clock()
        self.seconds_waited = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Wait, if needed, until one more request keeps within the pace."""
        with self._lock:
            now = self.clock()
            self.tokens = min(self.per_second, self.tokens + (now - self.updated) * self.per_second) - 1
            self.updated = now
            wait = -self.tokens / self.per_second if self.tokens < 0 else 0.0
            self.seconds_waited += wait
        if wait > 0:
            self.sleep(wait)


class StripeReader:
    """GETs against the payments API with the restricted read key, with retries and paging."""

    def __init__(self, client: stripe.StripeClient, *, attempts: int = 8, base_seconds: float = 0.5,
                 max_wait_seconds: float = 30.0, reads_per_second: float = MAX_READS_PER_SECOND) -> None:
        self.client = client
        self.attempts = attempts
        self.base_seconds = base_seconds
        self.max_wait_seconds = max_wait_seconds
        self.stats = CallStats()
        self.pacer = RequestPacer(reads_per_second)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The parsed JSON body of ``GET path``; the SDK's exception after the retries are spent."""
        policy = retrying(is_transient, retry_after, attempts=self.attempts, base_seconds=self.base_seconds,
                          max_wait_seconds=self.max_wait_seconds, what=f"GET {path}")
        for attempt in policy:
            with attempt:
                return self._get_once(path, dict(params or {}))
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _get_once(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        self.pacer.acquire()
        started = time.perf_counter()
        requestor = self.client._requestor  # the SDK's own transport: auth, headers, network retries
        stream, status, headers = requestor.request_raw(
            "get", path, params=params, options={}, is_streaming=True, base_address="api", api_mode="V1",
            usage=["revloop_ingest"],
        )
        body = read_whole(stream)
        fetched = time.perf_counter()
        if not 200 <= status < 300:
            requestor._interpret_response(body, status, headers, "V1")  # raises the SDK's typed error
        parsed = orjson.loads(body)  # type: ignore[arg-type]
        self.stats.add(fetched - started, time.perf_counter() - fetched)
        return parsed  # type: ignore[no-any-return]

    def pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Page]:
        """Every page of a list, newest first, paging with ``starting_after``; one request read ahead."""
        return prefetched(self._pages(path, dict(params or {})), PREFETCH_PAGES, "stripe-pages")

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[Page]:
        params = {**params, "limit": PAGE_SIZE}
        while True:
            read_at = time.time()
            body = self.get(path, params)
            records = body.get("data") or []
            yield Page(records, read_at)
            if not body.get("has_more") or not records:
                return
            params["starting_after"] = records[-1]["id"]

    def oldest_created(self, path: str, newest: int) -> int:
        """The ``created`` of the oldest object of a list, by bisection with ``created[lt]`` and limit 1.

        Stripe lists only newest first; ~30 one-record requests find the start of the history, so it can
        be split into windows that are paged side by side.
        """
        low, high = 0, newest + 1  # some object is older than ``high``; none is older than ``low``
        while high - low > 1:
            middle = (low + high) // 2
            if self.get(path, {"limit": 1, "created": {"lt": middle}}).get("data"):
                high = middle
            else:
                low = middle
        return low

    def pages_in_windows(self, path: str, windows: int) -> Iterator[Page]:
        """Every page of a list, read as ``windows`` ``created`` ranges paged at the same time.

        One ``starting_after`` chain leaves the server idle while each page travels and is parsed; several
        chains keep it busy. The ranges are open at both ends (nothing created before the first bound or
        during the read is missed); pages arrive in no particular order.
        """
        first = self.get(path, {"limit": 1})
        records = first.get("data") or []
        if windows <= 1 or not records:
            yield from self.pages(path)
            return
        newest = int(records[0]["created"])
        oldest = self.oldest_created(path, newest)
        step = max(1, (newest + 1 - oldest) // windows)
        bounds = [oldest + step * n for n in range(1, windows)]
        ranges: list[dict[str, int]] = []
        for index in range(windows):
            created: dict[str, int] = {}
            if index > 0:
                created["gte"] = bounds[index - 1]
            if index < windows - 1:
                created["lt"] = bounds[index]
            ranges.append(created)
        yield from _merged([self._pages(path, {"created": created}) for created in ranges], PREFETCH_PAGES)

    def created_since(self, path: str, since: int, windows: int) -> list[dict[str, Any]]:
        """Every object of a list created at or after ``since``, in the list's order (newest first).

        The first page is read alone: a quiet stretch ends there, in one request. When there is more, the
        rest (from ``since`` up to and including the oldest second of that page, whose later objects may
        continue on the next page) is read as up to ``windows`` ``created`` ranges paged side by side and
        joined from the newest range to the oldest; an object read twice (that shared second) is kept once,
        where it came first. So the result is what one ``starting_after`` chain would have read, in the same
        order, in the time of its longest range.
        """
        body = self.get(path, {"limit": PAGE_SIZE, "created": {"gte": since}})
        first = list(body.get("data") or [])
        if not body.get("has_more") or not first:
            return first
        oldest_read = int(first[-1]["created"])
        # as many ranges as pages are likely left (at the first page's density), so a stretch of two pages
        # is not split into four requests
        per_second = len(first) / max(1, int(first[0]["created"]) - oldest_read + 1)
        pages_left = math.ceil((oldest_read - since + 1) * per_second / PAGE_SIZE)
        count = max(1, min(windows, pages_left, oldest_read - since + 1))
        step = (oldest_read + 1 - since) / count
        bounds = [since + round(step * n) for n in range(count + 1)]  # bounds[-1] == oldest_read + 1
        ranges = [{"gte": bounds[n], "lt": bounds[n + 1]} for n in range(count) if bounds[n] < bounds[n + 1]]
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(ranges), thread_name_prefix="stripe-range") as pool:
            chains = list(pool.map(
                lambda created: [r for page in self._pages(path, {"created": created}) for r in page.records],
                ranges,
            ))
        seen = {record["id"] for record in first}
        result = first
        for chain in reversed(chains):  # the newest range first, as the list orders them
            for record in chain:
                if record["id"] not in seen:
                    seen.add(record["id"])
                    result.append(record)
        return result

    def all_lines(self, invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
        """All lines of ``invoice``: the embedded ones, or the lines list when more than those exist."""
        lines = invoice.get("lines") or {}
        if not lines.get("has_more"):
            return list(lines.get("data") or [])
        result: list[dict[str, Any]] = []
        for page in self._pages(f"/v1/invoices/{invoice['id']}/lines", {}):
            result.extend(page.records)
        return result


def read_whole(stream: Any) -> bytes:
    """The body of a streamed response, decompressed; a connection lost while reading is the SDK's
    ``APIConnectionError`` (transient, like one lost before the response began)."""
    if isinstance(stream, bytes):
        return stream
    try:
        if isinstance(stream, urllib3.BaseHTTPResponse):  # the SDK's default client, over requests
            try:
                return stream.read(decode_content=True)
            finally:
                stream.release_conn()
        if hasattr(stream, "read"):
            return bytes(stream.read())
        return b"".join(stream)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise stripe.APIConnectionError(f"connection lost while reading the response: {exc}") from exc


def _merged(chains: list[Iterator[Page]], depth: int) -> Iterator[Page]:
    """The pages of several chains, each read by its own thread, as they come; errors surface here."""
    buffer: queue.Queue[Page | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce(chain: Iterator[Page]) -> None:
        try:
            for page in chain:
                while not stop.is_set():
                    try:
                        buffer.put(page, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            buffer.put(exc)

    workers = [threading.Thread(target=produce, args=(chain,), name=f"stripe-window-{n}", daemon=True)
               for n, chain in enumerate(chains)]
    for worker in workers:
        worker.start()
    running = len(workers)
    try:
        while running:
            item = buffer.get()
            if item is None:
                running -= 1
                continue
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
