"""Salesforce ingestion benchmark: backfill of a sandbox org, then an incremental cycle after 100 changes.

``python -m bench.ingest_salesforce [--scale demo|large]`` starts the Salesforce sandbox on a free port in a
temporary directory, makes a throwaway warehouse database (``REVLOOP_BENCH_DATABASE_URL`` as the server's
admin URL, else the embedded PostgreSQL), and reports records, seconds, records/s, peak RSS and the share
of time spent waiting for Salesforce.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from simple_salesforce import Salesforce

from bench.common import console, save, table
from pipelines.common.runner import LoadSummary, run_load
from pipelines.salesforce import salesforce_source
from revloop import warehouse
from revloop.http import pinned_session
from revloop.settings import SalesforceSettings, Settings
from sandboxes import control
from sandboxes.registry import SYSTEMS

REPO_ROOT = Path(__file__).resolve().parents[1]
CHANGES = 100


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _admin_client(config: Any) -> Salesforce:
    with control.http_client(config, timeout=60) as client:
        app = client.get("/__sandbox__/salesforce/apps").json()["apps"]["revloop-admin"]
    session = pinned_session(config.base_url, config.tls_dir / "ca.pem")
    token = session.post(
        f"{config.base_url}/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": app["client_id"], "client_secret": app["client_secret"]},
        timeout=60,
    ).json()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session,
                      version="62.0")


def _change_records(config: Any) -> None:
    """100 changed opportunities, one sObject Collections call, as an integration user would make them."""
    sf = _admin_client(config)
    ids = [r["Id"] for r in sf.query(f"SELECT Id FROM Opportunity ORDER BY Id LIMIT {CHANGES}")["records"]]
    records = [{"attributes": {"type": "Opportunity"}, "id": i, "Amount": 1000 + n} for n, i in enumerate(ids)]
    sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": records})
    sf.session.close()


def _row(what: str, summary: LoadSummary, seconds: float) -> list[Any]:
    records = summary.rows_loaded
    http = float(summary.notes.get("http_seconds", 0.0))
    return [what, records, round(seconds, 2), round(records / seconds) if seconds else 0,
            round(_peak_rss_mib()), f"{100 * http / seconds:.0f}%" if seconds else "-",
            ",".join(sorted(set(summary.notes.get("api", {}).values())))]


def run(scale: str) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    admin_url = os.environ.get("REVLOOP_BENCH_DATABASE_URL") or warehouse.embedded_url(
        REPO_ROOT / ".revloop" / "test-home"
    )
    database = f"revloop_bench_{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="ingest-sf-") as tmp:
        (config,) = control.configs(Path(tmp) / "sandboxes", systems=["salesforce"],
                                    ports={"salesforce": control.free_port()}, scale=scale)
        started = time.perf_counter()
        proc = control.start(config, detach=False)
        url = warehouse.create_database(admin_url, database)
        try:
            control.wait_healthy([proc], 900)
            seeding = time.perf_counter() - started
            env = SYSTEMS["salesforce"].load().client_env(config)
            settings = Settings(
                home=Path(tmp) / "home",
                salesforce=SalesforceSettings(
                    **{k.removeprefix("REVLOOP_SALESFORCE_").lower(): v for k, v in env.items()}
                ),
            )

            def load() -> tuple[LoadSummary, float]:
                began = time.perf_counter()
                summary = run_load("salesforce", salesforce_source, settings, url)
                return summary, time.perf_counter() - began

            backfill, backfill_seconds = load()
            _change_records(config)
            incremental, incremental_seconds = load()
        finally:
            control.stop([proc])
            warehouse.drop_database(admin_url, database)
    rows = [_row("backfill", backfill, backfill_seconds), _row("incremental", incremental, incremental_seconds)]
    console.print(table(
        f"Salesforce ingestion, {scale} (sandbox seeded in {seeding:.0f}s)",
        ["what", "records", "seconds", "records/s", "peak RSS MiB", "HTTP share", "api"],
        rows,
    ))
    result = {
        "scale": scale,
        "backfill": {"records": backfill.rows_loaded, "seconds": backfill_seconds, "by_table": backfill.rows_by_table,
                     "notes": {k: v for k, v in backfill.notes.items() if k != "matching"}},
        "incremental": {"records": incremental.rows_loaded, "seconds": incremental_seconds,
                        "by_table": incremental.rows_by_table, "notes": incremental.notes},
        "peak_rss_mib": _peak_rss_mib(),
    }
    path = save(f"ingest-salesforce-{scale}", result)
    console.print(f"saved {path}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["demo", "large"], default="demo")
    run(parser.parse_args().scale)


if __name__ == "__main__":
    main()
