"""``/v1/invoices`` and ``/v1/invoiceitems``: drafts, lines, finalize, pay, void, mark uncollectible."""

from __future__ import annotations

from typing import Any

import orjson

from sandboxes.payments import charging, objects
from sandboxes.payments.errors import StripeError, invalid_param
from sandboxes.payments.params import Params
from sandboxes.payments.service import Call, Raw, Reply, Service, diff

INVOICE_FIELDS = ("customer", "collection_method", "currency", "metadata", "auto_advance", "days_until_due",
                  "description", "due_date", "pending_invoice_items_behavior", "default_payment_method", "footer",
                  "statement_descriptor")
ITEM_FIELDS = ("customer", "invoice", "price", "pricing", "amount", "currency", "quantity", "description", "metadata",
               "unit_amount_decimal", "period", "discountable")
LINES_SHOWN = 10
"""Lines embedded in an invoice body; the rest are paged through ``/v1/invoices/{id}/lines``."""


def hosted_url(account_id: str, invoice_id: str) -> str:
    return f"https://invoice.stripe.com/i/{account_id}/test_{invoice_id.split('_', 1)[1]}"


def refresh_totals(svc: Service, inv: dict[str, Any]) -> None:
    """Recompute lines and amounts of a draft from its invoice items."""
    items = svc.store.find("invoiceitem", "parent = ?", (inv["id"],))
    lines = [objects.line_item(item) for item in items]
    subtotal = sum(line["amount"] for line in lines)
    inv["lines"] = {"object": "list", "data": lines[:LINES_SHOWN], "has_more": len(lines) > LINES_SHOWN,
                    "total_count": len(lines), "url": f"/v1/invoices/{inv['id']}/lines"}
    inv.update(subtotal=subtotal, subtotal_excluding_tax=subtotal, total=subtotal, total_excluding_tax=subtotal,
               amount_due=subtotal, amount_remaining=subtotal - inv["amount_paid"])


def _draft(svc: Service, invoice_id: str, param: str = "invoice") -> dict[str, Any]:
    inv = svc.load("invoice", invoice_id, param=param)
    if inv["status"] != "draft":
        raise StripeError(400, f"You can only modify draft invoices; invoice {invoice_id} is {inv['status']}.",
                          code="invoice_not_editable", param=param)
    return inv


def _new_item(svc: Service, call: Call, p: Params, customer_id: str, invoice: dict[str, Any] | None) -> dict[str, Any]:
    quantity = p.int("quantity", minimum=0)
    quantity = 1 if quantity is None else quantity
    pricing = p.hash("pricing", ("price",)) or {}
    price_id = p.str("price") or pricing.get("price")
    price_obj = None
    if price_id:
        price_obj = svc.load("price", price_id, param="price")
        currency = price_obj["currency"]
        amount = price_obj["unit_amount"] * quantity
    else:
        amount = p.int("amount")
        unit_decimal = p.str("unit_amount_decimal")
        if amount is None and unit_decimal is not None:
            try:
                amount = int(round(float(unit_decimal) * quantity))
            except ValueError:
                raise invalid_param("unit_amount_decimal", f"Invalid decimal: {unit_decimal}") from None
        if amount is None:
            raise StripeError(400, "Missing required param: amount or price.", code="parameter_missing",
                              param="amount")
        currency = p.currency() or (invoice["currency"] if invoice else None)
        if currency is None:
            raise StripeError(400, "Missing required param: currency.", code="parameter_missing", param="currency")
    if invoice is not None and currency != invoice["currency"]:
        raise invalid_param("currency", f"The currency of this invoice item ({currency}) does not match the "
                            f"invoice's currency ({invoice['currency']}).")
    item = objects.invoice_item(objects.new_id("ii"), call.now, customer_id, currency, amount,
                                invoice_id=invoice["id"] if invoice else None, quantity=quantity, price_obj=price_obj,
                                description=p.str("description") or (price_obj and svc.load(
                                    "product", price_obj["product"])["name"]),
                                metadata=p.metadata_update())
    svc.store.insert(item, customer=customer_id, parent=item["invoice"], tag="pending" if not invoice else "invoiced")
    svc.emit(call, "invoiceitem.created", item)
    return item


def _save_draft(svc: Service, call: Call, before: dict[str, Any], inv: dict[str, Any]) -> None:
    refresh_totals(svc, inv)
    changes = diff(before, inv)
    svc.store.save(inv)
    if changes:
        svc.emit(call, "invoice.updated", inv, changes)


def create_item(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(ITEM_FIELDS)
    customer_id = svc.load("customer", p.str("customer", required=True), param="customer")["id"]
    invoice_id = p.str("invoice")
    inv = _draft(svc, invoice_id) if invoice_id else None
    if inv is not None and inv["customer"] != customer_id:
        raise invalid_param("invoice", f"The invoice {invoice_id} belongs to a different customer.")
    item = _new_item(svc, call, p, customer_id, inv)
    if inv is not None:
        _save_draft(svc, call, dict(inv), inv)
    return item


def retrieve_item(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    return svc.expand(svc.load("invoiceitem", call.path["id"]), call.expand_list())


def delete_item(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    item = svc.load("invoiceitem", call.path["id"])
    inv = _draft(svc, item["invoice"]) if item["invoice"] else None
    svc.store.save(item, deleted=True)
    svc.emit(call, "invoiceitem.deleted", item)
    if inv is not None:
        _save_draft(svc, call, dict(inv), inv)
    return objects.deleted(item["id"], "invoiceitem")


def list_items(svc: Service, call: Call) -> Raw:
    p = call.params
    where: list[str] = []
    args: list[Any] = []
    if p.str("customer"):
        where.append("customer = ?")
        args.append(p.str("customer"))
    if p.str("invoice"):
        where.append("parent = ?")
        args.append(p.str("invoice"))
    pending = p.bool("pending")
    if pending is not None:
        where.append("tag = ?")
        args.append("pending" if pending else "invoiced")
    return svc.list_page(call, "invoiceitem", "/v1/invoiceitems", where=where, args=args,
                         filters=("customer", "invoice", "pending"))


def create(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(INVOICE_FIELDS)
    cus = svc.load("customer", p.str("customer", required=True), param="customer")
    method = p.enum("collection_method", ("charge_automatically", "send_invoice"), default="charge_automatically")
    days = p.int("days_until_due", minimum=0)
    due_date = p.int("due_date")
    if method == "send_invoice" and days is None and due_date is None:
        days = 30
    if method == "charge_automatically" and (days is not None or due_date is not None):
        raise invalid_param("days_until_due", "Invoices with collection_method=charge_automatically cannot have "
                            "a days_until_due or due_date.")
    currency = p.currency() or cus.get("currency") or svc.account["default_currency"]
    inv = objects.invoice(objects.new_id("in"), call.now, cus, currency, svc.account, collection_method=method or "",
                          auto_advance=bool(p.bool("auto_advance", False)), days_until_due=days,
                          description=p.str("description"), metadata=p.metadata_update(), due_date=due_date)
    svc.store.insert(inv, customer=cus["id"], tag="draft")
    behavior = p.enum("pending_invoice_items_behavior", ("exclude", "include"), default="exclude")
    if behavior == "include":
        for item in svc.store.find("invoiceitem", "customer = ? AND tag = 'pending'", (cus["id"],)):
            if item["currency"] == currency:
                item["invoice"] = inv["id"]
                svc.store.save(item, tag="invoiced")
                svc.store.conn.execute("UPDATE objects SET parent = ? WHERE id = ?", (inv["id"], item["id"]))
        refresh_totals(svc, inv)
        svc.store.save(inv)
    svc.emit(call, "invoice.created", inv)
    return svc.expand(inv, call.expand_list())


def retrieve(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    return svc.expand(svc.load("invoice", call.path["id"]), call.expand_list())


def update(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("metadata", "description", "auto_advance", "collection_method", "days_until_due",
                           "due_date", "footer", "default_payment_method", "statement_descriptor"))
    before = svc.load("invoice", call.path["id"])
    inv = dict(before)
    if before["status"] != "draft" and any(p.has(f) for f in ("collection_method", "days_until_due", "due_date")):
        raise StripeError(400, "Finalized invoices can't be updated in this way.", code="invoice_not_editable")
    if p.has("description"):
        inv["description"] = p.str("description")
    if p.has("auto_advance"):
        inv["auto_advance"] = p.bool("auto_advance")
    if p.has("collection_method"):
        inv["collection_method"] = p.enum("collection_method", ("charge_automatically", "send_invoice"))
    if p.has("days_until_due"):
        inv["days_until_due"] = p.int("days_until_due", minimum=0)
    inv["metadata"] = p.metadata_update(before["metadata"])
    changes = diff(before, inv)
    if changes:
        svc.store.save(inv)
        svc.emit(call, "invoice.updated", inv, changes)
    return inv


def delete(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    inv = svc.load("invoice", call.path["id"])
    if inv["status"] != "draft":
        raise StripeError(400, "You can only delete draft invoices.", code="invoice_not_editable")
    svc.store.save(inv, deleted=True)
    svc.emit(call, "invoice.deleted", inv)
    return objects.deleted(inv["id"], "invoice")


def add_lines(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("lines", "invoice_metadata"))
    inv = _draft(svc, call.path["id"], "id")
    lines = p.list("lines")
    if not lines:
        raise StripeError(400, "Missing required param: lines.", code="parameter_missing", param="lines")
    before = dict(inv)
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            raise invalid_param(f"lines[{index}]", "Invalid object: each line must be a hash")
        line_params = Params(line)
        for key in line:
            if key not in ("price", "pricing", "quantity", "amount", "description", "metadata", "period",
                           "discountable", "price_data", "invoice_item"):
                raise StripeError(400, f"Received unknown parameter: lines[{index}][{key}]",
                                  code="parameter_unknown", param=f"lines[{index}][{key}]")
        _new_item(svc, call, line_params, inv["customer"], inv)
    _save_draft(svc, call, before, inv)
    return svc.expand(inv, call.expand_list())


def list_lines(svc: Service, call: Call) -> Raw:
    inv = svc.load("invoice", call.path["id"])
    page = svc.list_page(call, "invoiceitem", f"/v1/invoices/{inv['id']}/lines", where=["parent = ?"],
                         args=[inv["id"]])
    envelope = orjson.loads(page.body)
    envelope["data"] = [objects.line_item(item) for item in envelope["data"]]
    return Raw(orjson.dumps(envelope))


def finalize(svc: Service, call: Call) -> dict[str, Any]:
    p = call.params.allow(("auto_advance",))
    inv = svc.load("invoice", call.path["id"])
    if inv["status"] != "draft":
        raise StripeError(400, "This invoice is already finalized, you can't re-finalize a non-draft invoice.")
    before = dict(inv)
    cus = svc.load("customer", inv["customer"])
    refresh_totals(svc, inv)
    sequence = cus["next_invoice_sequence"]
    cus_before = dict(cus)
    cus["next_invoice_sequence"] = sequence + 1
    svc.store.save(cus)
    svc.emit(call, "customer.updated", cus, diff(cus_before, cus))
    inv.update(
        status="open", number=f"{cus['invoice_prefix']}-{sequence:04d}", effective_at=call.now,
        hosted_invoice_url=hosted_url(svc.account_id, inv["id"]),
        invoice_pdf=f"https://pay.stripe.com/invoice/{svc.account_id}/test_{inv['id'].split('_', 1)[1]}/pdf",
        auto_advance=bool(p.bool("auto_advance", inv["auto_advance"])),
        starting_balance=0, ending_balance=0,
    )
    if inv["days_until_due"] is not None and inv["due_date"] is None:
        inv["due_date"] = call.now + inv["days_until_due"] * 86400
    inv["status_transitions"] = {**inv["status_transitions"], "finalized_at": call.now}
    if inv["amount_due"] > 0:
        intent = objects.payment_intent(objects.new_id("pi"), call.now, inv["amount_due"], inv["currency"],
                                        customer_id=inv["customer"], description=f"Invoice {inv['number']}",
                                        invoice_id=inv["id"])
        svc.store.insert(intent, customer=inv["customer"], tag=intent["status"])
        svc.emit(call, "payment_intent.created", intent)
        inv["payment_intent"] = intent["id"]
        payment = objects.invoice_payment(inv, intent["id"], call.now)
        inv["payments"] = {**inv["payments"], "data": [payment], "total_count": 1}
        svc.store.save(inv, tag="open")
        svc.emit(call, "invoice.finalized", inv, diff(before, inv))
    else:
        svc.store.save(inv, tag="open")
        svc.emit(call, "invoice.finalized", inv, diff(before, inv))
        paid_before = dict(inv)
        charging.mark_invoice_paid(inv, call.now, 0, None)
        svc.store.save(inv, tag="paid")
        svc.emit(call, "invoice.paid", inv, diff(paid_before, inv))
    return svc.expand(inv, call.expand_list())


def pay(svc: Service, call: Call) -> dict[str, Any] | Reply:
    p = call.params.allow(("payment_method", "paid_out_of_band", "off_session", "forgive", "source", "mandate"))
    inv = svc.load("invoice", call.path["id"])
    if inv["status"] == "paid":
        raise StripeError(400, "Invoice is already paid")
    if inv["status"] not in ("open", "uncollectible"):
        raise StripeError(400, f"You can only pay an invoice that is open or uncollectible; this one is "
                               f"{inv['status']}.")
    if p.bool("paid_out_of_band", False):
        before = dict(inv)
        charging.mark_invoice_paid(inv, call.now, inv["amount_remaining"], None)
        inv["paid_out_of_band"] = True
        svc.store.save(inv, tag="paid")
        svc.emit(call, "invoice.paid", inv, diff(before, inv))
        return inv
    intent = svc.load("payment_intent", inv["payment_intent"])
    if intent["status"] == "processing":
        raise StripeError(400, "This invoice's payment is currently processing.",
                          code="invoice_payment_intent_requires_action")
    method_ref = p.str("payment_method") or p.str("source") or intent["payment_method"] or inv["default_payment_method"]
    if method_ref is None:
        raise StripeError(400, "This customer has no attached payment source or default payment method. Please "
                               "consider adding a default payment method.", param="payment_method")
    reply = charging.confirm(svc, call, intent, method_ref)
    if reply is not None:
        return reply
    return svc.expand(svc.load("invoice", inv["id"]), call.expand_list())


def void(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    inv = svc.load("invoice", call.path["id"])
    if inv["status"] not in ("open", "uncollectible"):
        raise StripeError(400, f"You can only void an open or uncollectible invoice; this one is {inv['status']}.")
    before = dict(inv)
    inv.update(status="void", amount_remaining=0)
    inv["status_transitions"] = {**inv["status_transitions"], "voided_at": call.now}
    svc.store.save(inv, tag="void")
    _cancel_intent(svc, call, inv)
    svc.emit(call, "invoice.voided", inv, diff(before, inv))
    return inv


def _cancel_intent(svc: Service, call: Call, inv: dict[str, Any]) -> None:
    intent = svc.store.get(inv["payment_intent"], "payment_intent") if inv["payment_intent"] else None
    if intent is None or intent["status"] not in ("requires_payment_method", "requires_confirmation"):
        return
    before = dict(intent)
    intent.update(status="canceled", canceled_at=call.now, cancellation_reason="void_invoice")
    svc.store.save(intent, tag="canceled")
    svc.emit(call, "payment_intent.canceled", intent, diff(before, intent))


def mark_uncollectible(svc: Service, call: Call) -> dict[str, Any]:
    call.params.allow(())
    inv = svc.load("invoice", call.path["id"])
    if inv["status"] != "open":
        raise StripeError(400, f"You can only mark an open invoice as uncollectible; this one is {inv['status']}.")
    before = dict(inv)
    inv["status"] = "uncollectible"
    inv["status_transitions"] = {**inv["status_transitions"], "marked_uncollectible_at": call.now}
    svc.store.save(inv, tag="uncollectible")
    svc.emit(call, "invoice.marked_uncollectible", inv, diff(before, inv))
    return inv


def list_(svc: Service, call: Call) -> Raw:
    p = call.params
    where: list[str] = []
    args: list[Any] = []
    if p.str("customer"):
        where.append("customer = ?")
        args.append(p.str("customer"))
    status = p.enum("status", ("draft", "open", "paid", "uncollectible", "void"))
    if status:
        where.append("tag = ?")
        args.append(status)
    if p.str("collection_method"):
        where.append("json_extract(body, '$.collection_method') = ?")
        args.append(p.str("collection_method"))
    return svc.list_page(call, "invoice", "/v1/invoices", where=where, args=args,
                         filters=("customer", "status", "collection_method", "subscription", "due_date"))


ROUTES = [
    ("POST", "/v1/invoices", create, "invoices"),
    ("GET", "/v1/invoices", list_, "invoices"),
    ("GET", "/v1/invoices/{id}", retrieve, "invoices"),
    ("POST", "/v1/invoices/{id}", update, "invoices"),
    ("DELETE", "/v1/invoices/{id}", delete, "invoices"),
    ("GET", "/v1/invoices/{id}/lines", list_lines, "invoices"),
    ("POST", "/v1/invoices/{id}/add_lines", add_lines, "invoices"),
    ("POST", "/v1/invoices/{id}/finalize", finalize, "invoices"),
    ("POST", "/v1/invoices/{id}/pay", pay, "invoices"),
    ("POST", "/v1/invoices/{id}/void", void, "invoices"),
    ("POST", "/v1/invoices/{id}/mark_uncollectible", mark_uncollectible, "invoices"),
    ("POST", "/v1/invoiceitems", create_item, "invoiceitems"),
    ("GET", "/v1/invoiceitems", list_items, "invoiceitems"),
    ("GET", "/v1/invoiceitems/{id}", retrieve_item, "invoiceitems"),
    ("DELETE", "/v1/invoiceitems/{id}", delete_item, "invoiceitems"),
]
