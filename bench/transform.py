"""The canonical layer's cost: a full ``dbt build`` on a loaded book, and a refresh after 100 changes.

Run: ``python -m bench.transform [--scale large|demo] [--rounds 3]``. The goal: the incremental refresh
(``DbtProject.refresh`` with the loads' ``rows_by_table``: the models downstream of the tables that got rows,
then the tests of the models that wrote rows) at least 20x cheaper than the full build on the large book
(>= 1,000,000 source records); the full build is the first one after the backfill (it also creates the raw
lookup indexes), and a ``--full-refresh`` build of the same warehouse is measured beside it. Also measured:
the same refresh again with nothing new loaded (what a refresh costs when its models have nothing to do),
the fixed overhead of one dbt invocation (nothing selected) in a warm process, the first invocation of a
process, and the CLI's cold start, which is why the sync loop keeps one warm runner. Each round's load
average is recorded: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import console, median, save, table
from bench.ingest import backfill, incremental, make_changes, sandbox_settings, sandboxes
from revloop import warehouse
from revloop.dbt import PROJECT_DIR, DbtProject, TransformSummary, affected_selection, connection_env


def model_seconds(summary: TransformSummary) -> dict[str, dict[str, Any]]:
    """Seconds and rows per model, seed and test of one build: where its time went."""
    return {n.name: {"type": n.resource_type, "seconds": round(n.seconds, 3), "rows": n.rows}
            for n in sorted(summary.nodes, key=lambda n: -n.seconds)}


def cold_cli_seconds(database_url: str) -> float:
    """A ``dbt`` CLI run with nothing selected, in a new process (what a run per change would pay)."""
    env = {**os.environ, **connection_env(database_url)}
    started = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "ls", "--select", "nothing_matches_this",
         "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR), "--quiet"],
        env=env, capture_output=True, check=False,
    )
    return time.perf_counter() - started


def one_round(admin_url: str, configs: list[Any], home: Path, number: int) -> dict[str, Any]:
    name = f"revloop_bench_transform_{secrets.token_hex(3)}"
    url = warehouse.create_database(admin_url, name)
    try:
        settings = sandbox_settings(configs, home / f"round-{number}")
        loaded = backfill(url, settings)
        project = DbtProject(url)
        first = time.perf_counter()
        project.invoke(["ls", "--select", "nothing_matches_this"])
        first_invoke = time.perf_counter() - first
        warm = time.perf_counter()
        project.invoke(["ls", "--select", "nothing_matches_this"])
        warm_invoke = time.perf_counter() - warm
        full = project.build()
        if not full.success:
            raise RuntimeError(f"full build failed: {[n.explanation() for n in full.failures][:3]}")
        make_changes(configs, settings, number)
        loaded_again = incremental(url, settings)
        # Only what is downstream of the raw tables that received rows in this load.
        selection = affected_selection({system: figures["rows_by_table"]
                                        for system, figures in loaded_again["systems"].items()})
        rows_by_table = {system: figures["rows_by_table"] for system, figures in loaded_again["systems"].items()}
        refresh = project.refresh(rows_by_table)
        if not refresh.success:
            raise RuntimeError(f"refresh failed: {[n.explanation() for n in refresh.failures][:3]}")
        again = project.refresh(rows_by_table)
        # A full rebuild of a warehouse built before: the first build also created the raw lookup indexes.
        rebuilt = project.build(full_refresh=True)
        if not rebuilt.success:
            raise RuntimeError(f"full rebuild failed: {[n.explanation() for n in rebuilt.failures][:3]}")
        rows_full = sum(n.rows or 0 for n in full.models)
        rows_refresh = sum(n.rows or 0 for n in refresh.models)
        return {
            "source_records": loaded["records"], "full_seconds": full.seconds, "refresh_seconds": refresh.seconds,
            "ratio": full.seconds / refresh.seconds, "refresh_again_seconds": again.seconds,
            "full_refresh_seconds": rebuilt.seconds, "full_refresh_ratio": rebuilt.seconds / refresh.seconds,
            "rows_full": rows_full, "rows_refresh": rows_refresh, "tests_full": len(full.tests),
            "tests_refresh": len(refresh.tests), "first_invoke_seconds": first_invoke,
            "warm_invoke_seconds": warm_invoke, "cold_cli_seconds": cold_cli_seconds(url),
            "load_average": os.getloadavg(), "selection": selection, "rows_by_table": rows_by_table,
            "full_nodes": model_seconds(full), "refresh_nodes": model_seconds(refresh),
        }
    finally:
        warehouse.drop_database(admin_url, name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["demo", "large"], default="large")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    admin_url = os.environ.get("REVLOOP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with (
        tempfile.TemporaryDirectory(prefix="revloop-bench-transform-") as tmp,
        sandboxes(args.scale, Path(tmp) / "sandboxes") as configs,
    ):
        runs = [one_round(admin_url, configs, Path(tmp), n) for n in range(args.rounds)]
    keys = ["source_records", "full_seconds", "refresh_seconds", "ratio", "refresh_again_seconds",
            "full_refresh_seconds", "full_refresh_ratio", "rows_full",
            "rows_refresh", "tests_full", "tests_refresh", "first_invoke_seconds", "warm_invoke_seconds",
            "cold_cli_seconds"]
    medians = {key: median([r[key] for r in runs]) for key in keys}
    console.print(table(
        f"dbt build, {args.scale} book (medians of {args.rounds})", ["what", "value"],
        [[key, medians[key]] for key in keys],
    ))
    for number, run in enumerate(runs):
        for what in ("full_nodes", "refresh_nodes"):
            console.print(table(
                f"round {number}: {what} (slowest 15)", ["node", "type", "seconds", "rows"],
                [[name, n["type"], n["seconds"], n["rows"]] for name, n in list(run[what].items())[:15]],
            ))
        console.print(f"round {number}: loaded {run['rows_by_table']}, load average {run['load_average']}")
        console.print(f"round {number}: refresh selection {run['selection']}")
    console.print(f"saved {save('transform', {'scale': args.scale, 'runs': runs, 'medians': medians})}")


if __name__ == "__main__":
    main()
