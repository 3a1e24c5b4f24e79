"""The invoices Revloop made for won deals, with the facts the next steps of the chain need.

The chain's next steps (the Salesforce ``Invoice__c`` and the payments invoice) start from the delivered
``won_deal_invoice`` writes: their ``target_id`` is the ERP invoice id as soon as the worker settled them.
The invoice's number and amounts come from ``fct_invoices`` once a load brought it in; until then they are
read from the ERP itself (one ``read`` call for all of them), so the chain moves on within the same cycle.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from decimal import Decimal
from typing import Any

from revloop.flows.base import OUTBOX_PAYLOAD_FIELD, FlowContext

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class OurInvoice:
    """One ERP invoice a won deal produced."""

    erp_invoice_id: int
    revloop_key: str
    """The ERP ``ref``: the ``won_deal_invoice`` write's idempotency key (``won-deal:<opp>:v<n>``)."""
    opportunity_id: str
    account_id: str | None
    number: str | None
    state: str
    payment_status: str | None
    currency_code: str
    amount_total: Decimal
    amount_residual: Decimal
    invoice_date: dt.date | None
    due_date: dt.date | None
    erp_partner_id: int | None
    superseded: bool
    """Reversed by a credit note of the re-invoice rule (a later version replaces it), as soon as that credit
    note is recorded in the outbox."""
    credited: bool = False
    """That credit note is delivered: the ERP holds the reversal, so the invoice can no longer be paid."""


class ErpInvoiceLookup:
    """Reads ``account.move`` records straight from the ERP (the read-only key) for the chain."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._client: Any = None

    def read(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        from revloop.connectors.erp import Json2Reader

        if not ids:
            return {}
        if self._client is None:
            self._client = Json2Reader(self.settings, reader=True)
        rows = self._client.call("account.move", "read", ids=ids, fields=[
            "name", "state", "payment_state", "currency_id", "amount_total", "amount_residual", "invoice_date",
            "invoice_date_due", "partner_id", "invoice_origin", "ref",
        ])
        return {int(row["id"]): row for row in rows}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def our_invoices(ctx: FlowContext) -> list[OurInvoice]:
    """Every delivered ``won_deal_invoice`` invoice, facts from the warehouse, else from the ERP."""
    delivered = ctx.rows(
        """select target_id::bigint as erp_invoice_id, idempotency_key, source_ref
           from sync.outbox
           where flow = 'won_deal_invoice' and operation = 'post' and state = 'delivered'
             and target_id ~ '^[0-9]+$'"""
    )
    if not delivered:
        return []
    ids = [int(r["erp_invoice_id"]) for r in delivered]
    reversed_ids = {int(r["reversed"]) for r in ctx.rows(
        """select o.target_id, i.reversed_entry_id as reversed
           from sync.outbox o join staging.stg_erp__invoices i on i.invoice_id = o.target_id::bigint
           where o.flow = 'won_deal_invoice' and o.operation = 'credit_note' and o.state = 'delivered'
             and o.target_id ~ '^[0-9]+$' and i.reversed_entry_id is not null"""
    )}
    reversals = _reversals(ctx)
    credited_ids = reversed_ids | {invoice_id for invoice_id, delivered in reversals.items() if delivered}
    reversed_ids |= set(reversals)
    facts = {r["erp_invoice_id"]: r for r in ctx.rows(
        """select erp_invoice_id, invoice_number, status, payment_status, currency_code, amount_total,
                  amount_residual, invoice_date, due_date, erp_partner_id
           from marts.fct_invoices where erp_invoice_id = any(%s)""",
        (ids,),
    )}
    accounts = {r["opportunity_id"]: r["salesforce_account_id"] for r in ctx.rows(
        "select opportunity_id, salesforce_account_id from marts.fct_opportunities where opportunity_id = any(%s)",
        ([r["source_ref"] for r in delivered],),
    )}
    missing = [i for i in ids if i not in facts]
    if missing and ctx.erp_invoices is not None:
        try:
            for move_id, move in ctx.erp_invoices.read(missing).items():
                facts[move_id] = _from_erp(move)
        except Exception as exc:  # the next load brings the same facts: the chain only waits a cycle
            logger.warning("could not read %d new ERP invoice(s) yet: %s", len(missing), exc)
    result = []
    for row in delivered:
        invoice_id = int(row["erp_invoice_id"])
        fact = facts.get(invoice_id)
        if fact is None:
            continue
        result.append(OurInvoice(
            erp_invoice_id=invoice_id, revloop_key=row["idempotency_key"], opportunity_id=row["source_ref"],
            account_id=accounts.get(row["source_ref"]), number=fact["invoice_number"], state=fact["status"],
            payment_status=fact["payment_status"], currency_code=fact["currency_code"],
            amount_total=Decimal(str(fact["amount_total"])), amount_residual=Decimal(str(fact["amount_residual"])),
            invoice_date=fact["invoice_date"], due_date=fact["due_date"], erp_partner_id=fact["erp_partner_id"],
            superseded=invoice_id in reversed_ids, credited=invoice_id in credited_ids,
        ))
    return result


def _reversals(ctx: FlowContext) -> dict[int, bool]:
    """Invoices a credit note was recorded for (no payment request for them any more), each with whether that
    credit note is delivered (read from the outbox, so the cycle that delivered it already knows)."""
    result: dict[int, bool] = {}
    for payload_enc, state in ctx.conn.execute(
        "select payload_enc, state from sync.outbox where flow = 'won_deal_invoice' and operation = 'credit_note'"
    ):
        payload = json.loads(ctx.cipher.decrypt(payload_enc, OUTBOX_PAYLOAD_FIELD) or "{}")
        if payload.get("reversed_entry_id"):
            invoice_id = int(payload["reversed_entry_id"])
            result[invoice_id] = result.get(invoice_id, False) or state == "delivered"
    return result


_ERP_STATES = {"draft": "draft", "posted": "posted", "cancel": "void"}
_ERP_PAYMENT_STATES = {"not_paid": "unpaid", "partial": "partially_paid", "in_payment": "paid", "paid": "paid",
                       "reversed": "refunded", "invoicing_legacy": "paid", "blocked": "unpaid"}


def _from_erp(move: dict[str, Any]) -> dict[str, Any]:
    """An ``account.move`` read from the ERP in the shape of a ``fct_invoices`` row (statuses mapped alike)."""
    def m2o(value: Any, index: int) -> Any:
        return value[index] if isinstance(value, list | tuple) and value else None

    def day(value: Any) -> dt.date | None:
        return dt.date.fromisoformat(str(value)) if value else None

    return {
        "invoice_number": move.get("name"), "status": _ERP_STATES.get(str(move.get("state")), str(move.get("state"))),
        "payment_status": _ERP_PAYMENT_STATES.get(str(move.get("payment_state"))),
        "currency_code": m2o(move.get("currency_id"), 1), "amount_total": move.get("amount_total") or 0,
        "amount_residual": move.get("amount_residual") or 0, "invoice_date": day(move.get("invoice_date")),
        "due_date": day(move.get("invoice_date_due")), "erp_partner_id": m2o(move.get("partner_id"), 0),
    }
