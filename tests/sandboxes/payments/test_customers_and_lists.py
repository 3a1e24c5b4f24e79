"""Customers CRUD and Stripe's list semantics: envelope, limit, cursors, created filters, auto paging."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
import stripe

from tests.sandbox_harness import RunningSandbox
from tests.sandboxes.payments.conftest import make_client


def test_customer_crud_round_trips_when_created_updated_and_deleted(client: stripe.StripeClient) -> None:
    created = client.v1.customers.create(params={
        "name": "Sakura Trading K.K.", "email": "billing@sakura.example", "phone": "+81 3 1234 5678",
        "address": {"line1": "1-1 Marunouchi", "city": "Tokyo", "postal_code": "100-0005", "country": "JP"},
        "metadata": {"salesforce_account_id": "001000000000001AAA"},
    })
    assert created.id.startswith("cus_") and created.object == "customer" and created.livemode is False
    assert created.address.city == "Tokyo" and created.metadata["salesforce_account_id"] == "001000000000001AAA"

    updated = client.v1.customers.update(created.id, params={"email": "ap@sakura.example",
                                                             "metadata": {"salesforce_account_id": "", "tier": "gold"}})
    assert updated.email == "ap@sakura.example"
    assert updated.metadata.to_dict() == {"tier": "gold"}
    assert client.v1.customers.retrieve(created.id).email == "ap@sakura.example"

    deleted = client.v1.customers.delete(created.id)
    assert deleted.deleted is True
    assert client.v1.customers.retrieve(created.id).deleted is True
    listed = [c.id for c in client.v1.customers.list(params={"email": "ap@sakura.example"}).data]
    assert created.id not in listed


def test_list_returns_stripe_envelope_newest_first_when_listing_customers(client: stripe.StripeClient) -> None:
    page = client.v1.customers.list(params={"limit": 5})
    assert page.object == "list" and page.url == "/v1/customers" and len(page.data) == 5 and page.has_more
    created = [c.created for c in page.data]
    assert created == sorted(created, reverse=True)


def test_auto_paging_iter_walks_every_page_when_more_than_a_hundred_customers(client: stripe.StripeClient) -> None:
    marker = f"bulk-{time.time_ns()}"
    made = {client.v1.customers.create(params={"name": f"Bulk {i}", "metadata": {"batch": marker}}).id
            for i in range(105)}
    seen = [c.id for c in client.v1.customers.list(params={"limit": 100}).auto_paging_iter()]
    assert len(seen) == len(set(seen)), "no customer may appear twice across pages"
    assert made <= set(seen)
    assert len(seen) >= 105 + 90  # plus the seeded customers


def test_cursors_page_forward_and_back_when_starting_after_and_ending_before(client: stripe.StripeClient) -> None:
    first = client.v1.customers.list(params={"limit": 4})
    second = client.v1.customers.list(params={"limit": 4, "starting_after": first.data[-1].id})
    assert not {c.id for c in first.data} & {c.id for c in second.data}
    back = client.v1.customers.list(params={"limit": 4, "ending_before": second.data[0].id})
    assert [c.id for c in back.data] == [c.id for c in first.data]


@pytest.mark.parametrize("path", ["/v1/events", "/v1/invoices", "/v1/charges", "/v1/customers"])
def test_listed_objects_are_the_bytes_a_retrieve_answers_when_paged(
    sandbox: RunningSandbox, env: dict[str, str], path: str
) -> None:
    headers = {"Authorization": f"Bearer {env['REVLOOP_PAYMENTS_SECRET_KEY']}"}
    with httpx.Client(base_url=sandbox.base_url, headers=headers, trust_env=False) as http:
        page = http.get(path, params={"limit": 5})
        listed = orjson.loads(page.content)["data"]
        assert len(listed) == 5
        for item in listed:
            retrieved = http.get(f"{path}/{item['id']}").content
            assert retrieved in page.content  # spliced as stored: the same serialization, byte for byte
            assert orjson.loads(retrieved) == item


def test_created_filters_bound_the_list_when_gte_and_lt_given(client: stripe.StripeClient) -> None:
    everything = list(client.v1.customers.list(params={"limit": 100}).auto_paging_iter())
    times = sorted({c.created for c in everything})
    low, high = times[len(times) // 4], times[3 * len(times) // 4]
    bounded = list(client.v1.customers.list(params={"created": {"gte": low, "lt": high}, "limit": 100})
                   .auto_paging_iter())
    assert bounded and all(low <= c.created < high for c in bounded)
    assert len(bounded) == sum(1 for c in everything if low <= c.created < high)
    exact = client.v1.customers.list(params={"created": low})
    assert exact.data and all(c.created == low for c in exact.data)


@pytest.mark.parametrize("limit", [0, 101])
def test_list_rejects_limit_when_out_of_range(client: stripe.StripeClient, limit: int) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.list(params={"limit": limit})
    assert info.value.http_status == 400 and info.value.param == "limit"


def test_retrieve_answers_resource_missing_when_id_unknown(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.retrieve("cus_doesnotexist")
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
    assert info.value.user_message == "No such customer: 'cus_doesnotexist'"


def test_create_answers_parameter_unknown_when_param_not_in_api(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.create(params={"nickname": "x"})  # type: ignore[typeddict-unknown-key]
    assert info.value.http_status == 400 and info.value.code == "parameter_unknown"
    assert info.value.param == "nickname"


def test_create_answers_parameter_missing_when_required_param_absent(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(params={"currency": "sgd"})  # type: ignore[typeddict-item]
    assert info.value.code == "parameter_missing" and info.value.param == "amount"


def test_legacy_module_globals_work_when_api_base_set(sandbox, env) -> None:  # type: ignore[no-untyped-def]
    saved = (stripe.api_key, stripe.api_base)
    stripe.api_key, stripe.api_base = env["REVLOOP_PAYMENTS_SECRET_KEY"], sandbox.base_url
    try:
        customer = stripe.Customer.create(name="Legacy Pte Ltd")
        assert stripe.Customer.retrieve(customer.id).name == "Legacy Pte Ltd"
        assert stripe.Account.retrieve().id == env["REVLOOP_PAYMENTS_ACCOUNT_ID"]
    finally:
        stripe.api_key, stripe.api_base = saved


def test_seeded_customers_carry_cross_system_metadata_when_demo_scale(client: stripe.StripeClient) -> None:
    seeded = [c for c in client.v1.customers.list(params={"limit": 100}).auto_paging_iter()
              if "salesforce_account_id" in c.metadata]
    assert len(seeded) >= 90
    assert all(c.metadata["salesforce_account_id"].startswith("001") for c in seeded)


def test_search_finds_customer_when_querying_email(client: stripe.StripeClient, sandbox) -> None:  # type: ignore[no-untyped-def]
    made = client.v1.customers.create(params={"email": "search-me@example.com", "metadata": {"k": "v"}})
    found = client.v1.customers.search(params={"query": "email:'search-me@example.com' AND metadata['k']:'v'"})
    assert [c.id for c in found.data] == [made.id]
    reader = make_client(sandbox, sandbox.env()["REVLOOP_PAYMENTS_READER_KEY"])
    assert reader.v1.customers.retrieve(made.id).email == "search-me@example.com"
