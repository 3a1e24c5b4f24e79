"""The Salesforce side of flows 1 and 3, ``salesforce_invoice``: each ERP invoice a won deal produced is an
``Invoice__c`` on the deal, carrying the ERP invoice number, dates, amount and the payment status.

Trigger: a delivered ``won_deal_invoice`` write (the ERP invoice id is its ``target_id``; its number is read
from the warehouse, or from the ERP until the next load brings it), and afterwards any change of what the
record should say: the invoice superseded by a re-invoice (``Status__c = Cancelled``), or its payment outcome
(:func:`revloop.flows.payment_outcome.outcome` over all the payment attempts, so duplicated or late events
never flip it back).

Write: ``("Invoice__c", "upsert")`` on the External ID ``Revloop_Key__c`` = the ERP invoice's ``ref``
(``won-deal:<opportunity id>:v<n>``), so every write for one invoice lands on one record.
Idempotency key: ``sf-invoice:<ERP invoice id>:<sequence>:<content hash>``; the sequence is the number of
writes recorded for that invoice before, so a status that goes back to an earlier value is still sent.

Only what changed is sent: the fields are compared with the last recorded write for the invoice. One write per
record is in flight at a time (a newer state waits until the older write settles), so an older write that is
retried late can never overwrite a newer one.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from revloop.flows.base import FlowContext, FlowPlan, Hold, PlannedWrite, content_hash, diff, recorded
from revloop.flows.invoices import our_invoices
from revloop.flows.payment_outcome import charges_by_invoice, outcome
from revloop.sync.model import IntendedWrite

NAME = "salesforce_invoice"


class SalesforceInvoiceFlow:
    """Plans ``Invoice__c`` upserts for our ERP invoices."""

    name: str = NAME
    depends_on: tuple[tuple[str, ...], ...] = (
        ("marts", "fct_invoices"), ("marts", "fct_payments"), ("raw_payments", "charge"),
    )

    def plan(self, ctx: FlowContext) -> FlowPlan:
        plan = FlowPlan(self.name)
        invoices = [i for i in our_invoices(ctx) if i.state in ("posted", "void")]
        if not invoices:
            return plan
        history = recorded(ctx, self.name, [str(i.erp_invoice_id) for i in invoices])
        charges = charges_by_invoice(ctx, [i.erp_invoice_id for i in invoices])
        for invoice in invoices:
            paid = outcome(charges.get(invoice.erp_invoice_id, []), invoice.amount_total)
            fields: dict[str, Any] = {
                "Name": invoice.number or invoice.revloop_key,
                "Opportunity__c": invoice.opportunity_id,
                "Account__c": invoice.account_id,
                "ERP_Invoice_Id__c": str(invoice.erp_invoice_id),
                "ERP_Invoice_Number__c": invoice.number,
                "Invoice_Date__c": _day(invoice.invoice_date),
                "Due_Date__c": _day(invoice.due_date),
                "Amount__c": _number(invoice.amount_total),
                "CurrencyIsoCode": invoice.currency_code,
                "Status__c": "Cancelled" if invoice.superseded or invoice.state == "void" else "Posted",
                "Payment_Status__c": paid.status,
                "Paid_At__c": _instant(paid.paid_at),
            }
            ref = str(invoice.erp_invoice_id)
            last = history.get(ref)
            old = (last.payload.get("fields") if last else None) or None
            changes = diff(old, fields)
            if last is not None and not changes:
                if last.state in ("parked", "dead"):
                    plan.holds.append(Hold(self.name, ref, f"last write {last.idempotency_key} is {last.state}: "
                                                           f"replay it (revloop replay --id {last.id})"))
                continue
            if last is not None and last.state in ("pending", "in_flight"):
                continue  # one write per record at a time: the newer state goes after this one settles
            sequence = (last.rows_before if last else 0) + 1
            key = f"sf-invoice:{ref}:{sequence}:{content_hash(fields)}"
            write = IntendedWrite(flow=self.name, target_system="salesforce", target_object="Invoice__c",
                                  operation="upsert", idempotency_key=key, source_ref=ref,
                                  payload={"Revloop_Key__c": invoice.revloop_key, "fields": fields})
            reason = "ERP invoice posted" if last is None else "invoice or payment status changed"
            plan.writes.append(PlannedWrite(write, changes, reason))
        return plan


def _day(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _instant(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)
