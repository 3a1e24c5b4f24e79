"""The ERP sandbox: Odoo 19's external API (JSON-2, JSON-RPC, XML-RPC) over a seeded SQLite store."""

from __future__ import annotations

from sandboxes.common.config import SandboxConfig
from sandboxes.common.faults import FaultState
from sandboxes.erp.backend import ErpBackend, client_env

__all__ = ["ErpBackend", "client_env", "create_backend"]


def create_backend(config: SandboxConfig, faults: FaultState) -> ErpBackend:
    """Open (or create and seed) the store under ``config.system_dir`` and return the backend."""
    return ErpBackend(config, faults)
