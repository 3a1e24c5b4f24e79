"""API limits, injected faults and malformed requests: always Salesforce's status and error codes, never a crash."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest
from simple_salesforce import Salesforce, SalesforceGeneralError, SalesforceMalformedRequest, SalesforceRefusedRequest

from tests.sandbox_harness import RunningSandbox
from tests.sandboxes.salesforce.conftest import error_code


def _trust(sandbox: RunningSandbox) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(sandbox.ca_file))


def _raw(sandbox: RunningSandbox, sf: Salesforce) -> httpx.Client:
    """A plain HTTP client with the same token, for requests simple-salesforce cannot express."""
    return httpx.Client(
        base_url=f"{sandbox.base_url}/services/data/v62.0/",
        verify=_trust(sandbox),
        headers={"Authorization": f"Bearer {sf.session_id}"},
        timeout=30,
    )


@pytest.fixture()
def budget(sandbox: RunningSandbox) -> Iterator[None]:
    saved = sandbox.admin("GET", "salesforce/api-budget")
    yield
    sandbox.admin("PUT", "salesforce/api-budget", {"max": saved["max"], "used": saved["used"]})


def test_limits_and_usage_header_are_reported_when_calls_are_made(sf: Salesforce) -> None:
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 5_000_000
    assert 0 < limits["DailyApiRequests"]["Remaining"] < 5_000_000
    assert {"DailyBulkV2QueryJobs", "DailyBulkV2QueryFileStorageMB"} <= set(limits)
    sf.query("SELECT COUNT() FROM Account")
    usage = sf.api_usage["api-usage"]
    assert usage.total == 5_000_000 and usage.used >= 2
    sf.query("SELECT COUNT() FROM Account")
    assert sf.api_usage["api-usage"].used == usage.used + 1


def test_requests_are_refused_with_request_limit_exceeded_when_budget_is_spent(
    sandbox: RunningSandbox, sf: Salesforce, budget: None
) -> None:
    sandbox.admin("PUT", "salesforce/api-budget", {"max": 100, "used": 99})
    sf.query("SELECT COUNT() FROM Account")
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT COUNT() FROM Account")
    assert refused.value.status == 403
    assert refused.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]


def test_write_gets_unable_to_lock_row_when_lock_fault_is_certain(
    sandbox: RunningSandbox, sf: Salesforce, no_faults: None
) -> None:
    sandbox.admin("PUT", "faults", {"lock_error_rate": 1.0})
    with pytest.raises(SalesforceMalformedRequest) as locked:
        sf.Account.create({"Name": "Locked out"})
    assert error_code(locked.value) == "UNABLE_TO_LOCK_ROW"
    assert locked.value.content[0]["message"].startswith("unable to obtain exclusive access to this record")
    assert sf.query("SELECT COUNT() FROM Account")["done"] is True  # reads are never locked


def test_server_errors_carry_salesforce_bodies_when_service_is_down(
    sandbox: RunningSandbox, sf: Salesforce, no_faults: None
) -> None:
    sandbox.admin("PUT", "faults", {"profile": "down"})
    for _ in range(4):
        with pytest.raises(SalesforceGeneralError) as failed:
            sf.query("SELECT COUNT() FROM Account")
        assert failed.value.status in (500, 503)
        assert error_code(failed.value) in ("UNKNOWN_EXCEPTION", "SERVER_UNAVAILABLE")


def test_rate_limit_fault_answers_request_limit_exceeded_with_retry_after_when_injected(
    sandbox: RunningSandbox, sf: Salesforce, no_faults: None
) -> None:
    sandbox.admin("PUT", "faults", {"rate_limit_rate": 1.0, "retry_after_seconds": 3})
    with pytest.raises(SalesforceRefusedRequest) as limited:
        sf.query("SELECT COUNT() FROM Account")
    assert error_code(limited.value) == "REQUEST_LIMIT_EXCEEDED"
    with _raw(sandbox, sf) as raw:
        response = raw.get("limits")
    assert response.status_code == 403 and response.headers["Retry-After"] == "3"


def test_malformed_json_is_answered_with_json_parser_error_when_body_is_broken(
    sandbox: RunningSandbox, sf: Salesforce
) -> None:
    with _raw(sandbox, sf) as raw:
        broken = raw.post("sobjects/Account", content=b'{"Name": ', headers={"Content-Type": "application/json"})
        assert broken.status_code == 400
        assert broken.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
        not_object = raw.post("sobjects/Account", content=b"[1, 2]")
        assert not_object.status_code == 400 and not_object.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
        wrong_method = raw.put("sobjects/Account")
        assert wrong_method.status_code == 405 and wrong_method.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"
        unknown = raw.get("no/such/resource")
        assert unknown.status_code == 404 and unknown.json()[0]["errorCode"] == "NOT_FOUND"
        bad_locator = raw.get("query/01gDOESNOTEXISTAAA-2000")
        assert bad_locator.status_code == 400 and bad_locator.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
        no_token = httpx.get(f"{sandbox.base_url}/services/data/v62.0/limits", verify=_trust(sandbox))
        assert no_token.status_code == 401 and no_token.json()[0]["errorCode"] == "INVALID_SESSION_ID"
        assert raw.get("limits").headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_versions_are_listed_and_old_bulk_api_is_disabled_when_clients_probe(
    sandbox: RunningSandbox, sf: Salesforce
) -> None:
    versions = httpx.get(f"{sandbox.base_url}/services/data/", verify=_trust(sandbox)).json()
    assert versions[-1] == {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"}
    older = Salesforce(instance_url=sandbox.base_url, session_id=sf.session_id, session=sf.session, version="58.0")
    assert older.query("SELECT COUNT() FROM Product2")["totalSize"] == 12
    async_api = httpx.post(
        f"{sandbox.base_url}/services/async/62.0/job",
        verify=_trust(sandbox),
        headers={"X-SFDC-Session": sf.session_id, "Content-Type": "application/json"},
        content=b"{}",
    )
    assert async_api.status_code == 400
    assert async_api.json()["exceptionCode"] == "FeatureNotEnabled"
