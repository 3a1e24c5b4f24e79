"""Seeded sandbox folders kept between benchmark runs, so a run copies a book instead of seeding it again.

Seeding the large book takes 40-90 s of both cores; copying its ~1.3 GiB of SQLite files takes a few
seconds. A cached folder is only reused for the same scale, seed, UTC day (the books are anchored on the
day they are seeded, and the payments events feed keeps 30 days counted from now) and sandbox code (a
digest of every source file under ``sandboxes/``): anything else seeds afresh.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path

from sandboxes import control

logger = logging.getLogger(__name__)

SANDBOX_SOURCES = Path(__file__).resolve().parents[1] / "sandboxes"


def default_directory() -> Path:
    """``$XDG_CACHE_HOME/revloop/bench-sandboxes`` (``~/.cache`` when the variable is unset)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "revloop" / "bench-sandboxes"


def sources_digest(root: Path = SANDBOX_SOURCES) -> str:
    """A digest of the sandboxes' source files (names and contents): a change to any seeder invalidates."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_key(scale: str, seed: int, systems: Sequence[str], day: dt.date | None = None) -> str:
    """The folder name a seeded book is kept under."""
    day = day or dt.datetime.now(dt.UTC).date()
    return f"{scale}-{seed}-{'+'.join(sorted(systems))}-{day.isoformat()}-{sources_digest()}"


def seeded_copy(cache_dir: Path, target: Path, *, scale: str, seed: int, systems: Sequence[str],
                timeout: float = 1800) -> bool:
    """Fill ``target`` with a seeded copy of the book; returns whether the cache already held it.

    On a miss the sandboxes are started once in the cache (on free ports), seeded, stopped, and the
    folder is kept; older folders of the same scale and seed are removed (each large book is ~1.3 GiB).
    """
    key = cache_key(scale, seed, systems)
    cached = cache_dir / key
    hit = cached.is_dir()
    if not hit:
        _seed_into(cache_dir, key, scale=scale, seed=seed, systems=systems, timeout=timeout)
        _drop_older(cache_dir, keep=key, prefix=f"{scale}-{seed}-")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(cached, target, ignore=shutil.ignore_patterns("*.log", "run.json"), dirs_exist_ok=True)
    return hit


def _seed_into(cache_dir: Path, key: str, *, scale: str, seed: int, systems: Sequence[str], timeout: float) -> None:
    building = cache_dir / f".building-{key}-{secrets.token_hex(3)}"
    building.mkdir(parents=True)
    try:
        ports = {name: control.free_port() for name in systems}
        configs = control.configs(building, systems=systems, ports=ports, seed=seed, scale=scale)
        processes: list[control.SandboxProcess] = []
        try:
            for config in configs:
                processes.append(control.start(config, detach=False))
            control.wait_healthy(processes, timeout, interval=1.0)
        finally:
            # A clean stop checkpoints SQLite's write-ahead log into the database files.
            control.stop(processes)
        try:
            building.rename(cache_dir / key)
        except OSError:
            if not (cache_dir / key).is_dir():
                raise
            shutil.rmtree(building, ignore_errors=True)  # another run seeded the same book meanwhile
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    logger.info("seeded the %s book into %s", scale, cache_dir / key)


def _drop_older(cache_dir: Path, *, keep: str, prefix: str) -> None:
    for folder in cache_dir.iterdir():
        if folder.is_dir() and folder.name.startswith(prefix) and folder.name != keep:
            shutil.rmtree(folder, ignore_errors=True)
