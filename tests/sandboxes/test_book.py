"""The seeded book of business: determinism, id hygiene, money rules, coherent states and the planned mess."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import subprocess
import sys
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from sandboxes import book

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = 7
TODAY = dt.date(2025, 6, 15)
ANCHOR = dt.datetime(2025, 6, 15, tzinfo=dt.UTC)
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
INVOICE_NUMBER = re.compile(r"^INV/(\d{4})/(\d{5})$")


@pytest.fixture(scope="module")
def companies() -> list[book.Company]:
    return list(book.iter_companies(SEED, "demo", TODAY))


@pytest.fixture(scope="module")
def invoices(companies: list[book.Company]) -> list[book.Invoice]:
    return [deal.invoice for c in companies for deal in c.deals if deal.invoice]


def all_payments(company: book.Company) -> list[book.Payment]:
    return [p for d in company.deals if d.invoice for p in d.invoice.payments] + list(company.orphan_payments)


def is_exact(amount: Decimal, currency: str) -> bool:
    return amount == amount.quantize(Decimal(1).scaleb(-book.CURRENCIES[currency].exponent))


# ---- determinism --------------------------------------------------------------------------------


def test_stream_is_identical_when_generated_twice(companies: list[book.Company]) -> None:
    assert list(book.iter_companies(SEED, "demo", TODAY)) == companies


def test_stream_is_identical_when_generated_in_another_process(companies: list[book.Company]) -> None:
    script = (
        "import datetime, hashlib; from sandboxes import book; "
        f"print(hashlib.sha256(repr(list(book.iter_companies({SEED}, 'demo', datetime.date(2025, 6, 15))))"
        ".encode()).hexdigest())"
    )
    other = subprocess.run(  # a fresh interpreter with another hash seed: no reliance on hash()
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
        cwd=REPO_ROOT,
    )
    assert other.stdout.strip() == hashlib.sha256(repr(companies).encode()).hexdigest()


def test_company_does_not_depend_on_earlier_companies_when_seed_is_shared() -> None:
    """Company i is drawn from (seed, i) alone; only ERP invoice numbers follow the stream."""
    context = book._BookContext(seed=SEED, today=TODAY, products=book.products(SEED))
    alone = book._CompanyBuilder(context, 57).build()
    in_stream = next(c for c in book.iter_companies(SEED, "demo", TODAY) if c.index == 57)
    assert alone.name == in_stream.name
    assert [d.amount for d in alone.deals] == [d.amount for d in in_stream.deals]


def test_stream_differs_when_seed_differs(companies: list[book.Company]) -> None:
    other = list(book.iter_companies(SEED + 1, "demo", TODAY))
    assert [c.name for c in other] != [c.name for c in companies]


@pytest.mark.parametrize(("scale", "expected"), [("empty", 0), ("demo", 120)])
def test_stream_has_scale_companies_when_scale_is_known(scale: str, expected: int) -> None:
    assert sum(1 for _ in book.iter_companies(SEED, scale, TODAY)) == expected == book.SCALE_COMPANIES[scale]


def test_stream_uses_the_date_when_today_is_given_as_a_datetime(companies: list[book.Company]) -> None:
    noon = dt.datetime(2025, 6, 15, 12, 30, tzinfo=dt.UTC)
    assert next(book.iter_companies(SEED, "demo", noon)) == companies[0]


def test_stream_raises_value_error_when_scale_is_unknown() -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        next(book.iter_companies(SEED, "huge", TODAY))


# ---- products and money -------------------------------------------------------------------------


def test_products_are_priced_in_every_currency_when_listed() -> None:
    catalogue = book.products(SEED)
    assert 10 <= len(catalogue) <= 14
    for product in catalogue:
        assert set(product.unit_prices) == set(book.CURRENCIES)
        for currency, price in product.unit_prices.items():
            assert price > 0 and is_exact(price, currency), (product.code, currency, price)
    assert [p.erp_product_id for p in catalogue] == list(range(1, len(catalogue) + 1))
    assert (
        len({p.sf_product_id for p in catalogue})
        == len({p.stripe_product_id for p in catalogue})
        == len(catalogue)
    )
    assert any(not p.recurring for p in catalogue)


@pytest.mark.parametrize(
    ("currency", "low", "high"),
    [
        ("USD", 10_000, 14_000),
        ("JPY", 1_500_000, 2_000_000),
        ("KRW", 14_000_000, 18_000_000),
        ("VND", 250_000_000, 350_000_000),
        ("IDR", 150_000_000, 220_000_000),
        ("SGD", 14_000, 18_000),
    ],
)
def test_product_prices_follow_fixed_rates_when_converted(currency: str, low: int, high: int) -> None:
    standard_billing = book.products(SEED)[0]  # USD 12,000 a year
    assert low <= standard_billing.unit_prices[currency] <= high


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (Decimal("12.345"), "USD", Decimal("12.34")),
        (Decimal("12.355"), "SGD", Decimal("12.36")),
        (Decimal("1234.5"), "JPY", Decimal("1234")),
        (Decimal("99.9"), "VND", Decimal("100")),
        (7, "KRW", Decimal("7")),
    ],
)
def test_money_rounds_to_currency_exponent_when_given_any_amount(
    value, currency: str, expected: Decimal
) -> None:
    assert book.money(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "currency", "expected"), [(Decimal("12.34"), "USD", 1234), (Decimal("1500"), "JPY", 1500)]
)
def test_minor_units_scale_by_exponent_when_converting(value: Decimal, currency: str, expected: int) -> None:
    assert book.minor_units(value, currency) == expected


def test_every_amount_respects_currency_exponent_when_generated(companies: list[book.Company]) -> None:
    for c in companies:
        amounts = [d.amount for d in c.deals] + [ln.unit_price for d in c.deals for ln in d.lines]
        amounts += [s.amount for s in c.subscriptions]
        for d in c.deals:
            if d.invoice:
                amounts += [d.invoice.amount_total, d.invoice.erp_amount_total]
                amounts += [u for _, _, u in d.invoice.erp_lines]
        for p in all_payments(c):
            assert p.currency == c.currency
            amounts += [p.amount, p.refunded_amount]
        assert all(is_exact(a, c.currency) for a in amounts), c.key
        if book.CURRENCIES[c.currency].exponent == 0:
            assert all(a == a.to_integral_value() for a in amounts)


def test_deal_amount_is_sum_of_lines_when_generated(companies: list[book.Company]) -> None:
    catalogue = book.products(SEED)
    for c in companies:
        for d in c.deals:
            assert d.currency == c.currency
            assert 1 <= len(d.lines) <= 4
            assert d.amount == sum(ln.quantity * ln.unit_price for ln in d.lines)
            assert all(ln.unit_price == catalogue[ln.product_index].unit_prices[d.currency] for ln in d.lines)


# ---- ids --------------------------------------------------------------------------------------------


def salesforce_ids(c: book.Company) -> list[tuple[str, str]]:
    ids = [("001", c.sf_account_id)] + (
        [("001", c.duplicate_sf_account_id)] if c.duplicate_sf_account_id else []
    )
    ids += [("003", p.sf_contact_id) for p in c.contacts]
    ids += [("006", d.sf_opportunity_id) for d in c.deals]
    ids += [("00k", ln.sf_line_id) for d in c.deals for ln in d.lines]
    ids += [("a0B", d.invoice.sf_invoice_id) for d in c.deals if d.invoice and d.invoice.sf_invoice_id]
    ids += [("a0C", s.sf_subscription_id) for s in c.subscriptions]
    return ids


def test_salesforce_ids_are_unique_valid_18_character_ids_when_generated(
    companies: list[book.Company],
) -> None:
    ids = [pair for c in companies for pair in salesforce_ids(c)] + [
        ("01t", p.sf_product_id) for p in book.products(SEED)
    ]
    assert len({sf_id for _, sf_id in ids}) == len(ids)
    for prefix, sf_id in ids:
        assert len(sf_id) == 18 and sf_id.startswith(prefix)
        assert book.salesforce_id18(sf_id[:15]) == sf_id


def test_salesforce_id_numbers_stay_below_runtime_range_when_scale_is_large() -> None:
    last = book.SCALE_COMPANIES["large"] - 1
    assert (last + 1) * 32 < book.RUNTIME_ID_BASE
    runtime_first = book.salesforce_id("006", book.RUNTIME_ID_BASE)
    assert book.salesforce_id("006", last * 8 + 7) < runtime_first  # same length, base62 digits sort in order


def test_erp_ids_are_unique_and_below_runtime_range_when_generated(companies: list[book.Company]) -> None:
    partners = [c.erp_partner_id for c in companies if c.erp_partner_id]
    partners += [c.duplicate_erp_partner_id for c in companies if c.duplicate_erp_partner_id]
    moves = [d.invoice.erp_move_id for c in companies for d in c.deals if d.invoice]
    payments = [p.erp_payment_id for c in companies for p in all_payments(c) if p.erp_payment_id]
    for ids in (partners, moves, payments):
        assert len(set(ids)) == len(ids)
        assert all(0 < i < book.RUNTIME_ID_BASE for i in ids)


def test_stripe_ids_are_unique_per_object_when_generated(companies: list[book.Company]) -> None:
    ids = [c.stripe_customer_id for c in companies if c.stripe_customer_id]
    ids += [
        d.invoice.stripe_invoice_id
        for c in companies
        for d in c.deals
        if d.invoice and d.invoice.stripe_invoice_id
    ]
    for c in companies:
        for p in all_payments(c):
            ids += [p.stripe_payment_intent_id, p.stripe_charge_id] + (
                [p.stripe_refund_id] if p.stripe_refund_id else []
            )
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"(cus|in|pi|ch|re)_[0-9A-Za-z]{14}", i) for i in ids)


def test_erp_invoice_numbers_follow_a_gapless_sequence_per_year_when_generated(
    invoices: list[book.Invoice],
) -> None:
    by_year: dict[int, list[int]] = defaultdict(list)
    for invoice in invoices:
        match = INVOICE_NUMBER.match(invoice.erp_number)
        assert match, invoice.erp_number
        assert int(match.group(1)) == invoice.invoice_date.year
        by_year[invoice.invoice_date.year].append(int(match.group(2)))
    for numbers in by_year.values():
        assert sorted(numbers) == list(range(1, len(numbers) + 1))


# ---- time ---------------------------------------------------------------------------------------------


def test_timestamps_are_utc_and_ordered_when_generated(companies: list[book.Company]) -> None:
    for c in companies:
        stamps = [c.created_at, c.last_modified_at] + [p.created_at for p in c.contacts]
        stamps += [t for d in c.deals for t in (d.created_at, d.last_modified_at)]
        stamps += [p.created_at for p in all_payments(c)]
        assert all(t.tzinfo is dt.UTC and t < ANCHOR for t in stamps), c.key
        assert c.created_at <= c.last_modified_at
        assert all(c.created_at <= p.created_at for p in c.contacts)
        assert all(c.created_at <= d.created_at <= d.last_modified_at for d in c.deals)


def test_close_dates_span_two_years_and_only_open_deals_lie_ahead_when_generated(
    companies: list[book.Company],
) -> None:
    for d in (d for c in companies for d in c.deals):
        assert d.created_at.date() < d.close_date
        assert TODAY - dt.timedelta(days=731) <= d.close_date <= TODAY + dt.timedelta(days=90)
        if d.is_closed:
            assert d.close_date < TODAY


def test_stages_cover_the_pipeline_with_about_a_third_won_when_generated(
    companies: list[book.Company],
) -> None:
    stages = Counter(d.stage for c in companies for d in c.deals)
    assert set(stages) == set(book.STAGES)
    assert 0.25 <= stages["Closed Won"] / sum(stages.values()) <= 0.45
    assert {d.type for c in companies for d in c.deals} == {"New Business", "Upsell", "Renewal"}
    assert all(2 <= len(c.deals) <= 6 and 2 <= len(c.contacts) <= 4 for c in companies)


# ---- invoices and payments ----------------------------------------------------------------------------


def test_only_won_deals_carry_invoices_when_generated(companies: list[book.Company]) -> None:
    for d in (d for c in companies for d in c.deals):
        assert (d.invoice is not None) == d.is_won
        if d.invoice:
            assert d.invoice.revloop_key == f"rl-inv-{d.sf_opportunity_id}"
            assert d.invoice.amount_total == d.amount
            assert d.close_date <= d.invoice.invoice_date <= d.close_date + dt.timedelta(days=3)


def test_erp_lines_add_up_to_erp_total_when_generated(invoices: list[book.Invoice]) -> None:
    for invoice in invoices:
        assert sum(q * u for _, q, u in invoice.erp_lines) == invoice.erp_amount_total


def payment_facts(invoice: book.Invoice) -> tuple[Decimal, Decimal, bool, int]:
    succeeded = [p for p in invoice.payments if p.status == "succeeded"]
    declined = [p for p in invoice.payments if p.status == "requires_payment_method"]
    assert len(succeeded) + len(declined) == len(invoice.payments)
    assert len(succeeded) <= 1 and all(p.failure_code and p.erp_payment_id is None for p in declined)
    paid = sum((p.amount for p in succeeded), Decimal(0))
    refunded = sum((p.refunded_amount for p in succeeded), Decimal(0))
    return paid, refunded, any(p.disputed for p in succeeded), len(declined)


def test_invoice_states_agree_with_payments_when_generated(invoices: list[book.Invoice]) -> None:
    for invoice in invoices:
        paid, refunded, disputed, declines = payment_facts(invoice)
        total, state = invoice.amount_total, invoice.erp_payment_state
        if state == "paid":
            assert paid == total and refunded < total and invoice.paid_at is not None
            assert invoice.sf_payment_status == ("Disputed" if disputed else "Paid")
            assert invoice.stripe_status == "paid"
        elif state == "reversed":
            assert paid == refunded == total and invoice.sf_payment_status == "Refunded"
            assert invoice.stripe_status == "paid" and invoice.paid_at is not None
        elif state == "partial":
            assert 0 < paid < total and invoice.sf_payment_status == "Partially Paid"
            assert invoice.stripe_status == "open" and invoice.paid_at is None
        else:
            assert state == "not_paid" and paid == 0 and invoice.paid_at is None
            assert invoice.sf_payment_status == ("Failed" if declines else "Unpaid")
            waiting: set[str | None] = {None, "draft", "open", "void"}
            assert invoice.stripe_status in ({"open", "uncollectible"} if declines else waiting)
        assert (invoice.erp_state == "cancel") == (invoice.sf_status == "Cancelled")
        if invoice.erp_state == "cancel":
            assert invoice.stripe_status in (None, "void") and not invoice.payments
        assert (invoice.stripe_invoice_id is None) == (invoice.stripe_status is None)
        if invoice.stripe_invoice_id is None:
            assert not invoice.payments
        for p in invoice.payments:
            assert p.created_at.date() >= invoice.invoice_date
            assert (p.erp_payment_id is not None) == (p.status == "succeeded")
            assert (p.stripe_refund_id is not None) == (p.refunded_amount > 0)
        if invoice.paid_at:
            assert invoice.paid_at == next(p.created_at for p in invoice.payments if p.status == "succeeded")


def test_demo_book_holds_every_invoice_outcome_when_generated(invoices: list[book.Invoice]) -> None:
    seen = {(i.erp_payment_state, i.sf_payment_status, i.stripe_status) for i in invoices}
    assert {
        ("paid", "Paid", "paid"),
        ("partial", "Partially Paid", "open"),
        ("reversed", "Refunded", "paid"),
        ("not_paid", "Failed", "open"),
        ("not_paid", "Unpaid", "open"),
    } <= seen
    assert any(i.stripe_invoice_id is None for i in invoices)
    assert any(i.sf_invoice_id is None for i in invoices)
    assert any(p.status == "requires_payment_method" for i in invoices for p in i.payments)
    assert any(0 < p.refunded_amount < p.amount for i in invoices for p in i.payments)


@pytest.mark.parametrize("outcome", sorted(book._INVOICE_STATES))
def test_outcome_table_is_internally_consistent_when_read(outcome: str) -> None:
    erp_state, erp_payment_state, sf_status, sf_payment_status, stripe_status = book.invoice_outcome_states(
        outcome
    )
    assert erp_state in ("posted", "cancel") and sf_status in ("Posted", "Cancelled")
    assert erp_payment_state in ("not_paid", "partial", "paid", "reversed")
    assert sf_payment_status in ("Unpaid", "Partially Paid", "Paid", "Failed", "Refunded", "Disputed")
    assert stripe_status in (None, "draft", "open", "paid", "void", "uncollectible")
    assert (erp_payment_state in ("paid", "reversed")) == (stripe_status == "paid")


# ---- companies, subscriptions -------------------------------------------------------------------------


def test_cross_system_references_are_coherent_when_generated(companies: list[book.Company]) -> None:
    for c in companies:
        won = [d for d in c.deals if d.is_won]
        pushed = any(d.invoice and d.invoice.stripe_invoice_id for d in won) or bool(c.orphan_payments)
        assert (c.erp_partner_id is not None) == bool(won)
        assert (c.stripe_customer_id is not None) == pushed
        assert c.billing_email == next((p.email for p in c.contacts if p.email), None)
        assert (c.duplicate_erp_partner_id is None) or (c.erp_partner_id is not None and c.vat is not None)
        if c.subscriptions:
            assert won


def test_subscriptions_run_twelve_months_with_consistent_status_when_generated(
    companies: list[book.Company],
) -> None:
    subscriptions = [(c, s) for c in companies for s in c.subscriptions]
    for c, s in subscriptions:
        assert s.currency == c.currency and s.amount > 0
        assert 364 <= (s.end_date - s.start_date).days <= 365
        if s.status != "Cancelled":
            assert s.status == ("Active" if s.end_date >= TODAY else "Expired")
        if s.renewal_opportunity_id:
            renewal = next(d for d in c.deals if d.sf_opportunity_id == s.renewal_opportunity_id)
            assert renewal.type == "Renewal" and not renewal.is_closed
    statuses = Counter(s.status for _, s in subscriptions)
    assert statuses["Active"] and statuses["Expired"]
    assert any(s.renewal_opportunity_id for _, s in subscriptions)
    assert any(s.status == "Active" and (s.end_date - TODAY).days <= 60 for _, s in subscriptions)


def test_contact_details_are_well_formed_when_generated(companies: list[book.Company]) -> None:
    for c in companies:
        assert E164.match(c.phone), c.phone
        assert c.website == f"https://www.{c.email_domain}"
        for p in c.contacts:
            assert p.phone is None or E164.match(p.phone), p.phone
            assert p.email is None or (p.email.endswith("@" + c.email_domain) and p.email.isascii())
        assert len({p.email for p in c.contacts if p.email}) == sum(1 for p in c.contacts if p.email)
    assert len({c.name for c in companies}) == len({c.email_domain for c in companies}) == len(companies)


@pytest.mark.parametrize(
    ("script", "pattern"),
    [
        ("Chinese", r"[\u4e00-\u9fff]"),
        ("Japanese kana", r"[\u30a0-\u30ff]"),
        ("Korean", r"[\uac00-\ud7a3]"),
        ("Thai", r"[\u0e00-\u0e7f]"),
        ("Vietnamese", r"[ạảấầẩậắằẳặẹẻẽếềểệịọỏốồổộớờởợụủứừửựỳỷỹđĐ]"),
        ("Latin", r"^[ -~]+$"),
    ],
)
def test_company_names_come_in_several_scripts_when_generated(
    companies: list[book.Company], script: str, pattern: str
) -> None:
    assert any(re.search(pattern, c.name) for c in companies), script


def test_countries_use_their_currency_and_time_zone_when_generated(companies: list[book.Company]) -> None:
    expected = {
        "SG": "SGD",
        "MY": "USD",
        "ID": "IDR",
        "TH": "THB",
        "VN": "VND",
        "PH": "USD",
        "JP": "JPY",
        "KR": "KRW",
        "AU": "AUD",
        "HK": "HKD",
        "IN": "INR",
    }
    assert {c.country for c in companies} == set(expected)
    for c in companies:
        assert c.currency == expected[c.country]
        assert c.timezone.startswith("Australia/" if c.country == "AU" else "Asia/")


# ---- mess ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", book.MESS_KINDS)
def test_each_mess_kind_appears_at_least_twice_when_scale_is_demo(
    companies: list[book.Company], kind: str
) -> None:
    assert sum(kind in c.mess for c in companies) >= 2


def mess_is_visible(c: book.Company, kind: str) -> bool:
    invoices = [d.invoice for d in c.deals if d.invoice]
    return {
        "name_variant": c.erp_name != c.name,
        "duplicate_account": c.duplicate_sf_account_id is not None,
        "duplicate_partner": c.duplicate_erp_partner_id is not None,
        "missing_email": any(p.email is None for p in c.contacts),
        "amount_mismatch": any(i.erp_amount_total != i.amount_total for i in invoices),
        "orphan_payment": bool(c.orphan_payments),
    }[kind]


@pytest.mark.parametrize("kind", book.MESS_KINDS)
def test_discrepancy_exists_exactly_when_company_is_flagged(companies: list[book.Company], kind: str) -> None:
    for c in companies:
        assert mess_is_visible(c, kind) == (kind in c.mess), (c.key, kind)


def test_amount_mismatch_is_one_minor_unit_when_flagged(companies: list[book.Company]) -> None:
    for c in (c for c in companies if "amount_mismatch" in c.mess):
        unit = Decimal(1).scaleb(-book.CURRENCIES[c.currency].exponent)
        gaps = [d.invoice.erp_amount_total - d.invoice.amount_total for d in c.deals if d.invoice]
        assert sorted(set(gaps)) in ([Decimal(0), unit], [unit])


# ---- volumes ------------------------------------------------------------------------------------------


def test_demo_record_counts_match_the_stream_when_counted(companies: list[book.Company]) -> None:
    objects = book.count_objects(SEED, "demo", TODAY)
    records = book.count_records(SEED, "demo", TODAY)
    assert objects["salesforce.accounts"] == 120 + sum(
        c.duplicate_sf_account_id is not None for c in companies
    )
    assert objects["salesforce.opportunities"] == sum(len(c.deals) for c in companies)
    assert objects["erp.invoices"] == sum(d.is_won for c in companies for d in c.deals)
    attempts = [p for c in companies for p in (*c.orphan_payments,
                                                 *(p for d in c.deals if d.invoice for p in d.invoice.payments))]
    retained = [p for p in attempts if p.created_at >= ANCHOR - dt.timedelta(days=book.PAYMENTS_EVENT_RETENTION_DAYS)]
    awaiting = [d.invoice for c in companies for d in c.deals if d.invoice and book.awaits_payment(d.invoice)]
    assert objects["payments.payment_intents"] == len(attempts) + len(awaiting)
    assert 0 < len(retained) < len(attempts)
    assert objects["payments.events"] == 3 * len(retained)
    for system in ("salesforce", "erp", "payments"):
        assert records[system] == sum(n for key, n in objects.items() if key.startswith(system + "."))
    assert records["total"] == records["salesforce"] + records["erp"] + records["payments"]
    assert 3_500 <= records["total"] <= 5_000  # ~35 records per company


def test_large_book_reaches_a_million_records_when_counted() -> None:
    records = book.count_records(SEED, "large", TODAY)
    assert records["total"] >= 1_000_000


def test_company_names_and_domains_never_repeat_when_scale_is_large() -> None:
    names, domains, count = set(), set(), 0
    for company in book.iter_companies(SEED, "large", TODAY):
        names.add(company.name)
        domains.add(company.email_domain)
        count += 1
    assert len(names) == len(domains) == count == book.SCALE_COMPANIES["large"]
