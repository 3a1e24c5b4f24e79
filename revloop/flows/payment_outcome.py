"""Flow 3, ``payment_outcome`` (ERP half): what happened to the money of our invoices is recorded in the ERP
as Odoo records it, which moves the invoice's ``payment_state``; and :func:`outcome`, the one rule that turns
an invoice's payment attempts into the payment status the Salesforce ``Invoice__c`` shows (its other half, see
:mod:`revloop.flows.salesforce_invoice`).

Triggers and writes (all read from the objects' *current* state in ``fct_payments`` and the payments staging
views, whether the events came from the events feed or the webhook receiver, so duplicated and out-of-order
events cannot change the result):

* a succeeded charge on one of our invoices without an ERP receipt (``erp_payment_id`` empty):
  ``("account.payment", "register_payment")`` ``{"invoice_id", "payment_id": <payment intent id>, "amount",
  "date"}``, key ``erp-payment:<payment intent id>`` (the receipt's memo, looked up before it is created):
  ``payment_state`` -> ``partial``/``paid``;
* a succeeded refund of such a charge, once its receipt is in the ERP: ``("account.payment", "refund")``
  ``{"invoice_id", "refund_id", "amount", "date"}``, key ``erp-refund:<refund id>``: a credit note reversing
  the invoice for the refunded amount, paid out by an outbound payment. A partial refund leaves the invoice
  ``paid`` (the credit note settles the difference: the customer owes nothing); a full one makes it
  ``reversed``;
* a lost dispute of such a charge (the bank took the money back), once its receipt is in the ERP:
  ``("account.payment", "chargeback")`` ``{"invoice_id", "payment_id", "dispute_id", "amount"}``, key
  ``erp-chargeback:<dispute id>``: the receipt is cancelled and the invoice is open again (``not_paid``) for
  finance to chase or write off. An open or won dispute changes nothing in the ERP.

A payment that arrives on an invoice the re-invoice rule superseded (its payment request was paid before it
could be voided) is not registered against the credited invoice: it is **held** for review (a person refunds it
or records it against the deal's new invoice); refunded in full, it has nothing left to record.

A failed attempt has nothing to record in the ERP; Salesforce shows it (``Failed``, only while no attempt
succeeded). A late ``failed`` of an earlier attempt never hides a ``succeeded`` one, because the status is
computed from all attempts, not from the last event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from revloop.flows.base import FlowContext, FlowPlan, Hold, PlannedWrite, Recorded, diff, recorded
from revloop.flows.invoices import our_invoices
from revloop.sync.model import IntendedWrite

NAME = "payment_outcome"


@dataclasses.dataclass(frozen=True)
class PaymentOutcome:
    status: str
    """A Salesforce ``Payment_Status__c`` value: Unpaid, Partially Paid, Paid, Failed, Refunded, Disputed."""
    paid_at: dt.datetime | None
    amount_paid: Decimal


def outcome(charges: Iterable[dict[str, Any]], amount_total: Decimal) -> PaymentOutcome:
    """The payment status of an invoice from all its attempts (``fct_payments`` rows), whatever their order.

    Disputed beats everything (money may go back); then fully refunded; then paid in full (a partial refund
    does not re-open an invoice: it is a credit note, and the customer owes nothing, as the ERP and the
    reconciliation report see it), partly paid; a failure counts only when no attempt succeeded.
    """
    attempts = list(charges)
    succeeded = [c for c in attempts if c.get("is_succeeded")]
    net = sum((Decimal(str(c.get("amount_net") or 0)) for c in succeeded), Decimal(0))
    refunded = sum((Decimal(str(c.get("amount_refunded") or 0)) for c in succeeded), Decimal(0))
    paid_at = max((c["created_at"] for c in succeeded if c.get("created_at")), default=None)
    if any(c.get("is_disputed") for c in succeeded):
        return PaymentOutcome("Disputed", paid_at, net)
    if succeeded and net <= 0 and refunded > 0:
        return PaymentOutcome("Refunded", None, net)
    if succeeded and net + refunded >= amount_total:
        return PaymentOutcome("Paid", paid_at, net)
    if net > 0:
        return PaymentOutcome("Partially Paid", None, net)
    if any(c.get("status") == "failed" for c in attempts):
        return PaymentOutcome("Failed", None, net)
    return PaymentOutcome("Unpaid", None, net)


def charges_by_invoice(ctx: FlowContext, erp_invoice_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The payment attempts of each ERP invoice (from ``fct_payments``)."""
    result: dict[int, list[dict[str, Any]]] = {}
    if not erp_invoice_ids:
        return result
    for row in ctx.rows(
        """select erp_invoice_id, charge_id, payment_intent_id, status, is_succeeded, is_disputed, currency_code,
                  amount_captured, amount_refunded, amount_net, created_at, created_on_local_date, erp_payment_id
           from marts.fct_payments where erp_invoice_id = any(%s) order by created_at, charge_id""",
        (erp_invoice_ids,),
    ):
        result.setdefault(int(row["erp_invoice_id"]), []).append(row)
    return result


class PaymentOutcomeFlow:
    """Plans the ERP's records of our invoices' payments, refunds and lost disputes."""

    name: str = NAME
    depends_on: tuple[tuple[str, ...], ...] = (
        ("marts", "fct_payments"), ("raw_payments", "charge"), ("raw_payments", "refund"), ("raw_payments", "dispute"),
    )

    def plan(self, ctx: FlowContext) -> FlowPlan:
        plan = FlowPlan(self.name)
        invoices = {i.erp_invoice_id: i for i in our_invoices(ctx) if i.state == "posted"}
        charges = charges_by_invoice(ctx, list(invoices))
        candidates = [c for rows in charges.values() for c in rows
                      if c["is_succeeded"] and c["erp_payment_id"] is None and c["amount_captured"]]
        refunds = _refunds(ctx, list(invoices))
        disputes = _lost_disputes(ctx, list(invoices))
        done = recorded(ctx, self.name, [_receipt_ref(c) for c in candidates]
                        + [_receipt_ref(r) for r in refunds + disputes]
                        + [r["refund_id"] for r in refunds] + [d["dispute_id"] for d in disputes])
        for charge in candidates:
            reference = _receipt_ref(charge)
            if reference in done:
                continue
            invoice = invoices[int(charge["erp_invoice_id"])]
            if invoice.superseded:
                if Decimal(str(charge["amount_net"] or 0)) > 0:
                    plan.holds.append(Hold(self.name, reference, (
                        f"{charge['amount_net']} {charge['currency_code']} paid on invoice "
                        f"{invoice.number or invoice.erp_invoice_id}, which a credit note superseded: held for review "
                        "(refund it, or record it against the deal's new invoice)")))
                continue
            payload = {"invoice_id": invoice.erp_invoice_id, "payment_id": reference,
                       "amount": str(charge["amount_captured"]),
                       "date": (charge["created_on_local_date"] or ctx.today).isoformat()}
            write = IntendedWrite(flow=self.name, target_system="erp", target_object="account.payment",
                                  operation="register_payment", idempotency_key=f"erp-payment:{reference}",
                                  payload=payload, source_ref=reference)
            plan.writes.append(PlannedWrite(write, diff(None, {
                "invoice": invoice.number, "amount": f"{charge['amount_captured']} {charge['currency_code']}",
            }), "payment succeeded"))
        for refund in refunds:
            if refund["refund_id"] in done or not self._receipt_recorded(plan, refund, done):
                continue
            invoice = invoices[int(refund["erp_invoice_id"])]
            payload = {"invoice_id": invoice.erp_invoice_id, "refund_id": refund["refund_id"],
                       "amount": str(refund["amount"]), "date": (refund["local_date"] or ctx.today).isoformat()}
            write = IntendedWrite(flow=self.name, target_system="erp", target_object="account.payment",
                                  operation="refund", idempotency_key=f"erp-refund:{refund['refund_id']}",
                                  payload=payload, source_ref=refund["refund_id"])
            plan.writes.append(PlannedWrite(write, diff(None, {
                "invoice": invoice.number, "refund": f"{refund['amount']} {refund['currency_code']}",
                "credit_note": "posted and paid out",
            }), "payment refunded"))
        for dispute in disputes:
            if dispute["dispute_id"] in done or not self._receipt_recorded(plan, dispute, done):
                continue
            invoice = invoices[int(dispute["erp_invoice_id"])]
            payload = {"invoice_id": invoice.erp_invoice_id, "payment_id": _receipt_ref(dispute),
                       "dispute_id": dispute["dispute_id"], "amount": str(dispute["amount"])}
            write = IntendedWrite(flow=self.name, target_system="erp", target_object="account.payment",
                                  operation="chargeback", idempotency_key=f"erp-chargeback:{dispute['dispute_id']}",
                                  payload=payload, source_ref=dispute["dispute_id"])
            plan.writes.append(PlannedWrite(write, diff(None, {
                "invoice": invoice.number, "receipt": f"{_receipt_ref(dispute)} cancelled",
                "payment_state": "not_paid",
            }), "dispute lost"))
        return plan

    def _receipt_recorded(self, plan: FlowPlan, row: dict[str, Any], done: dict[str, Recorded]) -> bool:
        """Whether the ERP holds the receipt a refund or dispute takes money from (else it waits for it)."""
        if row["erp_payment_id"] is not None:
            return True
        receipt = done.get(_receipt_ref(row))
        if receipt is not None and receipt.state in ("parked", "dead"):
            plan.holds.append(Hold(self.name, row.get("refund_id") or row["dispute_id"],
                                   f"its receipt {receipt.idempotency_key} is {receipt.state}: replay it "
                                   f"(revloop replay --id {receipt.id})"))
        return receipt is not None and receipt.state == "delivered"


def _receipt_ref(row: dict[str, Any]) -> str:
    """The payments id an ERP receipt is recorded under: the payment intent, else the charge."""
    return str(row["payment_intent_id"] or row["charge_id"])


def _refunds(ctx: FlowContext, erp_invoice_ids: list[int]) -> list[dict[str, Any]]:
    """Succeeded refunds of the charges of these ERP invoices, with the day they were made (customer's zone)."""
    if not erp_invoice_ids:
        return []
    return ctx.rows(
        """select r.refund_id, r.amount, r.currency_code, p.charge_id, p.payment_intent_id, p.erp_invoice_id,
                  p.erp_payment_id, (r.created_at at time zone p.local_time_zone)::date as local_date
           from staging.stg_payments__refunds r
           join marts.fct_payments p on p.charge_id = r.charge_id
           where r.status = 'succeeded' and not r.is_deleted and p.is_succeeded and p.erp_invoice_id = any(%s)
           order by r.created_at, r.refund_id""",
        (erp_invoice_ids,),
    )


def _lost_disputes(ctx: FlowContext, erp_invoice_ids: list[int]) -> list[dict[str, Any]]:
    """Disputes lost on the charges of these ERP invoices."""
    if not erp_invoice_ids:
        return []
    return ctx.rows(
        """select d.dispute_id, d.amount, p.charge_id, p.payment_intent_id, p.erp_invoice_id, p.erp_payment_id
           from staging.stg_payments__disputes d
           join marts.fct_payments p on p.charge_id = d.charge_id
           where d.status = 'lost' and not d.is_deleted and p.is_succeeded and p.erp_invoice_id = any(%s)
           order by d.created_at, d.dispute_id""",
        (erp_invoice_ids,),
    )
