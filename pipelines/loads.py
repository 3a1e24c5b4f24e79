"""Loading several systems at once: each system's load in its own process, so they share both cores.

The three systems are independent (their own datasets, locks, cursors and quarantine rows), and each
load is mostly single-threaded Python (dlt's extract and normalize, page conversion) waiting now and
then on HTTP and PostgreSQL. Running them in parallel processes overlaps one system's waiting with
another's work and uses every core; threads would share one interpreter lock. Each child runs exactly
what a lone ``run_load`` would (the same lock, the same state handling), so a system that is already
being loaded elsewhere still fails alone with :class:`~pipelines.common.locking.PipelineBusy`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import importlib
import logging
import multiprocessing
import resource
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pipelines.catalog import source_factory
from pipelines.common.runner import LoadSummary, run_load
from revloop.crypto import load_keyring
from revloop.settings import Settings

logger = logging.getLogger(__name__)

Mode = Literal["processes", "serial"]

LONGEST_FIRST = ("payments", "salesforce", "erp")
"""Measured on the large book (docs/benchmarks.md): the payments backfill (its events feed) takes about as
long as the other two together, so it starts first and the others share the second process."""

_IMPORTED_BY_A_RUN = (
    "sqlalchemy",
    "psycopg2",
    "pyarrow.parquet",
    "pyarrow.csv",
    "dlt.common.libs.pyarrow",
    "dlt.common.libs.sql_alchemy_compat",
    "dlt.destinations.insert_job_client",
    "dlt.destinations.impl.postgres.postgres",
    "dlt.destinations.impl.postgres.sql_client",
    "dlt.extract",
    "dlt.normalize",
    "dlt.load",
    "dlt.sources.helpers.requests",
    "dlt._workspace.cli",
)
"""Modules a dlt run into PostgreSQL imports on first use (sqlalchemy alone takes ~1.5 s): imported once
before forking, so the children do not each pay for them at the same time."""


@dataclasses.dataclass
class SystemResult:
    """One system's outcome: its summary, or the error that stopped it; and the peak RSS of its process."""

    system: str
    summary: LoadSummary | None
    error: BaseException | None
    peak_rss_mib: float
    seconds: float


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load_one(
    system: str, settings: Settings, database_url: str, full_refresh: bool, pipelines_dir: Path | None
) -> SystemResult:
    started = time.perf_counter()
    try:
        summary = run_load(system, source_factory(system), settings, database_url, full_refresh=full_refresh,
                           pipelines_dir=pipelines_dir)
        error: BaseException | None = None
    except Exception as exc:  # reported per system; one failing must not hide the others' results
        summary, error = None, exc
    return SystemResult(system, summary, error, _peak_rss_mib(), time.perf_counter() - started)


def run_loads(
    systems: Sequence[str],
    settings: Settings,
    database_url: str,
    *,
    full_refresh: bool = False,
    mode: Mode = "processes",
    pipelines_dirs: dict[str, Path] | None = None,
    max_processes: int | None = None,
) -> list[SystemResult]:
    """Load ``systems`` (results in the given order), concurrently in child processes unless ``serial``.

    Child processes are forked, so they start warm (imports done) and live only for this call; a single
    system, or ``mode="serial"``, runs in this process. At most ``max_processes`` (default: one per
    system) load at once, the longest first (:data:`LONGEST_FIRST`). Measured on the large book: two
    processes (the shorter systems one after the other) save ~200 MiB in a backfill, but make an
    incremental cycle wait for two systems in a row (large/demo ratio 1.61 instead of ~0.9), so the
    default is one process per system. Errors are returned per system, not raised.
    """
    dirs = pipelines_dirs or {}
    if mode == "serial" or len(systems) <= 1:
        return [_load_one(s, settings, database_url, full_refresh, dirs.get(s)) for s in systems]
    warm_up(systems)
    # In dev, the first use creates the keyring file; children doing that at once would each write their
    # own keys (one system's tokens and hashes then no longer open or match): create it before forking.
    load_keyring(settings.environment, settings.home)
    context = multiprocessing.get_context("fork")
    workers = max(1, min(len(systems), max_processes or len(systems)))
    started = sorted(systems, key=lambda s: LONGEST_FIRST.index(s) if s in LONGEST_FIRST else len(LONGEST_FIRST))
    with _shared_with_children(), ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures: dict[str, Future[SystemResult]] = {
            s: pool.submit(_load_one, s, settings, database_url, full_refresh, dirs.get(s)) for s in started
        }
        results = []
        for system in systems:
            future = futures[system]
            try:
                results.append(future.result())
            except Exception as exc:  # the child died (killed, out of memory): report it like a failure
                results.append(SystemResult(system, None, exc, 0.0, 0.0))
    return results


@contextlib.contextmanager
def _shared_with_children() -> Iterator[None]:
    """Keep the parent's objects (every imported module) shared with the forked children.

    A forked child shares the parent's memory until it writes to a page; the garbage collector's passes
    write into the header of every object they visit, so each child soon held its own copy of all the
    parent's objects (measured: ~100 MiB per child of the 146 MiB of a warm parent). Objects frozen before
    the fork are never visited by the children's collections (Python's documented recipe for forking
    servers); the parent unfreezes them once the children are gone.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def warm_up(systems: Sequence[str]) -> None:
    """Import the sources and what a run imports lazily, so forked loads start without import work."""
    for system in systems:
        source_factory(system)
    for module in _IMPORTED_BY_A_RUN:
        with contextlib.suppress(ImportError):  # a different dlt version may have moved one: only slower
            importlib.import_module(module)


def describe_failure(result: SystemResult) -> str:
    """A one-line description of why a system's load did not finish."""
    error: Any = result.error
    return f"{type(error).__name__}: {error}"
