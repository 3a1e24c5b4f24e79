"""Flow 4, ``renewal_opportunity``: a subscription ending soon gets exactly one renewal Opportunity.

Trigger: ``fct_subscriptions`` rows that are active, end within ``renewal_window_days`` from today, and have no
``Renewal_Opportunity__c`` yet.
Write: ``("Opportunity", "create")`` ``{"subscription_id", "fields": {Name, AccountId, StageName, CloseDate,
Amount, CurrencyIsoCode, Type: "Renewal"}}``; the writer links the subscription to it.
Idempotency key: ``renewal:<subscription id>:<end date>``: one renewal per subscription term. Salesforce has no
external id on Opportunity in this org, so the writer finds an earlier one by the subscription's link, then by
the key written into the Opportunity's Description (docs/writers.md).
Conflicts: a renewal made by hand (the link is set) is respected: nothing is written. A later term (a new end
date) is a new key, hence its own renewal.
"""

from __future__ import annotations

import datetime as dt

from revloop.flows.base import FlowContext, FlowPlan, PlannedWrite, diff, recorded
from revloop.sync.model import IntendedWrite

NAME = "renewal_opportunity"


class RenewalFlow:
    """Plans one renewal Opportunity per subscription term ending within the window."""

    name: str = NAME
    depends_on: tuple[tuple[str, ...], ...] = (("marts", "fct_subscriptions"), ("raw_salesforce", "subscription_c"))

    def plan(self, ctx: FlowContext) -> FlowPlan:
        plan = FlowPlan(self.name)
        until = ctx.today + dt.timedelta(days=ctx.config.renewal_window_days)
        rows = ctx.rows(
            """select s.subscription_id, s.salesforce_account_id, s.currency_code, s.annual_amount, s.end_date,
                      a.account_name
               from marts.fct_subscriptions s
               left join staging.stg_salesforce__accounts a on a.account_id = s.salesforce_account_id
               where s.status = 'active' and s.renewal_opportunity_id is null
                 and s.end_date between %s and %s
               order by s.subscription_id""",
            (ctx.today, until),
        )
        keys = {f"renewal:{r['subscription_id']}:{r['end_date'].isoformat()}": r for r in rows}
        done = recorded(ctx, self.name, [r["subscription_id"] for r in rows])
        for key, row in keys.items():
            last = done.get(row["subscription_id"])
            if last is not None and last.idempotency_key == key:
                continue
            fields = {
                "Name": f"{row['account_name'] or row['salesforce_account_id']} renewal {row['end_date']:%Y-%m}",
                "AccountId": row["salesforce_account_id"],
                "StageName": "Prospecting",
                "CloseDate": row["end_date"].isoformat(),
                "Amount": float(row["annual_amount"]) if row["annual_amount"] is not None else None,
                "CurrencyIsoCode": row["currency_code"],
                "Type": "Renewal",
            }
            write = IntendedWrite(flow=self.name, target_system="salesforce", target_object="Opportunity",
                                  operation="create", idempotency_key=key, source_ref=row["subscription_id"],
                                  payload={"subscription_id": row["subscription_id"],
                                           "fields": {k: v for k, v in fields.items() if v is not None}})
            plan.writes.append(PlannedWrite(write, diff(None, fields), f"subscription ends {row['end_date']}"))
        return plan
