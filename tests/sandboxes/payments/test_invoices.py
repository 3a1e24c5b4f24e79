"""The invoice lifecycle (draft -> open -> paid / void / uncollectible) and money in minor units."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import stripe

from sandboxes.payments.money import to_minor_units


@pytest.fixture()
def customer(client: stripe.StripeClient) -> Any:
    return client.v1.customers.create(params={"name": "Lion City Logistics", "email": "ap@lioncity.example"})


def draft(client: stripe.StripeClient, customer: Any, currency: str, amounts: list[int]) -> Any:
    invoice = client.v1.invoices.create(params={
        "customer": customer.id, "currency": currency, "collection_method": "send_invoice", "days_until_due": 30,
        "auto_advance": False, "metadata": {"revloop_key": f"test-{currency}"},
    })
    for amount in amounts:
        client.v1.invoice_items.create(params={"customer": customer.id, "invoice": invoice.id, "amount": amount,
                                               "currency": currency, "description": "Platform fee"})
    return client.v1.invoices.retrieve(invoice.id)


def test_invoice_moves_draft_open_paid_when_finalized_and_paid(client: stripe.StripeClient, customer: Any) -> None:
    invoice = draft(client, customer, "sgd", [1050, 2000])
    assert invoice.status == "draft" and invoice.number is None
    assert invoice.subtotal == invoice.total == invoice.amount_due == 3050
    assert invoice.lines.total_count == 2 and len(invoice.lines.data) == 2

    opened = client.v1.invoices.finalize_invoice(invoice.id)
    assert opened.status == "open" and opened.number and opened.hosted_invoice_url.startswith("https://")
    assert opened.amount_remaining == 3050 and opened.payment_intent.startswith("pi_")

    paid = client.v1.invoices.pay(invoice.id, params={"payment_method": "pm_card_visa"})
    assert paid.status == "paid" and paid.amount_paid == 3050 and paid.amount_remaining == 0
    assert paid.status_transitions.paid_at is not None
    intent = client.v1.payment_intents.retrieve(paid.payment_intent, params={"expand": ["latest_charge"]})
    assert intent.status == "succeeded" and intent.latest_charge.paid is True
    assert intent.latest_charge.amount == 3050


def test_pay_answers_card_error_and_invoice_stays_open_when_card_declined(
    client: stripe.StripeClient, customer: Any
) -> None:
    invoice = client.v1.invoices.finalize_invoice(draft(client, customer, "usd", [5000]).id)
    with pytest.raises(stripe.CardError) as info:
        client.v1.invoices.pay(invoice.id, params={"payment_method": "pm_card_chargeDeclinedInsufficientFunds"})
    assert info.value.http_status == 402 and info.value.code == "card_declined"
    assert info.value.error.decline_code == "insufficient_funds"
    after = client.v1.invoices.retrieve(invoice.id)
    assert after.status == "open" and after.attempt_count == 1 and after.amount_paid == 0


def test_invoice_is_void_when_voided_after_finalizing(client: stripe.StripeClient, customer: Any) -> None:
    invoice = client.v1.invoices.finalize_invoice(draft(client, customer, "sgd", [900]).id)
    voided = client.v1.invoices.void_invoice(invoice.id)
    assert voided.status == "void" and voided.status_transitions.voided_at is not None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(invoice.id, params={"payment_method": "pm_card_visa"})


def test_invoice_is_uncollectible_and_still_payable_when_marked(client: stripe.StripeClient, customer: Any) -> None:
    invoice = client.v1.invoices.finalize_invoice(draft(client, customer, "sgd", [700]).id)
    marked = client.v1.invoices.mark_uncollectible(invoice.id)
    assert marked.status == "uncollectible"
    paid = client.v1.invoices.pay(invoice.id, params={"payment_method": "pm_card_mastercard"})
    assert paid.status == "paid" and paid.amount_paid == 700


def test_finalize_rejects_when_invoice_already_open(client: stripe.StripeClient, customer: Any) -> None:
    invoice = client.v1.invoices.finalize_invoice(draft(client, customer, "sgd", [700]).id)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.invoices.finalize_invoice(invoice.id)
    assert info.value.http_status == 400


@pytest.mark.parametrize(("currency", "major", "minor"), [("JPY", Decimal("1200"), 1200),
                                                          ("SGD", Decimal("10.50"), 1050),
                                                          ("KRW", Decimal("55000"), 55000)])
def test_amounts_are_in_minor_units_when_currency_is_zero_or_two_decimal(
    client: stripe.StripeClient, customer: Any, currency: str, major: Decimal, minor: int
) -> None:
    assert to_minor_units(major, currency) == minor
    invoice = client.v1.invoices.create(params={"customer": customer.id, "currency": currency.lower(),
                                                "collection_method": "send_invoice"})
    client.v1.invoices.add_lines(invoice.id, params={"lines": [{"amount": minor, "description": "Licence"}]})
    opened = client.v1.invoices.finalize_invoice(invoice.id)
    assert opened.currency == currency.lower() and opened.amount_due == minor
    paid = client.v1.invoices.pay(invoice.id, params={"payment_method": "pm_card_visa"})
    assert paid.amount_paid == minor


def test_invoice_items_priced_from_catalogue_when_price_given(client: stripe.StripeClient, customer: Any) -> None:
    product = client.v1.products.create(params={"name": "Reconciliation seat"})
    price = client.v1.prices.create(params={"product": product.id, "currency": "jpy", "unit_amount": 4800,
                                            "recurring": {"interval": "month"}})
    assert price.type == "recurring" and price.recurring.interval == "month"
    invoice = client.v1.invoices.create(params={"customer": customer.id, "currency": "jpy"})
    client.v1.invoices.add_lines(invoice.id, params={"lines": [{"pricing": {"price": price.id}, "quantity": 3}]})
    lines = client.v1.invoices.line_items.list(invoice.id)
    assert lines.data[0].amount == 14400 and lines.data[0].quantity == 3
    assert client.v1.invoices.retrieve(invoice.id).total == 14400


def test_currency_rejected_when_unknown(client: stripe.StripeClient, customer: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.invoices.create(params={"customer": customer.id, "currency": "xyz"})
    assert info.value.param == "currency"


def test_seeded_invoices_link_erp_and_crm_when_demo_scale(client: stripe.StripeClient) -> None:
    paid = list(client.v1.invoices.list(params={"limit": 100, "status": "paid"}).auto_paging_iter())
    seeded = [inv for inv in paid if "salesforce_opportunity_id" in inv.metadata.to_dict()]
    assert len(seeded) >= 50
    for invoice in seeded:
        assert {"erp_invoice_id", "erp_invoice_number", "revloop_key"} <= set(invoice.metadata.to_dict())
        assert invoice.amount_paid == invoice.total and invoice.amount_remaining == 0
    expanded = client.v1.invoices.list(params={"limit": 3, "expand": ["data.customer"]})
    assert all(inv.customer.object == "customer" for inv in expanded.data)
