"""Running a payment: confirm a payment intent with a test method, charge, settle, and pay its invoice."""

from __future__ import annotations

import logging
import time
from typing import Any

from sandboxes.payments import ledger, objects, payment_methods
from sandboxes.payments.errors import DOC_URL, error_body
from sandboxes.payments.params import Params
from sandboxes.payments.service import Call, Reply, Service, diff

logger = logging.getLogger(__name__)


def payment_method_object(method_id: str, method: payment_methods.TestMethod, customer_id: str | None,
                          created: int) -> dict[str, Any]:
    details = payment_methods.details(method_id, method)
    kind = details["type"]
    return {"id": method_id, "object": "payment_method", "billing_details": {"address": None, "email": None,
            "name": None, "phone": None}, kind: details[kind], "created": created, "customer": customer_id,
            "livemode": False, "metadata": {}, "type": kind}


def _failure(method_id: str, method: payment_methods.TestMethod, intent: dict[str, Any],
             charge_id: str) -> dict[str, Any]:
    code = method.failure_code or "card_declined"
    error: dict[str, Any] = {
        "charge": charge_id, "code": code, "doc_url": DOC_URL + code.replace("_", "-"),
        "message": method.message or "Your card was declined.",
        "payment_method": payment_method_object(method_id, method, intent["customer"], intent["created"]),
        "type": "card_error" if method.method_type == "card" else "invalid_request_error",
    }
    if method.decline_code:
        error["decline_code"] = method.decline_code
    return error


def confirm(svc: Service, call: Call, intent: dict[str, Any], method_ref: Any) -> Reply | None:
    """Attempt the payment of ``intent`` (already stored) with ``method_ref``; updates and saves it.

    Returns:
        None when the attempt succeeded or is processing, else the 402 ``card_error`` reply Stripe sends
        (the failed charge and the intent's ``last_payment_error`` are kept either way).
    """
    method_id, method = payment_methods.resolve(method_ref)
    before = dict(intent)
    details = payment_methods.details(method_id, method)
    charge_id = objects.new_id("ch")
    if method.result == "declined":
        status = "failed"
    elif method.result.startswith("async"):
        status = "pending"
    else:
        status = "succeeded"
    captured = intent["capture_method"] != "manual"
    charge = objects.charge(
        charge_id, call.now, intent, {"id": method_id, "details": details}, status=status, captured=captured,
        failure_code=method.failure_code if status == "failed" else None,
        failure_message=method.message if status == "failed" else None,
        outcome=payment_methods.outcome(method) if status != "pending" else None, invoice_id=intent.get("invoice"),
    )
    svc.store.insert(charge, customer=intent["customer"], parent=intent["id"], tag=status)
    intent.update(payment_method=method_id, latest_charge=charge_id, payment_method_types=[details["type"]],
                  last_payment_error=None)
    reply: Reply | None = None
    if status == "failed":
        error = _failure(method_id, method, intent, charge_id)
        intent.update(status="requires_payment_method", payment_method=None, last_payment_error=error)
        svc.store.save(intent, tag=intent["status"])
        svc.emit(call, "charge.failed", charge)
        svc.emit(call, "payment_intent.payment_failed", intent, diff(before, intent))
        _invoice_attempt_failed(svc, call, intent)
        body = error_body(error["message"], type=error["type"], code=error["code"],
                          decline_code=error.get("decline_code"),
                          extra={"charge": charge_id, "payment_intent": intent,
                                 "payment_method": error["payment_method"],
                                 "request_log_url": f"https://dashboard.stripe.com/test/logs/{call.request_id}"})
        reply = Reply(body, 402)
    elif status == "pending":
        intent.update(status="processing")
        svc.store.save(intent, tag="processing")
        svc.store.conn.execute(
            "INSERT OR REPLACE INTO settlements (payment_intent, settles_at, outcome) VALUES (?, ?, ?)",
            (intent["id"], time.time() + svc.settings.settlement_delay_seconds,
             "succeeded" if method.result == "async_succeeded" else "failed"),
        )
        svc.emit(call, "charge.pending", charge)
        svc.emit(call, "payment_intent.processing", intent, diff(before, intent))
        svc.settlements_ready.set()
    else:
        if captured:
            intent.update(status="succeeded", amount_received=intent["amount"])
        else:
            intent.update(status="requires_capture", amount_capturable=intent["amount"])
        svc.store.save(intent, tag=intent["status"])
        if captured:
            ledger.record(svc, ledger.for_charge(charge, call.now), charge["customer"])
        svc.emit(call, "charge.succeeded", charge)
        if captured:
            svc.emit(call, "payment_intent.succeeded", intent, diff(before, intent))
            _invoice_paid(svc, call, intent)
        else:
            svc.emit(call, "payment_intent.amount_capturable_updated", intent, diff(before, intent))
        if method.disputed:
            _open_dispute(svc, call, charge)
    return reply


def _open_dispute(svc: Service, call: Call, charge: dict[str, Any]) -> None:
    dispute = objects.dispute(objects.new_id("dp"), call.now, charge)
    withdrawal = ledger.for_dispute(dispute)
    dispute["balance_transactions"] = [withdrawal]
    ledger.record(svc, withdrawal, charge["customer"])
    svc.store.insert(dispute, customer=charge["customer"], parent=charge["id"], tag=dispute["status"])
    before = dict(charge)
    charge["disputed"] = True
    svc.store.save(charge)
    svc.emit(call, "charge.dispute.created", dispute)
    svc.emit(call, "charge.updated", charge, diff(before, charge))


def settle(svc: Service, payment_intent_id: str, outcome: str) -> None:
    """Finish an asynchronous payment (bank debit) as the network eventually reports it."""
    call = Call(Params({}), {}, request_id=None, idempotency_key=None, now=int(time.time()))  # type: ignore[arg-type]
    svc.store.conn.execute("DELETE FROM settlements WHERE payment_intent = ?", (payment_intent_id,))
    intent = svc.store.get(payment_intent_id, "payment_intent")
    if intent is None or intent["status"] != "processing":
        return
    charge = svc.load("charge", intent["latest_charge"])
    before_intent, before_charge = dict(intent), dict(charge)
    method_id = charge["payment_method"]
    _, method = payment_methods.resolve(method_id)
    if outcome == "succeeded":
        charge.update(status="succeeded", paid=True, captured=True, amount_captured=charge["amount"],
                      balance_transaction=objects.transaction_id(charge["id"]),
                      outcome=payment_methods.outcome(method))
        intent.update(status="succeeded", amount_received=intent["amount"])
        svc.store.save(charge, tag="succeeded")
        svc.store.save(intent, tag="succeeded")
        ledger.record(svc, ledger.for_charge(charge, call.now), charge["customer"])
        svc.emit(call, "charge.succeeded", charge, diff(before_charge, charge))
        svc.emit(call, "payment_intent.succeeded", intent, diff(before_intent, intent))
        _invoice_paid(svc, call, intent)
    else:
        error = _failure(method_id, method, intent, charge["id"])
        charge.update(status="failed", failure_code=method.failure_code, failure_message=method.message,
                      outcome=payment_methods.outcome(method))
        intent.update(status="requires_payment_method", payment_method=None, last_payment_error=error)
        svc.store.save(charge, tag="failed")
        svc.store.save(intent, tag="requires_payment_method")
        svc.emit(call, "charge.failed", charge, diff(before_charge, charge))
        svc.emit(call, "payment_intent.payment_failed", intent, diff(before_intent, intent))
        _invoice_attempt_failed(svc, call, intent)
    logger.info("settled %s as %s", payment_intent_id, outcome)


def settle_due(svc: Service, *, force: bool = False) -> int:
    """Settle every processing payment whose delay has passed (all of them when ``force``)."""
    horizon = 1e18 if force else time.time()
    due = svc.store.conn.execute(
        "SELECT payment_intent, outcome FROM settlements WHERE settles_at <= ? ORDER BY settles_at", (horizon,)
    ).fetchall()
    for payment_intent_id, outcome in due:
        with svc.store.transaction():
            settle(svc, payment_intent_id, outcome)
    return len(due)


def _invoice_paid(svc: Service, call: Call, intent: dict[str, Any]) -> None:
    invoice_id = intent.get("invoice")
    inv = svc.store.get(invoice_id, "invoice") if invoice_id else None
    if inv is None or inv["status"] not in ("open", "uncollectible"):
        return
    before = dict(inv)
    mark_invoice_paid(inv, call.now, intent["amount_received"], intent["id"])
    svc.store.save(inv, tag="paid")
    svc.emit(call, "invoice.payment_succeeded", inv, diff(before, inv))
    svc.emit(call, "invoice.paid", inv, diff(before, inv))


def mark_invoice_paid(inv: dict[str, Any], paid_at: int, amount: int, payment_intent_id: str | None) -> None:
    """Move an invoice's amounts and status to paid (shared with seeding)."""
    inv.update(status="paid", paid=True, attempted=True, amount_paid=inv["amount_paid"] + amount,
               amount_remaining=max(0, inv["amount_due"] - inv["amount_paid"] - amount),
               attempt_count=inv["attempt_count"] + (1 if payment_intent_id else 0), next_payment_attempt=None)
    inv["status_transitions"] = {**inv["status_transitions"], "paid_at": paid_at}
    for payment in inv["payments"]["data"]:
        if payment["payment"]["payment_intent"] == payment_intent_id:
            payment.update(status="paid", amount_paid=amount)
            payment["status_transitions"] = {**payment["status_transitions"], "paid_at": paid_at}


def _invoice_attempt_failed(svc: Service, call: Call, intent: dict[str, Any]) -> None:
    invoice_id = intent.get("invoice")
    inv = svc.store.get(invoice_id, "invoice") if invoice_id else None
    if inv is None or inv["status"] != "open":
        return
    before = dict(inv)
    inv.update(attempted=True, attempt_count=inv["attempt_count"] + 1)
    svc.store.save(inv)
    svc.emit(call, "invoice.payment_failed", inv, diff(before, inv))
