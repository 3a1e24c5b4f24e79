"""The payments webhook receiver: verify the signature, store the event (without PII) in PostgreSQL, then
answer 200, and wake a waiting worker with ``NOTIFY``.

The order matters: the platform retries until it gets a 2xx, so answering before the event is committed
could lose it if the process died in between. Deliveries are at least once and unordered, so the event id
is the primary key (a duplicate is acknowledged and ignored) and consumers re-read objects whose state
matters instead of trusting the order of events.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import psycopg
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

logger = logging.getLogger(__name__)

PATH = "/webhooks/payments"
NOTIFY_CHANNEL = "revloop_webhook"
SIGNATURE_TOLERANCE_SECONDS = 300
"""The SDKs' default: a signed body older than this is refused, which bounds replays of captured requests."""

DDL = """
create schema if not exists sync;
create table if not exists sync.webhook_events (
    event_id    text primary key,
    type        text not null,
    object_id   text,
    created     timestamptz not null,
    received_at timestamptz not null default now(),
    payload     jsonb not null
);
create index if not exists webhook_events_received_at on sync.webhook_events (received_at);
create index if not exists webhook_events_object_id on sync.webhook_events (object_id);
comment on table sync.webhook_events is
    'Payments webhook events as received (deduplicated on event id); payload keeps ids, amounts, statuses, '
    'currency and metadata only, never names, emails, addresses or card details';
"""

KEPT_FIELDS = frozenset({
    "id", "object", "type", "created", "livemode", "api_version", "pending_webhooks", "request",
    "idempotency_key", "data", "previous_attributes", "status", "currency", "metadata",
    "customer", "invoice", "payment_intent", "charge", "latest_charge", "subscription", "balance_transaction",
    "paid", "refunded", "disputed", "captured", "number", "reason", "failure_code", "decline_code",
    "payment_status", "billing_reason", "collection_method", "due_date", "period_start", "period_end",
    "status_transitions", "finalized_at", "paid_at", "voided_at", "marked_uncollectible_at", "attempt_count",
    "cancellation_reason", "lines", "refunds", "charges", "has_more", "total_count", "quantity", "price",
    "unit_amount", "product", "is_charge_refundable", "network_reason_code",
})
"""What a stored event keeps, at any depth: identifiers, money (plus every ``amount*`` field), states and
our own metadata. Everything else (names, emails, phones, addresses, billing details, card details,
descriptions a person typed) is dropped before the event is written."""


def scrub(value: Any) -> Any:
    """``value`` with only :data:`KEPT_FIELDS` (and ``amount*``) kept in every nested object."""
    if isinstance(value, list):
        return [scrub(item) for item in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for key, item in value.items():
        if key == "metadata":
            kept[key] = item  # our own cross-references (salesforce_*, erp_*, revloop_key)
        elif key in KEPT_FIELDS or key.startswith("amount"):
            kept[key] = scrub(item)
    return kept


def ensure_schema(database_url: str) -> None:
    """Create ``sync.webhook_events`` if it does not exist."""
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        # the same turn-taking as revloop.sync.schema: both create the sync schema
        conn.execute("select pg_advisory_xact_lock(hashtextextended('revloop.sync.schema', 0))")
        conn.execute(DDL)


class EventStore:
    """Inserts events on one connection (re-opened after a failure), one transaction per event."""

    def __init__(self, database_url: str, *, notify: bool = True) -> None:
        self.database_url = database_url
        self.notify = notify
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self.database_url, connect_timeout=10)
        return self._conn

    async def save(self, event: dict[str, Any]) -> bool:
        """Store ``event`` (scrubbed) and notify; False when its id was already stored. Raises on failure."""
        data_object = (event.get("data") or {}).get("object") or {}
        created = dt.datetime.fromtimestamp(int(event.get("created") or 0), tz=dt.UTC)
        async with self._lock:
            conn = await self._connection()
            try:
                async with conn.transaction():
                    cursor = await conn.execute(
                        "insert into sync.webhook_events (event_id, type, object_id, created, payload) "
                        "values (%s, %s, %s, %s, %s) on conflict (event_id) do nothing",
                        (event["id"], event.get("type") or "", data_object.get("id"), created,
                         orjson.dumps(scrub(event)).decode()),
                    )
                    inserted = cursor.rowcount == 1
                    if inserted and self.notify:  # delivered at commit, so a woken worker finds the row
                        await conn.execute("select pg_notify(%s, %s)", (NOTIFY_CHANNEL, event["id"]))
            except (psycopg.OperationalError, psycopg.InterfaceError):
                await conn.close()  # a broken connection: the next event opens a new one
                raise
            return inserted

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


def create_app(database_url: str, webhook_secret: str, *, notify: bool = True,
               tolerance_seconds: int = SIGNATURE_TOLERANCE_SECONDS) -> Starlette:
    """The receiver's ASGI app: ``POST /webhooks/payments`` and ``GET /healthz``."""
    store = EventStore(database_url, notify=notify)

    async def receive(request: Request) -> Response:
        body = await request.body()
        signature = request.headers.get("stripe-signature", "")
        try:
            stripe.Webhook.construct_event(body, signature, webhook_secret, tolerance_seconds)
            event = orjson.loads(body)
        except stripe.SignatureVerificationError:
            logger.warning("payments webhook refused: bad or stale Stripe-Signature")
            return JSONResponse({"error": "invalid signature"}, status_code=400)
        except ValueError:  # not JSON (orjson.JSONDecodeError is a ValueError)
            return JSONResponse({"error": "invalid payload"}, status_code=400)
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            return JSONResponse({"error": "not an event"}, status_code=400)
        try:
            inserted = await store.save(event)
        except psycopg.Error as exc:
            # Not stored, so not acknowledged: the platform delivers it again later.
            logger.error("payments webhook %s not stored: %s", event["id"], exc)
            return JSONResponse({"error": "event not stored; retry later"}, status_code=503)
        logger.info("payments webhook %s %s (%s)", event["id"], event.get("type"),
                    "stored" if inserted else "duplicate")
        return JSONResponse({"received": True, "duplicate": not inserted})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await store.close()

    return Starlette(
        routes=[Route(PATH, receive, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
    )


def serve(database_url: str, webhook_secret: str, *, host: str = "127.0.0.1", port: int = 8444) -> None:
    """Create the table if needed and serve the receiver until interrupted."""
    import uvicorn

    ensure_schema(database_url)
    uvicorn.run(create_app(database_url, webhook_secret), host=host, port=port, log_level="warning",
                access_log=False)
