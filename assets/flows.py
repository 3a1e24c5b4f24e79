"""The reverse-ETL flows as Dagster assets: one ``["sync", <flow>]`` asset per flow, downstream of the marts
it reads, in the ``sync`` group, with the target systems as kinds.

Materializing them runs what a warm cycle runs after its loads and dbt (``SyncCycle.run_flows``): the latest
stored check results, then per stage plan -> enqueue -> deliver, so stage 2 (Salesforce invoice, payment
request, payment outcome) plans from what stage 1 (won deal, renewal) delivered. The writes go through the
same outbox and writers as the hot path, so a Dagster run and the warm loop never make a write twice.

Each flow reports its planned, enqueued and held writes, and a ``may_write`` check that fails (error) while
a blocking data-quality check stops the flow, so the block is visible on the flow's own asset.
"""

# No `from __future__ import annotations` here: Dagster inspects the real type of `context`.
import datetime as dt
from collections.abc import Iterator
from typing import Any

import dagster as dg

from assets.ingestion import KINDS
from assets.resources import RevloopResource
from revloop.flows.registry import STAGES

FLOW_TARGETS: dict[str, tuple[str, ...]] = {
    "won_deal_invoice": ("erp",),
    "renewal_opportunity": ("salesforce",),
    "salesforce_invoice": ("salesforce",),
    "invoice_payment_request": ("payments",),
    "payment_outcome": ("erp",),
    "customer_master": ("erp", "payments"),
}
"""The systems each flow writes to (shown as kinds in the UI)."""

GROUP = "sync"


def flow_asset_key(flow_name: str) -> dg.AssetKey:
    return dg.AssetKey(["sync", flow_name])


def _specs() -> list[dg.AssetSpec]:
    specs = []
    earlier: list[dg.AssetKey] = []
    for stage in STAGES:
        for flow in stage:
            targets = FLOW_TARGETS.get(flow.name, ())
            specs.append(dg.AssetSpec(
                key=flow_asset_key(flow.name),
                deps=[dg.AssetKey(list(key)) for key in flow.depends_on] + earlier,
                group_name=GROUP,
                kinds={"revloop", *(KINDS[t] for t in targets)},
                description=(type(flow).__doc__ or flow.name).strip().splitlines()[0],
                metadata={"targets": ", ".join(targets) or "-"},
                skippable=True,
            ))
        # a stage plans from what the stages before it delivered
        earlier = earlier + [flow_asset_key(flow.name) for flow in stage]
    return specs


def _check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            name="may_write", asset=flow_asset_key(flow.name),
            description="Fails while an error-level data-quality check on the flow's inputs blocks its writes.",
        )
        for stage in STAGES for flow in stage
    ]


@dg.multi_asset(name="sync_flows", specs=_specs(), check_specs=_check_specs(), can_subset=False)
def sync_flows(context: dg.AssetExecutionContext, revloop: RevloopResource) -> Iterator[Any]:
    """Plan, enqueue and deliver every flow's writes from the marts as they are now."""
    from revloop.cycle import CycleReport, SyncCycle

    cycle = SyncCycle(revloop.settings(), revloop.database_url())
    report = CycleReport(started_at=dt.datetime.now(dt.UTC))
    try:
        cycle.run_flows(report)
    finally:
        cycle.close()
    context.log.info("flows: enqueued %s, delivered %s, seconds %s", dict(report.enqueued),
                     dict(report.delivered), report.seconds)
    for plan in report.plans:
        key = flow_asset_key(plan.flow)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "planned_writes": dg.MetadataValue.int(len(plan.writes)),
                "enqueued": dg.MetadataValue.int(report.enqueued.get(plan.flow, 0)),
                "held": dg.MetadataValue.int(len(plan.holds)),
                "holds": dg.MetadataValue.json([{"record": h.source_ref, "reason": h.reason} for h in plan.holds[:20]]),
                "writes": dg.MetadataValue.json([
                    {"key": w.write.idempotency_key, "target": f"{w.write.target_system} {w.write.target_object}",
                     "operation": w.write.operation, "reason": w.reason} for w in plan.writes[:20]
                ]),
                "blocked_by": ", ".join(plan.blocked_by) or "-",
                "delivered_in_run": dg.MetadataValue.json(dict(report.delivered)),
            },
        )
        yield dg.AssetCheckResult(
            asset_key=key, check_name="may_write", passed=not plan.blocked_by,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(f"blocked by {', '.join(plan.blocked_by)}" if plan.blocked_by else "no blocking check fails"),
            metadata={"blocked_by": ", ".join(plan.blocked_by) or "-"},
        )


SYNC_JOB = dg.define_asset_job(
    "sync_job",
    selection=dg.AssetSelection.groups(GROUP).upstream().required_multi_asset_neighbors(),
    description="One whole sync, as a Dagster run: load the three systems, build the canonical layer the flows "
                "read (with its tests and the reconciliation checks), then plan, enqueue and deliver every flow.",
)

FLOWS_JOB = dg.define_asset_job(
    "flows_job", selection=dg.AssetSelection.groups(GROUP),
    description="The flows alone, from the marts as they are (no load, no dbt).",
)
