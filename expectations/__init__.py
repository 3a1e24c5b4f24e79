"""Great Expectations suites and checkpoints as code: raw, canonical and reconciliation checks.

Importing this package does not import Great Expectations (a ~15 s import): only
:mod:`expectations.runner` does, when checks actually run.
"""

from __future__ import annotations

from expectations.canonical import canonical_checks
from expectations.checks import BuiltIn, Check, Severity
from expectations.raw import raw_checks
from expectations.reconciliation import reconciliation_checks

SUITES = ("raw", "canonical", "reconciliation")


def all_checks(suites: tuple[str, ...] | list[str] | None = None) -> list[Check]:
    """The checks of the given suites (all by default), in suite order."""
    chosen = tuple(suites or SUITES)
    unknown = set(chosen) - set(SUITES)
    if unknown:
        raise ValueError(f"unknown suite(s) {', '.join(sorted(unknown))}; known: {', '.join(SUITES)}")
    checks = {"raw": raw_checks, "canonical": canonical_checks, "reconciliation": reconciliation_checks}
    return [check for suite in SUITES if suite in chosen for check in checks[suite]()]


__all__ = ["SUITES", "BuiltIn", "Check", "Severity", "all_checks"]
