"""Heartbeats of the warm sync loops, so Dagster's sensors know whether a loop is moving changes already.

A running :class:`revloop.cycle.SyncLoop` beats every few seconds (``sync.loop_heartbeats``, one row per
loop). Dagster's safety-net sensor starts a sync run only when no loop has beaten recently: with a live
loop the change has already moved, and a second load of the same system would only meet its lock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
from typing import Any

import psycopg

DDL = """
create schema if not exists sync;
create table if not exists sync.loop_heartbeats (
    name        text primary key,
    host        text not null,
    pid         integer not null,
    started_at  timestamptz not null,
    beat_at     timestamptz not null,
    cycles      bigint not null default 0,
    stopped_at  timestamptz
);
comment on table sync.loop_heartbeats is
    'One row per warm sync loop (revloop sync): when it last beat; stopped_at is set on a clean stop.';
"""

LIVE_WITHIN_SECONDS = 30.0
"""A loop that has not beaten for this long is taken as gone (it beats every few seconds while alive)."""


@dataclasses.dataclass(frozen=True)
class LoopBeat:
    """The last heartbeat of one loop."""

    name: str
    host: str
    pid: int
    started_at: dt.datetime
    beat_at: dt.datetime
    cycles: int
    stopped_at: dt.datetime | None

    def age_seconds(self, now: dt.datetime) -> float:
        return (now - self.beat_at).total_seconds()


def ensure_schema(database_url: str) -> None:
    """Create ``sync.loop_heartbeats`` if missing (idempotent)."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtextextended('revloop.sync.heartbeat', 0))")
        conn.execute(DDL)


def loop_name() -> str:
    """This process's loop name: ``sync:<host>:<pid>``."""
    return f"sync:{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Beats for one loop, at most every ``every_seconds`` (cheap to call on every cycle)."""

    def __init__(self, database_url: str, name: str | None = None, every_seconds: float = 5.0) -> None:
        self.database_url = database_url
        self.name = name or loop_name()
        self.every_seconds = every_seconds
        self._last: float = float("-inf")
        self._started = dt.datetime.now(dt.UTC)
        ensure_schema(database_url)

    def beat(self, cycles: int, *, now: float) -> bool:
        """Record a beat unless one was recorded less than ``every_seconds`` ago; True when recorded."""
        if now - self._last < self.every_seconds:
            return False
        self._write(cycles, stopped=False)
        self._last = now
        return True

    def stopped(self, cycles: int) -> None:
        """Mark the loop stopped (a clean exit), so sensors take over at once rather than after the timeout."""
        self._write(cycles, stopped=True)

    def _write(self, cycles: int, *, stopped: bool) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                """insert into sync.loop_heartbeats (name, host, pid, started_at, beat_at, cycles, stopped_at)
                   values (%(name)s, %(host)s, %(pid)s, %(started)s, now(), %(cycles)s,
                           case when %(stopped)s then now() end)
                   on conflict (name) do update set beat_at = now(), cycles = excluded.cycles,
                       stopped_at = excluded.stopped_at""",
                {"name": self.name, "host": socket.gethostname(), "pid": os.getpid(), "started": self._started,
                 "cycles": cycles, "stopped": stopped},
            )


def live_loops(conn: psycopg.Connection[Any], within_seconds: float = LIVE_WITHIN_SECONDS) -> list[LoopBeat]:
    """Loops that beat within ``within_seconds`` and did not stop (none when the table does not exist yet)."""
    exists = conn.execute("select to_regclass('sync.loop_heartbeats')").fetchone()
    if not exists or exists[0] is None:
        return []
    rows = conn.execute(
        """select name, host, pid, started_at, beat_at, cycles, stopped_at from sync.loop_heartbeats
           where stopped_at is null and beat_at > now() - make_interval(secs => %s)
           order by beat_at desc""",
        (within_seconds,),
    ).fetchall()
    return [LoopBeat(*row) for row in rows]
