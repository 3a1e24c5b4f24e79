"""The shared retry policy: transient errors are retried with backoff, a stopping process ends the wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from pipelines.common.retry import process_stopping, retrying


@pytest.fixture
def stop_flag() -> Iterator[threading.Event]:
    process_stopping.clear()
    yield process_stopping
    process_stopping.clear()


def test_a_transient_error_is_retried_until_the_call_succeeds(stop_flag: threading.Event) -> None:
    calls: list[float] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError("dropped")
        return "ok"

    assert retrying(lambda exc: isinstance(exc, ConnectionError), base_seconds=0.01)(flaky) == "ok"
    assert len(calls) == 3


def test_a_permanent_error_is_raised_at_once(stop_flag: threading.Event) -> None:
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise ValueError("bad request")

    with pytest.raises(ValueError, match="bad request"):
        retrying(lambda exc: isinstance(exc, ConnectionError), base_seconds=0.01)(refused)
    assert calls == [1]


def test_a_stopping_process_ends_the_backoff_with_the_error_it_was_waiting_out(stop_flag: threading.Event) -> None:
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise ConnectionError("connection refused")

    threading.Timer(0.3, stop_flag.set).start()
    started = time.monotonic()
    # backoff of up to 30 s per attempt: without the stop this would wait minutes
    with pytest.raises(ConnectionError, match="connection refused"):
        retrying(lambda exc: True, base_seconds=30, max_wait_seconds=30)(down)
    assert time.monotonic() - started < 5
    assert len(calls) <= 2
