"""The Dagster code location: it loads, names the raw tables as dbt will, and a load materializes them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from assets.definitions import defs
from assets.resources import RevloopResource
from pipelines.catalog import SYSTEMS, raw_tables
from tests.sandbox_harness import RunningSandbox, start_sandbox


def test_definitions_load_with_one_asset_per_raw_table_when_imported() -> None:
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    expected = {f"raw_{system}/{table}" for system in SYSTEMS for table in raw_tables(system)}
    assert expected <= keys
    assert "raw_salesforce/opportunity" in keys and "raw_erp/account_move" in keys and "raw_payments/event" in keys


def test_each_raw_asset_is_grouped_by_its_system_when_listed() -> None:
    for system in SYSTEMS:
        job = defs.resolve_job_def(f"load_{system}_job")
        assert job is not None
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    assert specs["raw_erp/res_partner"].group_name == "raw_erp"
    assert {"dlt", "odoo"} <= set(specs["raw_erp/res_partner"].kinds)


@pytest.fixture(scope="module")
def erp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    sandbox = start_sandbox("erp", tmp_path_factory.mktemp("erp-sandbox"))
    yield sandbox
    sandbox.stop()


def test_loading_erp_reports_rows_per_table_when_materialized(
    erp: RunningSandbox, fresh_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in erp.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("REVLOOP_DATABASE_URL", fresh_database)
    monkeypatch.setenv("REVLOOP_HOME", str(tmp_path))
    load_erp = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.node_def.name == "load_erp")
    result = dg.materialize([load_erp], resources={"revloop": RevloopResource()})
    assert result.success
    materialized = {
        event.asset_key.to_user_string(): event.step_materialization_data.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    assert set(materialized) == {f"raw_erp/{table}" for table in raw_tables("erp")}
    with psycopg.connect(fresh_database) as conn:
        partners = conn.execute("select count(*) from raw_erp.res_partner").fetchone()
    assert partners is not None and materialized["raw_erp/res_partner"]["rows_loaded"].value == partners[0] > 0
    assert materialized["raw_erp/res_partner"]["rows_quarantined"].value == 0


def test_lineage_runs_from_raw_tables_to_marts_when_dbt_models_load() -> None:
    graph = defs.resolve_asset_graph()
    staging = graph.get(dg.AssetKey(["staging", "stg_erp__invoices"]))
    assert dg.AssetKey(["raw_erp", "account_move"]) in staging.parent_keys
    invoices = graph.get(dg.AssetKey(["marts", "fct_invoices"]))
    assert invoices.group_name == "canonical_marts"
    upstream: set[dg.AssetKey] = set()
    frontier = set(invoices.parent_keys)
    while frontier:
        key = frontier.pop()
        if key not in upstream:
            upstream.add(key)
            if graph.has(key):
                frontier |= set(graph.get(key).parent_keys)
    names = {key.to_user_string() for key in upstream}
    assert {"raw_erp/account_move", "raw_salesforce/invoice_c", "raw_payments/invoice"} <= names


def test_dbt_tests_and_quality_checks_are_asset_checks_when_loaded() -> None:
    check_keys = defs.resolve_asset_graph().asset_check_keys
    on_invoices = {key.name for key in check_keys if key.asset_key == dg.AssetKey(["marts", "fct_invoices"])}
    assert on_invoices, "dbt tests on fct_invoices should be asset checks"
    on_charges = {key.name for key in check_keys if key.asset_key == dg.AssetKey(["raw_payments", "charge"])}
    assert "no_orphan_payments" in on_charges
