"""Flow 2, ``invoice_payment_request``: a posted ERP invoice (one a won deal produced) becomes a payments-side
customer and an open invoice for the amount still due.

Trigger: a delivered ``won_deal_invoice`` write whose ERP invoice is posted, has an open amount, is not
superseded by the re-invoice rule, and has no payments invoice yet (``fct_invoices.payments_invoice_id``).
Writes, in this order in one enqueue: ``("customer", "create")`` (find-or-create by
``metadata['salesforce_account_id']``), then ``("invoice", "create")`` with one item per ERP invoice, due on the
ERP due date, carrying ``metadata[salesforce_opportunity_id]``, ``metadata[erp_invoice_id]`` and
``metadata[erp_invoice_number]``.

Idempotency keys: ``pay-customer:<Account Id>`` and ``pay-request:<ERP invoice id>``: one payment request per
ERP invoice, ever (a re-invoice is a new ERP invoice, hence a new request). Each Stripe call derives its own
``Idempotency-Key`` from it (see docs/writers.md).

Conflicts: none to resolve: the payments invoice is created once and never edited by this flow; the amount is
the ERP's open amount when the request is made.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from revloop.flows.base import FlowContext, FlowPlan, PlannedWrite, diff, recorded
from revloop.flows.invoices import our_invoices
from revloop.sync.model import IntendedWrite

NAME = "invoice_payment_request"


class PaymentRequestFlow:
    """Plans payments invoices for the ERP invoices won deals produced."""

    name: str = NAME
    depends_on: tuple[tuple[str, ...], ...] = (("marts", "fct_invoices"), ("raw_erp", "account_move"))

    def plan(self, ctx: FlowContext) -> FlowPlan:
        plan = FlowPlan(self.name)
        invoices = [i for i in our_invoices(ctx) if i.state == "posted" and not i.superseded
                    and i.amount_residual > 0 and i.account_id]
        if not invoices:
            return plan
        done = recorded(ctx, self.name, [str(i.erp_invoice_id) for i in invoices], target_object="invoice")
        customers_done = recorded(ctx, self.name, [f"account:{i.account_id}" for i in invoices],
                                  target_object="customer")
        already = {r["erp_invoice_id"] for r in ctx.rows(
            "select erp_invoice_id from marts.fct_invoices where payments_invoice_id is not null"
            " and erp_invoice_id = any(%s)", ([i.erp_invoice_id for i in invoices],))}
        exponents = {r["currency_code"]: int(r["iso_exponent"]) for r in ctx.rows(
            "select currency_code, iso_exponent from reference.currencies")}
        billing = self._billing(ctx, [i.erp_partner_id for i in invoices if i.erp_partner_id])
        planned_customers: set[str] = set()
        for invoice in invoices:
            if str(invoice.erp_invoice_id) in done or invoice.erp_invoice_id in already:
                continue
            account = str(invoice.account_id)
            customer = {"salesforce_account_id": account, "erp_partner_id": invoice.erp_partner_id,
                        **billing.get(invoice.erp_partner_id or -1, {})}
            if f"account:{account}" not in customers_done and account not in planned_customers:
                planned_customers.add(account)
                write = IntendedWrite(flow=self.name, target_system="payments", target_object="customer",
                                      operation="create", idempotency_key=f"pay-customer:{account}",
                                      payload=customer, source_ref=f"account:{account}")
                plan.writes.append(PlannedWrite(write, diff(None, {"salesforce_account_id": account}),
                                                "first payment request of this customer"))
            exponent = exponents.get(invoice.currency_code, 2)
            amount = invoice.amount_residual.quantize(Decimal(1).scaleb(-exponent))
            payload: dict[str, Any] = {
                "customer": customer,
                "currency": invoice.currency_code.lower(),
                "items": [{"description": f"Invoice {invoice.number}", "amount": str(amount)}],
                "metadata": {"salesforce_opportunity_id": invoice.opportunity_id,
                             "erp_invoice_id": str(invoice.erp_invoice_id),
                             "erp_invoice_number": invoice.number or ""},
            }
            if invoice.due_date is not None:
                payload["due_date"] = invoice.due_date.isoformat()
            write = IntendedWrite(flow=self.name, target_system="payments", target_object="invoice",
                                  operation="create", idempotency_key=f"pay-request:{invoice.erp_invoice_id}",
                                  payload=payload, source_ref=str(invoice.erp_invoice_id))
            plan.writes.append(PlannedWrite(write, diff(None, {
                "amount": f"{amount} {invoice.currency_code}", "erp_invoice_number": invoice.number,
                "due_date": payload.get("due_date"),
            }), "ERP invoice posted"))
        return plan

    @staticmethod
    def _billing(ctx: FlowContext, partner_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The payments customer's name and billing email, from the ERP partner (the email decrypted here)."""
        if not partner_ids:
            return {}
        result: dict[int, dict[str, Any]] = {}
        for row in ctx.rows(
            "select partner_id, partner_name, email_enc from staging.stg_erp__partners where partner_id = any(%s)",
            (partner_ids,),
        ):
            values: dict[str, Any] = {"name": row["partner_name"]}
            email = ctx.decrypt(row["email_enc"], "erp.res_partner.email")
            if email:
                values["email"] = email
            result[int(row["partner_id"])] = values
        return result
