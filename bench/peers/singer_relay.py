"""Pipes a Singer tap's stdout into its target, counting the records of each stream on the way.

The target upserts by key, so what lands in PostgreSQL can be fewer rows than the tap emitted (a tap that
re-reads overlapping date windows, for example); the report shows both. Counting peeks at each line's
start instead of parsing every record, to keep the relay cheap next to the tap and the target.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from typing import IO

import orjson

_RECORD_MARKERS = (b'"type": "RECORD"', b'"type":"RECORD"')
_STREAM_KEYS = (b'"stream": "', b'"stream":"')


@dataclasses.dataclass
class SingerRelayResult:
    records: Counter[str] = dataclasses.field(default_factory=Counter)
    states: int = 0
    last_state: dict[str, object] | None = None
    broken_pipe: bool = False


def _stream_of(line: bytes) -> str:
    for key in _STREAM_KEYS:
        start = line.find(key)
        if start != -1:
            start += len(key)
            return line[start : line.index(b'"', start)].decode()
    return str(orjson.loads(line).get("stream", "?"))


def relay(source: IO[bytes], sink: IO[bytes]) -> SingerRelayResult:
    """Copy every line of ``source`` to ``sink``; stops early if the target goes away."""
    result = SingerRelayResult()
    for line in source:
        head = line[:40]
        if any(marker in head for marker in _RECORD_MARKERS):
            result.records[_stream_of(line)] += 1
        elif b"STATE" in head:
            result.states += 1
            with contextlib.suppress(orjson.JSONDecodeError):
                result.last_state = orjson.loads(line).get("value")
        if not result.broken_pipe:
            try:
                sink.write(line)
            except BrokenPipeError:
                # Keep draining the tap so it is not blocked; the target's exit code tells the story.
                result.broken_pipe = True
    try:
        sink.close()
    except BrokenPipeError:
        result.broken_pipe = True
    return result
