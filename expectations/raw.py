"""Raw-layer checks: what each system hands us is well-formed before anything is built from it.

Required ids present, currencies in ISO 4217, amounts non-negative where they must be, timestamps in a
plausible range, and enumerations (stages, states, statuses) limited to the values the flows know. The
loads quarantine values that do not parse at all; these checks catch values that parse but are wrong.
"""

from __future__ import annotations

from expectations.checks import BuiltIn, Check, Severity
from pipelines.common.currencies import EXPONENTS

ISO_CURRENCIES = sorted(EXPONENTS)

EARLIEST_TIMESTAMP = "2000-01-01"
"""Anything older predates the systems Revloop syncs: an epoch-zero default or a mistyped year."""
FUTURE_TOLERANCE = "1 day"
"""Clock skew allowed between a source system and the warehouse."""

# Which columns hold what, per raw table: (schema, table) -> columns.
REQUIRED_IDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("raw_salesforce", "account"): ("id",),
    ("raw_salesforce", "opportunity"): ("id", "account_id"),
    ("raw_salesforce", "invoice_c"): ("id", "opportunity_c", "revloop_key_c"),
    ("raw_erp", "res_partner"): ("id",),
    ("raw_erp", "account_move"): ("id", "partner_id", "currency_name"),
    ("raw_erp", "account_payment"): ("id", "currency_name"),
    ("raw_payments", "customer"): ("id",),
    ("raw_payments", "invoice"): ("id", "customer", "currency"),
    ("raw_payments", "charge"): ("id", "currency"),
    ("raw_payments", "refund"): ("id", "charge"),
}

CURRENCY_COLUMNS: dict[tuple[str, str], str] = {
    ("raw_salesforce", "opportunity"): "currency_iso_code",
    ("raw_salesforce", "invoice_c"): "currency_iso_code",
    ("raw_erp", "account_move"): "currency_name",
    ("raw_erp", "account_payment"): "currency_name",
    ("raw_payments", "invoice"): "currency",
    ("raw_payments", "charge"): "currency",
    ("raw_payments", "refund"): "currency",
}
"""Stripe writes currency codes in lower case; the others in upper case."""

NON_NEGATIVE_AMOUNTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("raw_salesforce", "opportunity"): ("amount",),
    ("raw_salesforce", "opportunity_line_item"): ("quantity", "unit_price"),
    ("raw_salesforce", "invoice_c"): ("amount_c",),
    ("raw_erp", "account_move"): ("amount_untaxed", "amount_total", "amount_residual"),
    ("raw_erp", "account_payment"): ("amount",),
    ("raw_payments", "invoice"): ("amount_due", "amount_paid", "amount_remaining"),
    ("raw_payments", "charge"): ("amount", "amount_captured", "amount_refunded"),
    ("raw_payments", "refund"): ("amount",),
}

TIMESTAMPS: dict[tuple[str, str], str] = {
    ("raw_salesforce", "opportunity"): "created_date",
    ("raw_salesforce", "invoice_c"): "created_date",
    ("raw_erp", "account_move"): "create_date",
    ("raw_erp", "account_payment"): "create_date",
    ("raw_payments", "invoice"): "created",
    ("raw_payments", "charge"): "created",
    ("raw_payments", "refund"): "created",
}

KNOWN_VALUES: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("raw_salesforce", "opportunity", "stage_name"): (
        "Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
        "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost",
    ),
    ("raw_salesforce", "invoice_c", "status_c"): ("Draft", "Posted", "Cancelled"),
    ("raw_salesforce", "invoice_c", "payment_status_c"): (
        "Unpaid", "Partially Paid", "Paid", "Failed", "Refunded", "Disputed",
    ),
    ("raw_erp", "account_move", "move_type"): (
        "entry", "out_invoice", "out_refund", "in_invoice", "in_refund", "out_receipt", "in_receipt",
    ),
    ("raw_erp", "account_move", "state"): ("draft", "posted", "cancel"),
    ("raw_erp", "account_move", "payment_state"): (
        "not_paid", "in_payment", "paid", "partial", "reversed", "invoicing_legacy", "blocked",
    ),
    # Odoo 17 (draft/posted/cancel) and Odoo 18+ (draft/in_process/paid/canceled/rejected)
    ("raw_erp", "account_payment", "state"): (
        "draft", "posted", "cancel", "in_process", "paid", "canceled", "rejected",
    ),
    ("raw_erp", "account_payment", "payment_type"): ("inbound", "outbound"),
    ("raw_payments", "invoice", "status"): ("draft", "open", "paid", "uncollectible", "void"),
    ("raw_payments", "charge", "status"): ("succeeded", "pending", "failed"),
    ("raw_payments", "refund", "status"): ("pending", "requires_action", "succeeded", "failed", "canceled"),
}

_ERROR_TABLES = {("raw_erp", "account_move"), ("raw_erp", "account_payment"), ("raw_salesforce", "invoice_c"),
                 ("raw_payments", "invoice"), ("raw_payments", "charge"), ("raw_payments", "refund")}
"""Tables the money flows write from: a malformed row there is an error, elsewhere a warning."""


def _severity(schema: str, table: str) -> Severity:
    return "error" if (schema, table) in _ERROR_TABLES else "warn"


def _required_ids() -> list[Check]:
    return [
        Check(
            name=f"{schema}.{table}.{column}_present",
            suite="raw",
            severity=_severity(schema, table) if column == "id" or column.startswith("currency") else "warn",
            schema=schema,
            table=table,
            description=f"Every {table} row has a {column}.",
            builtin=BuiltIn("ExpectColumnValuesToNotBeNull", {"column": column}),
        )
        for (schema, table), columns in REQUIRED_IDS.items()
        for column in columns
    ]


def _currencies() -> list[Check]:
    checks = []
    for (schema, table), column in CURRENCY_COLUMNS.items():
        codes = [code.lower() for code in ISO_CURRENCIES] if schema == "raw_payments" else ISO_CURRENCIES
        checks.append(
            Check(
                name=f"{schema}.{table}.{column}_iso_4217",
                suite="raw",
                severity=_severity(schema, table),
                schema=schema,
                table=table,
                description=f"{table}.{column} is an ISO 4217 currency code.",
                builtin=BuiltIn("ExpectColumnValuesToBeInSet", {"column": column, "value_set": codes}),
            )
        )
    return checks


def _non_negative() -> list[Check]:
    return [
        Check(
            name=f"{schema}.{table}.{column}_non_negative",
            suite="raw",
            severity=_severity(schema, table),
            schema=schema,
            table=table,
            description=f"{table}.{column} is zero or more (credits are separate documents, never negatives).",
            builtin=BuiltIn("ExpectColumnValuesToBeBetween", {"column": column, "min_value": 0}),
        )
        for (schema, table), columns in NON_NEGATIVE_AMOUNTS.items()
        for column in columns
    ]


def _timestamps() -> list[Check]:
    return [
        Check(
            name=f"{schema}.{table}.{column}_in_range",
            suite="raw",
            severity="warn",
            schema=schema,
            table=table,
            description=f"{table}.{column} lies between {EARLIEST_TIMESTAMP} and now (+{FUTURE_TOLERANCE} of skew).",
            sql=(
                f"select id, {column} as value from {{batch}} "
                f"where {column} < timestamptz '{EARLIEST_TIMESTAMP}' "
                f"or {column} > now() + interval '{FUTURE_TOLERANCE}' order by id"
            ),
        )
        for (schema, table), column in TIMESTAMPS.items()
    ]


def _known_values() -> list[Check]:
    return [
        Check(
            name=f"{schema}.{table}.{column}_known",
            suite="raw",
            severity=_severity(schema, table),
            schema=schema,
            table=table,
            description=f"{table}.{column} is one of the values the flows map ({', '.join(values)}).",
            builtin=BuiltIn("ExpectColumnValuesToBeInSet", {"column": column, "value_set": list(values)}),
        )
        for (schema, table, column), values in KNOWN_VALUES.items()
    ]


def raw_checks() -> list[Check]:
    """Every raw-layer check."""
    return [*_required_ids(), *_currencies(), *_non_negative(), *_timestamps(), *_known_values()]
