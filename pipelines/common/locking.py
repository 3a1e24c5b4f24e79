"""One load per pipeline at a time, across processes and machines (a PostgreSQL advisory lock)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from revloop.locking import LockBusy, advisory_lock, holder_name


class PipelineBusy(LockBusy):
    """Another process is running the same pipeline."""


@contextlib.contextmanager
def pipeline_lock(database_url: str, name: str) -> Iterator[None]:
    """Hold the lock of pipeline ``name`` for the duration of the block, or raise :class:`PipelineBusy`."""
    with advisory_lock(database_url, f"revloop.pipeline.{name}", holder=holder_name("revloop-load", name),
                       busy=PipelineBusy,
                       busy_message=f"the {name!r} load is already running ({{who}}); try again when it finishes"):
        yield
