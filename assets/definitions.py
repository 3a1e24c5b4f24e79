"""The one Dagster ``Definitions`` of Revloop."""

from __future__ import annotations

import dagster as dg

from assets.ingestion import LOAD_ASSETS, LOAD_JOBS, LOAD_SCHEDULES
from assets.resources import RevloopResource

defs = dg.Definitions(
    assets=[*LOAD_ASSETS],
    jobs=[*LOAD_JOBS],
    schedules=[*LOAD_SCHEDULES],
    resources={"revloop": RevloopResource()},
)
