"""Data quality: run the checkpoints, store their results, build the report, alert, and answer flows.

This is the API the CLI (``revloop quality``), Dagster (``assets/quality.py``) and the sync flows call.
Checks are declared in ``expectations/``; they run through Great Expectations (imported only when checks
run), results go to ``quality.check_runs``, the Data Docs site to ``<REVLOOP_HOME>/quality/data_docs/``,
and each failed error-level check raises an alert through :mod:`revloop.alerts`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from expectations import all_checks
from expectations.checks import Check
from expectations.results import CheckResult, latest, store
from revloop.alerts import Alert, Alerter, alerter_from_environment

logger = logging.getLogger(__name__)

AssetKey = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class QualityRun:
    """One run of the checkpoints."""

    run_id: str
    results: tuple[CheckResult, ...]
    seconds: float
    data_docs_index: Path | None

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.failed]

    @property
    def blocking(self) -> list[CheckResult]:
        """Failed error-level checks: the run is a failure, and flows from the data they cover stop."""
        return [r for r in self.results if r.blocking]

    @property
    def success(self) -> bool:
        return not self.blocking


def data_docs_dir(home: Path) -> Path:
    """Where the static Data Docs site is written."""
    return home / "quality" / "data_docs"


def select_checks(suites: Sequence[str] | None = None, names: Sequence[str] | None = None) -> list[Check]:
    """Checks of the given suites (all by default), optionally only the named ones."""
    checks = all_checks(list(suites) if suites else None)
    if names:
        wanted = set(names)
        unknown = wanted - {c.name for c in checks}
        if unknown:
            raise ValueError(f"unknown check(s): {', '.join(sorted(unknown))}")
        checks = [c for c in checks if c.name in wanted]
    return checks


def run_quality(
    database_url: str,
    home: Path,
    suites: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    alerter: Alerter | None = None,
) -> QualityRun:
    """Run the checks, store the results, build Data Docs and alert on failed error-level checks.

    Args:
        database_url: the warehouse.
        home: Revloop's home (``settings.home``); the report goes under ``quality/data_docs``.
        suites: ``raw``, ``canonical``, ``reconciliation`` (default: all).
        names: only these checks.
        alerter: where alerts go; default ``alerter_from_environment`` (Slack, else ``ops.alerts``).
    """
    from expectations.runner import run_checks  # imports Great Expectations

    started = time.perf_counter()
    docs = data_docs_dir(home)
    run_id, results, index = run_checks(select_checks(suites, names), database_url, docs)
    store(database_url, results)
    run = QualityRun(run_id, tuple(results), time.perf_counter() - started, index)
    if run.blocking:
        send_alerts(run.blocking, alerter or alerter_from_environment(database_url), index)
    logger.info("quality run %s: %d checks, %d failed, %d blocking, %.1fs", run_id, len(results),
                len(run.failures), len(run.blocking), run.seconds)
    return run


def send_alerts(failures: Iterable[CheckResult], alerter: Alerter, report: Path | None) -> None:
    """One alert per failed error-level check: the check, how many records, a few of them, the report."""
    for result in failures:
        count = "?" if result.unexpected_count is None else f"{result.unexpected_count:,}"
        alerter.send(
            Alert(
                severity="error",
                kind=f"quality-{result.check_name}",
                title=f"data-quality check {result.check_name} failed: {count} offending record(s)",
                detail={
                    "check": result.check_name,
                    "suite": result.suite,
                    "unexpected_count": result.unexpected_count,
                    "run_id": result.run_id,
                    "report": report.resolve().as_uri() if report else None,
                    "sample": list(result.sample[:5]),
                    **({"error": result.detail} if result.detail else {}),
                },
            )
        )


def latest_results(database_url: str) -> list[CheckResult]:
    """The latest stored result of every check that has run."""
    return latest(database_url)


def blocking_failures(database_url: str, assets: Iterable[Sequence[str] | str]) -> list[CheckResult]:
    """Latest failed error-level checks covering any of ``assets``; a flow must not write while any exist.

    Args:
        database_url: the warehouse.
        assets: asset keys as sequences (``("raw_erp", "account_move")``) or ``"raw_erp/account_move"``.
    """
    wanted = {tuple(a.split("/")) if isinstance(a, str) else tuple(a) for a in assets}
    return [r for r in latest(database_url) if r.blocking and wanted & set(r.asset_keys)]
