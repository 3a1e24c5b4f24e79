"""Flows latency: from a change committed in a sandbox to the target sandbox holding the result.

Two paths, each over ``--events`` changes fired at ``--rate`` per second while a warm :class:`SyncLoop` runs
in this process (a thread), and the payments webhooks arrive at the real receiver:

* (a) an Opportunity set to Closed Won (simple-salesforce)  ->  the ERP shows the posted invoice (odoolib);
* (b) its payments invoice paid with ``pm_card_visa`` (stripe SDK)  ->  ``Invoice__c.Payment_Status__c`` is Paid.

A watcher polls each target every 250 ms for all outstanding changes at once. Profiles: ``none`` and
``flaky`` (set on all three sandboxes while events are fired and awaited).

    python -m bench.latency --events 200 --rate 2 --profiles none flaky
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import faulthandler
import logging
import os
import secrets
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests
import uvicorn
from simple_salesforce import Salesforce

from bench.common import console, save, table
from pipelines.catalog import SYSTEMS, source_factory
from pipelines.common.runner import run_load
from revloop import warehouse
from revloop.connectors import erp as erp_connector
from revloop.connectors import payments as payments_connector
from revloop.cycle import SyncCycle, SyncLoop
from revloop.dbt import DbtProject
from revloop.http import pinned_session
from revloop.settings import ErpSettings, PaymentsSettings, SalesforceSettings, Settings
from revloop.webhooks import create_app
from revloop.webhooks import ensure_schema as ensure_webhook_schema
from sandboxes import control

logger = logging.getLogger("bench.latency")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


@contextlib.contextmanager
def world(root: Path, admin_url: str) -> Iterator[dict[str, Any]]:
    """Sandboxes (demo), a fresh warehouse loaded and built, the webhook receiver; torn down afterwards."""
    webhook_port = control.free_port()
    os.environ["REVLOOP_SANDBOX_WEBHOOK_URL"] = f"http://127.0.0.1:{webhook_port}/webhooks/payments"
    ports = {s: control.free_port() for s in SYSTEMS}
    configs = control.configs(root, systems=SYSTEMS, ports=ports, seed=42, scale="demo")
    processes = [control.start(c, detach=False) for c in configs]
    name = f"revloop_latency_{os.getpid()}_{secrets.token_hex(3)}"
    url = warehouse.create_database(admin_url, name)
    server = None
    try:
        control.wait_healthy(processes, 300)
        env = control.client_env(configs)

        def fields(system: str) -> dict[str, str]:
            prefix = f"REVLOOP_{system.upper()}_"
            return {k.removeprefix(prefix).lower(): v for k, v in env[system].items()}

        settings = Settings(home=root / "home", salesforce=SalesforceSettings(**fields("salesforce")),
                            erp=ErpSettings(**fields("erp")), payments=PaymentsSettings(**fields("payments")))
        ensure_webhook_schema(url)
        secret = settings.payments.webhook_secret.get_secret_value()  # type: ignore[union-attr]
        server = uvicorn.Server(uvicorn.Config(create_app(url, secret), host="127.0.0.1", port=webhook_port,
                                               log_level="warning", access_log=False))
        threading.Thread(target=server.run, daemon=True).start()
        for system in SYSTEMS:
            run_load(system, source_factory(system), settings, url, pipelines_dir=root / "home" / "dlt" / system)
        DbtProject(url).build()
        yield {"settings": settings, "url": url, "configs": {c.system: c for c in configs}}
    finally:
        if server is not None:
            server.should_exit = True
        control.stop(processes)
        warehouse.drop_database(admin_url, name)


def admin_salesforce(config: Any) -> Salesforce:
    session: requests.Session = pinned_session(config.base_url, config.tls_dir / "ca.pem")
    with control.http_client(config) as client:
        app = client.get("/__sandbox__/salesforce/apps").json()["apps"]["revloop-admin"]
    token = session.post(f"{config.base_url}/services/oauth2/token",
                         data={"grant_type": "client_credentials", "client_id": app["client_id"],
                               "client_secret": app["client_secret"]}, timeout=30).json()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session,
                      version="62.0")


def set_faults(configs: dict[str, Any], profile: str) -> None:
    for config in configs.values():
        with control.http_client(config) as client:
            client.put("/__sandbox__/faults", json={"profile": profile})


def retrying(call: Callable[[], Any], attempts: int = 20) -> Any:
    """The benchmark's own calls ride through injected faults (they are not what is measured)."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1)
    return None


def measure(fire: list[Callable[[], str]], done: Callable[[], dict[str, float]], rate: float,
            deadline: float) -> list[float]:
    """Fire each change at ``rate``/s (each returns its key); latency = first time ``done()`` shows it."""
    fired: dict[str, float] = {}
    finished: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                seen = done()
                now = time.monotonic()
                for key in list(fired):
                    if key not in finished and key in seen:
                        finished[key] = now
            time.sleep(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    for change in fire:
        started = time.monotonic()
        key = retrying(change)
        fired[key] = time.monotonic()
        time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - started)))
    until = time.monotonic() + deadline
    while len(finished) < len(fired) and time.monotonic() < until:
        time.sleep(0.2)
    stop.set()
    watcher.join(5)
    missing = len(fired) - len(finished)
    if missing:
        logger.warning("%d change(s) not seen within %.0fs", missing, deadline)
    return [finished[k] - fired[k] for k in finished]


def run(events: int, rate: float, profiles: list[str], poll_seconds: float, full_every: float) -> dict[str, Any]:
    admin_url = os.environ.get("REVLOOP_TEST_DATABASE_URL") or warehouse.embedded_url(
        Path(__file__).resolve().parents[1] / ".revloop" / "test-home")
    results: dict[str, Any] = {"events": events, "rate_per_second": rate, "poll_seconds": poll_seconds,
                               "full_every_seconds": full_every, "runs": []}
    with tempfile.TemporaryDirectory(prefix="revloop-latency-") as tmp, world(Path(tmp), admin_url) as w:
        settings, configs = w["settings"], w["configs"]
        cycle = SyncCycle(settings, w["url"])
        stopping = threading.Event()
        loop = SyncLoop(cycle, poll_seconds=poll_seconds, full_every_seconds=full_every)
        thread = threading.Thread(target=loop.run, args=(stopping.is_set,), daemon=True)
        thread.start()
        sf = admin_salesforce(configs["salesforce"])
        erp = erp_connector.connect(settings.erp, reader=True)
        pay = payments_connector.connect(settings.payments, max_network_retries=0)
        account = sf.query(
            "SELECT Id, CurrencyIsoCode FROM Account WHERE ERP_Partner_Id__c != null LIMIT 1")["records"][0]
        product = sf.query("SELECT Id FROM Product2 WHERE ERP_Product_Id__c != null AND IsActive = true LIMIT 1")
        product_id = product["records"][0]["Id"]
        try:
            for profile in profiles:
                deals = []
                for n in range(events):  # prepared before the clock runs: open deals with one product line
                    opp = sf.Opportunity.create({"Name": f"Latency {profile} {n}", "AccountId": account["Id"],
                                                 "StageName": "Negotiation/Review", "CurrencyIsoCode":
                                                 account["CurrencyIsoCode"],
                                                 "CloseDate": dt.date.today().isoformat()})["id"]
                    sf.OpportunityLineItem.create({"OpportunityId": opp, "Product2Id": product_id, "Quantity": 1,
                                                   "UnitPrice": 100 + n})
                    deals.append(opp)
                time.sleep(2 * poll_seconds + 1)  # the loop has seen the open deals
                set_faults(configs, profile)

                def win(opp: str) -> Callable[[], str]:
                    return lambda: (sf.Opportunity.update(opp, {"StageName": "Closed Won"}), opp)[1]

                def posted(deals: list[str] = deals) -> dict[str, float]:
                    rows = erp.get_model("account.move").search_read(
                        [["invoice_origin", "in", deals], ["state", "=", "posted"], ["move_type", "=", "out_invoice"]],
                        ["invoice_origin"])
                    return {r["invoice_origin"]: 1.0 for r in rows}

                won = measure([win(o) for o in deals], posted, rate, deadline=120)
                # every deal's payment request exists before the payments are timed
                invoices: dict[str, str] = {}
                until = time.monotonic() + 180
                while len(invoices) < len(deals) and time.monotonic() < until:
                    with contextlib.suppress(Exception):
                        for invoice in pay.v1.invoices.list(params={"limit": 100, "status": "open"}).auto_paging_iter():
                            origin = (invoice.to_dict().get("metadata") or {}).get("salesforce_opportunity_id")
                            if origin in deals:
                                invoices[origin] = invoice.id
                    time.sleep(1)

                def settle(opp: str, invoice_id: str) -> Callable[[], str]:
                    def call() -> str:
                        with contextlib.suppress(Exception):
                            pay.v1.invoices.pay(invoice_id, params={"payment_method": "pm_card_visa"})
                        if pay.v1.invoices.retrieve(invoice_id).status != "paid":
                            raise RuntimeError("not paid yet")
                        return opp
                    return call

                def paid() -> dict[str, float]:
                    rows = sf.query_all("SELECT Opportunity__c FROM Invoice__c WHERE Payment_Status__c = 'Paid' "
                                        "AND Revloop_Key__c LIKE 'won-deal:%'")["records"]
                    return {r["Opportunity__c"]: 1.0 for r in rows}

                payments = measure([settle(o, i) for o, i in invoices.items()], paid, rate, deadline=120)
                set_faults(configs, "none")
                for path, values, total in (("closed_won_to_erp_invoice", won, len(deals)),
                                            ("payment_to_salesforce_status", payments, len(invoices))):
                    results["runs"].append({
                        "profile": profile, "path": path, "fired": total, "seen": len(values),
                        "p50": statistics.median(values) if values else None,
                        "p95": percentile(values, 0.95), "max": max(values) if values else None,
                    })
                    console.print(results["runs"][-1])
        finally:
            stopping.set()
            thread.join(30)
            cycle.close()
    results["cycles"] = loop.cycles
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=2.0, help="changes fired per second")
    parser.add_argument("--profiles", nargs="+", default=["none", "flaky"])
    parser.add_argument("--poll-seconds", type=float, default=1.0)
    parser.add_argument("--full-every", type=float, default=60.0, help="seconds between loads of all systems")
    parser.add_argument("--log-cycles", action="store_true", help="log each cycle's steps and their seconds")
    args = parser.parse_args()
    faulthandler.register(signal.SIGUSR1)
    if args.log_cycles:
        logging.getLogger("revloop.cycle").setLevel(logging.DEBUG)  # `kill -USR1 <pid>` prints every thread's stack
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    results = run(args.events, args.rate, args.profiles, args.poll_seconds, args.full_every)
    path = save("flows-latency", results)
    console.print(table("Flows latency (seconds)", ["profile", "path", "fired", "seen", "p50", "p95", "max"],
                        [[r["profile"], r["path"], r["fired"], r["seen"], r["p50"], r["p95"], r["max"]]
                         for r in results["runs"]]))
    console.print(f"saved {path}")


if __name__ == "__main__":
    main()
