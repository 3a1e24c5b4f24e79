"""Payments ingestion: a full backfill of the sandbox's book, then an incremental cycle after 100 changes.

Run: ``python -m bench.ingest_payments [--scale demo|large]``. Starts a payments sandbox on a free port in
a temporary directory, loads into a throwaway database of the warehouse (``REVLOOP_DATABASE_URL`` or the
embedded PostgreSQL), and prints records, seconds, records/s, this process's peak RSS and where the time
went. ``http`` is time spent waiting on responses, summed over the reading threads (it overlaps the
rest, so shares can add up to more than 1); ``parse_json`` is orjson; ``protect`` is PII encryption and
hashing; dlt's extract, normalize and load take the remainder.
Goals (issue): >= 25,000 records/s end to end, < 1 GiB; incremental after 100 changes under 5 s and
within 1.5x of the same cycle on the demo book.
"""

from __future__ import annotations

import argparse
import logging
import resource
from typing import Any

import stripe

from bench.common import console, save, table
from bench.ingest import one_system_cycle
from pipelines.common.runner import LoadSummary
from revloop.settings import PaymentsSettings

CHANGES = 100


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _row(what: str, summary: LoadSummary) -> dict[str, Any]:
    count = summary.rows_loaded
    timings = summary.notes.get("seconds", {})
    share = {k: round(timings.get(k, 0.0) / summary.seconds, 2) if summary.seconds else 0.0
             for k in ("http", "parse_json", "protect")}
    return {
        "what": what, "records": count, "seconds": round(summary.seconds, 2),
        "records_per_second": round(count / summary.seconds) if summary.seconds else 0,
        "requests": timings.get("requests", 0), "http_share": share["http"], "parse_share": share["parse_json"],
        "protect_share": share["protect"], "peak_rss_mib": round(_peak_rss_mib()),
    }


def _change_customers(settings: PaymentsSettings, count: int) -> None:
    """``count`` customers updated through the SDK with the secret key, as a user editing them would."""
    assert settings.secret_key is not None
    client = stripe.StripeClient(settings.secret_key.get_secret_value(), base_addresses={"api": settings.api_base})
    customers = client.v1.customers.list(params={"limit": 100})
    for n, customer in enumerate(customers.auto_paging_iter()):
        if n >= count:
            break
        client.v1.customers.update(customer.id, params={"description": f"bench change {n}"})


def run(scale: str, seed: int) -> dict[str, Any]:
    full, incremental, idle = one_system_cycle(
        "payments", scale, seed, lambda settings: _change_customers(settings.payments, CHANGES)
    )
    return {
        "scale": scale,
        "rows": [_row("full backfill", full), _row(f"incremental after {CHANGES} changes", incremental),
                 _row("incremental, nothing changed", idle)],
        "rows_by_table": full.rows_by_table, "incremental_rows_by_table": incremental.rows_by_table,
        "notes": {"full": full.notes, "incremental": incremental.notes},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["demo", "large"], default="demo")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    result = run(args.scale, args.seed)
    columns = list(result["rows"][0])
    console.print(table(f"Payments ingestion, {args.scale} book", columns,
                        [[r[c] for c in columns] for r in result["rows"]]))
    console.print(f"saved {save(f'ingest-payments-{args.scale}', result)}")


if __name__ == "__main__":
    main()
