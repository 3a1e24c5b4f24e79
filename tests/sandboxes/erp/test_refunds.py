"""Contract tests of refunds and returned payments: credit notes paid out with outbound payments, payments
reset to draft or cancelled, and which documents a payment of each direction can settle."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandboxes.erp.conftest import created_id, error_name, invoice_vals, records

TOTAL = 251.0  # invoice_vals(): 2 x 100.50 + 1 x 49.995 (rounded half-up per line)


def _move(sync: Any, move_id: int) -> dict[str, Any]:
    return records(sync.get_model("account.move").read([move_id], ["state", "payment_state", "amount_total",
                                                                     "amount_residual"]))[0]


def _payment(sync: Any, move_id: int, amount: float, payment_type: str = "inbound") -> int:
    payments = sync.get_model("account.payment")
    payment_id = created_id(payments.create({
        "payment_type": payment_type, "partner_type": "customer", "partner_id": 1000, "amount": amount,
        "currency_id": 1, "date": "2026-01-15", "memo": f"{payment_type} {move_id}",
        "invoice_ids": [[6, 0, [move_id]]],
    }))
    payments.action_post([payment_id])
    return payment_id


def _paid_invoice(sync: Any) -> tuple[int, int]:
    moves = sync.get_model("account.move")
    invoice = created_id(moves.create(invoice_vals()))
    moves.action_post([invoice])
    return invoice, _payment(sync, invoice, TOTAL)


def _credit_note(sync: Any, invoice: int, amount: float | None = None) -> int:
    """A posted credit note reversing ``invoice``: the invoice's lines, or one line of ``amount``."""
    moves = sync.get_model("account.move")
    values = invoice_vals(move_type="out_refund", reversed_entry_id=invoice)
    if amount is not None:
        values["invoice_line_ids"] = [[0, 0, {"name": "Refund", "quantity": 1, "price_unit": amount}]]
    refund = created_id(moves.create(values))
    moves.action_post([refund])
    return refund


def test_invoice_is_reversed_when_its_full_credit_note_is_paid_out(sync: Any) -> None:
    invoice, _ = _paid_invoice(sync)
    refund = _credit_note(sync, invoice)
    assert _move(sync, refund)["payment_state"] == "not_paid"
    assert _move(sync, invoice)["payment_state"] == "paid"  # the credit note alone does not settle anything

    _payment(sync, refund, TOTAL, "outbound")

    assert _move(sync, refund)["payment_state"] == "paid"
    assert (_move(sync, invoice)["payment_state"], _move(sync, invoice)["amount_residual"]) == ("reversed", 0.0)


def test_invoice_stays_paid_when_a_partial_credit_note_is_paid_out(sync: Any) -> None:
    invoice, _ = _paid_invoice(sync)
    refund = _credit_note(sync, invoice, amount=50.0)

    _payment(sync, refund, 50.0, "outbound")

    assert (_move(sync, refund)["payment_state"], _move(sync, refund)["amount_total"]) == ("paid", 50.0)
    assert _move(sync, invoice)["payment_state"] == "paid"


def test_payment_is_refused_when_its_direction_cannot_settle_the_document(sync: Any) -> None:
    invoice, _ = _paid_invoice(sync)
    refund = _credit_note(sync, invoice)
    for move_id, direction in ((invoice, "outbound"), (refund, "inbound")):
        with pytest.raises(Exception) as caught:
            _payment(sync, move_id, 10.0, direction)
        assert error_name(caught.value) == "odoo.exceptions.UserError"


def test_invoice_opens_again_when_its_payment_is_reset_to_draft_then_cancelled(sync: Any) -> None:
    invoice, payment = _paid_invoice(sync)
    payments = sync.get_model("account.payment")

    payments.action_draft([payment])

    assert (_move(sync, invoice)["payment_state"], _move(sync, invoice)["amount_residual"]) == ("not_paid", TOTAL)
    read = records(payments.read([payment], ["state", "reconciled_invoice_ids"]))[0]
    assert (read["state"], read["reconciled_invoice_ids"]) == ("draft", [])
    payments.action_cancel([payment])
    assert records(payments.read([payment], ["state"]))[0]["state"] == "canceled"
    assert _move(sync, invoice)["payment_state"] == "not_paid"


def test_register_wizard_sends_money_when_run_on_a_credit_note(sync: Any) -> None:
    invoice, _ = _paid_invoice(sync)
    refund = _credit_note(sync, invoice)
    wizard = sync.get_model("account.payment.register")
    context = {"active_model": "account.move", "active_ids": [refund]}

    action = wizard.action_create_payments([created_id(wizard.create([{}], context=context))], context=context)

    payment = records(sync.get_model("account.payment").read([action["res_id"]], ["payment_type", "amount"]))[0]
    assert (payment["payment_type"], payment["amount"]) == ("outbound", TOTAL)
    assert _move(sync, invoice)["payment_state"] == "reversed"
