"""How fast records page out of each sandbox, with and without TLS: the ceiling for later benchmarks.

Run: ``python -m bench.sandbox_throughput [--scale large|demo] [--rounds 3]``. Each system is served from
one seeded data folder twice, once over plain HTTP and once over TLS, alternating round by round so both
see the same machine noise; the table gives medians and the TLS/plain ratio.

What is paged, each with the vendor's own paging:
- Salesforce: REST ``query`` following ``nextRecordsUrl`` (2,000 per batch), and Bulk API 2.0 results
  (CSV pages of up to 50,000 by ``Sforce-Locator``);
- ERP: JSON-2 ``search_read`` by ascending id, 2,000 per call (keyset paging, as a loader would);
- payments: ``/v1/charges`` and ``/v1/events``, 100 per page (Stripe's cap) by ``starting_after``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.common import console, median, save, table
from sandboxes import control
from sandboxes.common.config import SandboxConfig

PageFn = Callable[[httpx.Client, dict[str, str]], tuple[int, int]]
"""Pages one dataset out; returns (records, bytes)."""


def _client(config: SandboxConfig) -> httpx.Client:
    return control.http_client(config, timeout=600)


# ---- Salesforce --------------------------------------------------------------------------------------

def _sf_token(client: httpx.Client, env: dict[str, str]) -> str:
    response = client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": env["REVLOOP_SALESFORCE_READER_CLIENT_ID"],
            "client_secret": env["REVLOOP_SALESFORCE_READER_CLIENT_SECRET"],
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


SF_SOQL = (
    "SELECT Id, OpportunityId, Product2Id, Quantity, UnitPrice, TotalPrice, CurrencyIsoCode, SystemModstamp "
    "FROM OpportunityLineItem"
)


def sf_rest_query(client: httpx.Client, env: dict[str, str]) -> tuple[int, int]:
    headers = {"Authorization": f"Bearer {_sf_token(client, env)}", "Sforce-Query-Options": "batchSize=2000"}
    response = client.get("/services/data/v62.0/query", params={"q": SF_SOQL}, headers=headers)
    records = size = 0
    while True:
        response.raise_for_status()
        body = response.json()
        records += len(body["records"])
        size += len(response.content)
        if body["done"]:
            return records, size
        response = client.get(body["nextRecordsUrl"], headers=headers)


def sf_bulk2_query(client: httpx.Client, env: dict[str, str]) -> tuple[int, int]:
    headers = {"Authorization": f"Bearer {_sf_token(client, env)}"}
    job = client.post("/services/data/v62.0/jobs/query", json={"operation": "query", "query": SF_SOQL},
                      headers=headers)
    job.raise_for_status()
    job_id = job.json()["id"]
    deadline = time.monotonic() + 600
    while True:
        state = client.get(f"/services/data/v62.0/jobs/query/{job_id}", headers=headers).json()["state"]
        if state == "JobComplete":
            break
        if state in ("Failed", "Aborted") or time.monotonic() > deadline:
            raise RuntimeError(f"bulk job {job_id} ended {state}")
        time.sleep(0.05)
    records = size = 0
    locator: str | None = None
    while True:
        params = {"maxRecords": "50000", **({"locator": locator} if locator else {})}
        page = client.get(f"/services/data/v62.0/jobs/query/{job_id}/results", params=params, headers=headers)
        page.raise_for_status()
        records += int(page.headers["Sforce-NumberOfRecords"])
        size += len(page.content)
        locator = page.headers.get("Sforce-Locator")
        if not locator or locator == "null":
            return records, size


# ---- ERP ------------------------------------------------------------------------------------------------

def erp_search_read(client: httpx.Client, env: dict[str, str]) -> tuple[int, int]:
    headers = {
        "Authorization": f"Bearer {env['REVLOOP_ERP_READER_API_KEY']}",
        "X-Odoo-Database": env["REVLOOP_ERP_DATABASE"],
    }
    fields = ["move_id", "product_id", "name", "quantity", "price_unit", "price_subtotal", "currency_id",
              "write_date"]
    last_id = records = size = 0
    while True:
        response = client.post(
            "/json/2/account.move.line/search_read",
            json={"domain": [["id", ">", last_id]], "fields": fields, "limit": 2000, "order": "id asc"},
            headers=headers,
        )
        response.raise_for_status()
        rows = response.json()
        size += len(response.content)
        if not rows:
            return records, size
        records += len(rows)
        last_id = rows[-1]["id"]


# ---- payments -------------------------------------------------------------------------------------------

def _stripe_pager(path: str) -> PageFn:
    def page_all(client: httpx.Client, env: dict[str, str]) -> tuple[int, int]:
        auth = (env["REVLOOP_PAYMENTS_READER_KEY"], "")
        params: dict[str, str] = {"limit": "100"}
        records = size = 0
        while True:
            response = client.get(path, params=params, auth=auth)
            response.raise_for_status()
            body = response.json()
            size += len(response.content)
            records += len(body["data"])
            if not body["has_more"]:
                return records, size
            params["starting_after"] = body["data"][-1]["id"]

    return page_all


DATASETS: dict[str, list[tuple[str, PageFn]]] = {
    "salesforce": [("REST query OpportunityLineItem", sf_rest_query), ("Bulk 2.0 OpportunityLineItem", sf_bulk2_query)],
    "erp": [("JSON-2 search_read account.move.line", erp_search_read)],
    "payments": [("/v1/charges", _stripe_pager("/v1/charges")), ("/v1/events", _stripe_pager("/v1/events"))],
}


def _serve(data_dir: Path, system: str, tls: bool, scale: str, seed: int) -> control.SandboxProcess:
    (config,) = control.configs(data_dir, systems=[system], ports={system: control.free_port()}, scale=scale, seed=seed,
                                tls={system: tls})
    proc = control.start(config, detach=False)
    control.wait_healthy([proc], timeout=1800)
    return proc


def run(scale: str, rounds: int, seed: int, systems: list[str]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="revloop-bench-") as tmp:
        data_dir = Path(tmp)
        for system in systems:
            started = time.perf_counter()
            proc = _serve(data_dir, system, tls=False, scale=scale, seed=seed)  # first start seeds the store
            console.print(f"{system}: seeded {scale} in {time.perf_counter() - started:.1f}s")
            control.stop([proc])
            samples: dict[tuple[str, bool], list[tuple[float, int, int]]] = {}
            for _ in range(rounds):
                for tls in (False, True):
                    proc = _serve(data_dir, system, tls=tls, scale=scale, seed=seed)
                    try:
                        env = control.client_env([proc.config])[system]
                        with _client(proc.config) as client:
                            for name, page_all in DATASETS[system]:
                                began = time.perf_counter()
                                records, size = page_all(client, env)
                                samples.setdefault((name, tls), []).append(
                                    (time.perf_counter() - began, records, size)
                                )
                    finally:
                        control.stop([proc])
            for name, _ in DATASETS[system]:
                plain = samples[(name, False)]
                secure = samples[(name, True)]
                plain_s = median([s[0] for s in plain])
                tls_s = median([s[0] for s in secure])
                records = plain[0][1]
                results.append(
                    {
                        "system": system, "endpoint": name, "records": records,
                        "mb": round(plain[0][2] / 2**20, 1),
                        "plain_seconds": round(plain_s, 3), "tls_seconds": round(tls_s, 3),
                        "plain_records_per_s": round(records / plain_s), "tls_records_per_s": round(records / tls_s),
                        "tls_over_plain_time": round(tls_s / plain_s, 2), "rounds": rounds,
                    }
                )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["demo", "large"], default="large")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--systems", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    args = parser.parse_args(argv)
    results = run(args.scale, args.rounds, args.seed, args.systems)
    console.print(
        table(
            f"Sandbox paging throughput ({args.scale} book, medians of {args.rounds} rounds)",
            ["system", "endpoint", "records", "MB", "plain s", "TLS s", "plain rec/s", "TLS rec/s", "TLS/plain"],
            [
                [r["system"], r["endpoint"], r["records"], r["mb"], r["plain_seconds"], r["tls_seconds"],
                 r["plain_records_per_s"], r["tls_records_per_s"], r["tls_over_plain_time"]]
                for r in results
            ],
        )
    )
    console.print(f"saved {save('sandbox-throughput', {'scale': args.scale, 'results': results})}")


if __name__ == "__main__":
    main()
