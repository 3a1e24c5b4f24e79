"""Raw tables as Dagster assets: one asset per raw table, keys ``["raw_<system>", "<table>"]``.

Each system's tables are materialized together by one multi-asset that runs Revloop's loader (the load
lock, PII protection and quarantine live there), reporting per table the rows loaded, the rows
quarantined and the new cursor. Keys match dbt's sources, so lineage flows into the canonical layer.
"""

# No `from __future__ import annotations` here: Dagster inspects the real type of `context`.
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg

from assets.env import default_status
from assets.resources import RevloopResource
from pipelines.catalog import SYSTEMS, raw_tables, source_factory

KINDS = {"salesforce": "salesforce", "erp": "odoo", "payments": "stripe"}


def _specs(system: str) -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            key=dg.AssetKey([f"raw_{system}", table]),
            description=description,
            group_name=f"raw_{system}",
            kinds={"dlt", "postgres", KINDS[system]},
            metadata={"dagster/table_name": f"raw_{system}.{table}"},
            skippable=True,
        )
        for table, description in raw_tables(system).items()
    ]


LOCK_WAIT_SECONDS = 120.0
"""How long a Dagster load waits for the same system's load by the warm loop (seconds, usually) to finish."""


def _wait_for_lock(load: Callable[[], Any]) -> Any:
    """Run ``load``, retrying while another process holds the system's load lock (the warm sync loop's
    incremental loads take a second or two; failing the run for that would only make noise)."""
    import tenacity

    from pipelines.common.locking import PipelineBusy

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(PipelineBusy),
        wait=tenacity.wait_random_exponential(multiplier=0.5, max=10),
        stop=tenacity.stop_after_delay(LOCK_WAIT_SECONDS), reraise=True,
    )
    return retrying(load)


def _load_asset(system: str) -> dg.AssetsDefinition:
    @dg.multi_asset(name=f"load_{system}", specs=_specs(system), can_subset=False)
    def load(context: dg.AssetExecutionContext, revloop: RevloopResource) -> Iterator[dg.MaterializeResult[Any]]:
        from pipelines.common.runner import run_load

        summary = _wait_for_lock(lambda: run_load(system, source_factory(system), revloop.settings(),
                                                  revloop.database_url()))
        context.log.info("%s: %d rows in %.1fs", system, summary.rows_loaded, summary.seconds)
        for table in raw_tables(system):
            cursor = {key: str(value) for key, value in summary.cursors.items() if key.split(".")[0] == table}
            yield dg.MaterializeResult(
                asset_key=dg.AssetKey([f"raw_{system}", table]),
                metadata={
                    "rows_loaded": dg.MetadataValue.int(summary.rows_by_table.get(table, 0)),
                    "rows_quarantined": dg.MetadataValue.int(summary.quarantined_by_object.get(table, 0)),
                    "cursor": dg.MetadataValue.json(cursor),
                    "load_ids": dg.MetadataValue.json(summary.load_ids),
                    "seconds": dg.MetadataValue.float(round(summary.seconds, 3)),
                },
            )

    return load


LOAD_ASSETS = [_load_asset(system) for system in SYSTEMS]

LOAD_JOBS = [
    dg.define_asset_job(f"load_{system}_job", selection=dg.AssetSelection.groups(f"raw_{system}"))
    for system in SYSTEMS
]

LOAD_SCHEDULES = [
    dg.ScheduleDefinition(
        job=job,
        cron_schedule="*/15 * * * *",
        default_status=default_status(),
        description="Incremental load; the warm sync loop keeps data fresher, this catches anything it missed.",
    )
    for job in LOAD_JOBS
]
