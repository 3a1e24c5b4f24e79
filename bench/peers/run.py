"""Benchmark Revloop and the open-source extractors side by side against the local sandboxes.

    .venv/bin/python -m bench.peers.run [--peers revloop tap-stripe ...] [--scale demo] [--rounds N] [--keep]

Starts the sandboxes the chosen participants need (or joins running ones with ``--use-running``), creates
a throwaway PostgreSQL database, installs any missing peer virtualenv, runs Revloop's backfill and each
peer in turn (per system, Revloop first), compares what landed with the sandbox's own counts, prints
tables with the ratios of Revloop to the best peer and writes ``bench/results/peers-<time>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.peers import environments, revloop_side
from bench.peers.access import PaymentsAccess, SalesforceAccess, salesforce_bulk_jobs_used
from bench.peers.catalog import flatten_counts
from bench.peers.compare import REVLOOP, compare
from bench.peers.execute import Workspace, run_peer
from bench.peers.peers import DEFAULT_PEERS, PEERS, TARGET_POSTGRES_ENV, Options, Peer
from bench.peers.report import print_report, write_json
from bench.peers.results import PeerResult
from revloop.warehouse import create_database, drop_database, redact
from sandboxes import control
from sandboxes.common.config import SandboxConfig
from sandboxes.registry import DEFAULT_DATA_DIR

logger = logging.getLogger("bench.peers")

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PARTICIPANTS = (REVLOOP, *PEERS)
DEFAULT_PARTICIPANTS = (REVLOOP, *DEFAULT_PEERS)
SYSTEM_ORDER = ("salesforce", "payments")
"""Systems a peer covers (the ERP has no peer here), in the order they run."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def sandboxes(systems: set[str], args: argparse.Namespace, work_dir: Path) -> Iterator[list[SandboxConfig]]:
    """The sandboxes of ``systems``: joined when ``--use-running``, else started here and stopped afterwards."""
    if args.use_running is not None:
        running = [p for p in control.read_run_file(args.use_running) if p.config.system in systems]
        missing = systems - {p.config.system for p in running}
        if missing:
            raise SystemExit(f"no running sandbox for {', '.join(sorted(missing))} under {args.use_running}")
        yield [p.config for p in running]
        return
    configs = control.configs(
        work_dir / "sandboxes", systems=sorted(systems), ports={s: _free_port() for s in systems},
        seed=args.seed, scale=args.scale,
    )
    logger.info("starting sandboxes %s at scale %s", ", ".join(sorted(systems)), args.scale)
    processes = control.up(configs, detach=False)
    try:
        yield configs
    finally:
        control.stop(processes)


@contextlib.contextmanager
def throwaway_database(args: argparse.Namespace) -> Iterator[str]:
    admin_url = args.database_url or os.environ.get("REVLOOP_TEST_DATABASE_URL") or DEFAULT_ADMIN_URL
    name = "revloop_peers_" + dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    url = create_database(admin_url, name)
    logger.info("loading into %s", redact(url))
    try:
        yield url
    finally:
        if args.keep:
            logger.info("kept database %s", redact(url))
        else:
            drop_database(admin_url, name)


def _sandbox_admin(config: SandboxConfig, method: str, path: str) -> dict[str, Any]:
    with control.http_client(config, timeout=60) as client:
        response = client.request(method, f"/__sandbox__/{path}")
    response.raise_for_status()
    return response.json() if response.content else {}


def _access(system: str, env: dict[str, str], config: SandboxConfig) -> SalesforceAccess | PaymentsAccess:
    if system == "salesforce":
        env = {"REVLOOP_SALESFORCE_CA_FILE": str(config.tls_dir / "ca.pem"), **env}
        return SalesforceAccess.from_env(env)
    return PaymentsAccess.from_env(env)


def _stream_mode(args: argparse.Namespace, with_revloop: bool) -> str:
    if args.all_streams:
        return "all"
    return args.streams or ("revloop" if with_revloop else "sandbox")


def run(args: argparse.Namespace) -> list[PeerResult]:
    with_revloop = REVLOOP in args.peers
    chosen = [PEERS[name] for name in args.peers if name != REVLOOP]
    systems = [s for s in SYSTEM_ORDER if s in {p.system for p in chosen} or (with_revloop and not chosen)]
    envs_needed = {p.environment for p in chosen}
    if any(p.kind == "singer" for p in chosen):
        envs_needed.add(TARGET_POSTGRES_ENV)
    for name in sorted(envs_needed):
        environments.ensure(name, rebuild=args.rebuild_envs)
    options = Options(start_date=args.start_date)
    mode = _stream_mode(args, with_revloop)
    budget = args.time_budget * 60 if args.time_budget else None
    results: list[PeerResult] = []
    with contextlib.ExitStack() as stack:
        work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="revloop-peers-"))) if not args.keep \
            else Path(tempfile.mkdtemp(prefix="revloop-peers-"))
        configs = {c.system: c for c in stack.enter_context(sandboxes(set(systems), args, work_dir))}
        database_url = stack.enter_context(throwaway_database(args))
        client_env = control.client_env(configs.values())
        accesses = {system: _access(system, client_env.get(system, {}), config) for system, config in configs.items()}
        counts = {
            system: flatten_counts(_sandbox_admin(configs[system], "GET", "health").get("records", {}))
            for system in systems
        }
        for round_number in range(1, args.rounds + 1):
            for system in systems:
                keys = revloop_side.comparable_keys(system)
                only = frozenset(keys) if mode == "revloop" else None
                env = client_env.get(system, {})
                participants: list[Peer | None] = ([None] if with_revloop else []) + [
                    p for p in chosen if p.system == system
                ]
                for peer in participants:
                    name = peer.name if peer else REVLOOP
                    workspace = Workspace(work_dir / "runs" / f"round-{round_number}" / system / name, database_url,
                                          counts[system], budget, only)
                    run_one = (
                        functools.partial(run_peer, peer, accesses[system], options, workspace,
                                          all_streams=mode == "all")
                        if peer else functools.partial(revloop_side.run_revloop, system, env, workspace,
                                                   work_dir / "revloop-home" / system, budget)
                    )
                    result = _measured(system, name, configs[system], env, run_one)
                    result.round = round_number
                    results.append(result)
        if args.keep:
            logger.info("kept peer configs and logs under %s", work_dir)
    return results


def _measured(
    system: str, name: str, config: SandboxConfig, env: dict[str, str], run_one: Callable[[], PeerResult]
) -> PeerResult:
    """Run one participant with the sandbox's request counters (and, on Salesforce, Bulk 2.0 jobs) around it."""
    bulk_before = _bulk_jobs(system, env)
    _sandbox_admin(config, "POST", "counters/reset")
    logger.info("running %s against the %s sandbox", name, system)
    result = run_one()
    with contextlib.suppress(httpx.HTTPError):
        result.sandbox_requests = _sandbox_admin(config, "GET", "counters")
    bulk_after = _bulk_jobs(system, env)
    if bulk_before is not None and bulk_after is not None:
        result.facts["bulk_v2_query_jobs"] = bulk_after - bulk_before
    logger.info("%s: %s records in %.1fs (%s)", name, f"{result.records:,}", result.sync_seconds,
                "ok" if result.succeeded else "timed out" if result.timed_out else "failed")
    return result


def _bulk_jobs(system: str, env: dict[str, str]) -> int | None:
    if system != "salesforce":
        return None
    try:
        return salesforce_bulk_jobs_used(env)
    except Exception:  # a fact for the report, never a reason to stop the benchmark
        logger.warning("could not read the org's Bulk API 2.0 job count", exc_info=True)
        return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.run", description=__doc__.splitlines()[0])
    parser.add_argument("--peers", nargs="+", choices=PARTICIPANTS, default=list(DEFAULT_PARTICIPANTS),
                        help=f"which participants ('revloop' is Revloop's own loader; default: "
                             f"{' '.join(DEFAULT_PARTICIPANTS)})")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each participant; the comparison uses medians")
    parser.add_argument("--time-budget", type=float, default=15.0, metavar="MINUTES",
                        help="stop a participant's sync after this long and report what it loaded (0: no limit)")
    parser.add_argument("--streams", choices=("revloop", "sandbox", "all"),
                        help="what the peers sync: 'revloop' the objects Revloop loads (default with revloop), "
                             "'sandbox' every object the sandbox models plus events (default without), 'all' all")
    parser.add_argument("--scale", default="demo", choices=("demo", "large", "empty"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start-date", type=dt.date.fromisoformat,
                        default=dt.date.today().replace(month=1, day=1) - dt.timedelta(days=6 * 365),
                        help="the peers' start_date setting (default: about six years back, before any seeded record)")
    parser.add_argument("--use-running", type=Path, nargs="?", const=DEFAULT_DATA_DIR, default=None, metavar="DATA_DIR",
                        help="use sandboxes already started with 'revloop sandbox up' (default data dir: %(const)s)")
    parser.add_argument("--database-url", help="admin URL of the PostgreSQL server for the throwaway database")
    parser.add_argument("--all-streams", action="store_true", help="the same as --streams all")
    parser.add_argument("--rebuild-envs", action="store_true", help="reinstall the peers' virtualenvs")
    parser.add_argument("--keep", action="store_true", help="keep the database, peer configs and logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    results = run(args)
    comparisons = compare(results, {s: revloop_side.comparable_keys(s) for s in {r.system for r in results}})
    print_report(results, comparisons)
    meta = {
        "command": "python -m bench.peers.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "scale": args.scale, "seed": args.seed, "start_date": args.start_date.isoformat(), "rounds": args.rounds,
        "time_budget_minutes": args.time_budget, "streams": _stream_mode(args, REVLOOP in args.peers),
        "participants": list(dict.fromkeys(r.peer for r in results)),
    }
    path = write_json(results, meta, comparisons)
    logger.info("results written to %s", path)
    return 0 if all(r.succeeded for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
