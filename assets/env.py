"""Which deployment this is (dev, staging, prod), resolved once, driving Dagster resources and dbt targets."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from revloop.settings import Environment

if TYPE_CHECKING:
    import dagster as dg

ENVIRONMENTS: tuple[Environment, ...] = ("dev", "staging", "prod")


def current_environment() -> Environment:
    """``REVLOOP_ENVIRONMENT`` (default ``dev``); an unknown value is an error, not a silent default."""
    value = os.environ.get("REVLOOP_ENVIRONMENT", "dev")
    if value not in ENVIRONMENTS:
        raise ValueError(f"REVLOOP_ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}, got {value!r}")
    return value  # type: ignore[return-value]


def schedules_running_by_default() -> bool:
    """Whether schedules and sensors start running.

    ``REVLOOP_DAGSTER_AUTOMATION=on|off`` decides when set (``revloop demo`` sets ``on``); otherwise they run
    in staging and prod, and start stopped in dev, so nothing polls unasked.
    """
    value = os.environ.get("REVLOOP_DAGSTER_AUTOMATION", "").strip().lower()
    if value in ("on", "off"):
        return value == "on"
    if value:
        raise ValueError(f"REVLOOP_DAGSTER_AUTOMATION must be on or off, got {value!r}")
    return current_environment() != "dev"


def default_status() -> dg.DefaultScheduleStatus:
    """The default status of Revloop's schedules (see :func:`schedules_running_by_default`)."""
    import dagster as dg

    return dg.DefaultScheduleStatus.RUNNING if schedules_running_by_default() else dg.DefaultScheduleStatus.STOPPED


def default_sensor_status() -> dg.DefaultSensorStatus:
    """The default status of Revloop's sensors (see :func:`schedules_running_by_default`)."""
    import dagster as dg

    return dg.DefaultSensorStatus.RUNNING if schedules_running_by_default() else dg.DefaultSensorStatus.STOPPED
