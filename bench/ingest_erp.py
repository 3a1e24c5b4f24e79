"""ERP ingestion: a full backfill of the sandbox's book, then an incremental cycle after 100 changes.

Run: ``python -m bench.ingest_erp [--scale demo|large]``. Starts an ERP sandbox on a free port in a
temporary directory, loads into a throwaway database of the warehouse (``REVLOOP_DATABASE_URL`` or the
embedded PostgreSQL), and prints records, seconds, records/s, this process's peak RSS and where the time
went (HTTP calls, page conversion with PII protection, the rest: dlt's extract, normalize and load).
Goals (issue): >= 25,000 records/s end to end, < 1 GiB; incremental after 100 changes under 5 s and
within 1.5x of the same cycle on the demo book.
"""

from __future__ import annotations

import argparse
import logging
import resource
import time
from typing import Any

from bench.common import console, save, table
from bench.ingest import one_system_cycle
from pipelines.common.runner import LoadSummary
from pipelines.erp import settings as erp
from revloop.connectors.erp import connect
from revloop.settings import ErpSettings

CHANGES = 100


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _row(what: str, summary: LoadSummary, records: int | None = None) -> dict[str, Any]:
    count = summary.rows_loaded if records is None else records
    timings = summary.notes.get("seconds", {})
    http, convert = timings.get("http", 0.0), timings.get("convert_and_protect", 0.0)
    return {
        "what": what, "records": count, "seconds": round(summary.seconds, 2),
        "records_per_second": round(count / summary.seconds) if summary.seconds else 0,
        "http_share": round(http / summary.seconds, 2), "convert_share": round(convert / summary.seconds, 2),
        "dlt_and_rest_share": round(max(0.0, summary.seconds - http - convert) / summary.seconds, 2),
        "peak_rss_mib": round(_peak_rss_mib()),
    }


def _change_invoices(settings: ErpSettings, count: int) -> None:
    """``count`` customer invoices written in one call, as a user editing references would."""
    moves = connect(settings).get_model("account.move")
    ids = moves.search(domain=[["move_type", "in", erp.INVOICE_TYPES]], order="id asc", limit=count)
    moves.write(ids=ids, vals={"ref": f"bench change {time.time():.0f}"})


def run(scale: str, seed: int) -> dict[str, Any]:
    full, incremental, idle = one_system_cycle(
        "erp", scale, seed, lambda settings: _change_invoices(settings.erp, CHANGES)
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
    headers = ["what", "records", "s", "rec/s", "http", "convert", "dlt+rest", "RSS MiB"]
    console.print(table(f"ERP ingestion, {args.scale} book (time shares)", headers,
                        [list(r.values()) for r in result["rows"]]))
    console.print(f"saved {save(f'ingest-erp-{args.scale}', result)}")


if __name__ == "__main__":
    main()
