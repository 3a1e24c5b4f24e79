"""The three imitated systems: their default ports and whether they speak TLS."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from types import ModuleType


@dataclasses.dataclass(frozen=True)
class SystemSpec:
    name: str
    module: str
    default_port: int
    tls: bool
    http_impl: str = "httptools"
    """uvicorn's HTTP implementation: h11 keeps header-name casing (httptools lower-cases names, ~faster)."""

    def load(self) -> ModuleType:
        """The system's package; it exposes ``create_backend(config, faults)`` and ``client_env(config)``."""
        return importlib.import_module(self.module)


SYSTEMS: dict[str, SystemSpec] = {
    "salesforce": SystemSpec("salesforce", "sandboxes.salesforce", 8441, tls=True, http_impl="h11"),
    "erp": SystemSpec("erp", "sandboxes.erp", 8442, tls=False),
    "payments": SystemSpec("payments", "sandboxes.payments", 8443, tls=False),
}

DEFAULT_DATA_DIR = Path(".revloop") / "sandboxes"
