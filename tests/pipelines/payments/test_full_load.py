"""A full load of the demo book: complete, PII-free, and stable when run again."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import psycopg
import pytest
import stripe

from pipelines.common.runner import LoadSummary
from revloop.settings import Settings
from tests.pipelines.payments.conftest import LISTS, make_loader, sandbox_ids, warehouse_rows
from tests.sandbox_harness import RunningSandbox

VOLATILE = re.compile(r"(_enc|_revloop_extracted_at|_dlt_load_id|_dlt_id)$")
"""Columns that differ between two loads of the same data (ciphertexts use fresh nonces)."""


@pytest.fixture(scope="module")
def reader(sandbox: RunningSandbox) -> stripe.StripeClient:
    key = sandbox.env()["REVLOOP_PAYMENTS_READER_KEY"]
    return stripe.StripeClient(key, base_addresses={"api": sandbox.base_url})


@pytest.fixture(scope="module")
def full_load(settings: Settings, module_database: str) -> LoadSummary:
    return make_loader(settings, module_database)()


def table_contents(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every raw_payments table's rows, without the columns that legitimately change between loads."""
    with psycopg.connect(url) as conn:
        tables = [row[0] for row in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'raw_payments'"
            " and table_name not like '\\_dlt%' order by 1"
        )]
    return {
        table: sorted(
            ({k: v for k, v in row[0].items() if not VOLATILE.search(k)}
             for row in warehouse_rows(url, table, "to_jsonb(t)", "true") if row),
            key=lambda r: (r["id"], r.get("invoice") or ""),
        )
        for table in tables
    }


def test_every_object_of_the_sandbox_is_loaded_when_the_book_is_fully_loaded(
    full_load: LoadSummary, module_database: str, reader: stripe.StripeClient
) -> None:
    assert full_load.notes["mode"] == "backfill"
    assert full_load.quarantined == 0
    for table in LISTS:
        loaded = [row[0] for row in warehouse_rows(module_database, table, "id", "not is_deleted")]
        assert len(loaded) == len(set(loaded)), f"duplicate ids in {table}"
        assert set(loaded) == sandbox_ids(reader, table), table


def test_invoice_lines_and_events_are_kept_when_the_book_is_fully_loaded(
    full_load: LoadSummary, module_database: str, reader: stripe.StripeClient
) -> None:
    lines = warehouse_rows(module_database, "invoice_line", "invoice, id, amount")
    expected = {(line.invoice, line.id, line.amount)
                for invoice in reader.v1.invoices.list(params={"limit": 100}).auto_paging_iter()
                for line in invoice.lines.data}
    assert set(lines) == expected and len(lines) == len(expected)
    events = {row[0] for row in warehouse_rows(module_database, "event", "id")}
    assert events == {e.id for e in reader.v1.events.list(params={"limit": 100}).auto_paging_iter()}
    # The feed keeps 30 days, as Stripe's: the objects' tables hold the older history's outcome.
    (oldest,), = warehouse_rows(module_database, "event", "min(created)")
    assert oldest >= dt.datetime.now(dt.UTC) - dt.timedelta(days=30)


def test_amounts_stay_integer_minor_units_with_stripe_currency_when_loaded(
    full_load: LoadSummary, module_database: str, reader: stripe.StripeClient
) -> None:
    stored = dict((row[0], (row[1], row[2], row[3])) for row in warehouse_rows(
        module_database, "invoice", "id, amount_due, currency, status"))
    for invoice in reader.v1.invoices.list(params={"limit": 100}).auto_paging_iter():
        assert stored[invoice.id] == (invoice.amount_due, invoice.currency, invoice.status)


def test_no_plaintext_email_or_phone_of_the_book_is_stored_when_fully_loaded(
    full_load: LoadSummary, module_database: str, reader: stripe.StripeClient
) -> None:
    secrets = set()
    for customer in reader.v1.customers.list(params={"limit": 100}).auto_paging_iter():
        secrets.update(v for v in (customer.email, customer.phone) if v)
    assert len(secrets) > 100
    needle = re.compile("|".join(re.escape(s) for s in sorted(secrets, key=len, reverse=True)))
    with psycopg.connect(module_database) as conn:
        columns = conn.execute(
            "select table_schema, table_name, column_name from information_schema.columns"
            " where data_type in ('text', 'character varying', 'jsonb', 'json')"
            " and table_schema not in ('pg_catalog', 'information_schema')"
        ).fetchall()
        assert len(columns) > 100
        for schema, table, column in columns:
            query = f'select "{column}"::text from "{schema}"."{table}" where "{column}" is not null'
            for (value,) in conn.execute(query):
                assert not needle.search(value), f"plaintext PII in {schema}.{table}.{column}"
        hashed = conn.execute("select count(*) from raw_payments.customer where email_hash is not null").fetchone()
    assert hashed and hashed[0] > 0


def test_nothing_changes_when_loaded_again_without_source_changes(
    full_load: LoadSummary, settings: Settings, module_database: str
) -> None:
    before = table_contents(module_database)
    again = make_loader(settings, module_database)()
    assert again.notes["mode"] == "incremental"
    assert table_contents(module_database) == before
