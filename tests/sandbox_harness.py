"""Starts sandbox servers as real processes on free ports, for tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from sandboxes import control
from sandboxes.registry import SYSTEMS

free_port = control.free_port


@dataclasses.dataclass
class RunningSandbox:
    """One sandbox server process and what a client needs to reach it."""

    system: str
    proc: control.SandboxProcess

    @property
    def config(self):  # type: ignore[no-untyped-def]
        return self.proc.config

    @property
    def base_url(self) -> str:
        return self.config.base_url

    @property
    def ca_file(self) -> Path | None:
        return self.config.tls_dir / "ca.pem" if self.config.tls else None

    def env(self) -> dict[str, str]:
        """The ``REVLOOP_<SYSTEM>_*`` settings a client reads (same as ``revloop sandbox env``)."""
        return SYSTEMS[self.system].load().client_env(self.config)

    def admin(self, method: str, path: str, json: Any = None) -> Any:
        """Call an admin endpoint (``/__sandbox__/<path>``) and return its JSON."""
        with control.http_client(self.config, timeout=600) as client:
            response = client.request(method, f"/__sandbox__/{path.lstrip('/')}", json=json)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        control.stop([self.proc])

    def log(self) -> str:
        return self.proc.log_file.read_text(errors="replace") if self.proc.log_file.exists() else ""


def start_sandbox(
    system: str,
    data_dir: Path,
    *,
    seed: int = 42,
    scale: str = "demo",
    faults: str = "none",
    port: int | None = None,
    timeout: float = 300.0,
) -> RunningSandbox:
    """Start ``system`` serving from ``data_dir`` and return once its health endpoint answers."""
    (config,) = control.configs(
        data_dir, systems=[system], ports={system: port or free_port()}, seed=seed, scale=scale, faults=faults
    )
    proc = control.start(config, detach=False)
    try:
        control.wait_healthy([proc], timeout)
    except BaseException:
        control.stop([proc])
        raise
    return RunningSandbox(system, proc)


__all__ = ["RunningSandbox", "start_sandbox", "free_port"]
