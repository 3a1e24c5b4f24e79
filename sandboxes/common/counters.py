"""Request counters per client, reported by the admin endpoint so tests and benchmarks can see traffic."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandboxes.common.faults import ADMIN_PREFIX


class RequestCounters:
    """Thread-safe tallies of requests served, writes, and status codes, by client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: Counter[str] = Counter()
            self.writes: Counter[str] = Counter()
            self.statuses: Counter[str] = Counter()
            self.total = 0

    def record(self, client: str, is_write: bool, status: int) -> None:
        with self._lock:
            self.total += 1
            self.requests[client] += 1
            if is_write:
                self.writes[client] += 1
            self.statuses[str(status)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests_total": self.total,
                "writes_total": sum(self.writes.values()),
                "requests_by_client": dict(self.requests),
                "writes_by_client": dict(self.writes),
                "responses_by_status": dict(self.statuses),
            }


class CountingMiddleware:
    """Counts every non-admin request once its response status is known."""

    def __init__(
        self,
        app: ASGIApp,
        counters: RequestCounters,
        client_of: Callable[[Scope], str],
        is_write: Callable[[Scope], bool],
    ) -> None:
        self.app = app
        self.counters = counters
        self.client_of = client_of
        self.is_write = is_write

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        status = {"code": 0}

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.counters.record(self.client_of(scope), self.is_write(scope), status["code"])
