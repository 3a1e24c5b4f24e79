"""Payment intents with each test payment method, asynchronous settlement, refunds and disputes."""

from __future__ import annotations

import pytest
import stripe

from tests.sandboxes.payments.conftest import wait_for


def pay(client: stripe.StripeClient, method: str, amount: int = 2500, currency: str = "sgd") -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(params={
        "amount": amount, "currency": currency, "payment_method": method, "confirm": True,
        "metadata": {"erp_invoice_number": "INV/2026/00042"},
    })


@pytest.mark.parametrize("method", ["pm_card_visa", "pm_card_mastercard", "tok_visa", "4242424242424242"])
def test_intent_succeeds_with_charge_when_method_is_a_good_card(client: stripe.StripeClient, method: str) -> None:
    intent = pay(client, method)
    assert intent.status == "succeeded" and intent.amount_received == 2500
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.paid and charge.status == "succeeded" and charge.outcome.type == "authorized"
    assert charge.payment_intent == intent.id and charge.metadata["erp_invoice_number"] == "INV/2026/00042"


@pytest.mark.parametrize(("method", "decline_code"), [
    ("pm_card_chargeDeclined", "generic_decline"),
    ("4000000000000002", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ("4000000000009995", "insufficient_funds"),
])
def test_intent_declines_with_card_error_when_method_is_a_declining_card(
    client: stripe.StripeClient, method: str, decline_code: str
) -> None:
    with pytest.raises(stripe.CardError) as info:
        pay(client, method)
    error = info.value
    assert error.http_status == 402 and error.code == "card_declined"
    assert error.error.decline_code == decline_code and error.error.type == "card_error"
    intent = client.v1.payment_intents.retrieve(error.error.payment_intent.id)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.decline_code == decline_code
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.status == "failed" and charge.failure_code == "card_declined" and not charge.paid


def test_intent_goes_processing_then_succeeded_when_method_settles_asynchronously(
    client: stripe.StripeClient, sandbox
) -> None:  # type: ignore[no-untyped-def]
    sandbox.admin("PUT", "payments/settings", {"settlement_delay_seconds": 1.0})
    intent = pay(client, "pm_usBankAccount_success", amount=10000, currency="usd")
    assert intent.status == "processing"
    assert client.v1.charges.retrieve(intent.latest_charge).status == "pending"
    settled = wait_for(lambda: (pi := client.v1.payment_intents.retrieve(intent.id)).status == "succeeded" and pi)
    assert settled.amount_received == 10000
    assert client.v1.charges.retrieve(intent.latest_charge).status == "succeeded"
    types = [e.type for e in client.v1.events.list(params={"types": ["payment_intent.processing",
                                                                     "payment_intent.succeeded"], "limit": 20}).data
             if e.data.object.id == intent.id]
    assert types == ["payment_intent.succeeded", "payment_intent.processing"]


def test_async_failure_returns_intent_to_requires_payment_method_when_admin_advances(
    client: stripe.StripeClient, sandbox
) -> None:  # type: ignore[no-untyped-def]
    sandbox.admin("PUT", "payments/settings", {"settlement_delay_seconds": 3600})
    intent = pay(client, "pm_usBankAccount_insufficientFunds", amount=10000, currency="usd")
    assert intent.status == "processing"
    assert sandbox.admin("POST", "payments/settlements/advance")["settled"] >= 1
    after = client.v1.payment_intents.retrieve(intent.id)
    assert after.status == "requires_payment_method" and after.last_payment_error.code == "insufficient_funds"
    sandbox.admin("PUT", "payments/settings", {"settlement_delay_seconds": 2.0})


def test_confirm_and_cancel_follow_stripe_states_when_intent_created_unconfirmed(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(params={"amount": 600, "currency": "sgd"})
    assert intent.status == "requires_payment_method"
    confirmed = client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
    assert confirmed.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.cancel(intent.id)
    assert info.value.code == "payment_intent_unexpected_state"
    other = client.v1.payment_intents.create(params={"amount": 600, "currency": "sgd"})
    assert client.v1.payment_intents.cancel(other.id).status == "canceled"


def test_manual_capture_holds_funds_until_captured(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(params={"amount": 900, "currency": "sgd", "capture_method": "manual",
                                                      "payment_method": "pm_card_visa", "confirm": True})
    assert intent.status == "requires_capture" and intent.amount_capturable == 900
    captured = client.v1.payment_intents.capture(intent.id, params={"amount_to_capture": 800})
    assert captured.status == "succeeded" and captured.amount_received == 800


def test_amount_too_small_rejected_when_below_currency_minimum(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(params={"amount": 10, "currency": "jpy"})
    assert info.value.code == "amount_too_small" and info.value.param == "amount"


def test_refunds_move_charge_amount_refunded_when_partial_then_full(client: stripe.StripeClient) -> None:
    intent = pay(client, "pm_card_visa", amount=5000)
    partial = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1500,
                                               "reason": "requested_by_customer"})
    assert partial.status == "succeeded" and partial.amount == 1500 and partial.charge == intent.latest_charge
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.amount_refunded == 1500 and charge.refunded is False
    rest = client.v1.refunds.create(params={"charge": charge.id})
    assert rest.amount == 3500
    charge = client.v1.charges.retrieve(charge.id)
    assert charge.amount_refunded == 5000 and charge.refunded is True
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"charge": charge.id, "amount": 1})
    assert info.value.code == "charge_already_refunded"
    listed = client.v1.refunds.list(params={"charge": charge.id})
    assert {r.id for r in listed.data} == {partial.id, rest.id}
    refunded_events = [e for e in client.v1.events.list(params={"type": "charge.refunded", "limit": 5}).data
                       if e.data.object.id == charge.id]
    assert refunded_events and "amount_refunded" in refunded_events[0].data.previous_attributes


def test_refund_rejected_when_amount_exceeds_unrefunded(client: stripe.StripeClient) -> None:
    intent = pay(client, "pm_card_visa", amount=1000)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1001})
    assert info.value.code == "amount_too_large" and info.value.param == "amount"


def test_dispute_opened_when_card_creates_dispute(client: stripe.StripeClient) -> None:
    intent = pay(client, "pm_card_createDispute")
    disputes = client.v1.disputes.list(params={"charge": intent.latest_charge})
    assert len(disputes.data) == 1 and disputes.data[0].status == "needs_response"
    assert client.v1.charges.retrieve(intent.latest_charge).disputed is True


def test_unknown_payment_method_answers_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        pay(client, "pm_card_nonsense")
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
