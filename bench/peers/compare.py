"""Revloop against the best peer of each system: medians over rounds, and the ratios the issue asks for.

The best peer of a system is the one with the lowest median sync time. A peer stopped at the time budget
is ranked by its projected time: the budget scaled by the share of the sandbox's records it had loaded
(``projected_seconds``; flagged as such wherever it is used). The best *complete* peer is the fastest one
that also landed every compared stream in full. The time compared for a peer is its sync alone (its
``discover`` step excluded), while Revloop's time includes its own discovery (``describe``) and process
start: the ratio is the strict one. Ratios against the peers' discover + sync are given as well.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from bench.common import median
from bench.peers import catalog as catalogs
from bench.peers.results import PeerResult

REVLOOP = "revloop"


@dataclasses.dataclass
class Standing:
    """One participant on one system, over its rounds."""

    participant: str
    system: str
    rounds: int
    seconds: float
    """Median sync wall seconds."""
    end_to_end_seconds: float
    """Median discover + sync seconds (equal to ``seconds`` for Revloop, which has no separate step)."""
    records: int
    """Records of the last round (emitted by the peer; rows written for Revloop)."""
    records_per_second: float | None
    peak_rss_mib: float | None
    ran_to_end: bool
    """Every round exited 0 within the time budget."""
    timed_out: bool
    nothing_missing: bool
    """Every round landed each compared stream's full sandbox count."""
    compared_streams: list[str]
    missing: dict[str, str]
    """Stream -> ``landed/sandbox`` where short, in the last round."""
    projected_seconds: float | None = None
    """``seconds`` when it ran to the end; for a run stopped at the budget, the time it would have needed
    at the rate it had reached (compared streams' sandbox records / records landed x seconds)."""

    @property
    def ranking_seconds(self) -> float:
        return self.projected_seconds if self.projected_seconds is not None else self.seconds

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Comparison:
    """Revloop and the best peer on one system."""

    system: str
    revloop: Standing | None
    best_peer: Standing | None
    best_complete_peer: Standing | None
    standings: list[Standing]

    @property
    def best_peer_projected(self) -> bool:
        return self.best_peer is not None and not self.best_peer.ran_to_end

    @property
    def time_ratio(self) -> float | None:
        """Revloop seconds / best peer's sync seconds (at most 0.5 meets the goal of 2x faster)."""
        return self._ratio_to(self.best_peer)

    @property
    def time_ratio_to_complete_peer(self) -> float | None:
        return self._ratio_to(self.best_complete_peer)

    def _ratio_to(self, peer: Standing | None) -> float | None:
        if self.revloop is None or self.revloop.projected_seconds is None or peer is None or not peer.ranking_seconds:
            return None
        return self.revloop.ranking_seconds / peer.ranking_seconds

    @property
    def end_to_end_time_ratio(self) -> float | None:
        ratio = self.time_ratio
        if ratio is None or self.revloop is None or self.best_peer is None:
            return None
        extra = self.best_peer.end_to_end_seconds - self.best_peer.seconds
        return self.revloop.ranking_seconds / (self.best_peer.ranking_seconds + extra)

    @property
    def rate_ratio(self) -> float | None:
        """Revloop records/s / best peer's records/s."""
        if self.revloop is None or self.best_peer is None:
            return None
        mine, theirs = self.revloop.records_per_second, self.best_peer.records_per_second
        return mine / theirs if mine and theirs else None

    @property
    def goal_met(self) -> bool | None:
        """At least 2x faster than the best peer, with nothing missing."""
        ratio = self.time_ratio
        if ratio is None or self.revloop is None:
            return None
        return ratio <= 0.5 and self.revloop.nothing_missing and self.revloop.ran_to_end

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "best_peer": self.best_peer.participant if self.best_peer else None,
            "best_peer_time_projected": self.best_peer_projected,
            "best_complete_peer": self.best_complete_peer.participant if self.best_complete_peer else None,
            "time_ratio_revloop_over_best_peer_sync": self.time_ratio,
            "time_ratio_revloop_over_best_complete_peer_sync": self.time_ratio_to_complete_peer,
            "time_ratio_revloop_over_best_peer_discover_and_sync": self.end_to_end_time_ratio,
            "records_per_second_ratio_revloop_over_best_peer": self.rate_ratio,
            "goal_2x_faster_nothing_missing": self.goal_met,
            "standings": [s.to_json() for s in self.standings],
        }


def _median_or_none(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return median(present) if present else None


def standing(rounds: Sequence[PeerResult], revloop_keys: set[str]) -> Standing:
    """Medians of one participant's rounds; compared streams are those Revloop also loads."""
    last = rounds[-1]
    compared = sorted(s for s in last.streams if catalogs.comparable(s) in revloop_keys)

    def complete(result: PeerResult) -> bool:
        return all(
            result.streams[name].verdict in ("match", "no sandbox object")
            for name in compared if name in result.streams
        )

    missing = {
        name: f"{stream.loaded or 0:,}/{stream.expected:,}"
        for name in compared
        if (stream := last.streams[name]).verdict == "short" and stream.expected is not None
    }
    rss = _median_or_none(r.peak_rss_bytes for r in rounds)
    seconds = median([r.sync_seconds for r in rounds])
    ran_to_end = all(r.succeeded for r in rounds)
    projected: float | None = seconds
    if not ran_to_end and any(r.timed_out for r in rounds):
        wanted = sum(last.streams[n].expected or 0 for n in compared)
        landed = sum(min(last.streams[n].loaded or 0, last.streams[n].expected or 0) for n in compared)
        projected = last.sync_seconds * wanted / landed if landed else None
    elif not ran_to_end:
        projected = None
    return Standing(
        participant=last.peer,
        system=last.system,
        rounds=len(rounds),
        seconds=seconds,
        end_to_end_seconds=median([r.discover_seconds + r.sync_seconds for r in rounds]),
        records=last.records,
        records_per_second=_median_or_none(r.records_per_second for r in rounds),
        peak_rss_mib=None if rss is None else rss / 2**20,
        ran_to_end=ran_to_end,
        timed_out=any(r.timed_out for r in rounds),
        nothing_missing=all(complete(r) for r in rounds),
        compared_streams=compared,
        missing=missing,
        projected_seconds=projected,
    )


def compare(results: Sequence[PeerResult], revloop_keys_by_system: dict[str, set[str]]) -> list[Comparison]:
    """One :class:`Comparison` per system that had Revloop or a peer in the run."""
    comparisons = []
    for system in sorted({r.system for r in results}):
        by_participant: dict[str, list[PeerResult]] = {}
        for result in results:
            if result.system == system:
                by_participant.setdefault(result.peer, []).append(result)
        keys = revloop_keys_by_system.get(system, set())
        standings = [standing(rounds, keys) for rounds in by_participant.values()]
        mine = next((s for s in standings if s.participant == REVLOOP), None)
        # A peer that failed outright (not stopped at the budget) has no time to rank.
        peers = [s for s in standings if s.participant != REVLOOP and s.projected_seconds is not None]
        complete = [s for s in peers if s.ran_to_end and s.nothing_missing]
        best = min(peers, key=lambda s: s.ranking_seconds) if peers else None
        best_complete = min(complete, key=lambda s: s.ranking_seconds) if complete else None
        comparisons.append(Comparison(system, mine, best, best_complete, standings))
    return comparisons
