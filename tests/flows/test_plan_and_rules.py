"""The dry-run plan, the headless commands, the block on failed checks, the re-invoice rule and renewals."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import psycopg
from typer.testing import CliRunner

from expectations.results import CheckResult, store
from revloop.cli import app
from revloop.cycle import CycleReport
from tests.flows.conftest import World, wait_for
from tests.flows.test_failures import outbox_rows


def _refresh_without_flows(world: World) -> None:
    report = CycleReport(started_at=dt.datetime.now(dt.UTC))
    world.cycle.load(("salesforce",), report)
    world.cycle.transform(("salesforce",), report)


def test_plan_prints_field_changes_and_sends_nothing_when_run_dry(world: World, cli_env: dict[str, str]) -> None:
    opportunity = world.win_deal(quantity=5, unit_price=70.0)
    _refresh_without_flows(world)

    result = CliRunner().invoke(app, ["plan"], env=cli_env)

    assert result.exit_code == 0, result.output
    assert f"{opportunity}: post erp account.move [won-deal:{opportunity}:v1] (deal won)" in result.output
    assert f"invoice_origin: - -> {opportunity}" in result.output
    assert "lines: - -> 5 x " in result.output
    assert outbox_rows(world, opportunity) == []
    assert world.erp_invoice_for(opportunity) is None
    world.run_cycle()  # leave the world settled for the next tests


def test_sync_once_runs_a_whole_cycle_and_says_what_it_did_when_run_headless(
        world: World, cli_env: dict[str, str]) -> None:
    opportunity = world.win_deal(quantity=1, unit_price=450.0)

    result = CliRunner().invoke(app, ["sync", "--once"], env=cli_env)

    assert result.exit_code == 0, result.output
    assert "cycle " in result.output and "loaded salesforce" in result.output
    assert f"{opportunity}: post erp account.move [won-deal:{opportunity}:v1]" in result.output
    assert (world.erp_invoice_for(opportunity) or {}).get("state") == "posted"


def test_worker_alone_delivers_what_a_cycle_enqueued_and_stops_on_sigterm(
        world: World, cli_env: dict[str, str]) -> None:
    opportunity = world.win_deal(quantity=1, unit_price=320.0)
    world.cycle.run(deliver=False)  # planned and recorded in the outbox; nothing sent
    assert world.erp_invoice_for(opportunity) is None

    worker = subprocess.Popen([sys.executable, "-m", "revloop.cli", "worker"], env={**os.environ, **cli_env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (world.erp_invoice_for(opportunity) or {}).get("state") == "posted",
                 what="the invoice delivered by `revloop worker`")
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=60)

    assert worker.returncode == 0, err
    assert "delivering" in out and "created" in out, out
    assert outbox_rows(world, opportunity)[0]["state"] == "delivered"


def _check(status: str) -> CheckResult:
    return CheckResult(run_id=f"test-{time.time_ns()}", check_name="won_opportunity_has_customer", suite="canonical",
                       severity="error", asset_keys=(("marts", "fct_opportunities"), ("marts", "dim_customers")),
                       status=status, unexpected_count=1 if status == "failed" else 0, sample=(),
                       started_at=dt.datetime.now(dt.UTC), duration_seconds=0.1, detail=None)


def test_won_deals_wait_when_a_blocking_check_fails_on_their_data(world: World) -> None:
    store(world.database_url, [_check("failed")])
    try:
        opportunity = world.win_deal(quantity=1, unit_price=640.0)
        report = world.run_cycle()
        assert report.blocked.get("won_deal_invoice") == ["won_opportunity_has_customer"]
        assert outbox_rows(world, opportunity) == []
        assert world.erp_invoice_for(opportunity) is None
    finally:
        store(world.database_url, [_check("passed")])
    wait_for(lambda: (i := world.erp_invoice_for(opportunity)) and i["state"] == "posted", step=world.run_cycle,
             what="the invoice once the check passes")


def test_changed_deal_is_credited_and_reinvoiced_when_its_invoice_is_unpaid(world: World) -> None:
    opportunity = world.win_deal(quantity=2, unit_price=900.0)
    wait_for(lambda: [r for r in world.sf_invoice_for(opportunity) if r["ERP_Invoice_Number__c"]],
             step=world.run_cycle, what="the first invoice in Salesforce")
    line = world.sf.query(f"SELECT Id FROM OpportunityLineItem WHERE OpportunityId = '{opportunity}'")["records"][0]
    world.sf.OpportunityLineItem.update(line["Id"], {"Quantity": 3})

    wait_for(lambda: world.erp_invoices_for(opportunity, "out_refund"), step=world.run_cycle,
             what="the credit note")
    invoices = wait_for(lambda: (found := world.erp_invoices_for(opportunity)) and len(found) == 2 and found,
                        step=world.run_cycle, what="the second invoice")
    assert sorted(i["ref"] for i in invoices) == [f"won-deal:{opportunity}:v1", f"won-deal:{opportunity}:v2"]
    refund = world.erp_invoices_for(opportunity, "out_refund")
    assert len(refund) == 1
    statuses = wait_for(lambda: (rows := world.sf_invoice_for(opportunity)) and len(rows) == 2
                        and sorted(r["Status__c"] for r in rows), step=world.run_cycle,
                        what="both invoices in Salesforce")
    assert statuses == ["Cancelled", "Posted"]

    world.sf.Opportunity.update(opportunity, {"StageName": "Negotiation/Review"})
    held = wait_for(lambda: [h for p in world.run_cycle(("salesforce",)).plans for h in p.holds
                             if h.source_ref == opportunity], what="the re-opened deal held")
    assert "re-opened" in held[0].reason
    assert len(world.erp_invoices_for(opportunity)) == 2


def test_subscription_ending_soon_gets_exactly_one_renewal(world: World) -> None:
    account = world.sf.query("SELECT Id FROM Account ORDER BY Id DESC LIMIT 1")["records"][0]["Id"]
    end = dt.date.today() + dt.timedelta(days=40)
    subscription = world.sf.Subscription__c.create({
        "Name": "Flow test subscription", "Account__c": account, "Status__c": "Active", "Amount__c": 12000,
        "Start_Date__c": (end - dt.timedelta(days=365)).isoformat(), "End_Date__c": end.isoformat(),
    })["id"]
    linked = wait_for(lambda: world.sf.Subscription__c.get(subscription)["Renewal_Opportunity__c"],
                      step=lambda: world.run_cycle(("salesforce",)), what="the renewal link")
    for _ in range(2):
        world.run_cycle(("salesforce",))
    renewals = world.sf.query_all(
        f"SELECT Id, CloseDate, Type FROM Opportunity WHERE AccountId = '{account}' AND Type = 'Renewal'"
        f" AND CloseDate = {end.isoformat()}")["records"]
    assert [r["Id"] for r in renewals] == [linked]
    with psycopg.connect(world.database_url) as conn:
        keys = [r[0] for r in conn.execute("select idempotency_key from sync.outbox where source_ref = %s",
                                           (subscription,))]
    assert keys == [f"renewal:{subscription}:{end.isoformat()}"]


def test_block_and_loaded_assets_show_in_dagster_when_the_loop_reports_them(world: World) -> None:
    import dagster as dg

    from revloop.flows.dagster_report import DagsterReporter

    instance = dg.DagsterInstance.ephemeral()
    world.cycle.reporter = DagsterReporter(instance)
    store(world.database_url, [_check("failed")])
    try:
        world.win_deal(quantity=1, unit_price=10.0)
        world.run_cycle(("salesforce",))
    finally:
        store(world.database_url, [_check("passed")])
        world.run_cycle(("salesforce",))
        world.cycle.reporter = None

    def observations() -> list[dict[str, object]]:
        records = instance.fetch_observations(dg.AssetKey(["marts", "fct_opportunities"]), limit=20).records
        return [dict(r.asset_observation.metadata) for r in records if r.asset_observation is not None]

    seen = wait_for(lambda: len(observations()) >= 2 and observations(), deadline=10, what="observations")
    blocked = [m for m in seen if m["sync_flow"].value == "won_deal_invoice"]  # type: ignore[attr-defined]
    assert {m["sync_blocked"].value for m in blocked} == {True, False}  # type: ignore[attr-defined]
    assert instance.get_latest_materialization_event(dg.AssetKey(["raw_salesforce", "opportunity"])) is not None
    flowed = wait_for(lambda: instance.get_latest_materialization_event(dg.AssetKey(["sync", "won_deal_invoice"])),
                      deadline=10, what="the flow's materialization")
    assert flowed.asset_materialization.metadata["enqueued"].value >= 1  # type: ignore[union-attr]
