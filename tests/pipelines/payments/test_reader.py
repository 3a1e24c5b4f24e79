"""The payments reader: its pace within Stripe's read rate limit (on a fake clock) and reading streamed bodies."""

from __future__ import annotations

import gzip
import io

import pytest
import stripe
import urllib3

from pipelines.payments.helpers import RequestPacer, is_transient, read_whole


class FakeClock:
    """Time that only moves when the pacer sleeps or the test says so."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def pacer_on(clock: FakeClock, per_second: float = 100) -> RequestPacer:
    return RequestPacer(per_second, clock=clock, sleep=clock.sleep)


def test_a_second_worth_of_requests_goes_at_once_when_the_reader_was_idle() -> None:
    clock = FakeClock()
    pacer = pacer_on(clock)
    for _ in range(100):
        pacer.acquire()
    assert clock.sleeps == []
    pacer.acquire()
    assert clock.sleeps == [pytest.approx(0.01)]


def test_a_long_run_of_requests_keeps_to_the_pace_when_it_outlasts_the_burst() -> None:
    clock = FakeClock()
    pacer = pacer_on(clock)
    for _ in range(1_100):
        pacer.acquire()
    # 100 at once, then one every 10 ms: 1,000 more take 10 s, never fewer.
    assert clock.now == pytest.approx(10.0)
    assert pacer.seconds_waited == pytest.approx(10.0)


def test_the_bucket_refills_with_time_when_requests_pause() -> None:
    clock = FakeClock()
    pacer = pacer_on(clock)
    for _ in range(100):
        pacer.acquire()
    clock.now += 0.5
    for _ in range(50):
        pacer.acquire()
    assert clock.sleeps == []
    clock.now += 60  # a long pause refills one second's worth, no more
    for _ in range(101):
        pacer.acquire()
    assert len(clock.sleeps) == 1


class _DroppedAfter(io.RawIOBase):
    """A socket's file that gives ``data`` and then finds the connection reset."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if not self.data:
            raise ConnectionResetError("connection reset by peer")
        size = min(len(buffer), len(self.data))
        buffer[:size], self.data = self.data[:size], self.data[size:]
        return size


def test_streamed_body_is_read_whole_and_decompressed_when_gzipped() -> None:
    body = b'{"object":"list","data":[],"has_more":false}'
    response = urllib3.HTTPResponse(body=io.BytesIO(gzip.compress(body)), headers={"Content-Encoding": "gzip"},
                                    status=200, preload_content=False, decode_content=False)
    assert read_whole(response) == body


def test_lost_connection_while_reading_is_a_transient_sdk_error_when_the_body_is_cut() -> None:
    response = urllib3.HTTPResponse(body=_DroppedAfter(b'{"object":"li'), headers={"Content-Length": "400"},
                                    status=200, preload_content=False)
    with pytest.raises(stripe.APIConnectionError) as raised:
        read_whole(response)
    assert is_transient(raised.value)
