"""Runs one source's load: the lock, the dlt pipeline, and a summary counted in the warehouse."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dlt
import psycopg
from psycopg import sql

from pipelines.common.destination import make_pipeline
from pipelines.common.locking import pipeline_lock
from pipelines.common.memory import fewer_collections, return_large_blocks_when_freed
from pipelines.common.pii import PiiProtector
from pipelines.common.quarantine import Quarantine
from revloop.crypto import FieldCipher, MatchHasher, load_keyring
from revloop.settings import Settings

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class LoadContext:
    """What a source needs besides its system's settings."""

    system: str
    settings: Settings
    database_url: str
    protector: PiiProtector
    quarantine: Quarantine
    full_refresh: bool
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Facts a source reports for the summary (the API used, deletions found, schema changes...)."""
    events_overlap_seconds: float | None = None
    """How far before its cursor an events feed is re-read (None: the source's own default). The warm sync
    loop's hot cycles use a short window; its full cycles and every other load keep the default."""


@dataclasses.dataclass
class LoadSummary:
    system: str
    dataset: str
    seconds: float
    rows_by_table: dict[str, int]
    quarantined_by_object: dict[str, int]
    cursors: dict[str, Any]
    notes: dict[str, Any]
    load_ids: list[str]

    @property
    def rows_loaded(self) -> int:
        return sum(self.rows_by_table.values())

    @property
    def quarantined(self) -> int:
        return sum(self.quarantined_by_object.values())


SourceFactory = Callable[[LoadContext], Any]
"""Builds a fresh ``DltSource`` for one run (a source object cannot be reused across runs)."""


def dataset_for(system: str) -> str:
    return f"raw_{system}"


def run_load(
    system: str,
    make_source: SourceFactory,
    settings: Settings,
    database_url: str,
    *,
    full_refresh: bool = False,
    pipelines_dir: Path | None = None,
    progress: Any = None,
    events_overlap_seconds: float | None = None,
) -> LoadSummary:
    """Load ``system`` into ``raw_<system>``; raises ``PipelineBusy`` when the same load already runs.

    ``progress`` is a dlt collector (``dlt.common.runtime.collector.Collector``) that sees rows as they
    are extracted, normalized and loaded; the CLI passes one that draws a progress display.
    """
    started = time.perf_counter()
    return_large_blocks_when_freed()
    dataset = dataset_for(system)
    keyring = load_keyring(settings.environment, settings.home)
    cipher = FieldCipher(keyring)
    with pipeline_lock(database_url, system), Quarantine(database_url, system, cipher) as quarantine, \
            fewer_collections():
        context = LoadContext(
            system=system, settings=settings, database_url=database_url,
            protector=PiiProtector(system, cipher, MatchHasher(keyring)), quarantine=quarantine,
            full_refresh=full_refresh, events_overlap_seconds=events_overlap_seconds,
        )
        pipeline = make_pipeline(
            f"revloop_{system}", dataset, database_url, pipelines_dir or settings.home / "dlt" / system, progress
        )
        # A run that died after extracting left a package on disk; dlt's ``run`` would only load it and
        # return, so finish it first and then read what changed since.
        resumed = pipeline.has_pending_data
        load_ids = list(pipeline.run().loads_ids) if resumed else []
        source = make_source(context)
        info = pipeline.run(source, refresh="drop_sources" if full_refresh else None)
        load_ids += list(info.loads_ids)
        _note_step_seconds(context.notes, pipeline)
        counting = time.perf_counter()
        normalized = None if resumed else _normalized_rows(pipeline)
        rows = normalized if normalized is not None else _rows_by_table(database_url, dataset, load_ids, pipeline)
        index_merge_keys(database_url, dataset, pipeline)
        context.notes.setdefault("seconds", {})["count_rows"] = round(time.perf_counter() - counting, 3)
        summary = LoadSummary(
            system=system, dataset=dataset, seconds=time.perf_counter() - started, rows_by_table=rows,
            quarantined_by_object=dict(quarantine.by_object), cursors=_cursors(pipeline),
            notes=context.notes, load_ids=load_ids,
        )
    logger.info("%s: %d rows in %.1fs, %d quarantined", system, summary.rows_loaded, summary.seconds,
                summary.quarantined)
    return summary


def _note_step_seconds(notes: dict[str, Any], pipeline: dlt.Pipeline) -> None:
    """dlt's own step timings of the last run (extract, normalize, load) under ``notes["seconds"]``."""
    trace = pipeline.last_trace
    if trace is None:
        return
    timings = notes.setdefault("seconds", {})
    for step in trace.steps:
        if step.step in ("extract", "normalize", "load") and step.started_at and step.finished_at:
            seconds = (step.finished_at - step.started_at).total_seconds()
            timings[f"dlt_{step.step}"] = round(timings.get(f"dlt_{step.step}", 0.0) + seconds, 3)


def _normalized_rows(pipeline: dlt.Pipeline) -> dict[str, int] | None:
    """Rows per table of the run's packages, from dlt's normalize step; None when there is no such step.

    Exact for what the sources yield: Arrow tables (which dlt writes as csv files for PostgreSQL's COPY,
    counting each batch's rows) and small lists of dicts (written as insert statements); checked against
    ``count(*)`` on the demo book for the three systems. The inflated counts of pipeline pitfall 3 come from
    dict rows written with ``loader_file_format="csv"``, which no source asks for. Counting in the
    warehouse instead scans every table after every run (0.3 s per system on the large book, with nothing
    changed): the cost of a cycle would follow the size of the book, not the size of the change.
    """
    trace = pipeline.last_trace
    info = trace.last_normalize_info if trace is not None else None
    if info is None:
        return None
    return {
        table: int(count) for table, count in info.row_counts.items()
        if count and not table.startswith("_dlt")
    }


def index_merge_keys(database_url: str, dataset: str, pipeline: dlt.Pipeline) -> None:
    """An index on each merge table's primary key, so a merge finds the rows it replaces without a scan.

    dlt's postgres destination creates no index for ``primary_key`` (only for ``unique``), so merging
    100 changed rows into a million-row table would read the whole table. Non-unique on purpose: the
    index must never make a load fail; merge itself keeps the key unique.
    """
    wanted: dict[str, list[str]] = {}
    for schema_table in pipeline.default_schema.data_tables():
        name = str(schema_table.get("name") or "")
        if schema_table.get("write_disposition") != "merge" or not name or name.startswith("_dlt"):
            continue
        keys = [column for column, hints in schema_table.get("columns", {}).items() if hints.get("primary_key")]
        if keys:
            wanted[name] = keys
    if not wanted:
        return
    with psycopg.connect(database_url, autocommit=True) as conn:
        existing = {
            (row[0], row[1]) for row in conn.execute(
                "select tablename, indexname from pg_indexes where schemaname = %s", (dataset,)
            )
        }
        present = {row[0] for row in conn.execute(
            "select table_name from information_schema.tables where table_schema = %s", (dataset,)
        )}
        for table, keys in wanted.items():
            index = f"{table[:50]}__merge_key"
            if table not in present or (table, index) in existing:
                continue
            conn.execute(sql.SQL("create index if not exists {} on {}.{} ({})").format(
                sql.Identifier(index), sql.Identifier(dataset), sql.Identifier(table),
                sql.SQL(", ").join(sql.Identifier(k) for k in keys),
            ))
            logger.info("indexed %s.%s on %s", dataset, table, ", ".join(keys))


def _rows_by_table(database_url: str, dataset: str, load_ids: list[str], pipeline: dlt.Pipeline) -> dict[str, int]:
    """Rows written by these loads, counted in the warehouse (used when a resumed package has no counts)."""
    if not load_ids:
        return {}
    tables = [
        name for name in pipeline.default_schema.data_table_names()
        if not name.startswith("_dlt")
    ]
    counts: dict[str, int] = {}
    with psycopg.connect(database_url) as conn:
        for table in tables:
            exists = conn.execute("select to_regclass(%s)", (f"{dataset}.{table}",)).fetchone()
            if not exists or exists[0] is None:
                continue
            row = conn.execute(
                sql.SQL("select count(*) from {}.{} where _dlt_load_id = any(%s)").format(
                    sql.Identifier(dataset), sql.Identifier(table)
                ),
                (load_ids,),
            ).fetchone()
            if row and row[0]:
                counts[table] = int(row[0])
    return counts


def _cursors(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """The incremental cursor of each resource, from the pipeline state (kept in the warehouse)."""
    result: dict[str, Any] = {}
    for source_state in pipeline.state.get("sources", {}).values():
        for resource, state in source_state.get("resources", {}).items():
            for cursor, values in state.get("incremental", {}).items():
                result[f"{resource}.{cursor}"] = values.get("last_value")
            if "cursor" in state:
                result[resource] = state["cursor"]
    return result
