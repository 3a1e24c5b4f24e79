"""The Salesforce writer against the sandbox org: Invoice__c upserts (single and collections), renewal
Opportunities, Account updates, and each error class from the sandbox's faults or bad input."""

from __future__ import annotations

import time
from typing import Any

import pytest

from revloop.settings import SalesforceSettings
from revloop.sync.model import DeliveryOutcome, PermanentError, RateLimited, RetryableError, SessionExpired
from revloop.sync.writers.salesforce import RENEWAL_MARKER, SalesforceWriter
from tests.sandbox_harness import RunningSandbox
from tests.sync.writers.conftest import faults, unique, write


@pytest.fixture(scope="module")
def account(salesforce_settings: SalesforceSettings) -> dict[str, Any]:
    return SalesforceWriter(salesforce_settings).sf.query("SELECT Id, Name FROM Account ORDER BY Id LIMIT 1")[
        "records"][0]


def invoice_write(account: dict[str, Any], key: str, **fields: Any) -> Any:
    values = {"Name": f"INV {key}", "Account__c": account["Id"], "Amount__c": 1250.5,
              "ERP_Invoice_Number__c": "INV/2026/09999", "Status__c": "Posted", **fields}
    return write("salesforce", "Invoice__c", "upsert", key, {"fields": values})


def invoices_with_key(writer: SalesforceWriter, key: str) -> list[dict[str, Any]]:
    return writer.sf.query(f"SELECT Id, Name, ERP_Invoice_Number__c, Payment_Status__c, Account__c "
                           f"FROM Invoice__c WHERE Revloop_Key__c = '{key}'")["records"]


def test_invoice_upsert_creates_the_record_with_its_cross_references_when_new(
    sf_writer: SalesforceWriter, account: dict[str, Any]
) -> None:
    key = unique("sf-inv")
    outcome = sf_writer.deliver(invoice_write(account, key))
    (record,) = invoices_with_key(sf_writer, key)
    assert outcome.created is True
    assert outcome.target_id == record["Id"]
    assert record["ERP_Invoice_Number__c"] == "INV/2026/09999"
    assert record["Account__c"] == account["Id"]


def test_invoice_upsert_creates_nothing_when_delivered_again_by_a_fresh_writer(
    salesforce_settings: SalesforceSettings, account: dict[str, Any]
) -> None:
    key = unique("sf-inv")
    first = SalesforceWriter(salesforce_settings).deliver(invoice_write(account, key))
    # The crash: Salesforce committed, our bookkeeping did not; a new process delivers the same write.
    again = SalesforceWriter(salesforce_settings).deliver(invoice_write(account, key))
    assert (again.created, again.target_id) == (False, first.target_id)
    assert len(invoices_with_key(SalesforceWriter(salesforce_settings), key)) == 1


def test_invoice_upsert_updates_the_same_record_when_a_later_write_names_its_key(
    sf_writer: SalesforceWriter, account: dict[str, Any]
) -> None:
    key = unique("sf-inv")
    created = sf_writer.deliver(invoice_write(account, key))
    payment = write("salesforce", "Invoice__c", "upsert", unique("payment-event"),
                    {"Revloop_Key__c": key, "fields": {"Payment_Status__c": "Paid",
                                                       "Paid_At__c": "2026-03-01T10:00:00.000+0000"}})
    updated = sf_writer.deliver(payment)
    assert (updated.created, updated.target_id) == (False, created.target_id)
    assert invoices_with_key(sf_writer, key)[0]["Payment_Status__c"] == "Paid"


def test_invoice_upsert_is_parked_with_the_vendor_code_when_a_field_is_unknown(
    sf_writer: SalesforceWriter, account: dict[str, Any]
) -> None:
    with pytest.raises(PermanentError) as caught:
        sf_writer.deliver(invoice_write(account, unique("sf-inv"), Not_A_Field__c="x"))
    assert caught.value.code == "INVALID_FIELD"
    assert "Not_A_Field__c" in str(caught.value)
    assert caught.value.http_status == 400


def test_collection_upsert_of_450_writes_uses_3_calls_and_maps_each_result_when_some_records_fail(
    sf_writer: SalesforceWriter, salesforce_sandbox: RunningSandbox, account: dict[str, Any]
) -> None:
    batch = unique("batch")
    writes = [invoice_write(account, f"{batch}-{n}") for n in range(450)]
    bad = {7, 201, 449}
    for n in bad:
        writes[n] = invoice_write(account, f"{batch}-{n}", Payment_Status__c="Bogus")
    assert sf_writer.sf is not None  # log in first: the token request is not part of the batch
    salesforce_sandbox.admin("POST", "counters/reset")
    results = sf_writer.deliver_many(writes)
    counters = salesforce_sandbox.admin("GET", "counters")
    assert counters["requests_total"] == 3
    assert len(results) == 450
    for n, result in enumerate(results):
        if n in bad:
            assert isinstance(result, PermanentError)
            assert result.code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        else:
            assert isinstance(result, DeliveryOutcome) and result.created is True
    assert invoices_with_key(sf_writer, f"{batch}-200")[0]["Id"] == results[200].target_id  # type: ignore[union-attr]

    again = sf_writer.deliver_many(writes[:10])
    assert [r.created for r in again if isinstance(r, DeliveryOutcome)] == [False] * 9


def test_collection_upsert_sends_a_repeated_key_in_a_later_call_when_one_batch_holds_it_twice(
    sf_writer: SalesforceWriter, salesforce_sandbox: RunningSandbox, account: dict[str, Any]
) -> None:
    key = unique("sf-inv")
    writes = [invoice_write(account, key), invoice_write(account, unique("sf-inv")),
              invoice_write(account, key, Payment_Status__c="Paid")]
    assert sf_writer.sf is not None  # logged in before the faults start
    salesforce_sandbox.admin("POST", "counters/reset")
    results = sf_writer.deliver_many(writes)
    assert salesforce_sandbox.admin("GET", "counters")["requests_total"] == 2
    assert [r.created for r in results] == [True, True, False]  # type: ignore[union-attr]
    assert invoices_with_key(sf_writer, key)[0]["Payment_Status__c"] == "Paid"


def test_collection_upsert_gives_every_write_the_call_error_when_the_whole_call_fails(
    sf_writer: SalesforceWriter, salesforce_sandbox: RunningSandbox, account: dict[str, Any]
) -> None:
    assert sf_writer.sf is not None  # logged in before the faults start
    with faults(salesforce_sandbox, lock_error_rate=1.0):
        results = sf_writer.deliver_many([invoice_write(account, unique("sf-inv")) for _ in range(3)])
    assert all(isinstance(r, RetryableError) and r.code == "UNABLE_TO_LOCK_ROW" for r in results)


# ---- renewal Opportunity --------------------------------------------------------------------------------


def unlinked_subscription(writer: SalesforceWriter) -> dict[str, Any]:
    records = writer.sf.query("SELECT Id, Name, Account__c, End_Date__c FROM Subscription__c "
                              "WHERE Renewal_Opportunity__c = null ORDER BY Id LIMIT 50")["records"]
    taken = {r["Id"] for r in writer.sf.query(
        "SELECT Id FROM Subscription__c WHERE Renewal_Opportunity__c != null")["records"]}
    return next(r for r in records if r["Id"] not in taken and r["Id"] not in _used)


_used: set[str] = set()


def renewal_write(subscription: dict[str, Any], key: str) -> Any:
    _used.add(subscription["Id"])
    return write("salesforce", "Opportunity", "create", key, {
        "subscription_id": subscription["Id"],
        "fields": {"Name": f"{subscription['Name']} renewal", "AccountId": subscription["Account__c"],
                   "StageName": "Prospecting", "CloseDate": subscription["End_Date__c"] or "2026-12-31",
                   "Amount": 12000, "Type": "Renewal"},
    }, flow="renewal")


def renewals_marked(writer: SalesforceWriter, account_id: str, key: str) -> list[str]:
    records = writer.sf.query_all(f"SELECT Id, Description FROM Opportunity WHERE AccountId = '{account_id}' "
                                  "AND Type = 'Renewal'")["records"]
    return [r["Id"] for r in records if f"{RENEWAL_MARKER}{key}" in (r["Description"] or "")]


def test_renewal_creates_one_opportunity_and_links_the_subscription_when_delivered_twice(
    sf_writer: SalesforceWriter,
) -> None:
    subscription = unlinked_subscription(sf_writer)
    key = unique("renewal")
    first = sf_writer.deliver(renewal_write(subscription, key))
    second = sf_writer.deliver(renewal_write(subscription, key))
    linked = sf_writer.sf.Subscription__c.get(subscription["Id"])["Renewal_Opportunity__c"]
    assert first.created is True
    assert (second.created, second.target_id, second.detail["found_by"]) == (False, first.target_id, "link")
    assert linked == first.target_id
    assert renewals_marked(sf_writer, subscription["Account__c"], key) == [first.target_id]


def test_renewal_finds_its_opportunity_by_marker_and_links_it_when_a_crash_came_before_the_link(
    salesforce_settings: SalesforceSettings,
) -> None:
    writer = SalesforceWriter(salesforce_settings)
    subscription = unlinked_subscription(writer)
    key = unique("renewal")
    first = writer.deliver(renewal_write(subscription, key))
    # The crash: the Opportunity exists but the subscription was never linked to it.
    writer.sf.Subscription__c.update(subscription["Id"], {"Renewal_Opportunity__c": None})
    fresh = SalesforceWriter(salesforce_settings)
    again = fresh.deliver(renewal_write(subscription, key))
    assert (again.created, again.target_id, again.detail["found_by"]) == (False, first.target_id, "marker")
    assert fresh.sf.Subscription__c.get(subscription["Id"])["Renewal_Opportunity__c"] == first.target_id
    assert len(renewals_marked(fresh, subscription["Account__c"], key)) == 1


def test_account_update_changes_master_data_fields_when_delivered(
    sf_writer: SalesforceWriter, account: dict[str, Any]
) -> None:
    outcome = sf_writer.deliver(write("salesforce", "Account", "update", unique("master"),
                                      {"id": account["Id"], "fields": {"BillingCity": "Singapore"}}))
    assert (outcome.target_id, outcome.created) == (account["Id"], False)
    assert sf_writer.sf.Account.get(account["Id"])["BillingCity"] == "Singapore"


# ---- error classes ------------------------------------------------------------------------------------


def test_server_errors_are_retryable_when_the_org_answers_5xx(
    sf_writer: SalesforceWriter, salesforce_sandbox: RunningSandbox, account: dict[str, Any]
) -> None:
    assert sf_writer.sf is not None  # logged in before the faults start
    with faults(salesforce_sandbox, server_error_rate=1.0), pytest.raises(RetryableError) as caught:
        sf_writer.deliver(invoice_write(account, unique("sf-inv")))
    assert caught.value.http_status in (500, 503)
    assert caught.value.code in ("SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION")


def test_lock_conflicts_are_retryable_when_the_org_answers_unable_to_lock_row(
    sf_writer: SalesforceWriter, salesforce_sandbox: RunningSandbox, account: dict[str, Any]
) -> None:
    assert sf_writer.sf is not None  # logged in before the faults start
    with faults(salesforce_sandbox, lock_error_rate=1.0), pytest.raises(RetryableError) as caught:
        sf_writer.deliver(invoice_write(account, unique("sf-inv")))
    assert not isinstance(caught.value, PermanentError)
    assert caught.value.code == "UNABLE_TO_LOCK_ROW"


def test_rate_limits_wait_for_retry_after_when_the_org_answers_request_limit_exceeded(
    sf_writer: SalesforceWriter, salesforce_sandbox: RunningSandbox, account: dict[str, Any]
) -> None:
    assert sf_writer.sf is not None  # logged in before the faults start
    with faults(salesforce_sandbox, rate_limit_rate=1.0, retry_after_seconds=7), \
            pytest.raises(RateLimited) as caught:
        sf_writer.deliver(invoice_write(account, unique("sf-inv")))
    assert caught.value.code == "REQUEST_LIMIT_EXCEEDED"
    assert caught.value.retry_after_seconds == 7


def test_expired_sessions_ask_for_a_refresh_and_succeed_after_it_when_the_token_times_out(
    sf_writer: SalesforceWriter, salesforce_sandbox: RunningSandbox, account: dict[str, Any]
) -> None:
    touch = write("salesforce", "Account", "update", unique("master"),
                  {"id": account["Id"], "fields": {"Website": "https://example.com"}})
    assert sf_writer.sf is not None  # logged in before the faults start
    expired: SessionExpired | None = None
    with faults(salesforce_sandbox, token_ttl_seconds=1):
        deadline = time.monotonic() + 15
        while expired is None and time.monotonic() < deadline:
            try:
                sf_writer.deliver(touch)
            except SessionExpired as exc:
                expired = exc
            else:
                time.sleep(0.2)
        assert expired is not None and expired.code == "INVALID_SESSION_ID"
        assert expired.http_status == 401
    sf_writer.refresh_credentials()
    assert sf_writer.deliver(touch).target_id == account["Id"]
