"""Seeds the ERP store: Odoo's base data (currencies, countries, the company, taxes, integration users),
the product catalogue, and the book's customers, posted invoices and reconciled payments.

Rows go straight to SQLite with ``executemany`` in one transaction (the ORM would be far too slow for the
``large`` scale's million records); ids come from the book so the three systems' references line up.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sandboxes import book
from sandboxes.erp.access import INTEGRATIONS
from sandboxes.erp.accounting import PAYMENT_PREFIX
from sandboxes.erp.store import Store

logger = logging.getLogger(__name__)

COUNTRIES = (
    ("SG", "Singapore", "SGD"), ("MY", "Malaysia", "USD"), ("ID", "Indonesia", "IDR"), ("TH", "Thailand", "THB"),
    ("VN", "Vietnam", "VND"), ("PH", "Philippines", "USD"), ("JP", "Japan", "JPY"), ("KR", "South Korea", "KRW"),
    ("AU", "Australia", "AUD"), ("HK", "Hong Kong", "HKD"), ("IN", "India", "INR"), ("US", "United States", "USD"),
    ("NZ", "New Zealand", "USD"), ("CN", "China", "USD"), ("TW", "Taiwan", "USD"), ("GB", "United Kingdom", "USD"),
)
"""(code, name, currency) of the countries the sandbox knows; ids follow this order from 1."""
CURRENCY_SYMBOLS = {"SGD": "S$", "USD": "$", "AUD": "A$", "JPY": "¥", "KRW": "₩", "IDR": "Rp", "VND": "₫",
                    "THB": "฿", "HKD": "HK$", "INR": "₹"}
SALES_TAXES = (("SG", "9% GST", 9.0), ("AU", "10% GST", 10.0), ("JP", "10% JCT", 10.0), ("IN", "18% GST", 18.0),
               ("ID", "11% PPN", 11.0), ("TH", "7% VAT", 7.0))
COMPANY_NAME = "Revloop Pte. Ltd."
BATCH_COMPANIES = 2_000
"""Companies buffered between ``executemany`` flushes (memory stays flat at the large scale)."""

CURRENCY_IDS = {code: n for n, code in enumerate(book.CURRENCIES, start=1)}
COUNTRY_IDS = {code: n for n, (code, _, _) in enumerate(COUNTRIES, start=1)}
ANCHOR_KEY = "anchor_date"


def _ts(moment: dt.datetime | dt.date) -> str:
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime(moment.year, moment.month, moment.day, 9, 0, 0)
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") \
        if moment.tzinfo else moment.isoformat(sep=" ", timespec="microseconds")


def _insert(conn: Any, table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> None:
    marks = ", ".join("?" * len(columns))
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def anchor_date(store: Store) -> dt.date:
    """The book's anchor date: the UTC date of the first seeding, kept so restarts see the same book."""
    stored = store.meta(ANCHOR_KEY)
    if stored:
        return dt.date.fromisoformat(stored)
    today = dt.datetime.now(dt.UTC).date()
    store.set_meta(ANCHOR_KEY, today.isoformat())
    return today


def seed(store: Store, seed_value: int, scale: str) -> dict[str, int]:
    """Fill an empty store; returns the record counts per model."""
    today = anchor_date(store)
    logger.info("seeding ERP store (seed=%s, scale=%s, anchor=%s)", seed_value, scale, today)
    with store.transaction() as conn:
        created = _ts(dt.datetime(today.year, 1, 1) - dt.timedelta(days=800))
        _seed_base(conn, seed_value, created)
        sequences = _seed_book(conn, seed_value, scale, today)
        _insert(conn, "sandbox_sequence", ("prefix", "last"), sorted(sequences.items()))
        store.set_meta("seed", str(seed_value))
        store.set_meta("scale", scale)
    store.forget_ids()
    return store.counts()


def _seed_base(conn: Any, seed_value: int, created: str) -> None:
    magic = (created, 1, created, 1)
    magic_columns = ("create_date", "create_uid", "write_date", "write_uid")
    _insert(conn, "res_users", ("id", "name", "login", "active", *magic_columns),
            [(1, "OdooBot", "__system__", 0, *magic)] + [(i.uid, i.name, i.login, 1, *magic) for i in INTEGRATIONS])
    _insert(conn, "res_currency",
            ("id", "name", "full_name", "symbol", "rounding", "decimal_places", "position", "active", *magic_columns),
            [(CURRENCY_IDS[c.code], c.code, c.name, CURRENCY_SYMBOLS.get(c.code, c.code),
              float(Decimal(1).scaleb(-c.exponent)), c.exponent, "before", 1, *magic)
             for c in book.CURRENCIES.values()])
    _insert(conn, "res_country", ("id", "code", "name", "currency_id", *magic_columns),
            [(COUNTRY_IDS[code], code, name, CURRENCY_IDS[currency], *magic) for code, name, currency in COUNTRIES])
    _insert(conn, "res_company", ("id", "name", "currency_id", "country_id", *magic_columns),
            [(1, COMPANY_NAME, CURRENCY_IDS["SGD"], COUNTRY_IDS["SG"], *magic)])
    _insert(conn, "account_tax",
            ("id", "name", "amount", "amount_type", "type_tax_use", "country_id", "active", *magic_columns),
            [(n, name, rate, "percent", "sale", COUNTRY_IDS[code], 1, *magic)
             for n, (code, name, rate) in enumerate(SALES_TAXES, start=1)])
    _insert(conn, "product_product",
            ("id", "name", "default_code", "list_price", "type", "active", *magic_columns),
            [(p.erp_product_id, p.name, p.code, float(p.unit_prices["USD"]), "service", 1, *magic)
             for p in book.products(seed_value)])


class _Batch:
    """Rows buffered per table, flushed with ``executemany``."""

    COLUMNS = {
        "res_partner": ("id", "name", "email", "phone", "vat", "website", "is_company", "street", "city", "zip",
                        "country_id", "customer_rank", "supplier_rank", "lang", "active",
                        "create_date", "create_uid", "write_date", "write_uid"),
        "account_move": ("id", "name", "move_type", "state", "partner_id", "company_id", "date", "invoice_date",
                         "invoice_date_due", "currency_id", "ref", "invoice_origin", "payment_reference",
                         "amount_untaxed", "amount_tax", "amount_total", "amount_residual", "payment_state",
                         "create_date", "create_uid", "write_date", "write_uid"),
        "account_move_line": ("id", "move_id", "sequence", "product_id", "name", "quantity", "price_unit",
                              "discount", "price_subtotal", "price_tax", "price_total",
                              "create_date", "create_uid", "write_date", "write_uid"),
        "account_payment": ("id", "name", "payment_type", "partner_type", "partner_id", "amount", "currency_id",
                            "date", "memo", "payment_reference", "state", "company_id",
                            "create_date", "create_uid", "write_date", "write_uid"),
        "account_payment_invoice_rel": ("payment_id", "invoice_id", "amount"),
    }

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in self.COLUMNS}

    def flush(self, conn: Any) -> None:
        for table, rows in self.rows.items():
            if rows:
                _insert(conn, table, self.COLUMNS[table], rows)
                rows.clear()


def _seed_book(conn: Any, seed_value: int, scale: str, today: dt.date) -> dict[str, int]:
    products = book.products(seed_value)
    batch = _Batch()
    sequences: dict[str, int] = {}
    line_id = 0
    payment_numbers: dict[int, int] = {}
    for count, company in enumerate(book.iter_companies(seed_value, scale, today), start=1):
        if company.erp_partner_id is None:
            continue
        created, modified = _ts(company.created_at), _ts(max(company.last_modified_at, company.created_at))
        invoices = [d.invoice for d in company.deals if d.invoice is not None]
        partner = (company.erp_name, company.billing_email, company.phone, company.vat, company.website, 1,
                   company.street, company.city, company.postal_code, COUNTRY_IDS.get(company.country), len(invoices),
                   0, "en_US", 1)
        batch.rows["res_partner"].append((company.erp_partner_id, *partner, created, 6, modified, 6))
        if company.duplicate_erp_partner_id is not None:
            # The same customer keyed in twice: same VAT, created later, never invoiced.
            duplicate = (company.erp_name, None, company.phone, company.vat, partner[4], 1, company.street,
                         company.city, company.postal_code, COUNTRY_IDS.get(company.country), 0, 0, "en_US", 1)
            batch.rows["res_partner"].append((company.duplicate_erp_partner_id, *duplicate, modified, 2, modified, 2))
        for deal in company.deals:
            if deal.invoice is not None:
                line_id = _add_invoice(batch, company, deal, deal.invoice, products, line_id, payment_numbers)
                prefix, _, number = deal.invoice.erp_number.rpartition("/")
                sequences[prefix] = max(sequences.get(prefix, 0), int(number))
        if count % BATCH_COMPANIES == 0:
            batch.flush(conn)
    batch.flush(conn)
    sequences.update({f"{PAYMENT_PREFIX}/{year}": n for year, n in payment_numbers.items()})
    return sequences


def _add_invoice(batch: _Batch, company: book.Company, deal: book.Deal, invoice: book.Invoice,
                 products: tuple[book.Product, ...], line_id: int, payment_numbers: dict[int, int]) -> int:
    digits = book.CURRENCIES[invoice.currency].exponent
    currency_id = CURRENCY_IDS[invoice.currency]
    created = _ts(invoice.invoice_date)
    total = invoice.erp_amount_total
    untaxed = sum((Decimal(q) * price for _, q, price in invoice.erp_lines), Decimal(0))
    succeeded = [p for p in invoice.payments if p.status == "succeeded" and p.erp_payment_id is not None]
    paid = sum((p.amount for p in succeeded), Decimal(0))
    settled = invoice.erp_payment_state in ("paid", "reversed")
    partial = invoice.erp_payment_state == "partial"
    residual = Decimal(0) if settled else (total - min(paid, total) if partial else total)
    if invoice.erp_state != "posted":
        residual = total
    last_change = max([created, *(_ts(p.created_at) for p in succeeded)])
    batch.rows["account_move"].append((
        invoice.erp_move_id, invoice.erp_number, "out_invoice", invoice.erp_state, company.erp_partner_id, 1,
        invoice.invoice_date.isoformat(), invoice.invoice_date.isoformat(), invoice.due_date.isoformat(), currency_id,
        invoice.revloop_key, deal.sf_opportunity_id, invoice.erp_number, float(untaxed), float(total - untaxed),
        float(total), float(residual), invoice.erp_payment_state, created, 6, last_change, 6,
    ))
    for sequence, (product_index, quantity, unit_price) in enumerate(invoice.erp_lines, start=1):
        line_id += 1
        subtotal = float(round(Decimal(quantity) * unit_price, digits))
        batch.rows["account_move_line"].append((
            line_id, invoice.erp_move_id, sequence * 10, products[product_index].erp_product_id,
            products[product_index].name, float(quantity), float(unit_price), 0.0, subtotal, 0.0, subtotal,
            created, 6, created, 6,
        ))
    remaining = total
    for payment in succeeded:
        moment = _ts(payment.created_at)
        year = payment.created_at.year
        payment_numbers[year] = payment_numbers.get(year, 0) + 1
        name = f"{PAYMENT_PREFIX}/{year}/{payment_numbers[year]:05d}"
        allocated = remaining if settled else min(payment.amount, remaining)
        remaining -= allocated
        batch.rows["account_payment"].append((
            payment.erp_payment_id, name, "inbound", "customer", company.erp_partner_id, float(payment.amount),
            currency_id, payment.created_at.date().isoformat(), invoice.erp_number, payment.stripe_payment_intent_id,
            "paid", 1, moment, 6, moment, 6,
        ))
        batch.rows["account_payment_invoice_rel"].append((payment.erp_payment_id, invoice.erp_move_id,
                                                          float(allocated)))
    return line_id
