"""``/v1/balance_transactions``: the account's ledger, one entry per charge, refund and dispute.

Each entry is written when the money moves (a charge captured, a refund made, a dispute opened) with the
``txn_`` id the charge or refund already names, so ``balance_transaction`` fields can be followed. Fees
follow one documented rule, :data:`FEE_RATE` of the gross on charges and nothing on refunds or disputes.
An entry's ``status`` depends on the clock (``pending`` until ``available_on``), so it is set when read.
"""

from __future__ import annotations

import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandboxes.payments import objects
from sandboxes.payments.errors import invalid_param, no_such
from sandboxes.payments.service import Call, Raw, Service

FEE_RATE = Decimal("0.029")
"""Processing fee on a charge's captured amount, rounded half up in minor units (no fixed part, so the rule
holds for zero-decimal currencies too)."""

AVAILABLE_AFTER_SECONDS = 2 * 86400
"""Funds become available two days after the charge (Stripe's rolling payout delay varies by country)."""

TYPES = (
    "adjustment", "advance", "advance_funding", "anticipation_repayment", "application_fee",
    "application_fee_refund", "charge", "climate_order_purchase", "climate_order_refund",
    "connect_collection_transfer", "contribution", "issuing_authorization_hold", "issuing_authorization_release",
    "issuing_dispute", "issuing_transaction", "obligation_outbound", "obligation_reversal_inbound", "payment",
    "payment_failure_refund", "payment_network_reserve_hold", "payment_network_reserve_release",
    "payment_refund", "payment_reversal", "payment_unreconciled", "payout", "payout_cancel", "payout_failure",
    "payout_minimum_balance_hold", "payout_minimum_balance_release", "refund", "refund_failure",
    "reserve_transaction", "reserved_funds", "stripe_fee", "stripe_fx_fee", "tax_fee", "topup",
    "topup_reversal", "transfer", "transfer_cancel", "transfer_failure", "transfer_refund",
)
"""The ``type`` values Stripe accepts as a list filter."""


def processing_fee(amount: int) -> int:
    return int((Decimal(amount) * FEE_RATE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _entry(source_id: str, created: int, amount: int, fee: int, currency: str, *, kind: str, category: str,
           description: str | None, fee_description: str = "Stripe processing fees") -> dict[str, Any]:
    available_on = created + AVAILABLE_AFTER_SECONDS
    return {
        "id": objects.transaction_id(source_id), "object": "balance_transaction", "amount": amount,
        "available_on": available_on, "created": created, "currency": currency, "description": description,
        "exchange_rate": None, "fee": fee,
        "fee_details": [{"amount": fee, "application": None, "currency": currency, "description": fee_description,
                         "type": "stripe_fee"}] if fee else [],
        "net": amount - fee, "reporting_category": category, "source": source_id,
        "status": status_at(available_on, created), "type": kind,
    }


def for_charge(charge: dict[str, Any], created: int) -> dict[str, Any]:
    """The entry of a captured charge (gross ``amount_captured``, less the processing fee)."""
    amount = charge["amount_captured"]
    return _entry(charge["id"], created, amount, processing_fee(amount), charge["currency"], kind="charge",
                  category="charge", description=charge.get("description"))


def for_refund(refund: dict[str, Any]) -> dict[str, Any]:
    return _entry(refund["id"], refund["created"], -refund["amount"], 0, refund["currency"], kind="refund",
                  category="refund", description=f"REFUND FOR CHARGE ({refund['charge']})")


def for_dispute(dispute: dict[str, Any]) -> dict[str, Any]:
    """The withdrawal of the disputed amount (Stripe's ``adjustment`` in the ``dispute`` category)."""
    return _entry(dispute["id"], dispute["created"], -dispute["amount"], 0, dispute["currency"], kind="adjustment",
                  category="dispute", description=f"Chargeback withdrawal for {dispute['charge']}")


def status_at(available_on: int, now: float | None = None) -> str:
    return "available" if available_on <= (time.time() if now is None else now) else "pending"


def record(svc: Service, entry: dict[str, Any], customer: str | None) -> None:
    """Store ``entry`` (inside the caller's transaction); ``parent`` is the source, ``tag`` the type."""
    svc.store.insert(entry, customer=customer, parent=entry["source"], tag=entry["type"])


def _current(entry: dict[str, Any]) -> dict[str, Any]:
    entry["status"] = status_at(entry["available_on"])
    return entry


def list_transactions(svc: Service, call: Call) -> Raw:
    p = call.params
    where: list[str] = []
    args: list[Any] = []
    kind = p.str("type")
    if kind is not None:
        if kind not in TYPES:
            raise invalid_param("type", f"Invalid type: must be one of {', '.join(TYPES)}")
        where.append("tag = ?")
        args.append(kind)
    source = p.str("source")
    if source is not None:
        where.append("parent = ?")
        args.append(source)
    currency = p.currency()
    if currency is not None:
        where.append("json_extract(body, '$.currency') = ?")
        args.append(currency)
    payout = p.str("payout")
    if payout is not None:
        # No payouts are ever made here, so every payout id names nothing.
        raise no_such("payout", payout, "payout")
    return svc.list_page(call, "balance_transaction", "/v1/balance_transactions", where=where, args=args,
                         filters=("type", "source", "currency", "payout"), transform=_current)


def retrieve_transaction(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    entry = svc.load("balance_transaction", call.path["id"])
    return svc.expand(_current(entry), call.expand_list())


ROUTES = [
    ("GET", "/v1/balance_transactions", list_transactions, "balance_transactions"),
    ("GET", "/v1/balance_transactions/{id}", retrieve_transaction, "balance_transactions"),
]
