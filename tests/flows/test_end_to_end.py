"""A won deal becomes an ERP invoice, a Salesforce Invoice__c and a payment request; paying it flows back to
the ERP and Salesforce. Driven only through the real clients, cycles run until a deadline."""

from __future__ import annotations

import psycopg

from tests.flows.conftest import World, wait_for


def test_won_deal_is_invoiced_and_paid_everywhere_when_nobody_types_anything(world: World) -> None:
    opportunity = world.win_deal(quantity=3, unit_price=1200.0)

    invoice = wait_for(lambda: (i := world.erp_invoice_for(opportunity)) and i["state"] == "posted" and i,
                       step=world.run_cycle, what="the posted ERP invoice")
    assert invoice["amount_total"] >= 3600.0
    assert invoice["ref"] == f"won-deal:{opportunity}:v1"

    sf_invoices = wait_for(lambda: [r for r in world.sf_invoice_for(opportunity)
                                    if r["ERP_Invoice_Number__c"] == invoice["name"]],
                           step=world.run_cycle, what="the Salesforce Invoice__c with the ERP number")
    assert len(sf_invoices) == 1
    assert sf_invoices[0]["Payment_Status__c"] == "Unpaid"

    payments_invoice = wait_for(lambda: world.payments_invoice_for(invoice["id"], opportunity), step=world.run_cycle,
                                what="the payments invoice")
    assert payments_invoice.status == "open"
    metadata = payments_invoice.to_dict()["metadata"]
    assert metadata["salesforce_opportunity_id"] == opportunity
    assert metadata["erp_invoice_number"] == invoice["name"]

    world.stripe.v1.invoices.pay(payments_invoice.id, params={"payment_method": "pm_card_visa"})

    wait_for(lambda: world.erp_invoice_for(opportunity)["payment_state"] in ("paid", "in_payment"),
             step=world.run_cycle, what="the ERP payment state")
    paid = wait_for(lambda: [r for r in world.sf_invoice_for(opportunity) if r["Payment_Status__c"] == "Paid"],
                    step=world.run_cycle, what="Invoice__c Paid")
    assert paid[0]["Paid_At__c"]
    with psycopg.connect(world.database_url) as conn:
        states = dict(conn.execute(
            "select state, count(*) from sync.outbox where source_ref = %s or source_ref = %s group by state",
            (opportunity, str(invoice["id"])),
        ).fetchall())
    assert set(states) == {"delivered"}


def test_warm_loop_invoices_and_marks_paid_within_seconds_when_woken_by_poll_and_webhook(world: World) -> None:
    import threading

    from revloop.cycle import SyncLoop

    stop = threading.Event()
    loop = SyncLoop(world.cycle, poll_seconds=0.5, full_every_seconds=600.0)
    thread = threading.Thread(target=loop.run, args=(stop.is_set,), daemon=True)
    thread.start()
    try:
        opportunity = world.win_deal(quantity=1, unit_price=321.0)
        invoice = wait_for(lambda: (i := world.erp_invoice_for(opportunity)) and i["state"] == "posted" and i,
                           deadline=20, what="the loop posting the ERP invoice")
        request = wait_for(lambda: world.payments_invoice_for(invoice["id"], opportunity), deadline=20,
                           what="the loop's payment request")
        world.stripe.v1.invoices.pay(request.id, params={"payment_method": "pm_card_visa"})
        wait_for(lambda: [r for r in world.sf_invoice_for(opportunity) if r["Payment_Status__c"] == "Paid"],
                 deadline=20, what="the webhook-driven Invoice__c Paid")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert loop.cycles >= 2


def test_a_stopping_cycle_ends_after_the_step_it_is_in_and_the_next_cycle_catches_up(world: World) -> None:
    opportunity = world.win_deal(quantity=1, unit_price=77.0)
    asked: list[int] = []

    def stop_after_the_load() -> bool:
        asked.append(1)
        return len(asked) > 1  # asked before the load (go on), then before the transform (stop)

    report = world.cycle.run(("salesforce",), stop=stop_after_the_load)
    assert report.stopped and len(asked) == 2
    assert report.loaded.get("salesforce", 0) >= 1
    assert report.models == [] and report.plans == [] and not report.enqueued
    assert world.erp_invoice_for(opportunity) is None
    # nothing was lost by stopping: the next cycles rebuild for the deal loaded before the stop (they load
    # nothing new of it) and invoice it
    nothing_new = world.run_cycle()
    assert "fct_opportunities" in nothing_new.models, nothing_new
    invoice = wait_for(lambda: world.erp_invoice_for(opportunity), step=world.run_cycle, what="the ERP invoice")
    assert invoice["state"] == "posted"
