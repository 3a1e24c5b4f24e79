"""A trickle of business activity in the running sandboxes, as people would make it, for the demo.

Every few seconds one thing happens, through the vendors' own clients (never through the sandboxes'
internals): a sales rep wins a new deal in Salesforce (an Opportunity with one product line, then Closed
Won), or a customer pays one of the open payment requests Revloop sent (usually with a good card, now and
then with a card that is declined and then a good one, or one that is later disputed). Revloop's sync loop
then moves each change to the other systems, and the Dagster UI shows it happen.

The generator is the business's side of the demo: it uses the sandboxes' admin app for Salesforce (a sales
rep, not Revloop's integration user) and the payments secret key (a customer paying through checkout).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
import stripe
from simple_salesforce import Salesforce

from revloop.http import pinned_session
from sandboxes import control

logger = logging.getLogger(__name__)

DECLINED_CARD = "pm_card_chargeDeclined"
DISPUTED_CARD = "pm_card_createDispute"
GOOD_CARD = "pm_card_visa"


@dataclasses.dataclass(frozen=True)
class Action:
    """One thing that happened: what, and the record it happened to."""

    kind: str
    record: str
    detail: str = ""


class BusinessActivity:
    """Makes one business event at a time in the running sandboxes.

    Args:
        configs: The running sandboxes (``sandboxes.control.configs``), by system.
        seed: Seed of the choices (which account, product, amount, card), so a demo run can be replayed.
    """

    def __init__(self, configs: Mapping[str, control.SandboxConfig], *, seed: int | None = None) -> None:
        self.configs = configs
        self.rng = random.Random(seed)
        self._sf: Salesforce | None = None
        self._payments: stripe.StripeClient | None = None
        self._accounts: list[dict[str, Any]] = []
        self._products: list[str] = []
        self.counts: dict[str, int] = {}

    # ---- clients ---------------------------------------------------------------------------------------

    def salesforce(self) -> Salesforce:
        if self._sf is None:
            config = self.configs["salesforce"]
            session: requests.Session = pinned_session(config.base_url, config.tls_dir / "ca.pem")
            with control.http_client(config) as client:
                app = client.get("/__sandbox__/salesforce/apps").json()["apps"]["revloop-admin"]
            token = session.post(f"{config.base_url}/services/oauth2/token",
                                 data={"grant_type": "client_credentials", "client_id": app["client_id"],
                                       "client_secret": app["client_secret"]}, timeout=30)
            token.raise_for_status()
            body = token.json()
            self._sf = Salesforce(instance_url=body["instance_url"], session_id=body["access_token"],
                                  session=session, version="62.0")
        return self._sf

    def payments(self) -> stripe.StripeClient:
        if self._payments is None:
            env = control.client_env([self.configs["payments"]])["payments"]
            self._payments = stripe.StripeClient(env["REVLOOP_PAYMENTS_SECRET_KEY"],
                                                 base_addresses={"api": env["REVLOOP_PAYMENTS_API_BASE"]},
                                                 max_network_retries=2)
        return self._payments

    # ---- the events ------------------------------------------------------------------------------------

    def win_deal(self) -> Action:
        """A rep creates an Opportunity with one product line on a known customer and marks it Closed Won."""
        sf = self.salesforce()
        if not self._accounts:
            self._accounts = sf.query(
                "SELECT Id, CurrencyIsoCode FROM Account WHERE ERP_Partner_Id__c != null LIMIT 50")["records"]
            self._products = [r["Id"] for r in sf.query(
                "SELECT Id FROM Product2 WHERE ERP_Product_Id__c != null AND IsActive = true LIMIT 20")["records"]]
        if not self._accounts or not self._products:
            raise RuntimeError("the Salesforce sandbox has no account or product known to the ERP to sell")
        account = self.rng.choice(self._accounts)
        quantity = self.rng.randint(1, 5)
        unit_price = float(self.rng.choice((250, 480, 900, 1200, 2500, 4800)))
        opportunity = sf.Opportunity.create({
            "Name": f"Demo deal {dt.datetime.now(dt.UTC):%H%M%S}-{self.rng.randint(100, 999)}",
            "AccountId": account["Id"], "StageName": "Negotiation/Review",
            "CloseDate": dt.date.today().isoformat(), "CurrencyIsoCode": account["CurrencyIsoCode"],
            "Amount": quantity * unit_price,
        })["id"]
        sf.OpportunityLineItem.create({"OpportunityId": opportunity, "Product2Id": self.rng.choice(self._products),
                                       "Quantity": quantity, "UnitPrice": unit_price})
        sf.Opportunity.update(opportunity, {"StageName": "Closed Won"})
        return Action("deal_won", opportunity, f"{quantity} x {unit_price:g} {account['CurrencyIsoCode']}")

    def pay_invoice(self) -> Action | None:
        """A customer pays one open payment request Revloop sent (None when none is open)."""
        client = self.payments()
        open_requests = [
            invoice for invoice in client.v1.invoices.list(params={"status": "open", "limit": 100}).data
            if (invoice.to_dict().get("metadata") or {}).get("erp_invoice_id")
        ]
        if not open_requests:
            return None
        invoice = self.rng.choice(open_requests)
        roll = self.rng.random()
        if roll < 0.15:
            # declined first, then paid with a good card: a failed attempt followed by a success
            with contextlib.suppress(stripe.CardError):
                client.v1.invoices.pay(invoice.id, params={"payment_method": DECLINED_CARD})
            client.v1.invoices.pay(invoice.id, params={"payment_method": GOOD_CARD})
            return Action("paid_after_decline", invoice.id)
        card = DISPUTED_CARD if roll < 0.2 else GOOD_CARD
        client.v1.invoices.pay(invoice.id, params={"payment_method": card})
        return Action("paid_then_disputed" if card == DISPUTED_CARD else "paid", invoice.id)

    def step(self) -> Action | None:
        """One event: a payment when one is waiting and the dice say so, else a new won deal."""
        action = self.pay_invoice() if self.rng.random() < 0.5 else None
        if action is None:
            action = self.win_deal()
        self.counts[action.kind] = self.counts.get(action.kind, 0) + 1
        return action

    def run(self, stop: Callable[[], bool], every_seconds: float = 5.0,
            on_action: Callable[[Action], None] | None = None) -> None:
        """One event every ``every_seconds`` until ``stop()``; a failed event is logged and the next one tried."""
        while not stop():
            started = time.monotonic()
            try:
                action = self.step()
            except Exception as exc:  # a sandbox fault profile or a restart: the trickle goes on
                logger.warning("activity event failed: %s: %s", type(exc).__name__, exc)
            else:
                if action is not None and on_action is not None:
                    on_action(action)
            remaining = every_seconds - (time.monotonic() - started)
            deadline = time.monotonic() + max(0.0, remaining)
            while not stop() and time.monotonic() < deadline:
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
