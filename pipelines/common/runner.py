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
) -> LoadSummary:
    """Load ``system`` into ``raw_<system>``; raises ``PipelineBusy`` when the same load already runs.

    ``progress`` is a dlt collector (``dlt.common.runtime.collector.Collector``) that sees rows as they
    are extracted, normalized and loaded; the CLI passes one that draws a progress display.
    """
    started = time.perf_counter()
    dataset = dataset_for(system)
    keyring = load_keyring(settings.environment, settings.home)
    cipher = FieldCipher(keyring)
    with pipeline_lock(database_url, system), Quarantine(database_url, system, cipher) as quarantine:
        context = LoadContext(
            system=system, settings=settings, database_url=database_url,
            protector=PiiProtector(system, cipher, MatchHasher(keyring)), quarantine=quarantine,
            full_refresh=full_refresh,
        )
        pipeline = make_pipeline(
            f"revloop_{system}", dataset, database_url, pipelines_dir or settings.home / "dlt" / system, progress
        )
        # A run that died after extracting left a package on disk; dlt's ``run`` would only load it and
        # return, so finish it first and then read what changed since.
        load_ids = list(pipeline.run().loads_ids) if pipeline.has_pending_data else []
        source = make_source(context)
        info = pipeline.run(source, refresh="drop_sources" if full_refresh else None)
        load_ids += list(info.loads_ids)
        rows = _rows_by_table(database_url, dataset, load_ids, pipeline)
        summary = LoadSummary(
            system=system, dataset=dataset, seconds=time.perf_counter() - started, rows_by_table=rows,
            quarantined_by_object=dict(quarantine.by_object), cursors=_cursors(pipeline),
            notes=context.notes, load_ids=load_ids,
        )
    logger.info("%s: %d rows in %.1fs, %d quarantined", system, summary.rows_loaded, summary.seconds,
                summary.quarantined)
    return summary


def _rows_by_table(database_url: str, dataset: str, load_ids: list[str], pipeline: dlt.Pipeline) -> dict[str, int]:
    """Rows written by these loads, counted in the warehouse (dlt's own counts can be inflated)."""
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
