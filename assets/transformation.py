"""The dbt canonical layer as Dagster assets (dagster-dbt), downstream of the raw tables.

Keys are ``[<schema>, <model>]`` (``staging/stg_erp__invoices``, ``marts/fct_invoices``); dbt sources map
to the raw assets ``[raw_<system>, <table>]`` of ``assets/ingestion.py``, so lineage runs unbroken from each
raw table to each mart. dbt tests appear as asset checks.
"""

# No `from __future__ import annotations` here: Dagster inspects the real type of `context`.
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from assets.resources import RevloopResource
from revloop.dbt import MANIFEST_PATH, PROJECT_DIR, DbtProject, connection_env, dbt_lock

LAYER_GROUPS = {"staging": "canonical_staging", "intermediate": "canonical_intermediate", "marts": "canonical_marts",
                "reference": "canonical_reference"}


def ensure_manifest() -> Path:
    """The parsed manifest, parsing the project first when it is missing (``dbt parse`` needs no database)."""
    if not MANIFEST_PATH.exists():
        placeholder = connection_env("postgresql://revloop@localhost:5432/revloop")
        saved = {key: os.environ.get(key) for key in placeholder}
        os.environ.update({k: v for k, v in placeholder.items() if os.environ.get(k) is None})
        try:
            DbtProject("postgresql://revloop@localhost:5432/revloop").parse()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
    return MANIFEST_PATH


class RevloopDbtTranslator(DagsterDbtTranslator):
    """Sources become the raw assets; models are keyed by their schema (layer) and grouped by it."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props["schema"]
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        schema = dbt_resource_props.get("config", {}).get("schema")
        return LAYER_GROUPS.get(schema or "", "canonical")


@dbt_assets(
    manifest=ensure_manifest(),
    dagster_dbt_translator=RevloopDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
)
def canonical_models(context: dg.AssetExecutionContext, revloop: RevloopResource) -> Iterator[Any]:
    """Build the dbt models (and run their tests) selected in this run."""
    settings = revloop.settings()
    os.environ.update(connection_env(revloop.database_url(), settings.environment))
    dbt = DbtCliResource(
        project_dir=str(PROJECT_DIR), profiles_dir=str(PROJECT_DIR),
        dbt_executable=str(Path(sys.executable).with_name("dbt")), target=settings.environment,
    )
    # one dbt invocation per warehouse at a time: the warm sync loop refreshes the same tables
    with dbt_lock(revloop.database_url(), holder=f"dagster:{context.run_id[:8]}"):
        yield from dbt.cli(["build"], context=context).stream()


TRANSFORM_JOB = dg.define_asset_job(
    "transform_job", selection=dg.AssetSelection.assets(canonical_models),
    description="Build the canonical layer (dbt build: models, seeds and tests).",
)
