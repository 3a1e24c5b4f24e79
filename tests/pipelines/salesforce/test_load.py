"""Full and incremental loads of the demo org: completeness, changes, deletes, the overlap window, PII."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pipelines.salesforce import settings as constants
from pipelines.salesforce.schema import table_name
from sandboxes import book
from tests.pipelines.salesforce.conftest import (
    SEED,
    AdminClient,
    anchor_date,
    load,
    make_settings,
    warehouse_count,
    warehouse_rows,
    write_store,
)
from tests.sandbox_harness import RunningSandbox


@pytest.fixture(scope="module")
def loaded(sandbox: RunningSandbox, module_database: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One backfill of the untouched demo org, shared by the read-only tests of this module."""
    settings = make_settings(sandbox, tmp_path_factory.mktemp("home"))
    summary = load(settings, module_database)
    return {"settings": settings, "summary": summary, "database": module_database}


def test_full_load_matches_the_org_when_backfilled(loaded: dict, admin: AdminClient) -> None:
    summary = loaded["summary"]
    for sobject in constants.OBJECTS:
        expected = admin.count(sobject)
        assert warehouse_count(loaded["database"], table_name(sobject)) == expected, sobject
        assert summary.rows_by_table[table_name(sobject)] == expected
    assert set(summary.notes["api"].values()) == {"rest"}  # the demo org is below the bulk threshold
    org = {r["Id"]: Decimal(str(r["Amount"])) for r in admin.records("SELECT Id, Amount FROM Opportunity")}
    loaded_rows = dict(warehouse_rows(loaded["database"], "opportunity", "id, amount"))
    assert loaded_rows == org


def test_columns_are_typed_from_describe_when_loaded(loaded: dict) -> None:
    with psycopg.connect(loaded["database"]) as conn:
        types = dict(
            conn.execute(
                """select column_name, data_type from information_schema.columns
                   where table_schema = 'raw_salesforce' and table_name = 'opportunity'"""
            ).fetchall()
        )
    assert types["amount"] == "numeric"
    assert types["close_date"] == "date"
    assert types["system_modstamp"] == "timestamp with time zone"
    assert types["is_won"] == "boolean"
    assert types["is_deleted"] == "boolean"
    assert types["_revloop_extracted_at"] == "timestamp with time zone"


def test_no_plaintext_email_or_phone_anywhere_when_fully_loaded(loaded: dict, sandbox: RunningSandbox) -> None:
    secrets_of_book: set[str] = set()
    for company in book.iter_companies(SEED, "demo", anchor_date(sandbox)):
        secrets_of_book.add(company.phone)
        for person in company.contacts:
            secrets_of_book.update(v for v in (person.email, person.phone) if v)
    assert len(secrets_of_book) > 300
    found = []
    with psycopg.connect(loaded["database"]) as conn:
        columns = conn.execute(
            """select table_schema, table_name, column_name from information_schema.columns
               where table_schema not in ('pg_catalog', 'information_schema')
                 and data_type in ('text', 'character varying', 'json', 'jsonb')"""
        ).fetchall()
        assert any(table == "contact" for _, table, _ in columns)
        for schema, table, column in columns:
            values = conn.execute(
                sql.SQL("select distinct {}::text from {}.{} where {} is not null").format(
                    sql.Identifier(column), sql.Identifier(schema), sql.Identifier(table), sql.Identifier(column)
                )
            ).fetchall()
            for (value,) in values:
                if any(secret in value for secret in secrets_of_book):
                    found.append(f"{schema}.{table}.{column}")
                    break
    assert found == []
    emails = warehouse_rows(loaded["database"], "contact", "email_enc, email_hash", "where email_enc is not null")
    assert emails and all(enc.startswith("enc:v1:") and len(digest) == 64 for enc, digest in emails)


def test_incremental_loads_creates_updates_and_deletes_when_changed_in_the_org(
    sandbox: RunningSandbox, fresh_database: str, tmp_path: Path, admin: AdminClient
) -> None:
    settings = make_settings(sandbox, tmp_path)
    load(settings, fresh_database)
    created = admin.sf.Account.create({"Name": "Harbourfront Analytics Pte Ltd", "CurrencyIsoCode": "SGD"})
    opportunity_id = admin.records("SELECT Id FROM Opportunity WHERE IsClosed = false LIMIT 1")[0]["Id"]
    admin.sf.Opportunity.update(opportunity_id, {"Amount": 4321.5})
    contact_id = admin.records("SELECT Id FROM Contact LIMIT 1")[0]["Id"]
    admin.sf.Contact.delete(contact_id)

    summary = load(settings, fresh_database)

    assert summary.rows_loaded < 100, summary.rows_by_table  # the overlap window, not the whole org
    assert set(summary.notes["api"].values()) == {"rest"}
    assert warehouse_rows(fresh_database, "account", "name, is_deleted", f"where id = '{created['id']}'") == [
        ("Harbourfront Analytics Pte Ltd", False)
    ]
    assert warehouse_rows(fresh_database, "opportunity", "amount", f"where id = '{opportunity_id}'") == [
        (Decimal("4321.50"),)
    ]
    assert warehouse_rows(fresh_database, "contact", "is_deleted", f"where id = '{contact_id}'") == [(True,)]
    assert summary.notes["deleted_seen"]["Contact"] >= 1
    for sobject in ("Account", "Opportunity", "Contact"):  # nothing lost, nothing doubled
        assert warehouse_count(fresh_database, table_name(sobject)) == admin.count(sobject)


def test_record_committed_late_is_loaded_when_inside_the_overlap_window(
    sandbox: RunningSandbox, fresh_database: str, tmp_path: Path, admin: AdminClient
) -> None:
    settings = make_settings(sandbox, tmp_path)
    first = load(settings, fresh_database)
    cursor = dt.datetime.fromisoformat(first.cursors["invoice_c"])
    # A transaction stamped two minutes before the cursor that committed only after the run read.
    stamp = (cursor - dt.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    invoice_id = admin.records("SELECT Id FROM Invoice__c ORDER BY SystemModstamp ASC LIMIT 1")[0]["Id"]
    changed = write_store(
        sandbox,
        'UPDATE "Invoice__c" SET "Payment_Status__c" = ?, "SystemModstamp" = ?, "LastModifiedDate" = ? WHERE "Id" = ?',
        ("Disputed", stamp, stamp, invoice_id),
    )
    assert changed == 1

    load(settings, fresh_database)

    assert warehouse_rows(fresh_database, "invoice_c", "payment_status_c", f"where id = '{invoice_id}'") == [
        ("Disputed",)
    ]
    assert warehouse_count(fresh_database, "invoice_c") == admin.count("Invoice__c")


def test_bulk_api_loads_the_same_rows_when_the_count_reaches_the_threshold(
    sandbox: RunningSandbox, fresh_database: str, tmp_path: Path, admin: AdminClient
) -> None:
    summary = load(make_settings(sandbox, tmp_path), fresh_database, bulk_threshold=1)
    assert set(summary.notes["api"].values()) == {"bulk"}
    for sobject in constants.OBJECTS:
        assert warehouse_count(fresh_database, table_name(sobject)) == admin.count(sobject), sobject
    org = {
        r["Id"]: (Decimal(str(r["TotalPrice"])), r["Quantity"])
        for r in admin.records("SELECT Id, TotalPrice, Quantity FROM OpportunityLineItem")
    }
    rows = warehouse_rows(fresh_database, "opportunity_line_item", "id, total_price, quantity")
    assert {i: (total, float(quantity)) for i, total, quantity in rows} == org


def test_an_increment_reads_through_one_query_per_object_and_switches_to_bulk_when_large(
    sandbox: RunningSandbox, fresh_database: str, tmp_path: Path, admin: AdminClient
) -> None:
    settings = make_settings(sandbox, tmp_path)
    load(settings, fresh_database)
    idle = load(settings, fresh_database)
    # per object: a describe (304 Not Modified after the first load) and one query whose first page is the count
    objects = len(constants.OBJECTS)
    assert idle.notes["api_calls"] == 2 * objects, idle.notes
    assert idle.notes["describes_not_modified"] == objects

    accounts = admin.records("SELECT Id FROM Account ORDER BY Id LIMIT 5")
    for n, account in enumerate(accounts):
        admin.sf.Account.update(account["Id"], {"Description": f"bulk increment {n}"})
    large = load(settings, fresh_database, bulk_threshold=len(accounts))
    assert large.notes["api"]["Account"] == "bulk" and large.notes["matching"]["Account"] >= len(accounts)
    assert large.notes["api"]["Opportunity"] == "rest"
    for account in accounts:
        assert warehouse_rows(fresh_database, "account", "description",
                              f"where id = '{account['Id']}'")[0][0].startswith("bulk increment")
    assert warehouse_count(fresh_database, "account") == admin.count("Account")
