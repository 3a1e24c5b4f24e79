"""Which deployment this is (dev, staging, prod), resolved once, driving Dagster resources and dbt targets."""

from __future__ import annotations

import os

from revloop.settings import Environment

ENVIRONMENTS: tuple[Environment, ...] = ("dev", "staging", "prod")


def current_environment() -> Environment:
    """``REVLOOP_ENVIRONMENT`` (default ``dev``); an unknown value is an error, not a silent default."""
    value = os.environ.get("REVLOOP_ENVIRONMENT", "dev")
    if value not in ENVIRONMENTS:
        raise ValueError(f"REVLOOP_ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}, got {value!r}")
    return value  # type: ignore[return-value]


def schedules_running_by_default() -> bool:
    """Schedules start running in staging and prod; in dev they start stopped, so nothing polls unasked."""
    return current_environment() != "dev"
