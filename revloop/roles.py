"""Least-privilege PostgreSQL roles for the warehouse (``revloop roles apply``).

Four group roles, each with only what its job needs; people and services log in as their own users and
are granted one of them:

- ``revloop_loader``: creates and writes the raw schemas, the quarantine and the token store; cannot
  read the canonical layer or the sync schema.
- ``revloop_transformer``: reads the raw schemas and owns the canonical ones (staging, intermediate,
  marts, reference); cannot write raw data or touch sync.
- ``revloop_sync``: reads marts and staging (and the raw schemas, for encrypted values it must send),
  writes the outbox and attempts, and may only *insert* into the audit log.
- ``revloop_analyst``: reads the marts, and nothing else (no raw data, staging, sync, tokens or keys).

Applying is idempotent: roles and schemas are created when missing, grants re-stated every time.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

RAW_SCHEMAS = ("raw_salesforce", "raw_erp", "raw_payments", "raw_quarantine", "revloop_state")
CANONICAL_SCHEMAS = ("staging", "intermediate", "marts", "reference")
SYNC_SCHEMAS = ("sync", "ops")

LOADER, TRANSFORMER, SYNC, ANALYST = "revloop_loader", "revloop_transformer", "revloop_sync", "revloop_analyst"
ROLES = (LOADER, TRANSFORMER, SYNC, ANALYST)


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def statements(database: str) -> list[sql.Composable]:
    """Every statement ``apply`` runs, in order (also what ``revloop roles apply --dry-run`` prints)."""
    out: list[sql.Composable] = []
    for role in ROLES:
        out.append(sql.SQL(
            "do $$ begin if not exists (select from pg_roles where rolname = {name}) then "
            "create role {role} nologin; end if; end $$"
        ).format(name=sql.Literal(role), role=_ident(role)))
    out.append(sql.SQL("revoke all on database {} from public").format(_ident(database)))
    for role in ROLES:
        out.append(sql.SQL("grant connect on database {} to {}").format(_ident(database), _ident(role)))
    for schema in (*RAW_SCHEMAS, *CANONICAL_SCHEMAS, *SYNC_SCHEMAS):
        out.append(sql.SQL("create schema if not exists {}").format(_ident(schema)))
        out.append(sql.SQL("revoke all on schema {} from public").format(_ident(schema)))

    def grant_schema(schema: str, role: str, *, write: bool) -> None:
        privileges = sql.SQL("usage, create" if write else "usage")
        out.append(sql.SQL("grant {} on schema {} to {}").format(privileges, _ident(schema), _ident(role)))
        table_privileges = sql.SQL("select, insert, update, delete, truncate" if write else "select")
        out.append(sql.SQL("grant {} on all tables in schema {} to {}").format(
            table_privileges, _ident(schema), _ident(role)))
        out.append(sql.SQL("grant usage, select on all sequences in schema {} to {}").format(
            _ident(schema), _ident(role)))
        # tables created later by whoever runs the loads and builds (the admin user in dev)
        out.append(sql.SQL("alter default privileges in schema {} grant {} on tables to {}").format(
            _ident(schema), table_privileges, _ident(role)))
        out.append(sql.SQL("alter default privileges in schema {} grant usage, select on sequences to {}").format(
            _ident(schema), _ident(role)))

    for schema in RAW_SCHEMAS:
        grant_schema(schema, LOADER, write=True)
        if schema != "revloop_state":  # tokens are the loader's and the sync's, never the transformer's
            grant_schema(schema, TRANSFORMER, write=False)
            grant_schema(schema, SYNC, write=False)
    for schema in CANONICAL_SCHEMAS:
        grant_schema(schema, TRANSFORMER, write=True)
    for schema in ("marts", "staging"):
        grant_schema(schema, SYNC, write=False)
    grant_schema("revloop_state", SYNC, write=True)
    grant_schema("marts", ANALYST, write=False)
    grant_schema("ops", SYNC, write=True)
    # the sync schema: full rights on the outbox and attempts, insert-only on the audit log
    out.append(sql.SQL("grant usage on schema sync to {}").format(_ident(SYNC)))
    out.append(sql.SQL("grant usage, select on all sequences in schema sync to {}").format(_ident(SYNC)))
    for table in ("outbox", "attempts", "webhook_events"):
        out.append(sql.SQL(
            "do $$ begin if to_regclass({qualified}) is not null then "
            "execute 'grant select, insert, update on sync.{table} to {role}'; end if; end $$"
        ).format(qualified=sql.Literal(f"sync.{table}"), table=sql.SQL(table), role=sql.SQL(SYNC)))
    out.append(sql.SQL(
        "do $$ begin if to_regclass('sync.audit_log') is not null then "
        "execute 'revoke update, delete, truncate on sync.audit_log from {role}'; "
        "execute 'grant select, insert on sync.audit_log to {role}'; end if; end $$"
    ).format(role=sql.SQL(SYNC)))
    return out


def apply(admin_url: str) -> list[str]:
    """Create or update the roles and grants on the warehouse of ``admin_url``; returns what was run."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        database = str(conn.info.dbname)
        run = []
        # the sync schema's tables exist before grants name them
        from revloop.sync.schema import ensure_schema

        ensure_schema(conn)
        for statement in statements(database):
            conn.execute(statement)
            run.append(statement.as_string(conn))
    return run
