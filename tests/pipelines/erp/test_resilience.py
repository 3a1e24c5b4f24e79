"""The ERP load under faults: retries, Retry-After, a kill in the middle, and a second run at the same time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pipelines.common.destination import make_pipeline
from pipelines.common.locking import PipelineBusy
from pipelines.common.pii import PiiProtector
from pipelines.common.quarantine import Quarantine
from pipelines.common.runner import LoadContext
from pipelines.erp import erp_source
from pipelines.erp import settings as erp
from pipelines.erp.helpers import ErpReader
from revloop.connectors.erp import Json2Reader, OdooApiError
from revloop.crypto import FieldCipher, MatchHasher, load_keyring
from tests.conftest import REPO_ROOT
from tests.pipelines.erp.conftest import NO_FAULTS, ErpHarness, warehouse_ids, warehouse_rows


@pytest.fixture(autouse=True)
def no_faults_afterwards(erp_harness: ErpHarness) -> Iterator[None]:
    yield
    erp_harness.faults(NO_FAULTS)


def _counters(erp_harness: ErpHarness) -> dict[str, Any]:
    return erp_harness.sandbox.admin("GET", "counters")  # type: ignore[no-any-return]


def _assert_warehouse_matches_erp(erp_harness: ErpHarness, database_url: str) -> None:
    """Same ids as the ERP for every model, no duplicates, and the same write_date for every record."""
    writer = erp_harness.writer()
    for spec in erp.MODELS:
        records = writer.get_model(spec.model).search_read(
            domain=[list(term) for term in spec.domain], fields=["write_date"], context={"active_test": False})
        ids = warehouse_ids(database_url, spec.table)
        assert len(ids) == len(set(ids)), f"duplicates in {spec.table}"
        assert set(ids) == {r["id"] for r in records}, spec.model
        written = dict(warehouse_rows(
            database_url, f"select id, to_char(write_date at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') "
                          f"from raw_erp.{spec.table}"))
        assert written == {r["id"]: r["write_date"] for r in records}, spec.model


def _start_load(erp_harness: ErpHarness, database_url: str) -> subprocess.Popen[str]:
    args = {
        "database_url": database_url, "home": str(erp_harness.home),
        "pipelines_dir": str(erp_harness.pipelines_dir(database_url)),
        "erp": erp_harness.erp.model_dump(mode="json") | {
            "api_key": erp_harness.erp.api_key.get_secret_value(),  # type: ignore[union-attr]
            "reader_api_key": erp_harness.erp.reader_api_key.get_secret_value(),  # type: ignore[union-attr]
        },
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.pipelines.erp.load_process", json.dumps(args)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def _wait_for_requests(erp_harness: ErpHarness, at_least: int, process: subprocess.Popen[str],
                       timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _counters(erp_harness)["requests_by_client"].get("revloop-reader", 0) < at_least:
        assert process.poll() is None, f"the load ended early: {process.communicate()}"
        assert time.monotonic() < deadline, "the load made no progress"
        time.sleep(0.05)


def test_load_is_complete_when_the_erp_fails_often(erp_harness: ErpHarness, fresh_database: str) -> None:
    erp_harness.sandbox.admin("POST", "counters/reset")
    erp_harness.faults({"server_error_rate": 0.15, "rate_limit_rate": 0.1, "retry_after_seconds": 1,
                        "drop_connection_rate": 0.05})

    erp_harness.load(fresh_database)

    erp_harness.faults(NO_FAULTS)
    statuses = _counters(erp_harness)["responses_by_status"]
    assert sum(int(n) for status, n in statuses.items() if status != "200") > 0, statuses
    _assert_warehouse_matches_erp(erp_harness, fresh_database)


def test_retry_after_is_honoured_when_rate_limited(erp_harness: ErpHarness) -> None:
    erp_harness.faults({"rate_limit_rate": 1.0, "retry_after_seconds": 1})
    with Json2Reader(erp_harness.erp) as client, pytest.raises(OdooApiError) as refused:
        client.call("res.country", "search_count", domain=[])
    assert (refused.value.status, refused.value.retry_after, refused.value.transient) == (429, 1.0, True)

    erp_harness.sandbox.admin("POST", "counters/reset")
    lift = threading.Timer(1.5, erp_harness.faults, args=(NO_FAULTS,))
    started = time.monotonic()
    lift.start()
    with ErpReader(erp_harness.erp) as reader:
        assert reader.search_count("res.country", []) > 0
    elapsed = time.monotonic() - started
    lift.join()

    refusals = int(_counters(erp_harness)["responses_by_status"].get("429", 0))
    assert refusals >= 2
    assert elapsed >= refusals * 1.0 - 0.1  # waited the full second the server asked for, each time


def test_bad_request_fails_at_once_when_not_transient(erp_harness: ErpHarness) -> None:
    erp_harness.sandbox.admin("POST", "counters/reset")
    with ErpReader(erp_harness.erp) as reader, pytest.raises(OdooApiError) as failed:
        reader.search_read("res.partner", [("no_such_field", "=", 1)], ["id"], "id asc", 1)
    assert (failed.value.status, failed.value.name, failed.value.transient) == (500, "builtins.ValueError", False)
    assert _counters(erp_harness)["requests_total"] == 1


def test_reader_key_cannot_write_when_used_by_the_load(erp_harness: ErpHarness) -> None:
    with Json2Reader(erp_harness.erp) as client, pytest.raises(OdooApiError) as refused:
        client.call("res.partner", "create", vals_list=[{"name": "Not allowed"}])
    assert (refused.value.status, refused.value.name) == (403, "odoo.exceptions.AccessError")


def test_killed_load_resumes_without_loss_or_duplicates_when_run_again(erp_harness: ErpHarness,
                                                                        fresh_database: str) -> None:
    erp_harness.load(fresh_database)  # a first load, so the killed one is an incremental with deletions
    moves = erp_harness.writer().get_model("account.move")
    created = moves.create(vals_list=[{
        "move_type": "out_invoice", "partner_id": 1001, "currency_id": 2, "date": "2026-11-22",
        "invoice_line_ids": [[0, 0, {"product_id": 3, "quantity": 1, "price_unit": 42}]]} for _ in range(3)])
    moves.unlink(ids=[created[0]])
    moves.write(ids=[created[1]], vals={"ref": "written before the kill"})
    erp_harness.sandbox.admin("POST", "counters/reset")
    erp_harness.faults({"latency_ms_min": 150, "latency_ms_max": 250})

    process = _start_load(erp_harness, fresh_database)
    _wait_for_requests(erp_harness, 8, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    erp_harness.faults(NO_FAULTS)

    moves.write(ids=[created[2]], vals={"ref": "written after the kill"})
    summary = erp_harness.load(fresh_database)

    assert summary.notes.get("deleted", {}).get("account_move") in (None, 1)
    _assert_warehouse_matches_erp(erp_harness, fresh_database)
    refs = dict(warehouse_rows(fresh_database, "select id, ref from raw_erp.account_move where id = any(%s)",
                               (created,)))
    assert refs == {created[1]: "written before the kill", created[2]: "written after the kill"}


def test_pending_package_is_loaded_when_the_load_died_after_extracting(erp_harness: ErpHarness,
                                                                       fresh_database: str) -> None:
    erp_harness.load(fresh_database)
    partners = erp_harness.writer().get_model("res.partner")
    partner_id = partners.create(vals_list=[{"name": "Pending Package Pte. Ltd.", "is_company": True}])[0]
    pipelines_dir = erp_harness.pipelines_dir(fresh_database)

    # Extract only, as a load killed between extraction and loading leaves it: a package on disk.
    keyring = load_keyring("dev", erp_harness.home)
    with Quarantine(fresh_database, "erp", FieldCipher(keyring)) as quarantine:
        context = LoadContext("erp", erp_harness.settings, fresh_database,
                              PiiProtector("erp", FieldCipher(keyring), MatchHasher(keyring)), quarantine, False)
        pipeline = make_pipeline("revloop_erp", "raw_erp", fresh_database, pipelines_dir)
        pipeline.extract(erp_source(context))
        assert pipeline.list_extracted_load_packages()
    assert partner_id not in warehouse_ids(fresh_database, "res_partner")
    later_id = partners.create(vals_list=[{"name": "Written After The Kill Ltd.", "is_company": True}])[0]

    erp_harness.load(fresh_database)

    assert {partner_id, later_id} <= set(warehouse_ids(fresh_database, "res_partner"))
    _assert_warehouse_matches_erp(erp_harness, fresh_database)


def test_second_load_is_refused_when_one_is_running(erp_harness: ErpHarness, fresh_database: str) -> None:
    erp_harness.sandbox.admin("POST", "counters/reset")
    erp_harness.faults({"latency_ms_min": 150, "latency_ms_max": 200})
    process = _start_load(erp_harness, fresh_database)
    try:
        _wait_for_requests(erp_harness, 1, process)
        with pytest.raises(PipelineBusy, match=r"the 'erp' load is already running \(revloop-load:erp:"):
            erp_harness.load(fresh_database)
    finally:
        erp_harness.faults(NO_FAULTS)
        out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["rows_by_table"]["res_partner"] > 0
    _assert_warehouse_matches_erp(erp_harness, fresh_database)
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("select count(*) from raw_erp._dlt_loads").fetchone()[0] == 1
