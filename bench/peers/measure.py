"""Wall time and peak resident memory of a group of process trees, sampled from ``/proc``.

A peer is often several processes (a tap piped into a target, a connector's worker threads and children),
so the peak is the largest sum of the resident set sizes of every live process descended from the roots,
sampled a few times a second. Reading ``/proc`` keeps this free of extra dependencies; on systems without
it the peak is reported as ``None``.
"""

from __future__ import annotations

import contextlib
import os
import signal
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


class Deadline:
    """Stops process groups that outlive a time budget: a peer that would run for hours is cut off, and
    what it loaded until then is still counted.

    The processes must be started with ``start_new_session=True`` so that the group holds the peer and
    any children it spawned, and nothing else. ``SIGTERM`` first, ``SIGKILL`` after a grace period.
    """

    def __init__(self, seconds: float | None, grace_seconds: float = 10.0) -> None:
        self.seconds = seconds
        self.grace_seconds = grace_seconds
        self.expired = False
        self._groups: list[int] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._wait, name="deadline", daemon=True)

    def watch(self, pid: int) -> None:
        """Stop ``pid``'s process group (a session leader's pid is its group id) when the time is up."""
        self._groups.append(pid)

    def __enter__(self) -> Deadline:
        if self.seconds is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.grace_seconds + 5)

    def _wait(self) -> None:
        assert self.seconds is not None
        if self._done.wait(self.seconds):
            return
        self.expired = True
        self._signal(signal.SIGTERM)
        if not self._done.wait(self.grace_seconds):
            self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        for group in self._groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, sig)
