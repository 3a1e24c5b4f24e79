"""What a peer run produced, per stream and overall, and how it is written out."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class StreamResult:
    """One stream of one peer: what the peer emitted, what landed, what the sandbox holds."""

    stream: str
    emitted: int = 0
    loaded: int | None = None
    """Rows in PostgreSQL (distinct primary keys for Airbyte, whose raw tables append)."""
    expected: int | None = None
    """The sandbox's own count of the object this stream reads; None when it has no such object."""

    @property
    def verdict(self) -> str:
        if self.expected is None:
            return "no sandbox object"
        landed = self.loaded if self.loaded is not None else self.emitted
        if landed == self.expected:
            return "match"
        return "short" if landed < self.expected else "over"


@dataclasses.dataclass
class PeerResult:
    """One peer's run against its sandbox."""

    peer: str
    system: str
    kind: str
    """``airbyte``, ``singer`` or ``revloop``."""
    notes: str = ""
    round: int = 1
    succeeded: bool = False
    timed_out: bool = False
    """Stopped at the time budget; the counts are what it had loaded by then."""
    exit_codes: dict[str, int | None] = dataclasses.field(default_factory=dict)
    discover_seconds: float = 0.0
    sync_seconds: float = 0.0
    peak_rss_bytes: int | None = None
    streams: dict[str, StreamResult] = dataclasses.field(default_factory=dict)
    streams_not_selected: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    sandbox_requests: dict[str, Any] = dataclasses.field(default_factory=dict)
    logs: dict[str, str] = dataclasses.field(default_factory=dict)
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)
    """What the run did that the counts do not show (Bulk API 2.0 jobs created, rows quarantined...)."""

    @property
    def records(self) -> int:
        return sum(s.emitted for s in self.streams.values())

    @property
    def loaded(self) -> int:
        return sum(s.loaded or 0 for s in self.streams.values())

    @property
    def records_per_second(self) -> float | None:
        return self.records / self.sync_seconds if self.sync_seconds > 0 else None

    @property
    def complete(self) -> bool:
        """Every stream with a sandbox object landed exactly the sandbox's count."""
        return all(s.verdict == "match" for s in self.streams.values() if s.expected is not None)

    def stream(self, name: str) -> StreamResult:
        return self.streams.setdefault(name, StreamResult(name))

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["streams"] = [
            {**dataclasses.asdict(s), "verdict": s.verdict}
            for s in sorted(self.streams.values(), key=lambda s: s.stream)
        ]
        data.update(records=self.records, loaded=self.loaded, records_per_second=self.records_per_second)
        return data
