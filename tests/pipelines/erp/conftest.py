"""Fixtures of the ERP source's tests: a demo ERP sandbox per module, settings, loads and ERP clients."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pipelines.common.runner import LoadSummary, run_load
from pipelines.erp import erp_source
from revloop.connectors.erp import connect
from revloop.settings import ErpSettings, Settings
from tests.sandbox_harness import RunningSandbox, start_sandbox

NO_FAULTS = {"profile": "none"}


def erp_settings(sandbox: RunningSandbox) -> ErpSettings:
    return ErpSettings(**{k.removeprefix("REVLOOP_ERP_").lower(): v for k, v in sandbox.env().items()})


@dataclasses.dataclass
class ErpHarness:
    """One sandbox, the settings pointing at it, and helpers to load and to look at both sides."""

    sandbox: RunningSandbox
    settings: Settings
    home: Path

    @property
    def erp(self) -> ErpSettings:
        return self.settings.erp

    def load(self, database_url: str, **kwargs: Any) -> LoadSummary:
        return run_load("erp", erp_source, self.settings, database_url,
                        pipelines_dir=self.pipelines_dir(database_url), **kwargs)

    def pipelines_dir(self, database_url: str) -> Path:
        """dlt's working directory for loads into one database (each test database has its own)."""
        return self.home / "dlt" / psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]

    def writer(self) -> Any:
        """An odoolib connection with the sync key (writes), as an integration user would use."""
        return connect(self.erp)

    def admin(self) -> Any:
        """An odoolib connection with the administrator's key (for data no integration may write)."""
        import odoolib

        users = self.sandbox.admin("GET", "erp/credentials")["users"]
        key = next(u["api_key"] for u in users if u["login"] == "admin")
        port = int(self.erp.url.rsplit(":", 1)[1])  # type: ignore[union-attr]
        return odoolib.get_connection(hostname="127.0.0.1", port=port, protocol="json2",
                                      database=self.erp.database, password=key)

    def faults(self, knobs: dict[str, Any]) -> None:
        self.sandbox.admin("PUT", "faults", knobs)

    def erp_ids(self, model: str, domain: list[Any] | None = None) -> set[int]:
        found = self.writer().get_model(model).search(
            domain=domain or [], context={"active_test": False}
        )
        return set(found)


@pytest.fixture(scope="module")
def erp_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ErpHarness]:
    data_dir = tmp_path_factory.mktemp("erp-sandbox")
    sandbox = start_sandbox("erp", data_dir, seed=42, scale="demo")
    home = tmp_path_factory.mktemp("erp-home")
    try:
        yield ErpHarness(sandbox, Settings(home=home, erp=erp_settings(sandbox)), home)
    finally:
        sandbox.stop()


def warehouse_ids(database_url: str, table: str, *, deleted: bool | None = False) -> list[int]:
    """Ids in ``raw_erp.<table>`` (live ones by default), duplicates kept so tests can see them."""
    condition = {False: "is_deleted is not true", True: "is_deleted", None: "true"}[deleted]
    with psycopg.connect(database_url) as conn:
        return [r[0] for r in conn.execute(f"select id from raw_erp.{table} where {condition} order by id")]


def warehouse_rows(database_url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, params).fetchall()
