"""OAuth 2.0: client-credentials, refresh-token and password grants, token expiry, refresh-token rotation."""

from __future__ import annotations

import time

import pytest
from simple_salesforce import Salesforce, SalesforceExpiredSession

from tests.sandbox_harness import RunningSandbox, start_sandbox
from tests.sandboxes.salesforce.conftest import client_for, error_code, request_token, stop_sandbox


def _refresh(sandbox: RunningSandbox, app: dict[str, str], refresh_token: str):  # type: ignore[no-untyped-def]
    return request_token(
        sandbox,
        {
            "grant_type": "refresh_token",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "refresh_token": refresh_token,
        },
    )


def _fresh_refresh_token(sandbox: RunningSandbox, app: str = "revloop-sync") -> str:
    return sandbox.admin("POST", "salesforce/refresh-token", {"app": app})["refresh_token"]


def test_client_credentials_grant_returns_salesforce_token_response_when_secret_is_right(
    sandbox: RunningSandbox, apps: dict[str, dict[str, str]]
) -> None:
    app = apps["revloop-sync"]
    response = request_token(
        sandbox,
        {"grant_type": "client_credentials", "client_id": app["client_id"], "client_secret": app["client_secret"]},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == sandbox.base_url
    assert body["id"].endswith(app["user_id"])
    assert body["issued_at"].isdigit() and len(body["issued_at"]) == 13
    assert {"access_token", "signature", "scope"} <= set(body)
    assert "refresh_token" not in body
    assert client_for(sandbox, body["access_token"]).query("SELECT COUNT() FROM Account")["totalSize"] > 0


def test_token_endpoint_refuses_when_client_is_unknown_or_secret_wrong(
    sandbox: RunningSandbox, apps: dict[str, dict[str, str]]
) -> None:
    unknown = request_token(sandbox, {"grant_type": "client_credentials", "client_id": "nope", "client_secret": "x"})
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "invalid_client_id"
    wrong = request_token(
        sandbox,
        {"grant_type": "client_credentials", "client_id": apps["revloop-sync"]["client_id"], "client_secret": "x"},
    )
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "invalid_client", "error_description": "invalid client credentials"}
    grant = request_token(sandbox, {"grant_type": "urn:ietf:params:oauth:grant-type:saml2-bearer"})
    assert grant.json()["error"] == "unsupported_grant_type"


def test_refresh_grant_logs_in_when_initial_refresh_token_from_env_is_used(
    sandbox: RunningSandbox, env: dict[str, str], apps: dict[str, dict[str, str]]
) -> None:
    app = {"client_id": env["REVLOOP_SALESFORCE_CLIENT_ID"], "client_secret": env["REVLOOP_SALESFORCE_CLIENT_SECRET"]}
    response = _refresh(sandbox, app, env["REVLOOP_SALESFORCE_REFRESH_TOKEN"])
    assert response.status_code == 200
    body = response.json()
    assert body["refresh_token"] != env["REVLOOP_SALESFORCE_REFRESH_TOKEN"]
    assert client_for(sandbox, body["access_token"]).Account.describe()["name"] == "Account"


def test_password_grant_logs_in_when_username_and_password_match(
    sandbox: RunningSandbox, apps: dict[str, dict[str, str]]
) -> None:
    app = apps["revloop-reader"]
    form = {
        "grant_type": "password",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "username": app["username"],
        "password": app["password"],
    }
    assert request_token(sandbox, form).status_code == 200
    refused = request_token(sandbox, {**form, "password": "wrong"})
    assert refused.json() == {"error": "invalid_grant", "error_description": "authentication failure"}


def test_expired_token_gets_invalid_session_id_then_refresh_and_retry_succeeds_when_tokens_expire(
    sandbox: RunningSandbox, apps: dict[str, dict[str, str]]
) -> None:
    app = apps["revloop-sync"]
    first = _refresh(sandbox, app, _fresh_refresh_token(sandbox)).json()
    sf = client_for(sandbox, first["access_token"])
    sf.query("SELECT Id FROM Account LIMIT 1")
    sandbox.admin("POST", "salesforce/tokens/expire")
    with pytest.raises(SalesforceExpiredSession) as expired:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert expired.value.status == 401
    assert expired.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    renewed = _refresh(sandbox, app, first["refresh_token"]).json()
    assert client_for(sandbox, renewed["access_token"]).query("SELECT Id FROM Account LIMIT 1")["done"] is True


def test_token_expires_after_ttl_when_short_tokens_fault_is_set(
    sandbox: RunningSandbox, apps: dict[str, dict[str, str]], no_faults: None
) -> None:
    app = apps["revloop-reader"]
    body = request_token(
        sandbox,
        {"grant_type": "client_credentials", "client_id": app["client_id"], "client_secret": app["client_secret"]},
    ).json()
    sf = client_for(sandbox, body["access_token"])
    sandbox.admin("PUT", "faults", {"token_ttl_seconds": 1})
    deadline = time.monotonic() + 10
    while True:
        try:
            sf.query("SELECT COUNT() FROM Account")
        except SalesforceExpiredSession as exc:
            assert error_code(exc) == "INVALID_SESSION_ID"
            break
        assert time.monotonic() < deadline, "token never expired"
        time.sleep(0.2)


def test_reused_refresh_token_is_refused_and_revokes_the_chain_when_presented_twice(
    sandbox: RunningSandbox, apps: dict[str, dict[str, str]]
) -> None:
    app = apps["revloop-sync"]
    original = _fresh_refresh_token(sandbox)
    first = _refresh(sandbox, app, original).json()
    second = _refresh(sandbox, app, first["refresh_token"]).json()
    descendant_client = client_for(sandbox, second["access_token"])
    descendant_client.query("SELECT COUNT() FROM Account")

    replay = _refresh(sandbox, app, original)
    assert replay.status_code == 400
    assert replay.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}
    # Every token descended from the replayed one is now dead, access tokens included.
    assert _refresh(sandbox, app, second["refresh_token"]).json()["error"] == "invalid_grant"
    with pytest.raises(SalesforceExpiredSession):
        descendant_client.query("SELECT COUNT() FROM Account")


def test_userinfo_describes_the_integration_user_when_token_is_valid(
    sandbox: RunningSandbox, apps: dict[str, dict[str, str]], sf: Salesforce
) -> None:
    info = sf.oauth2("userinfo")
    assert info["user_id"] == apps["revloop-sync"]["user_id"]
    assert info["preferred_username"] == apps["revloop-sync"]["username"]


def test_records_tokens_and_budget_survive_when_server_restarts(tmp_path_factory: pytest.TempPathFactory) -> None:
    data_dir = tmp_path_factory.mktemp("salesforce-restart")
    first = start_sandbox("salesforce", data_dir, scale="empty")
    try:
        apps = first.admin("GET", "salesforce/apps")["apps"]
        body = request_token(
            first,
            {
                "grant_type": "client_credentials",
                "client_id": apps["revloop-sync"]["client_id"],
                "client_secret": apps["revloop-sync"]["client_secret"],
            },
        ).json()
        record_id = client_for(first, body["access_token"]).Account.create({"Name": "Survivor"})["id"]
    finally:
        stop_sandbox(first)
    second = start_sandbox("salesforce", data_dir, scale="empty", port=first.config.port)
    try:
        assert second.admin("GET", "salesforce/apps")["apps"] == apps
        sf = client_for(second, body["access_token"])
        assert sf.Account.get(record_id)["Name"] == "Survivor"
        daily = sf.limits()["DailyApiRequests"]
        assert daily["Max"] - daily["Remaining"] >= 3  # the first run's calls still count
    finally:
        stop_sandbox(second)
