"""Where check results live: ``quality.check_runs``, one row per check per run, so trends can be queried.

Kept in the warehouse next to the data they judge (any machine sees the same history), written with
psycopg rather than through Great Expectations, whose stores are files or its cloud.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

DDL = """
create schema if not exists quality;
create table if not exists quality.check_runs (
    run_id           text not null,
    check_name       text not null,
    suite            text not null,
    severity         text not null,
    asset_keys       jsonb not null,
    status           text not null,            -- passed, failed, not_run
    success          boolean,                  -- null when not run
    unexpected_count bigint,
    sample           jsonb not null default '[]'::jsonb,
    detail           text,
    started_at       timestamptz not null,
    duration_seconds double precision not null,
    primary key (run_id, check_name)
);
create index if not exists check_runs_latest on quality.check_runs (check_name, started_at desc);
"""

SAMPLE_SIZE = 50
"""Offending rows kept per check and run: enough to act on, small enough to keep every run."""


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one check in one run."""

    run_id: str
    check_name: str
    suite: str
    severity: str
    asset_keys: tuple[tuple[str, ...], ...]
    status: str
    """``passed``, ``failed`` or ``not_run`` (a relation it reads does not exist yet)."""
    unexpected_count: int | None
    sample: tuple[dict[str, Any], ...]
    """The first offending rows: ids from each system and the differences."""
    started_at: dt.datetime
    duration_seconds: float
    detail: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def blocking(self) -> bool:
        return self.failed and self.severity == "error"


def ensure_schema(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        _create(conn)


def _create(conn: psycopg.Connection) -> None:
    """Create the results table if missing; concurrent "if not exists" DDL can collide, so take turns."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtextextended('revloop.quality.schema', 0))")
        conn.execute(DDL)


def store(database_url: str, results: Iterable[CheckResult]) -> None:
    """Append one run's results (one transaction: a run is stored whole or not at all)."""
    rows = [
        (
            r.run_id, r.check_name, r.suite, r.severity, json.dumps([list(k) for k in r.asset_keys]), r.status,
            None if r.status == "not_run" else r.status == "passed", r.unexpected_count,
            json.dumps(list(r.sample[:SAMPLE_SIZE]), default=str), r.detail, r.started_at, r.duration_seconds,
        )
        for r in results
    ]
    with psycopg.connect(database_url) as conn:
        _create(conn)
        with conn.cursor() as cur:
            cur.executemany(
                "insert into quality.check_runs (run_id, check_name, suite, severity, asset_keys, status, success,"
                " unexpected_count, sample, detail, started_at, duration_seconds)"
                " values (%s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s::jsonb, %s, %s, %s)",
                rows,
            )


def latest(database_url: str, check_names: Sequence[str] | None = None) -> list[CheckResult]:
    """The most recent result of each check (of the given ones, or all), in check-name order."""
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        _create(conn)  # type: ignore[arg-type]
        rows = conn.execute(
            "select distinct on (check_name) * from quality.check_runs"
            " where %(names)s::text[] is null or check_name = any(%(names)s::text[])"
            " order by check_name, started_at desc, run_id desc",
            {"names": list(check_names) if check_names is not None else None},
        ).fetchall()
    return [
        CheckResult(
            run_id=row["run_id"], check_name=row["check_name"], suite=row["suite"], severity=row["severity"],
            asset_keys=tuple(tuple(k) for k in row["asset_keys"]), status=row["status"],
            unexpected_count=row["unexpected_count"], sample=tuple(row["sample"]), started_at=row["started_at"],
            duration_seconds=row["duration_seconds"], detail=row["detail"],
        )
        for row in rows
    ]
