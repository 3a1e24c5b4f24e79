"""What goes wrong on the way, and why nothing is lost or doubled: duplicated and reordered payment events,
a worker dying between the target's write and our bookkeeping, a target that is down, a write the target
refuses, a dead-lettered write replayed."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
import stripe
from typer.testing import CliRunner

from revloop.cli import app
from revloop.sync import outbox
from tests.flows.conftest import World, wait_for


def outbox_rows(world: World, source_ref: str) -> list[dict[str, Any]]:
    with psycopg.connect(world.database_url) as conn:
        cursor = conn.execute(
            "select id, flow, operation, idempotency_key, state, attempts, last_error_code, target_id"
            " from sync.outbox where source_ref = %s order by id", (source_ref,))
        columns = [c.name for c in cursor.description or ()]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def attempts_of(world: World, row_id: int) -> list[str]:
    with psycopg.connect(world.database_url) as conn:
        return [r[0] for r in conn.execute(
            "select status from sync.attempts where outbox_id = %s order by id", (row_id,))]


def invoiced(world: World, **deal: Any) -> tuple[str, dict[str, Any], Any]:
    """A won deal carried through to its open payments invoice."""
    opportunity = world.win_deal(**deal)
    invoice = wait_for(lambda: (i := world.erp_invoice_for(opportunity)) and i["state"] == "posted" and i,
                       step=world.run_cycle, what="the posted ERP invoice")
    request = wait_for(lambda: world.payments_invoice_for(invoice["id"], opportunity), step=world.run_cycle,
                       what="the payments invoice")
    return opportunity, invoice, request


def test_payment_outcome_is_applied_once_when_webhooks_are_duplicated_and_reordered(world: World) -> None:
    opportunity, invoice, request = invoiced(world, quantity=1, unit_price=800.0)
    world.faults("payments", webhook_duplicate_rate=1.0, webhook_reorder=True)
    try:
        with pytest.raises(stripe.CardError):
            world.stripe.v1.invoices.pay(request.id, params={"payment_method": "pm_card_chargeDeclined"})
        world.stripe.v1.invoices.pay(request.id, params={"payment_method": "pm_card_visa"})
        paid = wait_for(lambda: [r for r in world.sf_invoice_for(opportunity) if r["Payment_Status__c"] == "Paid"],
                        step=world.run_cycle, what="Invoice__c Paid")
        wait_for(lambda: world.erp_invoice_for(opportunity)["payment_state"] in ("paid", "in_payment"),
                 step=world.run_cycle, what="the ERP invoice paid")
        # late and duplicated "failed" / "succeeded" deliveries keep arriving: the outcome does not move
        world.sandboxes["payments"].admin("POST", "payments/deliveries/flush")
        for _ in range(3):
            world.run_cycle()
    finally:
        world.faults("payments")
    assert len(paid) == 1
    assert [r["Payment_Status__c"] for r in world.sf_invoice_for(opportunity)] == ["Paid"]
    payments = world.erp.get_model("account.payment").search_read(
        [["invoice_ids", "in", [invoice["id"]]]], ["memo", "amount", "state"])
    assert len(payments) == 1, payments
    with psycopg.connect(world.database_url) as conn:
        stored = conn.execute("select count(*) from sync.webhook_events where payload::text like %s",
                              (f"%{request.id}%",)).fetchone()
    assert stored and stored[0] >= 1


def test_no_duplicate_invoice_when_the_worker_dies_between_the_write_and_its_bookkeeping(world: World) -> None:
    opportunity = world.win_deal(quantity=1, unit_price=500.0)
    report = world.cycle.run(deliver=False)
    assert report.enqueued["won_deal_invoice"] >= 1
    with psycopg.connect(world.database_url) as conn, conn.transaction():
        claimed = outbox.claim(conn, world.cycle.cipher, limit=50, lease_seconds=1.0, systems=("erp",))
    ours = [row for row in claimed if row.write.source_ref == opportunity]
    assert len(ours) == 1
    # the target commits, then the process dies before mark_delivered: the rest stay in flight too
    world.cycle.worker.writers["erp"].deliver(ours[0].write)
    assert world.erp_invoice_for(opportunity)["state"] == "posted"
    with psycopg.connect(world.database_url) as conn:  # the dead worker's lease runs out
        conn.execute("update sync.outbox set lease_until = now() - interval '1 second' where state = 'in_flight'")
    wait_for(lambda: outbox_rows(world, opportunity)[0]["state"] == "delivered", step=world.run_cycle,
             what="the redelivered write settled")
    assert len(world.erp_invoices_for(opportunity)) == 1
    assert attempts_of(world, ours[0].id)[-1] == "found"


def test_writes_wait_and_arrive_when_the_erp_is_down_for_a_while(world: World) -> None:
    world.faults("erp", profile="down")
    try:
        opportunity = world.win_deal(quantity=2, unit_price=250.0)
        world.run_cycle(("salesforce",))  # (loading the ERP itself would wait out its own retries)
        rows = outbox_rows(world, opportunity)
        assert rows and rows[0]["state"] == "pending" and rows[0]["last_error_code"]
        assert world.sf_invoice_for(opportunity) == []
    finally:
        world.faults("erp")
    wait_for(lambda: [r for r in world.sf_invoice_for(opportunity) if r["ERP_Invoice_Number__c"]],
             step=world.run_cycle, what="the invoice delivered after the ERP came back")
    assert len(world.erp_invoices_for(opportunity)) == 1
    assert attempts_of(world, outbox_rows(world, opportunity)[0]["id"])[0] == "retry"


def test_refused_write_is_parked_with_its_reason_while_the_rest_continue(world: World) -> None:
    product = world.sf.Product2.create({"Name": "Unmapped service", "ProductCode": f"NOPE-{time.time_ns()}",
                                        "IsActive": True})
    account = world.sf.query("SELECT Id FROM Account WHERE ERP_Partner_Id__c != null ORDER BY Id LIMIT 1")
    opp = world.sf.Opportunity.create({"Name": "Deal with an unknown product", "StageName": "Negotiation/Review",
                                       "AccountId": account["records"][0]["Id"],
                                       "CloseDate": time.strftime("%Y-%m-%d", time.gmtime())})
    world.sf.OpportunityLineItem.create({"OpportunityId": opp["id"], "Product2Id": product["id"], "Quantity": 1,
                                         "UnitPrice": 99.0})
    world.sf.Opportunity.update(opp["id"], {"StageName": "Closed Won"})
    good = world.win_deal(quantity=1, unit_price=300.0)
    wait_for(lambda: (i := world.erp_invoice_for(good)) and i["state"] == "posted", step=world.run_cycle,
             what="the good deal's invoice")
    refused = wait_for(lambda: [r for r in outbox_rows(world, opp["id"]) if r["state"] == "parked"],
                       step=world.run_cycle, what="the refused write parked")
    assert refused[0]["last_error_code"] == "unknown_product"
    assert world.erp_invoice_for(opp["id"]) is None
    with psycopg.connect(world.database_url) as conn:
        alerts = conn.execute(
            "select count(*) from ops.alerts where kind = 'write-parked' and detail->>'outbox_id' = %s",
            (str(refused[0]["id"]),)).fetchone()
    assert alerts and alerts[0] == 1
    held = [h for p in world.cycle.run(("salesforce",)).plans for h in p.holds if h.source_ref == opp["id"]]
    assert held and "parked" in held[0].reason


def test_dead_lettered_write_is_delivered_when_replayed(world: World, cli_env: dict[str, str]) -> None:
    world.faults("erp", profile="down")
    try:
        opportunity = world.win_deal(quantity=4, unit_price=100.0)
        dead = wait_for(lambda: [r for r in outbox_rows(world, opportunity) if r["state"] == "dead"],
                        step=lambda: world.run_cycle(("salesforce",)), what="the write dead-lettered")
    finally:
        world.faults("erp")
    result = CliRunner().invoke(app, ["replay", "--id", str(dead[0]["id"])], env=cli_env)
    assert result.exit_code == 0, result.output
    wait_for(lambda: (i := world.erp_invoice_for(opportunity)) and i["state"] == "posted", step=world.run_cycle,
             what="the replayed invoice")
    assert outbox_rows(world, opportunity)[0]["state"] == "delivered"
    with psycopg.connect(world.database_url) as conn:
        audited = conn.execute(
            "select count(*) from sync.audit_log where action = 'replay' and detail->>'outbox_id' = %s",
            (str(dead[0]["id"]),)).fetchone()
    assert audited and audited[0] == 1
