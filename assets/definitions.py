"""The one Dagster ``Definitions`` of Revloop."""

from __future__ import annotations

import dagster as dg

from assets.ingestion import LOAD_ASSETS, LOAD_JOBS, LOAD_SCHEDULES
from assets.quality import CANONICAL_CHECKS, QUALITY_CHECKS
from assets.resources import RevloopResource
from assets.transformation import TRANSFORM_JOB, canonical_models

defs = dg.Definitions(
    assets=[*LOAD_ASSETS, canonical_models],
    asset_checks=[*QUALITY_CHECKS, *CANONICAL_CHECKS],
    jobs=[*LOAD_JOBS, TRANSFORM_JOB],
    schedules=[*LOAD_SCHEDULES],
    resources={"revloop": RevloopResource()},
)
