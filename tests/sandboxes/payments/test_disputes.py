"""Closing a dispute (the merchant accepts it, so it is lost), through the stripe SDK: the dispute returned and
stored as ``lost``, ``charge.dispute.closed`` in the feed and at the webhook, Stripe's errors for a dispute that
is already closed or does not exist."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import stripe

from tests.sandbox_harness import RunningSandbox
from tests.sandboxes.payments.conftest import WebhookReceiver, make_client, wait_for


def disputed_payment(client: stripe.StripeClient, amount: int = 4100) -> tuple[stripe.PaymentIntent, Any]:
    intent = client.v1.payment_intents.create(params={
        "amount": amount, "currency": "sgd", "payment_method": "pm_card_createDispute", "confirm": True,
    })
    (dispute,) = client.v1.disputes.list(params={"payment_intent": intent.id}).data
    return intent, dispute


def closed_events(client: stripe.StripeClient, dispute_id: str) -> list[stripe.Event]:
    listed = client.v1.events.list(params={"type": "charge.dispute.closed", "limit": 100}).auto_paging_iter()
    return [event for event in listed if event.data.object.id == dispute_id]


def test_dispute_is_lost_everywhere_when_the_merchant_closes_it(client: stripe.StripeClient) -> None:
    intent, dispute = disputed_payment(client)
    assert dispute.status == "needs_response"

    closed = client.v1.disputes.close(dispute.id)

    assert (closed.id, closed.object, closed.status) == (dispute.id, "dispute", "lost")
    assert (closed.amount, closed.charge, closed.payment_intent) == (4100, intent.latest_charge, intent.id)
    assert client.v1.disputes.retrieve(dispute.id).status == "lost"
    assert [d.status for d in client.v1.disputes.list(params={"charge": intent.latest_charge}).data] == ["lost"]
    assert client.v1.charges.retrieve(intent.latest_charge).disputed is True
    # the money left when the dispute opened: losing it withdraws nothing more
    withdrawals = client.v1.balance_transactions.list(params={"source": dispute.id}).data
    assert [(t.type, t.amount) for t in withdrawals] == [("adjustment", -4100)]


def test_closed_event_carries_the_lost_dispute_and_its_old_status_when_a_dispute_is_closed(
    client: stripe.StripeClient
) -> None:
    _, dispute = disputed_payment(client)
    client.v1.disputes.close(dispute.id)

    (event,) = closed_events(client, dispute.id)
    assert event.data.object.status == "lost" and event.data.object.object == "dispute"
    assert event.data.previous_attributes.to_dict() == {"status": "needs_response"}
    assert event.request.id.startswith("req_")


def test_closed_event_reaches_the_webhook_signed_when_an_endpoint_listens(
    client: stripe.StripeClient, receiver: tuple[WebhookReceiver, Any], no_faults: None
) -> None:
    rec, _ = receiver
    _, dispute = disputed_payment(client)
    client.v1.disputes.close(dispute.id)

    delivered = wait_for(lambda: [e for e in rec.events
                                  if e.type == "charge.dispute.closed" and e.data.object.id == dispute.id])
    assert delivered[0].data.object.status == "lost" and not rec.rejected


def test_closing_again_is_refused_and_changes_nothing_when_the_dispute_is_already_closed(
    client: stripe.StripeClient
) -> None:
    _, dispute = disputed_payment(client)
    client.v1.disputes.close(dispute.id)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.disputes.close(dispute.id)

    assert refused.value.http_status == 400
    assert refused.value.error is not None and refused.value.error.type == "invalid_request_error"
    assert "already closed" in (refused.value.error.message or "")
    assert client.v1.disputes.retrieve(dispute.id).status == "lost"
    assert len(closed_events(client, dispute.id)) == 1


def test_close_answers_resource_missing_when_the_dispute_does_not_exist(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.disputes.close("dp_doesnotexist")

    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    assert missing.value.error is not None and missing.value.error.message == "No such dispute: 'dp_doesnotexist'"


def test_retried_close_replays_the_first_answer_when_it_carries_the_same_idempotency_key(
    client: stripe.StripeClient
) -> None:
    _, dispute = disputed_payment(client)
    key = f"close-{secrets.token_hex(6)}"

    first = client.v1.disputes.close(dispute.id, options={"idempotency_key": key})
    again = client.v1.disputes.close(dispute.id, options={"idempotency_key": key})

    assert first.status == again.status == "lost"
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len(closed_events(client, dispute.id)) == 1


def test_reader_key_cannot_close_a_dispute_when_it_may_only_read(
    client: stripe.StripeClient, sandbox: RunningSandbox, env: dict[str, str]
) -> None:
    _, dispute = disputed_payment(client)
    reader = make_client(sandbox, env["REVLOOP_PAYMENTS_READER_KEY"])

    with pytest.raises(stripe.PermissionError):
        reader.v1.disputes.close(dispute.id)

    assert reader.v1.disputes.retrieve(dispute.id).status == "needs_response"
