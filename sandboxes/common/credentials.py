"""Sandbox credentials, made once per data folder so clients keep working across restarts."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any


def token(prefix: str = "", nbytes: int = 24) -> str:
    """A random URL-safe secret with an optional vendor-style prefix (``sk_test_``, ``whsec_``...)."""
    return prefix + secrets.token_urlsafe(nbytes).replace("-", "x").replace("_", "y")


def load_or_create(path: Path, factory: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Read the JSON credentials at ``path``, or write the ones ``factory`` makes (mode 0600)."""
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    data = factory()
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o600)
    return data
