"""The CLI end to end: sandboxes up (detached), env, status, faults, doctor, down, through the console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxes import control
from tests.sandbox_harness import free_port

REVLOOP = str(Path(sys.executable).with_name("revloop"))


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REVLOOP, *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


@pytest.fixture(scope="module")
def detached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, int]]]:
    data_dir = tmp_path_factory.mktemp("cli-sandboxes")
    ports = {"salesforce": free_port(), "erp": free_port(), "payments": free_port()}
    result = run(
        "sandbox", "up", "--detach", "--data-dir", str(data_dir), "--seed", "7",
        "--salesforce-port", str(ports["salesforce"]), "--erp-port", str(ports["erp"]),
        "--payments-port", str(ports["payments"]),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield data_dir, ports
    finally:
        run("sandbox", "down", "--data-dir", str(data_dir))


def test_up_prints_each_url_when_detached(detached: tuple[Path, dict[str, int]]) -> None:
    data_dir, ports = detached
    status = run("sandbox", "status", "--data-dir", str(data_dir))
    assert status.returncode == 0
    assert f"https://127.0.0.1:{ports['salesforce']}" in status.stdout
    assert f"http://127.0.0.1:{ports['erp']}" in status.stdout
    assert f"http://127.0.0.1:{ports['payments']}" in status.stdout
    assert status.stdout.count(" up ") >= 3


def test_env_json_groups_client_settings_by_system_when_running(detached: tuple[Path, dict[str, int]]) -> None:
    data_dir, ports = detached
    result = run("sandbox", "env", "--json", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)
    assert {"instance_url", "client_id", "client_secret", "ca_file"} <= set(env["salesforce"])
    assert {"url", "database", "login", "api_key"} <= set(env["erp"])
    assert {"api_base", "secret_key", "webhook_secret"} <= set(env["payments"])
    assert env["salesforce"]["instance_url"] == f"https://127.0.0.1:{ports['salesforce']}"
    assert Path(env["salesforce"]["ca_file"]).is_file()


def test_env_lines_use_the_names_revloop_reads_when_printed(detached: tuple[Path, dict[str, int]]) -> None:
    data_dir, _ = detached
    lines = run("sandbox", "env", "--data-dir", str(data_dir)).stdout.splitlines()
    keys = {line.split("=", 1)[0] for line in lines}
    assert {"REVLOOP_SALESFORCE_INSTANCE_URL", "REVLOOP_ERP_API_KEY", "REVLOOP_PAYMENTS_SECRET_KEY"} <= keys


def test_doctor_reaches_every_system_when_pointed_at_the_sandboxes(
    detached: tuple[Path, dict[str, int]], warehouse_url: str
) -> None:
    data_dir, _ = detached
    result = run("doctor", "--sandbox", "--data-dir", str(data_dir), env={"REVLOOP_DATABASE_URL": warehouse_url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok") >= 4 and "FAIL" not in result.stdout


def test_doctor_names_the_failing_system_when_one_is_down(
    detached: tuple[Path, dict[str, int]], warehouse_url: str
) -> None:
    data_dir, _ = detached
    assert run("sandbox", "faults", "down", "--system", "erp", "--data-dir", str(data_dir)).returncode == 0
    try:
        result = run("doctor", "--sandbox", "--data-dir", str(data_dir), env={"REVLOOP_DATABASE_URL": warehouse_url})
    finally:
        run("sandbox", "faults", "none", "--system", "erp", "--data-dir", str(data_dir))
    assert result.returncode == 1
    failing = [line for line in result.stdout.splitlines() if "FAIL" in line]
    assert len(failing) == 1 and "erp" in failing[0]


def test_down_stops_every_process_when_detached_set_recorded(tmp_path: Path) -> None:
    ports = {"salesforce": free_port(), "erp": free_port(), "payments": free_port()}
    args = [f"--{name}-port={port}" for name, port in ports.items()]
    assert run("sandbox", "up", "--detach", "--scale", "empty", "--data-dir", str(tmp_path), *args).returncode == 0
    recorded = control.read_run_file(tmp_path)
    assert len(recorded) == 3 and all(p.alive() for p in recorded)
    result = run("sandbox", "down", "--data-dir", str(tmp_path))
    assert result.returncode == 0 and "stopped" in result.stdout
    assert not any(p.alive() for p in recorded)


def test_env_explains_what_to_do_when_nothing_was_started(tmp_path: Path) -> None:
    result = run("sandbox", "env", "--data-dir", str(tmp_path))
    assert result.returncode == 1 and "revloop sandbox up" in result.stderr


def test_up_refuses_with_a_clear_message_when_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("sandbox", "up", "--detach", "--data-dir", str(tmp_path), f"--erp-port={port}",
                     f"--salesforce-port={free_port()}", f"--payments-port={free_port()}")
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "already in use" in result.stderr


def test_bad_scale_is_refused_when_given() -> None:
    result = run("sandbox", "up", "--scale", "huge")
    assert result.returncode == 2 and "scale" in result.stderr


def test_keys_new_then_rotate_keeps_old_keys_when_run(tmp_path: Path) -> None:
    from revloop.crypto import Keyring

    path = tmp_path / "keys" / "keyring.json"
    assert run("keys", "new", str(path)).returncode == 0
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert run("keys", "rotate", str(path), "--key-id", "k2").returncode == 0
    keyring = Keyring.from_json(path.read_text())
    assert keyring.active_key_id == "k2" and set(keyring.keys) == {"k1", "k2"}
    again = run("keys", "new", str(path))
    assert again.returncode == 1 and "exists" in again.stderr


def test_demo_loads_the_sandboxes_and_prints_ready_when_detached(tmp_path: Path, fresh_database: str) -> None:
    ports = {name: free_port() for name in ("salesforce", "erp", "payments")}
    data_dir = tmp_path / "sandboxes"
    result = run(
        "demo", "--detach", "--data-dir", str(data_dir), *[f"--{name}-port={port}" for name, port in ports.items()],
        env={"REVLOOP_DATABASE_URL": fresh_database, "REVLOOP_HOME": str(tmp_path / "home")},
    )
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"READY https://127.0.0.1:{ports['salesforce']}" in result.stdout.splitlines()
        import psycopg

        with psycopg.connect(fresh_database) as conn:
            opportunities = conn.execute("select count(*) from raw_salesforce.opportunity").fetchone()
            invoices = conn.execute("select count(*) from raw_erp.account_move").fetchone()
            charges = conn.execute("select count(*) from raw_payments.charge").fetchone()
        assert opportunities and invoices and charges and min(opportunities[0], invoices[0], charges[0]) > 0
    finally:
        run("sandbox", "down", "--data-dir", str(data_dir))
