"""Named locks across processes and machines: PostgreSQL session-level advisory locks.

A lock lives in a connection of its own, so the server releases it if the holding process dies, and the
holder names itself in ``application_name`` so that the one who waits can be told who holds it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator

import psycopg


class LockBusy(RuntimeError):
    """Another session holds the lock (after waiting as long as asked)."""


_HOLDER_SQL = """select a.application_name, a.backend_start
                 from pg_locks l join pg_stat_activity a on a.pid = l.pid
                 where l.locktype = 'advisory' and l.granted
                   and ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(%s, 0)
                 limit 1"""


def holder_name(kind: str, name: str) -> str:
    """``<kind>:<name>:<host>:<pid>``, what a holder shows as its ``application_name``."""
    return f"{kind}:{name}:{socket.gethostname()}:{os.getpid()}"[:63]


@contextlib.contextmanager
def advisory_lock(database_url: str, key: str, *, holder: str, wait_seconds: float = 0.0,
                  busy: type[LockBusy] = LockBusy, busy_message: str = "{key} is held by {who}",
                  give_up: Callable[[], bool] | None = None) -> Iterator[None]:
    """Hold the advisory lock ``key`` for the duration of the block.

    Args:
        database_url: The warehouse whose lock it is.
        key: The lock's name (hashed to the 64-bit advisory key).
        holder: The ``application_name`` of the session that holds it.
        wait_seconds: How long to wait for a holder to finish before giving up (0: do not wait).
        busy: The exception raised when the lock stays held.
        busy_message: Its message; ``{key}`` and ``{who}`` (the holder and since when) are filled in.
        give_up: Asked while waiting; once true the wait ends as if ``wait_seconds`` had passed (a process
            that is stopping does not wait out another's build).
    """
    conn = psycopg.connect(database_url, autocommit=True, application_name=holder[:63])
    try:
        deadline = time.monotonic() + wait_seconds
        pause = 0.05
        while not _try_lock(conn, key):
            if time.monotonic() >= deadline or (give_up is not None and give_up()):
                row = conn.execute(_HOLDER_SQL, (key,)).fetchone()
                who = f"{row[0]} since {row[1]:%Y-%m-%d %H:%M:%S %Z}" if row else "another session"
                raise busy(busy_message.format(key=key, who=who))
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 1.0)
        try:
            yield
        finally:
            # Release explicitly: the server ends a closed session's backend (and its locks) a moment
            # after the client goes, so a holder starting right after this one could still find it held.
            with contextlib.suppress(psycopg.Error):
                conn.execute("select pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
    finally:
        conn.close()


def _try_lock(conn: psycopg.Connection, key: str) -> bool:
    row = conn.execute("select pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()
    return bool(row and row[0])
