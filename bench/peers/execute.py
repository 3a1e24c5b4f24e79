"""Runs one peer against its sandbox: discover, pick streams, sync into PostgreSQL, measure, count.

Airbyte sources run as their own ``discover`` / ``read`` commands with stdout loaded by
:mod:`bench.peers.airbyte_loader`; Singer taps run ``--discover`` and then sync piped into
meltanolabs-target-postgres through :mod:`bench.peers.singer_relay`. Each process runs in the peer's own
virtualenv with the vendor-host redirect of its wrapper and, for the Salesforce sandbox, the sandbox CA as
its only trusted root.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from bench.peers import catalog as catalogs
from bench.peers import environments
from bench.peers.access import PaymentsAccess, SalesforceAccess
from bench.peers.airbyte_loader import AirbyteLoader
from bench.peers.measure import Deadline, PeakMemory, Stopwatch
from bench.peers.peers import TARGET_POSTGRES_ENV, Options, Peer
from bench.peers.results import PeerResult
from bench.peers.singer_relay import relay

logger = logging.getLogger(__name__)

_DISCOVER_TIMEOUT_SECONDS = 600


@dataclasses.dataclass(frozen=True)
class Workspace:
    """Where one peer's files go and where its data lands."""

    directory: Path
    database_url: str
    sandbox_counts: dict[str, int]
    budget_seconds: float | None = None
    """A sync still running after this long is stopped (and counted as far as it got)."""
    only_comparable_with: frozenset[str] | None = None
    """When set, only streams whose :func:`catalog.comparable` key is in it (Revloop's objects)."""

    def file(self, name: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / name


def schema_name(peer: Peer) -> str:
    return peer.name.replace("-", "_")


def peer_environment(access: SalesforceAccess | PaymentsAccess) -> dict[str, str]:
    """The process environment of a peer: the redirect, and the sandbox CA as the one trusted root."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVLOOP_")}
    env["REVLOOP_PEER_REDIRECTS"] = json.dumps(access.redirects())
    env["PYTHONUNBUFFERED"] = "1"
    if isinstance(access, SalesforceAccess) and access.ca_file is not None:
        for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
            env[variable] = str(access.ca_file)
    return env


def _command(peer: Peer, *args: str) -> list[str]:
    return [str(environments.python_of(peer.environment)), str(environments.WRAPPERS_DIR / peer.wrapper), *args]


def _select(peer: Peer, discovered: list[str], ws: Workspace, all_streams: bool) -> list[str]:
    if ws.only_comparable_with is not None:
        # Like with like: the objects Revloop loads, where the peer offers them.
        return [name for name in discovered if catalogs.comparable(name) in ws.only_comparable_with]
    if all_streams or peer.select_all_streams:
        return discovered
    return [
        name for name in discovered
        if name in peer.extra_streams
        or catalogs.expected_count(name, ws.sandbox_counts, peer.stream_aliases) is not None
    ]


def _drop_schema(database_url: str, schema: str) -> None:
    """Start from an empty schema, so a later round counts only what its own run loaded."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def run_peer(
    peer: Peer, access: SalesforceAccess | PaymentsAccess, options: Options, workspace: Workspace, *, all_streams: bool
) -> PeerResult:
    """Run ``peer`` end to end; failures are recorded in the result, never raised."""
    result = PeerResult(peer=peer.name, system=peer.system, kind=peer.kind, notes=peer.notes)
    try:
        _drop_schema(workspace.database_url, schema_name(peer))
        if peer.kind == "airbyte":
            _run_airbyte(peer, access, options, workspace, result, all_streams)
        else:
            _run_singer(peer, access, options, workspace, result, all_streams)
    except Exception as exc:  # a benchmark reports a broken peer and goes on to the next one
        logger.exception("%s failed", peer.name)
        result.errors.append(f"{type(exc).__name__}: {exc}")
    for stream in result.streams.values():
        stream.expected = catalogs.expected_count(stream.stream, workspace.sandbox_counts, peer.stream_aliases)
    result.succeeded = (
        not result.errors and not result.timed_out and all(code == 0 for code in result.exit_codes.values())
    )
    return result


# ---- Airbyte ------------------------------------------------------------------------------------------


def _run_airbyte(
    peer: Peer, access: SalesforceAccess | PaymentsAccess, options: Options, ws: Workspace,
    result: PeerResult, all_streams: bool,
) -> None:
    env = peer_environment(access)
    config = peer.make_config(access, options)
    config_file = ws.file("config.json")
    config_file.write_text(json.dumps(config, indent=2))

    discover_log = ws.file("discover.log")
    result.logs["discover"] = str(discover_log)
    with Stopwatch() as watch, open(discover_log, "wb") as err:
        done = subprocess.run(
            _command(peer, "discover", "--config", str(config_file)),
            stdout=subprocess.PIPE, stderr=err, env=env, timeout=_DISCOVER_TIMEOUT_SECONDS,
            cwd=ws.directory,
        )
    result.discover_seconds = watch.seconds
    result.exit_codes["discover"] = done.returncode
    discovered = AirbyteLoader(None, "").consume(done.stdout.splitlines())
    _adopt_rotated_config(discovered.new_config, config, config_file, access)
    result.errors.extend(discovered.errors)
    if discovered.catalog is None:
        result.errors.append("discover produced no catalog")
        return
    names = catalogs.airbyte_stream_names(discovered.catalog)
    selected = _select(peer, names, ws, all_streams)
    result.streams_not_selected = sorted(set(names) - set(selected))
    configured = catalogs.airbyte_configured_catalog(discovered.catalog, selected, prefer_incremental=True)
    catalog_file = ws.file("catalog.json")
    catalog_file.write_text(json.dumps(configured, indent=2))

    schema = schema_name(peer)
    read_log = ws.file("read.log")
    result.logs["read"] = str(read_log)
    with psycopg.connect(ws.database_url) as conn, open(read_log, "wb") as err:
        loader = AirbyteLoader(conn, schema)
        with PeakMemory() as memory, Deadline(ws.budget_seconds) as deadline, Stopwatch() as watch:
            process = subprocess.Popen(
                _command(peer, "read", "--config", str(config_file), "--catalog", str(catalog_file)),
                stdout=subprocess.PIPE, stderr=err, env=env, cwd=ws.directory, start_new_session=True,
            )
            memory.watch(process.pid)
            deadline.watch(process.pid)
            assert process.stdout is not None
            run = loader.consume(process.stdout)
            result.exit_codes["read"] = process.wait()
        result.sync_seconds = watch.seconds
        result.peak_rss_bytes = memory.peak_bytes
        _note_time_budget(result, deadline)
        _adopt_rotated_config(run.new_config, config, config_file, access)
        result.errors.extend(run.errors)
        result.warnings.extend(run.warnings)
        for name in selected:
            result.stream(name).emitted = run.records.get(name, 0)
        keys = catalogs.airbyte_primary_keys(configured)
        for name in selected:
            result.stream(name).loaded = _distinct_keys(conn, schema, name, keys.get(name, []))
        unfinished = ("COMPLETE", "STARTED", "RUNNING")
        incomplete = {s: status for s, status in run.stream_status.items() if status not in unfinished}
        if incomplete and not result.timed_out:
            result.errors.append(f"streams not complete: {incomplete}")


def _adopt_rotated_config(
    new_config: dict[str, Any] | None, config: dict[str, Any], config_file: Path, access: object
) -> None:
    """Keep a refresh token the source rotated, for its next command and for the next peer."""
    if not new_config:
        return
    config.update(new_config)
    config_file.write_text(json.dumps(config, indent=2))
    if isinstance(access, SalesforceAccess):
        access.tokens.advance(new_config.get("refresh_token"))


def _distinct_keys(conn: psycopg.Connection[Any], schema: str, stream: str, key: list[str]) -> int:
    table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(stream))
    exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{stream}"',)).fetchone()
    if not exists or exists[0] is None:
        return 0
    if not key:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    else:
        fields = sql.SQL(", ").join(sql.SQL("_airbyte_data->{}").format(sql.Literal(k)) for k in key)
        row = conn.execute(sql.SQL("SELECT count(DISTINCT ({})) FROM {}").format(fields, table)).fetchone()
    return int(row[0]) if row else 0


# ---- Singer -------------------------------------------------------------------------------------------


def _run_singer(
    peer: Peer, access: SalesforceAccess | PaymentsAccess, options: Options, ws: Workspace,
    result: PeerResult, all_streams: bool,
) -> None:
    env = peer_environment(access)
    config_file = ws.file("tap-config.json")
    config_file.write_text(json.dumps(peer.make_config(access, options), indent=2))

    discover_log = ws.file("discover.log")
    result.logs["discover"] = str(discover_log)
    with Stopwatch() as watch, open(discover_log, "wb") as err:
        done = subprocess.run(
            _command(peer, "--config", str(config_file), "--discover"),
            stdout=subprocess.PIPE, stderr=err, env=env, timeout=_DISCOVER_TIMEOUT_SECONDS,
            cwd=ws.directory,
        )
    result.discover_seconds = watch.seconds
    result.exit_codes["discover"] = done.returncode
    _adopt_rotated_tap_config(config_file, access)
    if done.returncode != 0:
        result.errors.append(f"discover failed: {tail(discover_log)}")
        return
    catalog = orjson.loads(done.stdout)
    names = catalogs.singer_stream_names(catalog)
    selected = _select(peer, names, ws, all_streams)
    result.streams_not_selected = sorted(set(names) - set(selected))
    catalog_file = ws.file("catalog.json")
    catalog_file.write_text(json.dumps(catalogs.singer_select(catalog, selected), indent=2))

    schema = schema_name(peer)
    target_config = ws.file("target-config.json")
    target_config.write_text(json.dumps(_target_postgres_config(ws.database_url, schema), indent=2))
    target = [str(environments.executable_of(TARGET_POSTGRES_ENV, "target-postgres")), "--config", str(target_config)]
    tap_log, target_log = ws.file("tap.log"), ws.file("target.log")
    result.logs.update(tap=str(tap_log), target=str(target_log))
    with (
        open(tap_log, "wb") as tap_err,
        open(target_log, "wb") as target_err,
        PeakMemory() as memory,
        Deadline(ws.budget_seconds) as deadline,
        Stopwatch() as watch,
    ):
        loader = subprocess.Popen(
            target, stdin=subprocess.PIPE, stdout=target_err, stderr=target_err, cwd=ws.directory
        )
        tap = subprocess.Popen(
            _command(peer, "--config", str(config_file), peer.catalog_flag, str(catalog_file)),
            stdout=subprocess.PIPE, stderr=tap_err, env=env, cwd=ws.directory, start_new_session=True,
        )
        memory.watch(tap.pid)
        # Only the tap is stopped at the budget: the target then sees the end of its input and
        # commits what it was sent, as it would after any tap exits.
        deadline.watch(tap.pid)
        memory.watch(loader.pid)
        assert tap.stdout is not None and loader.stdin is not None
        relayed = relay(tap.stdout, loader.stdin)
        result.exit_codes["tap"] = tap.wait()
        result.exit_codes["target"] = loader.wait()
    result.sync_seconds = watch.seconds
    result.peak_rss_bytes = memory.peak_bytes
    _note_time_budget(result, deadline)
    _adopt_rotated_tap_config(config_file, access)
    if result.exit_codes["tap"] != 0 and not result.timed_out:
        result.errors.append(f"tap failed: {tail(tap_log)}")
    if result.exit_codes["target"] != 0:
        result.errors.append(f"target failed: {tail(target_log)}")
    for name in selected:
        result.stream(name).emitted = relayed.records.get(name, 0)
    loaded = _table_counts(ws.database_url, schema)
    for name in selected:
        result.stream(name).loaded = loaded.get(name.lower(), 0)


def _note_time_budget(result: PeerResult, deadline: Deadline) -> None:
    if deadline.expired:
        result.timed_out = True
        result.errors.append(f"stopped at the time budget of {deadline.seconds:.0f} s")


def _adopt_rotated_tap_config(config_file: Path, access: object) -> None:
    """tap-salesforce writes a rotated refresh token back into its config file."""
    if isinstance(access, SalesforceAccess):
        access.tokens.advance(json.loads(config_file.read_text()).get("refresh_token"))


def _target_postgres_config(database_url: str, schema: str) -> dict[str, Any]:
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    return {
        "host": info.get("host", "127.0.0.1"),
        "port": int(info.get("port") or 5432),
        "user": info.get("user", "postgres"),
        "password": info.get("password") or "",
        "database": info.get("dbname", "postgres"),
        "default_target_schema": schema,
        "add_record_metadata": True,  # required by activate_version, which the taps emit
        "activate_version": True,
        "hard_delete": False,
    }


def _table_counts(database_url: str, schema: str) -> dict[str, int]:
    """Lower-cased table name -> row count, for every table in ``schema``."""
    counts: dict[str, int] = {}
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            row = conn.execute(query).fetchone()
            counts[table.lower()] = int(row[0]) if row else 0
    return counts


def tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    interesting = [line for line in text if "CRITICAL" in line or "ERROR" in line or "Error" in line]
    return "\n".join((interesting or text)[-lines:])
