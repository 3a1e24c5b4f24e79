"""Ingestion of all three systems: backfill of the book, then an incremental cycle after 100 changes.

``python -m bench.ingest [--scale large|demo|both] [--rounds N] [--mode processes|serial] [--no-seed-cache]``

For each scale (``both``, the default, measures large and demo in the same invocation so the ratio of
their incremental cycles is taken side by side), the three sandboxes start once on free ports in a
temporary directory and serve every round. The directory starts as a copy of the book seeded once into
``--seed-cache`` (:mod:`bench.seed_cache`; seeding the large book takes about a minute, copying it a few
seconds). A round creates a throwaway warehouse database (on the server of ``REVLOOP_BENCH_DATABASE_URL``,
else ``REVLOOP_DATABASE_URL`` or the embedded PostgreSQL), backfills the three systems as ``revloop load
all`` does (:func:`pipelines.loads.run_loads`), makes 100 changes through the vendors' clients (40
Salesforce opportunities with simple-salesforce and the admin app, 30 ERP invoices with odoolib and the
sync key, 30 payments customers with the stripe SDK and the secret key), and times one incremental cycle of
the three. Medians over rounds are printed and saved (``bench.common.save``).

Time shares come from the sources' own timers (HTTP waits, page -> Arrow conversion with PII
protection) and dlt's step timings (extract, normalize, load). They are summed over the systems, which
run concurrently, so they are shares of the summed per-system seconds, not of the wall time.

Library use (the peers benchmark imports these): :func:`backfill` and :func:`incremental` take a warehouse
URL and a :class:`revloop.settings.Settings` and return a plain dict of figures; :func:`sandbox_settings`
builds those settings for running sandboxes; :func:`make_changes` makes the 100 changes.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import resource
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import stripe
from rich.console import Console
from simple_salesforce import Salesforce

from bench import seed_cache
from bench.common import console, median, save, table
from pipelines import catalog
from pipelines.common.runner import LoadSummary, run_load
from pipelines.erp import settings as erp_constants
from pipelines.loads import Mode, SystemResult, describe_failure, run_loads
from revloop import warehouse
from revloop.connectors.erp import connect as erp_connect
from revloop.http import pinned_session
from revloop.settings import ErpSettings, PaymentsSettings, SalesforceSettings, Settings
from sandboxes import control
from sandboxes.common.config import SandboxConfig
from sandboxes.registry import SYSTEMS as SANDBOX_SYSTEMS

logger = logging.getLogger(__name__)

CHANGES = {"salesforce": 40, "erp": 30, "payments": 30}
"""The 100 changes of an incremental cycle, by system."""

SHARES = ("http", "parse", "dlt_extract", "dlt_normalize", "dlt_load", "count_rows")
SHARE_LABELS = ("http", "parse", "extract", "normalize", "load", "count")


# ---- sandboxes and settings -------------------------------------------------------------------------


@contextlib.contextmanager
def sandboxes(
    scale: str, directory: Path, seed: int = 42, seed_cache_dir: Path | None = None
) -> Iterator[list[SandboxConfig]]:
    """The three sandboxes seeded with the ``scale`` book, on free ports under ``directory``.

    With ``seed_cache_dir``, ``directory`` starts as a copy of the book seeded there once
    (:mod:`bench.seed_cache`) instead of being seeded by the sandboxes as they start.
    """
    if seed_cache_dir is not None:
        hit = seed_cache.seeded_copy(seed_cache_dir, directory, scale=scale, seed=seed, systems=catalog.SYSTEMS)
        logger.info("%s book %s %s", scale, "copied from" if hit else "seeded into", seed_cache_dir)
    ports = {name: control.free_port() for name in catalog.SYSTEMS}
    configs = control.configs(directory, systems=catalog.SYSTEMS, ports=ports, seed=seed, scale=scale)
    processes = []
    try:
        for config in configs:
            processes.append(control.start(config, detach=False))
        _wait_alive(processes, timeout=1800)
        yield configs
    finally:
        control.stop(processes)


def one_system_cycle(
    system: str, scale: str, seed: int, change: Callable[[Settings], None]
) -> tuple[LoadSummary, LoadSummary, LoadSummary]:
    """One system alone: its sandbox seeded with the ``scale`` book, then a backfill into a throwaway
    database, ``change(settings)`` (made through the vendor's client), an incremental cycle, and an idle one.
    """
    admin_url = warehouse.database_url(Settings())
    database = f"revloop_bench_{system}_{secrets.token_hex(3)}"
    database_url = warehouse.create_database(admin_url, database)
    try:
        with tempfile.TemporaryDirectory(prefix=f"revloop-bench-{system}-") as tmp:
            (config,) = control.configs(Path(tmp), systems=[system], ports={system: control.free_port()},
                                        seed=seed, scale=scale)
            process = control.start(config, detach=False)
            try:
                control.wait_healthy([process], 1800)
                settings = sandbox_settings([config], Path(tmp) / "home")
                source = catalog.source_factory(system)
                full = run_load(system, source, settings, database_url)
                change(settings)
                incremental = run_load(system, source, settings, database_url)
                idle = run_load(system, source, settings, database_url)
            finally:
                control.stop([process])
    finally:
        warehouse.drop_database(admin_url, database)
    return full, incremental, idle


def _wait_alive(processes: Sequence[control.SandboxProcess], timeout: float) -> None:
    """Poll each sandbox's liveness once a second over one kept-alive client (``control.wait_healthy``
    builds a TLS context ten times a second, which takes CPU from the seeding it waits for)."""
    deadline = time.monotonic() + timeout
    clients = {proc.config.system: control.http_client(proc.config, timeout=2) for proc in processes}
    pending = list(processes)
    try:
        while pending:
            for proc in list(pending):
                if not proc.alive():
                    raise control.SandboxError(f"the {proc.config.system} sandbox exited; see {proc.log_file}")
                with contextlib.suppress(Exception):
                    if clients[proc.config.system].get("/__sandbox__/ping").status_code == 200:
                        pending.remove(proc)
            if pending and time.monotonic() > deadline:
                raise control.SandboxError(f"sandboxes not answering after {timeout:.0f}s")
            if pending:
                time.sleep(1.0)
    finally:
        for client in clients.values():
            client.close()


def sandbox_settings(configs: Sequence[SandboxConfig], home: Path) -> Settings:
    """Revloop's settings pointing at running sandboxes (what ``revloop sandbox env`` would export)."""
    by_system: dict[str, Any] = {}
    kinds = {"salesforce": SalesforceSettings, "erp": ErpSettings, "payments": PaymentsSettings}
    for config in configs:
        env = SANDBOX_SYSTEMS[config.system].load().client_env(config)
        prefix = f"REVLOOP_{config.system.upper()}_"
        by_system[config.system] = kinds[config.system](
            **{k.removeprefix(prefix).lower(): v for k, v in env.items()}
        )
    return Settings(home=home, **by_system)


def sandbox_peak_rss_mib(configs: Sequence[SandboxConfig]) -> dict[str, float]:
    """Each sandbox process's peak RSS (``VmHWM``), found by its port in ``/proc`` (Linux only)."""
    result: dict[str, float] = {}
    for config in configs:
        pid = _pid_listening_on(config.port)
        if pid is None:
            continue
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    result[config.system] = int(line.split()[1]) / 1024
    return result


def _pid_listening_on(port: int) -> int | None:
    inode = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            parts = line.split()
            if int(parts[1].split(":")[1], 16) == port and parts[3] == "0A":
                inode = parts[9]
                break
    if inode is None:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                if Path.readlink(fd).as_posix() == f"socket:[{inode}]":
                    return int(proc.name)
    return None


class MemorySampler:
    """The peak, over time, of the summed proportional set size (PSS) of this process's load children.

    Forked loads share the parent's pages, so adding their peak RSS counts those pages once per child;
    PSS splits shared pages between the processes that map them, and the sum is what they occupy together.
    Sandbox processes (``exclude``) are left out: they stand in for the vendors' servers.
    """

    def __init__(self, exclude: set[int], interval: float = 0.25) -> None:
        self.exclude = exclude
        self.interval = interval
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pss-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        own = os.getpid()
        while not self._stop.is_set():
            pids = [own, *(pid for pid in _children(own) if pid not in self.exclude)]
            self.peak_mib = max(self.peak_mib, sum(_pss_kib(pid) for pid in pids) / 1024)
            self._stop.wait(self.interval)


def _children(pid: int) -> list[int]:
    result: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                result.extend(int(c) for c in (task / "children").read_text().split())
    return result


def _pss_kib(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


# ---- changes through the vendors' clients -----------------------------------------------------------


def _salesforce_admin(config: SandboxConfig) -> Salesforce:
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


def make_changes(configs: Sequence[SandboxConfig], settings: Settings, round_number: int) -> dict[str, int]:
    """The 100 changes of :data:`CHANGES`, each made as a user of that system would make it."""
    by_system = {c.system: c for c in configs}
    stamp = f"bench round {round_number} {time.time():.0f}"

    sf = _salesforce_admin(by_system["salesforce"])
    count = CHANGES["salesforce"]
    ids = [r["Id"] for r in sf.query(f"SELECT Id FROM Opportunity ORDER BY Id LIMIT {count}")["records"]]
    records = [{"attributes": {"type": "Opportunity"}, "id": i, "Description": f"{stamp} {n}"}
               for n, i in enumerate(ids)]
    sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": records})
    sf.session.close()

    moves = erp_connect(settings.erp).get_model("account.move")
    invoice_ids = moves.search(domain=[["move_type", "in", erp_constants.INVOICE_TYPES]], order="id asc",
                               limit=CHANGES["erp"])
    moves.write(ids=invoice_ids, vals={"ref": stamp})

    payments = settings.payments
    assert payments.secret_key is not None
    client = stripe.StripeClient(payments.secret_key.get_secret_value(), base_addresses={"api": payments.api_base})
    customers = client.v1.customers.list(params={"limit": CHANGES["payments"]})
    changed_customers = 0
    for customer in customers.data[: CHANGES["payments"]]:
        client.v1.customers.update(customer.id, params={"description": f"{stamp} {changed_customers}"})
        changed_customers += 1
    return {"salesforce": len(ids), "erp": len(invoice_ids), "payments": changed_customers}


# ---- one cycle --------------------------------------------------------------------------------------


def _figures(results: list[SystemResult], wall_seconds: float, mode: Mode) -> dict[str, Any]:
    """Records, seconds, rates, memory and time shares of one cycle of the three systems."""
    failures = {r.system: describe_failure(r) for r in results if r.summary is None}
    if failures:
        raise RuntimeError(f"loads failed: {failures}")
    per_system: dict[str, Any] = {}
    summed = {what: 0.0 for what in SHARES}
    for result in results:
        summary = result.summary
        assert summary is not None
        seconds = summary.notes.get("seconds", {})
        http = float(seconds.get("http", summary.notes.get("http_seconds", 0.0)))
        parse = float(seconds.get("parse_json", 0.0)) + float(seconds.get("protect", 0.0)) + float(
            seconds.get("convert_and_protect", 0.0)) + float(seconds.get("convert", 0.0))
        timings = {"http": http, "parse": parse,
                   **{k: float(seconds.get(k, 0.0)) for k in SHARES if k not in ("http", "parse")}}
        for key, value in timings.items():
            summed[key] += value
        per_system[result.system] = {
            "records": summary.rows_loaded, "seconds": round(result.seconds, 3),
            "records_per_second": round(summary.rows_loaded / result.seconds) if result.seconds else 0,
            "peak_rss_mib": round(result.peak_rss_mib), "rows_by_table": summary.rows_by_table,
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "quarantined": summary.quarantined,
        }
    records = sum(s["records"] for s in per_system.values())
    total = sum(r.seconds for r in results) or 1.0
    return {
        "records": records, "seconds": round(wall_seconds, 3),
        "records_per_second": round(records / wall_seconds) if wall_seconds else 0,
        "peak_rss_mib": round(max(r.peak_rss_mib for r in results)),
        # In one process (serial) the peaks are the same process's: the sum only means something per process.
        "peak_rss_sum_mib": round(sum(r.peak_rss_mib for r in results) if mode == "processes"
                                  else max(r.peak_rss_mib for r in results)),
        "shares": {k: round(v / total, 3) for k, v in summed.items()},
        "systems": per_system,
    }


def backfill(
    database_url: str, settings: Settings, *, mode: Mode = "processes", sandbox_pids: Sequence[int] = ()
) -> dict[str, Any]:
    """A full load of the three systems into the (empty) warehouse at ``database_url``; figures as a dict.

    Keys: ``records``, ``seconds`` (wall), ``records_per_second``, ``peak_rss_mib`` (largest load process),
    ``peak_rss_sum_mib`` (their peaks added: shared pages counted per process), ``peak_pss_total_mib``
    (the peak of this process and its load children's summed PSS: what they occupied together, sandboxes
    passed in ``sandbox_pids`` excluded), ``shares`` (of per-system seconds: http, parse,
    dlt_extract, dlt_normalize, dlt_load, count_rows) and ``systems`` (the same per system).
    """
    started = time.perf_counter()
    with MemorySampler(exclude=set(sandbox_pids)) as memory:
        results = run_loads(catalog.SYSTEMS, settings, database_url, mode=mode)
    figures = _figures(results, time.perf_counter() - started, mode)
    figures["peak_pss_total_mib"] = round(memory.peak_mib)
    return figures


def incremental(
    database_url: str, settings: Settings, *, mode: Mode = "processes", sandbox_pids: Sequence[int] = ()
) -> dict[str, Any]:
    """One incremental cycle of the three systems; the same figures as :func:`backfill`."""
    return backfill(database_url, settings, mode=mode, sandbox_pids=sandbox_pids)


def run_scale(
    scale: str, rounds: int, mode: Mode, admin_url: str, seed_cache_dir: Path | None = None
) -> dict[str, Any]:
    """``rounds`` backfill + incremental rounds against sandboxes seeded once with the ``scale`` book."""
    with tempfile.TemporaryDirectory(prefix=f"revloop-bench-ingest-{scale}-") as tmp:
        started = time.perf_counter()
        with sandboxes(scale, Path(tmp) / "sandboxes", seed_cache_dir=seed_cache_dir) as configs:
            seeding = time.perf_counter() - started
            runs = []
            for number in range(rounds):
                database = f"revloop_bench_ingest_{secrets.token_hex(3)}"
                url = warehouse.create_database(admin_url, database)
                try:
                    settings = sandbox_settings(configs, Path(tmp) / f"home-{number}")
                    pids = [pid for pid in map(_pid_listening_on, (c.port for c in configs)) if pid]
                    full = backfill(url, settings, mode=mode, sandbox_pids=pids)
                    changed = make_changes(configs, settings, number)
                    cycle = incremental(url, settings, mode=mode, sandbox_pids=pids)
                finally:
                    warehouse.drop_database(admin_url, database)
                console.print(f"{scale} round {number + 1}: backfill {full['records']:,} records in "
                              f"{full['seconds']:.1f}s, incremental {cycle['records']:,} in {cycle['seconds']:.2f}s")
                runs.append({"backfill": full, "incremental": cycle, "changes": changed})
            sandbox_rss = sandbox_peak_rss_mib(configs)
    return {"scale": scale, "seeding_seconds": round(seeding, 1), "rounds": runs, "sandbox_peak_rss_mib": sandbox_rss,
            "bench_process_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _median_of(runs: list[dict[str, Any]], what: str, key: str) -> float:
    return median([run[what][key] for run in runs])


def _rows(result: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for what in ("backfill", "incremental"):
        runs = result["rounds"]
        shares = {k: median([r[what]["shares"][k] for r in runs]) for k in SHARES}
        rows.append([
            f"{result['scale']} {what}", int(_median_of(runs, what, "records")),
            round(_median_of(runs, what, "seconds"), 2), int(_median_of(runs, what, "records_per_second")),
            int(_median_of(runs, what, "peak_rss_mib")), int(_median_of(runs, what, "peak_pss_total_mib")),
            *(f"{100 * shares[k]:.0f}%" for k in SHARES),
        ])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["large", "demo", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", choices=["processes", "serial"], default="processes")
    parser.add_argument("--seed-cache", type=Path, default=seed_cache.default_directory(),
                        help="folder keeping seeded books between runs [default: %(default)s]")
    parser.add_argument("--no-seed-cache", action="store_true", help="seed the sandboxes afresh")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    admin_url = os.environ.get("REVLOOP_BENCH_DATABASE_URL") or warehouse.database_url(Settings())
    scales = ["large", "demo"] if args.scale == "both" else [args.scale]
    load_before = os.getloadavg()
    cache_dir = None if args.no_seed_cache else args.seed_cache
    results = {scale: run_scale(scale, args.rounds, args.mode, admin_url, cache_dir) for scale in scales}
    load_after = os.getloadavg()
    rows = [row for scale in scales for row in _rows(results[scale])]
    wide = Console(width=max(console.width, 140))
    wide.print(table(
        f"Ingestion of the three systems ({args.mode}), medians of {args.rounds} round(s)",
        ["what", "records", "s", "rec/s", "max RSS MiB", "total PSS MiB", *SHARE_LABELS], rows,
    ))
    # The machine is shared: the load average says how much of it these figures had.
    payload: dict[str, Any] = {"mode": args.mode, "rounds": args.rounds, "scales": results,
                               "load_average_before": load_before, "load_average_after": load_after}
    if len(scales) == 2:
        large = _median_of(results["large"]["rounds"], "incremental", "seconds")
        demo = _median_of(results["demo"]["rounds"], "incremental", "seconds")
        payload["incremental_ratio_large_to_demo"] = round(large / demo, 2) if demo else None
        console.print(f"incremental cycle: large {large:.2f}s / demo {demo:.2f}s = ratio {large / demo:.2f}")
    for scale in scales:
        console.print(f"{scale}: sandboxes seeded (or copied) and started in {results[scale]['seeding_seconds']}s, "
                      f"sandbox peak RSS MiB {results[scale]['sandbox_peak_rss_mib']}")
    console.print("load average (1, 5, 15 min) before " + " ".join(f"{v:.1f}" for v in load_before)
                  + ", after " + " ".join(f"{v:.1f}" for v in load_after))
    console.print(f"saved {save('ingest', payload)}")


if __name__ == "__main__":
    main()
