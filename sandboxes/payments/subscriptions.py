"""``/v1/plans``, ``/v1/subscriptions`` and ``/v1/subscription_items`` (read-only).

Plans are not stored: Stripe serves every recurring price as a plan with the same id, so the plan list is a
view over recurring prices. Subscriptions and their items are seeded from the book's yearly subscriptions
(see :mod:`sandboxes.payments.seed`); there is no endpoint to create or change them.
"""

from __future__ import annotations

from typing import Any

from sandboxes.payments.errors import no_such
from sandboxes.payments.service import Call, Raw, Service

STATUSES = ("active", "all", "canceled", "ended", "incomplete", "incomplete_expired", "past_due", "paused",
            "trialing", "unpaid")
ENDED = ("canceled", "incomplete_expired")


# -- object shapes ----------------------------------------------------------------------------------------

def plan(price: dict[str, Any]) -> dict[str, Any]:
    """The legacy plan view of a recurring price."""
    recurring = price["recurring"] or {}
    return {
        "id": price["id"], "object": "plan", "active": price["active"], "aggregate_usage": None,
        "amount": price["unit_amount"], "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"], "created": price["created"], "currency": price["currency"],
        "interval": recurring.get("interval"), "interval_count": recurring.get("interval_count", 1),
        "livemode": False, "metadata": price["metadata"], "meter": None, "nickname": price["nickname"],
        "product": price["product"], "tiers_mode": price["tiers_mode"], "transform_usage": None,
        "trial_period_days": recurring.get("trial_period_days"), "usage_type": recurring.get("usage_type", "licensed"),
    }


def subscription_item(object_id: str, created: int, subscription_id: str, price: dict[str, Any], quantity: int,
                      period: tuple[int, int]) -> dict[str, Any]:
    return {
        "id": object_id, "object": "subscription_item", "billing_thresholds": None, "created": created,
        "current_period_end": period[1], "current_period_start": period[0], "discounts": [], "metadata": {},
        "plan": plan(price), "price": price, "quantity": quantity, "subscription": subscription_id,
        "tax_rates": [],
    }


def subscription(object_id: str, created: int, customer_id: str, currency: str, items: list[dict[str, Any]], *,
                 period: tuple[int, int], days_until_due: int, latest_invoice: str | None,
                 metadata: dict[str, str]) -> dict[str, Any]:
    """An active subscription billed by invoice; :func:`cancel` ends it."""
    single = items[0] if len(items) == 1 else None
    return {
        "id": object_id, "object": "subscription", "application": None, "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": period[0], "billing_cycle_anchor_config": None, "billing_mode": {"type": "classic"},
        "billing_thresholds": None, "cancel_at": None, "cancel_at_period_end": False, "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "send_invoice", "created": created, "currency": currency,
        "current_period_end": period[1], "current_period_start": period[0], "customer": customer_id,
        "days_until_due": days_until_due, "default_payment_method": None, "default_source": None,
        "default_tax_rates": [], "description": None, "discounts": [], "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {"object": "list", "data": items, "has_more": False, "total_count": len(items),
                  "url": f"/v1/subscription_items?subscription={object_id}"},
        "latest_invoice": latest_invoice, "livemode": False, "metadata": metadata,
        "next_pending_invoice_item_invoice": None, "on_behalf_of": None, "pause_collection": None,
        "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                             "save_default_payment_method": "off"},
        "pending_invoice_item_interval": None, "pending_setup_intent": None, "pending_update": None,
        "plan": single["plan"] if single else None, "quantity": single["quantity"] if single else None,
        "schedule": None, "start_date": created, "status": "active", "test_clock": None, "transfer_data": None,
        "trial_end": None, "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }


def cancel(sub: dict[str, Any], canceled_at: int, ended_at: int, *, at_period_end: bool) -> None:
    """End ``sub``: at the end of its term (not renewed) or early at the customer's request."""
    sub.update(status="canceled", canceled_at=canceled_at, ended_at=ended_at,
               cancel_at=ended_at if at_period_end else None, cancel_at_period_end=at_period_end,
               cancellation_details={"comment": None, "feedback": None, "reason": "cancellation_requested"})


# -- handlers ---------------------------------------------------------------------------------------------

def list_plans(svc: Service, call: Call) -> Raw:
    p = call.params
    where = ["json_extract(body, '$.type') = 'recurring'"]
    args: list[Any] = []
    active = p.bool("active")
    if active is not None:
        where.append("tag = ?")
        args.append("active" if active else "inactive")
    product = p.str("product")
    if product is not None:
        where.append("parent = ?")
        args.append(product)
    return svc.list_page(call, "price", "/v1/plans", where=where, args=args, filters=("active", "product"),
                         label="plan", transform=plan)


def retrieve_plan(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    price = svc.store.get(call.path["id"], "price")
    if price is None or price["recurring"] is None:
        raise no_such("plan", call.path["id"])
    return svc.expand(plan(price), call.expand_list())


def list_subscriptions(svc: Service, call: Call) -> Raw:
    p = call.params
    where: list[str] = []
    args: list[Any] = []
    status = p.enum("status", STATUSES)
    if status is None:
        # Stripe leaves canceled subscriptions out unless asked for them.
        where.append(f"tag NOT IN ({', '.join('?' * len(ENDED))})")
        args.extend(ENDED)
    elif status == "ended":
        where.append(f"tag IN ({', '.join('?' * len(ENDED))})")
        args.extend(ENDED)
    elif status != "all":
        where.append("tag = ?")
        args.append(status)
    customer = p.str("customer")
    if customer is not None:
        where.append("customer = ?")
        args.append(customer)
    price = p.str("price") or p.str("plan")
    if price is not None:
        where.append("EXISTS (SELECT 1 FROM json_each(body, '$.items.data') "
                     "WHERE json_extract(value, '$.price.id') = ?)")
        args.append(price)
    collection = p.enum("collection_method", ("charge_automatically", "send_invoice"))
    if collection is not None:
        where.append("json_extract(body, '$.collection_method') = ?")
        args.append(collection)
    return svc.list_page(call, "subscription", "/v1/subscriptions", where=where, args=args,
                         filters=("status", "customer", "price", "plan", "collection_method", "test_clock"))


def retrieve_subscription(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    return svc.expand(svc.load("subscription", call.path["id"]), call.expand_list())


def list_items(svc: Service, call: Call) -> Raw:
    p = call.params
    subscription_id = p.str("subscription", required=True) or ""
    svc.load("subscription", subscription_id, param="subscription")
    return svc.list_page(call, "subscription_item", "/v1/subscription_items", where=["parent = ?"],
                         args=[subscription_id], filters=("subscription",))


def retrieve_item(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    return svc.expand(svc.load("subscription_item", call.path["id"]), call.expand_list())


ROUTES = [
    ("GET", "/v1/plans", list_plans, "plans"),
    ("GET", "/v1/plans/{id}", retrieve_plan, "plans"),
    ("GET", "/v1/subscriptions", list_subscriptions, "subscriptions"),
    ("GET", "/v1/subscriptions/{id}", retrieve_subscription, "subscriptions"),
    ("GET", "/v1/subscription_items", list_items, "subscription_items"),
    ("GET", "/v1/subscription_items/{id}", retrieve_item, "subscription_items"),
]
