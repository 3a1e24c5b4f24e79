"""Flow 3, ``payment_outcome`` (ERP half): succeeded payments are registered against their ERP invoice, which
moves its ``payment_state``; and :func:`outcome`, the one rule that turns an invoice's payment attempts into
the payment status the Salesforce ``Invoice__c`` shows (its other half, see :mod:`revloop.flows.salesforce_invoice`).

Trigger: a succeeded charge (``fct_payments``) on an invoice a won deal produced, not yet recorded in the ERP
(``erp_payment_id`` empty). Events arrive from the events feed (the payments load) and from the webhook
receiver (which only wakes the cycle): either way the flow reads the charges' *current* state, so duplicates
and out-of-order events cannot change the result. A late ``failed`` of an earlier attempt never hides a
``succeeded`` one, because the status is computed from all attempts, not from the last event.

Write: ``("account.payment", "register_payment")`` ``{"invoice_id", "payment_id": <payment intent id>, "amount",
"date"}``. Idempotency key: ``erp-payment:<payment intent id>`` (the ERP payment's memo and reference, which
the writer looks up before it creates).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from revloop.flows.base import FlowContext, FlowPlan, PlannedWrite, diff, recorded
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

    Disputed beats everything (money may go back); then fully refunded; then paid in full, partly paid; a
    failure counts only when no attempt succeeded.
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
    if succeeded and net >= amount_total:
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
    """Plans ERP payment registrations for succeeded payments of our invoices."""

    name: str = NAME
    depends_on: tuple[tuple[str, ...], ...] = (("marts", "fct_payments"), ("raw_payments", "charge"))

    def plan(self, ctx: FlowContext) -> FlowPlan:
        plan = FlowPlan(self.name)
        invoices = {i.erp_invoice_id: i for i in our_invoices(ctx) if i.state == "posted"}
        charges = charges_by_invoice(ctx, list(invoices))
        candidates = [c for rows in charges.values() for c in rows
                      if c["is_succeeded"] and c["erp_payment_id"] is None and c["amount_captured"]]
        done = recorded(ctx, self.name, [c["payment_intent_id"] or c["charge_id"] for c in candidates])
        for charge in candidates:
            reference = charge["payment_intent_id"] or charge["charge_id"]
            if reference in done:
                continue
            invoice = invoices[int(charge["erp_invoice_id"])]
            payload = {"invoice_id": invoice.erp_invoice_id, "payment_id": reference,
                       "amount": str(charge["amount_captured"]),
                       "date": (charge["created_on_local_date"] or ctx.today).isoformat()}
            write = IntendedWrite(flow=self.name, target_system="erp", target_object="account.payment",
                                  operation="register_payment", idempotency_key=f"erp-payment:{reference}",
                                  payload=payload, source_ref=reference)
            plan.writes.append(PlannedWrite(write, diff(None, {
                "invoice": invoice.number, "amount": f"{charge['amount_captured']} {charge['currency_code']}",
            }), "payment succeeded"))
        return plan
