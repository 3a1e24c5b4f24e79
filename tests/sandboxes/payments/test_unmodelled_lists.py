"""Stripe lists this account keeps empty still answer as on Stripe: an empty list, or 404 for an id."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from sandboxes.payments.unmodelled import RESOURCES
from tests.sandbox_harness import RunningSandbox
from tests.sandboxes.payments.conftest import raw

PEER_HEADERS = {"Stripe-Version": "2022-11-15"}
"""What the open-source extractors send (with ``Stripe-Account`` naming the account)."""


def test_empty_list_pages_cleanly_when_nothing_exists(client: stripe.StripeClient) -> None:
    page = client.v1.payouts.list()
    assert (page.object, page.data, page.has_more, page.url) == ("list", [], False, "/v1/payouts")
    assert list(client.v1.payouts.list(params={"limit": 100, "created": {"gte": 0}}).auto_paging_iter()) == []


def test_sdk_services_list_empty_when_resource_is_not_modelled(client: stripe.StripeClient, env: dict[str, str],
                                                               ) -> None:
    customer = client.v1.customers.list(params={"limit": 1}).data[0].id
    pages = {
        "/v1/coupons": client.v1.coupons.list(),
        "/v1/transfers": client.v1.transfers.list(params={"limit": 100}),
        "/v1/checkout/sessions": client.v1.checkout.sessions.list(),
        "/v1/issuing/cards": client.v1.issuing.cards.list(),
        "/v1/radar/early_fraud_warnings": client.v1.radar.early_fraud_warnings.list(),
        "/v1/payment_methods": client.v1.payment_methods.list(params={"customer": customer}),
        f"/v1/customers/{customer}/payment_methods": client.v1.customers.payment_methods.list(customer),
        f"/v1/accounts/{env['REVLOOP_PAYMENTS_ACCOUNT_ID']}/external_accounts":
            client.v1.accounts.external_accounts.list(env["REVLOOP_PAYMENTS_ACCOUNT_ID"]),
    }
    for url, page in pages.items():
        assert (page.url, page.data, page.has_more) == (url, [], False)


def test_every_declared_list_answers_an_empty_envelope_when_read_as_the_extractors_do(
    sandbox: RunningSandbox, env: dict[str, str], client: stripe.StripeClient,
) -> None:
    key, account = env["REVLOOP_PAYMENTS_SECRET_KEY"], env["REVLOOP_PAYMENTS_ACCOUNT_ID"]
    parents = {"customer": client.v1.customers.list(params={"limit": 1}).data[0].id, "account": account}
    for spec in RESOURCES:
        if spec.parent is not None and spec.parent not in parents:
            continue
        path = "/v1/" + spec.path.replace("{parent}", parents.get(spec.parent or "", ""))
        params: dict[str, Any] = {"limit": 100, "created[gte]": 1_600_000_000, "created[lte]": 2_000_000_000}
        if spec.required:
            continue
        response = raw(sandbox, key, "GET", path, params=params, headers={**PEER_HEADERS, "Stripe-Account": account})
        assert response.status_code == 200, (path, response.text)
        assert response.json() == {"object": "list", "data": [], "has_more": False, "url": path}


def test_retrieve_answers_resource_missing_when_resource_is_not_modelled(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payouts.retrieve("po_1NotThere")
    error = raised.value
    assert (error.http_status, error.code, error.param) == (404, "resource_missing", "id")
    assert error.user_message == "No such payout: 'po_1NotThere'"
    with pytest.raises(stripe.InvalidRequestError) as coupon:
        client.v1.coupons.retrieve("SUMMER25")
    assert coupon.value.http_status == 404 and coupon.value.code == "resource_missing"


@pytest.mark.parametrize(("call", "status", "code", "param"), [
    (lambda c: c.v1.coupons.list(params={"limit": 101}), 400, None, "limit"),
    (lambda c: c.v1.topups.list(params={"starting_after": "tu_1NotThere"}), 404, "resource_missing",
     "starting_after"),
    (lambda c: c.v1.files.list(params={"created": {"gte": "yesterday"}}), 400, "parameter_invalid_integer",
     "created[gte]"),
    (lambda c: c.v1.reviews.list(params={"colour": "red"}), 400, "parameter_unknown", "colour"),
    (lambda c: c.v1.setup_attempts.list(params={}), 400, "parameter_missing", "setup_intent"),
    (lambda c: c.v1.setup_attempts.list(params={"setup_intent": "seti_1NotThere"}), 404, "resource_missing",
     "setup_intent"),
    (lambda c: c.v1.customers.payment_methods.list("cus_1NotThere"), 404, "resource_missing", "id"),
    (lambda c: c.v1.transfers.reversals.list("tr_1NotThere"), 404, "resource_missing", "id"),
    (lambda c: c.v1.credit_notes.list(params={"customer": "cus_1NotThere"}), 404, "resource_missing", "customer"),
])
def test_empty_lists_validate_parameters_when_given_bad_input(
    client: stripe.StripeClient, call: Any, status: int, code: str | None, param: str,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        call(client)
    assert (raised.value.http_status, raised.value.code, raised.value.param) == (status, code, param)


def test_restricted_reader_key_reads_empty_lists_when_permitted(sandbox: RunningSandbox, env: dict[str, str]) -> None:
    reader = stripe.StripeClient(env["REVLOOP_PAYMENTS_READER_KEY"], base_addresses={"api": sandbox.base_url})
    assert reader.v1.issuing.transactions.list().data == []
    assert reader.v1.balance_transactions.list(params={"limit": 1}).data
