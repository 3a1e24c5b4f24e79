"""Faults, expiring tokens, a rotating refresh-token chain, a killed load, and two loads at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from pipelines.salesforce import settings as constants
from pipelines.salesforce.schema import table_name
from revloop.crypto import load_keyring
from tests.pipelines.salesforce.conftest import (
    AdminClient,
    load,
    make_settings,
    warehouse_count,
    warehouse_rows,
)
from tests.pipelines.salesforce.load_process import BUSY_EXIT_STATUS
from tests.sandbox_harness import RunningSandbox

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def faults(sandbox: RunningSandbox) -> Iterator[RunningSandbox]:
    """The sandbox, with its faults switched off again after the test."""
    try:
        yield sandbox
    finally:
        sandbox.admin("PUT", "faults", {"profile": "none"})


def assert_matches_org(database_url: str, admin: AdminClient) -> None:
    """Every object's ids equal the org's (queryAll), each once; opportunity amounts equal."""
    for sobject in constants.OBJECTS:
        org_ids = {r["Id"] for r in admin.records(f"SELECT Id FROM {sobject}")}
        loaded = [row[0] for row in warehouse_rows(database_url, table_name(sobject), "id")]
        assert len(loaded) == len(set(loaded)), f"duplicates in {sobject}"
        assert set(loaded) == org_ids, sobject
    org = {r["Id"]: Decimal(str(r["Amount"])) for r in admin.records("SELECT Id, Amount FROM Opportunity")}
    assert dict(warehouse_rows(database_url, "opportunity", "id, amount")) == org


def process_env(sandbox: RunningSandbox, home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, **sandbox.env(), "REVLOOP_HOME": str(home), **extra}


def test_load_completes_when_the_org_fails_and_rate_limits_transiently(
    faults: RunningSandbox, fresh_database: str, tmp_path: Path, admin: AdminClient
) -> None:
    faults.admin("POST", "counters/reset")
    faults.admin(
        "PUT", "faults",
        {"server_error_rate": 0.15, "rate_limit_rate": 0.1, "retry_after_seconds": 1, "drop_connection_rate": 0.05},
    )
    load(make_settings(faults, tmp_path), fresh_database, bulk_threshold=1)
    faults.admin("PUT", "faults", {"profile": "none"})

    statuses = faults.admin("GET", "counters")["responses_by_status"]
    assert int(statuses.get("503", 0)) + int(statuses.get("500", 0)) > 0
    assert int(statuses.get("403", 0)) > 0  # REQUEST_LIMIT_EXCEEDED with Retry-After
    assert_matches_org(fresh_database, admin)


def test_token_is_refreshed_when_the_session_expires_mid_load(
    faults: RunningSandbox, fresh_database: str, tmp_path: Path, admin: AdminClient
) -> None:
    # every call slow enough that each object's few calls outlast the token, although the objects are read
    # side by side: the session expires in the middle of the load, whatever the order the reads take
    faults.admin("PUT", "faults", {"profile": "short-tokens", "token_ttl_seconds": 1,
                                   "latency_ms_min": 400, "latency_ms_max": 500})
    summary = load(make_settings(faults, tmp_path), fresh_database)
    faults.admin("PUT", "faults", {"profile": "none"})

    assert summary.notes["token_refreshes"] >= 1
    assert_matches_org(fresh_database, admin)


def test_token_is_refreshed_when_every_session_was_revoked_between_runs(
    sandbox: RunningSandbox, fresh_database: str, tmp_path: Path, admin: AdminClient
) -> None:
    settings = make_settings(sandbox, tmp_path)
    load(settings, fresh_database)
    assert sandbox.admin("POST", "salesforce/tokens/expire")["expired"] >= 1
    admin.login()

    summary = load(settings, fresh_database)

    assert summary.notes["token_refreshes"] == 1


def test_rotating_refresh_chain_survives_when_two_processes_refresh_at_once(
    sandbox: RunningSandbox, fresh_database: str, tmp_path: Path
) -> None:
    load_keyring("dev", tmp_path)  # both processes share the one keyring
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from revloop.connectors.salesforce import SharedTokens
        from revloop.crypto import FieldCipher, load_keyring
        from revloop.settings import SalesforceSettings
        tokens = SharedTokens(SalesforceSettings(), sys.argv[1], FieldCipher(load_keyring("dev", Path(sys.argv[2]))))
        assert tokens.grant == "refresh_token", tokens.grant
        for _ in range(5):
            tokens.refresh()
        print("REFRESHED")
        """
    )
    env = process_env(sandbox, tmp_path)
    for reader_variable in ("REVLOOP_SALESFORCE_READER_CLIENT_ID", "REVLOOP_SALESFORCE_READER_CLIENT_SECRET"):
        env.pop(reader_variable)
    processes = [
        subprocess.Popen([sys.executable, "-c", script, fresh_database, str(tmp_path)], cwd=REPO_ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err[-2000:] for _, err in outputs]

    # The chain is intact: a third process continues it with the newest refresh token.
    rerun = subprocess.run([sys.executable, "-c", script, fresh_database, str(tmp_path)], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    with psycopg.connect(fresh_database) as conn:
        rotations, refresh_enc = conn.execute(
            "select rotations, refresh_token_enc from revloop_state.oauth_tokens where system = 'salesforce'"
        ).fetchone()
    assert rotations == 15
    assert refresh_enc.startswith("enc:v1:")


def test_second_load_is_refused_when_the_same_load_is_running(
    faults: RunningSandbox, fresh_database: str, tmp_path: Path
) -> None:
    faults.admin("PUT", "faults", {"latency_ms_min": 50, "latency_ms_max": 100})
    env = process_env(faults, tmp_path)
    load_keyring("dev", tmp_path)
    command = [sys.executable, "-m", "tests.pipelines.salesforce.load_process", fresh_database]
    processes = [
        subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    codes = sorted(p.returncode for p in processes)
    assert codes == [0, BUSY_EXIT_STATUS], [err[-2000:] for _, err in outputs]
    busy = next(out for out, _ in outputs if out.startswith("BUSY"))
    assert "the 'salesforce' load is already running (revloop-load:salesforce:" in busy


def test_killed_load_resumes_without_loss_or_duplicates_when_run_again(
    faults: RunningSandbox, fresh_database: str, tmp_path: Path, admin: AdminClient
) -> None:
    faults.admin("POST", "counters/reset")
    faults.admin("PUT", "faults", {"latency_ms_min": 100, "latency_ms_max": 150})
    load_keyring("dev", tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.pipelines.salesforce.load_process", fresh_database, "1"],
        cwd=REPO_ROOT, env=process_env(faults, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        served = 0
        while time.monotonic() < deadline and process.poll() is None:
            served = sum(faults.admin("GET", "counters")["requests_by_client"].values())
            if served >= 15:  # past the first objects' bulk jobs, well before the end
                break
            time.sleep(0.05)
        assert process.poll() is None, "the load finished before it could be killed"
        assert served >= 15
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    faults.admin("PUT", "faults", {"profile": "none"})

    summary = load(make_settings(faults, tmp_path), fresh_database, bulk_threshold=1)

    assert summary.rows_loaded > 0
    assert_matches_org(fresh_database, admin)
    for sobject in constants.OBJECTS:
        assert warehouse_count(fresh_database, table_name(sobject)) == admin.count(sobject)
