"""Columns from describe, reported schema changes, and bad records sent to the quarantine."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest

from pipelines.common.quarantine import Quarantine, Rejection
from pipelines.salesforce import QuarantineRepairs
from pipelines.salesforce.helpers import csv_columns, rest_columns, typed_table
from pipelines.salesforce.schema import field_specs, schema_changes, snapshot
from pipelines.salesforce.settings import REST_BATCH_SIZE
from revloop.crypto import FieldCipher, Keyring, new_keyring_json
from tests.pipelines.salesforce.conftest import (
    AdminClient,
    load,
    make_settings,
    warehouse_count,
    warehouse_rows,
    write_store,
)
from tests.sandbox_harness import RunningSandbox

NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)


def _field(name: str, sf_type: str, precision: int = 0, scale: int = 0) -> dict:
    return {"name": name, "type": sf_type, "precision": precision, "scale": scale}


DESCRIBE = {
    "name": "Invoice__c",
    "fields": [
        _field("Id", "id"),
        _field("IsDeleted", "boolean"),
        _field("CurrencyIsoCode", "picklist"),
        _field("SystemModstamp", "datetime"),
        _field("Invoice_Date__c", "date"),
        _field("Amount__c", "currency", 18, 2),
        _field("Seats__c", "double", 9, 0),
        _field("Lines__c", "int"),
        _field("Billing_Address__c", "address"),
    ],
}


def test_describe_types_become_column_types_when_mapped() -> None:
    specs = {spec.name: spec for spec in field_specs(DESCRIBE)}
    assert "Billing_Address__c" not in specs  # compound: its components are fields of their own
    assert specs["Amount__c"].arrow_type == pa.decimal128(18, 2)
    assert specs["Seats__c"].arrow_type == pa.decimal128(9, 0)
    assert specs["Lines__c"].arrow_type == pa.int64()
    assert specs["Invoice_Date__c"].arrow_type == pa.date32()
    assert specs["SystemModstamp"].arrow_type == pa.timestamp("us", tz="UTC")
    assert specs["IsDeleted"].arrow_type == pa.bool_()
    assert specs["Invoice_Date__c"].column == "invoice_date_c"


def test_type_change_and_removed_field_are_reported_when_describe_differs() -> None:
    before = snapshot(field_specs(DESCRIBE))
    changed = {**DESCRIBE, "fields": [f for f in DESCRIBE["fields"] if f["name"] != "Lines__c"]}
    changed["fields"] = [
        _field("Amount__c", "string") if f["name"] == "Amount__c" else f for f in changed["fields"]
    ] + [_field("Region__c", "picklist")]
    rows = schema_changes("Invoice__c", before, snapshot(field_specs(changed)), NOW)
    found = {(r["field"], r["change"], r["old_type"], r["new_type"]) for r in rows}
    assert found == {
        ("Lines__c", "removed", "int", None),
        ("Amount__c", "type_changed", "currency(18,2)", "string"),
        ("Region__c", "added", None, "picklist"),
    }
    assert schema_changes("Invoice__c", None, before, NOW) == []  # the first run has nothing to compare


@pytest.fixture
def quarantine(fresh_database: str) -> Quarantine:
    with Quarantine(fresh_database, "salesforce", FieldCipher(Keyring.from_json(new_keyring_json()))) as q:
        yield q


def test_bad_records_are_quarantined_and_the_rest_loads_when_a_page_has_them(
    quarantine: Quarantine, fresh_database: str
) -> None:
    specs = field_specs(DESCRIBE)
    header = '"Id","IsDeleted","CurrencyIsoCode","SystemModstamp","Invoice_Date__c","Amount__c","Seats__c","Lines__c"'
    page = "\n".join(
        [
            header,
            '"a0B000000000001","false","SGD","2026-11-25T10:15:30.000Z","2026-11-01","1200.50","3","2"',
            '"a0B000000000002","false","SGD","2026-11-25T10:15:30.000Z","2026-02-31","10","1","1"',
            '"a0B000000000003","false","SGD","2026-11-25T10:15:30.000Z","2026-11-01","12,50","1","1"',
            '"a0B000000000004","false","XYZ","2026-11-25T10:15:30.000Z","2026-11-01","10","1","1"',
            '"","false","SGD","2026-11-25T10:15:30.000Z","2026-11-01","10","1","1"',
            '"a0B000000000006","true","USD","yesterday","2026-11-01","10","1","1"',
            '"a0B000000000007","false","USD","2026-11-25T10:15:30.000Z","","299.96999999999997","","3"',
        ]
    ).encode()
    table = typed_table("Invoice__c", csv_columns(page, specs), specs, quarantine, NOW)

    assert table.column("id").to_pylist() == ["a0B000000000001", "a0B000000000007"]
    assert str(table.column("amount_c")[1].as_py()) == "299.97"
    with psycopg.connect(fresh_database) as conn:
        rejected = conn.execute(
            "select record_id, field, reason from raw_quarantine.records order by record_id nulls last"
        ).fetchall()
    assert [(r[0], r[1]) for r in rejected] == [
        ("a0B000000000002", "Invoice_Date__c"),
        ("a0B000000000003", "Amount__c"),
        ("a0B000000000004", "CurrencyIsoCode"),
        ("a0B000000000006", "SystemModstamp"),
        (None, "Id"),
    ]
    reasons = {r[1]: r[2] for r in rejected}
    assert reasons["Amount__c"] == "not a number: '12,50'"
    assert reasons["CurrencyIsoCode"] == "unknown currency code 'XYZ'"


def test_rest_records_convert_like_bulk_csv_when_typed(quarantine: Quarantine) -> None:
    specs = field_specs(DESCRIBE)
    records = [
        {"attributes": {"type": "Invoice__c"}, "Id": "a0B000000000001", "IsDeleted": False, "CurrencyIsoCode": "SGD",
         "SystemModstamp": "2026-11-25T10:15:30.000+0000", "Invoice_Date__c": "2026-11-01", "Amount__c": 1200.5,
         "Seats__c": 3.0, "Lines__c": 2},
    ]
    table = typed_table("Invoice__c", rest_columns(records, specs), specs, quarantine, NOW)
    row = table.to_pylist()[0]
    assert row["system_modstamp"] == dt.datetime(2026, 11, 25, 10, 15, 30, tzinfo=dt.UTC)
    assert str(row["amount_c"]) == "1200.50" and row["lines_c"] == 2 and row["is_deleted"] is False


def test_bad_records_in_the_org_are_quarantined_when_loaded(
    sandbox: RunningSandbox, fresh_database: str, tmp_path: Path, admin: AdminClient
) -> None:
    # Values an older release of the org let in: a currency we do not know, an impossible date.
    opportunity = admin.records("SELECT Id FROM Opportunity LIMIT 1")[0]["Id"]
    invoice = admin.records("SELECT Id FROM Invoice__c LIMIT 1")[0]["Id"]
    write_store(sandbox, 'UPDATE "Opportunity" SET "CurrencyIsoCode" = ? WHERE "Id" = ?', ("XTS", opportunity))
    write_store(sandbox, 'UPDATE "Invoice__c" SET "Due_Date__c" = ? WHERE "Id" = ?', ("2026-02-31", invoice))

    summary = load(make_settings(sandbox, tmp_path), fresh_database, objects=("Opportunity", "Invoice__c"))

    assert summary.quarantined_by_object == {"Opportunity": 1, "Invoice__c": 1}
    assert warehouse_count(fresh_database, "opportunity") == admin.count("Opportunity") - 1
    assert warehouse_count(fresh_database, "invoice_c") == admin.count("Invoice__c") - 1
    with psycopg.connect(fresh_database) as conn:
        rejected = set(conn.execute("select object, record_id, field from raw_quarantine.records").fetchall())
    assert rejected == {("Opportunity", opportunity, "CurrencyIsoCode"), ("Invoice__c", invoice, "Due_Date__c")}


def test_field_changes_are_reported_and_new_fields_filled_when_the_users_access_changes(
    sandbox: RunningSandbox, fresh_database: str, tmp_path: Path
) -> None:
    # revloop-support cannot see Contact.Email and Contact.Phone: for the load, they do not exist.
    apps = sandbox.admin("GET", "salesforce/apps")["apps"]
    support = make_settings(sandbox, tmp_path, reader_client_id=apps["revloop-support"]["client_id"],
                            reader_client_secret=apps["revloop-support"]["client_secret"])
    reader = make_settings(sandbox, tmp_path)
    load(support, fresh_database, objects=("Contact",))

    gained = load(reader, fresh_database, objects=("Contact",))  # the fields appear: no code change
    assert {(c["field"], c["change"]) for c in gained.notes["schema_changes"]} == {
        ("Email", "added"), ("Phone", "added")
    }
    assert gained.notes["resynced"] == ["Contact"]
    with_email = warehouse_rows(fresh_database, "contact", "count(email_hash)")[0][0]
    assert with_email > 300  # existing rows were re-read, not only new changes

    lost = load(support, fresh_database, objects=("Contact",))
    assert {(c["field"], c["change"]) for c in lost.notes["schema_changes"]} == {
        ("Email", "removed"), ("Phone", "removed")
    }
    logged = warehouse_rows(
        fresh_database, "_revloop_schema_changes", "object, field, change, old_type", "where change = 'removed'"
    )
    assert sorted(logged) == [("Contact", "Email", "removed", "email"), ("Contact", "Phone", "removed", "phone")]


def _open_entries(database_url: str) -> set[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        return set(conn.execute(
            "select object, record_id from raw_quarantine.records where source = 'salesforce' and resolved_at is null"
        ).fetchall())


def _rejection(sobject: str, record_id: str) -> Rejection:
    return Rejection(sobject, record_id, "CurrencyIsoCode", "unknown currency code 'XTS'", "XTS", {"Id": record_id})


def test_only_open_entries_are_resolved_when_a_large_page_loads_cleanly(fresh_database: str) -> None:
    cipher = FieldCipher(Keyring.from_json(new_keyring_json()))
    with Quarantine(fresh_database, "salesforce", cipher) as earlier_run:
        for sobject, record_id in (("Opportunity", "006A"), ("Opportunity", "006B"), ("Account", "006A")):
            earlier_run.reject(_rejection(sobject, record_id))
    page = pa.array(["006A", *(f"006{n:05d}" for n in range(REST_BATCH_SIZE + 1))])
    with Quarantine(fresh_database, "salesforce", cipher) as this_run:
        QuarantineRepairs(this_run, fresh_database, "Opportunity").loaded(page)
    assert _open_entries(fresh_database) == {("Opportunity", "006B"), ("Account", "006A")}


@pytest.mark.parametrize("page_size", [3, REST_BATCH_SIZE + 1])
def test_record_rejected_earlier_in_the_run_is_resolved_when_a_clean_version_follows(
    fresh_database: str, page_size: int
) -> None:
    cipher = FieldCipher(Keyring.from_json(new_keyring_json()))
    with Quarantine(fresh_database, "salesforce", cipher) as run:
        repairs = QuarantineRepairs(run, fresh_database, "Opportunity")
        repairs.loaded(pa.array([f"006{n:05d}" for n in range(page_size)]))  # the open entries are known now
        run.reject(_rejection("Opportunity", "006C"))
        repairs.loaded(pa.array(["006C", *(f"007{n:05d}" for n in range(page_size - 1))]))
    assert _open_entries(fresh_database) == set()
