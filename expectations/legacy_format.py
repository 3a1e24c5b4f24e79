"""Reading a legacy export (``invoices.csv``, ``payments.csv``): every row validated, bad rows set aside.

The format is documented in ``docs/data-quality.md`` ("Parity with the process being replaced"). A row
with a bad field (an unparseable amount, an unknown currency, a missing key, a duplicate key) is
rejected with its file, line, field and reason, and reading goes on: one typo in a spreadsheet must not
hide the rest of the comparison. A file that cannot be read at all (missing, not UTF-8, without the
required columns) raises :class:`UnreadableExport`.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pipelines.common.currencies import EXPONENTS

INVOICES_FILE = "invoices.csv"
PAYMENTS_FILE = "payments.csv"

INVOICE_STATUSES = ("draft", "void", "unpaid", "partially_paid", "paid", "refunded")
"""An invoice's state in one word: ``draft``/``void`` by its state, else by how much of it is paid."""
PAYMENT_STATUSES = ("succeeded", "failed", "pending")
"""A payment attempt's outcome, as the payments platform's charge reports it."""

_SALESFORCE_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
_MAX_KEY_LENGTH = 255
_MAX_VALUE_SHOWN = 40


class UnreadableExport(Exception):
    """The export (or one of its files) cannot be read at all."""


@dataclasses.dataclass(frozen=True)
class RejectedRow:
    """One bad field of one row; the row is left out of the comparison."""

    file: str
    line: int
    """Line in the file (the header is line 1; a quoted value spanning lines counts where its row starts)."""
    field: str
    reason: str


@dataclasses.dataclass(frozen=True)
class LegacyInvoiceRow:
    line: int
    invoice_number: str
    salesforce_opportunity_id: str | None
    salesforce_account_id: str | None
    currency: str
    amount: Decimal
    invoice_date: dt.date
    status: str


@dataclasses.dataclass(frozen=True)
class LegacyPaymentRow:
    line: int
    payment_id: str
    invoice_number: str | None
    currency: str
    amount: Decimal
    paid_date: dt.date
    status: str


@dataclasses.dataclass(frozen=True)
class LegacyExport:
    """The valid rows of both files and the rejected fields."""

    directory: Path
    invoices: tuple[LegacyInvoiceRow, ...]
    payments: tuple[LegacyPaymentRow, ...]
    rejected: tuple[RejectedRow, ...]

    @property
    def rejected_rows(self) -> int:
        """Rows left out (a row with several bad fields counts once)."""
        return len({(r.file, r.line) for r in self.rejected})


class _Row:
    """One CSV row being validated: parsers record a rejection and return None on a bad field."""

    def __init__(self, file: str, line: int, values: dict[str, Any]) -> None:
        self.file, self.line, self.values = file, line, values
        self.rejected: list[RejectedRow] = []

    def reject(self, field: str, reason: str) -> None:
        self.rejected.append(RejectedRow(self.file, self.line, field, reason))

    def text(self, field: str, *, required: bool) -> str | None:
        value = (self.values.get(field) or "").strip()
        if not value:
            if required:
                self.reject(field, "missing")
            return None
        if len(value) > _MAX_KEY_LENGTH:
            self.reject(field, f"longer than {_MAX_KEY_LENGTH} characters")
            return None
        return value

    def salesforce_id(self, field: str) -> str | None:
        value = self.text(field, required=False)
        if value is not None and not _SALESFORCE_ID.match(value):
            self.reject(field, f"{_shown(value)} is not a 15- or 18-character Salesforce Id")
            return None
        return value

    def currency(self, field: str) -> str | None:
        value = self.text(field, required=True)
        if value is None:
            return None
        code = value.upper()
        if code not in EXPONENTS:
            self.reject(field, f"{_shown(value)} is not an ISO 4217 currency code")
            return None
        return code

    def amount(self, field: str, currency: str | None) -> Decimal | None:
        value = self.text(field, required=True)
        if value is None:
            return None
        try:
            amount = Decimal(value)
        except InvalidOperation:
            self.reject(field, f"{_shown(value)} is not a decimal number (major units, '.' as decimal point)")
            return None
        if not amount.is_finite():
            self.reject(field, f"{_shown(value)} is not a finite number")
            return None
        if amount < 0:
            self.reject(field, f"{_shown(value)} is negative (refunds and credit notes are not part of the export)")
            return None
        if currency is not None:
            exponent = EXPONENTS[currency]
            if amount != amount.quantize(Decimal(1).scaleb(-exponent), rounding="ROUND_DOWN"):
                self.reject(field, f"{_shown(value)} has more decimal places than {currency} allows ({exponent})")
                return None
        return amount

    def date(self, field: str) -> dt.date | None:
        value = self.text(field, required=True)
        if value is None:
            return None
        try:
            if len(value) != 10:
                raise ValueError(value)
            return dt.date.fromisoformat(value)
        except ValueError:
            self.reject(field, f"{_shown(value)} is not a date (YYYY-MM-DD)")
            return None

    def choice(self, field: str, allowed: tuple[str, ...]) -> str | None:
        value = self.text(field, required=True)
        if value is None:
            return None
        if value.lower() not in allowed:
            self.reject(field, f"{_shown(value)} is not one of {', '.join(allowed)}")
            return None
        return value.lower()


def _shown(value: str) -> str:
    """A value quoted for a message, cut short (a spreadsheet cell can hold anything)."""
    return repr(value if len(value) <= _MAX_VALUE_SHOWN else value[:_MAX_VALUE_SHOWN] + "...")


def _invoice(row: _Row) -> LegacyInvoiceRow | None:
    number = row.text("invoice_number", required=True)
    opportunity = row.salesforce_id("salesforce_opportunity_id")
    account = row.salesforce_id("salesforce_account_id")
    currency = row.currency("currency")
    amount = row.amount("amount", currency)
    day = row.date("invoice_date")
    status = row.choice("status", INVOICE_STATUSES)
    if row.rejected:
        return None
    assert number and currency and amount is not None and day and status
    return LegacyInvoiceRow(row.line, number, opportunity, account, currency, amount, day, status)


def _payment(row: _Row) -> LegacyPaymentRow | None:
    payment_id = row.text("payment_id", required=True)
    invoice_number = row.text("invoice_number", required=False)
    currency = row.currency("currency")
    amount = row.amount("amount", currency)
    day = row.date("paid_date")
    status = row.choice("status", PAYMENT_STATUSES)
    if row.rejected:
        return None
    assert payment_id and currency and amount is not None and day and status
    return LegacyPaymentRow(row.line, payment_id, invoice_number, currency, amount, day, status)


_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str, Callable[[_Row], Any]]] = {
    # file: (required columns, optional columns, key column, row parser)
    INVOICES_FILE: (("invoice_number", "currency", "amount", "invoice_date", "status"),
                    ("salesforce_opportunity_id", "salesforce_account_id"), "invoice_number", _invoice),
    PAYMENTS_FILE: (("payment_id", "currency", "amount", "paid_date", "status"), ("invoice_number",),
                    "payment_id", _payment),
}


def read_legacy_export(directory: Path) -> LegacyExport:
    """Read and validate both files of the export in ``directory``.

    Raises:
        UnreadableExport: the directory or a file is missing, a file is not UTF-8 text, or its header
            lacks a required column.
    """
    if not directory.is_dir():
        raise UnreadableExport(f"{directory}: no such directory")
    rejected: list[RejectedRow] = []
    parsed: dict[str, list[Any]] = {}
    for name in _FILES:
        parsed[name] = _read_file(directory / name, rejected)
    return LegacyExport(directory, tuple(parsed[INVOICES_FILE]), tuple(parsed[PAYMENTS_FILE]), tuple(rejected))


def _read_file(path: Path, rejected: list[RejectedRow]) -> list[Any]:
    required, optional, key, parse = _FILES[path.name]
    if not path.is_file():
        raise UnreadableExport(f"{path}: missing (the export needs {', '.join(_FILES)})")
    rows: list[Any] = []
    first_line: dict[str, int] = {}
    try:
        # utf-8-sig: spreadsheet programs often start a UTF-8 CSV with a byte-order mark
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [column.strip().lower() for column in next(reader, [])]
            missing = [column for column in required if column not in header]
            if missing:
                raise UnreadableExport(f"{path.name}: header lacks {', '.join(missing)} "
                                       f"(expected {', '.join((*required, *optional))})")
            line = reader.line_num + 1
            for values in reader:
                row = _Row(path.name, line, dict(zip(header, values, strict=False)))
                line = reader.line_num + 1
                if not any(v.strip() for v in values):
                    continue  # a blank line, common at the end of hand-edited files
                if len(values) != len(header):
                    row.reject("(row)", f"{len(values)} fields where the header has {len(header)}")
                    rejected.extend(row.rejected)
                    continue
                record = parse(row)
                value = getattr(record, key, None)
                if record is not None and value in first_line:
                    row.reject(key, f"duplicate of line {first_line[value]}")
                    record = None
                if record is None:
                    rejected.extend(row.rejected)
                    continue
                first_line[value] = row.line
                rows.append(record)
    except UnicodeDecodeError as exc:
        raise UnreadableExport(f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise UnreadableExport(f"{path.name}: not a CSV file ({exc})") from exc
    return rows
