"""Stripe object shapes, as the API returns them; used by the request handlers and by seeding alike."""

from __future__ import annotations

import secrets
import string
from typing import Any

from sandboxes.book import PAYMENTS_EVENT_RETENTION_DAYS, stripe_id

API_VERSION = "2025-08-27.basil"
"""The account's default API version: events carry it, responses echo it when a client sends none."""

EVENT_RETENTION_SECONDS = PAYMENTS_EVENT_RETENTION_DAYS * 86_400
"""Stripe lists and retrieves events of the last 30 days only: an older event is neither listed by
``/v1/events`` nor found by ``/v1/events/{id}`` (404 ``resource_missing``), and seeding stores none."""

_ALPHABET = string.ascii_letters + string.digits


def transaction_id(source_id: str) -> str:
    """The ``txn_`` id of the balance transaction a charge, refund or dispute created.

    A charge's keeps the charge's suffix (``ch_abc`` -> ``txn_abc``). Others are derived by hashing, because
    seeded refunds share their charge's suffix and the two entries must not share an id.
    """
    prefix, _, suffix = source_id.partition("_")
    return f"txn_{suffix}" if prefix in ("ch", "py") else stripe_id("txn", source_id)


def new_id(prefix: str, length: int = 24) -> str:
    """A run-time id (``cus_`` + 24 characters): longer than the book's 14, so the two never collide."""
    return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(length))}"


def customer(
    object_id: str, created: int, *, name: str | None = None, email: str | None = None, phone: str | None = None,
    address: dict[str, Any] | None = None, description: str | None = None, metadata: dict[str, str] | None = None,
    currency: str | None = None, invoice_prefix: str | None = None, preferred_locales: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "id": object_id, "object": "customer", "address": address, "balance": 0, "created": created,
        "currency": currency, "default_source": None, "delinquent": False, "description": description,
        "discount": None, "email": email,
        "invoice_prefix": invoice_prefix or "".join(secrets.choice(string.ascii_uppercase) for _ in range(8)),
        "invoice_settings": {
            "custom_fields": None, "default_payment_method": None, "footer": None, "rendering_options": None,
        },
        "livemode": False, "metadata": metadata or {}, "name": name, "next_invoice_sequence": 1, "phone": phone,
        "preferred_locales": preferred_locales or [], "shipping": None, "tax_exempt": "none", "test_clock": None,
    }


def address(line1: str | None = None, city: str | None = None, postal_code: str | None = None,
            country: str | None = None, line2: str | None = None, state: str | None = None) -> dict[str, Any]:
    return {"city": city, "country": country, "line1": line1, "line2": line2, "postal_code": postal_code,
            "state": state}


def product(object_id: str, created: int, name: str, *, description: str | None = None, active: bool = True,
            metadata: dict[str, str] | None = None, default_price: str | None = None,
            unit_label: str | None = None) -> dict[str, Any]:
    return {
        "id": object_id, "object": "product", "active": active, "created": created, "default_price": default_price,
        "description": description, "images": [], "livemode": False, "marketing_features": [],
        "metadata": metadata or {}, "name": name, "package_dimensions": None, "shippable": None,
        "statement_descriptor": None, "tax_code": None, "type": "service", "unit_label": unit_label,
        "updated": created, "url": None,
    }


def price(object_id: str, created: int, product_id: str, currency: str, unit_amount: int, *,
          recurring: dict[str, Any] | None = None, nickname: str | None = None, lookup_key: str | None = None,
          metadata: dict[str, str] | None = None, active: bool = True) -> dict[str, Any]:
    if recurring is not None:
        recurring = {
            "interval": recurring.get("interval", "month"),
            "interval_count": int(recurring.get("interval_count", 1)),
            "meter": None, "trial_period_days": None, "usage_type": recurring.get("usage_type", "licensed"),
        }
    return {
        "id": object_id, "object": "price", "active": active, "billing_scheme": "per_unit", "created": created,
        "currency": currency, "custom_unit_amount": None, "livemode": False, "lookup_key": lookup_key,
        "metadata": metadata or {}, "nickname": nickname, "product": product_id, "recurring": recurring,
        "tax_behavior": "unspecified", "tiers_mode": None, "transform_quantity": None,
        "type": "recurring" if recurring else "one_time", "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def invoice_item(object_id: str, created: int, customer_id: str, currency: str, amount: int, *,
                 invoice_id: str | None, quantity: int = 1, price_obj: dict[str, Any] | None = None,
                 description: str | None = None, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    unit_amount = amount // quantity if quantity else amount
    pricing = None
    if price_obj is not None:
        pricing = {
            "price_details": {"price": price_obj["id"], "product": price_obj["product"]},
            "type": "price_details", "unit_amount_decimal": str(price_obj["unit_amount"]),
        }
    return {
        "id": object_id, "object": "invoiceitem", "amount": amount, "currency": currency, "customer": customer_id,
        "date": created, "description": description, "discountable": True, "discounts": [], "invoice": invoice_id,
        "livemode": False, "metadata": metadata or {}, "parent": None,
        "period": {"end": created, "start": created}, "pricing": pricing,
        "price": price_obj, "proration": False, "quantity": quantity, "test_clock": None,
        "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount),
    }


def line_item(item: dict[str, Any]) -> dict[str, Any]:
    """The invoice line Stripe shows for an invoice item."""
    return {
        "id": "il_" + item["id"].split("_", 1)[1], "object": "line_item", "amount": item["amount"],
        "currency": item["currency"], "description": item["description"], "discount_amounts": [],
        "discountable": True, "discounts": [], "invoice": item["invoice"], "livemode": False,
        "metadata": item["metadata"],
        "parent": {
            "invoice_item_details": {"invoice_item": item["id"], "proration": False, "subscription": None},
            "subscription_item_details": None, "type": "invoice_item_details",
        },
        "period": item["period"], "pricing": item["pricing"], "quantity": item["quantity"],
        "taxes": [],
    }


def invoice(object_id: str, created: int, customer_obj: dict[str, Any], currency: str, account: dict[str, Any], *,
            collection_method: str = "charge_automatically", auto_advance: bool = False,
            days_until_due: int | None = None, description: str | None = None,
            metadata: dict[str, str] | None = None, due_date: int | None = None) -> dict[str, Any]:
    return {
        "id": object_id, "object": "invoice", "account_country": account["country"],
        "account_name": account["settings"]["dashboard"]["display_name"], "amount_due": 0, "amount_overpaid": 0,
        "amount_paid": 0, "amount_remaining": 0, "amount_shipping": 0, "attempt_count": 0, "attempted": False,
        "auto_advance": auto_advance, "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_reason": "manual", "collection_method": collection_method, "created": created,
        "currency": currency, "customer": customer_obj["id"], "customer_address": customer_obj.get("address"),
        "customer_email": customer_obj.get("email"), "customer_name": customer_obj.get("name"),
        "customer_phone": customer_obj.get("phone"), "days_until_due": days_until_due,
        "default_payment_method": None, "description": description, "discounts": [],
        "due_date": due_date, "effective_at": None, "ending_balance": None, "hosted_invoice_url": None,
        "invoice_pdf": None, "last_finalization_error": None, "latest_revision": None,
        "lines": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                  "url": f"/v1/invoices/{object_id}/lines"},
        "livemode": False, "metadata": metadata or {}, "next_payment_attempt": None, "number": None,
        "paid": False, "paid_out_of_band": False, "payment_intent": None,
        "payments": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                     "url": f"/v1/invoice_payments?invoice={object_id}"},
        "period_end": created, "period_start": created, "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0, "receipt_number": None, "starting_balance": 0,
        "statement_descriptor": None, "status": "draft",
        "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                               "voided_at": None},
        "subtotal": 0, "subtotal_excluding_tax": 0, "total": 0, "total_excluding_tax": 0,
        "total_discount_amounts": [], "total_taxes": [], "webhooks_delivered_at": None,
    }


def invoice_payment(inv: dict[str, Any], payment_intent_id: str, created: int) -> dict[str, Any]:
    return {
        "id": "inpay_" + payment_intent_id.split("_", 1)[1], "object": "invoice_payment", "amount_paid": None,
        "amount_requested": inv["amount_due"], "created": created, "currency": inv["currency"],
        "invoice": inv["id"], "is_default": True, "livemode": False,
        "payment": {"payment_intent": payment_intent_id, "type": "payment_intent"}, "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
    }


def payment_intent(object_id: str, created: int, amount: int, currency: str, *, customer_id: str | None = None,
                   payment_method: str | None = None, description: str | None = None,
                   metadata: dict[str, str] | None = None, capture_method: str = "automatic",
                   payment_method_types: list[str] | None = None, receipt_email: str | None = None,
                   invoice_id: str | None = None) -> dict[str, Any]:
    return {
        "id": object_id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_details": {"tip": {}}, "amount_received": 0, "application": None, "application_fee_amount": None,
        "automatic_payment_methods": None, "canceled_at": None, "cancellation_reason": None,
        "capture_method": capture_method, "client_secret": f"{object_id}_secret_{secrets.token_hex(12)}",
        "confirmation_method": "automatic", "created": created, "currency": currency, "customer": customer_id,
        "description": description, "invoice": invoice_id, "last_payment_error": None, "latest_charge": None,
        "livemode": False, "metadata": metadata or {}, "next_action": None, "on_behalf_of": None,
        "payment_method": payment_method, "payment_method_configuration_details": None,
        "payment_method_options": {}, "payment_method_types": payment_method_types or ["card"],
        "processing": None, "receipt_email": receipt_email, "review": None, "setup_future_usage": None,
        "shipping": None, "source": None, "statement_descriptor": None, "statement_descriptor_suffix": None,
        "status": "requires_payment_method" if payment_method is None else "requires_confirmation",
        "transfer_data": None, "transfer_group": None,
    }


def charge(object_id: str, created: int, intent: dict[str, Any], method: dict[str, Any], *, status: str,
           captured: bool, failure_code: str | None = None, failure_message: str | None = None,
           outcome: dict[str, Any] | None = None, invoice_id: str | None = None) -> dict[str, Any]:
    paid = status == "succeeded"
    return {
        "id": object_id, "object": "charge", "amount": intent["amount"],
        "amount_captured": intent["amount"] if paid and captured else 0, "amount_refunded": 0,
        "application": None, "application_fee": None, "application_fee_amount": None,
        "balance_transaction": transaction_id(object_id) if paid and captured else None,
        "billing_details": {"address": None, "email": None, "name": None, "phone": None},
        "calculated_statement_descriptor": "REVLOOP", "captured": paid and captured, "created": created,
        "currency": intent["currency"], "customer": intent["customer"], "description": intent["description"],
        "disputed": False, "failure_balance_transaction": None, "failure_code": failure_code,
        "failure_message": failure_message, "fraud_details": {}, "invoice": invoice_id, "livemode": False,
        "metadata": dict(intent["metadata"]), "on_behalf_of": None, "outcome": outcome, "paid": paid,
        "payment_intent": intent["id"], "payment_method": method["id"],
        "payment_method_details": method["details"], "receipt_email": intent.get("receipt_email"),
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{object_id}", "refunded": False,
        "review": None, "shipping": None, "source": None, "source_transfer": None,
        "statement_descriptor": None, "statement_descriptor_suffix": None, "status": status,
        "transfer_data": None, "transfer_group": None,
    }


def refund(object_id: str, created: int, charge_obj: dict[str, Any], amount: int, *, reason: str | None = None,
           metadata: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "id": object_id, "object": "refund", "amount": amount,
        "balance_transaction": transaction_id(object_id), "charge": charge_obj["id"],
        "created": created, "currency": charge_obj["currency"], "destination_details": None,
        "metadata": metadata or {}, "payment_intent": charge_obj["payment_intent"], "reason": reason,
        "receipt_number": None, "source_transfer_reversal": None, "status": "succeeded",
        "transfer_reversal": None,
    }


def dispute(object_id: str, created: int, charge_obj: dict[str, Any], *, reason: str = "fraudulent",
            status: str = "needs_response") -> dict[str, Any]:
    return {
        "id": object_id, "object": "dispute", "amount": charge_obj["amount"], "balance_transactions": [],
        "charge": charge_obj["id"], "created": created, "currency": charge_obj["currency"],
        "evidence": {}, "evidence_details": {"due_by": created + 7 * 86400, "has_evidence": False,
                                             "past_due": False, "submission_count": 0},
        "is_charge_refundable": False, "livemode": False, "metadata": {},
        "payment_intent": charge_obj["payment_intent"], "reason": reason, "status": status,
    }


def account(object_id: str, created: int, *, name: str, country: str, currency: str, email: str | None,
            url: str | None = None, timezone: str = "Asia/Singapore", account_type: str = "standard",
            metadata: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "id": object_id, "object": "account",
        "business_profile": {"mcc": "7372", "name": name, "support_email": email, "url": url},
        "business_type": "company", "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True, "country": country, "created": created, "default_currency": currency,
        "details_submitted": True, "email": email, "livemode": False, "metadata": metadata or {},
        "payouts_enabled": True,
        "settings": {"dashboard": {"display_name": name, "timezone": timezone}},
        "type": account_type,
    }


def webhook_endpoint(object_id: str, created: int, url: str, enabled_events: list[str], *,
                     description: str | None = None, metadata: dict[str, str] | None = None,
                     api_version: str | None = None) -> dict[str, Any]:
    return {
        "id": object_id, "object": "webhook_endpoint", "api_version": api_version, "application": None,
        "created": created, "description": description, "enabled_events": enabled_events, "livemode": False,
        "metadata": metadata or {}, "status": "enabled", "url": url,
    }


def event(object_id: str, created: int, event_type: str, data_object: dict[str, Any], *,
          previous_attributes: dict[str, Any] | None = None, request_id: str | None = None,
          idempotency_key: str | None = None, pending_webhooks: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {"object": data_object}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": object_id, "object": "event", "api_version": API_VERSION, "created": created, "data": data,
        "livemode": False, "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key}, "type": event_type,
    }


def deleted(object_id: str, object_type: str) -> dict[str, Any]:
    return {"id": object_id, "object": object_type, "deleted": True}
