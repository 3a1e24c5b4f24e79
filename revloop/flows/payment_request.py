"""Flow 2, ``invoice_payment_request``: a posted ERP invoice (one a won deal produced) becomes a payments-side
customer and an open invoice for the amount still due; when the re-invoice rule credits that ERP invoice, its
payment request is withdrawn.

Trigger: a delivered ``won_deal_invoice`` write whose ERP invoice is posted, has an open amount, is not
superseded by the re-invoice rule, and has no payments invoice yet (``fct_invoices.payments_invoice_id``).
Writes, in this order in one enqueue: ``("customer", "create")`` (find-or-create by
``metadata['salesforce_account_id']``), then ``("invoice", "create")`` with one item per ERP invoice, due on the
ERP due date, carrying ``metadata[salesforce_opportunity_id]``, ``metadata[erp_invoice_id]`` and
``metadata[erp_invoice_number]``.

Idempotency keys: ``pay-customer:<Account Id>`` and ``pay-request:<ERP invoice id>``: one payment request per
ERP invoice, ever (a re-invoice is a new ERP invoice, hence a new request). Each Stripe call derives its own
``Idempotency-Key`` from it (see docs/writers.md).

Withdrawal: once the credit note of the re-invoice rule is delivered (the ERP invoice can no longer be paid),
its payment request, if still open, is voided: ``("invoice", "void")`` ``{"invoice_id": <payments invoice>}``,
key ``pay-void:<ERP invoice id>`` (Stripe cancels the invoice's payment intent with it). A request that was
paid, its payment neither refunded in full nor recorded in the ERP, is never voided: it is **held** for review
(a person refunds it, or records it against the deal's new invoice), and so is the new invoice's own payment
request until then, so the customer is not asked to pay twice. A request whose payment is still processing
waits for its outcome.

Conflicts otherwise: none to resolve: the payments invoice is created once and never edited by this flow; the
amount is the ERP's open amount when the request is made.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from revloop.flows.base import FlowContext, FlowPlan, Hold, PlannedWrite, Recorded, diff, recorded
from revloop.flows.invoices import OurInvoice, our_invoices
from revloop.flows.payment_outcome import charges_by_invoice
from revloop.sync.model import IntendedWrite

NAME = "invoice_payment_request"
VOID_KEY_PREFIX = "pay-void:"


class PaymentRequestFlow:
    """Plans payments invoices for the ERP invoices won deals produced."""

    name: str = NAME
    depends_on: tuple[tuple[str, ...], ...] = (("marts", "fct_invoices"), ("raw_erp", "account_move"))

    def plan(self, ctx: FlowContext) -> FlowPlan:
        plan = FlowPlan(self.name)
        ours = our_invoices(ctx)
        superseded = [i for i in ours if i.superseded]
        attempts = charges_by_invoice(ctx, [i.erp_invoice_id for i in superseded])
        unsettled = {invoice_id: paid for invoice_id, rows in attempts.items() if (paid := _unsettled(rows))}
        self._withdraw(ctx, plan, [i for i in superseded if i.credited], attempts, unsettled)
        paid_before = {i.opportunity_id: i for i in superseded if i.erp_invoice_id in unsettled}
        invoices = [i for i in ours if i.state == "posted" and not i.superseded
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
            earlier = paid_before.get(invoice.opportunity_id)
            if earlier is not None:
                plan.holds.append(Hold(self.name, str(invoice.erp_invoice_id), (
                    f"the deal's superseded invoice {earlier.number or earlier.erp_invoice_id} was paid "
                    f"({', '.join(unsettled[earlier.erp_invoice_id])}) and that payment is not settled: no new "
                    "payment request until a person refunds it or records it against this invoice")))
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

    def _withdraw(self, ctx: FlowContext, plan: FlowPlan, credited: list[OurInvoice],
                  attempts: dict[int, list[dict[str, Any]]], unsettled: dict[int, list[str]]) -> None:
        """Plan the void of the payment request of each credited ERP invoice, or hold it when it was paid."""
        if not credited:
            return
        history = recorded(ctx, self.name, [str(i.erp_invoice_id) for i in credited], target_object="invoice")
        requests = {ref: _request_of(last) for ref, last in history.items()}
        statuses = {r["invoice_id"]: r["source_status"] for r in ctx.rows(
            "select invoice_id, source_status from staging.stg_payments__invoices where invoice_id = any(%s)",
            ([r for r in requests.values() if r],))}
        for invoice in credited:
            ref = str(invoice.erp_invoice_id)
            last = history.get(ref)
            if last is None or last.state in ("pending", "in_flight"):
                continue  # never requested, or a write still on its way: decided once it settles
            voiding = last.idempotency_key.startswith(VOID_KEY_PREFIX)
            if voiding and last.state == "delivered":
                continue
            if not voiding and last.state != "delivered":
                plan.holds.append(Hold(self.name, ref, (
                    f"credited while its payment request {last.idempotency_key} is {last.state}: do not replay it; "
                    "void the payments invoice by hand if it was made")))
                continue
            request_id = requests[ref]
            if invoice.erp_invoice_id in unsettled:
                plan.holds.append(Hold(self.name, ref, (
                    f"credited, but its payment request {request_id} was paid "
                    f"({', '.join(unsettled[invoice.erp_invoice_id])}) before it could be voided: held for review "
                    "(refund the payment, or record it against the deal's new invoice)")))
                continue
            status = statuses.get(request_id or "")
            if status in ("void", "paid"):
                continue  # voided by hand, or paid and since refunded or recorded: nothing left to withdraw
            if voiding:
                plan.holds.append(Hold(self.name, ref, (
                    f"voiding its payment request ({last.idempotency_key}) is {last.state}: "
                    f"replay it (revloop replay --id {last.id})")))
                continue
            if any(a["status"] == "pending" for a in attempts.get(invoice.erp_invoice_id, [])):
                continue  # a payment is processing: voided if it fails, held if it succeeds
            write = IntendedWrite(flow=self.name, target_system="payments", target_object="invoice",
                                  operation="void", idempotency_key=f"{VOID_KEY_PREFIX}{ref}", source_ref=ref,
                                  payload={"invoice_id": request_id, "erp_invoice_id": ref,
                                           "salesforce_account_id": invoice.account_id})
            plan.writes.append(PlannedWrite(write, diff({"status": status or "open"}, {
                "payments_invoice": request_id, "status": "void"}), "ERP invoice credited"))

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


def _unsettled(attempts: list[dict[str, Any]]) -> list[str]:
    """The payments of an invoice that kept money (not refunded in full) and that no ERP payment records."""
    return [str(a["payment_intent_id"] or a["charge_id"]) for a in attempts
            if a["is_succeeded"] and Decimal(str(a["amount_net"] or 0)) > 0 and a["erp_payment_id"] is None]


def _request_of(last: Recorded) -> str | None:
    """The payments invoice a request's latest write is about: the one it created, or the one it voids."""
    if last.idempotency_key.startswith(VOID_KEY_PREFIX):
        return str(last.payload.get("invoice_id") or "") or None
    return last.target_id
