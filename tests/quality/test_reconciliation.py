"""Reconciliation, end to end: the seeded book's discrepancies and injected ones are reported by the right
check with the right record ids; a repaired book passes everything and unblocks the flows."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from expectations.reconciliation import INVOICE_SLA_DAYS
from expectations.results import CheckResult
from revloop import quality
from revloop.alerts import Alert
from tests.quality.conftest import LoadedBook


class CapturingAlerter:
    """The local alert channel of the tests: keeps what would have gone to Slack."""

    def __init__(self) -> None:
        self.sent: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.sent.append(alert)


def _by_name(run: quality.QualityRun) -> dict[str, CheckResult]:
    return {r.check_name: r for r in run.results}


def _ids(result: CheckResult, column: str) -> set[Any]:
    return {row[column] for row in result.sample}


def _won_invoices(loaded: LoadedBook) -> list[tuple[Any, Any, Any]]:
    return [(c, d, d.invoice) for c in loaded.companies for d in c.deals if d.is_won and d.invoice]


@pytest.fixture(scope="module")
def seeded_run(loaded_book: LoadedBook) -> tuple[quality.QualityRun, CapturingAlerter]:
    alerter = CapturingAlerter()
    return quality.run_quality(loaded_book.url, loaded_book.home, alerter=alerter), alerter


def test_amount_mismatch_reported_with_erp_ids_when_book_has_amount_mismatch(
    loaded_book: LoadedBook, seeded_run: tuple[quality.QualityRun, CapturingAlerter]
) -> None:
    expected = {inv.erp_move_id for _, _, inv in _won_invoices(loaded_book) if inv.erp_amount_total != inv.amount_total}
    assert expected
    result = _by_name(seeded_run[0])["invoice_amounts_agree"]
    assert result.status == "failed" and result.severity == "error"
    assert _ids(result, "erp_invoice_id") == expected
    assert result.unexpected_count == len(expected)
    for row in result.sample:  # one minor unit: the cent, or a whole yen/won/dong
        assert Decimal(row["payments_minus_erp"]) < 0 and Decimal(row["payments_minus_erp"]) >= Decimal(-1)


def test_orphan_payments_reported_with_charge_ids_when_book_has_orphan_payments(
    loaded_book: LoadedBook, seeded_run: tuple[quality.QualityRun, CapturingAlerter]
) -> None:
    expected = {p.stripe_charge_id for c in loaded_book.companies for p in c.orphan_payments}
    result = _by_name(seeded_run[0])["no_orphan_payments"]
    assert expected and _ids(result, "payments_charge_id") == expected


def test_cancelled_invoice_of_won_deal_reported_when_book_cancels_one(
    loaded_book: LoadedBook, seeded_run: tuple[quality.QualityRun, CapturingAlerter]
) -> None:
    cutoff = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=INVOICE_SLA_DAYS)
    expected = {d.sf_opportunity_id for _, d, inv in _won_invoices(loaded_book)
                if inv.erp_state != "posted" and d.close_date < cutoff}
    result = _by_name(seeded_run[0])["won_deal_invoiced_once"]
    assert _ids(result, "salesforce_opportunity_id") == expected


def test_unbooked_refunds_and_mismatches_reported_when_payments_net_differs_from_erp(
    loaded_book: LoadedBook, seeded_run: tuple[quality.QualityRun, CapturingAlerter]
) -> None:
    expected = {
        inv.erp_move_id
        for _, _, inv in _won_invoices(loaded_book)
        if inv.erp_state == "posted" and any(p.status == "succeeded" for p in inv.payments)
        and ((inv.erp_amount_total != inv.amount_total and inv.erp_payment_state == "paid")
             or (inv.erp_payment_state != "reversed" and any(p.refunded_amount for p in inv.payments)))
    }
    result = _by_name(seeded_run[0])["payments_net_equals_erp_paid"]
    assert _ids(result, "erp_invoice_id") == expected


def test_clean_checks_pass_when_book_agrees_on_them(seeded_run: tuple[quality.QualityRun, CapturingAlerter]) -> None:
    results = _by_name(seeded_run[0])
    for name in ("invoice_currencies_agree", "invoice_statuses_agree", "erp_invoice_has_deal"):
        assert results[name].status == "passed", results[name].sample
    raw = [r for r in seeded_run[0].results if r.suite == "raw"]
    assert raw and all(r.status in ("passed", "not_run") for r in raw), [r for r in raw if r.failed]


def test_alert_names_check_count_and_report_when_error_check_fails(
    seeded_run: tuple[quality.QualityRun, CapturingAlerter],
) -> None:
    run, alerter = seeded_run
    alerts = {a.kind: a for a in alerter.sent}
    assert set(alerts) == {f"quality-{r.check_name}" for r in run.blocking}
    amounts = alerts["quality-invoice_amounts_agree"]
    assert amounts.detail["unexpected_count"] == _by_name(run)["invoice_amounts_agree"].unexpected_count
    assert amounts.detail["report"].endswith("quality/data_docs/index.html")
    assert run.data_docs_index is not None and run.data_docs_index.exists()


def test_results_stored_and_flows_blocked_when_reconciliation_fails(
    loaded_book: LoadedBook, seeded_run: tuple[quality.QualityRun, CapturingAlerter]
) -> None:
    run = seeded_run[0]
    with psycopg.connect(loaded_book.url) as conn:
        rows = conn.execute(
            "select check_name, success, unexpected_count from quality.check_runs where run_id = %s", (run.run_id,)
        ).fetchall()
    assert len(rows) == len(run.results)
    assert ("no_orphan_payments", False, _by_name(run)["no_orphan_payments"].unexpected_count) in rows
    blocked = quality.blocking_failures(loaded_book.url, ["raw_payments/charge"])
    assert "no_orphan_payments" in {r.check_name for r in blocked}


def test_dagster_asset_checks_fail_with_severity_when_reconciliation_fails(
    loaded_book: LoadedBook, seeded_run: tuple[quality.QualityRun, CapturingAlerter], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    from assets.quality import QUALITY_CHECKS
    from assets.resources import RevloopResource

    monkeypatch.setenv("REVLOOP_DATABASE_URL", loaded_book.url)
    monkeypatch.setenv("REVLOOP_HOME", str(loaded_book.home))
    reconciliation = QUALITY_CHECKS[1]
    job = dg.define_asset_job("quality_reconciliation_job", selection=dg.AssetSelection.checks(reconciliation))
    defs = dg.Definitions(asset_checks=[reconciliation], jobs=[job], resources={"revloop": RevloopResource()})
    result = defs.resolve_job_def("quality_reconciliation_job").execute_in_process(raise_on_error=False)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    orphans = evaluations["no_orphan_payments"]
    assert not orphans.passed and orphans.severity == dg.AssetCheckSeverity.ERROR
    assert orphans.asset_key == dg.AssetKey(["raw_payments", "charge"])
    assert orphans.metadata["unexpected_count"].value == _by_name(seeded_run[0])["no_orphan_payments"].unexpected_count
    assert evaluations["invoice_currencies_agree"].passed


# ---- the cases injected into the raw layer, then the whole book repaired -----------------------

INJECT = """
-- a duplicated ERP invoice for an invoiced won deal
insert into raw_erp.account_move select (m.id + 900000000), m.create_date, m.create_uid, m.write_date, m.write_uid,
    m.name || '-DUP', m.move_type, m.state, m.payment_state, m.partner_id, m.company_id, m.company_name, m.date,
    m.invoice_date, m.invoice_date_due, m.currency_id, m.currency_name, m.ref, m.invoice_origin, m.payment_reference,
    m.narration, m.amount_untaxed, m.amount_tax, m.amount_total, m.amount_residual, m.reversed_entry_id,
    m.reversed_entry_name, m.is_deleted, m.deleted_at, m._revloop_extracted_at, m._dlt_load_id
from raw_erp.account_move m where m.id = %(duplicated)s;
-- Salesforce holds another invoice in the wrong currency, and one a cent off
update raw_salesforce.invoice_c set currency_iso_code = 'EUR' where erp_invoice_id_c = %(currency)s::text;
update raw_salesforce.invoice_c set amount_c = amount_c + 0.01 where erp_invoice_id_c = %(cent)s::text;
-- a won deal never invoiced
insert into raw_salesforce.opportunity (id, is_deleted, name, currency_iso_code, account_id, stage_name, amount,
    close_date, is_closed, is_won, _revloop_extracted_at, _dlt_load_id)
values ('006TESTNEVERINV', false, 'Never invoiced', 'USD', '001TEST', 'Closed Won', 1000, current_date - 30, true,
    true, now(), 'test');
-- a payment with no invoice
insert into raw_payments.charge (id, created, status, amount, amount_captured, amount_refunded, currency, metadata,
    is_deleted, _revloop_extracted_at, _dlt_load_id)
values ('ch_TESTNOINVOICE', now() - interval '1 day', 'succeeded', 5000, 5000, 0, 'usd', '{}', false, now(), 'test');
"""


def _posted_paid_invoices(loaded: LoadedBook) -> list[int]:
    return sorted(inv.erp_move_id for c, _, inv in _won_invoices(loaded)
                  if inv.erp_state == "posted" and inv.sf_invoice_id and inv.stripe_invoice_id
                  and inv.erp_amount_total == inv.amount_total and not c.mess)


def test_injected_cases_reported_by_right_check_when_systems_disagree(
    loaded_book: LoadedBook, seeded_run: tuple[quality.QualityRun, CapturingAlerter]
) -> None:
    duplicated, currency, cent = _posted_paid_invoices(loaded_book)[:3]
    opportunity = next(d.sf_opportunity_id for _, d, inv in _won_invoices(loaded_book) if inv.erp_move_id == duplicated)
    # several statements with parameters: bound client-side
    with psycopg.connect(loaded_book.url, cursor_factory=psycopg.ClientCursor) as conn:
        conn.execute(INJECT, {"duplicated": duplicated, "currency": currency, "cent": cent})

    run = quality.run_quality(loaded_book.url, loaded_book.home, suites=["reconciliation"], alerter=CapturingAlerter())
    results = _by_name(run)
    once = {row["salesforce_opportunity_id"]: row for row in results["won_deal_invoiced_once"].sample}
    assert once[opportunity]["posted_erp_invoices"] == 2
    assert once[opportunity]["erp_invoice_ids"] == [duplicated, duplicated + 900000000]
    assert once["006TESTNEVERINV"]["posted_erp_invoices"] == 0
    currencies = {row["erp_invoice_id"]: row for row in results["invoice_currencies_agree"].sample}
    assert set(currencies) == {currency}
    assert (currencies[currency]["salesforce_currency"], currencies[currency]["payments_currency"]) == ("EUR",
        currencies[currency]["erp_currency"])
    amounts = {row["erp_invoice_id"]: row for row in results["invoice_amounts_agree"].sample}
    assert amounts[cent]["salesforce_minus_erp"] == "0.01" and amounts[cent]["payments_minus_erp"] == "0.00"
    assert "ch_TESTNOINVOICE" in _ids(results["no_orphan_payments"], "payments_charge_id")


REPAIR = """
delete from raw_erp.account_move where id >= 900000000;
delete from raw_salesforce.opportunity where id = '006TESTNEVERINV';
delete from raw_payments.charge where id = 'ch_TESTNOINVOICE';
-- the runbook's fixes for the seeded book: ERP amounts corrected to the deal's, orphan charges attached
-- to an invoice (here: removed), refunds booked in the ERP as credit notes, a cancelled deal reopened
update raw_erp.account_move m set amount_total = round(i.total / 10 ^ 2::numeric, 2)
    from raw_payments.invoice i
    where i.metadata::jsonb ->> 'erp_invoice_id' = m.id::text
      and m.currency_name in ('SGD', 'USD', 'AUD', 'HKD', 'INR', 'THB', 'IDR')
      and m.amount_total <> round(i.total / 10 ^ 2::numeric, 2);
update raw_erp.account_move m set amount_total = i.total
    from raw_payments.invoice i
    where i.metadata::jsonb ->> 'erp_invoice_id' = m.id::text and m.currency_name in ('JPY', 'KRW', 'VND')
      and m.amount_total <> i.total;
update raw_salesforce.invoice_c s set currency_iso_code = m.currency_name, amount_c = m.amount_total
    from raw_erp.account_move m where s.erp_invoice_id_c = m.id::text;
delete from raw_payments.charge c where c.status = 'succeeded' and c.invoice is null
    and coalesce(c.metadata::jsonb ->> 'erp_invoice_id', '') = '';
insert into raw_erp.account_move (id, move_type, state, payment_state, partner_id, currency_name, invoice_origin,
    amount_total, amount_residual, reversed_entry_id, is_deleted, create_date, _revloop_extracted_at, _dlt_load_id)
select 800000000 + row_number() over (), 'out_refund', 'posted', 'paid', m.partner_id, m.currency_name,
    m.invoice_origin, r.refunded, 0, m.id, false, now(), now(), 'test'
from raw_erp.account_move m
join (select c.metadata::jsonb ->> 'erp_invoice_id' as erp_id,
             sum(r.amount) / 10 ^ (case when upper(min(c.currency)) in ('JPY', 'KRW', 'VND') then 0 else 2 end)::numeric
                 as refunded
      from raw_payments.refund r join raw_payments.charge c on c.id = r.charge
      where r.status = 'succeeded' group by 1) r on r.erp_id = m.id::text
where m.payment_state <> 'reversed';
update raw_salesforce.opportunity o set stage_name = 'Closed Lost', is_won = false
    from raw_erp.account_move m where m.invoice_origin = o.id and m.state = 'cancel';
"""


def test_repaired_book_passes_everything_and_unblocks_flows_when_discrepancies_fixed(
    loaded_book: LoadedBook, seeded_run: tuple[quality.QualityRun, CapturingAlerter]
) -> None:
    assert quality.blocking_failures(loaded_book.url, [("raw_erp", "account_move")])
    with psycopg.connect(loaded_book.url) as conn:
        conn.execute(REPAIR)

    alerter = CapturingAlerter()
    run = quality.run_quality(loaded_book.url, loaded_book.home, alerter=alerter)
    failed = {r.check_name: r.sample[:3] for r in run.results if r.failed}
    assert failed == {}, json.dumps(failed, default=str)
    assert run.success and alerter.sent == []
    assert quality.blocking_failures(loaded_book.url, [("raw_erp", "account_move"), "raw_payments/charge"]) == []


def test_absent_optional_relation_is_replaced_by_its_empty_stand_in_when_not_loaded_yet() -> None:
    from expectations.reconciliation import reconciliation_checks

    check = next(c for c in reconciliation_checks() if c.name == "payments_net_equals_erp_paid")
    assert "raw_payments.dispute" in dict(check.optional)

    stood_in = check.without({"raw_payments.dispute"})
    present = check.without(set())

    assert "from raw_payments.dispute" not in (stood_in.sql or "")
    assert "(select null::text as charge" in (stood_in.sql or "") and ") as dispute" in (stood_in.sql or "")
    assert present.sql == check.sql
