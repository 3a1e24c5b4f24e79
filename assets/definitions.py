"""The one Dagster ``Definitions`` of Revloop."""

from __future__ import annotations

import dagster as dg

from assets.flows import FLOWS_JOB, SYNC_JOB, sync_flows
from assets.ingestion import LOAD_ASSETS, LOAD_JOBS, LOAD_SCHEDULES
from assets.quality import CANONICAL_CHECKS, QUALITY_CHECKS
from assets.resources import RevloopResource
from assets.sensors import SENSORS
from assets.transformation import TRANSFORM_JOB, canonical_models

defs = dg.Definitions(
    assets=[*LOAD_ASSETS, canonical_models, sync_flows],
    asset_checks=[*QUALITY_CHECKS, *CANONICAL_CHECKS],
    jobs=[*LOAD_JOBS, TRANSFORM_JOB, SYNC_JOB, FLOWS_JOB],
    schedules=[*LOAD_SCHEDULES],
    sensors=[*SENSORS],
    resources={"revloop": RevloopResource()},
)
