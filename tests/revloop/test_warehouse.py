"""The warehouse connection: a per-run database, and the embedded server used when no URL is set."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from revloop import warehouse
from revloop.settings import Settings


def test_test_run_database_is_usable_when_created(warehouse_url: str) -> None:
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("create table probe (id int primary key)")
        conn.execute("insert into probe values (1)")
        assert conn.execute("select count(*) from probe").fetchone() == (1,)


def test_database_is_gone_when_dropped(warehouse_admin_url: str) -> None:
    url = warehouse.create_database(warehouse_admin_url, "revloop_test_dropme")
    with psycopg.connect(url, autocommit=True) as conn:  # a session left open must not block the drop
        conn.execute("select 1")
        warehouse.drop_database(warehouse_admin_url, "revloop_test_dropme")
    with psycopg.connect(warehouse_admin_url) as conn:
        row = conn.execute("select count(*) from pg_database where datname = 'revloop_test_dropme'").fetchone()
    assert row == (0,)


@pytest.mark.parametrize("name", ["Robert'); drop table x;--", "UPPER", "1starts_with_digit", ""])
def test_database_name_is_refused_when_not_a_plain_identifier(warehouse_admin_url: str, name: str) -> None:
    with pytest.raises(ValueError, match="invalid database name"):
        warehouse.create_database(warehouse_admin_url, name)


def test_embedded_server_is_used_when_no_url_is_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REVLOOP_DATABASE_URL", raising=False)
    settings = Settings(home=tmp_path / "home")
    url = warehouse.database_url(settings)
    try:
        assert "host=" in url and str(tmp_path) in url
        assert warehouse.server_version(url).split(".")[0].isdigit()
    finally:
        assert warehouse.stop_embedded(settings.home)


def test_configured_url_wins_over_the_embedded_server(warehouse_url: str) -> None:
    settings = Settings(database_url=warehouse_url)
    assert warehouse.database_url(settings) == warehouse_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://loader:s3cret@db:5432/wh", "postgresql://loader:***@db:5432/wh"),
        ("postgresql://postgres@127.0.0.1:5432/postgres", "postgresql://postgres@127.0.0.1:5432/postgres"),
    ],
)
def test_password_is_hidden_when_url_is_redacted(url: str, expected: str) -> None:
    assert warehouse.redact(url) == expected


def test_empty_password_is_left_alone_when_url_is_redacted() -> None:
    assert warehouse.redact("postgresql://postgres:@/postgres?host=/tmp/x") == "postgresql://postgres:@/postgres?host=/tmp/x"
