"""``revloop demo`` (what ``make demo`` runs): the whole loop comes up, business happens, Revloop moves it,
the Dagster UI shows it, and Ctrl-C stops everything it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.sandbox_harness import free_port

REVLOOP = str(Path(sys.executable).with_name("revloop"))


def _wait(condition: Callable[[], Any], deadline: float, what: str) -> Any:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {deadline:.0f}s waiting for {what}")


def _scalar(url: str, query: str) -> Any:
    with psycopg.connect(url) as conn:
        if conn.execute("select to_regclass('sync.outbox')").fetchone() == (None,):
            return None
        row = conn.execute(query).fetchone()
    return row[0] if row else None


def _latest_materialization(ui: str, path: list[str]) -> dict[str, Any] | None:
    query = """query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset {
                 assetMaterializations(limit: 1) { timestamp metadataEntries { label } } } } }"""
    answer = httpx.post(f"{ui}/graphql", json={"query": query, "variables": {"key": {"path": path}}}, timeout=30)
    found = (answer.json().get("data") or {}).get("assetOrError") or {}
    materializations = found.get("assetMaterializations") or []
    return materializations[0] if materializations else None


def test_demo_runs_the_whole_loop_and_stops_on_ctrl_c_when_started(tmp_path: Path, fresh_database: str) -> None:
    ports = {name: free_port() for name in ("salesforce", "erp", "payments", "ui", "webhook")}
    env = {**os.environ, "REVLOOP_DATABASE_URL": fresh_database, "REVLOOP_HOME": str(tmp_path / "home")}
    command = [REVLOOP, "demo", "--data-dir", str(tmp_path / "sandboxes"), "--activity", "2",
               f"--ui-port={ports['ui']}", f"--webhook-port={ports['webhook']}",
               *[f"--{name}-port={ports[name]}" for name in ("salesforce", "erp", "payments")]]
    demo = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    output: list[str] = []
    try:
        assert demo.stdout is not None
        until = time.monotonic() + 420
        while time.monotonic() < until:
            line = demo.stdout.readline()
            if not line:
                break
            output.append(line)
            if line.startswith("READY "):
                break
        ready = [line for line in output if line.startswith("READY ")]
        assert ready, "".join(output)
        # keep reading what the demo prints, so its pipe never fills up and blocks it
        threading.Thread(target=lambda: output.extend(demo.stdout or ()), daemon=True).start()
        ui = ready[0].split()[1]
        assert ui == f"http://127.0.0.1:{ports['ui']}"
        assert httpx.get(f"{ui}/server_info", timeout=10).status_code == 200

        # deals won by the business activity become ERP invoices through the warm loop ...
        delivered = _wait(lambda: _scalar(fresh_database, "select count(*) from sync.outbox "
                                          "where flow = 'won_deal_invoice' and state = 'delivered'"),
                          240, "a won deal delivered to the ERP")
        assert delivered >= 1
        beats = _scalar(fresh_database, "select count(*) from sync.loop_heartbeats where stopped_at is null")
        assert beats == 1
        # ... and the UI shows the flow's asset materialized by the loop
        flowed = _wait(lambda: _latest_materialization(ui, ["sync", "won_deal_invoice"]), 60,
                       "the won_deal_invoice materialization in the UI")
        assert {"enqueued", "planned_writes"} <= {entry["label"] for entry in flowed["metadataEntries"]}
        query = ('{ sensorsOrError(repositorySelector: {repositoryName: "__repository__", '
                 'repositoryLocationName: "assets.definitions"}) { ... on Sensors { results { name '
                 'sensorState { status } } } } }')
        sensors = httpx.post(f"{ui}/graphql", json={"query": query}, timeout=30).json()
        states = {s["name"]: s["sensorState"]["status"] for s in sensors["data"]["sensorsOrError"]["results"]}
        assert states == {"sync_safety_net_sensor": "RUNNING"}, json.dumps(sensors)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
    assert demo.returncode == 0, "".join(output)
    # everything it started is gone: the UI, the receiver and the sandboxes no longer answer
    for port in (ports["ui"], ports["webhook"], ports["erp"]):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
        except httpx.HTTPError:
            continue
        raise AssertionError(f"port {port} still answers after Ctrl-C")
    sync_log = tmp_path / "home" / "sync.log"
    assert _scalar(fresh_database, "select count(*) from sync.loop_heartbeats where stopped_at is not null") == 1, (
        "".join(output[-20:]) + "\n--- sync.log ---\n"
        + "\n".join(sync_log.read_text(errors="replace").splitlines()[-40:] if sync_log.exists() else []))
