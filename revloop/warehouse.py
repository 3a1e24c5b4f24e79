"""The warehouse connection: ``REVLOOP_DATABASE_URL`` when set, else an embedded PostgreSQL (pgserver).

The embedded server keeps its data under ``<home>/pgdata`` and outlives the process that started it,
so the CLI, Dagster and tests all reach the same warehouse until ``revloop warehouse stop``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import psycopg
from psycopg import sql

from revloop.settings import Settings

logger = logging.getLogger(__name__)

_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or prepared."""


def embedded_url(home: Path) -> str:
    """Start (or join) the embedded PostgreSQL under ``home/pgdata`` and return its URL."""
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp: harmless
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import pgserver  # imported lazily: it pulls psutil/platformdirs and starts processes

    pgdata = (home / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:  # pgserver raises bare exceptions from initdb/pg_ctl
        raise WarehouseError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    return str(server.get_uri())


def stop_embedded(home: Path) -> bool:
    """Stop the embedded server if it runs; True when one was stopped."""
    pgdata = (home / "pgdata").resolve()
    if not (pgdata / "postmaster.pid").exists():
        return False
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "stop"], pgdata=pgdata, user="pgserver" if _is_root() else None)
    return True


def _is_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0


def database_url(settings: Settings) -> str:
    """The warehouse URL Revloop uses."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return embedded_url(settings.home)


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = database
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in info.items() if v is not None})


def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``admin_url``; returns its URL."""
    if not _DATABASE_NAME.match(name):
        raise ValueError(f"invalid database name {name!r}")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name``, ending any sessions still connected to it."""
    if not _DATABASE_NAME.match(name):
        raise ValueError(f"invalid database name {name!r}")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def server_version(url: str, timeout: float = 5.0) -> str:
    """The server's version string; raises :class:`WarehouseError` when unreachable."""
    try:
        with psycopg.connect(url, connect_timeout=int(timeout)) as conn:
            row = conn.execute("show server_version").fetchone()
    except psycopg.Error as exc:
        raise WarehouseError(f"cannot reach the warehouse: {exc}") from exc
    return str(row[0]) if row else "unknown"


def redact(url: str) -> str:
    """``url`` with any password replaced, safe to print."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)
