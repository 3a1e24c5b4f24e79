"""The process Revloop replaces, as an export: the sandboxes' book seen through finance's old spreadsheets.

During a parallel run finance compares Revloop's canonical layer with what the legacy process (spreadsheets
fed by integration recipes) holds for the same deals. This module writes that export from the seeded book
(:mod:`sandboxes.book`), in the format ``revloop parity --legacy DIR`` reads (``docs/data-quality.md``,
"Parity with the process being replaced"), and plants a known set of differences in it, so that the
comparison can be shown, and tested, to find exactly those. With ``clean=True`` the export agrees with the
book everywhere.

The writer knows the format only from its documentation, not from Revloop's reader, as an outside
system would.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import random
import sqlite3
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from sandboxes import book

INVOICE_COLUMNS = (
    "invoice_number", "salesforce_opportunity_id", "salesforce_account_id", "currency", "amount", "invoice_date",
    "status",
)
PAYMENT_COLUMNS = ("payment_id", "invoice_number", "currency", "amount", "paid_date", "status")
SEEDED_DIFFERENCES_FILE = "seeded_differences.json"

INVOICE_TOTALS = "invoice_totals_per_day"
PAYMENT_TOTALS = "payment_totals_per_day"

# How the legacy process names an invoice's state: the ERP's state and payment state in one word.
_LEGACY_INVOICE_STATUS = {"not_paid": "unpaid", "partial": "partially_paid", "paid": "paid",
                          "in_payment": "paid", "reversed": "refunded"}
Day = tuple[str, dt.date]
"""A currency and a day: one row of the per-day totals."""

_EXTRA_INVOICE_SEQUENCE = 90_001
"""Numbers the legacy process gives invoices Revloop never made start here, far above the ERP's sequence."""


@dataclasses.dataclass(frozen=True)
class LegacyInvoice:
    invoice_number: str
    salesforce_opportunity_id: str
    salesforce_account_id: str
    currency: str
    amount: Decimal
    invoice_date: dt.date
    status: str
    erp_invoice_id: int | None
    """Not exported: what the ERP calls the same invoice (None for one only the legacy process has)."""


@dataclasses.dataclass(frozen=True)
class LegacyPayment:
    payment_id: str
    invoice_number: str | None
    currency: str
    amount: Decimal
    paid_date: dt.date
    status: str


@dataclasses.dataclass(frozen=True)
class SeededDifference:
    """One difference planted in the export, and where ``revloop parity`` must report it.

    Attributes:
        check: the parity check that must report it.
        key: the compared key (invoice number or payment id).
        revloop: ids and values as Revloop holds them (empty when Revloop does not have the record).
        legacy: ids and values as the export holds them, with the CSV file and line (empty when absent).
        totals: the per-currency, per-day totals it also moves: ``{"check", "currency", "day"}``.
        description: what was changed, in words.
    """

    check: str
    key: str
    revloop: dict[str, Any]
    legacy: dict[str, Any]
    totals: tuple[dict[str, str], ...]
    description: str


@dataclasses.dataclass(frozen=True)
class LegacyExportResult:
    directory: Path
    invoices: int
    payments: int
    differences: tuple[SeededDifference, ...]


def sandbox_book(data_dir: Path) -> tuple[int, str, dt.date] | None:
    """The seed, scale and anchor date the local ERP sandbox under ``data_dir`` was seeded with, if any.

    Read from its store without starting it, so the export describes the same book the sandboxes serve
    (the book moves with its anchor date: an export made a day later would otherwise differ everywhere).
    """
    from sandboxes.erp.backend import STORE_FILE

    path = data_dir / "erp" / STORE_FILE
    if not path.is_file():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        meta = dict(conn.execute("SELECT key, value FROM sandbox_meta").fetchall())
    if not {"seed", "scale", "anchor_date"} <= set(meta):
        return None
    return int(meta["seed"]), meta["scale"], dt.date.fromisoformat(meta["anchor_date"])


def legacy_view(companies: Iterable[book.Company]) -> tuple[list[LegacyInvoice], list[LegacyPayment]]:
    """What the legacy process holds when it agrees with the book: every invoice, every payment attempt."""
    invoices: list[LegacyInvoice] = []
    payments: list[LegacyPayment] = []
    for company in companies:
        for deal in company.deals:
            invoice = deal.invoice
            if invoice is None:
                continue
            status = "void" if invoice.erp_state == "cancel" else _LEGACY_INVOICE_STATUS[invoice.erp_payment_state]
            invoices.append(LegacyInvoice(
                invoice.erp_number, deal.sf_opportunity_id, company.sf_account_id, invoice.currency,
                invoice.erp_amount_total, invoice.invoice_date, status, invoice.erp_move_id,
            ))
            payments.extend(_payment(p, invoice.erp_number) for p in invoice.payments)
        payments.extend(_payment(p, None) for p in company.orphan_payments)
    invoices.sort(key=lambda i: i.invoice_number)
    payments.sort(key=lambda p: (p.paid_date, p.payment_id))
    return invoices, payments


def _payment(payment: book.Payment, invoice_number: str | None) -> LegacyPayment:
    return LegacyPayment(
        payment.stripe_charge_id, invoice_number, payment.currency, payment.amount,
        payment.created_at.astimezone(dt.UTC).date(), "succeeded" if payment.status == "succeeded" else "failed",
    )


def write_legacy_export(
    directory: Path, *, seed: int = 42, scale: str = "demo", today: dt.date | None = None, clean: bool = False
) -> LegacyExportResult:
    """Write ``invoices.csv``, ``payments.csv`` and ``seeded_differences.json`` for the book into ``directory``.

    Args:
        directory: created if missing; the three files are replaced.
        seed: the book's seed (as the sandboxes were started with).
        scale: the book's scale.
        today: the book's anchor date (default: today, UTC, as a sandbox seeded today would use).
        clean: write an export with no differences.

    Returns:
        What was written, with the seeded differences (none when ``clean``).
    """
    anchor = today or dt.datetime.now(dt.UTC).date()
    companies = list(book.iter_companies(seed, scale, anchor))
    invoices, payments = legacy_view(companies)
    differences: list[_Planted] = []
    if not clean:
        invoices, payments, differences = _seed_differences(invoices, payments, companies, seed)
    directory.mkdir(parents=True, exist_ok=True)
    invoice_lines = _write_csv(directory / "invoices.csv", INVOICE_COLUMNS, [_invoice_row(i) for i in invoices],
                               [i.invoice_number for i in invoices])
    payment_lines = _write_csv(directory / "payments.csv", PAYMENT_COLUMNS, [_payment_row(p) for p in payments],
                               [p.payment_id for p in payments])
    seeded = tuple(d.resolve(invoice_lines, payment_lines) for d in differences)
    document = {
        "seed": seed, "scale": scale, "anchor_date": anchor.isoformat(), "clean": clean,
        "invoices": len(invoices), "payments": len(payments),
        "differences": [dataclasses.asdict(d) for d in seeded],
    }
    (directory / SEEDED_DIFFERENCES_FILE).write_text(json.dumps(document, indent=2, default=str) + "\n")
    return LegacyExportResult(directory, len(invoices), len(payments), seeded)


def _invoice_row(invoice: LegacyInvoice) -> list[str]:
    return [invoice.invoice_number, invoice.salesforce_opportunity_id, invoice.salesforce_account_id,
            invoice.currency, str(invoice.amount), invoice.invoice_date.isoformat(), invoice.status]


def _payment_row(payment: LegacyPayment) -> list[str]:
    return [payment.payment_id, payment.invoice_number or "", payment.currency, str(payment.amount),
            payment.paid_date.isoformat(), payment.status]


def _write_csv(path: Path, header: tuple[str, ...], rows: list[list[str]], keys: list[str]) -> dict[str, int]:
    """Write one CSV file; returns each key's line number (the header is line 1)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return {key: line for line, key in enumerate(keys, start=2)}


# ---- seeded differences ---------------------------------------------------------------------------------


@dataclasses.dataclass
class _Planted:
    check: str
    key: str
    file: str
    revloop: dict[str, Any]
    legacy: dict[str, Any]
    totals: list[tuple[str, str, dt.date]]
    description: str

    def resolve(self, invoice_lines: dict[str, int], payment_lines: dict[str, int]) -> SeededDifference:
        lines = invoice_lines if self.file == "invoices.csv" else payment_lines
        legacy = {**self.legacy, "file": self.file, "line": lines[self.key]} if self.legacy else {}
        totals = tuple({"check": check, "currency": currency, "day": day.isoformat()}
                       for check, currency, day in self.totals)
        return SeededDifference(self.check, self.key, self.revloop, legacy, totals, self.description)


def _seed_differences(
    invoices: list[LegacyInvoice], payments: list[LegacyPayment], companies: list[book.Company], seed: int
) -> tuple[list[LegacyInvoice], list[LegacyPayment], list[_Planted]]:
    """Plant one difference per key-level check, each on its own record and its own currency-day.

    Distinct currency-days keep the per-day totals checks' expected rows unambiguous (two differences on
    one day could cancel out); distinct records keep each difference reported by exactly one key check.
    """
    rng = random.Random(f"legacy-export|{seed}")
    by_number = {i.invoice_number: i for i in invoices}
    candidates = sorted(invoices, key=lambda i: i.invoice_number)
    rng.shuffle(candidates)
    paid_candidates = [p for p in payments if p.invoice_number and p.status == "succeeded"]
    rng.shuffle(paid_candidates)
    used_invoices: set[str] = set()
    used_days: set[tuple[str, str, dt.date]] = set()
    planted: list[_Planted] = []

    def take_invoice(wanted: Callable[[LegacyInvoice], bool], days: Callable[[Any], list[Day]]) -> LegacyInvoice:
        for invoice in candidates:
            keys = [(INVOICE_TOTALS, c, d) for c, d in days(invoice)]
            if invoice.invoice_number not in used_invoices and wanted(invoice) and not used_days & set(keys):
                used_invoices.add(invoice.invoice_number)
                used_days.update(keys)
                return invoice
        raise ValueError("the book is too small to seed every difference; use the demo scale or larger")

    def take_payment(wanted: Callable[[LegacyPayment], bool], days: Callable[[Any], list[Day]]) -> LegacyPayment:
        for payment in paid_candidates:
            keys = [(PAYMENT_TOTALS, c, d) for c, d in days(payment)]
            if (payment.invoice_number not in used_invoices and wanted(payment) and not used_days & set(keys)):
                used_invoices.add(str(payment.invoice_number))
                used_days.update(keys)
                return payment
        raise ValueError("the book is too small to seed every difference; use the demo scale or larger")

    def same_day(record: Any) -> list[Day]:
        return [(record.currency, getattr(record, "invoice_date", None) or record.paid_date)]

    def other_currency(currency: str) -> str:
        return "USD" if currency != "USD" else "SGD"

    def cents(record: Any) -> bool:
        return book.CURRENCIES[record.currency].exponent == 2

    replaced_invoices: dict[str, LegacyInvoice | None] = {}
    replaced_payments: dict[str, LegacyPayment | None] = {}

    # -- invoices
    gone = take_invoice(lambda i: i.status == "unpaid", same_day)
    replaced_invoices[gone.invoice_number] = None
    planted.append(_Planted("invoice_missing_in_legacy", gone.invoice_number, "invoices.csv", _ids(gone), {},
                            [(INVOICE_TOTALS, gone.currency, gone.invoice_date)],
                            "an unpaid invoice the legacy process never recorded"))

    company, deal = _lost_deal(companies, rng, lambda d: (INVOICE_TOTALS, d.currency, d.close_date) not in used_days)
    extra = LegacyInvoice(
        f"INV/{deal.close_date.year}/{_EXTRA_INVOICE_SEQUENCE}", deal.sf_opportunity_id, company.sf_account_id,
        deal.currency, deal.amount, deal.close_date, "unpaid", None,
    )
    used_days.add((INVOICE_TOTALS, extra.currency, extra.invoice_date))
    planted.append(_Planted("invoice_missing_in_revloop", extra.invoice_number, "invoices.csv", {},
                            _values(extra), [(INVOICE_TOTALS, extra.currency, extra.invoice_date)],
                            "an invoice the legacy process raised for a Closed Lost deal"))

    off = take_invoice(cents, same_day)
    replaced_invoices[off.invoice_number] = dataclasses.replace(off, amount=off.amount + Decimal("0.01"))
    planted.append(_Planted("invoice_amount_differs", off.invoice_number, "invoices.csv", _ids(off),
                            _values(replaced_invoices[off.invoice_number]),
                            [(INVOICE_TOTALS, off.currency, off.invoice_date)],
                            "the legacy amount is 0.01 higher"))

    moved = take_invoice(lambda i: True, lambda i: [(i.currency, i.invoice_date),
                                                    (other_currency(i.currency), i.invoice_date)])
    replaced_invoices[moved.invoice_number] = dataclasses.replace(moved, currency=other_currency(moved.currency))
    planted.append(_Planted("invoice_currency_differs", moved.invoice_number, "invoices.csv", _ids(moved),
                            _values(replaced_invoices[moved.invoice_number]),
                            [(INVOICE_TOTALS, moved.currency, moved.invoice_date),
                             (INVOICE_TOTALS, other_currency(moved.currency), moved.invoice_date)],
                            f"the legacy process holds it in {other_currency(moved.currency)}"))

    unpaid = take_invoice(lambda i: i.status == "paid", lambda i: [])
    replaced_invoices[unpaid.invoice_number] = dataclasses.replace(unpaid, status="unpaid")
    planted.append(_Planted("invoice_status_differs", unpaid.invoice_number, "invoices.csv", _ids(unpaid),
                            _values(replaced_invoices[unpaid.invoice_number]), [],
                            "paid in Revloop, still unpaid in the legacy process"))

    # -- payments (each on an invoice none of the invoice differences touch)
    missing = take_payment(lambda p: True, same_day)
    replaced_payments[missing.payment_id] = None
    planted.append(_Planted("payment_missing_in_legacy", missing.payment_id, "payments.csv",
                            _payment_ids(missing, by_number), {},
                            [(PAYMENT_TOTALS, missing.currency, missing.paid_date)],
                            "a succeeded payment the legacy process never recorded"))

    host = take_invoice(lambda i: i.status == "unpaid" and i.invoice_date < max(x.invoice_date for x in invoices),
                        lambda i: [])
    paid_on = next(day for day in (host.invoice_date + dt.timedelta(days=n) for n in (1, 0, -1, -2, -3))
                   if (PAYMENT_TOTALS, host.currency, day) not in used_days)
    manual = LegacyPayment(book.stripe_id("ch", "legacy", seed, host.invoice_number), host.invoice_number,
                           host.currency, host.amount, paid_on, "succeeded")
    used_days.add((PAYMENT_TOTALS, manual.currency, manual.paid_date))
    planted.append(_Planted("payment_missing_in_revloop", manual.payment_id, "payments.csv", {},
                            _payment_values(manual), [(PAYMENT_TOTALS, manual.currency, manual.paid_date)],
                            "a payment recorded by hand in the legacy process that the payments platform "
                            "does not have"))

    dearer = take_payment(cents, same_day)
    replaced_payments[dearer.payment_id] = dataclasses.replace(dearer, amount=dearer.amount + Decimal("0.01"))
    planted.append(_Planted("payment_amount_differs", dearer.payment_id, "payments.csv",
                            _payment_ids(dearer, by_number), _payment_values(replaced_payments[dearer.payment_id]),
                            [(PAYMENT_TOTALS, dearer.currency, dearer.paid_date)],
                            "the legacy amount is 0.01 higher"))

    foreign = take_payment(lambda p: True, lambda p: [(p.currency, p.paid_date),
                                                      (other_currency(p.currency), p.paid_date)])
    replaced_payments[foreign.payment_id] = dataclasses.replace(foreign, currency=other_currency(foreign.currency))
    planted.append(_Planted("payment_currency_differs", foreign.payment_id, "payments.csv",
                            _payment_ids(foreign, by_number), _payment_values(replaced_payments[foreign.payment_id]),
                            [(PAYMENT_TOTALS, foreign.currency, foreign.paid_date),
                             (PAYMENT_TOTALS, other_currency(foreign.currency), foreign.paid_date)],
                            f"the legacy process holds it in {other_currency(foreign.currency)}"))

    declined = take_payment(lambda p: True, same_day)
    replaced_payments[declined.payment_id] = dataclasses.replace(declined, status="failed")
    planted.append(_Planted("payment_status_differs", declined.payment_id, "payments.csv",
                            _payment_ids(declined, by_number), _payment_values(replaced_payments[declined.payment_id]),
                            [(PAYMENT_TOTALS, declined.currency, declined.paid_date)],
                            "succeeded in the payments platform, failed in the legacy process"))

    elsewhere = take_payment(lambda p: True, lambda p: [])
    other_invoice = take_invoice(lambda i: i.invoice_number != elsewhere.invoice_number, lambda i: [])
    replaced_payments[elsewhere.payment_id] = dataclasses.replace(elsewhere,
                                                                  invoice_number=other_invoice.invoice_number)
    planted.append(_Planted("payment_invoice_differs", elsewhere.payment_id, "payments.csv",
                            _payment_ids(elsewhere, by_number),
                            _payment_values(replaced_payments[elsewhere.payment_id]), [],
                            f"the legacy process applied it to {other_invoice.invoice_number}"))

    # a replacement of None removes the record from the export
    kept_invoices = [replaced_invoices.get(i.invoice_number, i) for i in invoices]
    kept_payments = [replaced_payments.get(p.payment_id, p) for p in payments]
    new_invoices = sorted([i for i in kept_invoices if i is not None] + [extra], key=lambda i: i.invoice_number)
    new_payments = sorted([p for p in kept_payments if p is not None] + [manual],
                          key=lambda p: (p.paid_date, p.payment_id))
    return new_invoices, new_payments, planted


def _lost_deal(
    companies: list[book.Company], rng: random.Random, wanted: Callable[[book.Deal], bool]
) -> tuple[book.Company, book.Deal]:
    lost = [(c, d) for c in companies for d in c.deals if d.stage == "Closed Lost" and wanted(d)]
    if not lost:
        raise ValueError("the book is too small to seed every difference; use the demo scale or larger")
    return rng.choice(lost)


def _ids(invoice: LegacyInvoice) -> dict[str, Any]:
    """An invoice as Revloop holds it: its ERP id, number and deal, and the compared values."""
    return {"erp_invoice_id": invoice.erp_invoice_id, **_values(invoice)}


def _values(invoice: LegacyInvoice | None) -> dict[str, Any]:
    assert invoice is not None
    return {"invoice_number": invoice.invoice_number, "salesforce_opportunity_id": invoice.salesforce_opportunity_id,
            "currency": invoice.currency, "amount": str(invoice.amount),
            "invoice_date": invoice.invoice_date.isoformat(), "status": invoice.status}


def _payment_ids(payment: LegacyPayment, invoices: dict[str, LegacyInvoice]) -> dict[str, Any]:
    invoice = invoices.get(payment.invoice_number or "")
    return {"charge_id": payment.payment_id, "erp_invoice_id": invoice.erp_invoice_id if invoice else None,
            **_payment_values(payment)}


def _payment_values(payment: LegacyPayment | None) -> dict[str, Any]:
    assert payment is not None
    return {"payment_id": payment.payment_id, "invoice_number": payment.invoice_number,
            "currency": payment.currency, "amount": str(payment.amount),
            "paid_date": payment.paid_date.isoformat(), "status": payment.status}
