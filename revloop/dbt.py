"""Runs the dbt project (``dbt_project/``) in-process, against Revloop's warehouse, and summarizes the result.

dbt is driven through ``dbtRunner`` in this process, so a long-lived caller (the CLI session, a Dagster
sensor, a test module) pays dbt's start-up once. The project is parsed once per :class:`DbtProject` and
the parsed manifest is handed to every later invocation, which then skips dbt's parsing altogether; it is
parsed again when a file of the project changes. Every invocation passes the same project dir, profiles
dir and no ``--vars``, and the connection comes from environment variables, so dbt's partial parsing
also holds for that one parse. dbt's connection profile is ``dbt_project/profiles.yml``; it reads:

* ``REVLOOP_DBT_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD``, ``_DBNAME``, ``_SSLMODE``: computed here from
  :func:`revloop.warehouse.database_url` (``REVLOOP_DATABASE_URL`` or the embedded PostgreSQL; a Unix
  socket directory is passed as the host, which psycopg2 accepts);
* ``REVLOOP_ENVIRONMENT``: the target (``dev``, ``staging``, ``prod``).

Code that calls into this module must run under an ``if __name__ == "__main__":`` guard: dbt uses a
spawn multiprocessing context.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import psycopg
import psycopg.sql

if TYPE_CHECKING:
    from dbt.contracts.graph.manifest import Manifest

from revloop.locking import LockBusy, advisory_lock, holder_name
from revloop.settings import Settings
from revloop.stopping import process_stopping

logger = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
"""The dbt project; its manifest after ``dbt parse`` is ``PROJECT_DIR / "target" / "manifest.json"``."""
MANIFEST_PATH = PROJECT_DIR / "target" / "manifest.json"

_FAILING_ROWS_SHOWN = 5
_REBUILT_MATERIALIZATIONS = ("incremental", "table")
_NOT_PROJECT_FILES = frozenset({"target", "logs", "dbt_packages"})


@cache
def source_tables() -> frozenset[tuple[str, str]]:
    """Every ``(source, table)`` the project declares in ``models/**/_*__sources.yml``.

    Read from the YAML rather than the manifest so it works before the first ``dbt parse``.
    """
    import yaml  # type: ignore[import-untyped]  # PyYAML, a dependency of dbt-core

    declared: set[tuple[str, str]] = set()
    for path in sorted((PROJECT_DIR / "models").rglob("*.yml")):
        document = yaml.safe_load(path.read_text()) or {}
        for source in document.get("sources") or ():
            for table in source.get("tables") or ():
                declared.add((str(source["name"]), str(table["name"])))
    return frozenset(declared)


def affected_selection(rows_by_table_by_system: Mapping[str, Mapping[str, int]]) -> list[str]:
    """The dbt selectors for what a load changed: the tables downstream of each raw table that got rows.

    A load's ``rows_by_table`` (per system, as :class:`pipelines.common.runner.LoadSummary` reports it)
    names the raw tables that received rows; the models worth rebuilding are the incremental and table
    models downstream of those tables (``source:<system>.<table>+,config.materialized:incremental``, and
    the same for ``table``), nothing else: staging models are views, as current as the raw tables already,
    and rebuilding one would only re-create it. Tables the project does not declare as sources (dlt's own
    bookkeeping) are ignored, and the selectors come out sorted, so the same load always gives the same
    arguments.

    Args:
        rows_by_table_by_system: ``{"salesforce": {"opportunity": 100, ...}, "erp": {...}, ...}``.

    Returns:
        Selectors for ``DbtProject.build(select=...)``; empty when no declared source received a row
        (then there is nothing to rebuild: do not call dbt, an empty selection would build everything).
    """
    declared = source_tables()
    selected = {
        f"source:{system}.{table}+,config.materialized:{materialized}"
        for system, rows_by_table in rows_by_table_by_system.items()
        for table, rows in rows_by_table.items()
        if rows and (system, table) in declared
        for materialized in _REBUILT_MATERIALIZATIONS
    }
    return sorted(selected)


def _drop_repeated_behavior_flags() -> None:
    """Undo the growth of dbt-adapters' list of default behavior flags in a long-lived process.

    Every adapter dbt creates (one per invocation) extends the module-level ``DEFAULT_BASE_BEHAVIOR_FLAGS``
    with its own flags in place, and each invocation then renders every entry, each render walking the call
    stack (``inspect.stack``): measured here, an invocation with nothing to do went from 0.04 s to 0.12 s over
    120 invocations, and a warm loop makes thousands. Keeping one entry per flag name restores the list a
    fresh process has.
    """
    from dbt.adapters.base import impl

    by_name: dict[str, Any] = {}
    for flag in impl.DEFAULT_BASE_BEHAVIOR_FLAGS:
        by_name.setdefault(str(flag["name"]), flag)
    impl.DEFAULT_BASE_BEHAVIOR_FLAGS[:] = list(by_name.values())


@cache
def _project_vars() -> dict[str, Any]:
    """The ``vars`` of ``dbt_project.yml``."""
    import yaml

    loaded = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text()) or {}
    return dict(loaded.get("vars") or {})


_PROJECT_ARGS = ("--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR), "--quiet")


def _project_files() -> tuple[tuple[str, int, int], ...]:
    """Path, modification time and size of every file of the project: a parse is current while they are."""
    found = []
    for top in sorted(PROJECT_DIR.iterdir()):
        if top.name in _NOT_PROJECT_FILES:
            continue
        for path in sorted(top.rglob("*")) if top.is_dir() else [top]:
            if path.is_file():
                stat = path.stat()
                found.append((str(path.relative_to(PROJECT_DIR)), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


class TransformError(RuntimeError):
    """dbt could not run at all (a compilation error, an unreachable warehouse)."""


class TransformBusy(TransformError, LockBusy):
    """Another process (a Dagster run, a sync loop) is building the canonical layer of this warehouse."""


DBT_LOCK_KEY = "revloop.dbt"
# dbt commands that write to the warehouse; parse, compile, ls and docs only read the project.
_WAREHOUSE_COMMANDS = frozenset({"build", "run", "seed", "test", "snapshot", "source", "run-operation"})


@contextlib.contextmanager
def dbt_lock(database_url: str, *, wait_seconds: float = 600.0, holder: str = "dbt") -> Iterator[None]:
    """One dbt invocation at a time per warehouse, across processes.

    Two builds at once (a Dagster run and the warm sync loop) would replace the same tables side by side:
    one fails on the other's locks, or one's incremental merge reads the other's half-built relation.
    Raises :class:`TransformBusy` naming the holder when the lock stays held ``wait_seconds``.
    """
    with advisory_lock(database_url, DBT_LOCK_KEY, holder=holder_name("revloop-dbt", holder),
                       wait_seconds=wait_seconds, busy=TransformBusy, give_up=process_stopping.is_set,
                       busy_message="another dbt build is running on this warehouse ({who})"):
        yield


@dataclasses.dataclass(frozen=True)
class NodeResult:
    """One model, seed, snapshot or test of a dbt invocation."""

    resource_type: str
    name: str
    status: str
    seconds: float
    rows: int | None
    message: str
    failing_rows: tuple[dict[str, Any], ...] = ()
    """For a failed test: the first rows it returned (for a status-mapping test, the unmapped values)."""

    @property
    def ok(self) -> bool:
        return self.status in ("success", "pass", "skipped", "warn")

    def explanation(self) -> str:
        """A one-line account of a failure, naming what failed (the unmapped value, the differing rows)."""
        if not self.failing_rows:
            return self.message
        shown = "; ".join(", ".join(f"{k}={v!r}" for k, v in row.items()) for row in self.failing_rows)
        return f"{self.message} -> {shown}"


@dataclasses.dataclass(frozen=True)
class TransformSummary:
    """What one ``dbt`` invocation did."""

    command: str
    success: bool
    seconds: float
    nodes: tuple[NodeResult, ...]
    error: str | None = None

    @property
    def models(self) -> tuple[NodeResult, ...]:
        return tuple(n for n in self.nodes if n.resource_type in ("model", "seed", "snapshot"))

    @property
    def tests(self) -> tuple[NodeResult, ...]:
        return tuple(n for n in self.nodes if n.resource_type in ("test", "unit_test"))

    @property
    def failures(self) -> tuple[NodeResult, ...]:
        return tuple(n for n in self.nodes if not n.ok)

    def node(self, name: str) -> NodeResult:
        """The result of the node called ``name``; raises ``KeyError`` when it did not run."""
        for result in self.nodes:
            if result.name == name:
                return result
        raise KeyError(name)


def connection_env(database_url: str, environment: str = "dev") -> dict[str, str]:
    """The ``REVLOOP_DBT_*`` variables ``profiles.yml`` reads, from a PostgreSQL URL or conninfo string.

    Args:
        database_url: The warehouse, e.g. ``postgresql://user@127.0.0.1:5432/revloop`` or a URL whose host
            is a Unix socket directory (``postgresql://user@/db?host=/tmp/pg``).
        environment: ``dev``, ``staging`` or ``prod``: the dbt target.

    Returns:
        Environment variables to set before invoking dbt.
    """
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    host = str(info.get("host") or info.get("hostaddr") or "localhost")
    env = {
        "REVLOOP_DBT_HOST": host.split(",")[0],
        "REVLOOP_DBT_PORT": str(info.get("port") or "5432").split(",")[0],
        "REVLOOP_DBT_USER": str(info.get("user") or os.environ.get("USER") or "postgres"),
        "REVLOOP_DBT_PASSWORD": str(info.get("password") or ""),
        "REVLOOP_DBT_DBNAME": str(info.get("dbname") or "postgres"),
        # Unix sockets cannot negotiate TLS; psycopg2 would fail on "require" there.
        "REVLOOP_DBT_SSLMODE": str(info.get("sslmode") or ("disable" if host.startswith("/") else "prefer")),
        "REVLOOP_ENVIRONMENT": environment,
    }
    return env


class DbtProject:
    """A warm handle on the dbt project for one warehouse: build, test and parse with readable summaries.

    Args:
        database_url: The warehouse to build in.
        environment: The dbt target (``dev``, ``staging``, ``prod``).
    """

    # dbt keeps process-wide state (flags, adapters): one invocation at a time per process.
    _lock = threading.Lock()

    def __init__(self, database_url: str, environment: str = "dev", *, lock_wait_seconds: float = 600.0) -> None:
        self.database_url = database_url
        self.environment = environment
        self.lock_wait_seconds = lock_wait_seconds
        self._runner: Any = None
        self._parsed_files: tuple[tuple[str, int, int], ...] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DbtProject:
        """The project pointed at the warehouse Revloop uses (``REVLOOP_DATABASE_URL`` or the embedded one)."""
        from revloop import warehouse

        return cls(warehouse.database_url(settings), settings.environment)

    def build(self, select: Sequence[str] = (), *, full_refresh: bool = False,
              exclude: Sequence[str] = ()) -> TransformSummary:
        """``dbt build``: seeds, models and their tests in dependency order (a failing test skips dependents)."""
        args = ["build"]
        if select:
            args += ["--select", *select]
        if exclude:
            args += ["--exclude", *exclude]
        if full_refresh:
            args.append("--full-refresh")
        return self.invoke(args)

    def refresh(self, rows_by_table_by_system: Mapping[str, Mapping[str, int]]) -> TransformSummary:
        """Bring the canonical layer up to date after loads, at the cost of what they changed.

        ``dbt run`` of the models downstream of the raw tables that got rows (:func:`affected_selection`),
        then the tests defined on the models that wrote rows (``dbt build --resource-type test``, where
        each test reads the rows its model's latest build wrote). A model that wrote nothing has nothing
        new to test.
        Unlike a single ``dbt build``, a failing test does not keep the models after it from refreshing; the
        failure is in the summary all the same. Nothing is invoked when no declared source got rows.

        Args:
            rows_by_table_by_system: The loads' ``rows_by_table`` per system (see :func:`affected_selection`).

        Returns:
            The models' and the tests' results as one summary (``command`` is ``refresh``).
        """
        selection = affected_selection(rows_by_table_by_system)
        if not selection:
            return TransformSummary("refresh", True, 0.0, ())
        # dbt's debug file log formats every event of every node: a quarter of a test's cost; and the relation
        # cache dbt fills before a command (every relation of every schema the selection touches) costs more
        # than the few look-ups a refresh makes without it (0.60 vs 0.61-0.86 s for the run, 0.41 vs 0.45 s
        # for the tests on the demo book)
        quiet_log = ("--log-level-file", "warn", "--no-populate-cache")
        run = self.invoke(["run", "--select", *selection, *quiet_log])
        written = {n.name for n in run.models if n.rows}
        checks = self._tests_defined_on(written)
        if not checks:
            return dataclasses.replace(run, command="refresh")
        # each test reads the rows its model's latest build wrote; handing the build times over saves every
        # test a look-up of its own while it compiles (macros/tests_on_written_rows.sql)
        known = self._built_at(written)
        handed = ("--vars", json.dumps({"written_since": known})) if known else ()
        tests = self.invoke(["build", "--resource-type", "test", "--select", *checks, *quiet_log, *handed])
        return TransformSummary(
            "refresh", run.success and tests.success, run.seconds + tests.seconds, run.nodes + tests.nodes,
            run.error or tests.error,
        )

    def parse(self) -> TransformSummary:
        """``dbt parse``: writes ``target/manifest.json`` (what dagster-dbt loads)."""
        started = time.perf_counter()
        with self._lock:
            os.environ.update(connection_env(self.database_url, self.environment))
            self._parse()
        return TransformSummary("parse", True, time.perf_counter() - started, ())

    def docs(self) -> Path:
        """``dbt docs generate``: the static documentation site (models, columns, lineage); its index.html."""
        summary = self.invoke(["docs", "generate"])
        if not summary.success:
            raise TransformError(f"dbt docs generate failed: {summary.error}")
        return PROJECT_DIR / "target" / "index.html"

    def source_freshness(self) -> TransformSummary:
        """``dbt source freshness`` for every source."""
        return self.invoke(["source", "freshness"])

    def invoke(self, args: Sequence[str]) -> TransformSummary:
        """Run one dbt command in-process and summarize it.

        Raises:
            TransformError: dbt could not run at all (no result to summarize).
        """
        command = " ".join(args[:2]) if args[:1] == ["source"] else args[0]
        started = time.perf_counter()
        with self._lock:
            os.environ.update(connection_env(self.database_url, self.environment))
            if self._runner is None or self._parsed_files != _project_files():
                self._parse()
            logger.info("dbt %s", " ".join(args))
            # Writing manifest.json and run_results.json took 0.2 s of every invocation; `parse` writes the
            # manifest Dagster loads, and `docs generate` needs its artifacts.
            artifacts = () if command in ("docs", "parse") else ("--no-write-json",)
            _drop_repeated_behavior_flags()
            guard = (dbt_lock(self.database_url, wait_seconds=self.lock_wait_seconds)
                     if args[0] in _WAREHOUSE_COMMANDS else contextlib.nullcontext())
            with guard:
                result = self._runner.invoke([*args, *_PROJECT_ARGS, *artifacts])
        seconds = time.perf_counter() - started
        if result.result is None or isinstance(result.result, bool | str):
            error = str(result.exception) if result.exception else None
            if not result.success and error:
                raise TransformError(f"dbt {command} failed: {error}")
            return TransformSummary(command, bool(result.success), seconds, (), error)
        nodes = tuple(self._node_result(r) for r in getattr(result.result, "results", ()) or ())
        return TransformSummary(command, bool(result.success), seconds, nodes,
                                str(result.exception) if result.exception else None)

    def _built_at(self, models: set[str]) -> dict[str, str]:
        """The latest build time of each of these models, as the refresh bookkeeping holds it."""
        schema = _project_vars().get("refresh_state_schema", "intermediate")
        try:
            with psycopg.connect(self.database_url) as conn:
                query = psycopg.sql.SQL("select model, through_value from {}.refresh_windows "
                                        "where input = 'built_at' and model = any(%s)")
                rows = conn.execute(query.format(psycopg.sql.Identifier(schema)), (sorted(models),)).fetchall()
        except psycopg.Error as exc:  # the tests look their build times up themselves
            logger.debug("build times not read: %s", exc)
            return {}
        return {str(model): str(value) for model, value in rows}

    def _tests_defined_on(self, models: set[str]) -> list[str]:
        """The names of the data tests defined on these models (a relationships test belongs to its child)."""
        nodes = self._runner.manifest.nodes.values() if models and self._runner is not None else ()
        return sorted(
            node.name for node in nodes
            if node.resource_type == "test" and str(getattr(node, "attached_node", "")).split(".")[-1] in models
        )

    def _parse(self) -> None:
        """Parse the project (partial parsing applies) and keep a runner that reuses the manifest."""
        from dbt.cli.main import dbtRunner

        files = _project_files()
        result = dbtRunner().invoke(["parse", *_PROJECT_ARGS])
        if not result.success or result.result is None:
            raise TransformError(f"dbt parse failed: {result.exception}")
        self._runner = dbtRunner(manifest=cast("Manifest", result.result))  # parse's result is the manifest
        self._parsed_files = files

    def _node_result(self, run_result: Any) -> NodeResult:
        node = getattr(run_result, "node", None)
        status = str(getattr(run_result.status, "value", run_result.status))
        adapter_response = getattr(run_result, "adapter_response", None) or {}
        rows = adapter_response.get("rows_affected") if isinstance(adapter_response, dict) else None
        resource_type = str(getattr(getattr(node, "resource_type", None), "value", "unknown"))
        name = str(getattr(node, "name", None) or getattr(run_result, "unique_id", "?"))
        if resource_type == "source" and node is not None:  # freshness results carry the table
            name = f"{node.source_name}.{node.name}"
        failing: tuple[dict[str, Any], ...] = ()
        if resource_type == "test" and status in ("fail", "error", "warn") and getattr(run_result, "failures", None):
            failing = self._failing_rows(getattr(node, "compiled_code", None))
        return NodeResult(
            resource_type=resource_type,
            name=name,
            status=status,
            seconds=float(getattr(run_result, "execution_time", 0.0) or 0.0),
            rows=rows if isinstance(rows, int) and rows >= 0 else None,
            message=str(getattr(run_result, "message", "") or ""),
            failing_rows=failing,
        )

    def _failing_rows(self, compiled_sql: str | None) -> tuple[dict[str, Any], ...]:
        """The first rows a failed test returns: what makes its failure explainable."""
        if not compiled_sql:
            return ()
        query = f"select * from ({compiled_sql.rstrip().rstrip(';')}) as failing limit {_FAILING_ROWS_SHOWN}"
        try:
            with psycopg.connect(self.database_url) as conn:
                cursor = conn.execute(query)  # type: ignore[call-overload]
                columns = [c.name for c in cursor.description or ()]
                return tuple(dict(zip(columns, row, strict=True)) for row in cursor.fetchall())
        except psycopg.Error as exc:  # the summary must not hide the failure behind a second one
            logger.warning("could not read a failed test's rows: %s", exc)
            return ()
