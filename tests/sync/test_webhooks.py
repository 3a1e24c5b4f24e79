"""The payments webhook receiver, fed by a real payments sandbox: events stored once, without PII, before
they are acknowledged; bad signatures refused; duplicates acknowledged and ignored; a NOTIFY per new event."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import stripe
import uvicorn

from revloop import warehouse
from revloop.connectors import payments as payments_connector
from revloop.settings import PaymentsSettings
from revloop.webhooks import NOTIFY_CHANNEL, PATH, create_app, ensure_schema, scrub
from tests.sandbox_harness import RunningSandbox, free_port, start_sandbox


class Receiver:
    """The receiver's ASGI app served by uvicorn in a thread, on a port of its own."""

    def __init__(self, database_url: str, secret: str, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}{PATH}"
        config = uvicorn.Config(create_app(database_url, secret), host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, "the receiver to start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def receiver_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def payments(tmp_path_factory: pytest.TempPathFactory, receiver_port: int) -> Iterator[RunningSandbox]:
    """A payments sandbox whose default webhook endpoint points at this module's receiver."""
    previous = os.environ.get("REVLOOP_SANDBOX_WEBHOOK_URL")
    os.environ["REVLOOP_SANDBOX_WEBHOOK_URL"] = f"http://127.0.0.1:{receiver_port}{PATH}"
    try:
        running = start_sandbox("payments", tmp_path_factory.mktemp("webhooks-payments"), scale="empty")
    finally:
        if previous is None:
            os.environ.pop("REVLOOP_SANDBOX_WEBHOOK_URL", None)
        else:
            os.environ["REVLOOP_SANDBOX_WEBHOOK_URL"] = previous
    running.admin("PUT", "payments/settings", {"webhook_backoff_base_seconds": 0.2})
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def settings(payments: RunningSandbox) -> PaymentsSettings:
    return PaymentsSettings(**{k.removeprefix("REVLOOP_PAYMENTS_").lower(): v for k, v in payments.env().items()})


@pytest.fixture(scope="module")
def secret(settings: PaymentsSettings) -> str:
    assert settings.webhook_secret is not None
    return settings.webhook_secret.get_secret_value()


@pytest.fixture(scope="module")
def receiver(module_database: str, secret: str, receiver_port: int) -> Iterator[Receiver]:
    ensure_schema(module_database)
    running = Receiver(module_database, secret, receiver_port)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def client(settings: PaymentsSettings, receiver: Receiver) -> stripe.StripeClient:
    return payments_connector.connect(settings, max_network_retries=0)


def stored(database_url: str, object_id: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("select event_id, type, object_id, payload from sync.webhook_events "
                            "where object_id = %s order by event_id", (object_id,)).fetchall()
    return [{"event_id": r[0], "type": r[1], "object_id": r[2], "payload": r[3]} for r in rows]


def deliveries(payments: RunningSandbox, event_id: str) -> list[dict[str, Any]]:
    return payments.admin("GET", f"payments/deliveries?event={event_id}")["data"]


def signed(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={digest}", "Content-Type": "application/json"}


def new_customer(client: stripe.StripeClient) -> Any:
    return client.v1.customers.create(params={
        "name": "Ada Lovelace", "email": "ada@example.com", "phone": "+65 6000 0000",
        "address": {"line1": "1 Raffles Place", "city": "Singapore", "country": "SG"},
        "metadata": {"salesforce_account_id": "001T00000000001AAA"},
    })


def test_events_are_stored_with_ids_and_metadata_but_no_pii_when_the_platform_delivers_them(
    client: stripe.StripeClient, module_database: str
) -> None:
    customer = new_customer(client)
    (row,) = wait_for(lambda: stored(module_database, customer.id), "the customer.created event")
    text = json.dumps(row["payload"])
    assert row["type"] == "customer.created"
    assert row["payload"]["data"]["object"]["metadata"] == {"salesforce_account_id": "001T00000000001AAA"}
    assert row["payload"]["data"]["object"]["id"] == customer.id
    for pii in ("ada@example.com", "Ada Lovelace", "6000 0000", "Raffles"):
        assert pii not in text


def test_the_event_row_exists_when_the_platform_logs_the_delivery_as_acknowledged(
    client: stripe.StripeClient, payments: RunningSandbox, module_database: str
) -> None:
    customer = new_customer(client)
    event = client.v1.events.list(params={"limit": 1, "type": "customer.created"}).data[0]
    assert event.data.object.id == customer.id

    def acknowledged() -> bool:
        return any(d["last_status"] == 200 for d in deliveries(payments, event.id))

    wait_for(acknowledged, "the delivery to be acknowledged")
    assert [r["event_id"] for r in stored(module_database, customer.id)] == [event.id]


def test_duplicates_are_acknowledged_and_stored_once_with_one_notify_when_the_platform_sends_twice(
    client: stripe.StripeClient, payments: RunningSandbox, module_database: str
) -> None:
    with psycopg.connect(module_database, autocommit=True) as listener:
        listener.execute(f"listen {NOTIFY_CHANNEL}")
        payments.admin("PUT", "faults", {"webhook_duplicate_rate": 1.0})
        try:
            customer = new_customer(client)
            event = client.v1.events.list(params={"limit": 1, "type": "customer.created"}).data[0]
            wait_for(lambda: sum(d["last_status"] == 200 for d in deliveries(payments, event.id)) >= 2,
                     "both deliveries to be acknowledged")
        finally:
            payments.admin("PUT", "faults", {"profile": "none"})
        notified = [n.payload for n in listener.notifies(timeout=2.0) if n.channel == NOTIFY_CHANNEL]
    assert [r["event_id"] for r in stored(module_database, customer.id)] == [event.id]
    assert notified.count(event.id) == 1


def test_a_bad_signature_is_refused_and_nothing_stored_when_the_body_was_not_signed_by_the_platform(
    receiver: Receiver, module_database: str, secret: str
) -> None:
    body = json.dumps({"id": "evt_forged", "type": "customer.created", "created": 1,
                       "data": {"object": {"id": "cus_forged"}}}).encode()
    wrong = httpx.post(receiver.url, content=body, headers=signed("whsec_not_the_secret", body))
    stale = httpx.post(receiver.url, content=body, headers=signed(secret, body, int(time.time()) - 3600))
    missing = httpx.post(receiver.url, content=body)
    assert [wrong.status_code, stale.status_code, missing.status_code] == [400, 400, 400]
    assert stored(module_database, "cus_forged") == []


def test_an_event_is_not_acknowledged_when_it_cannot_be_stored(
    warehouse_admin_url: str, secret: str, tmp_path: Path
) -> None:
    unreachable = warehouse.with_database(warehouse_admin_url, "revloop_no_such_database")
    port = free_port()
    receiver = Receiver(unreachable, secret, port)
    try:
        body = json.dumps({"id": "evt_lost", "type": "customer.created", "created": 1,
                           "data": {"object": {"id": "cus_lost"}}}).encode()
        response = httpx.post(receiver.url, content=body, headers=signed(secret, body))
    finally:
        receiver.stop()
    assert response.status_code == 503


@pytest.mark.parametrize(("event", "kept"), [
    ({"id": "evt_1", "data": {"object": {"id": "ch_1", "amount": 500, "amount_refunded": 0, "currency": "usd",
                                         "billing_details": {"email": "x@example.com", "name": "X"},
                                         "payment_method_details": {"card": {"last4": "4242"}},
                                         "status": "succeeded", "metadata": {"erp_invoice_id": "7"}}}},
     {"id": "evt_1", "data": {"object": {"id": "ch_1", "amount": 500, "amount_refunded": 0, "currency": "usd",
                                         "status": "succeeded", "metadata": {"erp_invoice_id": "7"}}}}),
    ({"data": {"object": {"customer": {"id": "cus_1", "email": "y@example.com"}, "customer_email": "y@example.com",
                          "customer_name": "Y", "customer_address": {"line1": "z"}}}},
     {"data": {"object": {"customer": {"id": "cus_1"}}}}),
    ({"data": {"previous_attributes": {"status": "open", "description": "typed by a person"}}},
     {"data": {"previous_attributes": {"status": "open"}}}),
])
def test_scrub_keeps_ids_amounts_statuses_and_metadata_when_an_object_holds_personal_data(
    event: dict[str, Any], kept: dict[str, Any]
) -> None:
    assert scrub(event) == kept
