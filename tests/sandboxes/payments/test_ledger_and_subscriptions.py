"""Balance transactions built from charges, refunds and disputes; plans; seeded subscriptions and their items."""

from __future__ import annotations

import time

import pytest
import stripe

from sandboxes.payments.objects import EVENT_RETENTION_SECONDS
from tests.sandboxes.payments.test_payments import pay


def test_every_succeeded_charge_names_a_readable_charge_transaction_when_seeded(client: stripe.StripeClient) -> None:
    charges = [c for c in client.v1.charges.list(params={"limit": 100}).auto_paging_iter() if c.balance_transaction]
    entries = {t.id: t for t in client.v1.balance_transactions.list(params={"limit": 100, "type": "charge"})
               .auto_paging_iter()}
    assert charges and all(c.balance_transaction in entries for c in charges)
    charge = charges[-1]
    entry = entries[charge.balance_transaction]
    assert entry.object == "balance_transaction" and entry.source == charge.id
    assert (entry.amount, entry.currency) == (charge.amount_captured, charge.currency)
    assert entry.net == entry.amount - entry.fee and entry.fee == entry.fee_details[0].amount > 0
    assert entry.reporting_category == "charge" and entry.status in ("available", "pending")
    assert entry.available_on > entry.created


def test_refund_transaction_is_negative_when_a_charge_is_refunded(client: stripe.StripeClient) -> None:
    intent = pay(client, "pm_card_visa", amount=4000)
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1500})
    entry = client.v1.balance_transactions.retrieve(refund.balance_transaction)
    assert (entry.type, entry.amount, entry.fee, entry.net, entry.source) == ("refund", -1500, 0, -1500, refund.id)

    by_source = client.v1.balance_transactions.list(params={"source": refund.id}).data
    assert [t.id for t in by_source] == [refund.balance_transaction]
    charge = client.v1.charges.retrieve(intent.latest_charge)
    charge_entry = client.v1.balance_transactions.retrieve(charge.balance_transaction, params={"expand": ["source"]})
    assert charge_entry.type == "charge" and charge_entry.source.id == charge.id and charge_entry.fee == 116
    assert charge_entry.status == "pending"  # available two days after the charge


def test_dispute_withdraws_the_amount_as_an_adjustment_when_a_dispute_opens(client: stripe.StripeClient) -> None:
    intent = pay(client, "pm_card_createDispute", amount=3300)
    dispute = client.v1.disputes.list(params={"payment_intent": intent.id}).data[0]
    assert len(dispute.balance_transactions) == 1
    withdrawal = dispute.balance_transactions[0]
    assert (withdrawal.type, withdrawal.reporting_category, withdrawal.amount) == ("adjustment", "dispute", -3300)
    assert client.v1.balance_transactions.retrieve(withdrawal.id).source == dispute.id


def test_balance_transactions_filter_and_page_when_listed_like_the_extractors(client: stripe.StripeClient) -> None:
    refunds = list(client.v1.balance_transactions.list(params={"type": "refund", "limit": 100}).auto_paging_iter())
    assert refunds and all(t.type == "refund" and t.amount < 0 for t in refunds)
    everything = list(client.v1.balance_transactions.list(params={"limit": 100}).auto_paging_iter())
    assert len({t.id for t in everything}) == len(everything) > 100
    newest = everything[0].created
    window = client.v1.balance_transactions.list(params={"created": {"gte": newest - 86400, "lt": newest + 1}})
    assert window.data and all(newest - 86400 <= t.created <= newest for t in window.data)


@pytest.mark.parametrize(("params", "code", "param"), [
    ({"type": "sale"}, None, "type"),
    ({"payout": "po_1NotAPayout"}, "resource_missing", "payout"),
    ({"limit": 101}, None, "limit"),
    ({"starting_after": "txn_1NotThere"}, "resource_missing", "starting_after"),
])
def test_balance_transactions_list_rejects_bad_filters_when_listed(
    client: stripe.StripeClient, params: dict[str, object], code: str | None, param: str,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.balance_transactions.list(params=params)  # type: ignore[arg-type]
    assert raised.value.http_status == (404 if code == "resource_missing" else 400)
    assert raised.value.code == code and raised.value.param == param


def test_plans_list_every_recurring_price_when_read_as_legacy_plans(client: stripe.StripeClient) -> None:
    plans = list(client.v1.plans.list(params={"limit": 100}).auto_paging_iter())
    recurring = [p for p in client.v1.prices.list(params={"limit": 100}).auto_paging_iter() if p.recurring]
    assert plans and {p.id for p in plans} == {p.id for p in recurring}
    plan = client.v1.plans.retrieve(plans[0].id)
    price = client.v1.prices.retrieve(plan.id)
    assert plan.object == "plan" and (plan.amount, plan.currency, plan.product) == (
        price.unit_amount, price.currency, price.product)
    assert (plan.interval, plan.interval_count, plan.usage_type) == (
        price.recurring.interval, price.recurring.interval_count, price.recurring.usage_type)
    one_time = next(p for p in client.v1.prices.list(params={"limit": 100}).auto_paging_iter() if not p.recurring)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.plans.retrieve(one_time.id)
    assert raised.value.http_status == 404 and raised.value.code == "resource_missing"


def test_subscriptions_include_canceled_only_when_status_is_all(client: stripe.StripeClient) -> None:
    everything = list(client.v1.subscriptions.list(params={"status": "all", "limit": 100}).auto_paging_iter())
    default = list(client.v1.subscriptions.list(params={"limit": 100}).auto_paging_iter())
    canceled = list(client.v1.subscriptions.list(params={"status": "canceled", "limit": 100}).auto_paging_iter())
    assert {s.status for s in everything} == {"active", "canceled"}
    assert {s.id for s in default} == {s.id for s in everything if s.status != "canceled"}
    assert {s.id for s in canceled} == {s.id for s in everything if s.status == "canceled"}
    for sub in canceled:
        assert sub.ended_at is not None and sub.canceled_at is not None
        assert sub.cancellation_details.reason == "cancellation_requested"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.subscriptions.list(params={"status": "expired"})  # type: ignore[typeddict-item]
    assert raised.value.http_status == 400 and raised.value.param == "status"


def test_subscription_matches_its_customer_and_recurring_prices_when_seeded(client: stripe.StripeClient) -> None:
    sub = next(s for s in client.v1.subscriptions.list(params={"limit": 100}).auto_paging_iter())
    customer = client.v1.customers.retrieve(sub.customer)
    assert sub.currency == customer.currency and sub.metadata["salesforce_subscription_id"]
    assert sub.current_period_end - sub.current_period_start >= 365 * 86400
    assert sub.collection_method == "send_invoice" and sub.status == "active"
    for item in sub["items"].data:
        assert item.price.recurring.interval == "year" and item.price.currency == sub.currency
        assert item.plan.id == item.price.id and item.subscription == sub.id
    assert {s.id for s in client.v1.subscriptions.list(params={"customer": customer.id, "status": "all"}).data} >= {
        sub.id}
    price = sub["items"].data[0].price.id
    assert sub.id in {s.id for s in client.v1.subscriptions.list(params={"price": price, "limit": 100})
                      .auto_paging_iter()}
    assert client.v1.invoices.retrieve(sub.latest_invoice).customer == customer.id


def test_subscription_items_list_by_subscription_when_paged(client: stripe.StripeClient) -> None:
    sub = max(client.v1.subscriptions.list(params={"status": "all", "limit": 100}).auto_paging_iter(),
              key=lambda s: len(s["items"].data))
    listed = list(client.v1.subscription_items.list(params={"subscription": sub.id, "limit": 1}).auto_paging_iter())
    assert {i.id for i in listed} == {i.id for i in sub["items"].data}
    assert client.v1.subscription_items.retrieve(listed[0].id).subscription == sub.id
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.subscription_items.list(params={"subscription": "sub_1NotThere"})
    assert missing.value.http_status == 404 and missing.value.param == "subscription"
    with pytest.raises(stripe.InvalidRequestError) as required:
        client.v1.subscription_items.list(params={})  # type: ignore[typeddict-item]
    assert required.value.code == "parameter_missing" and required.value.param == "subscription"


def test_subscription_history_is_in_events_when_within_the_retention(client: stripe.StripeClient) -> None:
    subscriptions = list(client.v1.subscriptions.list(params={"status": "all", "limit": 100}).auto_paging_iter())
    since = time.time() - EVENT_RETENTION_SECONDS
    events = {kind: list(client.v1.events.list(params={"type": f"customer.subscription.{kind}", "limit": 100})
                         .auto_paging_iter()) for kind in ("created", "deleted")}
    assert all(e.data.object.object == "subscription" for e in events["created"])
    assert all(e.data.object.status == "canceled" for e in events["deleted"])
    # The seeded history of the last 30 days only: older starts and ends have no event any more.
    assert {e.data.object.id for e in events["created"]} == {s.id for s in subscriptions if s.created >= since}
    assert {e.data.object.id for e in events["deleted"]} == {
        s.id for s in subscriptions if s.status == "canceled" and since <= s.ended_at <= time.time()
    }
    assert len(subscriptions) > len(events["created"])
