"""Refunds, disputes and failed payments reach the ERP as Odoo records them and Salesforce's Invoice__c shows
them: a partial refund is a credit note paid out (the invoice stays paid), a full one reverses the invoice, an
open dispute changes nothing in the ERP, a lost one cancels the receipt, a failure registers nothing. Driven
through the stripe SDK."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
import stripe

from expectations.reconciliation import reconciliation_checks
from tests.flows.conftest import World, wait_for
from tests.flows.test_failures import invoiced, outbox_rows


def charge_of(world: World, erp_invoice_id: int) -> dict[str, Any]:
    """The succeeded charge paying an ERP invoice, as the warehouse knows it."""
    with psycopg.connect(world.database_url) as conn:
        row = conn.execute("select charge_id, payment_intent_id, amount_captured, currency_code from marts.fct_payments"
                           " where erp_invoice_id = %s and is_succeeded", (erp_invoice_id,)).fetchone()
    assert row is not None
    return {"charge": row[0], "intent": row[1], "amount": Decimal(row[2]), "currency": row[3]}


def paid(world: World, **deal: Any) -> tuple[str, dict[str, Any]]:
    opportunity, invoice, request = invoiced(world, **deal)
    world.stripe.v1.invoices.pay(request.id, params={"payment_method": "pm_card_visa"})
    wait_for(lambda: world.erp_invoice_for(opportunity)["payment_state"] == "paid", step=world.run_cycle,
             what="the ERP invoice paid")
    return opportunity, invoice


def credit_notes(world: World, erp_invoice_id: int) -> list[dict[str, Any]]:
    return world.erp.get_model("account.move").search_read(
        [["reversed_entry_id", "=", erp_invoice_id], ["move_type", "=", "out_refund"]],
        ["ref", "state", "payment_state", "amount_total"])


def payment_status(world: World, opportunity: str) -> list[str]:
    return [r["Payment_Status__c"] for r in world.sf_invoice_for(opportunity)]


def test_refunds_are_credit_notes_paid_out_and_reverse_the_invoice_once_refunded_in_full(world: World) -> None:
    opportunity, invoice = paid(world, quantity=2, unit_price=250.0)
    charge = wait_for(lambda: charge_of(world, invoice["id"]), step=world.run_cycle, what="the charge loaded")
    partial = world.stripe.v1.refunds.create(params={"charge": charge["charge"], "amount": 12345})

    notes = wait_for(lambda: [n for n in credit_notes(world, invoice["id"]) if n["payment_state"] == "paid"],
                     step=world.run_cycle, what="the partial refund's credit note paid out")
    assert [(n["ref"], n["amount_total"]) for n in notes] == [(f"erp-refund:{partial.id}", 123.45)]
    assert world.erp_invoice_for(opportunity)["payment_state"] == "paid"
    assert payment_status(world, opportunity) == ["Paid"]
    sent = world.erp.get_model("account.payment").search_read([["memo", "=", partial.id]],
                                                              ["payment_type", "amount", "state"])
    assert [(p["payment_type"], p["amount"], p["state"]) for p in sent] == [("outbound", 123.45, "paid")]

    rest = world.stripe.v1.refunds.create(params={"charge": charge["charge"]})

    wait_for(lambda: world.erp_invoices_for(opportunity)[0]["payment_state"] == "reversed", step=world.run_cycle,
             what="the invoice reversed")
    wait_for(lambda: payment_status(world, opportunity) == ["Refunded"], step=world.run_cycle,
             what="Invoice__c Refunded")
    assert sorted(n["ref"] for n in credit_notes(world, invoice["id"])) == sorted(
        [f"erp-refund:{partial.id}", f"erp-refund:{rest.id}"])
    for _ in range(2):  # refund events seen again change nothing
        world.run_cycle()
    refunds = outbox_rows(world, partial.id) + outbox_rows(world, rest.id)
    assert [(r["operation"], r["state"]) for r in refunds] == [("refund", "delivered")] * 2
    assert len(credit_notes(world, invoice["id"])) == 2


def test_open_dispute_shows_in_salesforce_and_leaves_the_erp_paid_when_the_customer_disputes(world: World) -> None:
    opportunity, invoice, request = invoiced(world, quantity=1, unit_price=610.0)
    world.stripe.v1.invoices.pay(request.id, params={"payment_method": "pm_card_createDispute"})

    wait_for(lambda: payment_status(world, opportunity) == ["Disputed"], step=world.run_cycle,
             what="Invoice__c Disputed")
    wait_for(lambda: world.erp_invoice_for(opportunity)["payment_state"] == "paid", step=world.run_cycle,
             what="the receipt registered")
    world.run_cycle()
    with psycopg.connect(world.database_url) as conn:
        chargebacks = conn.execute("select count(*) from sync.outbox where operation = 'chargeback'").fetchone()
    assert chargebacks == (0,)  # money may come back: nothing to take back in the ERP until it is lost


def reconciliation_rows(world: World, check_name: str, erp_invoice_id: int) -> list[dict[str, Any]]:
    """The offending rows a reconciliation check reports for one ERP invoice, read straight from the warehouse."""
    check = next(c for c in reconciliation_checks() if c.name == check_name)
    sql = (check.sql or "").format(batch=f"{check.schema}.{check.table}")
    with psycopg.connect(world.database_url) as conn:
        cursor = conn.execute(sql)
        columns = [c.name for c in cursor.description or ()]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return [row for row in rows if row["erp_invoice_id"] == erp_invoice_id]


def receipts(world: World, payment_intent_id: str) -> list[tuple[str, float]]:
    found = world.erp.get_model("account.payment").search_read([["memo", "=", payment_intent_id]],
                                                               ["state", "amount"])
    return [(p["state"], p["amount"]) for p in found]


def test_lost_dispute_cancels_the_receipt_once_when_the_merchant_accepts_the_dispute(world: World) -> None:
    opportunity, invoice, request = invoiced(world, quantity=1, unit_price=730.0)
    world.stripe.v1.invoices.pay(request.id, params={"payment_method": "pm_card_createDispute"})
    wait_for(lambda: world.erp_invoice_for(opportunity)["payment_state"] == "paid", step=world.run_cycle,
             what="the receipt registered")
    wait_for(lambda: payment_status(world, opportunity) == ["Disputed"], step=world.run_cycle,
             what="Invoice__c Disputed")
    charge = charge_of(world, invoice["id"])
    (dispute,) = world.stripe.v1.disputes.list(params={"charge": charge["charge"]}).data

    world.faults("payments", webhook_duplicate_rate=1.0)
    try:
        lost = world.stripe.v1.disputes.close(dispute.id)
        (closed,) = [e for e in world.stripe.v1.events.list(params={"type": "charge.dispute.closed"}).data
                     if e.data.object.id == dispute.id]
        wait_for(lambda: world.erp_invoice_for(opportunity)["payment_state"] == "not_paid", step=world.run_cycle,
                 what="the receipt taken back")
        wait_for(lambda: [d for d in world.sandboxes["payments"].admin(
            "GET", f"payments/deliveries?event={closed.id}")["data"] if d["state"] == "succeeded"][1:],
            step=world.run_cycle, what="the closed event delivered twice")
    finally:
        world.faults("payments")
    for _ in range(2):  # the closed event seen again, by webhook and in the events feed, changes nothing
        world.run_cycle()

    assert lost.status == "lost"
    assert receipts(world, charge["intent"]) == [("canceled", 730.0)]
    after = world.erp_invoice_for(opportunity)
    assert (after["payment_state"], after["amount_residual"]) == ("not_paid", after["amount_total"])
    assert [(r["operation"], r["idempotency_key"], r["state"]) for r in outbox_rows(world, dispute.id)] == [
        ("chargeback", f"erp-chargeback:{dispute.id}", "delivered")]
    assert payment_status(world, opportunity) == ["Disputed"]
    with psycopg.connect(world.database_url) as conn:
        stored = conn.execute("select count(*) from sync.webhook_events where event_id = %s", (closed.id,)).fetchone()
    assert stored == (1,)
    assert reconciliation_rows(world, "payments_net_equals_erp_paid", invoice["id"]) == []
    # unpaid again in all three: the ERP receipt cancelled, Salesforce Disputed, the payments invoice paid but lost
    assert reconciliation_rows(world, "invoice_statuses_agree", invoice["id"]) == []


def test_failed_payment_shows_in_salesforce_and_registers_nothing_in_the_erp_when_the_card_is_declined(
        world: World) -> None:
    opportunity, invoice, request = invoiced(world, quantity=1, unit_price=77.0)
    with pytest.raises(stripe.CardError):
        world.stripe.v1.invoices.pay(request.id, params={"payment_method": "pm_card_chargeDeclined"})

    wait_for(lambda: payment_status(world, opportunity) == ["Failed"], step=world.run_cycle,
             what="Invoice__c Failed")
    world.run_cycle()
    assert world.erp_invoice_for(opportunity)["payment_state"] == "not_paid"
    payments = world.erp.get_model("account.payment").search_read([["invoice_ids", "in", [invoice["id"]]]], ["id"])
    assert payments == []
