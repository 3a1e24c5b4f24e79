"""Failures: a load killed midway resumes cleanly, a second run is refused, faults are retried, keys expire."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import stripe

from pipelines.common.locking import PipelineBusy
from pipelines.common.runner import run_load
from pipelines.payments import payments_source
from pipelines.payments.helpers import StripeReader
from revloop.settings import Settings
from tests.conftest import REPO_ROOT
from tests.pipelines.payments.conftest import (
    LISTS,
    make_loader,
    payments_settings,
    sandbox_ids,
    secret_client,
    wait_for,
    warehouse_rows,
)
from tests.sandbox_harness import RunningSandbox

LOAD_IN_SUBPROCESS = """
import json, sys
from pathlib import Path
from pipelines.common.runner import run_load
from pipelines.payments import payments_source
from pipelines.payments.helpers import StripeReader
from revloop.settings import PaymentsSettings, Settings
cfg = json.loads(sys.argv[1])
settings = Settings(home=Path(cfg["home"]), payments=PaymentsSettings(**cfg["payments"]))
summary = run_load("payments", payments_source, settings, cfg["url"])
print(json.dumps({"mode": summary.notes["mode"], "rows": summary.rows_loaded}))
"""

COMPARED = {
    "invoice": "status, amount_due, amount_paid, amount_remaining",
    "charge": "status, amount, amount_refunded",
    "payment_intent": "status, amount, amount_received",
}


@pytest.fixture(autouse=True)
def no_faults(sandbox: RunningSandbox) -> Iterator[None]:
    sandbox.admin("PUT", "faults", {"profile": "none"})
    yield
    sandbox.admin("PUT", "faults", {"profile": "none"})


def start_load_process(settings: Settings, url: str) -> subprocess.Popen[bytes]:
    payments = {k: (v.get_secret_value() if hasattr(v, "get_secret_value") else v)
                for k, v in settings.payments.model_dump().items() if v is not None}
    cfg = {"home": str(settings.home), "url": url, "payments": payments}
    return subprocess.Popen(
        [sys.executable, "-c", LOAD_IN_SUBPROCESS, json.dumps(cfg)], cwd=REPO_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def assert_warehouse_matches_sandbox(url: str, sandbox: RunningSandbox) -> None:
    """Same ids per object as the sandbox, no duplicates, and the same states and amounts."""
    reader = secret_client(sandbox)
    for table in LISTS:
        loaded = [row[0] for row in warehouse_rows(url, table, "id", "not is_deleted")]
        assert len(loaded) == len(set(loaded)), f"duplicates in {table}"
        assert set(loaded) == sandbox_ids(reader, table), table
    for table, columns in COMPARED.items():
        stored = {row[0]: row[1:] for row in warehouse_rows(url, table, f"id, {columns}")}
        service = getattr(reader.v1, LISTS[table])
        for obj in service.list(params={"limit": 100}).auto_paging_iter():
            assert stored[obj.id] == tuple(obj[c.strip()] for c in columns.split(",")), (table, obj.id)
    events = [row[0] for row in warehouse_rows(url, "event", "id")]
    assert len(events) == len(set(events))
    assert set(events) == {e.id for e in reader.v1.events.list(params={"limit": 100}).auto_paging_iter()}


@pytest.mark.parametrize("moment", ["extracting", "loading"])
def test_load_resumes_without_loss_or_duplicates_when_killed(
    moment: str, sandbox: RunningSandbox, fresh_database: str, tmp_path: Path
) -> None:
    settings = payments_settings(sandbox, tmp_path / "home")
    # Slow answers keep the load in flight long enough to be killed at the chosen moment.
    sandbox.admin("PUT", "faults", {"profile": "none", "latency_ms_min": 15, "latency_ms_max": 30})
    sandbox.admin("POST", "counters/reset")
    process = start_load_process(settings, fresh_database)
    try:
        if moment == "extracting":
            wait_for(lambda: sandbox.admin("GET", "counters")["requests_total"] >= 12, timeout=60)
        else:
            wait_for(lambda: warehouse_rows(fresh_database, "_dlt_version", "1") or process.poll() is not None,
                     timeout=60, interval=0.01)
        assert process.poll() is None, "the load finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    sandbox.admin("PUT", "faults", {"profile": "none"})
    # A change between the kill and the resume must be picked up too.
    client = secret_client(sandbox)
    client.v1.customers.create(params={"name": "After The Crash Pte. Ltd.", "email": "ap@afterthecrash.example"})

    make_loader(settings, fresh_database)()

    assert_warehouse_matches_sandbox(fresh_database, sandbox)


def test_second_run_is_refused_with_a_clear_message_when_a_load_is_running(
    sandbox: RunningSandbox, fresh_database: str, tmp_path: Path
) -> None:
    settings = payments_settings(sandbox, tmp_path / "home")
    sandbox.admin("PUT", "faults", {"profile": "none", "latency_ms_min": 20, "latency_ms_max": 40})
    outcome: dict[str, object] = {}

    def first_load() -> None:
        try:
            outcome["summary"] = make_loader(settings, fresh_database)()
        except BaseException as exc:  # reported by the assertion below
            outcome["error"] = exc

    first = threading.Thread(target=first_load)
    first.start()
    try:
        def holding_lock() -> bool:
            with psycopg.connect(fresh_database) as conn:
                row = conn.execute("select count(*) from pg_stat_activity where datname = current_database()"
                                   " and application_name like 'revloop-load:payments:%'").fetchone()
            return bool(row and row[0])

        wait_for(holding_lock, timeout=60)
        with pytest.raises(PipelineBusy, match="'payments' load is already running"):
            run_load("payments", payments_source, payments_settings(sandbox, tmp_path / "other"), fresh_database)
    finally:
        sandbox.admin("PUT", "faults", {"profile": "none"})
        first.join(timeout=120)
    assert "error" not in outcome, outcome.get("error")
    assert_warehouse_matches_sandbox(fresh_database, sandbox)


def test_reader_retries_on_its_own_when_the_sdk_gives_up_on_server_errors(sandbox: RunningSandbox) -> None:
    env = sandbox.env()
    client = stripe.StripeClient(env["REVLOOP_PAYMENTS_READER_KEY"], base_addresses={"api": sandbox.base_url},
                                 max_network_retries=0)
    reader = StripeReader(client, attempts=30, base_seconds=0.001, max_wait_seconds=0.01)
    expected = sorted(sandbox_ids(secret_client(sandbox), "customer"))
    sandbox.admin("PUT", "faults", {"profile": "none", "server_error_rate": 0.5, "drop_connection_rate": 0.1})
    sandbox.admin("POST", "counters/reset")

    # The faults are random (a listing of one page can come through clean), so list until the server has
    # failed at least once; every listing must be complete.
    listings = []
    deadline = time.monotonic() + 60
    counters = sandbox.admin("GET", "counters")
    while not counters["responses_by_status"].get("500") and time.monotonic() < deadline:
        listings.append(sorted(record["id"] for page in reader.pages("/v1/customers") for record in page.records))
        counters = sandbox.admin("GET", "counters")

    sandbox.admin("PUT", "faults", {"profile": "none"})
    assert counters["responses_by_status"].get("500", 0) > 0
    assert listings and all(ids == expected for ids in listings)


def test_reader_does_not_retry_when_the_request_is_invalid(sandbox: RunningSandbox) -> None:
    client = stripe.StripeClient(sandbox.env()["REVLOOP_PAYMENTS_READER_KEY"],
                                 base_addresses={"api": sandbox.base_url}, max_network_retries=0)
    sandbox.admin("POST", "counters/reset")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        StripeReader(client, base_seconds=0.001).get("/v1/customers", {"limit": 1000})
    assert caught.value.http_status == 400 and caught.value.param == "limit"
    assert sandbox.admin("GET", "counters")["requests_total"] == 1


@pytest.mark.parametrize(
    "faults",
    [
        {"profile": "flaky"},
        {"profile": "none", "rate_limit_rate": 0.1, "retry_after_seconds": 1},
    ],
    ids=["flaky", "429"],
)
def test_load_is_complete_when_the_api_fails_transiently(
    faults: dict[str, object], sandbox: RunningSandbox, fresh_database: str, tmp_path: Path
) -> None:
    sandbox.admin("PUT", "faults", faults)
    sandbox.admin("POST", "counters/reset")

    summary = make_loader(payments_settings(sandbox, tmp_path / "home"), fresh_database)()

    statuses = sandbox.admin("GET", "counters")["responses_by_status"]
    sandbox.admin("PUT", "faults", {"profile": "none"})
    assert set(statuses) - {"200"}, "no fault was injected"
    assert summary.quarantined == 0
    assert_warehouse_matches_sandbox(fresh_database, sandbox)


def test_another_machine_resumes_incrementally_when_its_working_dir_is_empty(
    sandbox: RunningSandbox, fresh_database: str, tmp_path: Path
) -> None:
    first = payments_settings(sandbox, tmp_path / "first")
    make_loader(first, fresh_database)()
    second = payments_settings(sandbox, tmp_path / "second")
    (tmp_path / "second").mkdir()
    shutil.copy(tmp_path / "first" / "keyring.json", tmp_path / "second" / "keyring.json")

    summary = make_loader(second, fresh_database)()

    assert summary.notes["mode"] == "incremental"
    assert summary.notes["events_cursor"] >= make_loader(first, fresh_database)().notes["events_cursor"] - 1


def test_load_fails_clearly_and_changes_nothing_when_the_read_key_has_expired(
    sandbox: RunningSandbox, fresh_database: str, tmp_path: Path
) -> None:
    settings = payments_settings(sandbox, tmp_path / "home")
    make_loader(settings, fresh_database)()
    reader_key = settings.payments.reader_key.get_secret_value()  # type: ignore[union-attr]
    sandbox.admin("POST", "payments/keys/roll", {"key": reader_key, "expires_in_seconds": 0})
    before = warehouse_rows(fresh_database, "_dlt_loads", "count(*)")[0]

    with pytest.raises(Exception) as caught:  # dlt wraps the source's error in its step failure
        make_loader(settings, fresh_database)()

    cause: BaseException | None = caught.value
    while cause is not None and not isinstance(cause, stripe.AuthenticationError):
        cause = cause.__cause__ or cause.__context__
    assert isinstance(cause, stripe.AuthenticationError) and cause.http_status == 401
    assert "Expired API Key" in str(caught.value)
    assert warehouse_rows(fresh_database, "_dlt_loads", "count(*)")[0] == before
    renewed = payments_settings(sandbox, tmp_path / "home")
    assert renewed.payments.reader_key != settings.payments.reader_key
    assert make_loader(renewed, fresh_database)().notes["mode"] == "incremental"
