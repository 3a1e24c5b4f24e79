"""Fixtures for the Salesforce source: a sandbox per test module, settings from its environment, an admin
client (simple-salesforce) for making changes as a user of the org would, and a load helper."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from psycopg import sql
from simple_salesforce import Salesforce

from pipelines.common.runner import LoadSummary, run_load
from pipelines.salesforce import salesforce_source
from revloop.http import pinned_session
from revloop.settings import SalesforceSettings, Settings
from tests.sandbox_harness import RunningSandbox, start_sandbox

SEED = 42
DATASET = "raw_salesforce"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """A demo-scale org of its own for each test module (changes made by one module stay there)."""
    running = start_sandbox("salesforce", tmp_path_factory.mktemp("sf-sandbox"), seed=SEED, scale="demo")
    try:
        yield running
    finally:
        running.stop()


def salesforce_settings(sandbox: RunningSandbox, **overrides: Any) -> SalesforceSettings:
    """The sandbox's ``REVLOOP_SALESFORCE_*`` environment as settings; ``None`` overrides remove a value."""
    values: dict[str, Any] = {
        key.removeprefix("REVLOOP_SALESFORCE_").lower(): value for key, value in sandbox.env().items()
    }
    values.update(overrides)
    return SalesforceSettings(**{k: v for k, v in values.items() if v is not None})


def make_settings(sandbox: RunningSandbox, home: Path, **overrides: Any) -> Settings:
    return Settings(home=home, salesforce=salesforce_settings(sandbox, **overrides))


def load(settings: Settings, database_url: str, **source_args: Any) -> LoadSummary:
    """One run of the Salesforce load."""
    return run_load("salesforce", lambda context: salesforce_source(context, **source_args), settings, database_url)


class AdminClient:
    """simple-salesforce logged in as the org's admin app, for creating test scenarios."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.sandbox = sandbox
        self.session: requests.Session = pinned_session(sandbox.base_url, sandbox.ca_file)
        self.login()

    def login(self) -> None:
        """Log in again (after a test expired every session of the org)."""
        sandbox = self.sandbox
        app = sandbox.admin("GET", "salesforce/apps")["apps"]["revloop-admin"]
        token = self.session.post(
            f"{sandbox.base_url}/services/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": app["client_id"],
                  "client_secret": app["client_secret"]},
            timeout=30,
        ).json()
        self.sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                             session=self.session, version="62.0")

    def count(self, sobject: str, include_deleted: bool = True) -> int:
        return int(self.sf.query(f"SELECT COUNT() FROM {sobject}", include_deleted=include_deleted)["totalSize"])

    def records(self, soql: str) -> list[dict[str, Any]]:
        return list(self.sf.query_all_iter(soql, include_deleted=True))

    def close(self) -> None:
        self.session.close()


@pytest.fixture(scope="module")
def admin(sandbox: RunningSandbox) -> Iterator[AdminClient]:
    client = AdminClient(sandbox)
    try:
        yield client
    finally:
        client.close()


def anchor_date(sandbox: RunningSandbox) -> dt.date:
    """The date the sandbox seeded its book from (kept in its store)."""
    with sqlite3.connect(sandbox.config.system_dir / "salesforce.sqlite3") as db:
        return dt.date.fromisoformat(db.execute("SELECT value FROM meta WHERE key = 'seeded_on'").fetchone()[0])


def write_store(sandbox: RunningSandbox, statement: str, params: tuple[Any, ...]) -> int:
    """Change the org's store behind the API: for states the API cannot produce (a transaction that
    committed late, a value an older release of the org let in)."""
    db = sqlite3.connect(sandbox.config.system_dir / "salesforce.sqlite3", timeout=30)
    try:
        with db:
            return db.execute(statement, params).rowcount
    finally:
        db.close()


def warehouse_rows(database_url: str, table: str, columns: str = "*", where: str = "") -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            sql.SQL("select {} from {}.{} {}").format(
                sql.SQL(columns), sql.Identifier(DATASET), sql.Identifier(table), sql.SQL(where)
            )
        ).fetchall()


def warehouse_count(database_url: str, table: str) -> int:
    return int(warehouse_rows(database_url, table, "count(*)")[0][0])

