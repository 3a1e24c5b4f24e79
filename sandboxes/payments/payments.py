"""``/v1/payment_intents``, ``/v1/charges``, ``/v1/refunds`` and ``/v1/disputes``."""

from __future__ import annotations

from typing import Any

from sandboxes.payments import charging, ledger, objects
from sandboxes.payments.errors import StripeError, invalid_param
from sandboxes.payments.money import MINIMUM_CHARGE_AMOUNTS, format_amount
from sandboxes.payments.service import Call, Raw, Reply, Service, diff

INTENT_FIELDS = (
    "amount", "currency", "customer", "payment_method", "confirm", "metadata", "description", "capture_method",
    "payment_method_types", "receipt_email", "statement_descriptor", "setup_future_usage", "off_session",
    "automatic_payment_methods", "payment_method_data", "return_url", "error_on_requires_action",
)
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action")


def check_amount(amount: int, currency: str, param: str = "amount") -> None:
    minimum = MINIMUM_CHARGE_AMOUNTS.get(currency)
    if minimum is not None and amount < minimum:
        raise StripeError(
            400, f"Amount must be at least {format_amount(minimum, currency)}", code="amount_too_small", param=param
        )
    if amount > 99_999_999:
        raise StripeError(400, "Amount must be no more than 999,999.99", code="amount_too_large", param=param)


def _method_ref(call: Call) -> Any:
    data = call.params.hash("payment_method_data")
    if data:
        return data
    return call.params.str("payment_method")


def _finish(svc: Service, call: Call, intent: dict[str, Any], reply: Reply | None) -> dict[str, Any] | Reply:
    if reply is not None:
        return reply
    return svc.expand(intent, call.expand_list())


def create_intent(svc: Service, call: Call) -> dict[str, Any] | Reply:
    p = call.params.allow(INTENT_FIELDS)
    currency = p.currency(required=True) or ""
    amount = p.int("amount", required=True) or 0
    check_amount(amount, currency)
    customer_id = p.str("customer")
    if customer_id:
        svc.load("customer", customer_id, param="customer")
    capture_method = p.enum("capture_method", ("automatic", "automatic_async", "manual"), default="automatic")
    method_ref = _method_ref(call)
    intent = objects.payment_intent(
        objects.new_id("pi"), call.now, amount, currency, customer_id=customer_id,
        payment_method=method_ref if isinstance(method_ref, str) else None, description=p.str("description"),
        metadata=p.metadata_update(), capture_method=capture_method or "automatic",
        payment_method_types=[t for t in p.list("payment_method_types") if isinstance(t, str)] or None,
        receipt_email=p.str("receipt_email"),
    )
    svc.store.insert(intent, customer=customer_id, tag=intent["status"])
    svc.emit(call, "payment_intent.created", intent)
    if p.bool("confirm", False):
        return _finish(svc, call, intent, charging.confirm(svc, call, intent, method_ref))
    return _finish(svc, call, intent, None)


def retrieve_intent(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(("client_secret",))
    return svc.expand(svc.load("payment_intent", call.path["id"]), call.expand_list())


def update_intent(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("amount", "currency", "customer", "payment_method", "metadata", "description",
                           "receipt_email", "statement_descriptor", "setup_future_usage"))
    before = svc.load("payment_intent", call.path["id"])
    if before["status"] in ("succeeded", "canceled", "processing"):
        raise StripeError(400, f"You cannot update this PaymentIntent because it has a status of {before['status']}.",
                          code="payment_intent_unexpected_state")
    after = dict(before)
    if p.has("amount") or p.has("currency"):
        after["currency"] = p.currency() or before["currency"]
        after["amount"] = p.int("amount") or before["amount"]
        check_amount(after["amount"], after["currency"])
    if p.has("customer"):
        after["customer"] = svc.load("customer", p.str("customer"), param="customer")["id"]
    if p.has("payment_method"):
        after["payment_method"] = p.str("payment_method")
        after["status"] = "requires_confirmation" if after["payment_method"] else "requires_payment_method"
    for field in ("description", "receipt_email", "statement_descriptor"):
        if p.has(field):
            after[field] = p.str(field)
    after["metadata"] = p.metadata_update(before["metadata"])
    changes = diff(before, after)
    if changes:
        svc.store.save(after, tag=after["status"])
        svc.emit(call, "payment_intent.updated", after, changes)
    return after


def confirm_intent(svc: Service, call: Call) -> dict[str, Any] | Reply:
    p = call.params.allow(("payment_method", "payment_method_data", "return_url", "off_session", "receipt_email",
                           "setup_future_usage", "error_on_requires_action", "capture_method"))
    intent = svc.load("payment_intent", call.path["id"])
    if intent["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
        raise StripeError(
            400, f"This PaymentIntent's payment_method could not be updated because it has a status of "
                 f"{intent['status']}. You may only update the payment_method of a PaymentIntent with one of the "
                 "following statuses: requires_payment_method, requires_confirmation, requires_action.",
            code="payment_intent_unexpected_state",
            extra={"payment_intent": intent},
        )
    method_ref = _method_ref(call) or intent["payment_method"]
    if p.has("receipt_email"):
        intent["receipt_email"] = p.str("receipt_email")
    return _finish(svc, call, intent, charging.confirm(svc, call, intent, method_ref))


def cancel_intent(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("cancellation_reason",))
    reason = p.enum("cancellation_reason", ("duplicate", "fraudulent", "requested_by_customer", "abandoned"))
    intent = svc.load("payment_intent", call.path["id"])
    if intent["status"] not in CANCELABLE:
        raise StripeError(
            400, f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. Only a "
                 "PaymentIntent with one of the following statuses may be canceled: requires_payment_method, "
                 "requires_capture, requires_confirmation, requires_action, processing.",
            code="payment_intent_unexpected_state", extra={"payment_intent": intent},
        )
    before = dict(intent)
    intent.update(status="canceled", canceled_at=call.now, cancellation_reason=reason, amount_capturable=0)
    svc.store.save(intent, tag="canceled")
    svc.emit(call, "payment_intent.canceled", intent, diff(before, intent))
    return intent


def capture_intent(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("amount_to_capture", "metadata", "statement_descriptor"))
    intent = svc.load("payment_intent", call.path["id"])
    if intent["status"] != "requires_capture":
        raise StripeError(
            400, f"This PaymentIntent could not be captured because it has a status of {intent['status']}. Only a "
                 "PaymentIntent with one of the following statuses may be captured: requires_capture.",
            code="payment_intent_unexpected_state", extra={"payment_intent": intent},
        )
    amount = p.int("amount_to_capture", minimum=1) or intent["amount_capturable"]
    if amount > intent["amount_capturable"]:
        raise invalid_param("amount_to_capture", "The amount to capture must be less than or equal to the "
                            "amount capturable.", "amount_too_large")
    before = dict(intent)
    charge = svc.load("charge", intent["latest_charge"])
    before_charge = dict(charge)
    charge.update(captured=True, amount_captured=amount, balance_transaction=objects.transaction_id(charge["id"]))
    intent.update(status="succeeded", amount_received=amount, amount_capturable=0,
                  metadata=p.metadata_update(intent["metadata"]))
    svc.store.save(charge)
    svc.store.save(intent, tag="succeeded")
    ledger.record(svc, ledger.for_charge(charge, call.now), charge["customer"])
    svc.emit(call, "charge.captured", charge, diff(before_charge, charge))
    svc.emit(call, "payment_intent.succeeded", intent, diff(before, intent))
    return intent


def list_intents(svc: Service, call: Call) -> Raw:
    customer_id = call.params.str("customer")
    where, args = (["customer = ?"], [customer_id]) if customer_id else ([], [])
    return svc.list_page(call, "payment_intent", "/v1/payment_intents", where=where, args=args,
                         filters=("customer",))


def retrieve_charge(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    return svc.expand(svc.load("charge", call.path["id"]), call.expand_list())


def update_charge(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("metadata", "description", "receipt_email", "fraud_details", "shipping"))
    before = svc.load("charge", call.path["id"])
    after = dict(before)
    if p.has("description"):
        after["description"] = p.str("description")
    if p.has("receipt_email"):
        after["receipt_email"] = p.str("receipt_email")
    after["metadata"] = p.metadata_update(before["metadata"])
    changes = diff(before, after)
    if changes:
        svc.store.save(after)
        svc.emit(call, "charge.updated", after, changes)
    return after


def list_charges(svc: Service, call: Call) -> Raw:
    p = call.params
    where: list[str] = []
    args: list[Any] = []
    if p.str("customer"):
        where.append("customer = ?")
        args.append(p.str("customer"))
    if p.str("payment_intent"):
        where.append("parent = ?")
        args.append(p.str("payment_intent"))
    return svc.list_page(call, "charge", "/v1/charges", where=where, args=args,
                         filters=("customer", "payment_intent", "transfer_group"))


def create_refund(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("charge", "payment_intent", "amount", "reason", "metadata", "instructions_email",
                           "refund_application_fee", "reverse_transfer"))
    reason = p.enum("reason", ("duplicate", "fraudulent", "requested_by_customer"))
    charge_id = p.str("charge")
    intent_id = p.str("payment_intent")
    if charge_id and intent_id:
        raise StripeError(400, "You can only specify one of charge or payment_intent.", param="payment_intent")
    if intent_id:
        intent = svc.load("payment_intent", intent_id, param="payment_intent")
        if intent["status"] != "succeeded" or not intent["latest_charge"]:
            raise StripeError(400, f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                              code="charge_not_refundable", param="payment_intent")
        charge_id = intent["latest_charge"]
    if not charge_id:
        raise StripeError(400, "One of the following params should be provided for this request: payment_intent "
                               "or charge.", code="parameter_missing", param="charge")
    charge = svc.load("charge", charge_id, param="charge")
    if charge["refunded"]:
        raise StripeError(400, f"Charge {charge_id} has already been refunded.", code="charge_already_refunded",
                          param="charge")
    if charge["status"] != "succeeded" or not charge["captured"]:
        raise StripeError(400, f"Charge {charge_id} cannot be refunded because it has not been captured or did not "
                               "succeed.", code="charge_not_refundable", param="charge")
    remaining = charge["amount_captured"] - charge["amount_refunded"]
    amount = p.int("amount", minimum=1)
    amount = remaining if amount is None else amount
    if amount > remaining:
        currency = charge["currency"]
        raise StripeError(
            400, f"Refund amount ({format_amount(amount, currency)}) is greater than unrefunded amount on charge "
                 f"({format_amount(remaining, currency)})", code="amount_too_large", param="amount")
    refund = objects.refund(objects.new_id("re"), call.now, charge, amount, reason=reason,
                            metadata=p.metadata_update())
    svc.store.insert(refund, customer=charge["customer"], parent=charge["id"], tag="succeeded")
    ledger.record(svc, ledger.for_refund(refund), charge["customer"])
    before = dict(charge)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
    svc.store.save(charge)
    svc.emit(call, "refund.created", refund)
    svc.emit(call, "charge.refunded", charge, diff(before, charge))
    return svc.expand(refund, call.expand_list())


def retrieve_refund(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    return svc.expand(svc.load("refund", call.path["id"]), call.expand_list())


def update_refund(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("metadata",))
    before = svc.load("refund", call.path["id"])
    after = {**before, "metadata": p.metadata_update(before["metadata"])}
    changes = diff(before, after)
    if changes:
        svc.store.save(after)
        svc.emit(call, "refund.updated", after, changes)
    return after


def list_refunds(svc: Service, call: Call) -> Raw:
    p = call.params
    where: list[str] = []
    args: list[Any] = []
    if p.str("charge"):
        where.append("parent = ?")
        args.append(p.str("charge"))
    if p.str("payment_intent"):
        where.append("json_extract(body, '$.payment_intent') = ?")
        args.append(p.str("payment_intent"))
    return svc.list_page(call, "refund", "/v1/refunds", where=where, args=args, filters=("charge", "payment_intent"))


def retrieve_dispute(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    return svc.expand(svc.load("dispute", call.path["id"]), call.expand_list())


def list_disputes(svc: Service, call: Call) -> Raw:
    p = call.params
    where: list[str] = []
    args: list[Any] = []
    if p.str("charge"):
        where.append("parent = ?")
        args.append(p.str("charge"))
    if p.str("payment_intent"):
        where.append("json_extract(body, '$.payment_intent') = ?")
        args.append(p.str("payment_intent"))
    return svc.list_page(call, "dispute", "/v1/disputes", where=where, args=args,
                         filters=("charge", "payment_intent"))


ROUTES = [
    ("POST", "/v1/payment_intents", create_intent, "payment_intents"),
    ("GET", "/v1/payment_intents", list_intents, "payment_intents"),
    ("GET", "/v1/payment_intents/{id}", retrieve_intent, "payment_intents"),
    ("POST", "/v1/payment_intents/{id}", update_intent, "payment_intents"),
    ("POST", "/v1/payment_intents/{id}/confirm", confirm_intent, "payment_intents"),
    ("POST", "/v1/payment_intents/{id}/cancel", cancel_intent, "payment_intents"),
    ("POST", "/v1/payment_intents/{id}/capture", capture_intent, "payment_intents"),
    ("GET", "/v1/charges", list_charges, "charges"),
    ("GET", "/v1/charges/{id}", retrieve_charge, "charges"),
    ("POST", "/v1/charges/{id}", update_charge, "charges"),
    ("POST", "/v1/refunds", create_refund, "refunds"),
    ("GET", "/v1/refunds", list_refunds, "refunds"),
    ("GET", "/v1/refunds/{id}", retrieve_refund, "refunds"),
    ("POST", "/v1/refunds/{id}", update_refund, "refunds"),
    ("GET", "/v1/disputes", list_disputes, "disputes"),
    ("GET", "/v1/disputes/{id}", retrieve_dispute, "disputes"),
]
