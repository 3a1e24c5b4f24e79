"""The canonical layer built over the demo book: amounts, conversions, reconciliation and identities."""

from __future__ import annotations

from decimal import Decimal

import psycopg

from sandboxes import book
from tests.dbt.conftest import BuiltWarehouse, one, rows, write_as_a_load


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


IDENTITY_MODELS = ["int_customer_evidence", "int_customer_match_candidates", "int_customer_xref",
                   "int_customer_xref_conflicts"]


def test_conflict_is_surfaced_when_two_accounts_claim_one_erp_partner(built: BuiltWarehouse) -> None:
    first, second = [c for c in built.companies if c.erp_partner_id and not c.mess][:2]
    claim = ("update raw_salesforce.account set erp_partner_id_c = %(partner)s, _dlt_load_id = %(load_id)s"
             " where id = %(id)s")
    write_as_a_load(built.url, "salesforce",
                    [(claim, {"partner": str(first.erp_partner_id), "id": second.sf_account_id})])
    try:
        summary = built.project.build(IDENTITY_MODELS)
        conflicts = rows(built.url, "select * from intermediate.int_customer_xref_conflicts where source_id = %s",
                         (str(first.erp_partner_id),))
        xref = one(built.url, "select * from intermediate.int_customer_xref where xref_id = %s",
                   (f"erp:{first.erp_partner_id}",))
    finally:
        write_as_a_load(built.url, "salesforce",
                        [(claim, {"partner": str(second.erp_partner_id), "id": second.sf_account_id})])
        restored = built.project.build(IDENTITY_MODELS)
    assert summary.success, [n.explanation() for n in summary.failures]
    assert (xref["customer_id"], xref["match_rule"]) == (None, "conflict")
    assert {c["candidate_account_id"] for c in conflicts} == {first.sf_account_id, second.sf_account_id}
    assert restored.success, [n.explanation() for n in restored.failures]
    assert rows(built.url, "select * from intermediate.int_customer_xref_conflicts") == []


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


def test_docs_site_documents_the_marts_when_generated(built: BuiltWarehouse) -> None:
    import json

    index = built.project.docs()
    assert index.is_file()
    catalog = json.loads((index.parent / "catalog.json").read_text())
    nodes = {node["metadata"]["name"]: node for node in catalog["nodes"].values()}
    assert "fct_invoices" in nodes and "amount_total" in nodes["fct_invoices"]["columns"]
