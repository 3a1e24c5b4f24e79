"""Warehouse roles: each can do its job and nothing else, tested by connecting as a user of each role."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import psycopg
import pytest

from revloop import roles
from revloop.sync.schema import ensure_schema


@pytest.fixture(scope="module")
def warehouse_with_roles(module_database: str) -> str:
    with psycopg.connect(module_database, autocommit=True) as conn:
        ensure_schema(conn)
    roles.apply(module_database)
    with psycopg.connect(module_database, autocommit=True) as conn:
        # tables made after apply (by the admin who runs loads and builds in dev): default privileges cover them
        conn.execute("create table if not exists raw_erp.account_move (id bigint primary key, amount_total numeric)")
        conn.execute("insert into raw_erp.account_move values (1, 10.50) on conflict do nothing")
        conn.execute("create table if not exists marts.fct_invoices (erp_invoice_id bigint, amount_total numeric)")
        conn.execute("insert into marts.fct_invoices values (1, 10.50)")
        conn.execute("create table if not exists staging.stg_erp__invoices (id bigint)")
    roles.apply(module_database)  # idempotent
    return module_database


@pytest.fixture(scope="module")
def connect_as(warehouse_with_roles: str) -> Iterator[Callable[[str], psycopg.Connection]]:
    created: list[str] = []
    admin = psycopg.connect(warehouse_with_roles, autocommit=True)

    def connect(role: str) -> psycopg.Connection:
        user = f"t_{role}_{secrets.token_hex(3)}"
        admin.execute(f'create role "{user}" login in role {role}')
        created.append(user)
        info = psycopg.conninfo.conninfo_to_dict(warehouse_with_roles)
        info["user"] = user
        info.pop("password", None)
        return psycopg.connect(psycopg.conninfo.make_conninfo(**info), autocommit=True)

    yield connect
    for user in created:
        admin.execute(f'drop owned by "{user}"')
        admin.execute(f'drop role "{user}"')
    admin.close()


def denied(conn: psycopg.Connection, statement: str) -> bool:
    try:
        conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_analyst_reads_marts_and_nothing_else_when_connected(connect_as: Callable[[str], psycopg.Connection]) -> None:
    with connect_as(roles.ANALYST) as conn:
        assert conn.execute("select count(*) from marts.fct_invoices").fetchone() == (1,)
        assert denied(conn, "select * from raw_erp.account_move")
        assert denied(conn, "select * from staging.stg_erp__invoices")
        assert denied(conn, "select * from sync.outbox")
        assert denied(conn, "select * from sync.audit_log")
        assert denied(conn, "create table marts.mine (x int)")


def test_loader_writes_raw_and_cannot_read_marts_when_connected(
    connect_as: Callable[[str], psycopg.Connection],
) -> None:
    with connect_as(roles.LOADER) as conn:
        conn.execute("insert into raw_erp.account_move values (2, 5) on conflict do nothing")
        conn.execute("create table if not exists raw_payments.probe (id int)")
        assert denied(conn, "select * from marts.fct_invoices")
        assert denied(conn, "select * from sync.outbox")


def test_transformer_reads_raw_builds_canonical_and_cannot_write_raw_when_connected(
    connect_as: Callable[[str], psycopg.Connection],
) -> None:
    with connect_as(roles.TRANSFORMER) as conn:
        assert conn.execute("select count(*) from raw_erp.account_move").fetchone()[0] >= 1  # type: ignore[index]
        conn.execute("create table marts.transformer_probe as select 1 as x")
        assert denied(conn, "insert into raw_erp.account_move values (3, 1)")
        assert denied(conn, "select * from revloop_state.oauth_tokens")
        assert denied(conn, "select * from sync.outbox")


def test_sync_appends_to_audit_log_and_cannot_rewrite_it_when_connected(
    connect_as: Callable[[str], psycopg.Connection],
) -> None:
    with connect_as(roles.SYNC) as conn:
        assert conn.execute("select count(*) from marts.fct_invoices").fetchone() == (1,)
        conn.execute("insert into sync.audit_log (actor, action, result) values ('worker:t', 'probe', 'ok')")
        assert denied(conn, "update sync.audit_log set result = 'changed'")
        assert denied(conn, "delete from sync.audit_log")
        assert denied(conn, "truncate sync.audit_log")
        assert denied(conn, "insert into marts.fct_invoices values (9, 1)")
        assert denied(conn, "insert into raw_erp.account_move values (9, 1)")


def test_dry_run_lists_statements_without_running_them_when_asked(module_database: str) -> None:
    with psycopg.connect(module_database) as conn:
        text = [s.as_string(conn) for s in roles.statements(str(conn.info.dbname))]
    assert any("grant select on all tables in schema \"marts\" to \"revloop_analyst\"" in t for t in text)
