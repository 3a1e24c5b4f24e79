"""Fixtures for the payments source: sandboxes, settings built from their environment, loads and lookups."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import stripe
from psycopg import sql

from pipelines.common.runner import LoadSummary, run_load
from pipelines.payments import payments_source
from revloop.settings import PaymentsSettings, Settings
from tests.sandbox_harness import RunningSandbox, start_sandbox

DATASET = "raw_payments"

LISTS = {
    "customer": "customers", "product": "products", "price": "prices", "invoice": "invoices",
    "payment_intent": "payment_intents", "charge": "charges", "refund": "refunds", "dispute": "disputes",
    "balance_transaction": "balance_transactions",
}
"""Loaded table -> the SDK's list service (``client.v1.<service>``)."""


def payments_settings(sandbox: RunningSandbox, home: Path) -> Settings:
    """Revloop's settings for this sandbox, read from its ``REVLOOP_PAYMENTS_*`` environment."""
    env = sandbox.env()
    fields = {k.removeprefix("REVLOOP_PAYMENTS_").lower(): v for k, v in env.items()}
    return Settings(home=home, payments=PaymentsSettings(**fields))


def secret_client(sandbox: RunningSandbox) -> stripe.StripeClient:
    """The write-capable client a user of the payments platform would change data with."""
    key = sandbox.env()["REVLOOP_PAYMENTS_SECRET_KEY"]
    return stripe.StripeClient(key, base_addresses={"api": sandbox.base_url}, max_network_retries=2)


def sandbox_ids(client: stripe.StripeClient, table: str) -> set[str]:
    service = getattr(client.v1, LISTS[table])
    return {obj.id for obj in service.list(params={"limit": 100}).auto_paging_iter()}


def warehouse_rows(url: str, table: str, columns: str = "id", where: str = "true") -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        exists = conn.execute("select to_regclass(%s)", (f"{DATASET}.{table}",)).fetchone()
        if not exists or exists[0] is None:
            return []
        query = sql.SQL("select {} from {}.{} as t where {}").format(
            sql.SQL(columns), sql.Identifier(DATASET), sql.Identifier(table), sql.SQL(where)
        )
        return conn.execute(query).fetchall()


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


Loader = Callable[..., LoadSummary]


def make_loader(settings: Settings, url: str) -> Loader:
    def load(*, full_refresh: bool = False, events_overlap_seconds: float | None = None) -> LoadSummary:
        return run_load("payments", payments_source, settings, url, full_refresh=full_refresh,
                        events_overlap_seconds=events_overlap_seconds)

    return load


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """A demo-scale payments sandbox for one test module (modules change its data independently)."""
    running = start_sandbox("payments", tmp_path_factory.mktemp("payments-sandbox"), scale="demo")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def settings(sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return payments_settings(sandbox, tmp_path_factory.mktemp("revloop-home"))


@pytest.fixture(scope="module")
def client(sandbox: RunningSandbox) -> stripe.StripeClient:
    return secret_client(sandbox)
