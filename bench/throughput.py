"""Throughput: N deals won at once -> ERP invoices posted, Salesforce ``Invoice__c`` and payment requests made.

The three sandboxes (demo book) and a throwaway warehouse are started and backfilled; the payments webhook
receiver runs in its own process, as in production. N open Opportunities, each with one product line, are
created through sObject Collections (200 per call) on the book's Accounts, and loaded. Then all N are set
to Closed Won (collections again: 200 per call, 50 calls for 10,000) and the clock starts. A warm
:class:`revloop.cycle.SyncCycle` runs whole cycles (load -> dbt -> plan -> enqueue -> deliver) until the
outbox has delivered every deal's chain, and the targets are then checked through the real clients: one
posted ERP invoice with ref ``won-deal:<id>:v1`` per deal, one ``Invoice__c`` with that ``Revloop_Key__c``,
one open payments invoice whose metadata names the deal, one payments customer per Account, no duplicates.

    python -m bench.throughput --deals 10000 --profile none
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
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from simple_salesforce import Salesforce

from bench.common import console, save, table
from bench.latency import admin_salesforce, retrying, set_faults
from pipelines.catalog import SYSTEMS, source_factory
from pipelines.common.runner import run_load
from revloop import warehouse
from revloop.connectors import erp as erp_connector
from revloop.connectors import payments as payments_connector
from revloop.cycle import SyncCycle
from revloop.dbt import DbtProject
from revloop.settings import ErpSettings, PaymentsSettings, SalesforceSettings, Settings
from revloop.webhooks import ensure_schema as ensure_webhook_schema
from sandboxes import control

logger = logging.getLogger("bench.throughput")

COLLECTION = 200
"""Records per sObject Collections call (Salesforce's maximum)."""
STAGES = ("load", "transform", "plan", "enqueue", "deliver")
FINAL_STATES = ("delivered", "parked", "dead")
CHAIN = {"erp": ("won_deal_invoice", "post"), "salesforce": ("salesforce_invoice", "upsert"),
         "payments": ("invoice_payment_request", "create")}


@contextlib.contextmanager
def world(root: Path, admin_url: str) -> Iterator[dict[str, Any]]:
    """Sandboxes (demo), a fresh warehouse loaded and built, the webhook receiver; torn down afterwards."""
    webhook_port = control.free_port()
    os.environ["REVLOOP_SANDBOX_WEBHOOK_URL"] = f"http://127.0.0.1:{webhook_port}/webhooks/payments"
    ports = {s: control.free_port() for s in SYSTEMS}
    configs = control.configs(root, systems=SYSTEMS, ports=ports, seed=42, scale="demo")
    processes = [control.start(c, detach=False) for c in configs]
    name = f"revloop_throughput_{os.getpid()}_{secrets.token_hex(3)}"
    url = warehouse.create_database(admin_url, name)
    receiver: subprocess.Popen[bytes] | None = None
    try:
        control.wait_healthy(processes, 300)
        env = control.client_env(configs)

        def fields(system: str) -> dict[str, Any]:
            prefix = f"REVLOOP_{system.upper()}_"
            return {k.removeprefix(prefix).lower(): v for k, v in env[system].items()}

        settings = Settings(home=root / "home", salesforce=SalesforceSettings(**fields("salesforce")),
                            erp=ErpSettings(**fields("erp")), payments=PaymentsSettings(**fields("payments")))
        ensure_webhook_schema(url)
        receiver = subprocess.Popen(
            [str(Path(sys.executable).with_name("revloop")), "webhooks", "serve", "--port", str(webhook_port)],
            env={**os.environ, **env["payments"], "REVLOOP_DATABASE_URL": url, "REVLOOP_HOME": str(root / "home")},
            stdout=subprocess.DEVNULL, stderr=(root / "receiver.log").open("wb"),
        )
        for system in SYSTEMS:
            run_load(system, source_factory(system), settings, url, pipelines_dir=root / "home" / "dlt" / system)
        DbtProject(url).build()
        yield {"settings": settings, "url": url, "configs": {c.system: c for c in configs}}
    finally:
        if receiver is not None:
            receiver.terminate()
            receiver.wait(10)
        control.stop(processes)
        warehouse.drop_database(admin_url, name)


def collections(sf: Salesforce, method: str, records: list[dict[str, Any]]) -> list[str]:
    """Create or update ``records`` through sObject Collections, 200 per call, all or none; their Ids."""
    ids: list[str] = []
    for start in range(0, len(records), COLLECTION):
        chunk = records[start:start + COLLECTION]
        def call(chunk: list[dict[str, Any]] = chunk) -> Any:
            return sf.restful("composite/sobjects", method=method, json={"allOrNone": True, "records": chunk})

        answer = retrying(call)
        failed = [item for item in answer if not item.get("success")]
        if failed:
            raise RuntimeError(f"sObject Collections refused records: {failed[:3]}")
        ids += [str(item["id"]) for item in answer]
    return ids


def open_deals(sf: Salesforce, count: int, label: str) -> list[str]:
    """``count`` open Opportunities closing today, one product line each, spread over the book's Accounts."""
    accounts = sf.query_all("SELECT Id, CurrencyIsoCode FROM Account ORDER BY Id")["records"]
    products = sf.query_all("SELECT Id FROM Product2 WHERE ERP_Product_Id__c != null AND IsActive = true "
                            "ORDER BY Id")["records"]
    today = dt.date.today().isoformat()
    deals = [{"attributes": {"type": "Opportunity"}, "Name": f"{label} {n}",
              "AccountId": accounts[n % len(accounts)]["Id"], "StageName": "Negotiation/Review",
              "CurrencyIsoCode": accounts[n % len(accounts)]["CurrencyIsoCode"], "CloseDate": today}
             for n in range(count)]
    ids = collections(sf, "POST", deals)
    lines = [{"attributes": {"type": "OpportunityLineItem"}, "OpportunityId": opp,
              "Product2Id": products[n % len(products)]["Id"], "Quantity": 1 + n % 5, "UnitPrice": 100 + n % 900}
             for n, opp in enumerate(ids)]
    collections(sf, "POST", lines)
    return ids


def outbox_progress(url: str, deals: list[str]) -> dict[str, Counter[str]]:
    """Per target, the states of the chain's writes for ``deals`` (the ERP post, Invoice__c, payments invoice)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """with ours as (
                   select target_id from sync.outbox
                   where flow = 'won_deal_invoice' and operation = 'post' and source_ref = any(%(deals)s)
                     and state = 'delivered')
               select target_system, state, count(*) from sync.outbox
               where (flow = 'won_deal_invoice' and operation = 'post' and source_ref = any(%(deals)s))
                  or (flow in ('salesforce_invoice', 'invoice_payment_request') and target_object <> 'customer'
                      and source_ref in (select target_id from ours))
               group by 1, 2""",
            {"deals": deals},
        ).fetchall()
    result: dict[str, Counter[str]] = {system: Counter() for system in CHAIN}
    for system, state, count in rows:
        result[system][state] += int(count)
    return result


def settled(progress: dict[str, Counter[str]], count: int) -> bool:
    """Whether nothing of the chain is left to try: each write made or given up on (parked or dead, with an
    alert for a person), the Salesforce and payments writes of every ERP invoice that was made recorded."""
    def final(system: str) -> int:
        return sum(progress[system][state] for state in FINAL_STATES)

    made = progress["erp"]["delivered"]
    return final("erp") == count and final("salesforce") == made and final("payments") == made


def verify(settings: Settings, sf: Salesforce, deals: list[str]) -> dict[str, Any]:
    """What the targets hold for ``deals``, read through the real clients; ``ok`` when each has exactly one."""
    wanted = set(deals)
    keys = {f"won-deal:{d}:v1" for d in deals}
    erp = erp_connector.connect(settings.erp, reader=True)
    moves = retrying(lambda: erp.get_model("account.move").search_read(
        [["invoice_origin", "in", deals], ["move_type", "=", "out_invoice"], ["state", "!=", "cancel"]],
        ["ref", "state", "invoice_origin"]))
    erp_refs = Counter(m["ref"] for m in moves if m["state"] == "posted" and m["ref"] in keys)
    records = retrying(lambda: sf.query_all(
        "SELECT Revloop_Key__c, Opportunity__c FROM Invoice__c WHERE Revloop_Key__c LIKE 'won-deal:%'")["records"])
    sf_keys = Counter(r["Revloop_Key__c"] for r in records if r["Revloop_Key__c"] in keys)
    pay = payments_connector.connect(settings.payments, max_network_retries=3)
    requests: Counter[str] = Counter()
    for invoice in pay.v1.invoices.list(params={"limit": 100}).auto_paging_iter():
        body = invoice.to_dict()
        opportunity = (body.get("metadata") or {}).get("salesforce_opportunity_id")
        if opportunity in wanted and body.get("status") != "void":
            requests[opportunity] += 1
    customers: Counter[str] = Counter()
    for customer in pay.v1.customers.list(params={"limit": 100}).auto_paging_iter():
        account = (customer.to_dict().get("metadata") or {}).get("salesforce_account_id")
        if account:
            customers[account] += 1
    result = {
        "erp_invoices_posted": len(erp_refs), "erp_duplicates": sum(n - 1 for n in erp_refs.values()),
        "sf_invoices": len(sf_keys), "sf_duplicates": sum(n - 1 for n in sf_keys.values()),
        "payment_requests": len(requests), "payment_duplicates": sum(n - 1 for n in requests.values()),
        "payments_customers_duplicated": sum(1 for n in customers.values() if n > 1),
    }
    result["ok"] = (result["erp_invoices_posted"] == result["sf_invoices"] == result["payment_requests"] == len(deals)
                    and not (result["erp_duplicates"] or result["sf_duplicates"] or result["payment_duplicates"]
                             or result["payments_customers_duplicated"]))
    return result


def api_counters(configs: dict[str, Any], *, reset: bool = False) -> dict[str, dict[str, int]]:
    """Requests and writes each sandbox served (``reset`` zeroes them first)."""
    result = {}
    for system, config in configs.items():
        with control.http_client(config) as client:
            if reset:
                client.post("/__sandbox__/counters/reset")
            body = client.get("/__sandbox__/counters").json()
        result[system] = {"api_requests": int(body["requests_total"]), "api_writes": int(body["writes_total"])}
    return result


def delivery_spans(url: str, deals: list[str]) -> dict[str, dict[str, Any]]:
    """Per target, the chain's delivered writes (customers included) and the span from first to last."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """with ours as (
                   select target_id from sync.outbox
                   where flow = 'won_deal_invoice' and operation = 'post' and source_ref = any(%(deals)s))
               select target_system, count(*), extract(epoch from max(delivered_at) - min(delivered_at))
               from sync.outbox
               where state = 'delivered' and (
                     (flow = 'won_deal_invoice' and source_ref = any(%(deals)s))
                  or (flow in ('salesforce_invoice', 'invoice_payment_request')
                      and (source_ref in (select target_id from ours) or target_object = 'customer')))
               group by 1""",
            {"deals": deals},
        ).fetchall()
    return {system: {"writes": int(n), "span_seconds": float(span or 0)} for system, n, span in rows}


def run(count: int, profile: str, deadline: float) -> dict[str, Any]:
    admin_url = os.environ.get("REVLOOP_TEST_DATABASE_URL") or warehouse.embedded_url(
        Path(__file__).resolve().parents[1] / ".revloop" / "test-home")
    results: dict[str, Any] = {"deals": count, "profile": profile}
    with tempfile.TemporaryDirectory(prefix="revloop-throughput-") as tmp, world(Path(tmp), admin_url) as w:
        settings, url, configs = w["settings"], w["url"], w["configs"]
        cycle = SyncCycle(settings, url)
        try:
            cycle.run()  # the book's own business (renewals due) is settled before the clock runs
            sf = admin_salesforce(configs["salesforce"])
            clock = time.perf_counter()
            deals = open_deals(sf, count, f"Throughput {profile}")
            results["prepare_seconds"] = round(time.perf_counter() - clock, 2)
            cycle.run()  # the open deals are loaded: the measured cycles see only the wins
            set_faults(configs, profile)
            api_counters(configs, reset=True)
            clock = time.perf_counter()
            collections(sf, "PATCH", [{"attributes": {"type": "Opportunity"}, "id": d, "StageName": "Closed Won"}
                                      for d in deals])
            started = time.perf_counter()
            results["win_seconds"] = round(started - clock, 2)
            seconds: Counter[str] = Counter()
            cycles = []
            progress: dict[str, Counter[str]] = {}
            while time.perf_counter() - started < deadline:
                report = cycle.run()
                seconds.update({k: v for k, v in report.seconds.items() if k in STAGES})
                progress = outbox_progress(url, deals)
                cycles.append({"seconds": report.seconds, "enqueued": dict(report.enqueued),
                               "delivered": dict(report.delivered),
                               "progress": {s: dict(c) for s, c in progress.items()}})
                logger.info("cycle %d after %.1fs: %s", len(cycles), time.perf_counter() - started, cycles[-1])
                if all(progress[s]["delivered"] == count for s in CHAIN) or settled(progress, count):
                    break
            elapsed = time.perf_counter() - started
            calls = api_counters(configs)
            set_faults(configs, "none")
            clock = time.perf_counter()
            results["verified"] = verify(settings, sf, deals)
            results["verify_seconds"] = round(time.perf_counter() - clock, 2)
            spans = delivery_spans(url, deals)
            with psycopg.connect(url) as conn:
                states: dict[str, int] = {str(state): int(n) for state, n in conn.execute(
                    "select state, count(*) from sync.outbox group by 1")}
            results.update({
                "total_seconds": round(elapsed, 2), "cycles": len(cycles),
                "stage_seconds": {k: round(seconds[k], 2) for k in STAGES},
                "targets": {s: {**spans.get(s, {"writes": 0, "span_seconds": 0.0}), **calls[s]} for s in CHAIN},
                "outbox_states": states, "chain_progress": {s: dict(c) for s, c in progress.items()},
                "cycle_log": cycles,
            })
        finally:
            with contextlib.suppress(Exception):
                set_faults(w["configs"], "none")
            cycle.close()
    return results


def print_tables(results: dict[str, Any]) -> None:
    total = results["total_seconds"]
    console.print(table(
        f"{results['deals']:,} deals won at once ({results['profile']}): {total:.1f} s, "
        f"{results['cycles']} cycles, verified {results['verified']['ok']}",
        ["system", "writes", "writes/s", "first->last s", "writes/s (span)", "API requests", "API writes"],
        [[s, t["writes"], t["writes"] / total if total else 0.0, t["span_seconds"],
          t["writes"] / t["span_seconds"] if t["span_seconds"] else 0.0, t["api_requests"], t["api_writes"]]
         for s, t in results["targets"].items()],
    ))
    console.print(table("Seconds by step (summed over cycles)", ["what", *STAGES, "total"],
                        [["seconds", *(results["stage_seconds"][k] for k in STAGES), total]]))
    console.print(table("Outbox states", ["what", *sorted(results["outbox_states"])],
                        [["rows", *(results["outbox_states"][k] for k in sorted(results["outbox_states"]))]]))
    console.print(results["verified"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--profile", choices=["none", "flaky"], default="none", help="faults while measured")
    parser.add_argument("--deadline", type=float, default=1800.0, help="give up after this many seconds")
    parser.add_argument("--log-cycles", action="store_true", help="log each cycle's steps and progress")
    args = parser.parse_args()
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.log_cycles:
        logger.setLevel(logging.INFO)
    results = run(args.deals, args.profile, args.deadline)
    path = save("throughput", results)
    print_tables(results)
    console.print(f"saved {path}")


if __name__ == "__main__":
    main()
