"""The safety-net sensor: it starts sync_job only when no warm loop is alive and something waits."""

from __future__ import annotations

import json
import time

import dagster as dg
import psycopg
import pytest

from assets.definitions import defs
from assets.resources import RevloopResource
from assets.sensors import sync_safety_net_sensor
from revloop.sync.heartbeat import Heartbeat
from revloop.webhooks import ensure_schema as ensure_webhook_schema


@pytest.fixture
def warehouse_env(fresh_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("REVLOOP_DATABASE_URL", fresh_database)
    ensure_webhook_schema(fresh_database)
    return fresh_database


def _evaluate(cursor: dict[str, object] | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        cursor=json.dumps(cursor) if cursor is not None else None, instance=dg.DagsterInstance.ephemeral(),
        resources={"revloop": RevloopResource()},
    )
    result = sync_safety_net_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def _receive_webhook(url: str, event_id: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "insert into sync.webhook_events (event_id, type, object_id, created, payload) "
            "values (%s, 'charge.succeeded', 'ch_1', now(), '{}')", (event_id,))


def _skip_reason(result: dg.SensorResult) -> str:
    assert not result.run_requests, result.run_requests
    assert result.skip_reason is not None
    return str(result.skip_reason.skip_message)


def test_sensor_skips_and_names_the_loop_when_a_warm_loop_beats(warehouse_env: str) -> None:
    Heartbeat(warehouse_env, name="sync:test-host:1").beat(7, now=time.monotonic())
    _receive_webhook(warehouse_env, "evt_while_loop_lives")

    reason = _skip_reason(_evaluate(None))

    assert "warm sync loop is alive" in reason and "sync:test-host:1 (7 cycles)" in reason


def test_sensor_requests_a_sync_run_when_no_loop_and_a_webhook_arrived(warehouse_env: str) -> None:
    _receive_webhook(warehouse_env, "evt_1")

    result = _evaluate({"requested_at": time.time()})

    assert len(result.run_requests) == 1
    assert "1 payments webhook event(s) received" in result.run_requests[0].tags["revloop/trigger"]
    # the next look sees nothing new
    assert _skip_reason(_evaluate(json.loads(result.cursor or "{}"))) == "nothing waits"


def test_sensor_takes_over_at_once_when_the_loop_stopped_cleanly(warehouse_env: str) -> None:
    heartbeat = Heartbeat(warehouse_env, name="sync:test-host:2")
    heartbeat.beat(3, now=time.monotonic())
    heartbeat.stopped(3)
    _receive_webhook(warehouse_env, "evt_after_stop")

    result = _evaluate({"requested_at": time.time()})

    assert len(result.run_requests) == 1


def test_sensor_polls_the_systems_without_push_when_its_last_request_is_old(warehouse_env: str) -> None:
    result = _evaluate({"requested_at": time.time() - 301})

    assert len(result.run_requests) == 1
    assert "no sync run requested in the last 5 minutes" in result.run_requests[0].tags["revloop/trigger"]


def test_sensor_requests_a_run_when_outbox_writes_are_overdue(warehouse_env: str) -> None:
    from revloop.sync.schema import ensure_schema

    with psycopg.connect(warehouse_env) as conn:
        ensure_schema(conn)
        conn.execute(
            "insert into sync.outbox (flow, target_system, target_object, operation, idempotency_key, payload_enc, "
            "payload_hash, next_attempt_at) values ('won_deal_invoice', 'erp', 'account.move', 'post', 'k-1', 'x', "
            "'h', now() - interval '5 minutes')")

    result = _evaluate({"requested_at": time.time()})

    assert "1 outbox write(s) overdue" in result.run_requests[0].tags["revloop/trigger"]


def test_sensor_targets_the_sync_job_and_starts_stopped_in_dev_when_defined(monkeypatch: pytest.MonkeyPatch) -> None:
    sensor = defs.resolve_sensor_def("sync_safety_net_sensor")
    assert sensor.job_name == "sync_job"
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED  # dev, no override: nothing polls unasked


@pytest.mark.parametrize(("environment", "automation", "running"), [
    ("dev", None, False), ("prod", None, True), ("dev", "on", True), ("prod", "off", False),
])
def test_automation_follows_the_environment_unless_overridden_when_resolved(
        environment: str, automation: str | None, running: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from assets.env import schedules_running_by_default

    monkeypatch.setenv("REVLOOP_ENVIRONMENT", environment)
    if automation is None:
        monkeypatch.delenv("REVLOOP_DAGSTER_AUTOMATION", raising=False)
    else:
        monkeypatch.setenv("REVLOOP_DAGSTER_AUTOMATION", automation)
    assert schedules_running_by_default() is running


def test_automation_refuses_an_unknown_value_when_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    from assets.env import schedules_running_by_default

    monkeypatch.setenv("REVLOOP_DAGSTER_AUTOMATION", "sometimes")
    with pytest.raises(ValueError, match="REVLOOP_DAGSTER_AUTOMATION must be on or off"):
        schedules_running_by_default()
