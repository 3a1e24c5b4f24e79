"""How one sandbox server is started: which system, where it listens, where it keeps its state."""

from __future__ import annotations

import dataclasses
from pathlib import Path

SCALES = ("demo", "large", "empty")


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
    """Start-up settings of one sandbox server."""

    system: str
    port: int
    data_dir: Path
    host: str = "127.0.0.1"
    seed: int = 42
    scale: str = "demo"
    faults: str = "none"
    tls: bool = False

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def system_dir(self) -> Path:
        """The folder holding this system's SQLite file and credentials."""
        return self.data_dir / self.system

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"
