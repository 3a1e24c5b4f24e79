"""Starts sandbox servers as real processes on free ports, for tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from revloop.settings import ErpSettings, PaymentsSettings, SalesforceSettings, Settings
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


__all__ = ["RunningSandbox", "start_sandbox", "free_port", "settings_for", "load_book"]


def settings_for(sandboxes: dict[str, RunningSandbox], home: Path, **overrides: Any) -> Settings:
    """Revloop's settings pointing at running sandboxes (as ``revloop sandbox env`` would configure it)."""

    def fields(system: str) -> dict[str, str]:
        prefix = f"REVLOOP_{system.upper()}_"
        return {k.removeprefix(prefix).lower(): v for k, v in sandboxes[system].env().items()}

    return Settings(
        home=home,
        salesforce=SalesforceSettings(**fields("salesforce")) if "salesforce" in sandboxes else SalesforceSettings(),
        erp=ErpSettings(**fields("erp")) if "erp" in sandboxes else ErpSettings(),
        payments=PaymentsSettings(**fields("payments")) if "payments" in sandboxes else PaymentsSettings(),
        **overrides,
    )


def load_book(database_url: str, root: Path, *, seed: int = 42, scale: str = "demo") -> tuple[Path, dt.date]:
    """Serve a book from all three sandboxes, load it into ``database_url`` with the real loads, stop them.

    Returns Revloop's home used for the loads (its keyring opens the encrypted columns) and the anchor
    date the sandboxes seeded the book on (``sandboxes.book.iter_companies(seed, scale, anchor)``).
    """
    from pipelines.catalog import SYSTEMS as LOADED_SYSTEMS
    from pipelines.catalog import source_factory
    from pipelines.common.runner import run_load

    sandboxes: dict[str, RunningSandbox] = {}
    home = root / "home"
    try:
        for system in LOADED_SYSTEMS:
            sandboxes[system] = start_sandbox(system, root / system, seed=seed, scale=scale)
        anchor = dt.datetime.now(dt.UTC).date()  # the sandboxes anchor their book on the day they seed it
        settings = settings_for(sandboxes, home)
        for system in LOADED_SYSTEMS:
            run_load(system, source_factory(system), settings, database_url, pipelines_dir=home / "dlt")
    finally:
        for running in sandboxes.values():
            running.stop()
    return home, anchor
