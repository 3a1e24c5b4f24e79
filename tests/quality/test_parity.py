"""Parity with the process being replaced: a legacy export of the sandboxes' book, compared with the marts.

The export is written from the same book the sandboxes served (``sandboxes.legacy_export``), with known
differences seeded in it; each must be reported by its check with the ids of both sides, a clean export
must report nothing, and bad rows must be set aside with their file, line and field.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from expectations.legacy_format import UnreadableExport, read_legacy_export
from expectations.parity import CHECKS, ParityRun, run_parity
from revloop.cli import app
from revloop.dbt import DbtProject
from sandboxes.legacy_export import SEEDED_DIFFERENCES_FILE, sandbox_book, write_legacy_export
from tests.quality.conftest import SCALE, SEED, LoadedBook

TOTALS_CHECKS = {"invoice_totals_per_day", "payment_totals_per_day"}


@dataclass
class BuiltBook:
    url: str
    sandboxes_dir: Path
    """The ERP sandbox's data dir: the store that records which book it served."""
    anchor: dt.date


@pytest.fixture(scope="module")
def built_book(loaded_book: LoadedBook) -> BuiltBook:
    """The quality tests' loaded book, with the canonical layer built over it."""
    summary = DbtProject(loaded_book.url).build()
    assert summary.success, summary.error
    sandboxes_dir = loaded_book.home.parent / "erp"
    recorded = sandbox_book(sandboxes_dir)
    assert recorded is not None and recorded[:2] == (SEED, SCALE)
    return BuiltBook(loaded_book.url, sandboxes_dir, recorded[2])


@pytest.fixture(scope="module")
def seeded_export(built_book: BuiltBook, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("legacy-seeded")
    write_legacy_export(directory, seed=SEED, scale=SCALE, today=built_book.anchor)
    return directory


@pytest.fixture(scope="module")
def clean_export(built_book: BuiltBook, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("legacy-clean")
    write_legacy_export(directory, seed=SEED, scale=SCALE, today=built_book.anchor, clean=True)
    return directory


@pytest.fixture(scope="module")
def seeded_run(built_book: BuiltBook, seeded_export: Path) -> ParityRun:
    return run_parity(built_book.url, seeded_export)


def _seeded(directory: Path) -> list[dict[str, Any]]:
    return json.loads((directory / SEEDED_DIFFERENCES_FILE).read_text())["differences"]


def _rewrite(directory: Path, name: str, edit: Any) -> None:
    """Apply ``edit(rows)`` to a CSV file of the export (rows include the header)."""
    path = directory / name
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    edit(rows)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


# ---- the seeded differences --------------------------------------------------------------------------------


def test_each_seeded_difference_reported_by_its_check_with_both_ids_when_export_is_seeded(
    seeded_export: Path, seeded_run: ParityRun
) -> None:
    seeded = _seeded(seeded_export)
    assert {d["check"] for d in seeded} == {c.name for c in CHECKS} - TOTALS_CHECKS
    for expected in seeded:
        outcome = seeded_run.check(expected["check"])
        assert outcome.differences == 1, (expected, outcome.sample)
        (found,) = outcome.sample
        assert found.key == expected["key"]
        if expected["revloop"]:
            assert found.revloop is not None
            for id_column in ("erp_invoice_id", "charge_id"):
                if id_column in expected["revloop"]:
                    assert found.revloop[id_column] == expected["revloop"][id_column], expected
        else:
            assert found.revloop is None
        if expected["legacy"]:
            assert found.legacy is not None
            assert (found.legacy["file"], found.legacy["line"]) == (expected["legacy"]["file"],
                                                                     expected["legacy"]["line"])
        else:
            assert found.legacy is None


def test_amount_difference_is_the_seeded_cent_when_legacy_amount_is_off(seeded_run: ParityRun) -> None:
    for name in ("invoice_amount_differs", "payment_amount_differs"):
        (found,) = seeded_run.check(name).sample
        assert found.difference == Decimal("0.01")
        assert found.revloop and found.legacy and found.legacy["amount"] != found.revloop["amount"]


def test_totals_report_exactly_the_days_the_seeded_differences_move_when_export_is_seeded(
    seeded_export: Path, seeded_run: ParityRun
) -> None:
    for check in TOTALS_CHECKS:
        expected = {(t["day"], t["currency"]) for d in _seeded(seeded_export) for t in d["totals"]
                    if t["check"] == check}
        found = {tuple(row.key.split(" ")) for row in seeded_run.check(check).sample}
        assert expected and found == expected, check
        assert seeded_run.check(check).differences == len(expected)


def test_every_difference_and_the_run_are_stored_when_compared(built_book: BuiltBook, seeded_run: ParityRun) -> None:
    with psycopg.connect(built_book.url) as conn:
        stored = conn.execute(
            "select differences, differences_by_check, rejected_rows, legacy_invoices, revloop_invoices"
            " from quality.parity_runs where run_id = %s", (seeded_run.run_id,)
        ).fetchone()
        rows = conn.execute(
            "select check_name, key, revloop ->> 'erp_invoice_id', legacy ->> 'line' from quality.parity_differences"
            " where run_id = %s", (seeded_run.run_id,)
        ).fetchall()
    assert stored is not None
    assert stored[0] == seeded_run.differences == len(rows)
    assert stored[1] == {c.name: c.differences for c in seeded_run.checks}
    assert stored[2] == 0
    assert (stored[3], stored[4]) == (seeded_run.legacy_counts["invoices"], seeded_run.revloop_counts["invoices"])
    missing = [r for r in rows if r[0] == "invoice_missing_in_legacy"]
    assert len(missing) == 1 and missing[0][2] is not None and missing[0][3] is None


def test_window_compares_only_records_dated_in_it_when_since_and_until_given(
    built_book: BuiltBook, seeded_export: Path, seeded_run: ParityRun
) -> None:
    off = next(d for d in _seeded(seeded_export) if d["check"] == "invoice_amount_differs")
    day = dt.date.fromisoformat(off["revloop"]["invoice_date"])
    run = run_parity(built_book.url, seeded_export, since=day, until=day)
    assert run.check("invoice_amount_differs").differences == 1
    others = {d["key"] for d in _seeded(seeded_export) if d["check"] != "invoice_amount_differs"}
    reported = {row.key for c in run.checks if c.name not in TOTALS_CHECKS for row in c.sample}
    assert not reported & others
    assert 0 < run.revloop_counts["invoices"] < seeded_run.revloop_counts["invoices"]


# ---- a clean export, and bad input ---------------------------------------------------------------------------


def test_clean_export_reports_nothing_when_it_agrees_with_the_book(built_book: BuiltBook, clean_export: Path) -> None:
    assert _seeded(clean_export) == []
    run = run_parity(built_book.url, clean_export)
    assert run.agrees, [(c.name, c.sample[:3]) for c in run.checks if c.differences]
    assert run.legacy_counts == run.revloop_counts
    assert run.revloop_counts["invoices"] > 100 and run.revloop_counts["payments"] > 100


def test_bad_rows_reported_with_file_line_and_field_and_the_rest_compared_when_export_has_typos(
    built_book: BuiltBook, clean_export: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "typos"
    shutil.copytree(clean_export, directory)
    keys: dict[str, str] = {}

    def break_invoices(rows: list[list[str]]) -> None:
        header = rows[0]
        keys["amount"] = rows[4][0]
        rows[4][header.index("amount")] = "12,50"  # line 5: a decimal comma
        keys["currency"] = rows[9][0]
        rows[9][header.index("currency")] = "SGX"  # line 10
        keys["invoice_number"] = rows[14][0]
        rows[14][header.index("invoice_number")] = ""  # line 15: no key

    def break_payments(rows: list[list[str]]) -> None:
        header = rows[0]
        rows[7][header.index("paid_date")] = "07/03/2026"  # line 8
        keys["paid_date"] = rows[7][0]
        rows.append(list(rows[2]))  # the last line: a duplicate of line 3

    _rewrite(directory, "invoices.csv", break_invoices)
    _rewrite(directory, "payments.csv", break_payments)
    payment_lines = len((directory / "payments.csv").read_text().splitlines())

    run = run_parity(built_book.url, directory)

    rejected = {(r.file, r.line, r.field) for r in run.rejected}
    assert rejected == {
        ("invoices.csv", 5, "amount"), ("invoices.csv", 10, "currency"), ("invoices.csv", 15, "invoice_number"),
        ("payments.csv", 8, "paid_date"), ("payments.csv", payment_lines, "payment_id"),
    }
    reasons = {(r.file, r.line): r.reason for r in run.rejected}
    assert "'12,50' is not a decimal number" in reasons[("invoices.csv", 5)]
    assert "'SGX' is not an ISO 4217 currency code" in reasons[("invoices.csv", 10)]
    assert reasons[("payments.csv", payment_lines)] == "duplicate of line 3"
    # the rejected rows are left out, everything else is still compared
    missing = {row.key for row in run.check("invoice_missing_in_legacy").sample}
    assert missing == {keys["amount"], keys["currency"], keys["invoice_number"]}
    assert {row.key for row in run.check("payment_missing_in_legacy").sample} == {keys["paid_date"]}
    assert run.check("invoice_amount_differs").differences == 0
    with psycopg.connect(built_book.url) as conn:
        stored = conn.execute("select count(*) from quality.parity_rejected_rows where run_id = %s",
                              (run.run_id,)).fetchone()
    assert stored == (5,)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("amount", "abc", "is not a decimal number"),
        ("amount", "-10.00", "is negative"),
        ("amount", "10.001", "more decimal places than SGD allows (2)"),
        ("amount", "NaN", "is not a finite number"),
        ("currency", "", "missing"),
        ("currency", "Singapore dollars", "is not an ISO 4217 currency code"),
        ("invoice_date", "2026-02-30", "is not a date"),
        ("invoice_date", "20260201", "is not a date"),
        ("status", "settled", "is not one of draft, void, unpaid, partially_paid, paid, refunded"),
        ("salesforce_opportunity_id", "006-not-an-id", "is not a 15- or 18-character Salesforce Id"),
    ],
)
def test_invoice_field_rejected_with_its_reason_when_value_is_bad(
    tmp_path: Path, field: str, value: str, reason: str
) -> None:
    row = {"invoice_number": "INV/2026/00001", "salesforce_opportunity_id": "", "salesforce_account_id": "",
           "currency": "SGD", "amount": "10.50", "invoice_date": "2026-02-01", "status": "paid", field: value}
    (tmp_path / "invoices.csv").write_text(",".join(row) + "\n" + ",".join(row.values()) + "\n", encoding="utf-8")
    (tmp_path / "payments.csv").write_text("payment_id,invoice_number,currency,amount,paid_date,status\n")
    export = read_legacy_export(tmp_path)
    assert export.invoices == ()
    ((file, line, rejected_field, message),) = [(r.file, r.line, r.field, r.reason) for r in export.rejected]
    assert (file, line, rejected_field) == ("invoices.csv", 2, field)
    assert reason in message


def test_loose_but_unambiguous_values_accepted_when_a_spreadsheet_writes_them(tmp_path: Path) -> None:
    (tmp_path / "invoices.csv").write_bytes(
        "\ufeffInvoice_Number,currency,amount,invoice_date,status\n INV/1 ,jpy,1050.0,2026-02-01,Paid\n\n"
        .encode()
    )
    (tmp_path / "payments.csv").write_text("payment_id,invoice_number,currency,amount,paid_date,status\n"
                                           "ch_1,,usd,5,2026-02-02,succeeded\n")
    export = read_legacy_export(tmp_path)
    assert export.rejected == ()
    (invoice,) = export.invoices
    assert (invoice.invoice_number, invoice.currency, invoice.status) == ("INV/1", "JPY", "paid")
    (payment,) = export.payments
    assert payment.invoice_number is None and payment.currency == "USD"


@pytest.mark.parametrize(
    ("invoices", "message"),
    [
        (None, "invoices.csv: missing"),
        (b"number,currency,amount\n", "invoices.csv: header lacks invoice_number, invoice_date, status"),
        (b"invoice_number,currency,amount,invoice_date,status\nINV/1,SGD,1\xff,2026-01-01,paid\n",
         "invoices.csv: not UTF-8 text"),
    ],
)
def test_export_unreadable_with_the_file_named_when_a_file_cannot_be_read(
    tmp_path: Path, invoices: bytes | None, message: str
) -> None:
    if invoices is not None:
        (tmp_path / "invoices.csv").write_bytes(invoices)
    (tmp_path / "payments.csv").write_text("payment_id,invoice_number,currency,amount,paid_date,status\n")
    with pytest.raises(UnreadableExport, match=message):
        read_legacy_export(tmp_path)


# ---- the commands --------------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(built_book: BuiltBook) -> Iterator[dict[str, str]]:
    yield {"REVLOOP_DATABASE_URL": built_book.url, "COLUMNS": "200"}


def test_legacy_export_command_writes_the_sandboxes_book_with_its_seeded_differences_when_run(
    built_book: BuiltBook, cli_env: dict[str, str], tmp_path: Path, seeded_export: Path
) -> None:
    result = CliRunner().invoke(
        app, ["sandbox", "legacy-export", str(tmp_path), "--data-dir", str(built_book.sandboxes_dir)], env=cli_env
    )
    assert result.exit_code == 0, result.output
    assert f"seed {SEED}, {SCALE}, anchor date {built_book.anchor}" in result.output
    for name in ("invoices.csv", "payments.csv", SEEDED_DIFFERENCES_FILE):
        assert (tmp_path / name).read_bytes() == (seeded_export / name).read_bytes(), name


def test_parity_command_exits_1_and_names_the_checks_when_export_differs(
    cli_env: dict[str, str], seeded_export: Path
) -> None:
    result = CliRunner().invoke(app, ["parity", "--legacy", str(seeded_export)], env=cli_env)
    assert result.exit_code == 1, result.output
    assert "invoice_missing_in_legacy" in result.output and "first 20 of 22 differences" in result.output
    assert "invoices.csv:" in result.output and "erp_invoice_id=" in result.output
    for difference in _seeded(seeded_export):
        assert difference["key"] in result.output


def test_parity_command_exits_0_when_export_agrees(
    built_book: BuiltBook, cli_env: dict[str, str], tmp_path: Path
) -> None:
    exported = CliRunner().invoke(
        app, ["sandbox", "legacy-export", str(tmp_path), "--clean", "--data-dir", str(built_book.sandboxes_dir)],
        env=cli_env,
    )
    assert exported.exit_code == 0 and "no seeded differences" in exported.output
    result = CliRunner().invoke(app, ["parity", "--legacy", str(tmp_path)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "the export and Revloop agree" in result.output


def test_parity_command_exits_2_when_export_cannot_be_read(cli_env: dict[str, str], tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["parity", "--legacy", str(tmp_path / "nowhere")], env=cli_env)
    assert missing.exit_code == 2 and "no such directory" in missing.output
    (tmp_path / "invoices.csv").write_text("invoice_number\n")
    (tmp_path / "payments.csv").write_text("payment_id,invoice_number,currency,amount,paid_date,status\n")
    bad_header = CliRunner().invoke(app, ["parity", "--legacy", str(tmp_path)], env=cli_env)
    assert bad_header.exit_code == 2 and "header lacks currency" in bad_header.output
