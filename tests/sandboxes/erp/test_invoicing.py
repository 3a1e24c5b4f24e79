"""Contract tests of invoicing: lines as x2many commands, totals, posting, cancelling and payments."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.sandboxes.erp.conftest import connect, created_id, error_name, invoice_vals, records

MOVE_FIELDS = ["name", "state", "payment_state", "amount_untaxed", "amount_tax", "amount_total", "amount_residual",
               "invoice_line_ids", "write_date"]


def _move(sync: Any, move_id: int) -> dict[str, Any]:
    return records(sync.get_model("account.move").read([move_id], MOVE_FIELDS))[0]


def _posted_invoice(sync: Any, **extra: Any) -> int:
    moves = sync.get_model("account.move")
    move_id = created_id(moves.create(invoice_vals(**extra)))
    moves.action_post([move_id])
    return move_id


def test_totals_follow_the_lines_when_x2many_commands_edit_them(sync: Any) -> None:
    moves, lines = sync.get_model("account.move"), sync.get_model("account.move.line")
    move_id = created_id(moves.create(invoice_vals()))
    move = _move(sync, move_id)
    assert (move["name"], move["state"], move["amount_total"]) == ("/", "draft", 251.0)
    first, second = move["invoice_line_ids"]
    moves.write([move_id], {"invoice_line_ids": [[1, first, {"quantity": 3}], [2, second]]})
    assert _move(sync, move_id)["amount_total"] == 301.5
    moves.write([move_id], {"invoice_line_ids": [[0, 0, {"product_id": 3, "quantity": 1, "price_unit": 10,
                                                          "tax_ids": [[6, 0, [1]]]}]]})
    move = _move(sync, move_id)
    assert (move["amount_untaxed"], move["amount_tax"], move["amount_total"]) == (311.5, 0.9, 312.4)
    moves.write([move_id], {"invoice_line_ids": [[6, 0, [first]]]})
    assert _move(sync, move_id)["invoice_line_ids"] == [first]
    moves.write([move_id], {"invoice_line_ids": [[5]]})
    move = _move(sync, move_id)
    assert move["invoice_line_ids"] == [] and move["amount_total"] == 0.0
    assert lines.search_count([("move_id", "=", move_id)]) == 0


def test_action_post_assigns_sequential_numbers_when_invoices_are_posted(sync: Any) -> None:
    first, second = _posted_invoice(sync), _posted_invoice(sync)
    name1, name2 = _move(sync, first)["name"], _move(sync, second)["name"]
    assert re.fullmatch(r"INV/\d{4}/\d{5}", name1)
    assert int(name2.rsplit("/", 1)[1]) == int(name1.rsplit("/", 1)[1]) + 1
    seeded = sync.get_model("account.move").search_read([("name", "like", name1[:9])], ["name"])
    assert len({r["name"] for r in seeded}) == len(seeded)


def test_credit_notes_get_their_own_sequence_when_posted(sync: Any) -> None:
    original = _posted_invoice(sync)
    refund = _posted_invoice(sync, move_type="out_refund", reversed_entry_id=original)
    move = records(sync.get_model("account.move").read([refund], ["name", "reversed_entry_id"]))[0]
    assert move["name"].startswith("RINV/")
    assert move["reversed_entry_id"][0] == original


def test_user_error_is_raised_when_editing_or_reposting_a_posted_invoice(sync: Any) -> None:
    moves = sync.get_model("account.move")
    move_id = _posted_invoice(sync)
    line = _move(sync, move_id)["invoice_line_ids"][0]
    for attempt in (
        lambda: moves.write([move_id], {"invoice_line_ids": [[1, line, {"quantity": 9}]]}),
        lambda: moves.action_post([move_id]),
        lambda: moves.unlink([move_id]),
    ):
        with pytest.raises(Exception) as caught:
            attempt()
        assert error_name(caught.value) == "odoo.exceptions.UserError"
    moves.write([move_id], {"ref": "PO-1234"})  # free-text fields stay editable, as in Odoo


def test_cancel_then_draft_when_a_posted_invoice_is_withdrawn(sync: Any) -> None:
    moves = sync.get_model("account.move")
    move_id = _posted_invoice(sync)
    name = _move(sync, move_id)["name"]
    moves.button_cancel([move_id])
    assert _move(sync, move_id)["state"] == "cancel"
    moves.button_draft([move_id])
    move = _move(sync, move_id)
    assert (move["state"], move["name"]) == ("draft", name)


def test_payments_move_residual_and_state_when_registered_partially_then_fully(sync: Any) -> None:
    move_id = _posted_invoice(sync)
    wizard = sync.get_model("account.payment.register")
    context = {"active_model": "account.move", "active_ids": [move_id]}
    partial = created_id(wizard.create([{"amount": 100.0}], context=context))
    action = wizard.action_create_payments([partial], context=context)
    move = _move(sync, move_id)
    assert (move["payment_state"], move["amount_residual"]) == ("partial", 151.0)
    payment = records(sync.get_model("account.payment").read([action["res_id"]],
                                                             ["state", "amount", "reconciled_invoice_ids"]))[0]
    assert (payment["state"], payment["amount"], payment["reconciled_invoice_ids"]) == ("paid", 100.0, [move_id])
    rest = created_id(wizard.create([{}], context=context))
    wizard.action_create_payments([rest], context=context)
    move = _move(sync, move_id)
    assert (move["payment_state"], move["amount_residual"]) == ("paid", 0.0)


def test_payment_with_invoice_ids_reconciles_when_posted(sync: Any) -> None:
    move_id = _posted_invoice(sync)
    payments = sync.get_model("account.payment")
    payment_id = created_id(payments.create({
        "payment_type": "inbound", "partner_type": "customer", "partner_id": 1000, "amount": 251.0,
        "currency_id": 1, "date": "2026-01-15", "memo": "bank transfer", "invoice_ids": [[6, 0, [move_id]]],
    }))
    payments.action_post([payment_id])
    assert _move(sync, move_id)["payment_state"] == "paid"
    assert records(payments.read([payment_id], ["name"]))[0]["name"].startswith("PBNK1/2026/")


def test_duplicate_ref_is_accepted_when_two_customer_invoices_share_it(sync: Any) -> None:
    moves = sync.get_model("account.move")
    first = created_id(moves.create(invoice_vals(ref="rl-inv-shared")))
    second = created_id(moves.create(invoice_vals(ref="rl-inv-shared")))
    assert first != second
    assert {first, second} <= set(moves.search([("ref", "=", "rl-inv-shared")]))


def test_seeded_invoices_agree_with_their_payments_when_read(sync: Any) -> None:
    moves = sync.get_model("account.move")
    paid = moves.search_read([("payment_state", "=", "paid"), ("id", "<", 1_000_000_000)],
                             ["amount_residual", "invoice_origin", "ref", "matched_payment_ids"], limit=5)
    assert paid and all(r["amount_residual"] == 0.0 and r["matched_payment_ids"] for r in paid)
    assert all(r["ref"].startswith("rl-inv-") and r["invoice_origin"].startswith("006") for r in paid)
    partial = moves.search_read([("payment_state", "=", "partial")], ["amount_total", "amount_residual"], limit=5)
    assert partial and all(0 < r["amount_residual"] < r["amount_total"] for r in partial)


def test_admin_key_can_create_products_when_sync_cannot(erp: Any, keys: dict[str, str]) -> None:
    products = connect(erp, "json2", "admin", keys["admin"]).get_model("product.product")
    product_id = created_id(products.create({"name": "Sandbox Widget", "default_code": "SW-1", "list_price": 5}))
    assert records(products.read([product_id], ["display_name"]))[0]["display_name"] == "[SW-1] Sandbox Widget"
