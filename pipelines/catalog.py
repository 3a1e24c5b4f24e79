"""The sources Revloop loads, by system name, and the raw tables each writes (imported lazily)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

SYSTEMS = ("salesforce", "erp", "payments")


def source_factory(system: str) -> Callable[..., Any]:
    """The ``<system>_source`` function of ``pipelines/<system>``."""
    _check(system)
    module = importlib.import_module(f"pipelines.{system}")
    return getattr(module, f"{system}_source")  # type: ignore[no-any-return]


def raw_tables(system: str) -> dict[str, str]:
    """``{table: description}`` of the tables ``raw_<system>`` holds, from the source's own settings."""
    _check(system)
    settings = importlib.import_module(f"pipelines.{system}.settings")
    if system == "salesforce":
        from dlt.common.normalizers.naming.snake_case import NamingConvention

        naming = NamingConvention()
        return {
            naming.normalize_table_identifier(name): f"Salesforce {name} records (queryAll: deleted ones flagged)"
            for name in settings.OBJECTS
        }
    if system == "erp":
        return {
            spec.table: f"Odoo {spec.model} records" + ("" if spec.incremental else " (read whole at every run)")
            for spec in settings.MODELS
        }
    tables = {
        name: f"Stripe {name.replace('_', ' ')} objects ({spec['path']})" for name, spec in settings.OBJECTS.items()
    }
    tables |= {name: f"Stripe {spec['parent']} lines" for name, spec in settings.CHILD_TABLES.items()}
    tables[settings.EVENT_TABLE] = "Stripe events (/v1/events), kept as they came, without object snapshots"
    return tables


def _check(system: str) -> None:
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}; known: {', '.join(SYSTEMS)}")
