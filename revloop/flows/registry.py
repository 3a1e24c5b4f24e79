"""The flows, in the order a cycle plans them, grouped in stages: a stage's writes are delivered before the
next stage is planned, so a chain (won deal -> ERP invoice -> Salesforce invoice and payment request) moves
on within one cycle."""

from __future__ import annotations

from revloop.flows.base import Flow
from revloop.flows.customer_master import CustomerMasterFlow
from revloop.flows.payment_outcome import PaymentOutcomeFlow
from revloop.flows.payment_request import PaymentRequestFlow
from revloop.flows.renewal import RenewalFlow
from revloop.flows.salesforce_invoice import SalesforceInvoiceFlow
from revloop.flows.won_deal import WonDealInvoiceFlow

STAGES: tuple[tuple[Flow, ...], ...] = (
    (WonDealInvoiceFlow(), RenewalFlow(), CustomerMasterFlow()),
    (SalesforceInvoiceFlow(), PaymentRequestFlow(), PaymentOutcomeFlow()),
)
"""Stage 1 writes from the canonical model alone (customer master data among it: a customer's details reach
the ERP and the payments platform before this cycle's payment requests); stage 2 also from what stage 1
delivered."""

FLOWS: dict[str, Flow] = {flow.name: flow for stage in STAGES for flow in stage}

MODELS = ("fct_opportunities", "fct_subscriptions", "fct_invoices", "fct_payments")
"""The marts the flows read: what a cycle rebuilds after loading (staging models are views, always current)."""


def flow_names() -> list[str]:
    return list(FLOWS)
