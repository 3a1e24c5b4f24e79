"""One load per pipeline at a time, across processes and machines: a PostgreSQL advisory lock."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

import psycopg


class PipelineBusy(RuntimeError):
    """Another process is running the same pipeline."""


def _key(name: str) -> str:
    return f"revloop.pipeline.{name}"


@contextlib.contextmanager
def pipeline_lock(database_url: str, name: str) -> Iterator[None]:
    """Hold the lock of pipeline ``name`` for the duration of the block, or raise :class:`PipelineBusy`.

    The lock lives in a session of its own, so it is released even if this process dies (the server ends
    the session), and the holder is named by its ``application_name`` for the loser's message.
    """
    holder = f"revloop-load:{name}:{socket.gethostname()}:{os.getpid()}"
    conn = psycopg.connect(database_url, autocommit=True, application_name=holder[:63])
    try:
        got = conn.execute("select pg_try_advisory_lock(hashtextextended(%s, 0))", (_key(name),)).fetchone()
        if not got or not got[0]:
            row = conn.execute(
                """select a.application_name, a.backend_start
                   from pg_locks l join pg_stat_activity a on a.pid = l.pid
                   where l.locktype = 'advisory' and l.granted
                     and ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(%s, 0)
                   limit 1""",
                (_key(name),),
            ).fetchone()
            who = f"{row[0]} since {row[1]:%Y-%m-%d %H:%M:%S %Z}" if row else "another session"
            raise PipelineBusy(f"the {name!r} load is already running ({who}); try again when it finishes")
        try:
            yield
        finally:
            # Release explicitly: the server ends a closed session's backend (and its locks) a moment
            # after the client goes, so a load started right after this one could still find it held.
            with contextlib.suppress(psycopg.Error):
                conn.execute("select pg_advisory_unlock(hashtextextended(%s, 0))", (_key(name),))
    finally:
        conn.close()
