"""The full set of data-quality checkpoints on a loaded, built book: how long, and where the time goes.

Run: ``python -m bench.quality [--scale large|demo] [--rounds 1]``. The goal: every checkpoint (raw,
canonical and reconciliation suites, with Data Docs) under 60 s on the large book (>= 1,000,000 source
records), the reconciliation pushed down to SQL in PostgreSQL. Each round: a throwaway database, a backfill
of the three sandboxes, a full ``dbt build``, then ``revloop.quality.run_quality`` over every suite, twice:
the first pays Great Expectations' import in the process (reported apart), the second is the steady cost.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import console, median, save, table
from bench.ingest import backfill, sandbox_settings, sandboxes
from revloop import warehouse
from revloop.alerts import TableAlerter
from revloop.dbt import DbtProject


def one_round(admin_url: str, configs: list[Any], home: Path, number: int) -> dict[str, Any]:
    from revloop.quality import run_quality

    name = f"revloop_bench_quality_{secrets.token_hex(3)}"
    url = warehouse.create_database(admin_url, name)
    try:
        settings = sandbox_settings(configs, home / f"round-{number}")
        loaded = backfill(url, settings)
        build = DbtProject(url).build()
        if not build.success:
            raise RuntimeError(f"dbt build failed: {[n.explanation() for n in build.failures][:3]}")
        started = time.perf_counter()
        import great_expectations  # noqa: F401  (the import alone, measured apart)

        import_seconds = time.perf_counter() - started
        alerter = TableAlerter(url)
        first = run_quality(url, settings.home, alerter=alerter)
        second = run_quality(url, settings.home, alerter=alerter)
        by_suite: dict[str, float] = {}
        for result in second.results:
            by_suite[result.suite] = by_suite.get(result.suite, 0.0) + result.duration_seconds
        slowest = sorted(second.results, key=lambda r: -r.duration_seconds)[:10]
        return {
            "source_records": loaded["records"], "checks": len(second.results),
            "failed": sorted(r.check_name for r in second.failures),
            "gx_import_seconds": import_seconds, "first_run_seconds": first.seconds,
            "run_seconds": second.seconds, "seconds_by_suite": by_suite,
            "slowest": [[r.check_name, r.suite, round(r.duration_seconds, 3), r.unexpected_count] for r in slowest],
        }
    finally:
        warehouse.drop_database(admin_url, name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["demo", "large"], default="large")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    admin_url = os.environ.get("REVLOOP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with (
        tempfile.TemporaryDirectory(prefix="revloop-bench-quality-") as tmp,
        sandboxes(args.scale, Path(tmp) / "sandboxes") as configs,
    ):
        runs = [one_round(admin_url, configs, Path(tmp), n) for n in range(args.rounds)]
    keys = ["source_records", "checks", "gx_import_seconds", "first_run_seconds", "run_seconds"]
    medians = {key: median([r[key] for r in runs]) for key in keys}
    console.print(table(f"Quality checkpoints, {args.scale} book (medians of {args.rounds})", ["what", "value"],
                        [[key, medians[key]] for key in keys]))
    for number, run in enumerate(runs):
        console.print(table(f"round {number}: seconds by suite", ["suite", "seconds"],
                            [[suite, round(s, 3)] for suite, s in sorted(run["seconds_by_suite"].items())]))
        console.print(table(f"round {number}: slowest checks", ["check", "suite", "seconds", "offending"],
                            run["slowest"]))
        console.print(f"round {number}: failed checks {run['failed'] or 'none'}")
    console.print(f"saved {save('quality', {'scale': args.scale, 'runs': runs, 'medians': medians})}")


if __name__ == "__main__":
    main()
