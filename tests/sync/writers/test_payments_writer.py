"""The payments writer against the Stripe-compatible sandbox: customers found or created, invoices for the
open amount with their cross-references, deterministic idempotency keys, crash windows, error classes."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from pydantic import SecretStr

from revloop.settings import PaymentsSettings
from revloop.sync.model import PermanentError, RateLimited, RetryableError
from revloop.sync.writers.payments import PaymentsWriter, to_minor_units
from tests.sandbox_harness import RunningSandbox
from tests.sync.writers.conftest import faults, unique, write


def customer_payload(account: str) -> dict[str, Any]:
    return {"salesforce_account_id": account, "erp_partner_id": 4242, "name": f"Customer {account}",
            "email": f"billing+{account.lower()}@example.com",
            "address": {"line1": "1 Raffles Place", "city": "Singapore", "postal_code": "048616", "country": "SG"}}


def invoice_write(account: str, key: str, currency: str = "usd", finalize: bool = True) -> Any:
    return write("payments", "invoice", "create", key, {
        "customer": customer_payload(account),
        "currency": currency,
        "items": [{"description": "RL-BILL-STD x2", "amount": "3000.50"}, {"description": "Onboarding",
                                                                          "amount": "99.50"}],
        "metadata": {"salesforce_opportunity_id": "006T00000000001AAA", "erp_invoice_id": "1000000042",
                     "erp_invoice_number": "INV/2026/00042"},
        "days_until_due": 30,
        "finalize": finalize,
    }, flow="invoice_payment_request")


def customers_of(client: stripe.StripeClient, account: str) -> list[Any]:
    return client.v1.customers.search(params={"query": f"metadata['salesforce_account_id']:'{account}'"}).data


def invoices_with_key(client: stripe.StripeClient, customer: str, key: str) -> list[Any]:
    return [i for i in client.v1.invoices.list(params={"customer": customer, "limit": 100}).data
            if i.metadata.to_dict().get("revloop_key") == key]


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("1234.50", "usd", 123450), ("1200", "jpy", 1200), ("0.01", "sgd", 1), (99.5, "aud", 9950),
    ("1.234", "kwd", 1234), ("1000", "krw", 1000),
])
def test_amounts_convert_to_minor_units_when_the_currency_exponent_is_known(
    amount: Any, currency: str, minor: int
) -> None:
    assert to_minor_units(amount, currency) == minor


@pytest.mark.parametrize(("amount", "currency"), [("12.5", "jpy"), ("0.001", "usd"), ("abc", "usd")])
def test_amounts_are_refused_when_they_have_more_decimals_than_the_currency(amount: str, currency: str) -> None:
    with pytest.raises(PermanentError):
        to_minor_units(amount, currency)


def test_customer_is_created_with_its_cross_references_and_found_again_when_delivered_twice(
    payments_writer: PaymentsWriter, stripe_client: stripe.StripeClient
) -> None:
    account = unique("001CUS")
    customer = write("payments", "customer", "create", f"customer:{account}", customer_payload(account))
    first = payments_writer.deliver(customer)
    again = payments_writer.deliver(customer)
    (stored,) = customers_of(stripe_client, account)
    assert first.created is True and (again.created, again.target_id) == (False, first.target_id)
    assert stored.id == first.target_id
    assert stored.metadata.to_dict() == {"salesforce_account_id": account, "erp_partner_id": "4242",
                                         "revloop_key": f"customer:{account}"}


def test_customer_update_sets_master_data_once_and_keeps_the_metadata_when_delivered_twice(
    payments_writer: PaymentsWriter, stripe_client: stripe.StripeClient
) -> None:
    account = unique("001CUS")
    customer = payments_writer.deliver(write("payments", "customer", "create", f"customer:{account}",
                                             customer_payload(account)))
    address = {"line1": "8 Marina View", "city": "Singapore", "postal_code": "018960", "country": "SG"}
    update = write("payments", "customer", "update", unique("master"), {
        "customer_id": customer.target_id, "fields": {"email": "ar@example.com", "address": address}})

    first = payments_writer.deliver(update)
    again = payments_writer.deliver(update)

    stored = stripe_client.v1.customers.retrieve(customer.target_id).to_dict()
    assert (first.target_id, first.created, again.target_id) == (customer.target_id, False, customer.target_id)
    assert first.detail == {"fields": ["address", "email"]}
    assert stored["email"] == "ar@example.com"
    assert {k: stored["address"][k] for k in address} == address
    assert stored["name"] == f"Customer {account}"
    assert stored["metadata"]["salesforce_account_id"] == account


def test_customer_update_is_parked_when_the_customer_does_not_exist(payments_writer: PaymentsWriter) -> None:
    with pytest.raises(PermanentError) as caught:
        payments_writer.deliver(write("payments", "customer", "update", unique("master"),
                                      {"customer_id": "cus_missing000000", "fields": {"name": "Nobody"}}))
    assert caught.value.http_status == 404


def test_invoice_is_created_finalized_and_carries_its_cross_references_when_an_erp_invoice_is_posted(
    payments_writer: PaymentsWriter, stripe_client: stripe.StripeClient
) -> None:
    account, key = unique("001INV"), unique("pay-inv")
    outcome = payments_writer.deliver(invoice_write(account, key))
    invoice = stripe_client.v1.invoices.retrieve(outcome.target_id)
    lines = stripe_client.v1.invoices.line_items.list(invoice.id).data
    assert outcome.created is True
    assert (invoice.status, invoice.currency, invoice.amount_due) == ("open", "usd", 310000)
    assert outcome.detail["hosted_invoice_url"] == invoice.hosted_invoice_url and invoice.hosted_invoice_url
    assert invoice.metadata.to_dict() == {"salesforce_opportunity_id": "006T00000000001AAA",
                                          "erp_invoice_id": "1000000042", "erp_invoice_number": "INV/2026/00042",
                                          "revloop_key": key}
    assert sorted(line.amount for line in lines) == [9950, 300050]
    assert invoice.customer == customers_of(stripe_client, account)[0].id


def void_write(invoice_id: str, key: str) -> Any:
    return write("payments", "invoice", "void", key, {"invoice_id": invoice_id, "erp_invoice_id": "1000000042"},
                 flow="invoice_payment_request")


def test_invoice_is_voided_once_under_its_key_and_found_void_when_delivered_again(
    payments_writer: PaymentsWriter, stripe_client: stripe.StripeClient
) -> None:
    request = payments_writer.deliver(invoice_write(unique("001VOID"), unique("pay-inv")))
    key = unique("pay-void")

    first = payments_writer.deliver(void_write(request.target_id, key))
    again = payments_writer.deliver(void_write(request.target_id, key))

    assert (first.target_id, first.created, first.detail["status"]) == (request.target_id, True, "void")
    assert (again.target_id, again.created, again.detail["status"]) == (request.target_id, False, "void")
    voided = [e for e in stripe_client.v1.events.list(params={"type": "invoice.voided"}).data
              if e.data.object.id == request.target_id]
    assert [e.request.idempotency_key for e in voided] == [f"{key}:void"]


def test_paid_invoice_is_parked_not_voided_when_the_customer_paid_it_first(
    payments_writer: PaymentsWriter, stripe_client: stripe.StripeClient
) -> None:
    request = payments_writer.deliver(invoice_write(unique("001VOID"), unique("pay-inv")))
    stripe_client.v1.invoices.pay(request.target_id, params={"payment_method": "pm_card_visa"})

    with pytest.raises(PermanentError) as refused:
        payments_writer.deliver(void_write(request.target_id, unique("pay-void")))

    assert refused.value.code == "invoice_paid"
    assert stripe_client.v1.invoices.retrieve(request.target_id).status == "paid"


def test_void_is_parked_when_the_payload_names_no_invoice(payments_writer: PaymentsWriter) -> None:
    with pytest.raises(PermanentError) as refused:
        payments_writer.deliver(void_write("", unique("pay-void")))
    assert refused.value.code == "invalid_payload"


def test_invoice_is_not_duplicated_when_delivered_again_by_a_fresh_writer(
    payments_settings: PaymentsSettings, stripe_client: stripe.StripeClient
) -> None:
    account, key = unique("001INV"), unique("pay-inv")
    first = PaymentsWriter(payments_settings).deliver(invoice_write(account, key))
    again = PaymentsWriter(payments_settings).deliver(invoice_write(account, key))
    assert (again.created, again.target_id) == (False, first.target_id)
    customer = customers_of(stripe_client, account)
    assert len(customer) == 1
    assert len(invoices_with_key(stripe_client, customer[0].id, key)) == 1
    assert len(stripe_client.v1.invoices.line_items.list(first.target_id).data) == 2


def test_invoice_keeps_its_items_once_and_is_finalized_when_a_crash_came_after_the_draft(
    payments_settings: PaymentsSettings, stripe_client: stripe.StripeClient
) -> None:
    account, key = unique("001INV"), unique("pay-inv")
    draft = PaymentsWriter(payments_settings).deliver(invoice_write(account, key, finalize=False))
    assert draft.detail["status"] == "draft"
    # The crash: the draft and its items exist, finalize never ran; a new process delivers the write.
    outcome = PaymentsWriter(payments_settings).deliver(invoice_write(account, key))
    assert (outcome.created, outcome.target_id, outcome.detail["status"]) == (False, draft.target_id, "open")
    assert len(stripe_client.v1.invoices.line_items.list(draft.target_id).data) == 2


def test_calls_replay_from_stripes_idempotency_store_when_the_invoice_lookup_cannot_see_it(
    payments_writer: PaymentsWriter, stripe_client: stripe.StripeClient
) -> None:
    account, key = unique("001INV"), unique("pay-inv")
    first = payments_writer.deliver(invoice_write(account, key))
    customer = customers_of(stripe_client, account)[0].id
    payments_writer._invoice_by_key = lambda customer_id, k: None  # type: ignore[method-assign]
    again = payments_writer.deliver(invoice_write(account, key))
    assert (again.created, again.target_id, again.detail["status"]) == (False, first.target_id, "open")
    assert len(invoices_with_key(stripe_client, customer, key)) == 1


def test_a_reused_key_with_other_parameters_is_parked_when_stripe_answers_idempotency_error(
    payments_writer: PaymentsWriter, stripe_client: stripe.StripeClient
) -> None:
    account, key = unique("001CUS"), unique("customer")
    stripe_client.v1.customers.create(params={"name": "Someone else"}, options={"idempotency_key": f"{key}:customer"})
    with pytest.raises(PermanentError) as caught:
        payments_writer.deliver(write("payments", "customer", "create", key, customer_payload(account)))
    assert caught.value.code == "idempotency_error" or "idempotency" in str(caught.value).lower()
    assert caught.value.http_status == 400


def test_invalid_parameters_are_parked_with_stripes_code_when_the_currency_is_unknown(
    payments_writer: PaymentsWriter,
) -> None:
    bad = invoice_write(unique("001INV"), unique("pay-inv"), currency="xyz")
    with pytest.raises(PermanentError) as caught:
        payments_writer.deliver(bad)
    assert caught.value.http_status == 400
    assert "currency" in str(caught.value).lower()


def test_server_errors_are_retryable_when_the_platform_answers_500(
    payments_writer: PaymentsWriter, payments_sandbox: RunningSandbox
) -> None:
    with faults(payments_sandbox, server_error_rate=1.0), pytest.raises(RetryableError) as caught:
        payments_writer.deliver(invoice_write(unique("001INV"), unique("pay-inv")))
    assert caught.value.http_status == 500 and not isinstance(caught.value, RateLimited)


def test_rate_limits_carry_retry_after_when_the_platform_answers_429(
    payments_writer: PaymentsWriter, payments_sandbox: RunningSandbox
) -> None:
    with faults(payments_sandbox, rate_limit_rate=1.0, retry_after_seconds=3), \
            pytest.raises(RateLimited) as caught:
        payments_writer.deliver(invoice_write(unique("001INV"), unique("pay-inv")))
    assert (caught.value.code, caught.value.retry_after_seconds) == ("rate_limit", 3.0)


def test_lock_timeouts_are_retryable_without_a_budget_wait_when_an_object_is_busy(
    payments_writer: PaymentsWriter, payments_sandbox: RunningSandbox
) -> None:
    with faults(payments_sandbox, lock_error_rate=1.0), pytest.raises(RetryableError) as caught:
        payments_writer.deliver(invoice_write(unique("001INV"), unique("pay-inv")))
    assert caught.value.code == "lock_timeout" and not isinstance(caught.value, RateLimited)


def test_a_refused_key_is_permanent_when_the_secret_key_is_wrong(payments_settings: PaymentsSettings) -> None:
    writer = PaymentsWriter(payments_settings.model_copy(update={"secret_key": SecretStr("sk_test_wrong")}))
    with pytest.raises(PermanentError) as caught:
        writer.deliver(invoice_write(unique("001INV"), unique("pay-inv")))
    assert caught.value.http_status == 401


def test_writer_for_builds_each_systems_writer_when_asked_by_name(payments_settings: PaymentsSettings) -> None:
    from revloop.settings import ErpSettings, SalesforceSettings, Settings
    from revloop.sync.writers import writer_for

    settings = Settings(salesforce=SalesforceSettings(instance_url="https://example.my.salesforce.com",
                                                      client_id="id", client_secret=SecretStr("s")),
                        erp=ErpSettings(url="http://127.0.0.1:1", database="db", api_key=SecretStr("k")),
                        payments=payments_settings)
    assert [writer_for(s, settings).system for s in ("salesforce", "erp", "payments")] == [
        "salesforce", "erp", "payments"]
    with pytest.raises(ValueError):
        writer_for("hubspot", settings)
