"""Volume behaviour: REST query paging over thousands of records and Bulk API 2.0 over 100,000."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce, SalesforceResourceNotFound
from simple_salesforce.bulk2 import Operation

from sandboxes.salesforce.bulk import DELIMITERS, LINE_ENDINGS
from sandboxes.salesforce.permissions import PERMISSION_SETS
from sandboxes.salesforce.soql import compile_soql
from sandboxes.salesforce.values import to_csv
from tests.sandbox_harness import RunningSandbox, start_sandbox
from tests.sandboxes.salesforce.conftest import login, stop_sandbox

CONTACTS = 6_000
BULK_ACCOUNTS = 100_000


@pytest.fixture(scope="module")
def volume_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    running = start_sandbox("salesforce", tmp_path_factory.mktemp("salesforce-volume"), scale="empty")
    try:
        running.admin(
            "POST",
            "salesforce/bulk-insert",
            {
                "sobject": "Contact",
                "count": CONTACTS,
                "fields": {"LastName": "Volume {n}", "Email": "person{n}@example.com", "CurrencyIsoCode": "SGD"},
            },
        )
        running.admin(
            "POST",
            "salesforce/bulk-insert",
            {
                "sobject": "Account",
                "count": BULK_ACCOUNTS,
                "fields": {"Name": "Bulk Account {n}", "Industry": "Retail"},
            },
        )
        yield running
    finally:
        stop_sandbox(running)


@pytest.fixture()
def vsf(volume_sandbox: RunningSandbox) -> Salesforce:
    apps = volume_sandbox.admin("GET", "salesforce/apps")["apps"]
    return login(volume_sandbox, apps["revloop-admin"])


def test_query_all_pages_every_record_in_batches_of_2000_when_result_is_large(vsf: Salesforce) -> None:
    first = vsf.query("SELECT Id, Name FROM Contact")
    assert first["totalSize"] == CONTACTS and first["done"] is False and len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith("/services/data/v62.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    everything = vsf.query_all("SELECT Id, Name FROM Contact")
    ids = [r["Id"] for r in everything["records"]]
    assert len(ids) == len(set(ids)) == CONTACTS


def test_batch_size_header_sets_page_size_when_within_limits(vsf: Salesforce) -> None:
    page = vsf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=500"})
    assert len(page["records"]) == 500 and page["nextRecordsUrl"].endswith("-500")
    following = vsf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    assert len(following["records"]) == 500
    clamped = vsf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=5"})
    assert len(clamped["records"]) == 200


def test_bulk2_query_returns_every_record_as_csv_when_result_spans_pages(vsf: Salesforce) -> None:
    chunks = list(
        vsf.bulk2.Account.query("SELECT Id, Name, Industry, IsDeleted FROM Account", max_records=40_000, wait=0.1)
    )
    assert len(chunks) == 3
    rows = [row for chunk in chunks for row in csv.DictReader(io.StringIO(chunk))]
    assert len(rows) == BULK_ACCOUNTS
    assert list(rows[0]) == ["Id", "Name", "Industry", "IsDeleted"]
    assert rows[0]["IsDeleted"] == "false" and rows[0]["Industry"] == "Retail"
    assert len({r["Id"] for r in rows}) == BULK_ACCOUNTS
    assert chunks[0].startswith('"Id","Name","Industry","IsDeleted"\n')


def test_bulk2_download_writes_files_when_query_has_parent_fields(vsf: Salesforce, tmp_path: Path) -> None:
    results = vsf.bulk2.Contact.download(
        "SELECT Id, LastName, Account.Name FROM Contact", path=str(tmp_path), max_records=5_000, wait=0.1
    )
    assert [r["number_of_records"] for r in results] == [5_000, 1_000]
    with open(results[0]["file"], newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["Id", "LastName", "Account.Name"]


def test_bulk2_query_all_includes_deleted_records_when_operation_is_query_all(vsf: Salesforce) -> None:
    victim = vsf.query("SELECT Id FROM Contact WHERE LastName = 'Volume 7'")["records"][0]["Id"]
    vsf.Contact.delete(victim)
    soql = f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{victim}'"
    live = "".join(vsf.bulk2.Contact.query(soql, wait=0.1))
    everything = "".join(vsf.bulk2.Contact.query_all(soql, wait=0.1))
    assert victim not in live
    assert f'"{victim}","true"' in everything


def test_bulk2_job_can_be_aborted_and_deleted_when_still_running(vsf: Salesforce) -> None:
    client = vsf.bulk2.Account._client
    job = client.create_job(Operation.query, "SELECT Id FROM Account")
    assert job["state"] == "UploadComplete"
    aborted = client.abort_job(job["id"], True)
    assert aborted["state"] == "Aborted"
    assert client.get_job(job["id"], True)["state"] == "Aborted"
    listed = vsf.restful("jobs/query")
    assert job["id"] in [j["id"] for j in listed["records"]]
    # simple-salesforce's delete_job expects a JSON body, but the service answers 204 with none.
    deleted = vsf.session.delete(f"{vsf.bulk2_url}query/{job['id']}", headers=vsf.headers)
    assert deleted.status_code == 204
    with pytest.raises(SalesforceResourceNotFound):
        client.get_job(job["id"], True)


ODD_STORED_ROWS: list[tuple[Any, ...]] = [
    # Name, Amount (REAL), IsWon (INTEGER), CloseDate, SystemModstamp, Description, Account.Name
    ("Plain", 1200.5, 1, "2026-11-25", "2026-11-25T10:15:30.000+0000", "one line", "Acme"),
    ('Say "hi", then, go', 299.96999999999997, 0, None, "2026-11-25T10:15:30.000+0800", 'a\nb\r\n"q"', None),
    (None, None, None, "2026-02-31", 'not "a" date', "", 'Quote"Co'),
    ("", 2.0, "yes", "x", None, "tab\there", "semi;colon|pipe^caret`back"),
    ("12", 'not "a" number', 1, "2026-11-25", "2026-11-25T10:15:30Z", "3.25", ""),
]
"""Stored values as SQLite hands them back (by column affinity: text in TEXT columns, floats in REAL ones,
integers for booleans), usual and odd: quotes, delimiters, line breaks, nulls, empty text, and text where a
number, boolean or datetime belongs (values written around the API)."""


@pytest.mark.parametrize("delimiter", sorted(DELIMITERS))
@pytest.mark.parametrize("line_ending", sorted(LINE_ENDINGS))
def test_bulk_csv_is_what_a_quote_all_csv_writer_writes_when_values_are_odd(delimiter: str, line_ending: str) -> None:
    compiled = compile_soql(
        "SELECT Name, Amount, IsWon, CloseDate, SystemModstamp, Description, Account.Name FROM Opportunity",
        PERMISSION_SETS["revloop-admin"], include_deleted=False,
    )
    assert len(compiled.join_ids) == 1  # rows are (rowid, Id, Account's Id, *fields)
    rows = [(n, f"006{n:015d}", "001000000000000001", *values) for n, values in enumerate(ODD_STORED_ROWS)]
    expected = io.StringIO()
    writer = csv.writer(expected, delimiter=DELIMITERS[delimiter], lineterminator=LINE_ENDINGS[line_ending],
                        quoting=csv.QUOTE_ALL)
    writer.writerow(compiled.csv_header())
    writer.writerows([to_csv(column.field, row[3 + i]) for i, column in enumerate(compiled.columns)] for row in rows)
    assert compiled.csv_text(rows, DELIMITERS[delimiter], LINE_ENDINGS[line_ending]) == expected.getvalue()
    assert compiled.csv_text([], DELIMITERS[delimiter], LINE_ENDINGS[line_ending]) == expected.getvalue().split(
        LINE_ENDINGS[line_ending])[0] + LINE_ENDINGS[line_ending]
