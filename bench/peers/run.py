"""Benchmark the open-source extractors against the local sandboxes.

    .venv/bin/python -m bench.peers.run [--peers tap-stripe airbyte-source-salesforce ...] [--scale demo] [--keep]

Starts the sandboxes the chosen peers need (or joins running ones with ``--use-running``), creates a
throwaway PostgreSQL database, installs any missing peer virtualenv, runs each peer, compares what landed
with the sandbox's own counts, prints a table and writes ``bench/results/peers-<time>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.peers import environments
from bench.peers.access import PaymentsAccess, SalesforceAccess
from bench.peers.catalog import flatten_counts
from bench.peers.execute import Workspace, run_peer
from bench.peers.peers import DEFAULT_PEERS, PEERS, TARGET_POSTGRES_ENV, Options
from bench.peers.report import print_report, write_json
from bench.peers.results import PeerResult
from revloop.warehouse import create_database, drop_database, redact
from sandboxes import control
from sandboxes.common.config import SandboxConfig
from sandboxes.registry import DEFAULT_DATA_DIR

logger = logging.getLogger("bench.peers")

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


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


def run(args: argparse.Namespace) -> list[PeerResult]:
    chosen = [PEERS[name] for name in args.peers]
    envs_needed = {p.environment for p in chosen}
    if any(p.kind == "singer" for p in chosen):
        envs_needed.add(TARGET_POSTGRES_ENV)
    for name in sorted(envs_needed):
        environments.ensure(name, rebuild=args.rebuild_envs)
    options = Options(start_date=args.start_date)
    results: list[PeerResult] = []
    with contextlib.ExitStack() as stack:
        work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="revloop-peers-"))) if not args.keep \
            else Path(tempfile.mkdtemp(prefix="revloop-peers-"))
        configs = {c.system: c for c in stack.enter_context(sandboxes({p.system for p in chosen}, args, work_dir))}
        database_url = stack.enter_context(throwaway_database(args))
        client_env = control.client_env(configs.values())
        accesses = {system: _access(system, client_env.get(system, {}), config) for system, config in configs.items()}
        for peer in chosen:
            config = configs[peer.system]
            counts = flatten_counts(_sandbox_admin(config, "GET", "health").get("records", {}))
            _sandbox_admin(config, "POST", "counters/reset")
            logger.info("running %s against the %s sandbox", peer.name, peer.system)
            workspace = Workspace(work_dir / "peers" / peer.name, database_url, counts)
            result = run_peer(peer, accesses[peer.system], options, workspace, all_streams=args.all_streams)
            with contextlib.suppress(httpx.HTTPError):
                result.sandbox_requests = _sandbox_admin(config, "GET", "counters")
            logger.info("%s: %s records in %.1fs (%s)", peer.name, f"{result.records:,}", result.sync_seconds,
                        "ok" if result.succeeded else "failed")
            results.append(result)
        if args.keep:
            logger.info("kept peer configs and logs under %s", work_dir)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.run", description=__doc__.splitlines()[0])
    parser.add_argument("--peers", nargs="+", choices=sorted(PEERS), default=list(DEFAULT_PEERS),
                        help=f"which peers (default: {' '.join(DEFAULT_PEERS)})")
    parser.add_argument("--scale", default="demo", choices=("demo", "large", "empty"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start-date", type=dt.date.fromisoformat,
                        default=dt.date.today().replace(month=1, day=1) - dt.timedelta(days=6 * 365),
                        help="the peers' start_date setting (default: about six years back, before any seeded record)")
    parser.add_argument("--use-running", type=Path, nargs="?", const=DEFAULT_DATA_DIR, default=None, metavar="DATA_DIR",
                        help="use sandboxes already started with 'revloop sandbox up' (default data dir: %(const)s)")
    parser.add_argument("--database-url", help="admin URL of the PostgreSQL server for the throwaway database")
    parser.add_argument("--all-streams", action="store_true",
                        help="sync every stream a peer offers, not only those the sandbox models")
    parser.add_argument("--rebuild-envs", action="store_true", help="reinstall the peers' virtualenvs")
    parser.add_argument("--keep", action="store_true", help="keep the database, peer configs and logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    results = run(args)
    print_report(results)
    meta = {"scale": args.scale, "seed": args.seed, "start_date": args.start_date.isoformat(),
            "peers_run": [r.peer for r in results]}
    path = write_json(results, meta)
    logger.info("results written to %s", path)
    return 0 if all(r.succeeded for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
