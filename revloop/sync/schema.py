"""The ``sync`` schema: outbox, attempt history, append-only audit log, webhook events, alerts."""

from __future__ import annotations

import psycopg

DDL = """
create schema if not exists sync;

create table if not exists sync.outbox (
    id               bigserial primary key,
    flow             text not null,
    target_system    text not null,
    target_object    text not null,
    operation        text not null,
    idempotency_key  text not null unique check (length(idempotency_key) <= 255),
    payload_enc      text not null,
    payload_hash     text not null,
    source_ref       text,
    state            text not null default 'pending'
                     check (state in ('pending', 'in_flight', 'delivered', 'parked', 'dead')),
    attempts         integer not null default 0,
    next_attempt_at  timestamptz not null default now(),
    lease_until      timestamptz,
    last_error_code  text,
    last_error       text,
    target_id        text,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    delivered_at     timestamptz
);
create index if not exists outbox_due_idx on sync.outbox (next_attempt_at) where state = 'pending';
create index if not exists outbox_lease_idx on sync.outbox (lease_until) where state = 'in_flight';
create index if not exists outbox_flow_state_idx on sync.outbox (flow, state);
comment on table sync.outbox is
    'Every write Revloop intends to make to an outside system, recorded before it is attempted. '
    'Payloads are encrypted (they may hold PII); payload_hash identifies the content.';

create table if not exists sync.attempts (
    id               bigserial primary key,
    outbox_id        bigint not null references sync.outbox (id),
    worker           text not null,
    flow             text not null,
    target_system    text not null,
    target_object    text not null,
    operation        text not null,
    idempotency_key  text not null,
    started_at       timestamptz not null,
    duration_ms      integer not null,
    status           text not null check (
                         status in ('created', 'found', 'retry', 'rate_limited', 'session_expired', 'parked', 'dead')
                     ),
    error_code       text,
    error_message    text,
    target_id        text
);
create index if not exists attempts_outbox_idx on sync.attempts (outbox_id);
create index if not exists attempts_started_idx on sync.attempts (started_at);
comment on table sync.attempts is 'Sync history: one row per delivery attempt (like Hightouch and Census sync logs).';

create table if not exists sync.audit_log (
    id               bigserial primary key,
    at               timestamptz not null default now(),
    actor            text not null,
    action           text not null,
    target_system    text,
    target_object    text,
    target_id        text,
    idempotency_key  text,
    payload_hash     text,
    result           text not null,
    detail           jsonb not null default '{}'::jsonb
);
comment on table sync.audit_log is
    'Append-only record of every external write and every replay or manual action. Rows cannot be updated or deleted.';

create or replace function sync.refuse_audit_change() returns trigger language plpgsql as $$
begin
    raise exception 'sync.audit_log is append-only: % is not allowed', tg_op using errcode = 'insufficient_privilege';
end $$;
drop trigger if exists audit_log_append_only on sync.audit_log;
create trigger audit_log_append_only before update or delete on sync.audit_log
    for each row execute function sync.refuse_audit_change();
drop trigger if exists audit_log_no_truncate on sync.audit_log;
create trigger audit_log_no_truncate before truncate on sync.audit_log
    for each statement execute function sync.refuse_audit_change();
"""


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the sync schema's tables if missing (idempotent; safe to run concurrently at start-up)."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtextextended('revloop.sync.schema', 0))")
        conn.execute(DDL)
