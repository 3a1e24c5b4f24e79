"""The dlt PostgreSQL destination and pipelines, from Revloop's warehouse URL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dlt
import psycopg
from dlt.destinations import postgres

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
# Arrow tables skip dlt's row normalizer; without this their rows carry no ``_dlt_load_id`` (rows are
# counted per load by that column, see pipelines.common.runner).
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
# Load files only live in the working directory between normalize and COPY, on this machine: gzip cost
# a third of a backfill's time (measured with py-spy, see docs/benchmarks.md) and saved nothing useful.
os.environ.setdefault("NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION", "true")
# One resource at a time: dlt's default takes an item from each resource in turn, so every table's reader
# (its pages read ahead, its batch being gathered) was alive at once, seven to ten per source. That held
# 340 MiB of parsed ERP pages at the peak of a large backfill (measured with memray), for no speed gained:
# each sandbox answers one request at a time, and each reader already keeps a request in flight.
os.environ.setdefault("EXTRACT__NEXT_ITEM_MODE", "fifo")


def credentials_from_url(database_url: str) -> dict[str, Any]:
    """dlt's postgres credentials from a libpq URL (TCP host or Unix socket directory).

    dlt requires a password field even where the server trusts the client, so an unused one is filled in.
    """
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    host = info.get("host") or "localhost"
    credentials: dict[str, Any] = {
        "database": info.get("dbname") or "postgres",
        "username": info.get("user") or "postgres",
        "password": info.get("password") or "unused",
        "host": host,
        "port": int(info.get("port") or 5432),
    }
    if host.startswith("/"):
        # dlt renders the host into the URL's authority, where a socket directory is not valid: libpq
        # takes it from the query string instead (it overrides the authority's host).
        credentials["host"] = "localhost"
        credentials["query"] = {"host": host}
    return credentials


def make_pipeline(
    name: str, dataset: str, database_url: str, pipelines_dir: Path, progress: Any = None
) -> dlt.Pipeline:
    """A dlt pipeline loading into ``dataset`` of the warehouse.

    The working directory only holds packages in flight; the cursors and the schema live in the
    warehouse (``_dlt_pipeline_state``), so another machine resumes from there.
    """
    return dlt.pipeline(
        pipeline_name=name,
        destination=postgres(credentials=credentials_from_url(database_url)),
        dataset_name=dataset,
        pipelines_dir=str(pipelines_dir),
        progress=progress or ("log" if os.environ.get("REVLOOP_PROGRESS") == "log" else None),
    )
