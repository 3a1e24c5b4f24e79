"""The overlap window's versions: rows re-read unchanged are skipped instead of merged again.

Each run re-reads ``SystemModstamp >= cursor - OVERLAP`` on purpose (late commits). ``SystemModstamp``
moves on every write (a delete included), so a re-read row with the same ``(Id, SystemModstamp)`` as one
already loaded is the very version the warehouse holds: dropping it changes nothing but the cost. The
versions read within the overlap of the newest stamp are kept in the resource state (committed with the
load, so they describe loaded rows only), up to a cap; past the cap nothing is kept and the next run
merges its re-reads as before.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def _keys(table: pa.Table, cursor_column: str) -> pa.Array:
    """``"<id>|<stamp in microseconds>"`` per row (null where the stamp is missing)."""
    micros = pc.cast(pc.cast(table.column(cursor_column), pa.timestamp("us", tz="UTC")), pa.int64())
    return pc.binary_join_element_wise(table.column("id"), pc.cast(micros, pa.string()), "|")


def _micros(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


class RecentVersions:
    """What one run read within ``overlap`` of its newest stamp, and what the previous run left."""

    def __init__(self, previous: list[str] | None, overlap: dt.timedelta, cap: int) -> None:
        self.previous = pa.array(previous or [], pa.string())
        self.overlap_micros = int(overlap.total_seconds() * 1_000_000)
        self.cap = cap
        self.skipped = 0
        self._newest: int | None = None
        self._recent: dict[str, int] = {}
        self._overflow = False

    def unchanged_dropped(self, table: pa.Table, cursor_column: str, *, skip: bool) -> pa.Table:
        """Remember the table's versions near the newest stamp; without the rows already loaded if ``skip``."""
        if not table.num_rows:
            return table
        keys = _keys(table, cursor_column)
        self._remember(table, keys, cursor_column)
        if not skip or not len(self.previous):
            return table
        fresh = pc.invert(pc.fill_null(pc.is_in(keys, value_set=self.previous), False))
        kept = table.filter(fresh)
        self.skipped += table.num_rows - kept.num_rows
        return kept

    def _remember(self, table: pa.Table, keys: pa.Array, cursor_column: str) -> None:
        if self._overflow:
            return
        page_newest = pc.max(table.column(cursor_column)).as_py()
        if page_newest is not None and (self._newest is None or _micros(page_newest) > self._newest):
            self._newest = _micros(page_newest)
        if self._newest is None:
            return
        floor = self._newest - self.overlap_micros
        micros = pc.cast(pc.cast(table.column(cursor_column), pa.timestamp("us", tz="UTC")), pa.int64())
        near = pc.fill_null(pc.greater_equal(micros, floor), False)
        for key, stamp in zip(keys.filter(near).to_pylist(), micros.filter(near).to_pylist(), strict=True):
            self._recent[key] = stamp
        if len(self._recent) > 2 * self.cap:
            self._prune()
            if len(self._recent) > self.cap:
                self._overflow = True  # too many to be worth keeping: the next run merges its re-reads
                self._recent = {}

    def _prune(self) -> None:
        if self._newest is not None:
            floor = self._newest - self.overlap_micros
            self._recent = {k: s for k, s in self._recent.items() if s >= floor}

    def state(self, previous_if_nothing_read: list[str] | None) -> list[str]:
        """The versions for the next run (the previous ones when this run read nothing)."""
        if self._newest is None:
            return list(previous_if_nothing_read or [])
        if self._overflow:
            return []
        self._prune()
        return [] if len(self._recent) > self.cap else sorted(self._recent)


def recent_state(value: Any) -> list[str] | None:
    """The stored versions, tolerating a state written before they were kept."""
    return [str(v) for v in value] if isinstance(value, list) else None
