"""SOQL features and errors, and sObject Collections with and without allOrNone."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from simple_salesforce import Salesforce, SalesforceMalformedRequest

from sandboxes.salesforce.permissions import PERMISSION_SETS
from sandboxes.salesforce.soql import compile_soql
from sandboxes.salesforce.store import SalesforceStore
from tests.sandboxes.salesforce.conftest import error_code


def test_parent_fields_nest_under_relationship_when_selected(sf: Salesforce) -> None:
    records = sf.query(
        "SELECT Id, Name, Opportunity__r.Name, Opportunity__r.Account.Name FROM Invoice__c "
        "WHERE Opportunity__c != null ORDER BY Name LIMIT 5"
    )["records"]
    assert len(records) == 5
    first = records[0]
    assert first["Opportunity__r"]["attributes"]["type"] == "Opportunity"
    assert first["Opportunity__r"]["Account"]["attributes"]["type"] == "Account"
    assert isinstance(first["Opportunity__r"]["Account"]["Name"], str)
    orphan = sf.Invoice__c.create({"Name": "no parent"})["id"]
    lonely = sf.query(f"SELECT Id, Opportunity__r.Name FROM Invoice__c WHERE Id = '{orphan}'")["records"][0]
    assert lonely["Opportunity__r"] is None


def test_where_supports_in_like_not_and_parentheses_when_combined(sf: Salesforce) -> None:
    won = sf.query("SELECT COUNT() FROM Opportunity WHERE StageName IN ('Closed Won')")["totalSize"]
    assert won == sf.query("SELECT COUNT() FROM Opportunity WHERE IsWon = true")["totalSize"] > 0
    not_won = sf.query("SELECT COUNT() FROM Opportunity WHERE StageName NOT IN ('Closed Won')")["totalSize"]
    total = sf.query("SELECT COUNT() FROM Opportunity")["totalSize"]
    assert won + not_won == total
    mixed = sf.query(
        "SELECT Id FROM Opportunity WHERE (IsWon = true OR StageName = 'Closed Lost') AND NOT (Amount < 0)"
    )["totalSize"]
    assert mixed == sf.query("SELECT COUNT() FROM Opportunity WHERE IsClosed = true")["totalSize"]
    name = sf.query("SELECT Name FROM Account ORDER BY Name LIMIT 1")["records"][0]["Name"]
    liked = sf.query(f"SELECT Name FROM Account WHERE Name LIKE '{name[:3]}%'")["records"]
    assert name in [r["Name"] for r in liked]
    assert all(r["Name"].lower().startswith(name[:3].lower()) for r in liked)


def test_datetime_and_date_literals_filter_when_compared_with_timestamps(sf: Salesforce) -> None:
    all_count = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    after_epoch = sf.query("SELECT COUNT() FROM Account WHERE CreatedDate > 2000-01-01T00:00:00Z")["totalSize"]
    future = sf.query("SELECT COUNT() FROM Account WHERE SystemModstamp >= 2999-01-01T00:00:00+08:00")["totalSize"]
    assert (after_epoch, future) == (all_count, 0)
    closing = sf.query("SELECT COUNT() FROM Opportunity WHERE CloseDate >= 2000-01-01 AND CloseDate < 2999-12-31")
    assert closing["totalSize"] == sf.query("SELECT COUNT() FROM Opportunity")["totalSize"]
    sf.Account.create({"Name": "Made today"})
    assert sf.query("SELECT COUNT() FROM Account WHERE CreatedDate = TODAY")["totalSize"] >= 1


def test_order_by_limit_offset_page_consistently_when_combined(sf: Salesforce) -> None:
    ordered = [
        r["Amount"]
        for r in sf.query("SELECT Amount FROM Opportunity ORDER BY Amount DESC NULLS LAST LIMIT 30")["records"]
    ]
    assert ordered == sorted(ordered, reverse=True)
    window = sf.query("SELECT Amount FROM Opportunity ORDER BY Amount DESC NULLS LAST LIMIT 10 OFFSET 20")["records"]
    assert [r["Amount"] for r in window] == ordered[20:30]
    with pytest.raises(SalesforceMalformedRequest) as too_far:
        sf.query("SELECT Id FROM Account LIMIT 10 OFFSET 2001")
    assert error_code(too_far.value) == "NUMBER_OUTSIDE_VALID_RANGE"


def test_filtered_query_keeps_insertion_order_when_it_has_no_order_by(sf: Salesforce) -> None:
    every = sf.query_all("SELECT Id FROM Contact")["records"]
    filtered = sf.query_all("SELECT Id FROM Contact WHERE SystemModstamp >= 2000-01-01T00:00:00Z")["records"]
    assert [r["Id"] for r in filtered] == [r["Id"] for r in every] and len(every) > 1


@pytest.mark.parametrize("include_deleted", [True, False], ids=["queryAll", "query"])
def test_cursor_filter_is_served_by_its_index_when_the_query_has_no_order_by(
    tmp_path: Path, include_deleted: bool
) -> None:
    store = SalesforceStore(tmp_path / "org.sqlite3")
    compiled = compile_soql(
        "SELECT Id, SystemModstamp FROM OpportunityLineItem WHERE SystemModstamp >= 2026-11-25T10:00:00Z",
        PERMISSION_SETS["revloop-reader"], include_deleted=include_deleted,
    )
    sql, params = compiled.rowid_sql()
    plan = [row[3] for row in store.db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    store.close()
    # Not a full scan in rowid order: an index on SystemModstamp finds the few rows an increment reads.
    assert any("INDEX ix_OpportunityLineItem_SystemModstamp" in step for step in plan), plan
    assert "SCAN t" not in plan, plan


def test_count_query_returns_total_size_without_records_when_count_is_selected(sf: Salesforce) -> None:
    result = sf.query("SELECT COUNT() FROM Product2")
    assert result == {"totalSize": 12, "done": True, "records": []}


@pytest.mark.parametrize(
    ("soql", "code", "fragment"),
    [
        ("SELECT Id FROMM Account", "MALFORMED_QUERY", "unexpected token"),
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY", "ERROR at Row:1:Column:"),
        ("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", "MALFORMED_QUERY", "unexpected token"),
        ("SELECT Id FROM Opportunity WHERE Amount = '5'", "MALFORMED_QUERY", "must be of type double"),
        ("SELECT Id, Nope__c FROM Account", "INVALID_FIELD", "No such column 'Nope__c' on entity 'Account'"),
        ("SELECT Id, Owner.Name FROM Account", "INVALID_FIELD", "Didn't understand relationship 'Owner'"),
        ("SELECT Id FROM Invoice", "INVALID_TYPE", "sObject type 'Invoice' is not supported."),
        ("SELECT Id FROM Account WHERE Id = 'zzz'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field"),
    ],
)
def test_bad_soql_is_answered_with_salesforce_error_when_query_is_invalid(
    sf: Salesforce, soql: str, code: str, fragment: str
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.query(soql)
    assert refused.value.status == 400
    assert error_code(refused.value) == code
    assert fragment in refused.value.content[0]["message"]


# ---- sObject Collections --------------------------------------------------------------------------------


def _collection(sf: Salesforce, method: str, body: dict[str, object], path: str = "composite/sobjects") -> list[dict]:
    return sf.restful(path, method=method, data=json.dumps(body))


def test_collection_create_reports_each_record_when_all_or_none_is_false(sf: Salesforce) -> None:
    results = _collection(
        sf,
        "POST",
        {
            "records": [
                {"attributes": {"type": "Account"}, "Name": "Collection One"},
                {"attributes": {"type": "Account"}, "Website": "no name"},
                {
                    "attributes": {"type": "Opportunity"},
                    "Name": "Deal",
                    "StageName": "Prospecting",
                    "CloseDate": "2026-06-30",
                },
            ]
        },
    )
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert results[1]["errors"][0]["fields"] == ["Name"]
    assert sf.Account.get(results[0]["id"])["Name"] == "Collection One"


def test_collection_rolls_everything_back_when_all_or_none_and_one_record_fails(sf: Salesforce) -> None:
    name = f"Rolled back {uuid.uuid4().hex[:6]}"
    results = _collection(
        sf,
        "POST",
        {
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Account"}, "Name": name},
                {"attributes": {"type": "Account"}, "Type": "Not a type"},
            ],
        },
    )
    assert [r["success"] for r in results] == [False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert sf.query(f"SELECT COUNT() FROM Account WHERE Name = '{name}'")["totalSize"] == 0


def test_collection_update_upsert_and_delete_when_records_exist(sf: Salesforce) -> None:
    keys = [f"coll-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    upserted = _collection(
        sf,
        "PATCH",
        {
            "records": [
                {"attributes": {"type": "Invoice__c"}, "Revloop_Key__c": k, "Name": k, "Amount__c": 5} for k in keys
            ]
        },
        path="composite/sobjects/Invoice__c/Revloop_Key__c",
    )
    assert [r["created"] for r in upserted] == [True, True, True]
    again = _collection(
        sf,
        "PATCH",
        {"records": [{"attributes": {"type": "Invoice__c"}, "Revloop_Key__c": keys[0], "Payment_Status__c": "Paid"}]},
        path="composite/sobjects/Invoice__c/Revloop_Key__c",
    )
    assert again[0]["created"] is False and again[0]["id"] == upserted[0]["id"]
    ids = [r["id"] for r in upserted]
    updated = _collection(
        sf,
        "PATCH",
        {
            "records": [
                {"attributes": {"type": "Invoice__c"}, "Id": ids[1], "Amount__c": 7},
                {"attributes": {"type": "Invoice__c"}, "Id": "a0B5g0000ZZZZZZAAA", "Amount__c": 7},
            ]
        },
    )
    assert [r["success"] for r in updated] == [True, False]
    assert sf.Invoice__c.get(ids[1])["Amount__c"] == 7.0
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids), "allOrNone": "false"})
    assert [r["success"] for r in deleted] == [True, True, True]
    assert (
        sf.query(f"SELECT COUNT() FROM Invoice__c WHERE Revloop_Key__c IN ('{keys[0]}', '{keys[1]}')")["totalSize"] == 0
    )


def test_collection_is_refused_when_more_than_200_records(sf: Salesforce) -> None:
    records = [{"attributes": {"type": "Account"}, "Name": f"n{i}"} for i in range(201)]
    with pytest.raises(SalesforceMalformedRequest) as refused:
        _collection(sf, "POST", {"records": records})
    assert error_code(refused.value) == "EXCEEDED_ID_LIMIT"
