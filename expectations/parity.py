"""Parity with the process being replaced: a legacy export compared with the canonical layer, inside PostgreSQL.

During a parallel run, finance compares what Revloop's marts hold (``marts.fct_invoices``,
``marts.fct_payments``) with an export of the legacy process (read by :mod:`expectations.legacy_format`).
The export's valid rows are copied into temporary tables and every comparison is one SQL statement that
writes its differences straight into ``quality.parity_differences``: nothing is joined in Python, so an
export of any size costs a COPY and a few joins.

Keys: an invoice is its ERP invoice number (``invoice_number``), a payment its payments-platform charge id
(``payment_id``). Per key: missing on either side, amount, currency, status (and, for a payment, the invoice
it paid) differing. Per currency and day: counts and sums of both sides (invoices by invoice date, succeeded
payments by the UTC date of the payment). A date window limits each side by its own date; a record missing
on one side is looked for on that side regardless of the window, so the window never invents a difference.

These are plain SQL rather than Great Expectations checks on purpose: every difference of a run is kept
(not a sample), a run costs well under a second instead of the ~15 s GX import, and the results stay out of
``quality.check_runs``, whose failed error-level checks stop the sync flows (a disagreement with the process
being replaced is a question for finance, not a reason to stop writing).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from expectations.legacy_format import INVOICES_FILE, PAYMENTS_FILE, LegacyExport, RejectedRow, read_legacy_export

logger = logging.getLogger(__name__)

DDL = """
create schema if not exists quality;
create table if not exists quality.parity_runs (
    run_id               text primary key,
    legacy_dir           text not null,
    since                date,
    until                date,
    started_at           timestamptz not null,
    duration_seconds     double precision not null,
    legacy_invoices      bigint not null,          -- valid rows within the window
    legacy_payments      bigint not null,
    revloop_invoices     bigint not null,          -- canonical rows within the window
    revloop_payments     bigint not null,
    rejected_rows        bigint not null,          -- export rows left out (bad fields)
    differences          bigint not null,
    differences_by_check jsonb not null
);
create table if not exists quality.parity_differences (
    run_id      text not null references quality.parity_runs (run_id) on delete cascade,
    check_name  text not null,
    ordinal     integer not null,
    key         text not null,                     -- invoice number, payment id, or '<day> <currency>'
    revloop     jsonb,                             -- null: Revloop does not hold it
    legacy      jsonb,                             -- null: the export does not hold it (else file and line)
    difference  numeric,                           -- legacy minus Revloop, for amounts
    primary key (run_id, check_name, ordinal)
);
create table if not exists quality.parity_rejected_rows (
    run_id  text not null references quality.parity_runs (run_id) on delete cascade,
    file    text not null,
    line    integer not null,
    field   text not null,
    reason  text not null,
    primary key (run_id, file, line, field)
);
"""

REQUIRED_RELATIONS = ("marts.fct_invoices", "marts.fct_payments")

# ---- the two sides, as temporary relations of the comparing session ------------------------------------

_LEGACY_TABLES = """
create temp table legacy_invoices (
    line integer, invoice_number text, salesforce_opportunity_id text, salesforce_account_id text,
    currency text, amount numeric, invoice_date date, status text
) on commit drop;
create temp table legacy_payments (
    line integer, payment_id text, invoice_number text, currency text, amount numeric, paid_date date, status text
) on commit drop;
"""

# Numbered customer invoices only: a draft has no number yet (the ERP numbers an invoice when it posts it),
# credit notes are not part of the export. The status folds state and payment state into the export's word.
_REVLOOP_VIEWS = """
create temp view revloop_invoices as
select erp_invoice_id, invoice_number, salesforce_opportunity_id, salesforce_invoice_id, payments_invoice_id,
       currency_code as currency, amount_total as amount, invoice_date,
       case when status in ('draft', 'void') then status else payment_status end as status
from marts.fct_invoices
where move_type = 'out_invoice' and invoice_number is not null and invoice_number <> '/';
create temp view revloop_payments as
select p.charge_id as payment_id, p.payment_intent_id, p.payments_invoice_id, p.erp_invoice_id, p.erp_payment_id,
       i.invoice_number, p.currency_code as currency, p.amount,
       (p.created_at at time zone 'UTC')::date as paid_date, p.status
from marts.fct_payments as p
left join marts.fct_invoices as i on i.erp_invoice_id = p.erp_invoice_id;
"""


def _in_window(column: str) -> str:
    return (f"{column} between coalesce(%(since)s::date, '-infinity'::date) "
            f"and coalesce(%(until)s::date, 'infinity'::date)")


_REVLOOP_INVOICE = """jsonb_build_object('erp_invoice_id', r.erp_invoice_id, 'invoice_number', r.invoice_number,
    'salesforce_opportunity_id', r.salesforce_opportunity_id, 'salesforce_invoice_id', r.salesforce_invoice_id,
    'payments_invoice_id', r.payments_invoice_id, 'currency', r.currency, 'amount', r.amount::text,
    'invoice_date', r.invoice_date, 'status', r.status)"""
_LEGACY_INVOICE = f"""jsonb_build_object('file', '{INVOICES_FILE}', 'line', l.line, 'invoice_number', l.invoice_number,
    'salesforce_opportunity_id', l.salesforce_opportunity_id, 'salesforce_account_id', l.salesforce_account_id,
    'currency', l.currency, 'amount', l.amount::text, 'invoice_date', l.invoice_date, 'status', l.status)"""
_REVLOOP_PAYMENT = """jsonb_build_object('charge_id', r.payment_id, 'payment_intent_id', r.payment_intent_id,
    'payments_invoice_id', r.payments_invoice_id, 'erp_invoice_id', r.erp_invoice_id,
    'erp_payment_id', r.erp_payment_id, 'invoice_number', r.invoice_number, 'currency', r.currency,
    'amount', r.amount::text, 'paid_date', r.paid_date, 'status', r.status)"""
_LEGACY_PAYMENT = f"""jsonb_build_object('file', '{PAYMENTS_FILE}', 'line', l.line, 'payment_id', l.payment_id,
    'invoice_number', l.invoice_number, 'currency', l.currency, 'amount', l.amount::text,
    'paid_date', l.paid_date, 'status', l.status)"""


@dataclasses.dataclass(frozen=True)
class ParityCheck:
    """One comparison: a query returning ``key, revloop, legacy, difference``, one row per difference."""

    name: str
    description: str
    sql: str


def _missing(name: str, description: str, present: str, absent: str, key: str, day: str,
             present_json: str) -> ParityCheck:
    """Records of ``present`` (in the window) whose key ``absent`` does not hold at all."""
    in_revloop = present.startswith("revloop")
    alias, other = ("r", "l") if in_revloop else ("l", "r")
    revloop, legacy = (present_json, "null") if in_revloop else ("null", present_json)
    sign = "-" if in_revloop else ""
    return ParityCheck(name, description, f"""
        select {alias}.{key} as key, {revloop}::jsonb as revloop, {legacy}::jsonb as legacy,
               {sign}{alias}.amount as difference
        from {present} as {alias}
        where {_in_window(f"{alias}.{day}")}
          and not exists (select from {absent} as {other} where {other}.{key} = {alias}.{key})
        order by {alias}.{key}""")


def _differs(name: str, description: str, revloop: str, legacy: str, key: str, day: str, field: str,
             revloop_json: str, legacy_json: str) -> ParityCheck:
    difference = "l.amount - r.amount" if field == "amount" else "null::numeric"
    return ParityCheck(name, description, f"""
        select r.{key} as key, {revloop_json} as revloop, {legacy_json} as legacy, {difference} as difference
        from {revloop} as r
        join {legacy} as l on l.{key} = r.{key}
        where ({_in_window(f"r.{day}")} or {_in_window(f"l.{day}")})
          and r.{field} is distinct from l.{field}
        order by r.{key}""")


def _totals(name: str, description: str, revloop: str, legacy: str, day: str, where: str) -> ParityCheck:
    def side(relation: str) -> str:
        return f"""select currency, {day} as day, count(*) as records, sum(amount) as amount
                   from {relation} where {_in_window(day)} {where} group by currency, {day}"""

    def summary(alias: str) -> str:
        return (f"case when {alias}.currency is null then null else jsonb_build_object('currency', "
                f"{alias}.currency, 'day', {alias}.day, 'count', {alias}.records, 'amount', {alias}.amount::text) end")

    return ParityCheck(name, description, f"""
        with r as ({side(revloop)}), l as ({side(legacy)})
        select coalesce(r.day, l.day)::text || ' ' || coalesce(r.currency, l.currency) as key,
               {summary("r")} as revloop, {summary("l")} as legacy,
               coalesce(l.amount, 0) - coalesce(r.amount, 0) as difference
        from r full join l on l.currency = r.currency and l.day = r.day
        where r.records is distinct from l.records or r.amount is distinct from l.amount
        order by coalesce(r.day, l.day), coalesce(r.currency, l.currency)""")


_INV = ("revloop_invoices", "legacy_invoices", "invoice_number", "invoice_date")
_PAY = ("revloop_payments", "legacy_payments", "payment_id", "paid_date")

CHECKS: tuple[ParityCheck, ...] = (
    _missing("invoice_missing_in_legacy", "Revloop holds the invoice; the export does not.",
             "revloop_invoices", "legacy_invoices", "invoice_number", "invoice_date", _REVLOOP_INVOICE),
    _missing("invoice_missing_in_revloop", "The export holds the invoice; Revloop does not.",
             "legacy_invoices", "revloop_invoices", "invoice_number", "invoice_date", _LEGACY_INVOICE),
    _differs("invoice_amount_differs", "Same invoice, different total.", *_INV, "amount",
             _REVLOOP_INVOICE, _LEGACY_INVOICE),
    _differs("invoice_currency_differs", "Same invoice, different currency.", *_INV, "currency",
             _REVLOOP_INVOICE, _LEGACY_INVOICE),
    _differs("invoice_status_differs", "Same invoice, different status (draft, void, unpaid, partially_paid, "
             "paid, refunded).", *_INV, "status", _REVLOOP_INVOICE, _LEGACY_INVOICE),
    _totals("invoice_totals_per_day", "Per currency and invoice date: number and sum of invoices.",
            "revloop_invoices", "legacy_invoices", "invoice_date", ""),
    _missing("payment_missing_in_legacy", "The payments platform holds the payment attempt; the export does not.",
             "revloop_payments", "legacy_payments", "payment_id", "paid_date", _REVLOOP_PAYMENT),
    _missing("payment_missing_in_revloop", "The export holds the payment; Revloop does not.",
             "legacy_payments", "revloop_payments", "payment_id", "paid_date", _LEGACY_PAYMENT),
    _differs("payment_amount_differs", "Same payment, different amount.", *_PAY, "amount",
             _REVLOOP_PAYMENT, _LEGACY_PAYMENT),
    _differs("payment_currency_differs", "Same payment, different currency.", *_PAY, "currency",
             _REVLOOP_PAYMENT, _LEGACY_PAYMENT),
    _differs("payment_status_differs", "Same payment, different outcome (succeeded, failed, pending).", *_PAY,
             "status", _REVLOOP_PAYMENT, _LEGACY_PAYMENT),
    _differs("payment_invoice_differs", "Same payment, applied to a different invoice.", *_PAY,
             "invoice_number", _REVLOOP_PAYMENT, _LEGACY_PAYMENT),
    _totals("payment_totals_per_day", "Per currency and payment date (UTC): number and sum of succeeded payments.",
            "revloop_payments", "legacy_payments", "paid_date", "and status = 'succeeded'"),
)


# ---- a run ----------------------------------------------------------------------------------------------


class ParityError(RuntimeError):
    """The comparison cannot run (the canonical layer is not built)."""


@dataclasses.dataclass(frozen=True)
class ParityDifference:
    """One difference: the compared key and each side's ids and values (None: that side lacks the record)."""

    check_name: str
    key: str
    revloop: dict[str, Any] | None
    legacy: dict[str, Any] | None
    difference: Decimal | None
    """Legacy minus Revloop, for amounts and totals."""


@dataclasses.dataclass(frozen=True)
class CheckOutcome:
    name: str
    description: str
    differences: int
    sample: tuple[ParityDifference, ...]
    """The first differences, in key order (all of them are in ``quality.parity_differences``)."""


@dataclasses.dataclass(frozen=True)
class ParityRun:
    """One comparison of a legacy export with the canonical layer."""

    run_id: str
    legacy_dir: Path
    since: dt.date | None
    until: dt.date | None
    started_at: dt.datetime
    seconds: float
    legacy_counts: dict[str, int]
    """Valid export rows compared, per ``invoices``/``payments`` (within the window)."""
    revloop_counts: dict[str, int]
    """Canonical records compared, per ``invoices``/``payments`` (within the window)."""
    rejected: tuple[RejectedRow, ...]
    checks: tuple[CheckOutcome, ...]

    @property
    def differences(self) -> int:
        return sum(c.differences for c in self.checks)

    @property
    def rejected_rows(self) -> int:
        return len({(r.file, r.line) for r in self.rejected})

    @property
    def agrees(self) -> bool:
        """No difference and no rejected row: the export and Revloop hold the same business."""
        return not self.differences and not self.rejected

    def check(self, name: str) -> CheckOutcome:
        """The outcome of the check called ``name`` (``KeyError`` for an unknown name)."""
        for outcome in self.checks:
            if outcome.name == name:
                return outcome
        raise KeyError(name)


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """Create the result tables if missing; concurrent "if not exists" DDL can collide, so take turns."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtextextended('revloop.quality.parity', 0))")
        conn.execute(DDL)


def run_parity(
    database_url: str, legacy_dir: Path, since: dt.date | None = None, until: dt.date | None = None,
    sample_size: int = 50,
) -> ParityRun:
    """Compare the legacy export in ``legacy_dir`` with the marts, store every difference, and summarize.

    Args:
        database_url: the warehouse holding the built marts.
        legacy_dir: the export (``invoices.csv`` and ``payments.csv``).
        since: compare only records dated on or after this day (invoice date; payment date).
        until: ... and on or before this day.
        sample_size: differences returned per check (all are stored).

    Raises:
        expectations.legacy_format.UnreadableExport: a file of the export cannot be read at all.
        ParityError: the marts are not built yet.
    """
    started_at, clock = dt.datetime.now(dt.UTC), time.perf_counter()
    export = read_legacy_export(legacy_dir)
    run_id = f"{started_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    window = {"since": since, "until": until}
    with psycopg.connect(database_url) as conn:
        missing = [r for r, absent in conn.execute(
            "select r, to_regclass(r) is null from unnest(%s::text[]) as r", (list(REQUIRED_RELATIONS),)
        ).fetchall() if absent]
        if missing:
            raise ParityError(f"the canonical layer is not built ({', '.join(missing)} missing): "
                              "run 'revloop transform' first")
        ensure_schema(conn)
        with conn.transaction():
            conn.execute(_LEGACY_TABLES)
            conn.execute(_REVLOOP_VIEWS)
            _copy_export(conn, export)
            legacy_counts, revloop_counts = _counts(conn, window)
            conn.execute(
                "insert into quality.parity_runs (run_id, legacy_dir, since, until, started_at, duration_seconds,"
                " legacy_invoices, legacy_payments, revloop_invoices, revloop_payments, rejected_rows, differences,"
                " differences_by_check) values (%s, %s, %s, %s, %s, 0, %s, %s, %s, %s, %s, 0, '{}')",
                (run_id, str(legacy_dir.resolve()), since, until, started_at, legacy_counts["invoices"],
                 legacy_counts["payments"], revloop_counts["invoices"], revloop_counts["payments"],
                 export.rejected_rows),
            )
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into quality.parity_rejected_rows (run_id, file, line, field, reason)"
                    " values (%s, %s, %s, %s, %s)",
                    [(run_id, r.file, r.line, r.field, r.reason) for r in export.rejected],
                )
            counts: dict[str, int] = {}
            for check in CHECKS:
                cursor = conn.execute(
                    "insert into quality.parity_differences (run_id, check_name, ordinal, key, revloop, legacy,"
                    " difference) select %(run_id)s, %(check)s, row_number() over (order by d.key), *"
                    f" from ({check.sql}) as d",
                    {**window, "run_id": run_id, "check": check.name},
                )
                counts[check.name] = cursor.rowcount
            seconds = time.perf_counter() - clock
            conn.execute(
                "update quality.parity_runs set duration_seconds = %s, differences = %s,"
                " differences_by_check = %s::jsonb where run_id = %s",
                (seconds, sum(counts.values()), json.dumps(counts), run_id),
            )
        samples = _samples(conn, run_id, sample_size)
    run = ParityRun(
        run_id, legacy_dir, since, until, started_at, seconds, legacy_counts, revloop_counts, export.rejected,
        tuple(CheckOutcome(c.name, c.description, counts[c.name], samples.get(c.name, ())) for c in CHECKS),
    )
    logger.info("parity run %s: %d differences, %d rejected rows, %.2fs", run_id, run.differences,
                run.rejected_rows, seconds)
    return run


def _copy_export(conn: psycopg.Connection[Any], export: LegacyExport) -> None:
    with conn.cursor() as cur:
        with cur.copy("copy legacy_invoices (line, invoice_number, salesforce_opportunity_id,"
                      " salesforce_account_id, currency, amount, invoice_date, status) from stdin") as copy:
            for i in export.invoices:
                copy.write_row((i.line, i.invoice_number, i.salesforce_opportunity_id, i.salesforce_account_id,
                                i.currency, i.amount, i.invoice_date, i.status))
        with cur.copy("copy legacy_payments (line, payment_id, invoice_number, currency, amount, paid_date, status)"
                      " from stdin") as copy:
            for p in export.payments:
                copy.write_row((p.line, p.payment_id, p.invoice_number, p.currency, p.amount, p.paid_date, p.status))
        # the comparisons join on the keys; without statistics the planner guesses badly on a large export
        cur.execute("create index on legacy_invoices (invoice_number)")
        cur.execute("create index on legacy_payments (payment_id)")
        cur.execute("analyze legacy_invoices")
        cur.execute("analyze legacy_payments")


def _counts(conn: psycopg.Connection[Any], window: dict[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    row = conn.execute(
        f"""select (select count(*) from legacy_invoices where {_in_window("invoice_date")}),
                   (select count(*) from legacy_payments where {_in_window("paid_date")}),
                   (select count(*) from revloop_invoices where {_in_window("invoice_date")}),
                   (select count(*) from revloop_payments where {_in_window("paid_date")})""",
        window,
    ).fetchone()
    assert row is not None
    return {"invoices": row[0], "payments": row[1]}, {"invoices": row[2], "payments": row[3]}


def _samples(conn: psycopg.Connection[Any], run_id: str, size: int) -> dict[str, tuple[ParityDifference, ...]]:
    samples: dict[str, list[ParityDifference]] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "select check_name, key, revloop, legacy, difference from quality.parity_differences"
            " where run_id = %s and ordinal <= %s order by check_name, ordinal",
            (run_id, size),
        ).fetchall()
    for row in rows:
        samples.setdefault(row["check_name"], []).append(ParityDifference(**row))
    return {name: tuple(rows) for name, rows in samples.items()}


_SHOWN_FIELDS = ("erp_invoice_id", "charge_id", "payment_id", "invoice_number", "salesforce_opportunity_id",
                 "currency", "day", "count", "amount", "invoice_date", "paid_date", "status")


def describe(side: dict[str, Any] | None) -> str:
    """One side of a difference in a line: where it is (file:line for the export), its ids, its values."""
    if side is None:
        return "-"
    shown = [f"{side['file']}:{side['line']}"] if "file" in side else []
    shown += [f"{k}={side[k]}" for k in _SHOWN_FIELDS if side.get(k) is not None]
    return " ".join(shown)
