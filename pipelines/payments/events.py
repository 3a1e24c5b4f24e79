"""Applying the events feed: the newest snapshot of each object wins, whatever order events arrive in.

Pure functions, so duplicated, reordered and stale events are table-tested without a server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipelines.payments.tables import Versioned


@dataclasses.dataclass
class FeedChanges:
    """What one stretch of the events feed says about the loaded objects."""

    snapshots: dict[str, dict[str, Versioned]] = dataclasses.field(default_factory=dict)
    """table -> object id -> the newest snapshot of that object in the stretch."""
    refetch: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    """table -> id of an object to read again (a child changed without an event of the object itself) ->
    the ``created`` of the newest such child event."""
    events: list[Mapping[str, Any]] = dataclasses.field(default_factory=list)
    """Every distinct event, oldest first."""
    duplicates: int = 0
    """Events seen more than once (the same id twice in the stretch)."""

    @property
    def newest_created(self) -> int | None:
        return max((int(e["created"]) for e in self.events), default=None)


def _order(events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Oldest first by ``created``; within one second, by the feed's order (the feed lists newest first).

    Stripe's event ids are random, so they cannot break ties; the position in one read of the feed can.
    """
    positioned = sorted(enumerate(events), key=lambda pair: (int(pair[1]["created"]), -pair[0]))
    return [event for _, event in positioned]


def changes_from_feed(
    events: Sequence[Mapping[str, Any]], tables: Iterable[str], refetch_parents: Mapping[str, str]
) -> FeedChanges:
    """Fold ``events`` (as read from ``/v1/events``: newest first) into the newest state per object.

    Args:
        events: the events, in feed order; duplicates and out-of-order entries are tolerated.
        tables: object types loaded as tables (``data.object.object`` names the table).
        refetch_parents: object types not loaded themselves whose events change a loaded parent
            (``invoiceitem`` -> ``invoice``, found in the object's attribute of that name).
    """
    tracked = set(tables)
    changes = FeedChanges()
    seen: set[str] = set()
    unique = []
    for event in events:
        if event["id"] in seen:
            changes.duplicates += 1
            continue
        seen.add(event["id"])
        unique.append(event)
    for event in _order(unique):
        changes.events.append(event)
        obj = (event.get("data") or {}).get("object") or {}
        kind = obj.get("object")
        object_id = obj.get("id")
        if not isinstance(object_id, str):
            continue
        if kind in tracked:
            deleted = str(event.get("type", "")).endswith(".deleted") or bool(obj.get("deleted"))
            changes.snapshots.setdefault(kind, {})[object_id] = Versioned(
                obj, int(event["created"]), event_id=event["id"], deleted=deleted
            )
        elif isinstance(kind, str) and kind in refetch_parents:
            parent_table = refetch_parents[kind]
            parent_id = obj.get(parent_table)
            if isinstance(parent_id, str):
                parents = changes.refetch.setdefault(parent_table, {})
                parents[parent_id] = max(parents.get(parent_id, 0), int(event["created"]))
    return changes


def stale_parents(refetch: Mapping[str, int], known: Mapping[str, int]) -> list[str]:
    """The parents of ``refetch`` (``id -> newest child event``) that no snapshot at hand reflects yet.

    ``known`` holds, per id, the ``observed_at`` of the newest snapshot already stored or folded from this
    stretch of the feed. A snapshot observed at ``t`` reflects every event created before ``t``; an event of
    the same second may not be in it, so only a strictly later snapshot spares the read. Without this, each
    cycle would read again every parent of the child events its overlap window re-reads.
    """
    return sorted(object_id for object_id, child_created in refetch.items()
                  if known.get(object_id, -1) <= child_created)


def newer_than_stored(
    snapshots: Mapping[str, Versioned], stored: Mapping[str, tuple[int, str | None]]
) -> list[Versioned]:
    """The snapshots newer than the version already in the warehouse (``id -> (observed_at, event id)``).

    A tie on ``observed_at`` goes to the incoming snapshot (it was folded from a read of the feed that
    covered the whole second of the stored one, since the overlap window re-reads it), unless it is the
    very event already applied: re-reading the overlap window then rewrites nothing.
    """
    fresh = []
    for object_id, snapshot in snapshots.items():
        observed_at, event_id = stored.get(object_id, (-1, None))
        if snapshot.observed_at > observed_at or (
            snapshot.observed_at == observed_at and (snapshot.event_id is None or snapshot.event_id != event_id)
        ):
            fresh.append(snapshot)
    return fresh
