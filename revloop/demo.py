"""``revloop demo``: the whole local loop on embedded defaults, for a first look.

Starts (or joins) the embedded warehouse and the three seeded sandboxes, loads them into the raw layer,
serves the Dagster UI (webserver and daemon, schedules and sensors on) with the same settings, and runs the
loop beside it: the payments webhook receiver, the warm sync loop (reporting every step to the UI's
instance) and a trickle of business activity in the sandboxes (deals won, invoices paid).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]

DAGSTER_YAML = """\
telemetry:
  enabled: false
"""


def dagster_home(home: Path) -> Path:
    """A DAGSTER_HOME under Revloop's home, so runs and schedules persist across demo restarts."""
    directory = (home / "dagster").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    # Create (and migrate) the instance's storage here, once: `dagster dev` and the sync loop start side by
    # side, and two processes creating the same SQLite storage at once leave its schema history forked.
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(directory)):
        pass
    return directory


def start_dagster(env: dict[str, str], home: Path, port: int, log_file: Path) -> subprocess.Popen[bytes]:
    """``dagster dev`` (webserver and daemon) on 127.0.0.1:``port``, in its own process group."""
    dagster = Path(sys.executable).with_name("dagster")
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            [str(dagster), "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT, env={**env, "DAGSTER_HOME": str(dagster_home(home))}, stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )


def start_revloop(args: list[str], env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    """``revloop <args>`` in its own process group, logging to ``log_file``."""
    revloop = Path(sys.executable).with_name("revloop")
    with open(log_file, "ab") as log:
        return subprocess.Popen([str(revloop), *args], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def wait_for_port(process: subprocess.Popen[bytes], url: str, log_file: Path, timeout: float = 60.0) -> None:
    """Wait until ``url`` answers (any status); raises with the log's tail if the process dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{process.args} exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=2)
            return
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s; see {log_file}")


def wait_for_dagster(process: subprocess.Popen[bytes], port: int, log_file: Path, timeout: float = 300.0) -> str:
    """The UI's URL once it answers; raises with the log's tail if the process dies or time runs out."""
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"dagster dev exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                return url
        time.sleep(0.5)
    raise TimeoutError(f"the Dagster UI did not answer within {timeout:.0f}s; see {log_file}")


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM the process group (dagster dev's webserver and daemon), then SIGKILL what remains."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def wait_for_interrupt(on_stop: Callable[[], None]) -> None:
    """Block until Ctrl-C or SIGTERM, then run ``on_stop``."""
    def _raise(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)
    try:
        while True:
            # Nothing to do but wait for a signal; a long sleep keeps the process idle.
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        on_stop()
