"""Flow 1, ``won_deal_invoice``: a Closed Won Opportunity becomes one posted ERP customer invoice.

Trigger: ``fct_opportunities.stage_category = 'won'`` with a close date in the lookback window.
Write: ``("account.move", "post")`` (find-or-create the partner, create and post the invoice); lines from the
opportunity's products (``OpportunityLineItem`` -> ERP product by ``Product2.ERP_Product_Id__c``, else the
product code), the deal's currency, invoice date = close date, due date = invoice date + the customer's
usual terms.

Idempotency key: ``won-deal:<opportunity id>:v<version>``; version 1 for the first invoice of a deal, +1 per
re-invoice. The key is the ERP invoice's ``ref``, which is how the writer finds an invoice it already made.

Conflict rules (a deal is never invoiced twice silently):

* The ERP already holds an invoice whose ``invoice_origin`` is the deal (made before Revloop, or by hand):
  adopted, nothing is written.
* Re-opened after invoicing: the invoice stands; held for review (a person credits it in the ERP).
* Won again, or edited, with the same products, quantities, prices and currency: nothing to do.
* Changed terms (amount, lines, currency) after invoicing, invoice still unpaid: a credit note reversing
  version *n* (``won-deal-credit:<opportunity id>:v<n>``) and a new invoice version *n+1*.
* Changed terms, invoice (partly) paid or its payment state not known yet: held for review.
* The last write was parked or dead-lettered: held until a person replays it (``revloop replay``).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from revloop.flows.base import (
    LIVE_STATES,
    FlowContext,
    FlowPlan,
    Hold,
    PlannedWrite,
    content_hash,
    diff,
    recorded,
)
from revloop.sync.model import IntendedWrite

NAME = "won_deal_invoice"
_VERSION = re.compile(r":v(\d+)$")


def invoice_key(opportunity_id: str, version: int) -> str:
    return f"won-deal:{opportunity_id}:v{version}"


def credit_key(opportunity_id: str, version: int) -> str:
    return f"won-deal-credit:{opportunity_id}:v{version}"


def version_of(key: str) -> int:
    match = _VERSION.search(key)
    return int(match.group(1)) if match else 1


class WonDealInvoiceFlow:
    """Plans ERP invoices for won deals (see the module docstring for the rules)."""

    name: str = NAME
    depends_on: tuple[tuple[str, ...], ...] = (
        ("marts", "fct_opportunities"), ("marts", "fct_invoices"), ("raw_salesforce", "opportunity"),
        ("raw_salesforce", "opportunity_line_item"),
    )

    def plan(self, ctx: FlowContext) -> FlowPlan:
        plan = FlowPlan(self.name)
        since = ctx.today - dt.timedelta(days=ctx.config.won_deal_lookback_days)
        history = recorded(ctx, self.name, target_object="account.move")
        deals = ctx.rows(
            """select opportunity_id, salesforce_account_id, customer_id, opportunity_name, stage_category,
                      currency_code, amount, close_date
               from marts.fct_opportunities
               where (stage_category = 'won' and close_date >= %(since)s) or opportunity_id = any(%(known)s)""",
            {"since": since, "known": list(history)},
        )
        if not deals:
            return plan
        ids = [d["opportunity_id"] for d in deals]
        lines = self._lines(ctx, ids)
        existing = {r["salesforce_opportunity_id"]: r for r in ctx.rows(
            """select salesforce_opportunity_id, erp_invoice_id, revloop_key, payment_status
               from marts.fct_invoices
               where move_type = 'out_invoice' and status <> 'void' and salesforce_opportunity_id = any(%s)
               order by erp_invoice_id""",
            (ids,),
        )}
        payment_status = self._payment_status(ctx, [h.target_id for h in history.values() if h.target_id])
        accounts = self._accounts(ctx, {d["salesforce_account_id"] for d in deals})
        terms = self._terms_days(ctx, [a["erp_partner_id"] for a in accounts.values() if a.get("erp_partner_id")])

        for deal in deals:
            opp = deal["opportunity_id"]
            last = history.get(opp)
            if last is None:
                if deal["stage_category"] != "won":
                    continue
                if opp in existing:
                    continue  # the ERP already holds its invoice (made before Revloop, or by hand): adopted
            deal_lines = lines.get(opp, [])
            if deal["stage_category"] != "won":
                if last is not None and last.state in LIVE_STATES:
                    plan.holds.append(Hold(self.name, opp, f"re-opened after invoicing ({last.idempotency_key}); "
                                                           "the invoice stands until a person credits it"))
                continue
            if not deal_lines:
                plan.holds.append(Hold(self.name, opp, "won deal has no products: nothing to invoice"))
                continue
            account = accounts.get(deal["salesforce_account_id"]) or {}
            payload = self._invoice_payload(deal, deal_lines, account, terms,
                                            ctx.config.default_payment_terms_days)
            if last is None:
                key = invoice_key(opp, 1)
                plan.writes.append(PlannedWrite(self._write(key, payload, opp, "post"), diff(None, _shown(payload)),
                                                "deal won"))
                continue
            if last.state not in LIVE_STATES:
                plan.holds.append(Hold(self.name, opp, f"last write {last.idempotency_key} is {last.state}: "
                                                       f"replay it (revloop replay --id {last.id})"))
                continue
            if last.payload.get("revloop_terms") == payload["revloop_terms"]:
                continue
            state = payment_status.get(str(last.target_id)) if last.target_id else None
            if state != "unpaid":
                why = "not delivered yet" if last.target_id is None else f"payment state {state or 'not loaded yet'}"
                plan.holds.append(Hold(self.name, opp, f"terms changed after invoicing ({why}): held for review"))
                continue
            version = version_of(last.idempotency_key)
            credit = IntendedWrite(
                flow=self.name, target_system="erp", target_object="account.move", operation="credit_note",
                idempotency_key=credit_key(opp, version), source_ref=opp,
                payload={"reversed_entry_id": int(str(last.target_id)), "invoice_date": payload["invoice_date"],
                         "reason": "terms changed after invoicing"},
            )
            plan.writes.append(PlannedWrite(credit, diff(None, {"reverses": last.target_id}), "terms changed"))
            key = invoice_key(opp, version + 1)
            plan.writes.append(PlannedWrite(self._write(key, payload, opp, "post"),
                                            diff(_shown(last.payload), _shown(payload)), "re-invoice"))
        return plan

    def _write(self, key: str, payload: dict[str, Any], opp: str, operation: str) -> IntendedWrite:
        return IntendedWrite(flow=self.name, target_system="erp", target_object="account.move", operation=operation,
                             idempotency_key=key, payload=payload, source_ref=opp)

    @staticmethod
    def _invoice_payload(deal: dict[str, Any], lines: list[dict[str, Any]], account: dict[str, Any],
                         terms: dict[int, int], default_terms_days: int) -> dict[str, Any]:
        invoice_lines = [
            {"product_code": line["product_code"], "quantity": _number(line["quantity"]),
             "price_unit": _number(line["unit_price"]), "name": line["line_name"]}
            for line in lines
        ]
        partner_id = account.get("erp_partner_id")
        days = terms.get(int(partner_id)) if partner_id else None
        if days is None:
            days = default_terms_days
        invoice_date: dt.date = deal["close_date"]
        payload: dict[str, Any] = {
            "currency": deal["currency_code"],
            "invoice_date": invoice_date.isoformat(),
            "invoice_date_due": (invoice_date + dt.timedelta(days=days)).isoformat(),
            "invoice_origin": deal["opportunity_id"],
            "payment_reference": deal["opportunity_name"][:64] if deal.get("opportunity_name") else None,
            "lines": invoice_lines,
        }
        if partner_id:
            payload["partner_id"] = int(partner_id)
        else:
            payload["partner"] = {"salesforce_account_id": deal["salesforce_account_id"],
                                  "values": {k: v for k, v in {
                                      "name": account.get("account_name"), "city": account.get("billing_city"),
                                      "zip": account.get("billing_postal_code"),
                                      "country_code": account.get("billing_country_code"),
                                      "website": account.get("website"),
                                  }.items() if v}}
        payload["revloop_terms"] = content_hash([payload["currency"], invoice_lines])
        return payload

    @staticmethod
    def _lines(ctx: FlowContext, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        result: dict[str, list[dict[str, Any]]] = {}
        for row in ctx.rows(
            """select li.opportunity_id, li.quantity, li.unit_price, li.line_name,
                      coalesce(ep.product_code, p.product_code) as product_code
               from staging.stg_salesforce__opportunity_line_items li
               left join staging.stg_salesforce__products p on p.product_id = li.product_id
               left join staging.stg_erp__products ep on ep.product_id = p.erp_product_id and not ep.is_deleted
               where not li.is_deleted and li.opportunity_id = any(%s)
               order by li.opportunity_id, li.opportunity_line_item_id""",
            (ids,),
        ):
            result.setdefault(row["opportunity_id"], []).append(row)
        return result

    @staticmethod
    def _accounts(ctx: FlowContext, account_ids: set[str]) -> dict[str, dict[str, Any]]:
        """The deal's Account, with the ERP partner our cross-references (or identity resolution) name."""
        rows = ctx.rows(
            """select a.account_id, a.account_name, a.billing_city, a.billing_postal_code, a.billing_country_code,
                      a.website,
                      coalesce(a.erp_partner_id, (
                          select x.source_id::bigint from intermediate.int_customer_xref x
                          where x.source_system = 'erp' and x.customer_id = 'salesforce:' || a.account_id
                            and x.match_confidence >= 0.95
                          order by x.match_confidence desc, x.source_id limit 1)) as erp_partner_id
               from staging.stg_salesforce__accounts a
               where not a.is_deleted and a.account_id = any(%s)""",
            (sorted(account_ids),),
        )
        return {r["account_id"]: r for r in rows}

    @staticmethod
    def _terms_days(ctx: FlowContext, partner_ids: list[int]) -> dict[int, int]:
        """The customer's usual payment terms: the median days from invoice date to due date of their invoices."""
        if not partner_ids:
            return {}
        rows = ctx.rows(
            """select partner_id, percentile_disc(0.5) within group (order by due_date - invoice_date) as days
               from staging.stg_erp__invoices
               where move_type = 'out_invoice' and not is_deleted and due_date is not null
                 and invoice_date is not null and partner_id = any(%s)
               group by partner_id""",
            (partner_ids,),
        )
        return {int(r["partner_id"]): int(r["days"]) for r in rows if r["days"] is not None}

    @staticmethod
    def _payment_status(ctx: FlowContext, invoice_ids: list[str]) -> dict[str, str]:
        ids = [int(i) for i in invoice_ids if str(i).isdigit()]
        if not ids:
            return {}
        rows = ctx.rows("select erp_invoice_id, payment_status from marts.fct_invoices where erp_invoice_id = any(%s)",
                        (ids,))
        return {str(r["erp_invoice_id"]): str(r["payment_status"]) for r in rows}


def _number(value: Any) -> float | int:
    """A JSON number for the ERP's float fields (Odoo's ``price_unit``/``quantity`` are floats)."""
    number = Decimal(str(value))
    return int(number) if number == number.to_integral_value() else float(number)


def _shown(payload: dict[str, Any]) -> dict[str, Any]:
    """The fields a person reads in a plan (the lines summarized, internal markers left out)."""
    shown = {k: v for k, v in payload.items() if k not in ("lines", "revloop_terms", "partner")}
    shown["lines"] = "; ".join(f"{line['quantity']} x {line['product_code']} @ {line['price_unit']}"
                               for line in payload.get("lines", []))
    return shown
