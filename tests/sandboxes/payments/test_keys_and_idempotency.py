"""Idempotent replays, idempotency errors, restricted keys and key rolling."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import stripe

from tests.sandboxes.payments.conftest import make_client, raw


def test_replay_returns_same_object_when_idempotency_key_reused(client: stripe.StripeClient) -> None:
    key = str(uuid.uuid4())
    first = client.v1.customers.create(params={"name": "Once Only"}, options={"idempotency_key": key})
    second = client.v1.customers.create(params={"name": "Once Only"}, options={"idempotency_key": key})
    assert first.id == second.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert first.last_response.headers.get("Idempotent-Replayed") is None
    assert second.last_response.request_id == first.last_response.request_id


def test_idempotency_error_when_key_reused_with_other_params(client: stripe.StripeClient) -> None:
    key = str(uuid.uuid4())
    client.v1.customers.create(params={"name": "First"}, options={"idempotency_key": key})
    with pytest.raises(stripe.IdempotencyError) as info:
        client.v1.customers.create(params={"name": "Second"}, options={"idempotency_key": key})
    assert info.value.http_status == 400 and "same parameters" in info.value.user_message


def test_declined_payment_replayed_when_retried_with_same_key(client: stripe.StripeClient) -> None:
    key = str(uuid.uuid4())
    params = {"amount": 700, "currency": "sgd", "payment_method": "pm_card_chargeDeclined", "confirm": True}
    with pytest.raises(stripe.CardError) as first:
        client.v1.payment_intents.create(params=params, options={"idempotency_key": key})  # type: ignore[arg-type]
    with pytest.raises(stripe.CardError) as second:
        client.v1.payment_intents.create(params=params, options={"idempotency_key": key})  # type: ignore[arg-type]
    assert first.value.error.payment_intent.id == second.value.error.payment_intent.id
    assert second.value.headers.get("Idempotent-Replayed") == "true"


def test_key_longer_than_255_rejected(sandbox, env) -> None:  # type: ignore[no-untyped-def]
    response = raw(sandbox, env["REVLOOP_PAYMENTS_SECRET_KEY"], "POST", "/v1/customers",
                   headers={"Idempotency-Key": "k" * 256}, data={"name": "x"})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"


def test_concurrent_request_gets_409_when_same_key_in_flight(sandbox, env) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> int:
        release = asyncio.Event()

        async def slow_body():  # type: ignore[no-untyped-def]
            yield b"name=slow"
            await release.wait()
            yield b"&description=done"

        headers = {"Authorization": f"Bearer {env['REVLOOP_PAYMENTS_SECRET_KEY']}", "Idempotency-Key": "inflight-1",
                   "Content-Type": "application/x-www-form-urlencoded"}
        async with httpx.AsyncClient(base_url=sandbox.base_url, timeout=30) as http:
            first = asyncio.create_task(http.post("/v1/customers", content=slow_body(), headers=headers))
            await asyncio.sleep(0.3)  # let the first request's headers reach the server (not a wait on state)
            second = await http.post("/v1/customers", content=b"name=slow&description=done", headers=headers)
            release.set()
            assert (await first).status_code == 200
            assert second.json()["error"]["type"] == "idempotency_error"
            return second.status_code

    assert asyncio.run(scenario()) == 409


def test_reader_key_reads_but_cannot_write(sandbox, env) -> None:  # type: ignore[no-untyped-def]
    reader = make_client(sandbox, env["REVLOOP_PAYMENTS_READER_KEY"])
    assert reader.v1.customers.list(params={"limit": 1}).data
    with pytest.raises(stripe.PermissionError) as info:
        reader.v1.customers.create(params={"name": "Nope"})
    assert info.value.http_status == 403 and "does not have the required permissions" in info.value.user_message


def test_restricted_key_refused_when_resource_not_permitted(sandbox, client: stripe.StripeClient) -> None:  # type: ignore[no-untyped-def]
    key = sandbox.admin("POST", "payments/keys", {"name": "no-refunds", "permissions": {"*": "write",
                                                                                       "refunds": "none"}})
    restricted = make_client(sandbox, key["secret"])
    intent = restricted.v1.payment_intents.create(params={"amount": 800, "currency": "sgd",
                                                          "payment_method": "pm_card_visa", "confirm": True})
    with pytest.raises(stripe.PermissionError) as info:
        restricted.v1.refunds.create(params={"payment_intent": intent.id})
    assert "rak_refund_write" in info.value.user_message


def test_invalid_key_answers_401_with_redacted_key(sandbox) -> None:  # type: ignore[no-untyped-def]
    bad = make_client(sandbox, "sk_test_thisisnotarealkeyabcd")
    with pytest.raises(stripe.AuthenticationError) as info:
        bad.v1.customers.list()
    assert info.value.http_status == 401
    assert info.value.user_message == "Invalid API Key provided: sk_test_****abcd"


def test_rolled_key_works_until_expiry_then_refused(sandbox, env) -> None:  # type: ignore[no-untyped-def]
    key = sandbox.admin("POST", "payments/keys", {"name": "to-roll", "permissions": {"*": "read"}})
    rolled = sandbox.admin("POST", "payments/keys/roll", {"key": key["secret"], "expires_in_seconds": 3600})
    old, new = make_client(sandbox, key["secret"]), make_client(sandbox, rolled["secret"])
    assert old.v1.customers.list(params={"limit": 1}).data and new.v1.customers.list(params={"limit": 1}).data
    sandbox.admin("POST", "payments/keys/roll", {"key": rolled["secret"], "expires_in_seconds": 0})
    with pytest.raises(stripe.AuthenticationError) as info:
        new.v1.customers.list(params={"limit": 1})
    assert info.value.json_body["error"]["code"] == "api_key_expired"


def test_rolling_secret_key_updates_client_env_and_keeps_old_key_working(sandbox, env) -> None:  # type: ignore[no-untyped-def]
    rolled = sandbox.admin("POST", "payments/keys/roll", {"expires_in_seconds": 3600})
    assert sandbox.env()["REVLOOP_PAYMENTS_SECRET_KEY"] == rolled["secret"]
    assert make_client(sandbox, env["REVLOOP_PAYMENTS_SECRET_KEY"]).v1.balance.retrieve().object == "balance"
    assert make_client(sandbox, rolled["secret"]).v1.balance.retrieve().object == "balance"
