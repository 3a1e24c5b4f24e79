"""Data-quality checkpoints as Dagster asset checks, with severity, on the assets each check covers.

One multi-asset check per suite runs that suite's checkpoint (``revloop.quality.run_quality``: Great
Expectations on the warehouse, results into ``quality.check_runs``, Data Docs, alerts) and reports one
check result per check on its anchored asset, with the offending-record count, a sample of offending
records and a link to the Data Docs site. Error-level reconciliation checks are ``blocking``: in a run,
assets downstream of a failed one are not materialized; flows writing outside Dagster ask
``revloop.quality.blocking_failures`` first.

Great Expectations is imported only when a check runs, never at code-location load.
"""

# No `from __future__ import annotations` here: Dagster inspects the real type of `context`.
import re
from collections.abc import Iterator, Sequence

import dagster as dg

from assets.resources import RevloopResource
from expectations import all_checks
from expectations.checks import Check

_SEVERITY = {"error": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}


def check_spec_name(check: Check) -> str:
    """Dagster check names are identifiers: ``raw_erp.account_move.id_present`` ->
    ``raw_erp__account_move__id_present``."""
    return re.sub(r"[^A-Za-z0-9_]", "__", check.name)


def _spec(check: Check) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name=check_spec_name(check),
        asset=dg.AssetKey(list(check.asset_key)),
        description=f"[{check.severity}] {check.description}",
        blocking=check.severity == "error" and check.suite == "reconciliation",
        additional_deps=[dg.AssetKey(list(key)) for key in check.asset_keys[1:]],
        metadata={"severity": check.severity, "suite": check.suite},
    )


def suite_checks(suite: str, checks: Sequence[Check] | None = None) -> dg.AssetChecksDefinition:
    """The asset checks of one suite, run together as one checkpoint."""
    chosen = list(checks) if checks is not None else all_checks([suite])

    @dg.multi_asset_check(name=f"quality_{suite}", specs=[_spec(c) for c in chosen], can_subset=True)
    def run_suite(context: dg.AssetCheckExecutionContext, revloop: RevloopResource) -> Iterator[dg.AssetCheckResult]:
        from revloop import quality

        settings = revloop.settings()
        selected = {key.name for key in context.selected_asset_check_keys}
        names = [c.name for c in chosen if check_spec_name(c) in selected]
        run = quality.run_quality(revloop.database_url(), settings.home, suites=[suite], names=names)
        report = str(run.data_docs_index.resolve()) if run.data_docs_index else None
        by_name = {c.name: c for c in chosen}
        for result in run.results:
            check = by_name[result.check_name]
            yield dg.AssetCheckResult(
                asset_key=dg.AssetKey(list(check.asset_key)),
                check_name=check_spec_name(check),
                passed=result.status != "failed",
                severity=_SEVERITY[check.severity],
                metadata={
                    "status": result.status,
                    "unexpected_count": dg.MetadataValue.int(result.unexpected_count or 0),
                    "sample": dg.MetadataValue.json(list(result.sample[:20])),
                    "run_id": result.run_id,
                    "data_docs": dg.MetadataValue.path(report) if report else "not built",
                    **({"detail": result.detail} if result.detail else {}),
                },
                description=result.detail,
            )

    return run_suite


QUALITY_CHECKS = [suite_checks("raw"), suite_checks("reconciliation")]
"""Checks on the raw assets; add to ``Definitions(asset_checks=...)``."""

CANONICAL_CHECKS = [suite_checks("canonical")]
"""Checks on the dbt marts (keys ``["marts", "<model>"]``, as dagster-dbt names them here)."""
