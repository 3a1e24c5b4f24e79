"""The sources Revloop loads, by system name (imported lazily: each pulls its client library)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

SYSTEMS = ("salesforce", "erp", "payments")


def source_factory(system: str) -> Callable[..., Any]:
    """The ``<system>_source`` function of ``pipelines/<system>``."""
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}; known: {', '.join(SYSTEMS)}")
    module = importlib.import_module(f"pipelines.{system}")
    return getattr(module, f"{system}_source")  # type: ignore[no-any-return]
