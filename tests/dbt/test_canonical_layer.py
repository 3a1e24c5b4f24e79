"""The canonical layer built over the demo book: amounts, conversions, reconciliation and identities."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from sandboxes import book
from tests.dbt.conftest import BuiltWarehouse


def rows(url: str, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        cursor = conn.execute(query, params)  # type: ignore[call-overload]
        columns = [c.name for c in cursor.description or ()]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def one(url: str, query: str, params: tuple[Any, ...] = ()) -> dict[str, Any]:
    found = rows(url, query, params)
    assert len(found) == 1, f"expected one row, got {len(found)}: {query} {params}"
    return found[0]


def invoices_of(companies: list[book.Company]) -> list[tuple[book.Company, book.Deal, book.Invoice]]:
    return [(c, d, d.invoice) for c in companies for d in c.deals if d.invoice is not None]


def test_build_succeeds_with_every_test_passing_when_the_book_is_loaded(built: BuiltWarehouse) -> None:
    summary = built.first_build
    assert summary.success, [n.explanation() for n in summary.failures]
    names = {n.name for n in summary.models}
    assert {"fct_invoices", "fct_payments", "rpt_invoice_reconciliation", "int_customer_xref"} <= names
    assert len(summary.tests) > 50


def test_invoice_amount_matches_the_book_when_the_currency_is_jpy_or_sgd(built: BuiltWarehouse) -> None:
    for currency, exponent in (("JPY", 0), ("SGD", 2)):
        _, deal, invoice = next(
            (c, d, i) for c, d, i in invoices_of(built.companies)
            if i.currency == currency and i.erp_amount_total == i.amount_total
        )
        row = one(built.url, "select * from marts.fct_invoices where erp_invoice_id = %s", (invoice.erp_move_id,))
        assert row["currency_code"] == currency
        assert row["amount_total"] == invoice.erp_amount_total
        assert -row["amount_total"].as_tuple().exponent == exponent  # shown at the currency's scale
        assert row["invoice_number"] == invoice.erp_number
        assert row["salesforce_opportunity_id"] == deal.sf_opportunity_id
        assert row["invoice_date"] == invoice.invoice_date


def test_stripe_minor_units_convert_by_the_currency_exponent_when_amounts_are_1050(built: BuiltWarehouse) -> None:
    template = one(built.url, "select id from raw_payments.charge limit 1")["id"]
    ids = {"sgd": "ch_test_sgd_1050", "jpy": "ch_test_jpy_1050", "usd": "ch_test_usd_1050"}
    with psycopg.connect(built.url) as conn:
        for currency, charge_id in ids.items():
            conn.execute(
                "insert into raw_payments.charge select * from raw_payments.charge where id = %s", (template,)
            )
            conn.execute(
                "update raw_payments.charge set id = %s, amount = 1050, currency = %s"
                " where ctid = (select max(ctid) from raw_payments.charge where id = %s)",
                (charge_id, currency, template),
            )
    try:
        converted = {
            r["charge_id"]: r["amount"]
            for r in rows(built.url, "select charge_id, amount from staging.stg_payments__charges"
                                     " where charge_id = any(%s)", (list(ids.values()),))
        }
    finally:
        with psycopg.connect(built.url) as conn:
            conn.execute("delete from raw_payments.charge where id = any(%s)", (list(ids.values()),))
    assert converted[ids["sgd"]] == Decimal("10.50") and str(converted[ids["sgd"]]) == "10.50"
    assert converted[ids["jpy"]] == Decimal("1050") and str(converted[ids["jpy"]]) == "1050"
    assert str(converted[ids["usd"]]) == "10.50"


def test_won_opportunity_is_fully_reconciled_when_erp_invoice_and_payment_agree(built: BuiltWarehouse) -> None:
    company, deal, invoice = next(
        (c, d, i) for c, d, i in invoices_of(built.companies)
        if not c.mess and i.sf_invoice_id and i.stripe_status == "paid" and i.sf_payment_status == "Paid"
        and i.erp_payment_state == "paid" and all(p.refunded_amount == 0 for p in i.payments)
    )
    row = one(built.url, "select * from marts.rpt_invoice_reconciliation where salesforce_opportunity_id = %s",
              (deal.sf_opportunity_id,))
    assert row["is_fully_reconciled"] is True
    assert row["reconciliation_status"] == "reconciled"
    assert row["erp_invoice_id"] == invoice.erp_move_id
    assert row["salesforce_invoice_id"] == invoice.sf_invoice_id
    assert row["payments_invoice_id"] == invoice.stripe_invoice_id
    assert row["erp_amount"] == row["payments_invoice_amount"] == invoice.amount_total
    assert row["payments_captured_amount"] == invoice.amount_total
    assert row["erp_minus_salesforce_amount"] == 0 and row["payments_minus_erp_amount"] == 0
    assert row["customer_id"] == f"salesforce:{company.sf_account_id}"


def test_mismatched_amount_shows_its_difference_when_the_erp_total_was_edited(built: BuiltWarehouse) -> None:
    mismatched = [
        (c, d, i) for c, d, i in invoices_of(built.companies)
        if i.erp_amount_total != i.amount_total and i.sf_invoice_id and i.stripe_invoice_id
    ]
    assert mismatched, "the demo book carries amount_mismatch invoices"
    for _, deal, invoice in mismatched:
        row = one(built.url, "select * from marts.rpt_invoice_reconciliation where salesforce_opportunity_id = %s",
                  (deal.sf_opportunity_id,))
        expected = invoice.erp_amount_total - invoice.amount_total  # one minor unit: 0.01, or 1 yen/won/dong
        assert expected == book.money(Decimal(1).scaleb(-book.CURRENCIES[invoice.currency].exponent),
                                      invoice.currency)
        assert row["reconciliation_status"] == "amount_mismatch"
        assert row["is_fully_reconciled"] is False
        assert row["erp_minus_salesforce_amount"] == expected
        assert row["payments_minus_erp_amount"] == -expected
        assert row["erp_amount"] == invoice.erp_amount_total


def test_orphan_payments_are_flagged_when_no_invoice_exists_anywhere(built: BuiltWarehouse) -> None:
    expected = {p.stripe_charge_id for c in built.companies for p in c.orphan_payments}
    found = {r["charge_id"] for r in rows(built.url, "select charge_id from marts.fct_payments where is_orphan")}
    assert found == expected


def test_payments_match_the_book_when_attempts_succeed_or_fail(built: BuiltWarehouse) -> None:
    attempts = {p.stripe_charge_id: p for _, _, i in invoices_of(built.companies) for p in i.payments}
    facts = {r["charge_id"]: r for r in rows(built.url, "select * from marts.fct_payments where not is_orphan")}
    assert set(facts) == set(attempts)
    for charge_id, payment in attempts.items():
        fact = facts[charge_id]
        assert fact["currency_code"] == payment.currency
        assert fact["amount"] == payment.amount
        assert fact["status"] == ("succeeded" if payment.status == "succeeded" else "failed")
        assert fact["amount_refunded"] == payment.refunded_amount
        if payment.erp_payment_id is not None:
            assert fact["erp_payment_id"] == payment.erp_payment_id


def test_one_customer_per_company_when_accounts_and_partners_are_duplicated(built: BuiltWarehouse) -> None:
    found = rows(built.url, "select * from intermediate.int_customer_xref")
    xref = {(r["source_system"], r["source_id"]): r for r in found}
    assert len({r["customer_id"] for r in xref.values()}) == len(built.companies)
    for company in built.companies:
        customer = f"salesforce:{company.sf_account_id}"
        assert xref[("salesforce", company.sf_account_id)]["customer_id"] == customer
        if company.duplicate_sf_account_id:
            duplicate = xref[("salesforce", company.duplicate_sf_account_id)]
            assert (duplicate["customer_id"], duplicate["match_rule"]) == (customer, "duplicate_account_website_domain")
        if company.erp_partner_id:
            assert xref[("erp", str(company.erp_partner_id))]["customer_id"] == customer
        if company.duplicate_erp_partner_id:
            duplicate = xref[("erp", str(company.duplicate_erp_partner_id))]
            assert (duplicate["customer_id"], duplicate["match_rule"]) == (customer, "tax_id_hash")
        if company.stripe_customer_id:
            assert xref[("payments", company.stripe_customer_id)]["customer_id"] == customer
    assert rows(built.url, "select * from intermediate.int_customer_xref_conflicts") == []


def test_conflict_is_surfaced_when_two_accounts_claim_one_erp_partner(built: BuiltWarehouse) -> None:
    first, second = [c for c in built.companies if c.erp_partner_id and not c.mess][:2]
    with psycopg.connect(built.url) as conn:
        conn.execute("update raw_salesforce.account set erp_partner_id_c = %s where id = %s",
                     (str(first.erp_partner_id), second.sf_account_id))
    try:
        summary = built.project.build(["int_customer_match_candidates", "int_customer_xref",
                                       "int_customer_xref_conflicts"])
        conflicts = rows(built.url, "select * from intermediate.int_customer_xref_conflicts where source_id = %s",
                         (str(first.erp_partner_id),))
        xref = one(built.url, "select * from intermediate.int_customer_xref where xref_id = %s",
                   (f"erp:{first.erp_partner_id}",))
    finally:
        with psycopg.connect(built.url) as conn:
            conn.execute("update raw_salesforce.account set erp_partner_id_c = %s where id = %s",
                         (str(second.erp_partner_id), second.sf_account_id))
        built.project.build(["int_customer_match_candidates", "int_customer_xref", "int_customer_xref_conflicts"])
    assert summary.success, [n.explanation() for n in summary.failures]
    assert (xref["customer_id"], xref["match_rule"]) == (None, "conflict")
    assert {c["candidate_account_id"] for c in conflicts} == {first.sf_account_id, second.sf_account_id}


def test_build_fails_naming_the_stage_when_a_new_stage_has_no_mapping(built: BuiltWarehouse) -> None:
    template = one(built.url, "select id from raw_salesforce.opportunity limit 1")["id"]
    new_id = book.salesforce_id("006", 900_000)
    with psycopg.connect(built.url) as conn:
        conn.execute("insert into raw_salesforce.opportunity select * from raw_salesforce.opportunity where id = %s",
                     (template,))
        conn.execute(
            "update raw_salesforce.opportunity set id = %s, stage_name = 'Verbal Commit'"
            " where ctid = (select max(ctid) from raw_salesforce.opportunity where id = %s)", (new_id, template)
        )
    try:
        summary = built.project.build(["stg_salesforce__opportunities"])
    finally:
        with psycopg.connect(built.url) as conn:
            conn.execute("delete from raw_salesforce.opportunity where id = %s", (new_id,))
    assert not summary.success
    failed = [n for n in summary.failures if n.name.startswith("status_is_mapped_stg_salesforce__opportunities")]
    assert len(failed) == 1
    assert failed[0].failing_rows == ({"unmapped_value": "Verbal Commit"},)
    assert "Verbal Commit" in failed[0].explanation()


def test_incremental_refresh_rewrites_nothing_when_nothing_changed(built: BuiltWarehouse) -> None:
    summary = built.project.build(["fct_invoices", "fct_payments"])
    assert summary.success, [n.explanation() for n in summary.failures]
    assert summary.node("fct_invoices").rows == 0
    assert summary.node("fct_payments").rows == 0
    full = built.project.build(["fct_invoices"], full_refresh=True)
    assert full.node("fct_invoices").rows == sum(1 for _ in invoices_of(built.companies))


def test_docs_site_documents_the_marts_when_generated(built: BuiltWarehouse) -> None:
    import json

    index = built.project.docs()
    assert index.is_file()
    catalog = json.loads((index.parent / "catalog.json").read_text())
    nodes = {node["metadata"]["name"]: node for node in catalog["nodes"].values()}
    assert "fct_invoices" in nodes and "amount_total" in nodes["fct_invoices"]["columns"]


INCREMENTAL_MARTS = ("fct_opportunities", "fct_subscriptions", "fct_invoices", "fct_payments",
                     "rpt_invoice_reconciliation")


def _differences_from_a_full_rebuild(built: BuiltWarehouse) -> dict[str, int]:
    """Rows that differ (both directions, SQL ``except``) between the marts as built and a full rebuild."""
    with psycopg.connect(built.url, autocommit=True) as conn:
        conn.execute("drop schema if exists incremental_copy cascade; create schema incremental_copy")
        for mart in INCREMENTAL_MARTS:
            conn.execute(f"create table incremental_copy.{mart} as select * from marts.{mart}")
    rebuilt = built.project.build(list(INCREMENTAL_MARTS), full_refresh=True)
    assert rebuilt.success, [n.explanation() for n in rebuilt.failures]
    differences = {}
    with psycopg.connect(built.url, autocommit=True) as conn:
        for mart in INCREMENTAL_MARTS:
            copy = f"incremental_copy.{mart}"
            query = (f"select count(*) from ((select * from {copy} except all select * from marts.{mart})"
                     f" union all (select * from marts.{mart} except all select * from {copy})) as d")
            differences[mart] = conn.execute(query).fetchone()[0]  # type: ignore[index]
        conn.execute("drop schema incremental_copy cascade")
    return differences


def test_incremental_refresh_equals_a_full_rebuild_when_records_changed_in_every_system(
    built: BuiltWarehouse,
) -> None:
    from revloop.dbt import affected_selection

    companies = [c for c in built.companies if not c.mess and c.sf_account_id and c.erp_partner_id]
    merged_into, merged = companies[0], companies[1]  # the second company's Account takes the first's website
    won = next(d for c in companies[2:] for d in c.deals if d.invoice is not None and d.invoice.sf_invoice_id)
    invoice = next(d.invoice for c in companies[3:] for d in c.deals if d.invoice is not None)
    charge = next(p.stripe_charge_id for _, _, i in invoices_of(companies[4:]) for p in i.payments)
    with psycopg.connect(built.url) as conn:
        original = conn.execute("select website, stage_name, amount, payment_state, amount_residual from"
                                " (select website from raw_salesforce.account where id = %s) a,"
                                " (select stage_name, amount from raw_salesforce.opportunity where id = %s) o,"
                                " (select payment_state, amount_residual from raw_erp.account_move where id = %s) m",
                                (merged_into.sf_account_id, won.sf_opportunity_id, invoice.erp_move_id)).fetchone()
    assert original is not None
    website, stage, amount, payment_state, residual = original

    def change(values: tuple[Any, ...]) -> None:
        """Write the values as a load would: the row replaced, with a new extraction time."""
        with psycopg.connect(built.url) as conn:
            conn.execute("update raw_salesforce.account set website = %s, _revloop_extracted_at = now()"
                         " where id = %s", (values[0], merged.sf_account_id))
            conn.execute("update raw_salesforce.opportunity set stage_name = %s, amount = %s,"
                         " _revloop_extracted_at = now() where id = %s", (values[1], values[2], won.sf_opportunity_id))
            conn.execute("update raw_erp.account_move set payment_state = %s, amount_residual = %s,"
                         " _revloop_extracted_at = now() where id = %s", (values[3], values[4], invoice.erp_move_id))
            conn.execute("update raw_payments.charge set _revloop_extracted_at = now() where id = %s", (charge,))

    merged_website = [r["website"] for r in rows(built.url, "select website from raw_salesforce.account where id = %s",
                                                  (merged.sf_account_id,))][0]
    selection = affected_selection({"salesforce": {"account": 1, "opportunity": 1, "_dlt_loads": 1},
                                    "erp": {"account_move": 1}, "payments": {"charge": 1}})
    assert selection == ["source:erp.account_move+", "source:payments.charge+", "source:salesforce.account+",
                         "source:salesforce.opportunity+"]
    change((website, "Closed Lost", amount + 1, "not_paid", invoice.amount_total))
    try:
        refresh = built.project.build(selection)
        assert refresh.success, [n.explanation() for n in refresh.failures]
        assert refresh.node("fct_opportunities").rows is not None and refresh.node("fct_opportunities").rows < 20
        moved = one(built.url, "select customer_id from marts.fct_opportunities where salesforce_account_id = %s"
                               " limit 1", (merged.sf_account_id,))
        assert moved["customer_id"] == f"salesforce:{merged_into.sf_account_id}"
        assert rows(built.url, "select 1 from marts.rpt_invoice_reconciliation where salesforce_opportunity_id = %s",
                    (won.sf_opportunity_id,)) == []
        assert _differences_from_a_full_rebuild(built) == dict.fromkeys(INCREMENTAL_MARTS, 0)
    finally:
        change((merged_website, stage, amount, payment_state, residual))
        restored = built.project.build(selection)
    assert restored.success, [n.explanation() for n in restored.failures]
    assert _differences_from_a_full_rebuild(built) == dict.fromkeys(INCREMENTAL_MARTS, 0)
