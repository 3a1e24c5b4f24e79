"""Incremental refreshes of the canonical layer over the demo book: what a load changed, and only that.

Raw rows are changed the way a load writes them (a new load id, the load recorded in ``_dlt_loads``); every
refresh must leave the incremental models exactly as a full rebuild from the same raw data would.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from revloop.dbt import affected_selection
from sandboxes import book
from tests.dbt.conftest import BuiltWarehouse, one, rows, write_as_a_load

INCREMENTAL_MODELS = {
    "intermediate": ("int_customer_evidence", "int_customer_xref"),
    "marts": ("dim_customers", "fct_opportunities", "fct_subscriptions", "fct_invoices", "fct_payments",
              "rpt_invoice_reconciliation"),
}
ALL_INCREMENTAL = [model for models in INCREMENTAL_MODELS.values() for model in models]
# views over the identity tables: replacing a table drops them, so a rebuild of the tables rebuilds them too
VIEWS_ON_INCREMENTAL = ["int_customer_match_candidates", "int_customer_xref_conflicts"]


def companies_with_everything(built: BuiltWarehouse) -> list[book.Company]:
    return [c for c in built.companies if not c.mess and c.sf_account_id and c.erp_partner_id and c.stripe_customer_id]


def invoiced_deals(companies: list[book.Company]) -> Iterator[tuple[book.Company, book.Deal, book.Invoice]]:
    for company in companies:
        for deal in company.deals:
            if deal.invoice is not None and deal.invoice.sf_invoice_id and deal.invoice.stripe_invoice_id:
                yield company, deal, deal.invoice


def differences_from_a_full_rebuild(built: BuiltWarehouse) -> dict[str, int]:
    """Rows that differ (both ways, SQL ``except all``) between each incremental model as it is and a full
    rebuild from the same raw data; ``refreshed_at`` (when a row was written) is left out of the comparison."""
    with psycopg.connect(built.url, autocommit=True) as conn:
        conn.execute("drop schema if exists incremental_copy cascade; create schema incremental_copy")
        for schema, models in INCREMENTAL_MODELS.items():
            for model in models:
                conn.execute(f"create table incremental_copy.{model} as select * from {schema}.{model}")
    rebuilt = built.project.build([*ALL_INCREMENTAL, *VIEWS_ON_INCREMENTAL], full_refresh=True)
    assert rebuilt.success, [n.explanation() for n in rebuilt.failures]
    differences = {}
    with psycopg.connect(built.url, autocommit=True) as conn:
        for schema, models in INCREMENTAL_MODELS.items():
            for model in models:
                columns = ", ".join(
                    row[0] for row in conn.execute(
                        "select column_name from information_schema.columns where table_schema = %s"
                        " and table_name = %s and column_name <> 'refreshed_at' order by ordinal_position",
                        (schema, model))
                )
                copy, current = f"incremental_copy.{model}", f"{schema}.{model}"
                query = (f"select count(*) from ((select {columns} from {copy} except all"
                         f" select {columns} from {current}) union all (select {columns} from {current}"
                         f" except all select {columns} from {copy})) as d")
                differences[model] = conn.execute(query).fetchone()[0]  # type: ignore[index]
        conn.execute("drop schema incremental_copy cascade")
    return differences


def written(summary: Any) -> dict[str, int]:
    """Rows each model of a refresh wrote."""
    assert summary.success, [n.explanation() for n in summary.failures]
    return {n.name: n.rows or 0 for n in summary.models}


NO_DIFFERENCES = dict.fromkeys(ALL_INCREMENTAL, 0)


def test_affected_selection_names_the_incremental_models_downstream_of_the_tables_that_got_rows() -> None:
    selection = affected_selection({"salesforce": {"opportunity": 3, "_dlt_loads": 1, "account": 0},
                                    "erp": {"unknown_table": 5}})
    assert selection == ["source:salesforce.opportunity+,config.materialized:incremental",
                         "source:salesforce.opportunity+,config.materialized:table"]
    assert affected_selection({"payments": {"_dlt_pipeline_state": 1}}) == []


def test_refresh_writes_and_tests_nothing_when_no_load_came(built: BuiltWarehouse) -> None:
    assert built.project.refresh({}).nodes == ()
    summary = built.project.build(ALL_INCREMENTAL)
    assert written(summary) == dict.fromkeys(ALL_INCREMENTAL, 0)
    assert all(n.status == "pass" for n in summary.tests)
    full = built.project.build(["fct_invoices"], full_refresh=True)
    assert full.node("fct_invoices").rows == sum(1 for c in built.companies for d in c.deals if d.invoice)


def test_refresh_equals_a_full_rebuild_when_records_changed_in_every_system(built: BuiltWarehouse) -> None:
    companies = companies_with_everything(built)
    merged_into, merged = companies[0], companies[1]  # the second company's Account takes the first's website
    _, won, _ = next(invoiced_deals(companies[2:]))
    invoice = next(d.invoice for c in companies[3:] for d in c.deals if d.invoice is not None)
    charge = next(p.stripe_charge_id for _, _, i in invoiced_deals(companies[4:]) for p in i.payments)
    before = one(built.url, "select a.website, o.stage_name, o.amount, m.payment_state, m.amount_residual,"
                            " c.amount as charged"
                            " from raw_salesforce.account a, raw_salesforce.opportunity o, raw_erp.account_move m,"
                            " raw_payments.charge c where a.id = %s and o.id = %s and m.id = %s and c.id = %s",
                 (merged_into.sf_account_id, won.sf_opportunity_id, invoice.erp_move_id, charge))
    merged_website = one(built.url, "select website from raw_salesforce.account where id = %s",
                         (merged.sf_account_id,))["website"]

    def change(website: str, stage: str, amount: Decimal, payment_state: str, residual: Decimal,
               charged: int) -> dict[str, dict[str, int]]:
        return {
            "salesforce": write_as_a_load(built.url, "salesforce", [
                ("update raw_salesforce.account set website = %(website)s, _dlt_load_id = %(load_id)s"
                 " where id = %(id)s", {"website": website, "id": merged.sf_account_id}),
                ("update raw_salesforce.opportunity set stage_name = %(stage)s, amount = %(amount)s,"
                 " _dlt_load_id = %(load_id)s where id = %(id)s",
                 {"stage": stage, "amount": amount, "id": won.sf_opportunity_id}),
            ]),
            "erp": write_as_a_load(built.url, "erp", [
                ("update raw_erp.account_move set payment_state = %(state)s, amount_residual = %(residual)s,"
                 " _dlt_load_id = %(load_id)s where id = %(id)s",
                 {"state": payment_state, "residual": residual, "id": invoice.erp_move_id}),
            ]),
            "payments": write_as_a_load(built.url, "payments", [
                ("update raw_payments.charge set amount = %(amount)s, _dlt_load_id = %(load_id)s where id = %(id)s",
                 {"amount": charged, "id": charge}),
            ]),
        }

    loaded = change(before["website"], "Closed Lost", before["amount"] + 1, "not_paid", invoice.amount_total,
                    before["charged"] + 1)
    try:
        refresh = built.project.refresh(loaded)
        rows_written = written(refresh)
        assert rows_written["fct_opportunities"] < 20  # the changed deal and the merged company's deals
        moved = one(built.url, "select customer_id from marts.fct_opportunities where salesforce_account_id = %s"
                               " limit 1", (merged.sf_account_id,))
        assert moved["customer_id"] == f"salesforce:{merged_into.sf_account_id}"
        assert rows(built.url, "select 1 from marts.rpt_invoice_reconciliation where salesforce_opportunity_id = %s",
                    (won.sf_opportunity_id,)) == []
        assert one(built.url, "select amount_minor from marts.fct_payments where charge_id = %s",
                   (charge,))["amount_minor"] == before["charged"] + 1
        assert any(n.name.startswith("relationships_fct_opportunities") for n in refresh.tests)
        assert differences_from_a_full_rebuild(built) == NO_DIFFERENCES
    finally:
        restored = built.project.refresh(change(merged_website, before["stage_name"], before["amount"],
                                                before["payment_state"], before["amount_residual"], before["charged"]))
    assert restored.success, [n.explanation() for n in restored.failures]
    assert differences_from_a_full_rebuild(built) == NO_DIFFERENCES


@pytest.fixture
def deleted_everywhere(built: BuiltWarehouse) -> Iterator[dict[str, Any]]:
    """A won deal, its subscription, another company's ERP invoice and a charge, soft-deleted by loads."""
    companies = companies_with_everything(built)
    _, won, _ = next(invoiced_deals(companies))
    subscription = next(s for c in companies for s in c.subscriptions)
    # an ERP invoice no payment points at (a payment of a deleted invoice would fail its relationships test)
    unpaid_deal = next(d for c in companies[5:] for d in c.deals if d.invoice is not None and not d.invoice.payments)
    _, _, charged = next(invoiced_deals(companies[8:]))
    deleted = {"opportunity": won.sf_opportunity_id, "subscription": subscription.sf_subscription_id,
               "erp_invoice": unpaid_deal.invoice.erp_move_id,  # type: ignore[union-attr]
               "erp_invoice_opportunity": unpaid_deal.sf_opportunity_id,
               "charge": charged.payments[0].stripe_charge_id}

    def flag(is_deleted: bool) -> dict[str, dict[str, int]]:
        def statement(table: str) -> str:
            return f"update {table} set is_deleted = %(deleted)s, _dlt_load_id = %(load_id)s where id = %(id)s"

        return {
            "salesforce": write_as_a_load(built.url, "salesforce", [
                (statement("raw_salesforce.opportunity"), {"deleted": is_deleted, "id": deleted["opportunity"]}),
                (statement("raw_salesforce.subscription_c"), {"deleted": is_deleted, "id": deleted["subscription"]}),
            ]),
            "erp": write_as_a_load(built.url, "erp", [
                (statement("raw_erp.account_move"), {"deleted": is_deleted, "id": deleted["erp_invoice"]}),
            ]),
            "payments": write_as_a_load(built.url, "payments", [
                (statement("raw_payments.charge"), {"deleted": is_deleted, "id": deleted["charge"]}),
            ]),
        }

    deleted["loaded"] = flag(True)
    yield deleted
    restored = built.project.refresh(flag(False))
    assert restored.success, [n.explanation() for n in restored.failures]


def test_soft_deleted_records_leave_every_mart_at_the_next_refresh(
    built: BuiltWarehouse, deleted_everywhere: dict[str, Any],
) -> None:
    refresh = built.project.refresh(deleted_everywhere["loaded"])
    assert refresh.success, [n.explanation() for n in refresh.failures]
    for table, key, value in (
        ("fct_opportunities", "opportunity_id", deleted_everywhere["opportunity"]),
        ("rpt_invoice_reconciliation", "salesforce_opportunity_id", deleted_everywhere["opportunity"]),
        ("fct_subscriptions", "subscription_id", deleted_everywhere["subscription"]),
        ("fct_invoices", "erp_invoice_id", deleted_everywhere["erp_invoice"]),
        ("fct_payments", "charge_id", deleted_everywhere["charge"]),
    ):
        assert rows(built.url, f"select 1 from marts.{table} where {key} = %s", (value,)) == [], table
    report = one(built.url, "select reconciliation_status from marts.rpt_invoice_reconciliation"
                            " where salesforce_opportunity_id = %s", (deleted_everywhere["erp_invoice_opportunity"],))
    assert report["reconciliation_status"] == "missing_erp_invoice"
    assert differences_from_a_full_rebuild(built) == NO_DIFFERENCES


def test_a_load_is_refreshed_whatever_extraction_time_its_rows_carry(built: BuiltWarehouse) -> None:
    companies = companies_with_everything(built)
    _, deal, invoice = next(invoiced_deals(companies[6:]))
    before = one(built.url, "select o.amount, o._revloop_extracted_at as opportunity_extracted_at, m.ref"
                            " from raw_salesforce.opportunity o, raw_erp.account_move m where o.id = %s and m.id = %s",
                 (deal.sf_opportunity_id, invoice.erp_move_id))
    # the Opportunity rewritten with the extraction time it had; the ERP move from a load that read it an hour
    # ago and committed after the Salesforce one (its rows are older than every row the last build read)
    loaded = {
        "salesforce": write_as_a_load(built.url, "salesforce", [(
            "update raw_salesforce.opportunity set amount = %(amount)s, _dlt_load_id = %(load_id)s where id = %(id)s",
            {"amount": before["amount"] + 7, "id": deal.sf_opportunity_id})]),
        "erp": write_as_a_load(built.url, "erp", [(
            "update raw_erp.account_move set ref = 'late-arriving', _revloop_extracted_at = now() - interval '1 hour',"
            " _dlt_load_id = %(load_id)s where id = %(id)s", {"id": invoice.erp_move_id})]),
    }
    try:
        refresh = built.project.refresh(loaded)
        assert written(refresh)["fct_opportunities"] == 1
        assert one(built.url, "select amount from marts.fct_opportunities where opportunity_id = %s",
                   (deal.sf_opportunity_id,))["amount"] == before["amount"] + 7
        assert one(built.url, "select revloop_key from marts.fct_invoices where erp_invoice_id = %s",
                   (invoice.erp_move_id,))["revloop_key"] == "late-arriving"
    finally:
        built.project.refresh({
            "salesforce": write_as_a_load(built.url, "salesforce", [(
                "update raw_salesforce.opportunity set amount = %(amount)s, _dlt_load_id = %(load_id)s"
                " where id = %(id)s", {"amount": before["amount"], "id": deal.sf_opportunity_id})]),
            "erp": write_as_a_load(built.url, "erp", [(
                "update raw_erp.account_move set ref = %(ref)s, _dlt_load_id = %(load_id)s where id = %(id)s",
                {"ref": before["ref"], "id": invoice.erp_move_id})]),
        })
    assert differences_from_a_full_rebuild(built) == NO_DIFFERENCES


def test_records_reloaded_without_a_change_the_marts_read_write_nothing(built: BuiltWarehouse) -> None:
    customer = companies_with_everything(built)[0].stripe_customer_id
    loaded = {"payments": write_as_a_load(built.url, "payments", [(
        "update raw_payments.customer set description = 'edited by hand', _revloop_extracted_at = now(),"
        " _dlt_load_id = %(load_id)s where id = %(id)s", {"id": customer})])}
    refresh = built.project.refresh(loaded)
    assert set(written(refresh)) >= {"int_customer_evidence", "int_customer_xref", "fct_payments", "dim_customers"}
    assert set(written(refresh).values()) == {0}
    assert refresh.tests == ()  # no model wrote a row, so no test had a row to check


def test_a_salesforce_invoice_pointed_at_another_erp_invoice_refreshes_both(built: BuiltWarehouse) -> None:
    (_, _, first), (_, _, second) = list(invoiced_deals(companies_with_everything(built)))[:2]
    point = ("update raw_salesforce.invoice_c set erp_invoice_id_c = %(erp)s, _dlt_load_id = %(load_id)s"
             " where id = %(id)s")
    refresh = built.project.refresh({"salesforce": write_as_a_load(
        built.url, "salesforce", [(point, {"erp": str(second.erp_move_id), "id": first.sf_invoice_id})])})
    try:
        assert refresh.success, [n.explanation() for n in refresh.failures]
        by_invoice = {r["erp_invoice_id"]: r["salesforce_invoice_id"] for r in rows(
            built.url, "select erp_invoice_id, salesforce_invoice_id from marts.fct_invoices"
                       " where erp_invoice_id = any(%s)", ([first.erp_move_id, second.erp_move_id],))}
        assert by_invoice[first.erp_move_id] is None  # it lost its only Salesforce invoice
        assert by_invoice[second.erp_move_id] in {first.sf_invoice_id, second.sf_invoice_id}
        assert differences_from_a_full_rebuild(built) == NO_DIFFERENCES
    finally:
        built.project.refresh({"salesforce": write_as_a_load(
            built.url, "salesforce", [(point, {"erp": str(first.erp_move_id), "id": first.sf_invoice_id})])})


def test_refresh_names_an_unmapped_stage_of_a_deal_it_wrote(built: BuiltWarehouse) -> None:
    _, deal, _ = next(invoiced_deals(companies_with_everything(built)))
    stage = one(built.url, "select stage_name from raw_salesforce.opportunity where id = %s",
                (deal.sf_opportunity_id,))["stage_name"]
    set_stage = ("update raw_salesforce.opportunity set stage_name = %(stage)s, _dlt_load_id = %(load_id)s"
                 " where id = %(id)s")
    refresh = built.project.refresh({"salesforce": write_as_a_load(
        built.url, "salesforce", [(set_stage, {"stage": "Verbal Commit", "id": deal.sf_opportunity_id})])})
    try:
        assert not refresh.success
        failed = {n.name: n for n in refresh.failures}
        mapped = failed["status_is_mapped_fct_opportunities_source_stage__opportunity_stage__salesforce"]
        assert mapped.failing_rows == ({"unmapped_value": "Verbal Commit"},)
        assert set(failed) == {mapped.name, "not_null_fct_opportunities_stage"}
    finally:
        restored = built.project.refresh({"salesforce": write_as_a_load(
            built.url, "salesforce", [(set_stage, {"stage": stage, "id": deal.sf_opportunity_id})])})
    assert restored.success, [n.explanation() for n in restored.failures]


def test_refresh_lookups_read_the_raw_tables_by_index(built: BuiltWarehouse) -> None:
    found = {r["indexname"].split("__canon_")[1].rsplit("_", 1)[0] + "@" + r["tablename"] for r in rows(
        built.url, "select tablename, indexname from pg_indexes where indexname like '%%__canon_%%'")}
    assert {"load_id@opportunity", "opportunity_id@opportunity_line_item", "erp_invoice_id@invoice"} <= found
    with psycopg.connect(built.url) as conn:
        conn.execute("set enable_seqscan = off")  # the demo book's tables are small enough to scan
        plan = "\n".join(r[0] for r in conn.execute(
            "explain select * from staging.stg_salesforce__opportunity_line_items"
            " where opportunity_id = any(array['006000000000000AAA'])"))
    assert "Index Scan using opportunity_line_item__canon_opportunity_id" in plan, plan
