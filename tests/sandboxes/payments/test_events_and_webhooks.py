"""The events feed and signed webhook delivery: retries, duplicates and out-of-order arrival."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest
import stripe

from sandboxes.payments.objects import EVENT_RETENTION_SECONDS as RETENTION_SECONDS
from tests.sandbox_harness import RunningSandbox
from tests.sandboxes.payments.conftest import WebhookReceiver, wait_for


def test_events_filter_by_type_and_types_when_listing(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"name": "Events Co"})
    client.v1.customers.update(customer.id, params={"name": "Events Co Pte Ltd"})
    updated = client.v1.events.list(params={"type": "customer.updated", "limit": 5})
    assert all(e.type == "customer.updated" for e in updated.data)
    mine = next(e for e in updated.data if e.data.object.id == customer.id)
    assert mine.data.previous_attributes.name == "Events Co" and mine.data.object.name == "Events Co Pte Ltd"
    assert mine.request.id.startswith("req_") and mine.request.idempotency_key
    assert mine.api_version and mine.livemode is False
    both = client.v1.events.list(params={"types": ["customer.created", "customer.updated"], "limit": 100})
    assert {e.type for e in both.data} <= {"customer.created", "customer.updated"}
    wildcard = client.v1.events.list(params={"type": "customer.*", "limit": 10})
    assert all(e.type.startswith("customer.") for e in wildcard.data)
    assert client.v1.events.retrieve(mine.id).id == mine.id


def test_seeded_history_lists_when_filtering_events_by_created(client: stripe.StripeClient) -> None:
    history = list(client.v1.events.list(params={"limit": 100}).auto_paging_iter())
    assert len(history) >= 100
    oldest = min(e.created for e in history)
    assert oldest >= time.time() - RETENTION_SECONDS  # nothing older than Stripe's 30 days is seeded
    early = client.v1.events.list(params={"created": {"lte": oldest}})
    assert early.data and [e.created for e in early.data] == [oldest] * len(early.data)


def _age_event(sandbox: RunningSandbox, event_id: str, seconds: int) -> None:
    """Move an event ``seconds`` into the past, as if the sandbox's clock had moved on that much."""
    store = sqlite3.connect(sandbox.config.system_dir / "payments.sqlite3", timeout=30)
    try:
        with store:
            changed = store.execute(
                "update objects set created = created - ?, body = json_set(body, '$.created', created - ?)"
                " where id = ? and kind = 'event'", (seconds, seconds, event_id),
            ).rowcount
        assert changed == 1
    finally:
        store.close()


def test_event_is_gone_from_feed_and_retrieve_when_older_than_the_retention(
    client: stripe.StripeClient, sandbox: RunningSandbox
) -> None:
    customer = client.v1.customers.create(params={"name": "Retention Co"})
    client.v1.customers.update(customer.id, params={"name": "Retention Co Pte Ltd"})
    mine = [e for e in client.v1.events.list(params={"types": ["customer.created", "customer.updated"],
                                                      "limit": 20}).data if e.data.object.id == customer.id]
    expired, kept = sorted(mine, key=lambda e: e.type)  # customer.created ages out, customer.updated stays
    _age_event(sandbox, expired.id, RETENTION_SECONDS - 60)
    assert client.v1.events.retrieve(expired.id).id == expired.id  # a minute short of 30 days: still served
    _age_event(sandbox, expired.id, 120)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.events.retrieve(expired.id)
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    assert missing.value.user_message == f"No such event: '{expired.id}'"
    listed = {e.id for e in client.v1.events.list(params={"type": "customer.created", "limit": 100})
              .auto_paging_iter()}
    assert expired.id not in listed
    assert expired.id not in {e.id for e in client.v1.events.list(
        params={"created": {"lte": expired.created}, "limit": 100}).auto_paging_iter()}
    with pytest.raises(stripe.InvalidRequestError) as cursor:
        client.v1.events.list(params={"starting_after": expired.id})
    assert cursor.value.http_status == 404 and cursor.value.param == "starting_after"
    assert client.v1.events.retrieve(kept.id).id == kept.id


def test_webhook_delivered_and_verifiable_when_event_matches_endpoint(
    client: stripe.StripeClient, receiver: tuple[WebhookReceiver, Any]
) -> None:
    rec, _ = receiver
    customer = client.v1.customers.create(params={"name": "Hooked Ltd"})
    event = wait_for(lambda: next((e for e in rec.events if e.type == "customer.created"
                                   and e.data.object.id == customer.id), None))
    assert event.id.startswith("evt_") and not rec.rejected


def test_endpoint_secret_shown_only_when_created(client: stripe.StripeClient) -> None:
    endpoint = client.v1.webhook_endpoints.create(params={"url": "http://127.0.0.1:9/none",
                                                          "enabled_events": ["invoice.paid"]})
    assert endpoint.secret.startswith("whsec_")
    again = client.v1.webhook_endpoints.retrieve(endpoint.id)
    assert "secret" not in again and again.enabled_events == ["invoice.paid"]
    assert client.v1.webhook_endpoints.delete(endpoint.id).deleted is True


def test_failing_receiver_gets_retries_until_it_answers_2xx(client: stripe.StripeClient, sandbox) -> None:  # type: ignore[no-untyped-def]
    sandbox.admin("PUT", "payments/settings", {"webhook_backoff_base_seconds": 0.2})
    with WebhookReceiver(fail_first=2) as rec:
        endpoint = client.v1.webhook_endpoints.create(params={"url": rec.url,
                                                              "enabled_events": ["customer.created"]})
        rec.secret = endpoint.secret
        try:
            customer = client.v1.customers.create(params={"name": "Retry Me"})
            wait_for(lambda: any(e.data.object.id == customer.id for e in rec.events))
            assert rec.requests == 3
            attempts = sandbox.admin("GET", f"payments/deliveries?endpoint={endpoint.id}")["data"]
            assert attempts[0]["state"] == "succeeded" and attempts[0]["attempts"] == 3
        finally:
            client.v1.webhook_endpoints.delete(endpoint.id)
            sandbox.admin("PUT", "payments/settings", {"webhook_backoff_base_seconds": 1.0})


def test_duplicates_arrive_when_duplicate_rate_is_one(
    client: stripe.StripeClient, receiver: tuple[WebhookReceiver, Any], sandbox, no_faults
) -> None:  # type: ignore[no-untyped-def]
    rec, _ = receiver
    sandbox.admin("PUT", "faults", {"webhook_duplicate_rate": 1.0})
    customer = client.v1.customers.create(params={"name": "Twice Ltd"})
    ids = wait_for(lambda: (found := [e.id for e in rec.events if e.data.object.id == customer.id]) and
                   len(found) >= 2 and found)
    assert len(set(ids)) == 1, "the same event id is delivered twice: receivers deduplicate on it"


def test_events_arrive_out_of_order_when_reorder_knob_on(
    client: stripe.StripeClient, receiver: tuple[WebhookReceiver, Any], sandbox, no_faults
) -> None:  # type: ignore[no-untyped-def]
    rec, _ = receiver
    sandbox.admin("PUT", "faults", {"webhook_reorder": True})
    customer = client.v1.customers.create(params={"name": "Shuffle 0"})
    for i in range(1, 12):
        client.v1.customers.update(customer.id, params={"name": f"Shuffle {i}"})
    mine = wait_for(lambda: (got := [e for e in rec.events if e.data.object.id == customer.id]) and
                    len(got) >= 12 and got, timeout=20)
    created = [e.id for e in client.v1.events.list(params={"limit": 100, "types": ["customer.created",
                                                                                   "customer.updated"]}).data
               if e.data.object.id == customer.id][::-1]
    assert [e.id for e in mine] != created and sorted(e.id for e in mine) == sorted(created)


def test_failure_rate_makes_sandbox_retry_when_receiver_answered(
    client: stripe.StripeClient, receiver: tuple[WebhookReceiver, Any], sandbox, no_faults
) -> None:  # type: ignore[no-untyped-def]
    rec, endpoint = receiver
    sandbox.admin("PUT", "payments/settings", {"webhook_backoff_base_seconds": 0.2, "webhook_max_attempts": 2})
    sandbox.admin("PUT", "faults", {"webhook_failure_rate": 1.0})
    try:
        customer = client.v1.customers.create(params={"name": "Flaky Receiver"})
        wait_for(lambda: len([e for e in rec.events if e.data.object.id == customer.id]) >= 2)
        wait_for(lambda: any(d["state"] == "failed" for d in
                             sandbox.admin("GET", f"payments/deliveries?endpoint={endpoint.id}")["data"]))
    finally:
        sandbox.admin("PUT", "payments/settings", {"webhook_backoff_base_seconds": 1.0, "webhook_max_attempts": 10})
