"""Wall time and peak resident memory of a group of process trees, sampled from ``/proc``.

A peer is often several processes (a tap piped into a target, a connector's worker threads and children),
so the peak is the largest sum of the resident set sizes of every live process descended from the roots,
sampled a few times a second. Reading ``/proc`` keeps this free of extra dependencies; on systems without
it the peak is reported as ``None``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

_PROC = Path("/proc")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _parent_and_rss() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, resident bytes) for every process we may read."""
    table: dict[int, tuple[int, int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            statm = (entry / "statm").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its closing one.
        fields = stat[stat.rfind(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), int(statm.split()[1]) * _PAGE_SIZE)
    return table


def tree_rss(roots: Iterable[int]) -> int:
    """Resident bytes of the given processes and all their descendants, now."""
    table = _parent_and_rss()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, stack, seen = 0, [pid for pid in roots if pid in table], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += table[pid][1]
        stack.extend(children.get(pid, ()))
    return total


class PeakMemory:
    """Samples the resident memory of process trees in a background thread; ``peak_bytes`` is the maximum."""

    def __init__(self, interval_seconds: float = 0.25) -> None:
        self.interval_seconds = interval_seconds
        self.roots: list[int] = []
        self.peak_bytes: int | None = None if not _PROC.exists() else 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)

    def watch(self, pid: int) -> None:
        """Add a process (and, from then on, its descendants) to the group measured."""
        self.roots.append(pid)

    def __enter__(self) -> PeakMemory:
        if self.peak_bytes is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _sample(self) -> None:
        while not self._stop.is_set():
            if self.roots:
                current = tree_rss(list(self.roots))
                self.peak_bytes = max(self.peak_bytes or 0, current)
            self._stop.wait(self.interval_seconds)


class Stopwatch:
    """Wall-clock seconds of a ``with`` block."""

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self.started
