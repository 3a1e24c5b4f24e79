"""The delivery worker: claims due writes from the outbox, applies them through the writers, settles them.

Writes to one target object and operation are delivered together (through the writer's batch API where it
has one) and settled in one transaction with an attempt row and an audit row per write, so the bookkeeping
never disagrees with itself. If the process dies after the target answered but before that transaction,
the leases run out, the writes are claimed again, and the writer finds the records it already made.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping

import psycopg

from revloop.alerts import Alert, Alerter
from revloop.crypto import FieldCipher
from revloop.sync import audit, outbox
from revloop.sync.model import (
    DeliveryError,
    DeliveryOutcome,
    IntendedWrite,
    PermanentError,
    RateLimited,
    RetryableError,
    SessionExpired,
    Writer,
)
from revloop.sync.schema import ensure_schema

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "revloop_outbox"


@dataclasses.dataclass
class WorkerPolicy:
    max_attempts: int = 8
    lease_seconds: float = 60.0
    batch_size: int = 200
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 300.0
    first_retry_seconds: float = 0.25
    """The first retry of a transient failure waits at most this long (then ``backoff_base_seconds`` doubling):
    most 5xx, lock conflicts and dropped connections are over in a moment, and a write on the hot path should
    not wait a second for each; a target that stays down still gets the long backoff."""


class DeliveryWorker:
    """Delivers the outbox's due writes to the targets through ``writers`` (one per system)."""

    def __init__(
        self,
        database_url: str,
        cipher: FieldCipher,
        writers: Mapping[str, Writer],
        alerter: Alerter,
        policy: WorkerPolicy | None = None,
        name: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.database_url = database_url
        self.cipher = cipher
        self.writers = writers
        self.alerter = alerter
        self.policy = policy or WorkerPolicy()
        self.name = name or f"worker:{socket.gethostname()}:{os.getpid()}"
        self.rng = rng or random.Random()
        with psycopg.connect(database_url) as conn:
            ensure_schema(conn)

    def run_once(self) -> Counter[str]:
        """Deliver what is due now, once; returns how many writes ended in each status.

        The claimed writes are grouped by target, object and operation (so batch APIs can be used); each
        group is settled in one transaction: one statement per kind of outcome for the outbox, one attempt
        row and one audit row per write.
        """
        tally: Counter[str] = Counter()
        with psycopg.connect(self.database_url) as conn:
            with conn.transaction():
                rows = outbox.claim(
                    conn, self.cipher, limit=self.policy.batch_size, lease_seconds=self.policy.lease_seconds,
                    systems=tuple(self.writers),
                )
            for number, batch in enumerate(_batches(rows)):
                if number:  # the groups before took time: the lease must cover this one from now
                    with conn.transaction():
                        outbox.extend_lease(conn, [row.id for row in batch], self.policy.lease_seconds)
                started = outbox.utcnow()
                clock = time.perf_counter()
                results = self._attempt_all(batch)
                share_ms = int((time.perf_counter() - clock) * 1000 / max(1, len(batch)))
                tally.update(self._settle(conn, batch, results, started, share_ms))
        return tally

    def run_until(self, stop: Callable[[], bool], idle_wait_seconds: float = 1.0) -> Counter[str]:
        """Keep delivering until ``stop()``; sleeps on LISTEN/NOTIFY so new writes wake it at once, and no
        longer than until the next retry falls due (a retry due in 0.2 s is not held to the idle wait)."""
        total: Counter[str] = Counter()
        with psycopg.connect(self.database_url, autocommit=True) as listener:
            listener.execute(f"listen {NOTIFY_CHANNEL}")
            while not stop():
                done = self.run_once()
                total.update(done)
                if not done:
                    due_in = outbox.seconds_until_due(listener, tuple(self.writers))
                    wait = idle_wait_seconds if due_in is None else min(idle_wait_seconds, due_in)
                    if wait > 0:
                        for _ in listener.notifies(timeout=wait, stop_after=1):
                            pass
        return total

    # ---- one write ---------------------------------------------------------------------------------

    def _attempt_all(self, batch: list[outbox.OutboxRow]) -> list[DeliveryOutcome | DeliveryError]:
        """Apply a batch of writes to one target (through its batch API when it has one).

        An expired session is refreshed once and the writes that met it are tried again at once.
        """
        writer = self.writers[batch[0].write.target_system]
        writes = [row.write for row in batch]
        results = self._call(writer, writes)
        expired = [i for i, result in enumerate(results) if isinstance(result, SessionExpired)]
        if expired:
            writer.refresh_credentials()
            for index, result in zip(expired, self._call(writer, [writes[i] for i in expired]), strict=True):
                results[index] = result
        return results

    @staticmethod
    def _call(writer: Writer, writes: list[IntendedWrite]) -> list[DeliveryOutcome | DeliveryError]:
        many = getattr(writer, "deliver_many", None)
        if many is not None and len(writes) > 1:
            try:
                return list(many(writes))
            except DeliveryError as exc:
                return [exc] * len(writes)
            except Exception as exc:  # a writer bug must not stop the others: transient, with the reason kept
                logger.exception("unexpected error delivering a batch of %d", len(writes))
                return [RetryableError(f"{type(exc).__name__}: {exc}", code="unexpected")] * len(writes)
        results: list[DeliveryOutcome | DeliveryError] = []
        for write in writes:
            try:
                results.append(writer.deliver(write))
            except DeliveryError as exc:
                results.append(exc)
            except Exception as exc:
                logger.exception("unexpected error delivering %s", write.idempotency_key)
                results.append(RetryableError(f"{type(exc).__name__}: {exc}", code="unexpected"))
        return results

    def _settle(self, conn: psycopg.Connection, batch: list[outbox.OutboxRow],
                results: list[DeliveryOutcome | DeliveryError], started: object, duration_ms: int) -> Counter[str]:
        """Record a batch's results with their attempt and audit rows, in one transaction."""
        delivered: list[tuple[int, str]] = []
        failures: list[outbox.Failure] = []
        statuses: list[str] = []
        with conn.transaction(), conn.pipeline():
            for row, result in zip(batch, results, strict=True):
                write = row.write
                if isinstance(result, DeliveryOutcome):
                    status = "created" if result.created else "found"
                    delivered.append((row.id, result.target_id))
                    self._attempt(conn, row, started, duration_ms, status, None, None, result.target_id)
                    audit.record(
                        conn, actor=self.name, action=f"{write.flow}:{write.operation}", result=status,
                        target_system=write.target_system, target_object=write.target_object,
                        target_id=result.target_id, idempotency_key=write.idempotency_key,
                        payload_hash=write.payload_hash,
                        detail={"attempt": row.attempts, "source_ref": write.source_ref},
                    )
                else:
                    failure = self._failure(row, result)
                    status = failure.state if failure.state != "pending" else _retry_status(result)
                    failures.append(failure)
                    self._attempt(conn, row, started, duration_ms, status, result.code, str(result), None)
                    audit.record(
                        conn, actor=self.name, action=f"{write.flow}:{write.operation}", result=status,
                        target_system=write.target_system, target_object=write.target_object,
                        idempotency_key=write.idempotency_key, payload_hash=write.payload_hash,
                        detail={"attempt": row.attempts, "error_code": result.code, "error": str(result)[:500]},
                    )
                statuses.append(status)
            outbox.mark_delivered_many(conn, delivered)
            outbox.mark_failed_many(conn, failures)
        for row, result, status in zip(batch, results, statuses, strict=True):
            if status in ("parked", "dead") and isinstance(result, DeliveryError):
                self._alert(row, status, result)
        return Counter(statuses)

    def _failure(self, row: outbox.OutboxRow, error: DeliveryError) -> outbox.Failure:
        """Park a refused write, bury one out of attempts, else make it due again after a backoff."""
        message = str(error)
        if isinstance(error, PermanentError):
            return outbox.Failure(row.id, "parked", error.code, message)
        if row.attempts >= self.policy.max_attempts:
            return outbox.Failure(row.id, "dead", error.code, message)
        delay = outbox.backoff_seconds(
            row.attempts, base=self.policy.backoff_base_seconds, cap=self.policy.backoff_cap_seconds, rng=self.rng
        )
        if row.attempts == 1:
            quick = self.policy.first_retry_seconds
            delay = min(delay, self.rng.uniform(quick / 2, quick))
        if isinstance(error, RateLimited) and error.retry_after_seconds is not None:
            delay = max(delay, error.retry_after_seconds)
        return outbox.Failure(row.id, "pending", error.code, message, delay)

    def _attempt(self, conn: psycopg.Connection, row: outbox.OutboxRow, started: object, duration_ms: int,
                 status: str, code: str | None, message: str | None, target_id: str | None) -> None:
        write = row.write
        conn.execute(
            """insert into sync.attempts (outbox_id, worker, flow, target_system, target_object, operation,
                   idempotency_key, started_at, duration_ms, status, error_code, error_message, target_id)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (row.id, self.name, write.flow, write.target_system, write.target_object, write.operation,
             write.idempotency_key, started, duration_ms, status, code, (message or "")[:2000] or None, target_id),
        )

    def _alert(self, row: outbox.OutboxRow, status: str, error: DeliveryError | None) -> None:
        write = row.write
        kind = "write-parked" if status == "parked" else "write-dead-lettered"
        verb = "refused by" if status == "parked" else f"gave up after {row.attempts} attempts on"
        try:
            self.alerter.send(Alert(
                severity="error", kind=kind,
                title=f"{write.flow}: write {verb} {write.target_system} ({write.target_object})",
                detail={"outbox_id": row.id, "idempotency_key": write.idempotency_key,
                        "error_code": error.code if error else None, "error": str(error)[:300] if error else None,
                        "replay": f"revloop replay --id {row.id}"},
            ))
        except Exception:  # an alert channel outage must not stop deliveries
            logger.exception("could not send the %s alert for outbox row %s", kind, row.id)


def _retry_status(error: DeliveryError) -> str:
    """The attempt status of a write that will be tried again."""
    if isinstance(error, RateLimited):
        return "rate_limited"
    return "session_expired" if isinstance(error, SessionExpired) else "retry"


def _batches(rows: list[outbox.OutboxRow]) -> list[list[outbox.OutboxRow]]:
    """Rows grouped by target system, object and operation (in claim order), so batch APIs can be used."""
    groups: dict[tuple[str, str, str], list[outbox.OutboxRow]] = {}
    for row in rows:
        write = row.write
        groups.setdefault((write.target_system, write.target_object, write.operation), []).append(row)
    return list(groups.values())


def notify_enqueued(conn: psycopg.Connection) -> None:
    """Wake sleeping workers (call in the transaction that enqueued writes; delivered on commit)."""
    conn.execute(f"notify {NOTIFY_CHANNEL}")
