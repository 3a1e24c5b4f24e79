"""Webhook delivery: signs each event and POSTs it to matching endpoints, retrying with backoff.

Deliveries live in the store, so a restart resumes them. Delivery is at least once and unordered, as
Stripe's is, and the fault knobs make that visible: duplicates, held-back events, and deliveries the
sandbox treats as failed even though the receiver got them (as when a receiver's answer times out).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from typing import Any

import httpx

from sandboxes.payments import charging
from sandboxes.payments.service import Service

logger = logging.getLogger(__name__)

BATCH_SIZE = 50
IDLE_WAKEUP_SECONDS = 1.0
PRUNE_EVERY_SECONDS = 600.0


def signature_header(payload: str, secret: str, timestamp: int) -> str:
    """``t=<unix>,v1=<hex>``: HMAC-SHA256 of ``"{t}.{payload}"`` with the endpoint's secret."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class BackgroundWork:
    """The asyncio tasks of the server: webhook delivery, async settlement and idempotency pruning."""

    def __init__(self, svc: Service, prune: Any) -> None:
        self.svc = svc
        self.prune = prune
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=self.svc.settings.webhook_timeout_seconds, follow_redirects=False,
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10), trust_env=False,
        )
        self._tasks = [asyncio.create_task(self._deliver_forever(), name="webhook-delivery"),
                       asyncio.create_task(self._settle_forever(), name="settlement")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()

    # -- settlement -------------------------------------------------------------------------------------

    async def _settle_forever(self) -> None:
        while True:
            try:
                charging.settle_due(self.svc)
            except Exception:
                logger.exception("settlement pass failed")
            row = self.svc.store.conn.execute("SELECT min(settles_at) FROM settlements").fetchone()
            wait = IDLE_WAKEUP_SECONDS if row[0] is None else max(0.05, min(IDLE_WAKEUP_SECONDS, row[0] - time.time()))
            self.svc.settlements_ready.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.svc.settlements_ready.wait(), wait)

    # -- webhooks ---------------------------------------------------------------------------------------

    async def _deliver_forever(self) -> None:
        last_prune = 0.0
        while True:
            try:
                if time.time() - last_prune > PRUNE_EVERY_SECONDS:
                    self.prune()
                    last_prune = time.time()
                sent = await self.deliver_due()
            except Exception:
                logger.exception("webhook delivery pass failed")
                sent = 0
            if sent:
                continue
            row = self.svc.store.conn.execute(
                "SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'"
            ).fetchone()
            wait = IDLE_WAKEUP_SECONDS if row[0] is None else max(0.02, min(IDLE_WAKEUP_SECONDS, row[0] - time.time()))
            self.svc.deliveries_ready.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.svc.deliveries_ready.wait(), wait)

    async def deliver_due(self, *, everything: bool = False) -> int:
        """Attempt every pending delivery that is due (all pending ones when ``everything``)."""
        async with self._lock:
            horizon = 1e18 if everything else time.time()
            rows = self.svc.store.conn.execute(
                "SELECT d.id, d.endpoint_id, d.event_id, d.attempts, d.duplicate, e.body "
                "FROM deliveries d JOIN objects e ON e.id = d.event_id "
                "WHERE d.state = 'pending' AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at, d.id LIMIT ?",
                (horizon, BATCH_SIZE),
            ).fetchall()
            if not rows:
                return 0
            await asyncio.gather(*(self._attempt(*row) for row in rows))
            return len(rows)

    async def _attempt(self, delivery_id: int, endpoint_id: str, event_id: str, attempts: int, duplicate: int,
                       payload: str) -> None:
        store = self.svc.store
        endpoint = store.get(endpoint_id, "webhook_endpoint")
        secret = store.get_meta(f"endpoint_secret:{endpoint_id}")
        if endpoint is None or secret is None or endpoint["status"] != "enabled":
            self._finish(delivery_id, event_id, duplicate, "dropped", None, "endpoint disabled or deleted")
            return
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(payload, secret, timestamp),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        status: int | None = None
        error: str | None = None
        assert self._client is not None
        try:
            response = await self._client.post(endpoint["url"], content=payload.encode(), headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        if error is None and self.svc.faults.chance(self.svc.faults.config.webhook_failure_rate):
            error = "treated as failed (webhook_failure_rate)"
        attempts += 1
        if error is None:
            self._finish(delivery_id, event_id, duplicate, "succeeded", status, None, attempts)
            return
        settings = self.svc.settings
        logger.debug("webhook %s to %s failed (attempt %d): %s", event_id, endpoint["url"], attempts, error)
        if attempts >= settings.webhook_max_attempts:
            self._finish(delivery_id, event_id, duplicate, "failed", status, error, attempts)
            return
        delay = min(settings.webhook_backoff_cap_seconds, settings.webhook_backoff_base_seconds * 2 ** (attempts - 1))
        with store.transaction():
            store.conn.execute(
                "UPDATE deliveries SET attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, updated = ?"
                " WHERE id = ?", (attempts, time.time() + delay, status, error, time.time(), delivery_id),
            )

    def _finish(self, delivery_id: int, event_id: str, duplicate: int, state: str, status: int | None,
                error: str | None, attempts: int | None = None) -> None:
        store = self.svc.store
        with store.transaction():
            store.conn.execute(
                "UPDATE deliveries SET state = ?, attempts = coalesce(?, attempts), last_status = ?, last_error = ?,"
                " updated = ? WHERE id = ?", (state, attempts, status, error, time.time(), delivery_id),
            )
            if not duplicate:
                # The event's pending_webhooks counts deliveries not yet done, as Stripe's does.
                store.conn.execute(
                    "UPDATE objects SET body = json_set(body, '$.pending_webhooks', "
                    "max(json_extract(body, '$.pending_webhooks') - 1, 0)) WHERE id = ?", (event_id,),
                )
