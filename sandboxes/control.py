"""Starting, stopping and locating the three sandbox servers (what ``revloop sandbox ...`` drives).

Each system runs as its own ``python -m sandboxes serve`` process; a detached set is recorded in
``<data_dir>/run.json`` so later commands (``down``, ``env``, ``reset``) find the ports and processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from sandboxes.common.config import SandboxConfig
from sandboxes.common.tls import ensure_tls_files
from sandboxes.registry import SYSTEMS

RUN_FILE = "run.json"


class SandboxError(RuntimeError):
    """A sandbox could not be started, reached or stopped."""


@dataclasses.dataclass
class SandboxProcess:
    config: SandboxConfig
    pid: int
    log_file: Path
    process: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def configs(
    data_dir: Path,
    *,
    systems: Iterable[str] = tuple(SYSTEMS),
    ports: dict[str, int] | None = None,
    seed: int = 42,
    scale: str = "demo",
    faults: str = "none",
    host: str = "127.0.0.1",
    tls: dict[str, bool] | None = None,
) -> list[SandboxConfig]:
    """The start-up settings of each requested system."""
    ports = ports or {}
    tls = tls or {}
    result = []
    for name in systems:
        if name not in SYSTEMS:
            raise SandboxError(f"unknown sandbox system {name!r}; known: {', '.join(SYSTEMS)}")
        spec = SYSTEMS[name]
        result.append(
            SandboxConfig(
                system=name, port=ports.get(name) or spec.default_port, data_dir=data_dir.resolve(),
                host=host, seed=seed, scale=scale, faults=faults, tls=tls.get(name, spec.tls),
            )
        )
    return result


def http_client(config: SandboxConfig, timeout: float = 10.0) -> httpx.Client:
    """An httpx client that trusts the sandbox CA (only) for TLS systems."""
    verify: Any = ssl.create_default_context(cafile=str(config.tls_dir / "ca.pem")) if config.tls else True
    return httpx.Client(base_url=config.base_url, verify=verify, timeout=timeout, trust_env=False)


def alive(config: SandboxConfig, timeout: float = 2.0) -> bool:
    """Whether the sandbox answers (its cheap liveness endpoint)."""
    try:
        with http_client(config, timeout) as client:
            return client.get("/__sandbox__/ping").status_code == 200
    except (httpx.HTTPError, OSError):
        return False


def health(config: SandboxConfig, timeout: float = 60.0) -> dict[str, Any] | None:
    """The sandbox's health document with its record counts, or None when it does not answer.

    Counting a large book takes seconds; use :func:`alive` to poll for start-up.
    """
    try:
        with http_client(config, timeout) as client:
            response = client.get("/__sandbox__/health")
        return response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, OSError, ValueError):
        return None


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (for tests and benchmarks that run side by side)."""
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def start(config: SandboxConfig, *, detach: bool, cwd: Path | None = None,
          own_session: bool = False) -> SandboxProcess:
    """Launch one sandbox process (not yet waiting for it to answer).

    A detached process, or one started with ``own_session``, runs in a session of its own: a Ctrl-C in the
    terminal does not reach it, so its parent decides when it stops (``revloop demo`` stops the sync loop
    first, while the systems it talks to still answer).
    """
    if _port_in_use(config.host, config.port):
        raise SandboxError(
            f"port {config.port} for the {config.system} sandbox is already in use "
            f"(is it running already? try 'revloop sandbox down', or pick another port)"
        )
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if config.tls:
        ensure_tls_files(config.tls_dir)
    log_file = config.data_dir / f"{config.system}.log"
    cmd = [
        sys.executable, "-m", "sandboxes", "serve", config.system,
        "--port", str(config.port), "--host", config.host, "--data-dir", str(config.data_dir),
        "--seed", str(config.seed), "--scale", config.scale, "--faults", config.faults,
        "--tls" if config.tls else "--no-tls",
    ]
    repo_root = cwd or Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo_root), os.environ.get("PYTHONPATH")]))}
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            cmd, cwd=repo_root, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=detach or own_session, stdin=subprocess.DEVNULL,
        )
    return SandboxProcess(config, process.pid, log_file, process)


def wait_healthy(processes: list[SandboxProcess], timeout: float, interval: float = 0.25) -> None:
    """Wait until every process answers its liveness endpoint; raise with its log tail otherwise.

    One client per process for the whole wait: building a TLS context for every poll takes CPU from
    the seeding being waited for.
    """
    deadline = time.monotonic() + timeout
    pending = list(processes)
    clients = {id(proc): http_client(proc.config, timeout=2.0) for proc in processes}
    try:
        while pending:
            for proc in list(pending):
                if not proc.alive():
                    raise SandboxError(
                        f"the {proc.config.system} sandbox exited during start-up:\n{_tail(proc.log_file)}"
                    )
                with contextlib.suppress(httpx.HTTPError, OSError):
                    if clients[id(proc)].get("/__sandbox__/ping").status_code == 200:
                        pending.remove(proc)
            if pending and time.monotonic() > deadline:
                names = ", ".join(p.config.system for p in pending)
                raise SandboxError(f"sandbox(es) {names} not answering after {timeout:.0f}s; see {pending[0].log_file}")
            if pending:
                time.sleep(interval)
    finally:
        for client in clients.values():
            client.close()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def up(cfgs: list[SandboxConfig], *, detach: bool, timeout: float = 900.0,
       own_session: bool = False) -> list[SandboxProcess]:
    """Start every system (see :func:`start`) and wait until all answer; on failure, stop those already started."""
    started: list[SandboxProcess] = []
    try:
        for config in cfgs:
            started.append(start(config, detach=detach, own_session=own_session))
        wait_healthy(started, timeout)
    except BaseException:
        stop(started)
        raise
    if detach:
        write_run_file(cfgs[0].data_dir, started)
    return started


def stop(processes: Iterable[SandboxProcess], timeout: float = 10.0) -> list[str]:
    """Terminate the given processes (SIGTERM, then SIGKILL after ``timeout``); returns the systems stopped."""
    stopped = []
    for proc in processes:
        if not proc.alive():
            continue
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout
        while proc.alive() and time.monotonic() < deadline:
            if proc.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.process.wait(timeout=0.1)
            else:
                time.sleep(0.1)
        if proc.alive():
            os.kill(proc.pid, signal.SIGKILL)
        stopped.append(proc.config.system)
    return stopped


def write_run_file(data_dir: Path, processes: list[SandboxProcess]) -> None:
    entries = [
        {**{k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(p.config).items()},
         "pid": p.pid, "log_file": str(p.log_file)}
        for p in processes
    ]
    (data_dir / RUN_FILE).write_text(json.dumps(entries, indent=2))


def read_run_file(data_dir: Path) -> list[SandboxProcess]:
    """The detached sandboxes recorded under ``data_dir`` (whether or not they still run)."""
    path = data_dir / RUN_FILE
    if not path.exists():
        return []
    result = []
    for entry in json.loads(path.read_text()):
        pid = entry.pop("pid")
        log_file = Path(entry.pop("log_file"))
        entry["data_dir"] = Path(entry["data_dir"])
        result.append(SandboxProcess(SandboxConfig(**entry), pid, log_file))
    return result


def down(data_dir: Path) -> list[str]:
    """Stop the detached sandboxes recorded under ``data_dir``."""
    stopped = stop(read_run_file(data_dir))
    (data_dir / RUN_FILE).unlink(missing_ok=True)
    return stopped


def client_env(cfgs: Iterable[SandboxConfig]) -> dict[str, dict[str, str]]:
    """Per system, the ``REVLOOP_*`` settings a client needs; systems never started are left out."""
    result: dict[str, dict[str, str]] = {}
    for config in cfgs:
        if not config.system_dir.exists():  # never started here: no credentials yet
            continue
        try:
            result[config.system] = SYSTEMS[config.system].load().client_env(config)
        except FileNotFoundError:
            continue
    return result


def reset(config: SandboxConfig, seed: int | None = None, scale: str | None = None) -> dict[str, Any]:
    """Ask a running sandbox to wipe and re-seed its state."""
    body: dict[str, Any] = {}
    if seed is not None:
        body["seed"] = seed
    if scale is not None:
        body["scale"] = scale
    with http_client(config, timeout=1800) as client:
        response = client.post("/__sandbox__/reset", json=body)
    if response.status_code != 200:
        raise SandboxError(f"{config.system} reset failed: {response.status_code} {response.text}")
    return response.json()
