"""The outbox and the delivery worker: at least once, exactly once, by error class, with audit and alerts."""

from __future__ import annotations

import random
import time
from collections import Counter

import psycopg
import pytest

from revloop.alerts import TableAlerter
from revloop.crypto import FieldCipher, Keyring, new_keyring_json
from revloop.sync import outbox
from revloop.sync.model import (
    DeliveryOutcome,
    IntendedWrite,
    PermanentError,
    RateLimited,
    RetryableError,
    SessionExpired,
)
from revloop.sync.schema import ensure_schema
from revloop.sync.worker import DeliveryWorker, WorkerPolicy


class ScriptedTarget:
    """A target system for worker tests: answers each key from a script, remembers what it holds."""

    system = "erp"

    def __init__(self) -> None:
        self.records: dict[str, str] = {}
        self.script: dict[str, list[Exception]] = {}
        self.calls: Counter[str] = Counter()
        self.refreshes = 0

    def deliver(self, write: IntendedWrite) -> DeliveryOutcome:
        self.calls[write.idempotency_key] += 1
        failures = self.script.get(write.idempotency_key)
        if failures:
            raise failures.pop(0)
        if write.idempotency_key in self.records:
            return DeliveryOutcome(self.records[write.idempotency_key], created=False)
        self.records[write.idempotency_key] = f"rec-{len(self.records) + 1}"
        return DeliveryOutcome(self.records[write.idempotency_key], created=True)

    def refresh_credentials(self) -> None:
        self.refreshes += 1


def write(key: str, **payload: object) -> IntendedWrite:
    return IntendedWrite(
        flow="won_deal_invoice", target_system="erp", target_object="account.move", operation="create",
        idempotency_key=key, payload=payload or {"amount": "10.50", "customer_email": "ana@example.sg"},
        source_ref="006000000000001AAA",
    )


@pytest.fixture
def db(fresh_database: str) -> str:
    with psycopg.connect(fresh_database) as conn:
        ensure_schema(conn)
    return fresh_database


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher(Keyring.from_json(new_keyring_json()))


@pytest.fixture
def target() -> ScriptedTarget:
    return ScriptedTarget()


def make_worker(db: str, cipher: FieldCipher, target: ScriptedTarget, **policy: float) -> DeliveryWorker:
    return DeliveryWorker(
        db, cipher, {"erp": target}, TableAlerter(db),
        WorkerPolicy(backoff_base_seconds=0.0, backoff_cap_seconds=0.0, **policy),  # type: ignore[arg-type]
        name="worker:test", rng=random.Random(1),
    )


def enqueue(db: str, cipher: FieldCipher, *writes: IntendedWrite) -> list[tuple[int, bool]]:
    with psycopg.connect(db) as conn:
        return [outbox.enqueue(conn, cipher, w) for w in writes]


def fetch(db: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def test_a_write_is_recorded_once_when_its_event_is_seen_twice(db: str, cipher: FieldCipher) -> None:
    (first, created), (second, again) = enqueue(db, cipher, write("k1"), write("k1"))
    assert created and not again and first == second
    assert fetch(db, "select count(*) from sync.outbox") == [(1,)]


def test_payload_is_encrypted_when_recorded(db: str, cipher: FieldCipher) -> None:
    enqueue(db, cipher, write("k1"))
    ((payload_enc,),) = fetch(db, "select payload_enc from sync.outbox")
    assert "ana@example.sg" not in str(payload_enc) and str(payload_enc).startswith("enc:v1:")


def test_delivery_is_recorded_with_attempt_and_audit_when_target_confirms(
    db: str, cipher: FieldCipher, target: ScriptedTarget
) -> None:
    enqueue(db, cipher, write("k1"), write("k2"))
    assert make_worker(db, cipher, target).run_once() == Counter({"created": 2})
    assert fetch(db, "select state, target_id from sync.outbox order by id") == [
        ("delivered", "rec-1"), ("delivered", "rec-2")
    ]
    assert fetch(db, "select status from sync.attempts order by id") == [("created",), ("created",)]
    audit = fetch(db, "select actor, action, result, idempotency_key from sync.audit_log order by id")
    assert audit == [
        ("worker:test", "won_deal_invoice:create", "created", "k1"),
        ("worker:test", "won_deal_invoice:create", "created", "k2"),
    ]


def test_transient_failure_is_retried_with_backoff_when_target_errs(
    db: str, cipher: FieldCipher, target: ScriptedTarget
) -> None:
    target.script["k1"] = [RetryableError("503 Service Unavailable", http_status=503)]
    enqueue(db, cipher, write("k1"))
    worker = make_worker(db, cipher, target)
    assert worker.run_once() == Counter({"retry": 1})
    assert fetch(db, "select state, attempts, last_error_code from sync.outbox") == [("pending", 1, "transient")]
    assert worker.run_once() == Counter({"created": 1})
    assert fetch(db, "select status from sync.attempts order by id") == [("retry",), ("created",)]


def test_first_retry_is_quick_and_later_ones_back_off_when_a_target_keeps_failing(
    db: str, cipher: FieldCipher, target: ScriptedTarget
) -> None:
    target.script["k1"] = [RetryableError("503 Service Unavailable", http_status=503) for _ in range(2)]
    enqueue(db, cipher, write("k1"))
    worker = DeliveryWorker(db, cipher, {"erp": target}, TableAlerter(db), WorkerPolicy(backoff_base_seconds=1.0),
                            name="worker:test", rng=random.Random(1))

    def wait() -> float:
        ((seconds,),) = fetch(db, "select extract(epoch from next_attempt_at - now()) from sync.outbox")
        return float(seconds)  # type: ignore[arg-type]

    assert worker.run_once() == Counter({"retry": 1})
    assert wait() <= WorkerPolicy().first_retry_seconds
    deadline = time.monotonic() + 10
    while not fetch(db, "select 1 from sync.outbox where next_attempt_at <= now()") and time.monotonic() < deadline:
        time.sleep(0.02)  # polling the database clock: the retry is due within a quarter of a second
    assert worker.run_once() == Counter({"retry": 1})
    assert 0.8 < wait() <= 2.0  # the second retry: base * 2 ** (attempts - 1), jittered in its upper half


def test_a_sleeping_worker_wakes_when_a_retry_falls_due_not_after_its_idle_wait(
    db: str, cipher: FieldCipher, target: ScriptedTarget
) -> None:
    target.script["k1"] = [RetryableError("503 Service Unavailable", http_status=503)]
    enqueue(db, cipher, write("k1"))
    worker = DeliveryWorker(db, cipher, {"erp": target}, TableAlerter(db), WorkerPolicy(first_retry_seconds=0.5),
                            name="worker:test", rng=random.Random(1))

    def delivered() -> bool:
        return fetch(db, "select state from sync.outbox") == [("delivered",)]

    started = time.monotonic()
    total = worker.run_until(delivered, idle_wait_seconds=60.0)

    assert total == Counter({"retry": 1, "created": 1})
    assert time.monotonic() - started < 30  # woken by the retry's due time (0.5 s), not the 60 s idle wait


def test_rate_limit_waits_at_least_retry_after_when_the_target_asks(
    db: str, cipher: FieldCipher, target: ScriptedTarget
) -> None:
    target.script["k1"] = [RateLimited("REQUEST_LIMIT_EXCEEDED", retry_after_seconds=120)]
    enqueue(db, cipher, write("k1"))
    assert make_worker(db, cipher, target).run_once() == Counter({"rate_limited": 1})
    ((wait,),) = fetch(db, "select extract(epoch from next_attempt_at - now()) from sync.outbox")
    assert 100 < float(wait) <= 120  # type: ignore[arg-type]


def test_session_is_refreshed_once_and_write_delivered_when_token_expired(
    db: str, cipher: FieldCipher, target: ScriptedTarget
) -> None:
    target.script["k1"] = [SessionExpired("INVALID_SESSION_ID")]
    enqueue(db, cipher, write("k1"))
    assert make_worker(db, cipher, target).run_once() == Counter({"created": 1})
    assert target.refreshes == 1 and target.calls["k1"] == 2


def test_validation_error_is_parked_with_reason_and_alert_while_others_continue(
    db: str, cipher: FieldCipher, target: ScriptedTarget
) -> None:
    target.script["bad"] = [PermanentError("Partner is required", code="ValidationError", http_status=422)]
    enqueue(db, cipher, write("bad"), write("good"))
    assert make_worker(db, cipher, target).run_once() == Counter({"parked": 1, "created": 1})
    assert fetch(db, "select idempotency_key, state, last_error_code, last_error from sync.outbox order by id") == [
        ("bad", "parked", "ValidationError", "Partner is required"), ("good", "delivered", None, None)
    ]
    ((kind, runbook, detail),) = fetch(db, "select kind, runbook, detail from ops.alerts")
    assert kind == "write-parked" and str(runbook).endswith("#write-parked")
    assert detail["replay"] == "revloop replay --id 1"  # type: ignore[index]


def test_write_is_dead_lettered_with_alert_when_attempts_run_out(
    db: str, cipher: FieldCipher, target: ScriptedTarget
) -> None:
    target.script["k1"] = [RetryableError("down") for _ in range(3)]
    enqueue(db, cipher, write("k1"))
    worker = make_worker(db, cipher, target, max_attempts=3)
    statuses = [worker.run_once() for _ in range(3)]
    assert statuses == [Counter({"retry": 1}), Counter({"retry": 1}), Counter({"dead": 1})]
    assert fetch(db, "select state from sync.outbox") == [("dead",)]
    assert fetch(db, "select kind from ops.alerts") == [("write-dead-lettered",)]


def test_replayed_dead_letter_is_delivered_when_target_is_back(
    db: str, cipher: FieldCipher, target: ScriptedTarget
) -> None:
    target.script["k1"] = [RetryableError("down")]
    enqueue(db, cipher, write("k1"))
    worker = make_worker(db, cipher, target, max_attempts=1)
    assert worker.run_once() == Counter({"dead": 1})
    with psycopg.connect(db) as conn:
        requeued = outbox.requeue(conn, row_id=1)
    assert [r["idempotency_key"] for r in requeued] == ["k1"]
    assert worker.run_once() == Counter({"created": 1})


def test_no_duplicate_is_made_when_worker_dies_after_the_target_wrote(
    db: str, cipher: FieldCipher, target: ScriptedTarget
) -> None:
    enqueue(db, cipher, write("k1"))
    with psycopg.connect(db) as conn:  # a worker claims, the target writes, then the worker dies
        (row,) = outbox.claim(conn, cipher, limit=10, lease_seconds=0.01)
    target.deliver(row.write)
    with psycopg.connect(db) as conn:  # its lease runs out
        conn.execute("update sync.outbox set lease_until = now() - interval '1 second'")
    assert make_worker(db, cipher, target).run_once() == Counter({"found": 1})
    assert len(target.records) == 1
    assert fetch(db, "select state, attempts from sync.outbox") == [("delivered", 2)]


def test_two_workers_never_claim_the_same_write_when_running_at_once(db: str, cipher: FieldCipher) -> None:
    enqueue(db, cipher, *(write(f"k{i}") for i in range(20)))
    with psycopg.connect(db) as first, psycopg.connect(db) as second, first.transaction():
        a = outbox.claim(first, cipher, limit=12, lease_seconds=60)
        with second.transaction():
            b = outbox.claim(second, cipher, limit=12, lease_seconds=60)
    assert len(a) == 12 and len(b) == 8
    assert not {r.id for r in a} & {r.id for r in b}


@pytest.mark.parametrize(
    "statement",
    ["update sync.audit_log set result = 'x'", "delete from sync.audit_log", "truncate sync.audit_log"],
)
def test_audit_log_refuses_changes_when_asked_to_rewrite_history(
    db: str, cipher: FieldCipher, target: ScriptedTarget, statement: str
) -> None:
    enqueue(db, cipher, write("k1"))
    make_worker(db, cipher, target).run_once()
    with psycopg.connect(db) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute(statement)
    assert fetch(db, "select count(*) from sync.audit_log") == [(1,)]


def test_replay_command_requeues_and_audits_when_run(db: str, cipher: FieldCipher, target: ScriptedTarget) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    target.script["k1"] = [PermanentError("bad partner", code="ValidationError")]
    enqueue(db, cipher, write("k1"))
    make_worker(db, cipher, target).run_once()
    revloop = str(Path(sys.executable).with_name("revloop"))
    result = subprocess.run(
        [revloop, "replay", "--flow", "won_deal_invoice"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "REVLOOP_DATABASE_URL": db, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    assert "1 write(s) due again" in result.stdout and "ValidationError" in result.stdout
    assert fetch(db, "select state from sync.outbox") == [("pending",)]
    ((actor, action, result_),) = fetch(db, "select actor, action, result from sync.audit_log where action = 'replay'")
    assert str(actor).startswith("user:") and result_ == "requeued"


class BatchTarget(ScriptedTarget):
    """A target with a batch API (like Salesforce collections): one call for many writes."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_calls: list[int] = []

    def deliver_many(self, writes: list[IntendedWrite]) -> list[DeliveryOutcome | Exception]:
        self.batch_calls.append(len(writes))
        results: list[DeliveryOutcome | Exception] = []
        for w in writes:
            try:
                results.append(self.deliver(w))
            except Exception as exc:
                results.append(exc)
        return results


def test_writes_to_one_object_travel_in_one_batch_call_when_the_target_has_a_batch_api(
    db: str, cipher: FieldCipher
) -> None:
    target = BatchTarget()
    target.script["k3"] = [PermanentError("bad", code="INVALID_FIELD")]
    target.script["k4"] = [SessionExpired("INVALID_SESSION_ID")]
    enqueue(db, cipher, *(write(f"k{i}") for i in range(6)))
    worker = make_worker(db, cipher, target)  # type: ignore[arg-type]
    assert worker.run_once() == Counter({"created": 5, "parked": 1})
    assert target.batch_calls == [6] and target.refreshes == 1 and target.calls["k4"] == 2
    assert fetch(db, "select idempotency_key from sync.outbox where state = 'parked'") == [("k3",)]


def test_writes_enqueued_together_keep_their_order_and_skip_keys_already_recorded(
    db: str, cipher: FieldCipher
) -> None:
    enqueue(db, cipher, write("k2"))
    with psycopg.connect(db) as conn:
        new = outbox.enqueue_many(conn, cipher, [write("k1"), write("k2"), write("k3"), write("k1")])
    assert new == {"k1", "k3"}
    assert fetch(db, "select idempotency_key from sync.outbox order by id") == [("k2",), ("k1",), ("k3",)]
    ((payload_enc,),) = fetch(db, "select payload_enc from sync.outbox where idempotency_key = 'k3'")
    assert "ana@example.sg" not in str(payload_enc)


def test_a_batch_with_every_kind_of_outcome_is_settled_row_by_row_in_one_transaction(
    db: str, cipher: FieldCipher
) -> None:
    target = BatchTarget()
    target.script["retry"] = [RetryableError("503", http_status=503)]
    target.script["limited"] = [RateLimited("429", retry_after_seconds=90)]
    target.script["refused"] = [PermanentError("Partner is required", code="ValidationError")]
    target.records["found"] = "rec-0"  # delivered before, its bookkeeping lost
    keys = ["created", "retry", "limited", "refused", "found"]
    enqueue(db, cipher, *(write(k) for k in keys))
    worker = make_worker(db, cipher, target)  # type: ignore[arg-type]
    assert worker.run_once() == Counter({"created": 1, "retry": 1, "rate_limited": 1, "parked": 1, "found": 1})
    assert target.batch_calls == [5]
    rows = fetch(db, """select idempotency_key, state, last_error_code, target_id,
                               next_attempt_at > now() + interval '80 seconds'
                        from sync.outbox order by id""")
    assert rows == [("created", "delivered", None, "rec-2", False), ("retry", "pending", "transient", None, False),
                    ("limited", "pending", "rate_limited", None, True),
                    ("refused", "parked", "ValidationError", None, False), ("found", "delivered", None, "rec-0", False)]
    assert fetch(db, "select idempotency_key, status from sync.attempts order by id") == [
        ("created", "created"), ("retry", "retry"), ("limited", "rate_limited"), ("refused", "parked"),
        ("found", "found")]
    assert fetch(db, "select idempotency_key, result from sync.audit_log order by id") == [
        ("created", "created"), ("retry", "retry"), ("limited", "rate_limited"), ("refused", "parked"),
        ("found", "found")]
    assert fetch(db, "select kind from ops.alerts") == [("write-parked",)]
