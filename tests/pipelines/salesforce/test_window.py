"""The overlap window's versions: unchanged re-reads are dropped, changed ones and new ones kept."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from pipelines.salesforce.window import RecentVersions

T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
STAMP = pa.timestamp("us", tz="UTC")
OVERLAP = dt.timedelta(minutes=5)


def _page(rows: list[tuple[str, dt.datetime]]) -> pa.Table:
    return pa.table({"id": [r[0] for r in rows], "system_modstamp": pa.array([r[1] for r in rows], STAMP)})


def _first_run_state(cap: int = 10) -> list[str]:
    window = RecentVersions(None, OVERLAP, cap)
    page = _page([("a", T0), ("b", T0 - dt.timedelta(minutes=10)), ("c", T0 - dt.timedelta(minutes=1))])
    assert window.unchanged_dropped(page, "system_modstamp", skip=True).num_rows == 3
    return window.state(None)


def test_state_keeps_only_versions_inside_the_overlap_when_a_run_ends() -> None:
    state = _first_run_state()
    assert len(state) == 2 and not any(key.startswith("b|") for key in state)


def test_unchanged_reread_is_dropped_and_changed_one_kept_when_the_window_is_read_again() -> None:
    window = RecentVersions(_first_run_state(), OVERLAP, 10)
    page = _page([("a", T0), ("c", T0 + dt.timedelta(seconds=1)), ("d", T0 + dt.timedelta(seconds=2))])
    kept = window.unchanged_dropped(page, "system_modstamp", skip=True)
    assert kept.column("id").to_pylist() == ["c", "d"] and window.skipped == 1


def test_nothing_is_dropped_when_skipping_is_off_for_a_backfill_or_resync() -> None:
    window = RecentVersions(_first_run_state(), OVERLAP, 10)
    page = _page([("a", T0)])
    assert window.unchanged_dropped(page, "system_modstamp", skip=False).num_rows == 1


def test_no_versions_are_kept_when_the_window_holds_more_than_the_cap() -> None:
    window = RecentVersions(None, OVERLAP, 2)
    page = _page([(f"id{n}", T0 - dt.timedelta(seconds=n)) for n in range(10)])
    window.unchanged_dropped(page, "system_modstamp", skip=True)
    assert window.state(None) == []


def test_previous_versions_are_kept_when_a_run_reads_nothing() -> None:
    state = _first_run_state()
    assert RecentVersions(state, OVERLAP, 10).state(state) == state
