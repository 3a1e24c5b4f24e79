"""Sensors: the safety net that starts a sync run in Dagster when no warm sync loop is moving changes.

The fast path is ``revloop sync`` (a warm loop that reacts within seconds and reports every step to
Dagster). When no loop is alive (none deployed, or it died), ``sync_safety_net_sensor`` starts ``sync_job``
(load -> canonical layer with its checks -> flows) as soon as something waits: payments webhooks received
since its last look, outbox writes overdue for delivery, or ``max_age`` since its last run request (Salesforce
and the ERP push nothing, so they are polled). While a loop beats (``sync.loop_heartbeats``), it skips and
says which loop holds the work; it also skips while a ``sync_job`` run is still going.
"""

# No `from __future__ import annotations` here: Dagster inspects the real type of `context`.
import json
import time

import dagster as dg
import psycopg

from assets.env import default_sensor_status
from assets.flows import SYNC_JOB
from assets.resources import RevloopResource

MINIMUM_INTERVAL_SECONDS = 30
MAX_AGE_SECONDS = 300.0
"""With no loop alive, a sync run is started at least this often (systems without push are polled)."""
OVERDUE_SECONDS = 60
"""An outbox write still pending this long after it fell due means nobody is delivering."""

_ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
           dg.DagsterRunStatus.STARTED]


def _waiting(conn: psycopg.Connection, since_received: str | None) -> tuple[int, int, str | None]:
    """(webhook events received after ``since_received``, overdue outbox writes, newest webhook received_at)."""
    names = conn.execute("select to_regclass('sync.webhook_events'), to_regclass('sync.outbox')").fetchone()
    events, overdue, newest = 0, 0, since_received
    if names and names[0]:
        row = conn.execute(
            "select count(*), max(received_at)::text from sync.webhook_events "
            "where %(since)s::timestamptz is null or received_at > %(since)s::timestamptz",
            {"since": since_received},
        ).fetchone()
        if row:
            events, newest = int(row[0]), row[1] or since_received
    if names and names[1]:
        row = conn.execute(
            """select count(*) from sync.outbox
               where (state = 'pending' and next_attempt_at < now() - make_interval(secs => %(s)s))
                  or (state = 'in_flight' and lease_until < now() - make_interval(secs => %(s)s))""",
            {"s": OVERDUE_SECONDS},
        ).fetchone()
        overdue = int(row[0]) if row else 0
    return events, overdue, newest


@dg.sensor(
    job=SYNC_JOB, minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS, default_status=default_sensor_status(),
    description="Starts sync_job when no warm sync loop (revloop sync) is alive and something waits: new payments "
                "webhooks, overdue outbox writes, or 5 minutes since the last sync run it started.",
)
def sync_safety_net_sensor(context: dg.SensorEvaluationContext, revloop: RevloopResource) -> dg.SensorResult:
    from revloop.sync.heartbeat import live_loops

    state = json.loads(context.cursor) if context.cursor else {}
    with psycopg.connect(revloop.database_url()) as conn:
        loops = live_loops(conn)
        events, overdue, newest = _waiting(conn, state.get("received_at"))
    state["received_at"] = newest
    cursor = json.dumps(state)
    if loops:
        names = ", ".join(f"{beat.name} ({beat.cycles} cycles)" for beat in loops)
        return dg.SensorResult(skip_reason=f"the warm sync loop is alive and moves changes within seconds: {names}",
                               cursor=cursor)
    active = context.instance.get_runs(dg.RunsFilter(job_name=SYNC_JOB.name, statuses=_ACTIVE), limit=1)
    if active:
        return dg.SensorResult(skip_reason=f"sync_job run {active[0].run_id} is still going", cursor=cursor)
    now = time.time()
    reasons = []
    if events:
        reasons.append(f"{events} payments webhook event(s) received")
    if overdue:
        reasons.append(f"{overdue} outbox write(s) overdue")
    if now - float(state.get("requested_at", 0)) >= MAX_AGE_SECONDS:
        reasons.append("no sync run requested in the last 5 minutes")
    if not reasons:
        return dg.SensorResult(skip_reason="nothing waits", cursor=cursor)
    state["requested_at"] = now
    return dg.SensorResult(
        run_requests=[dg.RunRequest(tags={"revloop/trigger": "; ".join(reasons)})], cursor=json.dumps(state),
    )


SENSORS = [sync_safety_net_sensor]
