"""Revloop as a participant of the peers' run: its own backfill of a system, measured as a peer's sync is.

The load runs in a child process (:mod:`bench.peers.revloop_load`) so that wall time and peak memory are
taken the same way as for a peer: from the start of the process to its end, resident memory of its whole
process tree. Each run starts from nothing (its ``raw_<system>`` schema dropped, a fresh working
directory), so every round is a full backfill.

Revloop loads every object it knows for the system; the peers are given the same objects where they
offer them (see ``run.py``, ``--streams``), so on a system where a peer lacks some object Revloop still
does more work than that peer in the comparison.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.peers import catalog as catalogs
from bench.peers.execute import Workspace, tail
from bench.peers.measure import Deadline, PeakMemory, Stopwatch
from bench.peers.results import PeerResult
from pipelines.catalog import raw_tables
from pipelines.common.runner import dataset_for

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
NAME = "revloop"

SANDBOX_ALIASES = {"invoice_line": "invoiceitem"}
"""Revloop table -> the sandbox object it is counted against: an invoice line per invoice item."""

_WITHHELD_SETTINGS = ("REVLOOP_SALESFORCE_REFRESH_TOKEN",)
"""Revloop reads Salesforce with the read-only app's client credentials; it is not given the refresh token,
so it can never advance the rotating chain the peers share (see ``access.TokenChain``)."""


def tables(system: str) -> list[str]:
    """The tables Revloop's backfill of ``system`` writes (one per vendor object)."""
    return list(raw_tables(system))


def comparable_keys(system: str) -> set[str]:
    return {catalogs.comparable(table) for table in tables(system)}


def run_revloop(
    system: str, env: dict[str, str], workspace: Workspace, home: Path, budget_seconds: float | None
) -> PeerResult:
    """One full backfill of ``system`` into ``raw_<system>`` of the workspace's database.

    ``home`` is Revloop's home for every round of the run: the development keyring there must stay the
    same, since the OAuth tokens Revloop keeps in the database are encrypted with it.
    """
    result = PeerResult(peer=NAME, system=system, kind="revloop",
                        notes="pipelines.common.runner.run_load, the loader of 'revloop load'")
    dataset = dataset_for(system)
    try:
        _start_afresh(workspace, dataset, home)
        _load(system, env, workspace, home, budget_seconds, result)
    except Exception as exc:  # reported like a broken peer; the run goes on
        logger.exception("revloop's %s load failed", system)
        result.errors.append(f"{type(exc).__name__}: {exc}")
    loaded = _row_counts(workspace.database_url, dataset)
    for table in tables(system):
        stream = result.stream(table)
        stream.loaded = loaded.get(table, 0)
        stream.expected = catalogs.expected_count(table, workspace.sandbox_counts, SANDBOX_ALIASES)
        if not stream.emitted:
            stream.emitted = stream.loaded
    result.succeeded = not result.errors and not result.timed_out and result.exit_codes.get("load") == 0
    return result


def _start_afresh(workspace: Workspace, dataset: str, home: Path) -> None:
    """Drop what an earlier round left, so this run is a backfill: the dataset (which holds dlt's state)
    and dlt's working directory. Revloop's own state (tokens, quarantine) stays, as between real runs."""
    with psycopg.connect(workspace.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(dataset)))
    shutil.rmtree(workspace.directory, ignore_errors=True)
    shutil.rmtree(home / "dlt", ignore_errors=True)


def _load(
    system: str, env: dict[str, str], ws: Workspace, home: Path, budget_seconds: float | None, result: PeerResult
) -> None:
    spec_file, result_file, log_file = ws.file("spec.json"), ws.file("summary.json"), ws.file("load.log")
    spec = {
        "system": system,
        "env": {k: v for k, v in env.items() if k not in _WITHHELD_SETTINGS},
        "database_url": ws.database_url,
        "home": str(home),
    }
    spec_file.write_text(json.dumps(spec, indent=2))
    result.logs["load"] = str(log_file)
    # The child reads its settings from the spec alone, not from this process's REVLOOP_* environment.
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("REVLOOP_")}
    child_env["PYTHONUNBUFFERED"] = "1"
    command = [sys.executable, "-m", "bench.peers.revloop_load", str(spec_file), str(result_file)]
    with (
        open(log_file, "wb") as log,
        PeakMemory() as memory,
        Deadline(budget_seconds) as deadline,
        Stopwatch() as watch,
    ):
        process = subprocess.Popen(command, stdout=log, stderr=log, env=child_env, cwd=REPO_ROOT,
                                   start_new_session=True)
        memory.watch(process.pid)
        deadline.watch(process.pid)
        result.exit_codes["load"] = process.wait()
    result.sync_seconds = watch.seconds
    result.peak_rss_bytes = memory.peak_bytes
    result.timed_out = deadline.expired
    if deadline.expired:
        result.errors.append(f"stopped at the time budget of {budget_seconds:.0f} s")
    elif result.exit_codes["load"] != 0:
        result.errors.append(f"load failed: {tail(log_file)}")
    if result_file.exists():
        summary: dict[str, Any] = json.loads(result_file.read_text())
        for table, rows in summary.get("rows_by_table", {}).items():
            if table in raw_tables(system):
                result.stream(table).emitted = int(rows)
        result.facts.update(
            load_seconds_inside=summary.get("seconds"),
            quarantined=summary.get("quarantined_by_object", {}),
            api=summary.get("notes", {}).get("api"),
        )


def _row_counts(database_url: str, dataset: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    with psycopg.connect(database_url) as conn:
        names = conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name NOT LIKE '\\_dlt%%'",
            (dataset,),
        ).fetchall()
        for (table,) in names:
            query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(dataset), sql.Identifier(table))
            row = conn.execute(query).fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts
