"""The payment status rule, on its own: all attempts count, whatever order their events came in."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from revloop.flows.payment_outcome import outcome

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def charge(status: str, amount: str = "100", refunded: str = "0", disputed: bool = False, minutes: int = 0
           ) -> dict[str, Any]:
    succeeded = status == "succeeded"
    return {"status": status, "is_succeeded": succeeded, "is_disputed": disputed,
            "amount_net": Decimal(amount) - Decimal(refunded) if succeeded else Decimal(0),
            "amount_refunded": Decimal(refunded), "created_at": T0 + dt.timedelta(minutes=minutes)}


def test_late_failure_never_hides_a_success_when_attempts_arrive_in_any_order() -> None:
    attempts = [charge("failed", minutes=0), charge("succeeded", minutes=5), charge("failed", minutes=9)]
    for order in itertools.permutations(attempts):
        result = outcome(order, Decimal("100"))
        assert result.status == "Paid"
        assert result.paid_at == T0 + dt.timedelta(minutes=5)


def test_duplicated_attempts_do_not_change_the_status_when_seen_twice() -> None:
    once = outcome([charge("succeeded", amount="40")], Decimal("100"))
    twice = outcome([charge("failed"), charge("succeeded", amount="40")], Decimal("100"))
    assert once.status == twice.status == "Partially Paid"


def test_status_is_failed_only_when_no_attempt_succeeded() -> None:
    assert outcome([charge("failed"), charge("failed")], Decimal("100")).status == "Failed"
    assert outcome([], Decimal("100")).status == "Unpaid"
    assert outcome([charge("pending")], Decimal("100")).status == "Unpaid"


def test_refund_and_dispute_win_over_paid_when_money_went_back_or_may_go_back() -> None:
    assert outcome([charge("succeeded", refunded="100")], Decimal("100")).status == "Refunded"
    assert outcome([charge("succeeded", disputed=True)], Decimal("100")).status == "Disputed"
    assert outcome([charge("succeeded", refunded="100"), charge("failed", minutes=3)], Decimal("100")).status == \
        "Refunded"


def test_partial_refund_keeps_the_invoice_paid_when_the_customer_owes_nothing() -> None:
    """A partial refund is a credit note in the ERP (the invoice stays paid); Salesforce says the same."""
    partial_refund = outcome([charge("succeeded", refunded="30", minutes=2)], Decimal("100"))
    assert (partial_refund.status, partial_refund.amount_paid) == ("Paid", Decimal("70"))
    assert partial_refund.paid_at == T0 + dt.timedelta(minutes=2)


def test_refund_of_a_part_payment_leaves_it_partly_paid_when_the_invoice_was_never_paid_in_full() -> None:
    attempts = [charge("succeeded", amount="60", refunded="10"), charge("failed", minutes=1)]
    assert outcome(attempts, Decimal("100")).status == "Partially Paid"
    assert outcome([charge("succeeded", amount="60", refunded="60")], Decimal("100")).status == "Refunded"
