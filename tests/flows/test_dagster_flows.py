"""The flows as Dagster assets: materializing them moves a won deal to the ERP, and a block shows on them."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from assets.flows import sync_flows
from assets.resources import RevloopResource
from expectations.results import store
from revloop.cycle import CycleReport
from tests.flows.conftest import World
from tests.flows.test_plan_and_rules import _check


@pytest.fixture
def dagster_env(world: World, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in cli_env.items():
        monkeypatch.setenv(key, value)


def _materialize() -> tuple[dict[str, dict[str, object]], dict[str, dg.AssetCheckEvaluation]]:
    result = dg.materialize([sync_flows], resources={"revloop": RevloopResource()})
    assert result.success
    metadata = {
        event.asset_key.path[-1]: {k: getattr(v, "value", v) for k, v in
                                   event.step_materialization_data.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
    }
    checks = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    return metadata, checks


def test_materializing_the_flows_posts_the_erp_invoice_when_a_deal_was_won(world: World, dagster_env: None) -> None:
    opportunity = world.win_deal(quantity=1, unit_price=777.0)
    report = CycleReport(started_at=dt.datetime.now(dt.UTC))
    world.cycle.load(("salesforce",), report)  # load + dbt only: planning and delivery are Dagster's here
    world.cycle.transform(("salesforce",), report)
    assert world.erp_invoice_for(opportunity) is None

    metadata, checks = _materialize()

    assert set(metadata) >= {"won_deal_invoice", "salesforce_invoice", "invoice_payment_request", "payment_outcome",
                             "renewal_opportunity"}
    assert metadata["won_deal_invoice"]["enqueued"] >= 1
    assert metadata["won_deal_invoice"]["blocked_by"] == "-"
    assert checks["won_deal_invoice"].passed
    invoice = world.erp_invoice_for(opportunity)  # stage 1 is delivered within the materialization
    assert invoice is not None and invoice["state"] == "posted"
    assert invoice["ref"] == f"won-deal:{opportunity}:v1"
    # stage 2 planned from it in the same run: the payment request exists too
    assert world.payments_invoice_for(invoice["id"], opportunity) is not None


def test_a_blocked_flow_fails_its_may_write_check_when_materialized(world: World, dagster_env: None) -> None:
    store(world.database_url, [_check("failed")])
    try:
        metadata, checks = _materialize()
    finally:
        store(world.database_url, [_check("passed")])

    assert metadata["won_deal_invoice"]["blocked_by"] == "won_opportunity_has_customer"
    assert not checks["won_deal_invoice"].passed
    assert checks["won_deal_invoice"].severity == dg.AssetCheckSeverity.ERROR
    assert checks["payment_outcome"].passed
