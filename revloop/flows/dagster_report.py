"""Reports the warm sync loop's steps to Dagster, so the UI shows every step of the hot path as well as the
runs it schedules: materializations of the raw tables a cycle loaded, the marts it rebuilt and the flows
(``["sync", <flow>]``) that enqueued writes, and an observation on each flow's input assets saying whether
the flow is blocked by a failed check (and by which).

Events are reported "runless" (``DagsterInstance.report_runless_asset_event``) on the instance of
``DAGSTER_HOME``, from a background thread: the hot path never waits for Dagster's storage.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from typing import Any

logger = logging.getLogger(__name__)


class DagsterReporter:
    """Queues asset events and reports them to the Dagster instance from its own thread."""

    def __init__(self, instance: Any = None) -> None:
        import dagster as dg

        self._dg = dg
        self.instance = instance or dg.DagsterInstance.get()
        self._events: queue.Queue[Any] = queue.Queue(maxsize=10_000)
        self._last_blocks: dict[str, tuple[str, ...]] = {}
        threading.Thread(target=self._drain, name="dagster-report", daemon=True).start()

    def loaded(self, system: str, rows_by_table: Mapping[str, int]) -> None:
        for table, rows in rows_by_table.items():
            self._put(self._dg.AssetMaterialization(
                asset_key=[f"raw_{system}", table], description="incremental load by revloop sync",
                metadata={"rows": rows, "by": "revloop sync"},
            ))

    def transformed(self, models: Sequence[str]) -> None:
        for model in models:
            self._put(self._dg.AssetMaterialization(asset_key=["marts", model], description="dbt run by revloop sync",
                                                     metadata={"by": "revloop sync"}))

    def flowed(self, report: Any) -> None:
        """One materialization of each flow's ``["sync", <flow>]`` asset that enqueued writes in a cycle."""
        for plan in report.plans:
            enqueued = report.enqueued.get(plan.flow, 0)
            if not enqueued:
                continue
            self._put(self._dg.AssetMaterialization(
                asset_key=["sync", plan.flow], description="writes enqueued by revloop sync",
                metadata={"by": "revloop sync", "planned_writes": len(plan.writes), "enqueued": enqueued,
                          "held": len(plan.holds), "blocked_by": ", ".join(plan.blocked_by) or "-"},
            ))

    def blocks(self, blocked: Mapping[str, list[str]]) -> None:
        """One observation per flow whose block changed (set or lifted), on each asset the flow reads."""
        from revloop.flows.registry import FLOWS

        for name, flow in FLOWS.items():
            now = tuple(blocked.get(name, ()))
            if self._last_blocks.get(name, ()) == now and name in self._last_blocks:
                continue
            self._last_blocks[name] = now
            for key in flow.depends_on:
                self._put(self._dg.AssetObservation(
                    asset_key=list(key),
                    description=(f"sync flow {name} BLOCKED by {', '.join(now)}" if now
                                 else f"sync flow {name} may write"),
                    metadata={"sync_flow": name, "sync_blocked": bool(now), "blocked_by": ", ".join(now) or "-"},
                ))

    def _put(self, event: Any) -> None:
        try:
            self._events.put_nowait(event)
        except queue.Full:  # Dagster unreachable for long: drop the display, never the sync
            logger.warning("dagster report queue full; dropping an event")

    def _drain(self) -> None:
        while True:
            event = self._events.get()
            try:
                self.instance.report_runless_asset_event(event)
            except Exception as exc:  # the UI misses one event; the sync itself is unaffected
                logger.warning("could not report %s to Dagster: %s", type(event).__name__, exc)


def reporter_from_environment() -> DagsterReporter | None:
    """A reporter on ``DAGSTER_HOME``'s instance, or None when no Dagster instance is configured."""
    import os

    if not os.environ.get("DAGSTER_HOME"):
        return None
    try:
        return DagsterReporter()
    except Exception as exc:
        logger.warning("Dagster instance not available (%s); steps are not reported to the UI", exc)
        return None
