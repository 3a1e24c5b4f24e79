"""Runs checks through Great Expectations 1.x on the warehouse and turns GX's results into ours.

One ephemeral GX context per run: a PostgreSQL data source on the warehouse, a table asset per covered
table, one validation definition per SQL check and one per table for built-in expectations (so each
result carries its own timing), all run by checkpoints; Data Docs are then built to a static site.
GX is imported here only, and lazily by callers: its import alone takes ~15 s.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from expectations.checks import Check
from expectations.results import SAMPLE_SIZE, CheckResult

logger = logging.getLogger(__name__)

SITE_NAME = "revloop"


def sqlalchemy_url(database_url: str) -> str:
    """The warehouse URL for SQLAlchemy/psycopg2 (what GX uses), from a libpq URL or key=value string.

    A Unix-socket directory becomes ``localhost?host=/dir`` (a URL's host part cannot hold a path).
    """
    from sqlalchemy.engine import URL

    info = psycopg.conninfo.conninfo_to_dict(database_url)
    host = info.pop("host", None)
    query: dict[str, str] = {}
    if host and str(host).startswith("/"):
        # libpq lets the query's host (the socket directory) override the URL's, which GX requires
        query["host"] = str(host)
        host = "localhost"
    for key in ("sslmode", "sslrootcert", "options"):
        if info.get(key):
            query[key] = str(info[key])
    url = URL.create(
        "postgresql+psycopg2",
        username=info.get("user"),
        password=info.get("password"),
        host=host,
        port=int(info["port"]) if info.get("port") else None,
        database=info.get("dbname"),
        query=query,
    )
    return url.render_as_string(hide_password=False)


def missing_relations(database_url: str, relations: Sequence[str]) -> set[str]:
    """Which of ``schema.table`` do not exist (yet) in the warehouse."""
    unique = sorted(set(relations))
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select r, to_regclass(r) is null from unnest(%s::text[]) as r", (unique,)
        ).fetchall()
    return {name for name, missing in rows if missing}


def run_checks(
    checks: Sequence[Check], database_url: str, docs_dir: Path, run_id: str | None = None
) -> tuple[str, list[CheckResult], Path | None]:
    """Run ``checks``; returns the run id, one result per check (in the given order) and the Data Docs index."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    run_id = run_id or f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    missing = missing_relations(database_url, [r for c in checks for r in (*c.relations, *dict(c.optional))])
    results: dict[str, CheckResult] = {}
    runnable: list[Check] = []
    now = dt.datetime.now(dt.UTC)
    for check in checks:
        absent = [r for r in check.relations if r in missing]
        if absent:
            results[check.name] = _result(check, run_id, "not_run", None, (), now, 0.0,
                                          f"not built yet: {', '.join(absent)}")
        else:
            runnable.append(check.without(missing))

    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # logs, not terminal bars
    docs_dir.mkdir(parents=True, exist_ok=True)
    context.add_data_docs_site(
        SITE_NAME,
        {
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        },
    )
    source = context.data_sources.add_postgres(name="warehouse", connection_string=sqlalchemy_url(database_url))
    batches: dict[str, Any] = {}
    for relation in sorted({c.relation for c in runnable}):
        schema, table = relation.split(".", 1)
        asset = source.add_table_asset(name=relation, schema_name=schema, table_name=table)
        batches[relation] = asset.add_batch_definition_whole_table("whole table")

    # One validation per SQL check; built-ins grouped per (suite, table).
    groups: dict[str, list[Check]] = {}
    for check in runnable:
        key = f"{check.suite}.{check.name}" if check.sql else f"{check.suite}.{check.relation}"
        groups.setdefault(key, []).append(check)

    for group_name, group in groups.items():
        suite = context.suites.add(gx.ExpectationSuite(name=group_name))
        for check in group:
            suite.add_expectation(_expectation(gxe, check))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=group_name, data=batches[group[0].relation], suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"checkpoint.{group_name}",
                validation_definitions=[definition],
                result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["id"]},
            )
        )
        started, clock = dt.datetime.now(dt.UTC), time.perf_counter()
        outcome = checkpoint.run(run_id=gx.core.run_identifier.RunIdentifier(run_name=run_id))
        seconds = time.perf_counter() - clock
        by_name = {check.name: check for check in group}
        for validation in outcome.run_results.values():
            for expectation_result in validation.results:
                name = (expectation_result.expectation_config.meta or {}).get("check")
                if name in by_name:
                    results[name] = _from_gx(by_name[name], run_id, expectation_result, started, seconds)
        for check in group:  # an expectation GX could not even evaluate leaves no result: count it failed
            results.setdefault(check.name, _result(check, run_id, "failed", None, (), started, seconds,
                                                   "no result from Great Expectations"))

    index: Path | None = None
    try:
        context.build_data_docs(site_names=[SITE_NAME])
        index = docs_dir / "index.html"
    except Exception:  # the results are stored either way; a report that cannot render must not hide them
        logger.exception("building Data Docs failed")
    return run_id, [results[c.name] for c in checks], index


def _expectation(gxe: Any, check: Check) -> Any:
    meta = {"check": check.name, "severity": check.severity, "description": check.description}
    if check.sql is not None:
        return gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=check.sql, description=f"{check.name}: {check.description}", meta=meta
        )
    assert check.builtin is not None
    expectation_class = getattr(gxe, check.builtin.expectation)
    return expectation_class(**check.builtin.kwargs, meta=meta)


def _from_gx(check: Check, run_id: str, outcome: Any, started: dt.datetime, seconds: float) -> CheckResult:
    raised = (outcome.exception_info or {}).get("raised_exception")
    if raised:
        message = (outcome.exception_info or {}).get("exception_message") or "error"
        return _result(check, run_id, "failed", None, (), started, seconds, f"check could not run: {message}")
    payload = outcome.result or {}
    if check.sql is not None:
        count = int(payload.get("observed_value") or 0)
        rows = (payload.get("details") or {}).get("unexpected_rows") or []
        sample = tuple(_plain(row) for row in rows[:SAMPLE_SIZE])
    else:
        count = int(payload.get("unexpected_count") or 0)
        indexed = payload.get("unexpected_index_list") or []
        sample = tuple(_plain(row) if isinstance(row, dict) else {"value": row} for row in indexed[:SAMPLE_SIZE])
    status = "passed" if outcome.success else "failed"
    return _result(check, run_id, status, count, sample, started, seconds)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-friendly values (Decimals and dates as text, lists kept)."""
    plain: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or isinstance(value, (bool, int, str, list)):
            plain[key] = value
        else:
            plain[key] = str(value)
    return plain


def _result(
    check: Check, run_id: str, status: str, count: int | None, sample: tuple[dict[str, Any], ...],
    started: dt.datetime, seconds: float, detail: str | None = None,
) -> CheckResult:
    return CheckResult(
        run_id=run_id, check_name=check.name, suite=check.suite, severity=check.severity,
        asset_keys=check.asset_keys, status=status, unexpected_count=count, sample=sample,
        started_at=started, duration_seconds=seconds, detail=detail,
    )
