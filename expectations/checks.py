"""What a data-quality check is: a name, a severity, the table it covers, and how to find offending rows.

Checks are declared as code in :mod:`expectations.raw`, :mod:`expectations.canonical` and
:mod:`expectations.reconciliation`; :mod:`expectations.runner` runs them through Great Expectations.
A check is either SQL that returns the offending rows (ids from each system and the differences), run as
GX's ``UnexpectedRowsExpectation`` inside PostgreSQL, or one of GX's built-in column expectations.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

Severity = Literal["error", "warn"]
SEVERITIES: tuple[Severity, ...] = ("error", "warn")


@dataclasses.dataclass(frozen=True)
class BuiltIn:
    """A built-in GX expectation: its class name in ``great_expectations.expectations`` and its arguments."""

    expectation: str
    kwargs: dict[str, Any]
    id_column: str = "id"
    """Reported for each offending row (GX's ``unexpected_index_column_names``)."""


@dataclasses.dataclass(frozen=True)
class Check:
    """One data-quality check.

    Attributes:
        name: stable identifier, also the runbook anchor in ``docs/data-quality.md``.
        suite: ``raw``, ``canonical`` or ``reconciliation``.
        severity: ``error`` (blocks flows that write from the data it covers, alerts) or ``warn``.
        schema: schema of the table the check is anchored on (GX's batch, ``{batch}`` in the SQL).
        table: that table.
        description: what the check guards, in one sentence.
        sql: a query returning one row per offending record (ids and differences); it must mention
            ``{batch}`` (the anchored table). Literal braces are written ``{{`` and ``}}``.
        builtin: instead of ``sql``, a built-in GX expectation on the anchored table.
        requires: other relations (``schema.table``) the SQL reads; when one is missing the check is
            recorded as not run rather than failed.
        covers: further asset keys the check guards (the anchored table is always covered).
        optional: relations the SQL reads that may not exist because the source has no such record yet
            (a table is created by the first load that brings a row), each with a ``select`` of the
            columns the SQL uses that returns no row; when absent it stands in (referenced without an alias).
    """

    name: str
    suite: str
    severity: Severity
    schema: str
    table: str
    description: str
    sql: str | None = None
    builtin: BuiltIn | None = None
    requires: tuple[str, ...] = ()
    covers: tuple[tuple[str, ...], ...] = ()
    optional: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if (self.sql is None) == (self.builtin is None):
            raise ValueError(f"check {self.name}: give exactly one of sql or builtin")
        if self.sql is not None and "{batch}" not in self.sql:
            raise ValueError(f"check {self.name}: the SQL must read its anchored table as {{batch}}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"check {self.name}: severity must be one of {SEVERITIES}")

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def asset_key(self) -> tuple[str, ...]:
        """The Dagster asset key of the anchored table (``raw_erp/account_move``, ``finance/fct_invoices``)."""
        return (self.schema, self.table)

    @property
    def asset_keys(self) -> tuple[tuple[str, ...], ...]:
        """Every asset key the check guards: the anchored table first."""
        return (self.asset_key, *(key for key in self.covers if key != self.asset_key))

    @property
    def relations(self) -> tuple[str, ...]:
        return (self.relation, *self.requires)

    def without(self, absent: set[str]) -> Check:
        """This check with each absent optional relation replaced by its empty stand-in."""
        sql = self.sql
        for relation, empty in self.optional:
            if relation in absent and sql is not None:
                sql = sql.replace(relation, f"({empty}) as {relation.split('.', 1)[1]}")
        return dataclasses.replace(self, sql=sql)
