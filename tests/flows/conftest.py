"""Fixtures of the end-to-end flow tests: the three sandboxes (demo book), the webhook receiver, a fresh
warehouse loaded and built once, a warm :class:`~revloop.cycle.SyncCycle`, and the real clients a person
would use (simple-salesforce as the org's admin app, the stripe SDK, odoolib on the ERP's read key)."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import stripe
import uvicorn
from simple_salesforce import Salesforce

from pipelines.catalog import SYSTEMS, source_factory
from pipelines.common.runner import run_load
from revloop import warehouse
from revloop.connectors import erp as erp_connector
from revloop.connectors import payments as payments_connector
from revloop.cycle import CycleReport, SyncCycle
from revloop.dbt import DbtProject
from revloop.http import pinned_session
from revloop.settings import Settings
from revloop.sync.worker import WorkerPolicy
from revloop.webhooks import create_app
from revloop.webhooks import ensure_schema as ensure_webhook_schema
from tests.sandbox_harness import RunningSandbox, free_port, settings_for, start_sandbox

DEADLINE_SECONDS = 60.0
_serial = itertools.count(1)


def wait_for(condition: Callable[[], Any], *, step: Callable[[], Any] | None = None,
             deadline: float = DEADLINE_SECONDS, what: str = "condition") -> Any:
    """Run ``step`` (a sync cycle) and poll ``condition`` until it returns something truthy, or fail."""
    until = time.monotonic() + deadline
    while True:
        if step is not None:
            step()
        value = condition()
        if value:
            return value
        if time.monotonic() > until:
            raise AssertionError(f"timed out after {deadline:.0f}s waiting for {what}")
        time.sleep(0.2)


@dataclasses.dataclass
class World:
    """Everything an end-to-end flow test touches."""

    sandboxes: dict[str, RunningSandbox]
    settings: Settings
    database_url: str
    cycle: SyncCycle
    sf: Salesforce
    stripe: stripe.StripeClient
    erp: Any
    webhook_port: int

    def run_cycle(self, systems: tuple[str, ...] = SYSTEMS) -> CycleReport:
        return self.cycle.run(systems)

    def erp_invoice_for(self, opportunity_id: str) -> dict[str, Any] | None:
        moves = self.erp.get_model("account.move").search_read(
            [["invoice_origin", "=", opportunity_id], ["move_type", "=", "out_invoice"], ["state", "!=", "cancel"]],
            ["name", "state", "payment_state", "amount_total", "amount_residual", "ref", "currency_id"],
        )
        assert len(moves) <= 1, f"more than one invoice for {opportunity_id}: {moves}"
        return moves[0] if moves else None

    def erp_invoices_for(self, opportunity_id: str, move_type: str = "out_invoice") -> list[dict[str, Any]]:
        return self.erp.get_model("account.move").search_read(
            [["invoice_origin", "=", opportunity_id], ["move_type", "=", move_type]],
            ["name", "state", "payment_state", "amount_total", "ref", "reversed_entry_id"],
        )

    def sf_invoice_for(self, opportunity_id: str) -> list[dict[str, Any]]:
        soql = ("SELECT Id, Name, ERP_Invoice_Number__c, ERP_Invoice_Id__c, Payment_Status__c, Paid_At__c, "
                f"Status__c, Amount__c, Revloop_Key__c FROM Invoice__c WHERE Opportunity__c = '{opportunity_id}'")
        return list(self.sf.query_all(soql)["records"])

    def payments_invoice_for(self, erp_invoice_id: int, opportunity_id: str) -> Any | None:
        """The payments invoice whose metadata names the ERP invoice, among the deal's customer's invoices."""
        account = self.sf.Opportunity.get(opportunity_id)["AccountId"]
        customers = self.stripe.v1.customers.search(
            params={"query": f"metadata['salesforce_account_id']:'{account}'", "limit": 10}
        ).data
        live = [
            invoice for customer in customers
            for invoice in self.stripe.v1.invoices.list(params={"customer": customer.id, "limit": 100}).data
            if (invoice.to_dict().get("metadata") or {}).get("erp_invoice_id") == str(erp_invoice_id)
            and invoice.status != "void"
        ]
        assert len(live) <= 1, f"more than one payments invoice for ERP invoice {erp_invoice_id}"
        return live[0] if live else None

    def win_deal(self, *, quantity: int = 2, unit_price: float = 1500.0, name: str | None = None) -> str:
        """Create an Opportunity with one product line on an Account the ERP knows, then mark it Closed Won."""
        account = self.sf.query(
            "SELECT Id, CurrencyIsoCode FROM Account WHERE ERP_Partner_Id__c != null ORDER BY Id LIMIT 1"
        )["records"][0]
        product = self.sf.query(
            "SELECT Id FROM Product2 WHERE ERP_Product_Id__c != null AND IsActive = true ORDER BY Id LIMIT 1"
        )["records"][0]
        opp = self.sf.Opportunity.create({
            "Name": name or f"Flow test deal {next(_serial)}-{secrets.token_hex(2)}",
            "AccountId": account["Id"], "StageName": "Negotiation/Review",
            "CloseDate": time.strftime("%Y-%m-%d", time.gmtime()), "CurrencyIsoCode": account["CurrencyIsoCode"],
            "Amount": quantity * unit_price,
        })
        self.sf.OpportunityLineItem.create({"OpportunityId": opp["id"], "Product2Id": product["Id"],
                                            "Quantity": quantity, "UnitPrice": unit_price})
        self.sf.Opportunity.update(opp["id"], {"StageName": "Closed Won"})
        return str(opp["id"])

    def faults(self, system: str, **knobs: Any) -> None:
        self.sandboxes[system].admin("PUT", "faults", knobs or {"profile": "none"})


def _admin_sf(sandbox: RunningSandbox) -> Salesforce:
    session: requests.Session = pinned_session(sandbox.base_url, sandbox.ca_file)
    app = sandbox.admin("GET", "salesforce/apps")["apps"]["revloop-admin"]
    token = session.post(f"{sandbox.base_url}/services/oauth2/token",
                         data={"grant_type": "client_credentials", "client_id": app["client_id"],
                               "client_secret": app["client_secret"]}, timeout=30).json()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session,
                      version="62.0")


@contextlib.contextmanager
def _receiver(database_url: str, secret: str, port: int) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(create_app(database_url, secret), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    until = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > until:
            raise RuntimeError("webhook receiver did not start")
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory, warehouse_admin_url: str) -> Iterator[World]:
    root = tmp_path_factory.mktemp("flows")
    webhook_port = free_port()
    previous = os.environ.get("REVLOOP_SANDBOX_WEBHOOK_URL")
    os.environ["REVLOOP_SANDBOX_WEBHOOK_URL"] = f"http://127.0.0.1:{webhook_port}/webhooks/payments"
    name = f"revloop_flows_{os.getpid()}_{secrets.token_hex(3)}"
    url = warehouse.create_database(warehouse_admin_url, name)
    sandboxes: dict[str, RunningSandbox] = {}
    try:
        for system in SYSTEMS:
            sandboxes[system] = start_sandbox(system, root / system, seed=42, scale="demo")
        settings = settings_for(sandboxes, root / "home")
        ensure_webhook_schema(url)
        with _receiver(url, settings.payments.webhook_secret.get_secret_value(), webhook_port):  # type: ignore[union-attr]
            for system in SYSTEMS:
                run_load(system, source_factory(system), settings, url, pipelines_dir=root / "home" / "dlt" / system)
            DbtProject(url).build()
            policy = WorkerPolicy(max_attempts=3, lease_seconds=5.0, backoff_base_seconds=0.2,
                                  backoff_cap_seconds=1.0)
            cycle = SyncCycle(settings, url, policy=policy)
            cycle.run()  # the book's own business (renewals due): settled before the tests start
            yield World(sandboxes, settings, url, cycle, _admin_sf(sandboxes["salesforce"]),
                        payments_connector.connect(settings.payments, max_network_retries=0),
                        erp_connector.connect(settings.erp, reader=True), webhook_port)
            cycle.close()
    finally:
        for running in sandboxes.values():
            running.stop()
        if previous is None:
            os.environ.pop("REVLOOP_SANDBOX_WEBHOOK_URL", None)
        else:
            os.environ["REVLOOP_SANDBOX_WEBHOOK_URL"] = previous
        warehouse.drop_database(warehouse_admin_url, name)


@pytest.fixture(scope="package")
def cli_env(world: World) -> dict[str, str]:
    """The environment ``revloop`` commands read to reach this world's warehouse and sandboxes."""
    env = {"REVLOOP_DATABASE_URL": world.database_url, "REVLOOP_HOME": str(world.settings.home)}
    for running in world.sandboxes.values():
        env.update(running.env())
    return env
