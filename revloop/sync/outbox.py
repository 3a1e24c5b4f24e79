"""The outbox: intended writes recorded before delivery, claimed with a lease, settled after the target answers.

States: ``pending`` (due at ``next_attempt_at``) -> ``in_flight`` (claimed; the lease expires if the worker
dies, and the write becomes due again) -> ``delivered`` | ``pending`` (retry later) | ``parked`` (the target
refused it: a person must look) | ``dead`` (out of attempts). Claims use ``FOR UPDATE SKIP LOCKED`` so
several workers never deliver the same write at once; a write redelivered after a crash finds its record
through the target's idempotency mechanism instead of creating a second one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from revloop.crypto import FieldCipher
from revloop.sync.model import IntendedWrite

_PAYLOAD_FIELD = "sync.outbox.payload"


@dataclasses.dataclass(frozen=True)
class OutboxRow:
    id: int
    write: IntendedWrite
    attempts: int
    state: str


def enqueue(conn: psycopg.Connection, cipher: FieldCipher, write: IntendedWrite) -> tuple[int, bool]:
    """Record ``write`` unless its idempotency key is already there; returns (id, newly recorded)."""
    row = conn.execute(
        """insert into sync.outbox
               (flow, target_system, target_object, operation, idempotency_key, payload_enc, payload_hash, source_ref)
           values (%s, %s, %s, %s, %s, %s, %s, %s)
           on conflict (idempotency_key) do nothing
           returning id""",
        (
            write.flow, write.target_system, write.target_object, write.operation, write.idempotency_key,
            cipher.encrypt(json.dumps(write.payload, sort_keys=True, default=str), _PAYLOAD_FIELD),
            write.payload_hash, write.source_ref,
        ),
    ).fetchone()
    if row is not None:
        return int(row[0]), True
    existing = conn.execute(
        "select id from sync.outbox where idempotency_key = %s", (write.idempotency_key,)
    ).fetchone()
    assert existing is not None
    return int(existing[0]), False


def enqueue_many(conn: psycopg.Connection, cipher: FieldCipher, writes: Sequence[IntendedWrite]) -> set[str]:
    """Record ``writes`` in one statement, skipping idempotency keys already there; returns the new keys.

    Rows get ids in the order of ``writes`` (the worker delivers lower ids first, so a flow's customer write
    listed before its invoice write is delivered first).
    """
    if not writes:
        return set()
    rows = conn.execute(
        """insert into sync.outbox
               (flow, target_system, target_object, operation, idempotency_key, payload_enc, payload_hash, source_ref)
           select flow, target_system, target_object, operation, idempotency_key, payload_enc, payload_hash,
                  source_ref
           from unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
                with ordinality as w(flow, target_system, target_object, operation, idempotency_key, payload_enc,
                                     payload_hash, source_ref, position)
           order by position
           on conflict (idempotency_key) do nothing
           returning idempotency_key""",
        (
            [w.flow for w in writes], [w.target_system for w in writes], [w.target_object for w in writes],
            [w.operation for w in writes], [w.idempotency_key for w in writes],
            [cipher.encrypt(json.dumps(w.payload, sort_keys=True, default=str), _PAYLOAD_FIELD) for w in writes],
            [w.payload_hash for w in writes], [w.source_ref for w in writes],
        ),
    ).fetchall()
    return {str(row[0]) for row in rows}


def claim(conn: psycopg.Connection, cipher: FieldCipher, *, limit: int, lease_seconds: float,
          systems: tuple[str, ...] | None = None) -> list[OutboxRow]:
    """Take up to ``limit`` due writes (and writes whose lease ran out) for delivery."""
    rows = conn.execute(
        """with due as (
               select id from sync.outbox
               where ((state = 'pending' and next_attempt_at <= now())
                      or (state = 'in_flight' and lease_until < now()))
                 and (%(systems)s::text[] is null or target_system = any(%(systems)s::text[]))
               order by next_attempt_at, id
               limit %(limit)s
               for update skip locked
           )
           update sync.outbox o
           set state = 'in_flight', attempts = o.attempts + 1, updated_at = now(),
               lease_until = now() + make_interval(secs => %(lease)s)
           from due where o.id = due.id
           returning o.id, o.flow, o.target_system, o.target_object, o.operation, o.idempotency_key,
                     o.payload_enc, o.source_ref, o.attempts, o.state""",
        {"systems": list(systems) if systems else None, "limit": limit, "lease": lease_seconds},
    ).fetchall()
    claimed = []
    for (row_id, flow, system, obj, operation, key, payload_enc, source_ref, attempts, state) in rows:
        payload = json.loads(cipher.decrypt(payload_enc, _PAYLOAD_FIELD) or "{}")
        claimed.append(OutboxRow(
            id=row_id, attempts=attempts, state=state,
            write=IntendedWrite(flow=flow, target_system=system, target_object=obj, operation=operation,
                                idempotency_key=key, payload=payload, source_ref=source_ref),
        ))
    return sorted(claimed, key=lambda r: r.id)


def mark_delivered_many(conn: psycopg.Connection, delivered: Sequence[tuple[int, str]]) -> None:
    """Settle many writes the targets confirmed, in one statement: ``[(row id, target id), ...]``."""
    if not delivered:
        return
    conn.execute(
        """update sync.outbox o set state = 'delivered', target_id = d.target_id, delivered_at = now(),
                  updated_at = now(), lease_until = null, last_error_code = null, last_error = null
           from unnest(%s::bigint[], %s::text[]) as d(id, target_id)
           where o.id = d.id""",
        ([row_id for row_id, _ in delivered], [target_id for _, target_id in delivered]),
    )


def backoff_seconds(attempts: int, *, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**(attempts-1))]."""
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    return (rng or random).uniform(ceiling / 2, ceiling)


@dataclasses.dataclass(frozen=True)
class Failure:
    """How one failed write is settled: due again after ``delay_seconds`` (``pending``), or ``parked``/``dead``."""

    row_id: int
    state: str
    code: str
    message: str
    delay_seconds: float = 0.0


def mark_failed_many(conn: psycopg.Connection, failures: Sequence[Failure]) -> None:
    """Settle many failed writes in one statement: retries become due later, the rest are parked or dead."""
    if not failures:
        return
    assert all(f.state in ("pending", "parked", "dead") for f in failures)
    conn.execute(
        """update sync.outbox o set state = f.state, lease_until = null, last_error_code = f.code,
                  last_error = f.message, updated_at = now(),
                  next_attempt_at = case when f.state = 'pending' then now() + make_interval(secs => f.delay)
                                         else o.next_attempt_at end
           from unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::float8[])
                as f(id, state, code, message, delay)
           where o.id = f.id""",
        ([f.row_id for f in failures], [f.state for f in failures], [f.code for f in failures],
         [f.message[:2000] for f in failures], [float(f.delay_seconds) for f in failures]),
    )


def extend_lease(conn: psycopg.Connection, row_ids: Sequence[int], lease_seconds: float) -> None:
    """Renew the lease of claimed writes not settled yet (a long batch must not let the rest expire)."""
    if row_ids:
        conn.execute(
            """update sync.outbox set lease_until = now() + make_interval(secs => %s)
               where id = any(%s) and state = 'in_flight'""",
            (lease_seconds, list(row_ids)),
        )


def requeue(conn: psycopg.Connection, *, flow: str | None = None, row_id: int | None = None,
            states: tuple[str, ...] = ("parked", "dead")) -> list[dict[str, Any]]:
    """Make parked and dead writes due again (``revloop replay``); returns the rows requeued."""
    return conn.cursor(row_factory=dict_row).execute(
        """update sync.outbox set state = 'pending', next_attempt_at = now(), attempts = 0, updated_at = now()
           where state = any(%s) and (%s::text is null or flow = %s) and (%s::bigint is null or id = %s)
           returning id, flow, target_system, target_object, idempotency_key, payload_hash, last_error_code""",
        (list(states), flow, flow, row_id, row_id),
    ).fetchall()


def counts_by_state(conn: psycopg.Connection) -> dict[str, int]:
    return {state: int(n) for state, n in conn.execute("select state, count(*) from sync.outbox group by state")}


def due_now(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "select count(*) from sync.outbox where state = 'pending' and next_attempt_at <= now()"
    ).fetchone()
    return int(row[0]) if row else 0


def seconds_until_due(conn: psycopg.Connection, systems: tuple[str, ...] | None = None) -> float | None:
    """Seconds until the next pending write of ``systems`` falls due (0 when one is due now), or None."""
    row = conn.execute(
        """select extract(epoch from min(next_attempt_at) - now()) from sync.outbox
           where state = 'pending' and (%(systems)s::text[] is null or target_system = any(%(systems)s::text[]))""",
        {"systems": list(systems) if systems else None},
    ).fetchone()
    return None if row is None or row[0] is None else max(0.0, float(row[0]))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
