"""Seeding the payments account from the book of business, with the event history that produced it.

Streams ``book.iter_companies`` and inserts with ``executemany`` in large batches inside one
transaction. Seeded events are history: they are listed by ``/v1/events`` but never delivered, and only
the last :data:`~sandboxes.payments.objects.EVENT_RETENTION_SECONDS` of it is stored, as Stripe keeps no
older events (the rest of a large book's history would be two thirds of its payments records).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson

from sandboxes import book
from sandboxes.payments import charging, invoices, ledger, objects, payment_methods, subscriptions
from sandboxes.payments.money import to_minor_units
from sandboxes.payments.store import Store

logger = logging.getLogger(__name__)

BATCH_ROWS = 20_000
ACCOUNT_NAME = "Revloop Demo Pte. Ltd."
SUCCESS_METHOD = "pm_card_visa"
DECLINE_METHODS = {"insufficient_funds": "pm_card_chargeDeclinedInsufficientFunds",
                   "expired_card": "pm_card_chargeDeclinedExpiredCard"}


def ts(value: dt.datetime | dt.date) -> int:
    """Unix seconds of a book timestamp (naive values are UTC; dates are midnight UTC)."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, 9, tzinfo=dt.UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp())


class Seeder:
    """Writes one seed's objects and events; ``counts`` says how many of each kind were written."""

    def __init__(self, store: Store, account_id: str, today: dt.date) -> None:
        self.store = store
        self.account_id = account_id
        self.today = today
        self.now = int(time.time())
        self.events_since = self.now - objects.EVENT_RETENTION_SECONDS
        self.events_past_retention = 0
        self.rows: list[tuple[Any, ...]] = []
        self.counts: Counter[str] = Counter()
        self.account: dict[str, Any] = {}
        self.prices: dict[tuple[int, str], dict[str, Any]] = {}

    # -- plumbing ---------------------------------------------------------------------------------------

    def add(self, obj: dict[str, Any], *, customer: str | None = None, parent: str | None = None,
            tag: str | None = None) -> None:
        self.rows.append((obj["id"], obj["object"], obj.get("created", obj.get("date")), customer, parent, tag, 0,
                          orjson.dumps(obj).decode()))
        self.counts[obj["object"]] += 1
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def event(self, event_type: str, obj: dict[str, Any], at: int, previous: dict[str, Any] | None = None) -> None:
        """A historical event carrying a snapshot of ``obj`` as it was at ``at``; none past the retention."""
        created = min(at, self.now)
        if created < self.events_since:
            self.events_past_retention += 1
            return
        snapshot = orjson.loads(orjson.dumps(obj))
        evt = objects.event(book.stripe_id("evt", obj["id"], event_type, at), created, event_type,
                            snapshot, previous_attributes=previous)
        self.add(evt, tag=event_type)

    def flush(self) -> None:
        if self.rows:
            self.store.insert_many(self.rows)
            self.rows.clear()

    # -- seeding ----------------------------------------------------------------------------------------

    def run(self, seed: int, scale: str) -> dict[str, int]:
        started = time.monotonic()
        with self.store.transaction():
            self.seed_account()
            self.seed_catalog(seed)
            for company in book.iter_companies(seed, scale, self.today):
                self.seed_company(company)
            self.flush()
        logger.info("seeded payments (%s, seed %s) in %.1fs: %s; %d events older than the retention not stored",
                    scale, seed, time.monotonic() - started, dict(self.counts), self.events_past_retention)
        return dict(self.counts)

    def seed_account(self) -> None:
        created = ts(self.today - dt.timedelta(days=3 * 365))
        self.account = objects.account(self.account_id, created, name=ACCOUNT_NAME, country="SG", currency="sgd",
                                       email="finance@revloop.example", url="https://revloop.example")
        self.add(self.account, tag="platform")

    def seed_catalog(self, seed: int) -> None:
        created = ts(self.today - dt.timedelta(days=3 * 365 - 1))
        for item in book.products(seed):
            product = objects.product(item.stripe_product_id, created, item.name,
                                      metadata={"salesforce_product_id": item.sf_product_id,
                                                "erp_product_id": str(item.erp_product_id), "code": item.code})
            recurring = {"interval": "year"} if item.recurring else None
            for currency, amount in item.unit_prices.items():
                code = currency.lower()
                price = objects.price(book.stripe_id("price", item.code, currency), created, product["id"], code,
                                      to_minor_units(amount, currency), recurring=recurring,
                                      lookup_key=f"{item.code}-{code}")
                self.prices[(item.index, code)] = price
                if product["default_price"] is None or code == "sgd":
                    product["default_price"] = price["id"]
            self.add(product, tag="active")
            for (index, _), price in self.prices.items():
                if index == item.index:
                    self.add(price, parent=product["id"], tag="active")

    def seed_company(self, company: book.Company) -> None:
        if not company.stripe_customer_id:
            return
        created = ts(company.created_at)
        metadata = {"salesforce_account_id": company.sf_account_id}
        if company.erp_partner_id is not None:
            metadata["erp_partner_id"] = str(company.erp_partner_id)
        cus = objects.customer(
            company.stripe_customer_id, created, name=company.name, email=company.billing_email,
            phone=company.phone, address=objects.address(company.street, company.city, company.postal_code,
                                                         company.country),
            metadata=metadata, currency=company.currency.lower(),
            invoice_prefix=company.stripe_customer_id[4:12].upper(),
        )
        self.event("customer.created", cus, created)
        for deal in company.deals:
            if deal.invoice is not None and deal.invoice.stripe_invoice_id:
                self.seed_invoice(cus, deal, deal.invoice)
        for payment in company.orphan_payments:
            self.seed_payment(cus, payment, None, {})
        for source in company.subscriptions:
            self.seed_subscription(cus, company, source)
        self.add(cus, tag=cus["email"])

    def seed_invoice(self, cus: dict[str, Any], deal: book.Deal, source: book.Invoice) -> None:
        currency = source.currency.lower()
        created = ts(source.invoice_date)
        metadata = {"salesforce_opportunity_id": deal.sf_opportunity_id, "erp_invoice_id": str(source.erp_move_id),
                    "erp_invoice_number": source.erp_number, "revloop_key": source.revloop_key}
        terms = max(0, (source.due_date - source.invoice_date).days)
        inv = objects.invoice(source.stripe_invoice_id or "", created, cus, currency, self.account,
                              collection_method="send_invoice", days_until_due=terms, metadata=metadata)
        items = list(self._items(cus, deal, source, inv, created))
        lines = [objects.line_item(item) for item in items]
        subtotal = sum(line["amount"] for line in lines)
        inv["lines"] = {"object": "list", "data": lines[:invoices.LINES_SHOWN], "has_more": len(lines) > 10,
                        "total_count": len(lines), "url": f"/v1/invoices/{inv['id']}/lines"}
        inv.update(subtotal=subtotal, subtotal_excluding_tax=subtotal, total=subtotal, total_excluding_tax=subtotal,
                   amount_due=subtotal, amount_remaining=subtotal)
        for item in items:
            self.add(item, customer=cus["id"], parent=inv["id"], tag="invoiced")
        self.event("invoice.created", inv, created)
        status = source.stripe_status or "draft"
        if status != "draft":
            sequence = cus["next_invoice_sequence"]
            cus["next_invoice_sequence"] = sequence + 1
            finalized = created + 3600
            inv.update(status="open", number=f"{cus['invoice_prefix']}-{sequence:04d}", effective_at=finalized,
                       due_date=ts(source.due_date), starting_balance=0, ending_balance=0,
                       hosted_invoice_url=invoices.hosted_url(self.account_id, inv["id"]))
            inv["status_transitions"] = {**inv["status_transitions"], "finalized_at": finalized}
            self.event("invoice.finalized", inv, finalized)
            for payment in source.payments:
                self.seed_payment(cus, payment, inv, metadata)
            if not source.payments and status in ("open", "uncollectible") and inv["amount_due"] > 0:
                self.seed_open_intent(cus, inv, finalized)
            if status == "paid" and inv["status"] != "paid":
                paid_at = ts(source.paid_at) if source.paid_at else finalized
                charging.mark_invoice_paid(inv, paid_at, inv["amount_remaining"], None)
                inv["paid_out_of_band"] = True
                self.event("invoice.paid", inv, paid_at)
            elif status == "void":
                at = ts(source.due_date)
                inv.update(status="void", amount_remaining=0)
                inv["status_transitions"] = {**inv["status_transitions"], "voided_at": at}
                self.event("invoice.voided", inv, at)
            elif status == "uncollectible" and inv["status"] == "open":
                at = ts(source.due_date) + 30 * 86400
                inv["status"] = "uncollectible"
                inv["status_transitions"] = {**inv["status_transitions"], "marked_uncollectible_at": at}
                self.event("invoice.marked_uncollectible", inv, at)
        self.add(inv, customer=cus["id"], tag=inv["status"])

    def seed_open_intent(self, cus: dict[str, Any], inv: dict[str, Any], finalized: int) -> None:
        """The payment intent Stripe creates when it finalizes an invoice, waiting for a payment method, so
        the invoice can be paid (``POST /v1/invoices/{id}/pay``) like one finalized through the API."""
        intent = objects.payment_intent(book.stripe_id("pi", inv["id"], "open"), finalized, inv["amount_due"],
                                        inv["currency"], customer_id=cus["id"], invoice_id=inv["id"],
                                        description=f"Invoice {inv['number']}")
        self.add(intent, customer=cus["id"], tag=intent["status"])
        self.event("payment_intent.created", intent, finalized)
        inv["payment_intent"] = intent["id"]
        entry = objects.invoice_payment(inv, intent["id"], finalized)
        inv["payments"] = {**inv["payments"], "data": [entry], "total_count": 1}

    def _items(self, cus: dict[str, Any], deal: book.Deal, source: book.Invoice, inv: dict[str, Any],
               created: int) -> Iterator[dict[str, Any]]:
        currency = inv["currency"]
        total = 0
        for index, line in enumerate(deal.lines):
            price = self.prices.get((line.product_index, currency))
            amount = to_minor_units(line.unit_price * line.quantity, currency)
            total += amount
            item = objects.invoice_item(book.stripe_id("ii", inv["id"], index), created, cus["id"], currency, amount,
                                        invoice_id=inv["id"], quantity=line.quantity, price_obj=price,
                                        description=None)
            yield item
        expected = to_minor_units(source.amount_total, currency)
        if expected != total:
            # The deal's amount is what the payments side bills; a rounding or discount difference becomes a line.
            yield objects.invoice_item(book.stripe_id("ii", inv["id"], "adjustment"), created, cus["id"], currency,
                                       expected - total, invoice_id=inv["id"], description="Adjustment")

    def seed_payment(self, cus: dict[str, Any], payment: book.Payment, inv: dict[str, Any] | None,
                     metadata: dict[str, str]) -> None:
        currency = payment.currency.lower()
        at = ts(payment.created_at)
        amount = to_minor_units(payment.amount, currency)
        meta = dict(metadata)
        if payment.erp_payment_id is not None:
            meta["erp_payment_id"] = str(payment.erp_payment_id)
        intent = objects.payment_intent(payment.stripe_payment_intent_id, at, amount, currency,
                                        customer_id=cus["id"], metadata=meta,
                                        invoice_id=inv["id"] if inv else None,
                                        description=f"Invoice {inv['number']}" if inv else None)
        self.event("payment_intent.created", intent, at)
        succeeded = payment.status == "succeeded"
        method_id = SUCCESS_METHOD if succeeded else DECLINE_METHODS.get(payment.failure_code or "",
                                                                         "pm_card_chargeDeclined")
        method = payment_methods.METHODS[method_id]
        charge = objects.charge(
            payment.stripe_charge_id, at, intent,
            {"id": method_id, "details": payment_methods.details(method_id, method)},
            status="succeeded" if succeeded else "failed", captured=True,
            failure_code=None if succeeded else (payment.failure_code or "card_declined"),
            failure_message=None if succeeded else (method.message or "Your card was declined."),
            outcome=payment_methods.outcome(method), invoice_id=intent["invoice"],
        )
        intent.update(latest_charge=charge["id"], payment_method=method_id)
        if succeeded:
            intent.update(status="succeeded", amount_received=amount)
            self.ledger_entry(ledger.for_charge(charge, at), cus["id"])
            self.event("charge.succeeded", charge, at)
            self.event("payment_intent.succeeded", intent, at)
        else:
            intent.update(status="requires_payment_method", payment_method=None, last_payment_error={
                "charge": charge["id"], "code": charge["failure_code"], "decline_code": method.decline_code,
                "message": charge["failure_message"], "type": "card_error"})
            self.event("charge.failed", charge, at)
            self.event("payment_intent.payment_failed", intent, at)
        if inv is not None:
            entry = objects.invoice_payment(inv, intent["id"], at)
            inv["payments"]["data"].append(entry)
            inv["payments"]["total_count"] = len(inv["payments"]["data"])
            inv["payment_intent"] = intent["id"]
            inv.update(attempted=True)
            if succeeded and inv["status"] in ("open", "uncollectible") and amount >= inv["amount_remaining"]:
                charging.mark_invoice_paid(inv, at, amount, intent["id"])
                self.event("invoice.payment_succeeded", inv, at)
                self.event("invoice.paid", inv, at)
            elif succeeded and inv["status"] in ("open", "uncollectible"):
                # A partial payment: the invoice stays open until the rest arrives (or the book says paid).
                inv.update(amount_paid=inv["amount_paid"] + amount, amount_remaining=inv["amount_remaining"] - amount)
                entry.update(status="paid", amount_paid=amount)
                self.event("invoice.payment_succeeded", inv, at)
            elif not succeeded:
                inv["attempt_count"] += 1
                self.event("invoice.payment_failed", inv, at)
        if succeeded and payment.refunded_amount > 0 and payment.stripe_refund_id:
            refunded = to_minor_units(payment.refunded_amount, currency)
            refund_at = min(at + 7 * 86400, self.now)
            refund = objects.refund(payment.stripe_refund_id, refund_at, charge, refunded,
                                    reason="requested_by_customer")
            charge.update(amount_refunded=refunded, refunded=refunded >= charge["amount_captured"])
            self.add(refund, customer=cus["id"], parent=charge["id"], tag="succeeded")
            self.ledger_entry(ledger.for_refund(refund), cus["id"])
            self.event("refund.created", refund, refund_at)
            self.event("charge.refunded", charge, refund_at, {"amount_refunded": 0, "refunded": False})
        self.add(intent, customer=cus["id"], tag=intent["status"])
        self.add(charge, customer=cus["id"], parent=intent["id"], tag=charge["status"])

    def ledger_entry(self, entry: dict[str, Any], customer: str) -> None:
        self.add(entry, customer=customer, parent=entry["source"], tag=entry["type"])

    def seed_subscription(self, cus: dict[str, Any], company: book.Company, source: book.Subscription) -> None:
        """A yearly, invoice-billed subscription to the recurring products of the deal that started it.

        The book's Active/Expired/Cancelled become ``active``; ``canceled`` at the end of the term (not
        renewed); ``canceled`` part-way through the term (at the customer's request, half way to today).
        """
        currency = cus["currency"]
        deal = _starting_deal(company, source)
        quantities: dict[int, int] = {}
        for line in deal.lines if deal else ():
            if (line.product_index, currency) in self.prices and self._recurring(line.product_index, currency):
                quantities[line.product_index] = quantities.get(line.product_index, 0) + line.quantity
        if not quantities:
            logger.debug("subscription %s has no recurring price in %s; not seeded", source.sf_subscription_id,
                         currency)
            return
        sub_id = book.stripe_id("sub", source.sf_subscription_id)
        created = ts(source.start_date)
        period = (created, ts(source.end_date + dt.timedelta(days=1)))
        items = [subscriptions.subscription_item(book.stripe_id("si", sub_id, index), created, sub_id,
                                                 self.prices[(index, currency)], quantity, period)
                 for index, quantity in sorted(quantities.items())]
        metadata = {"salesforce_subscription_id": source.sf_subscription_id}
        latest_invoice = None
        if deal is not None:
            metadata["salesforce_opportunity_id"] = deal.sf_opportunity_id
            if deal.invoice is not None and deal.invoice.stripe_invoice_id:
                latest_invoice = deal.invoice.stripe_invoice_id
        sub = subscriptions.subscription(sub_id, created, cus["id"], currency, items, period=period,
                                         days_until_due=company.payment_terms_days, latest_invoice=latest_invoice,
                                         metadata=metadata)
        self.event("customer.subscription.created", sub, created)
        if source.status == "Expired":
            subscriptions.cancel(sub, period[1], period[1], at_period_end=True)
        elif source.status == "Cancelled":
            last_day = min(source.end_date, self.today)
            at = ts(source.start_date + (last_day - source.start_date) / 2)
            subscriptions.cancel(sub, at, at, at_period_end=False)
        if sub["status"] == "canceled" and sub["ended_at"] <= self.now:
            self.event("customer.subscription.deleted", sub, sub["ended_at"])
        for item in items:
            self.add(item, customer=cus["id"], parent=sub_id)
        self.add(sub, customer=cus["id"], tag=sub["status"])

    def _recurring(self, product_index: int, currency: str) -> bool:
        return self.prices[(product_index, currency)]["recurring"] is not None


def _starting_deal(company: book.Company, source: book.Subscription) -> book.Deal | None:
    """The won deal whose invoice (or close) date is the subscription's start: the book links them that way."""
    for deal in company.deals:
        start = deal.invoice.invoice_date if deal.invoice else deal.close_date
        if deal.is_won and start == source.start_date:
            return deal
    return None
