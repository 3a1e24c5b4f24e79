"""Single-record REST: describe, CRUD, validation, org automation, upsert by external id, recycle bin."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from simple_salesforce import (
    Salesforce,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from tests.sandboxes.salesforce.conftest import error_code


def _key() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def test_describe_lists_fields_with_types_and_picklists_when_object_is_custom(sf: Salesforce) -> None:
    described = sf.Invoice__c.describe()
    assert described["keyPrefix"] == "a0B" and described["custom"] is True
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["Revloop_Key__c"]["externalId"] is True and fields["Revloop_Key__c"]["unique"] is True
    assert [p["value"] for p in fields["Payment_Status__c"]["picklistValues"]] == [
        "Unpaid",
        "Partially Paid",
        "Paid",
        "Failed",
        "Refunded",
        "Disputed",
    ]
    assert fields["Opportunity__c"]["type"] == "reference"
    assert fields["Opportunity__c"]["referenceTo"] == ["Opportunity"]
    assert fields["Opportunity__c"]["relationshipName"] == "Opportunity__r"
    assert fields["Paid_At__c"]["type"] == "datetime"
    assert fields["SystemModstamp"]["createable"] is False
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {
        "Account",
        "Contact",
        "Opportunity",
        "OpportunityLineItem",
        "Product2",
        "Invoice__c",
        "Subscription__c",
    } <= names


def test_create_get_update_delete_round_trip_when_fields_are_valid(sf: Salesforce) -> None:
    created = sf.Account.create({"Name": "Round Trip Pte Ltd", "CurrencyIsoCode": "SGD", "Industry": "Finance"})
    assert created["success"] is True and created["id"].startswith("001") and len(created["id"]) == 18
    record = sf.Account.get(created["id"])
    assert record["attributes"] == {"type": "Account", "url": f"/services/data/v62.0/sobjects/Account/{created['id']}"}
    assert record["Name"] == "Round Trip Pte Ltd" and record["IsDeleted"] is False
    assert record["CreatedDate"].endswith("+0000") and len(record["CreatedDate"]) == 28
    assert sf.Account.update(created["id"], {"Phone": "+65 6000 0000"}) == 204
    updated = sf.Account.get(created["id"])
    assert updated["Phone"] == "+65 6000 0000"
    assert updated["SystemModstamp"] >= record["SystemModstamp"]
    assert sf.Account.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as gone:
        sf.Account.get(created["id"])
    assert error_code(gone.value) == "ENTITY_IS_DELETED"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"CurrencyIsoCode": "SGD"}, "REQUIRED_FIELD_MISSING"),
        ({"Name": "x" * 121, "StageName": "Prospecting", "CloseDate": "2026-01-01"}, "STRING_TOO_LONG"),
        (
            {"Name": "x", "StageName": "Nearly There", "CloseDate": "2026-01-01"},
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ),
        ({"Name": "x", "StageName": "Prospecting", "CloseDate": "soon"}, "INVALID_TYPE_ON_FIELD_IN_RECORD"),
        (
            {"Name": "x", "StageName": "Prospecting", "CloseDate": "2026-01-01", "Amount": "lots"},
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
        ),
        (
            {"Name": "x", "StageName": "Prospecting", "CloseDate": "2026-01-01", "AccountId": "not-an-id"},
            "MALFORMED_ID",
        ),
        (
            {"Name": "x", "StageName": "Prospecting", "CloseDate": "2026-01-01", "AccountId": "0035g0000000001AAA"},
            "FIELD_INTEGRITY_EXCEPTION",
        ),
        (
            {"Name": "x", "StageName": "Prospecting", "CloseDate": "2026-01-01", "IsWon": True},
            "INVALID_FIELD_FOR_INSERT_UPDATE",
        ),
        ({"Name": "x", "Bogus__c": 1}, "INVALID_FIELD"),
    ],
)
def test_create_is_refused_with_salesforce_error_code_when_value_is_invalid(
    sf: Salesforce, body: dict[str, object], code: str
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Opportunity.create(body)
    assert refused.value.status == 400
    assert error_code(refused.value) == code


def test_is_closed_and_is_won_follow_stage_when_stage_changes(sf: Salesforce) -> None:
    account_id = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    created = sf.Opportunity.create(
        {
            "Name": "Stage test",
            "AccountId": account_id,
            "StageName": "Prospecting",
            "CloseDate": "2026-12-31",
            "Amount": 1000,
            "CurrencyIsoCode": "USD",
        }
    )
    before = sf.Opportunity.get(created["id"])
    assert (before["IsClosed"], before["IsWon"], before["Probability"]) == (False, False, 10.0)
    sf.Opportunity.update(created["id"], {"StageName": "Closed Won"})
    after = sf.Opportunity.get(created["id"])
    assert (after["IsClosed"], after["IsWon"], after["Probability"]) == (True, True, 100.0)
    assert after["LastModifiedDate"] >= before["LastModifiedDate"]


def test_upsert_by_revloop_key_creates_then_updates_when_called_twice(sf: Salesforce) -> None:
    key = _key()
    first = sf.Invoice__c.upsert(
        f"Revloop_Key__c/{key}", {"Name": "INV/2026/99001", "Amount__c": 100.0}, raw_response=True
    )
    assert first.status_code == 201
    assert first.json()["created"] is True and first.json()["success"] is True
    second = sf.Invoice__c.upsert(f"Revloop_Key__c/{key}", {"Payment_Status__c": "Paid"}, raw_response=True)
    assert second.status_code == 200
    assert second.json() == {"id": first.json()["id"], "success": True, "errors": [], "created": False}
    record = sf.Invoice__c.get_by_custom_id("Revloop_Key__c", key)
    assert record["Payment_Status__c"] == "Paid" and record["Amount__c"] == 100.0


def test_upsert_answers_not_found_when_update_only_and_key_is_new(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as missing:
        sf.restful(
            f"sobjects/Invoice__c/Revloop_Key__c/{_key()}",
            params={"updateOnly": "true"},
            method="PATCH",
            data='{"Name": "never"}',
        )
    assert error_code(missing.value) == "NOT_FOUND"


def test_upsert_answers_300_with_candidates_when_non_unique_external_id_matches_twice(sf: Salesforce) -> None:
    erp_id = f"erp-{uuid.uuid4().hex[:8]}"
    ids = [sf.Invoice__c.create({"Name": f"dup {n}", "ERP_Invoice_Id__c": erp_id})["id"] for n in range(2)]
    with pytest.raises(SalesforceMoreThanOneRecord) as ambiguous:
        sf.Invoice__c.upsert(f"ERP_Invoice_Id__c/{erp_id}", {"Status__c": "Posted"})
    assert ambiguous.value.status == 300
    assert sorted(ambiguous.value.content) == sorted(f"/services/data/v62.0/sobjects/Invoice__c/{i}" for i in ids)


def test_create_is_refused_with_duplicate_value_when_unique_external_id_exists(sf: Salesforce) -> None:
    key = _key()
    sf.Invoice__c.create({"Name": "first", "Revloop_Key__c": key})
    with pytest.raises(SalesforceMalformedRequest) as duplicate:
        sf.Invoice__c.create({"Name": "second", "Revloop_Key__c": key})
    assert error_code(duplicate.value) == "DUPLICATE_VALUE"


def test_deleted_record_is_visible_only_to_query_all_when_in_recycle_bin(sf: Salesforce) -> None:
    created = sf.Subscription__c.create({"Name": "to delete", "Status__c": "Active"})
    sf.Subscription__c.delete(created["id"])
    soql = f"SELECT Id, IsDeleted FROM Subscription__c WHERE Id = '{created['id']}'"
    assert sf.query(soql)["totalSize"] == 0
    found = sf.query_all(soql, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in found] == [(created["id"], True)]
    with pytest.raises(SalesforceResourceNotFound) as again:
        sf.Subscription__c.delete(created["id"])
    assert error_code(again.value) == "ENTITY_IS_DELETED"


def test_updated_and_deleted_endpoints_report_changes_when_window_covers_them(sf: Salesforce) -> None:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
    changed = sf.Account.create({"Name": "Replicated Co"})["id"]
    removed = sf.Account.create({"Name": "Removed Co"})["id"]
    sf.Account.delete(removed)
    end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    updated = sf.Account.updated(start, end)
    assert changed in updated["ids"] and removed not in updated["ids"]
    assert updated["latestDateCovered"].endswith("+0000")
    deleted = sf.Account.deleted(start, end)
    assert removed in [d["id"] for d in deleted["deletedRecords"]]
    assert {"earliestDateAvailable", "latestDateCovered"} <= set(deleted)
    with pytest.raises(SalesforceMalformedRequest) as too_old:
        sf.Account.updated(start - dt.timedelta(days=45), end)
    assert error_code(too_old.value) == "INVALID_REPLICATION_DATE"


def test_get_answers_not_found_when_id_is_unknown_or_object_unknown(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as unknown:
        sf.Account.get("0015g0000ZZZZZZAAA")
    assert error_code(unknown.value) == "NOT_FOUND"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.describe()


# ---- permissions ---------------------------------------------------------------------------------------


def test_writes_are_refused_with_insufficient_access_when_user_is_read_only(
    connect: Callable[[str], Salesforce],
) -> None:
    reader = connect("revloop-reader")
    with pytest.raises(SalesforceMalformedRequest) as refused:
        reader.Account.create({"Name": "Not allowed"})
    assert error_code(refused.value) == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert reader.Account.describe()["createable"] is False


def test_sync_user_cannot_write_contacts_when_permission_set_excludes_them(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Contact.create({"LastName": "Nope"})
    assert error_code(refused.value) == "INSUFFICIENT_ACCESS_OR_READONLY"


def test_restricted_user_gets_invalid_type_and_invalid_field_when_reading_hidden_data(
    connect: Callable[[str], Salesforce],
) -> None:
    support = connect("revloop-support")
    with pytest.raises(SalesforceMalformedRequest) as hidden_object:
        support.query("SELECT Id FROM Invoice__c")
    assert error_code(hidden_object.value) == "INVALID_TYPE"
    assert "sObject type 'Invoice__c' is not supported." in hidden_object.value.content[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as hidden_field:
        support.query("SELECT Id, Email FROM Contact")
    assert error_code(hidden_field.value) == "INVALID_FIELD"
    assert "No such column 'Email' on entity 'Contact'" in hidden_field.value.content[0]["message"]
    assert "Email" not in {f["name"] for f in support.Contact.describe()["fields"]}
    assert "Invoice__c" not in {o["name"] for o in support.describe()["sobjects"]}
    created = support.Contact.create({"LastName": "Support-made", "FirstName": "Ann"})
    assert support.Contact.get(created["id"])["Name"] == "Ann Support-made"
    with pytest.raises(SalesforceMalformedRequest) as hidden_write:
        support.Contact.update(created["id"], {"Email": "ann@example.com"})
    assert error_code(hidden_write.value) == "INVALID_FIELD"
