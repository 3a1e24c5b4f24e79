"""Which payments webhooks run a payments cycle at once: outcomes do, echoes of our own writes do not."""

from __future__ import annotations

import pytest

from revloop.cycle import wakes_a_cycle


@pytest.mark.parametrize("event_type", [
    "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
    "payment_intent.processing", "charge.succeeded", "charge.failed", "charge.refunded", "charge.updated",
    "charge.dispute.created", "charge.dispute.closed", "invoice.paid", "invoice.payment_failed",
    "invoice.payment_succeeded", "invoice.voided", "invoice.marked_uncollectible", "refund.created",
])
def test_a_payment_outcome_wakes_a_cycle(event_type: str) -> None:
    assert wakes_a_cycle(event_type)


@pytest.mark.parametrize("event_type", [
    "customer.created", "invoice.created", "invoice.finalized", "invoice.updated", "invoiceitem.created",
    "payment_intent.created", "payment_intent.updated",
])
def test_an_echo_of_our_own_writes_waits_for_the_next_regular_load(event_type: str) -> None:
    assert not wakes_a_cycle(event_type)
