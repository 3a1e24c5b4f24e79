"""A payment request whose ERP invoice the re-invoice rule credited: voided once while still open (through the
outbox, with its idempotency key, audited); held for review instead when it was paid first, and the deal's new
invoice waits for its own request until that payment is settled. Driven through the real clients."""

from __future__ import annotations

from typing import Any

import psycopg

from revloop.flows.base import Hold
from tests.flows.conftest import World, wait_for
from tests.flows.test_failures import invoiced, outbox_rows


def change_quantity(world: World, opportunity: str, quantity: int) -> None:
    line = world.sf.query(f"SELECT Id FROM OpportunityLineItem WHERE OpportunityId = '{opportunity}'")["records"][0]
    world.sf.OpportunityLineItem.update(line["Id"], {"Quantity": quantity})


def reinvoiced(world: World, opportunity: str) -> dict[str, Any] | None:
    """The deal's second invoice, once posted (the first one credited)."""
    return next((i for i in world.erp_invoices_for(opportunity)
                 if i["ref"] == f"won-deal:{opportunity}:v2" and i["state"] == "posted"), None)


def request_rows(world: World, erp_invoice_id: int) -> list[tuple[str, str, str]]:
    return [(r["operation"], r["idempotency_key"], r["state"]) for r in outbox_rows(world, str(erp_invoice_id))
            if r["flow"] == "invoice_payment_request"]


def holds_of(world: World, flow: str, source_ref: str) -> list[Hold]:
    return [h for plan in world.run_cycle().plans if plan.flow == flow for h in plan.holds
            if h.source_ref == source_ref]


def test_open_payment_request_is_voided_once_when_its_erp_invoice_is_credited_for_a_reinvoice(world: World) -> None:
    opportunity, first, request = invoiced(world, quantity=2, unit_price=880.0)

    change_quantity(world, opportunity, 3)

    voided = wait_for(lambda: (r := world.stripe.v1.invoices.retrieve(request.id)).status == "void" and r,
                      step=world.run_cycle, what="the first invoice's payment request voided")
    second = wait_for(lambda: reinvoiced(world, opportunity), step=world.run_cycle, what="the second invoice")
    renewed = wait_for(lambda: world.payments_invoice_for(second["id"], opportunity), step=world.run_cycle,
                       what="the second invoice's payment request")
    for _ in range(2):  # seen again, nothing more is written
        world.run_cycle()

    assert renewed.status == "open" and renewed.id != request.id
    intent = world.stripe.v1.payment_intents.retrieve(voided.to_dict()["payment_intent"])
    assert (intent.status, intent.cancellation_reason) == ("canceled", "void_invoice")
    key = f"pay-void:{first['id']}"
    assert request_rows(world, first["id"]) == [("create", f"pay-request:{first['id']}", "delivered"),
                                                ("void", key, "delivered")]
    with psycopg.connect(world.database_url) as conn:
        audited = conn.execute("select action, result, target_id from sync.audit_log where idempotency_key = %s",
                               (key,)).fetchall()
    assert audited == [("invoice_payment_request:void", "created", request.id)]
    (event,) = [e for e in world.stripe.v1.events.list(params={"type": "invoice.voided"}).data
                if e.data.object.id == request.id]
    assert event.request.idempotency_key == f"{key}:void"


def test_paid_payment_request_is_held_not_voided_when_its_erp_invoice_was_credited_meanwhile(world: World) -> None:
    opportunity, first, request = invoiced(world, quantity=1, unit_price=940.0)
    # the customer pays the first request while the deal changes: the next cycle re-invoices (the ERP does not
    # know of the payment yet) and finds the request paid
    change_quantity(world, opportunity, 2)
    world.stripe.v1.invoices.pay(request.id, params={"payment_method": "pm_card_visa"})

    second = wait_for(lambda: reinvoiced(world, opportunity), step=world.run_cycle, what="the second invoice")
    held = wait_for(lambda: holds_of(world, "invoice_payment_request", str(first["id"])),
                    what="the paid request held")
    intent = world.stripe.v1.invoices.retrieve(request.id).to_dict()["payment_intent"]

    assert "was paid" in held[0].reason and "held for review" in held[0].reason
    assert [h.reason for h in holds_of(world, "payment_outcome", intent)][0].startswith("940")
    waiting = holds_of(world, "invoice_payment_request", str(second["id"]))
    assert waiting and "no new payment request" in waiting[0].reason
    assert world.stripe.v1.invoices.retrieve(request.id).status == "paid"
    assert request_rows(world, first["id"]) == [("create", f"pay-request:{first['id']}", "delivered")]
    assert world.payments_invoice_for(second["id"], opportunity) is None
    assert world.erp.get_model("account.payment").search_read([["memo", "=", intent]], ["id"]) == []

    world.stripe.v1.refunds.create(params={"payment_intent": intent})  # a person settles it: the money goes back

    renewed = wait_for(lambda: world.payments_invoice_for(second["id"], opportunity), step=world.run_cycle,
                       what="the second invoice's payment request once the payment is refunded")
    assert renewed.status == "open"
    assert holds_of(world, "invoice_payment_request", str(first["id"])) == []
    assert holds_of(world, "payment_outcome", intent) == []
    assert world.stripe.v1.invoices.retrieve(request.id).status == "paid"
    assert request_rows(world, first["id"]) == [("create", f"pay-request:{first['id']}", "delivered")]
