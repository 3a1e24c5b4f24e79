"""Injected faults in Stripe's own error shapes, malformed input, and state surviving a restart."""

from __future__ import annotations

import pytest
import stripe

from tests.sandbox_harness import start_sandbox
from tests.sandboxes.payments.conftest import make_client, raw


def test_injected_500_is_api_error_with_retry_hint_when_server_error_rate_is_one(
    sandbox, env, no_faults
) -> None:  # type: ignore[no-untyped-def]
    sandbox.admin("PUT", "faults", {"server_error_rate": 1.0})
    with pytest.raises(stripe.APIError) as info:
        make_client(sandbox, env["REVLOOP_PAYMENTS_SECRET_KEY"]).v1.customers.list()
    assert info.value.http_status == 500 and info.value.headers["Stripe-Should-Retry"] == "true"
    assert info.value.json_body["error"]["type"] == "api_error"


def test_rate_limit_answers_429_with_retry_after_when_rate_limited(sandbox, env, no_faults) -> None:  # type: ignore[no-untyped-def]
    sandbox.admin("PUT", "faults", {"rate_limit_rate": 1.0, "retry_after_seconds": 2})
    with pytest.raises(stripe.RateLimitError) as info:
        make_client(sandbox, env["REVLOOP_PAYMENTS_SECRET_KEY"]).v1.customers.list()
    assert info.value.http_status == 429 and info.value.headers["Retry-After"] == "2"
    assert info.value.json_body["error"]["code"] == "rate_limit"


def test_sdk_retries_through_transient_faults_when_max_network_retries_set(sandbox, env, no_faults) -> None:  # type: ignore[no-untyped-def]
    sandbox.admin("PUT", "faults", {"rate_limit_rate": 0.3, "server_error_rate": 0.2})
    sandbox.admin("POST", "counters/reset")
    retrying = make_client(sandbox, env["REVLOOP_PAYMENTS_SECRET_KEY"], retries=8)
    created = [retrying.v1.customers.create(params={"name": f"Retry {i}"}) for i in range(4)]
    assert len({c.id for c in created}) == 4
    statuses = sandbox.admin("GET", "counters")["responses_by_status"]
    assert statuses.get("429", 0) + statuses.get("500", 0) > 0


def test_lock_timeout_is_429_when_lock_error_rate_is_one(sandbox, env, no_faults) -> None:  # type: ignore[no-untyped-def]
    sandbox.admin("PUT", "faults", {"lock_error_rate": 1.0})
    with pytest.raises(stripe.RateLimitError) as info:
        make_client(sandbox, env["REVLOOP_PAYMENTS_SECRET_KEY"]).v1.customers.create(params={"name": "Locked"})
    assert info.value.json_body["error"]["code"] == "lock_timeout"


@pytest.mark.parametrize(("body", "content_type"), [
    (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
    (b"metadata=1&metadata[a]=2", "application/x-www-form-urlencoded"),
    (b"a]b[=1", "application/x-www-form-urlencoded"),
    (b'{"name": "json"}', "application/json"),
])
def test_malformed_body_answers_stripe_400_when_posted(sandbox, env, body: bytes, content_type: str) -> None:  # type: ignore[no-untyped-def]
    response = raw(sandbox, env["REVLOOP_PAYMENTS_SECRET_KEY"], "POST", "/v1/customers", content=body,
                   headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["Request-Id"].startswith("req_")


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/v1/nonsense", 404),
    ("PUT", "/v1/customers", 404),
    ("GET", "/v1/customers?limit=abc", 400),
    ("GET", "/v1/customers?created[between]=1", 400),
    ("POST", "/v1/payment_intents?amount=abc&currency=sgd", 400),
])
def test_bad_requests_answer_stripe_errors_without_crashing(sandbox, env, method: str, path: str, status: int) -> None:  # type: ignore[no-untyped-def]
    response = raw(sandbox, env["REVLOOP_PAYMENTS_SECRET_KEY"], method, path)
    assert response.status_code == status and "error" in response.json()
    assert sandbox.admin("GET", "health")["status"] == "ok"


def test_every_response_carries_request_id_and_version_when_served(sandbox, env) -> None:  # type: ignore[no-untyped-def]
    response = raw(sandbox, env["REVLOOP_PAYMENTS_SECRET_KEY"], "GET", "/v1/balance",
                   headers={"Stripe-Version": "2024-06-20"})
    assert response.headers["Request-Id"].startswith("req_") and response.headers["Stripe-Version"] == "2024-06-20"
    assert raw(sandbox, "", "GET", "/v1/balance").status_code == 401


def test_data_survives_restart_when_server_stopped_and_started(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = start_sandbox("payments", tmp_path)
    try:
        env = first.env()
        customer = make_client(first, env["REVLOOP_PAYMENTS_SECRET_KEY"]).v1.customers.create(
            params={"name": "Durable Pte Ltd"})
        seeded = first.admin("GET", "health")["records"]
    finally:
        first.stop()
    second = start_sandbox("payments", tmp_path, port=first.config.port)
    try:
        assert second.env() == env
        client = make_client(second, env["REVLOOP_PAYMENTS_SECRET_KEY"])
        assert client.v1.customers.retrieve(customer.id).name == "Durable Pte Ltd"
        assert second.admin("GET", "health")["records"]["customer"] == seeded["customer"]
    finally:
        second.stop()
