"""One sync cycle, and the warm loop that runs cycles the moment something changes.

A cycle: load the systems incrementally -> rebuild the marts the flows read (only when a load brought rows)
with the warm in-process dbt runner -> read the latest blocking data-quality failures -> plan each flow ->
enqueue its writes in one transaction (and ``NOTIFY``) -> deliver them with the worker. Flows run in stages
(:data:`revloop.flows.registry.STAGES`): a stage's writes are delivered before the next stage plans, so a won
deal becomes an ERP invoice, then a Salesforce ``Invoice__c`` and a payment request, in one cycle.

:class:`SyncLoop` keeps all of this warm in one long-lived process (loaded pipelines, a warm ``dbtRunner``,
open writer sessions): a payments webhook (``LISTEN revloop_webhook``) runs a payments cycle at once, the
outbox channel (``revloop_outbox``) wakes delivery, and a short poll loads Salesforce (which has no push
here); every ``full_every_seconds`` all three systems are loaded. Each step is reported to Dagster as asset
materializations and checks when a Dagster instance is configured (:mod:`revloop.flows.dagster_report`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg

from revloop.alerts import Alerter, alerter_from_environment
from revloop.crypto import FieldCipher, load_keyring
from revloop.flows.base import FlowConfig, FlowContext, FlowPlan
from revloop.flows.invoices import ErpInvoiceLookup
from revloop.flows.registry import MODELS as ALL_MODELS
from revloop.flows.registry import STAGES
from revloop.settings import Settings
from revloop.sync import outbox
from revloop.sync.model import Writer
from revloop.sync.schema import ensure_schema
from revloop.sync.worker import DeliveryWorker, WorkerPolicy, notify_enqueued
from revloop.webhooks import NOTIFY_CHANNEL as WEBHOOK_CHANNEL
from revloop.webhooks import ensure_schema as ensure_webhook_schema

logger = logging.getLogger(__name__)

SYSTEMS = ("salesforce", "erp", "payments")
MODELS_BY_TABLE: dict[tuple[str, str], tuple[str, ...]] = {
    ("salesforce", "opportunity"): ("fct_opportunities",),
    ("salesforce", "opportunity_line_item"): ("fct_opportunities",),
    ("salesforce", "account"): ("fct_opportunities", "fct_subscriptions"),
    ("salesforce", "subscription_c"): ("fct_subscriptions",),
    ("salesforce", "invoice_c"): ("fct_invoices",),
    ("erp", "account_move"): ("fct_invoices",),
    ("erp", "account_move_line"): ("fct_invoices",),
    ("erp", "account_payment"): ("fct_payments",),
    ("payments", "charge"): ("fct_payments",),
    ("payments", "refund"): ("fct_payments",),
    ("payments", "dispute"): ("fct_payments",),
    ("payments", "payment_intent"): ("fct_payments",),
    ("payments", "balance_transaction"): ("fct_payments",),
    ("payments", "invoice"): ("fct_invoices",),
}
"""The marts the flows read that new rows in each raw table change (staging models are views, always
current; identity resolution and the other marts are rebuilt by Dagster's scheduled builds)."""


@dataclasses.dataclass
class CycleReport:
    """What one cycle did, step by step (what ``revloop sync --once`` prints)."""

    started_at: dt.datetime
    loaded: dict[str, int] = dataclasses.field(default_factory=dict)
    load_errors: dict[str, str] = dataclasses.field(default_factory=dict)
    rows_by_table: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    models: list[str] = dataclasses.field(default_factory=list)
    transform_error: str | None = None
    plans: list[FlowPlan] = dataclasses.field(default_factory=list)
    enqueued: Counter[str] = dataclasses.field(default_factory=Counter)
    delivered: Counter[str] = dataclasses.field(default_factory=Counter)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    stopped: bool = False
    """The cycle ended early because its process is stopping (the next start picks up from there)."""

    @property
    def blocked(self) -> dict[str, list[str]]:
        return {p.flow: p.blocked_by for p in self.plans if p.blocked_by}


class SyncCycle:
    """Runs cycles against one warehouse with warm resources (pipelines imported, dbt runner, writers).

    Args:
        settings: Revloop's settings (the three systems, home, environment).
        database_url: The warehouse.
        config: The flows' knobs.
        writers: Writers by system (default: :func:`revloop.sync.writers.writer_for` of each).
        alerter: Where parked and dead-lettered writes are announced.
        policy: The delivery worker's retry policy.
        reporter: Receives each step (Dagster materializations and checks); optional.
    """

    def __init__(self, settings: Settings, database_url: str, *, config: FlowConfig | None = None,
                 writers: Mapping[str, Writer] | None = None, alerter: Alerter | None = None,
                 policy: WorkerPolicy | None = None, reporter: Any = None) -> None:
        from revloop.dbt import DbtProject

        self.settings = settings
        self.database_url = database_url
        self.config = config or FlowConfig()
        self.cipher = FieldCipher(load_keyring(settings.environment, settings.home))
        with psycopg.connect(database_url) as conn:
            ensure_schema(conn)
        ensure_webhook_schema(database_url)
        if writers is None:
            from revloop.sync.writers import writer_for

            writers = {s: writer_for(s, settings, database_url=database_url) for s in SYSTEMS}
        self.worker = DeliveryWorker(database_url, self.cipher, writers,
                                     alerter or alerter_from_environment(database_url), policy)
        # a Dagster build holding the canonical layer: this cycle's flows read the marts as they are, and the
        # next cycle rebuilds (a hot path must not queue behind a full build)
        self.dbt = DbtProject(database_url, settings.environment, lock_wait_seconds=30.0)
        self.erp_lookup = ErpInvoiceLookup(settings.erp) if settings.erp.configured else None
        self.reporter = reporter
        # Rows loaded whose models are not rebuilt yet (a failed or skipped transform; a hot cycle rebuilds
        # only the marts the flows read): later transforms rebuild for them too, or a deal loaded just before a
        # failure would wait for its table's next change. Per kind of rebuild: hot marts, everything downstream.
        self.untransformed: dict[str, dict[str, Counter[str]]] = {"hot": {}, "downstream": {}}

    # ---- steps ---------------------------------------------------------------------------------------

    def load(self, systems: Sequence[str], report: CycleReport, *, events_overlap_seconds: float | None = None) -> None:
        """Incremental loads; a system that fails is reported and the others go on (flows use older data).

        ``events_overlap_seconds`` shortens how far back an events feed is re-read (hot cycles; None: the
        loader's default window, which also catches events committed late).
        """
        from pipelines.catalog import source_factory
        from pipelines.common.runner import run_load

        def load_one(system: str) -> Any:
            return run_load(system, source_factory(system), self.settings, self.database_url,
                            pipelines_dir=self.settings.home / "dlt" / system,
                            events_overlap_seconds=events_overlap_seconds)

        started = time.perf_counter()
        # The systems load side by side (dlt runs pipelines of different names in separate threads): a cycle
        # waits for its slowest system, not for their sum, which matters most when one of them is retrying.
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(systems)),
                                                   thread_name_prefix="revloop-load") as pool:
            futures = {system: pool.submit(load_one, system) for system in systems}
        for system, future in futures.items():
            try:
                summary = future.result()
            except Exception as exc:  # one system down must not stop the flows of the others
                logger.warning("load of %s failed: %s: %s", system, type(exc).__name__, exc)
                report.load_errors[system] = f"{type(exc).__name__}: {exc}"
                continue
            report.loaded[system] = summary.rows_loaded
            report.rows_by_table[system] = dict(summary.rows_by_table)
            report.seconds[f"load:{system}"] = round(summary.seconds, 3)
            logger.debug("load of %s: %d rows in %.2fs, steps %s", system, summary.rows_loaded, summary.seconds,
                         summary.notes.get("seconds"))
            for untransformed in self.untransformed.values():
                untransformed.setdefault(system, Counter()).update(
                    {table: rows for table, rows in summary.rows_by_table.items() if rows})
            if self.reporter is not None and summary.rows_loaded:
                self.reporter.loaded(system, summary.rows_by_table)
        report.seconds["load"] = round(time.perf_counter() - started, 3)

    def transform(self, systems: Sequence[str], report: CycleReport, *, force: bool = False,
                  downstream: bool = False) -> None:
        """Rebuild what a load changed (``dbt run``; the models' tests run in Dagster's builds).

        Hot cycles rebuild only the marts the flows read that the tables with new rows feed
        (:data:`MODELS_BY_TABLE`); ``downstream=True`` (the loop's full cycles) rebuilds everything
        downstream of them (:func:`revloop.dbt.affected_selection`: identity resolution, reconciliation).
        Tables are counted from every load since the last successful rebuild of that kind
        (:attr:`untransformed`), so a failed, busy or skipped rebuild is made up by the next one.
        """
        from revloop.dbt import TransformError, affected_selection

        hot = {system: dict(rows) for system, rows in self.untransformed["hot"].items() if rows}
        models: list[str] = list(ALL_MODELS) if force else []
        if downstream and not force:
            models = affected_selection(
                {system: dict(rows) for system, rows in self.untransformed["downstream"].items() if rows})
        for (system, table), affected in MODELS_BY_TABLE.items():
            if hot.get(system, {}).get(table):
                models += [m for m in affected if m not in models]
        started = time.perf_counter()
        first_build = not self._marts_exist()
        if not models and not first_build:
            return
        try:
            # A new warehouse needs everything (seeds, staging views, identity resolution) once.
            summary = self.dbt.build() if first_build else self.dbt.invoke(["run", "--select", *models])
            failed = [n.name for n in summary.failures]
            if failed or not summary.success:
                report.transform_error = f"dbt run failed: {', '.join(failed) or summary.error}"
        except TransformError as exc:
            report.transform_error = str(exc)
        if report.transform_error is None:
            for kind in ("hot", "downstream") if downstream or force or first_build else ("hot",):
                self.untransformed[kind].clear()
        report.models = models or ["(all)"]
        report.seconds["transform"] = round(time.perf_counter() - started, 3)
        if self.reporter is not None and report.transform_error is None:
            self.reporter.transformed(models)

    def _marts_exist(self) -> bool:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("select to_regclass('marts.fct_invoices'), to_regclass('marts.fct_payments')").fetchone()
        return bool(row and row[0] and row[1])

    def plan(self, flows: Sequence[Any], *, blocked: Mapping[str, list[str]] | None = None) -> list[FlowPlan]:
        """Plans of ``flows`` now (nothing is enqueued)."""
        plans = []
        with psycopg.connect(self.database_url) as conn:
            ctx = FlowContext(conn, self.cipher, dt.date.today(), self.config, self.erp_lookup)
            for flow in flows:
                if blocked and blocked.get(flow.name):
                    plans.append(FlowPlan(flow.name, blocked_by=list(blocked[flow.name])))
                    continue
                plans.append(flow.plan(ctx))
        return plans

    def blocking(self) -> dict[str, list[str]]:
        """``{flow: [failed error-level checks]}`` for the flows whose data fails a blocking check."""
        from revloop.quality import latest_results

        failing = [r for r in latest_results(self.database_url) if r.blocking]
        result: dict[str, list[str]] = {}
        for stage in STAGES:
            for flow in stage:
                wanted = set(flow.depends_on)
                names = sorted({r.check_name for r in failing if wanted & set(r.asset_keys)})
                if names:
                    result[flow.name] = names
        if self.reporter is not None:
            self.reporter.blocks(result)
        return result

    def enqueue(self, plans: Sequence[FlowPlan]) -> Counter[str]:
        """Record every planned write in one transaction, then wake the workers."""
        counts: Counter[str] = Counter()
        with psycopg.connect(self.database_url) as conn, conn.transaction():
            new = outbox.enqueue_many(conn, self.cipher, [p.write for plan in plans for p in plan.writes])
            for plan in plans:
                for planned in plan.writes:
                    if planned.write.idempotency_key in new:
                        new.discard(planned.write.idempotency_key)
                        counts[plan.flow] += 1
            if counts:
                notify_enqueued(conn)
        return counts

    def deliver(self, *, rounds: int | None = 5) -> Counter[str]:
        """Deliver what is due now, repeating while a batch filled up and delivered something: at most
        ``rounds`` batches, or (``None``) until nothing is due."""
        total: Counter[str] = Counter()
        done_rounds = 0
        while rounds is None or done_rounds < rounds:
            done = self.worker.run_once()
            total.update(done)
            done_rounds += 1
            if sum(done.values()) < self.worker.policy.batch_size or not (done["created"] + done["found"]):
                break
        return total

    def run_flows(self, report: CycleReport, *, deliver: bool = True, deliver_last_stage: bool = True) -> None:
        """Checks -> plan -> enqueue -> deliver, stage by stage, from the marts as they are now.

        What a cycle does after loading and transforming, and what Dagster's ``sync`` assets run after the
        marts they depend on were built in the same run.
        """
        blocked = self.blocking()
        for number, stage in enumerate(STAGES, start=1):
            clock = time.perf_counter()
            plans = self.plan(stage, blocked=blocked)
            report.plans += plans
            report.seconds["plan"] = round(report.seconds.get("plan", 0) + time.perf_counter() - clock, 3)
            clock = time.perf_counter()
            report.enqueued.update(self.enqueue(plans))
            report.seconds["enqueue"] = round(report.seconds.get("enqueue", 0) + time.perf_counter() - clock, 3)
            if deliver and (deliver_last_stage or number < len(STAGES)):
                clock = time.perf_counter()
                # A cycle that delivers its last stage itself (headless) completes the chain: everything due,
                # however much a burst left. Beside a delivery thread (the warm loop) it delivers only a bounded
                # first stage, so the next poll is not held up by a backlog.
                report.delivered.update(self.deliver(rounds=None if deliver_last_stage else 5))
                report.seconds["deliver"] = round(report.seconds.get("deliver", 0) + time.perf_counter() - clock, 3)
        if self.reporter is not None:
            self.reporter.flowed(report)

    # ---- the cycle -----------------------------------------------------------------------------------

    def run(self, systems: Sequence[str] = SYSTEMS, *, deliver: bool = True, force_transform: bool = False,
            deliver_last_stage: bool = True, downstream: bool = False,
            events_overlap_seconds: float | None = None,
            stop: Callable[[], bool] | None = None) -> CycleReport:
        """One whole cycle: load -> transform -> checks -> flows -> deliver.

        ``deliver_last_stage=False`` leaves the last stage's writes to a worker running beside the cycle
        (the warm loop's delivery thread), so the next cycle starts without waiting for them.
        ``stop`` is asked between the steps: once it is true the cycle ends where it is (``report.stopped``).
        Every step is safe to cut there: the next cycle loads from the saved cursors, rebuilds what is stale
        and plans again from the marts, so stopping loses nothing.
        """
        report = CycleReport(started_at=dt.datetime.now(dt.UTC))
        started = time.perf_counter()
        steps: tuple[Callable[[], None], ...] = (
            lambda: self.load(systems, report, events_overlap_seconds=events_overlap_seconds),
            lambda: self.transform(systems, report, force=force_transform, downstream=downstream),
            lambda: self.run_flows(report, deliver=deliver, deliver_last_stage=deliver_last_stage),
        )
        for step in steps:
            if stop is not None and stop():
                report.stopped = True
                break
            step()
        report.seconds["total"] = round(time.perf_counter() - started, 3)
        logger.info("cycle: loaded %s, models %s, enqueued %s, delivered %s, seconds %s", report.loaded,
                    report.models, dict(report.enqueued), dict(report.delivered), report.seconds)
        return report

    def close(self) -> None:
        if self.erp_lookup is not None:
            self.erp_lookup.close()


def plan_now(settings: Settings, database_url: str, config: FlowConfig | None = None) -> list[FlowPlan]:
    """What every flow would write now, from the warehouse as it is (nothing is enqueued or sent).

    Stage-2 flows see only what stage 1 already delivered: a dry run cannot know the ids a target would give.
    """
    with psycopg.connect(database_url) as conn:
        ensure_schema(conn)
    ensure_webhook_schema(database_url)
    cipher = FieldCipher(load_keyring(settings.environment, settings.home))
    lookup = ErpInvoiceLookup(settings.erp) if settings.erp.configured else None
    from revloop.quality import latest_results

    failing = [r for r in latest_results(database_url) if r.blocking]
    plans = []
    try:
        with psycopg.connect(database_url) as conn:
            ctx = FlowContext(conn, cipher, dt.date.today(), config or FlowConfig(), lookup)
            for stage in STAGES:
                for flow in stage:
                    blocked = sorted({r.check_name for r in failing if set(flow.depends_on) & set(r.asset_keys)})
                    plans.append(FlowPlan(flow.name, blocked_by=blocked) if blocked else flow.plan(ctx))
    finally:
        if lookup is not None:
            lookup.close()
    return plans


HOT_EVENTS_OVERLAP_SECONDS = 30.0
"""How far before its cursor a hot cycle re-reads the payments events feed. The loader's default (300 s)
guards against events committed late; re-reading five minutes of a busy feed every second costs most of a
hot cycle, so hot cycles re-read 30 s and the full cycle (every ``full_every_seconds``) the whole window."""

WAKING_EVENT_TYPES = ("charge.", "payment_intent.", "invoice.paid", "invoice.payment_", "invoice.voided",
                      "invoice.marked_uncollectible", "refund.", "charge.dispute.")
"""Webhook event types that can change what a flow writes (payment outcomes). Others (customer.created,
invoice.created, invoice.finalized: mostly echoes of our own writes) wait for the next regular load."""

NON_WAKING_EVENT_TYPES = frozenset({"payment_intent.created", "payment_intent.updated"})
"""Events under a waking prefix that change no outcome: finalizing each payment request we create opens its
payment intent, and a payments cycle for every such echo kept the Salesforce poll waiting on payments loads."""


def wakes_a_cycle(event_type: str) -> bool:
    """Whether a payments webhook of this type runs a payments cycle at once (it can change an outcome)."""
    return event_type.startswith(WAKING_EVENT_TYPES) and event_type not in NON_WAKING_EVENT_TYPES


class SyncLoop:
    """Runs cycles in one warm process: at once on a payment webhook, on a short Salesforce poll, fully
    every ``full_every_seconds``; a delivery thread (its own worker and writers) delivers whatever the cycles
    enqueue and retries as they fall due, woken by ``NOTIFY revloop_outbox``.

    Args:
        cycle: The warm cycle.
        poll_seconds: How often Salesforce (no push) is polled.
        full_every_seconds: How often all three systems are loaded.
        delivery_worker: The worker of the delivery thread (default: one with its own writers).
    """

    def __init__(self, cycle: SyncCycle, *, poll_seconds: float = 1.0, full_every_seconds: float = 60.0,
                 on_cycle: Callable[[CycleReport], None] | None = None,
                 delivery_worker: DeliveryWorker | None = None) -> None:
        self.cycle = cycle
        self.poll_seconds = poll_seconds
        self.full_every_seconds = full_every_seconds
        self.on_cycle = on_cycle
        self.delivery_worker = delivery_worker
        self.cycles = 0

    def _delivery(self, stop: Callable[[], bool]) -> None:
        worker = self.delivery_worker
        if worker is None:
            from revloop.sync.writers import writer_for

            cycle = self.cycle
            writers = {s: writer_for(s, cycle.settings, database_url=cycle.database_url) for s in cycle.worker.writers}
            worker = DeliveryWorker(cycle.database_url, cycle.cipher, writers, cycle.worker.alerter,
                                    cycle.worker.policy, name=f"{cycle.worker.name}:delivery")
        while not stop():
            try:
                worker.run_until(stop, idle_wait_seconds=min(1.0, self.poll_seconds))
            except Exception:  # a warehouse restart: keep delivering once it is back
                logger.exception("delivery thread failed; restarting")
                time.sleep(1.0)  # a pause before reconnecting, so a warehouse that is down is not hammered

    def run(self, stop: Callable[[], bool]) -> None:
        """Loop until ``stop()``; the first cycle is a full one (it also warms dbt and the pipelines)."""
        import threading

        from revloop.sync.heartbeat import Heartbeat

        heartbeat = Heartbeat(self.cycle.database_url)

        def beating() -> None:
            # from a thread of its own: a long cycle (a first full build, a wait for a Dagster build) must not
            # look like a dead loop to the safety-net sensor, which would start a sync run beside it
            while not stop():
                try:
                    heartbeat.beat(self.cycles, now=time.monotonic())
                except psycopg.Error as exc:  # the warehouse is away: the cycles report it
                    logger.warning("heartbeat not recorded: %s", exc)
                for _ in range(10):
                    if stop():
                        break
                    time.sleep(0.1)

        beater = threading.Thread(target=beating, name="revloop-heartbeat", daemon=True)
        beater.start()
        delivery = threading.Thread(target=self._delivery, args=(stop,), name="revloop-delivery", daemon=True)
        delivery.start()
        last_full = 0.0
        last_poll = 0.0
        first = True
        with psycopg.connect(self.cycle.database_url, autocommit=True) as listener:
            listener.execute(f"listen {WEBHOOK_CHANNEL}")
            events: list[str] = []
            while not stop():
                now = time.monotonic()
                systems: tuple[str, ...] = ()
                if now - last_full >= self.full_every_seconds:
                    systems = SYSTEMS
                    last_full = last_poll = now
                else:
                    # a webhook never starves the poll: both are served by one cycle when both are due
                    if now - last_poll >= self.poll_seconds:
                        systems += ("salesforce",)
                        last_poll = now
                    if events and self._payment_changed(events):
                        systems += ("payments",)
                events.clear()
                try:
                    if systems:
                        full = systems == SYSTEMS
                        report = self.cycle.run(systems, force_transform=first, deliver_last_stage=False,
                                                downstream=full,
                                                events_overlap_seconds=None if full else HOT_EVENTS_OVERLAP_SECONDS,
                                                stop=stop)
                        first = False
                        self.cycles += 1
                        if self.on_cycle is not None:
                            self.on_cycle(report)
                        if systems == SYSTEMS:
                            # counted from its end: a slow full cycle (a flaky target) must leave room for the
                            # hot ones between it and the next
                            last_full = time.monotonic()
                except Exception:  # the loop outlives a bad cycle (a warehouse restart, a bug): logged, retried
                    logger.exception("sync cycle failed; retrying on the next wake-up")
                    time.sleep(min(self.poll_seconds, 1.0))  # no tight loop of failing cycles
                wait = max(0.0, self.poll_seconds - (time.monotonic() - last_poll))
                events += [note.payload for note in listener.notifies(timeout=wait, stop_after=1)]
                if events:  # take what arrived with it too (a generator holds the connection: one at a time)
                    events += [note.payload for note in listener.notifies(timeout=0.01)]
        delivery.join(timeout=30)
        beater.join(timeout=10)  # its last beat before the stop, so the stop is not overwritten
        try:
            heartbeat.stopped(self.cycles)
        except psycopg.Error as exc:
            logger.warning("stop not recorded in the heartbeat: %s", exc)

    def _payment_changed(self, event_ids: list[str]) -> bool:
        """Whether any of the notified webhook events can change a payment outcome."""
        with psycopg.connect(self.cycle.database_url) as conn:
            types = [row[0] for row in conn.execute(
                "select type from sync.webhook_events where event_id = any(%s)", (event_ids,))]
        return any(wakes_a_cycle(t) for t in types)
