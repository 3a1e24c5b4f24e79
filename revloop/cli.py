"""The ``revloop`` command line."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from revloop.settings import Settings

app = typer.Typer(
    help="Revloop keeps Salesforce, the ERP and the payments platform in agreement.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
sandbox_app = typer.Typer(help="Local sandboxes of Salesforce, the ERP (Odoo) and the payments platform (Stripe).",
                          no_args_is_help=True)
warehouse_app = typer.Typer(help="The warehouse: REVLOOP_DATABASE_URL, or the embedded PostgreSQL.",
                            no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(warehouse_app, name="warehouse")
keys_app = typer.Typer(
    help="Keys for field-level encryption of PII (envelope keys with ids, and the matching-hash key).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")

console = Console()
err_console = Console(stderr=True)

SCALES = ["demo", "large", "empty"]


def _settings() -> Settings:
    return Settings()


def _data_dir(data_dir: Path | None) -> Path:
    return (data_dir or _settings().home / "sandboxes").resolve()


DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Where sandbox state lives (default: REVLOOP_HOME/sandboxes).")
]


def _running_configs(data_dir: Path):  # type: ignore[no-untyped-def]
    """Configs of the detached sandboxes if any, else the defaults."""
    from sandboxes import control

    recorded = control.read_run_file(data_dir)
    return [p.config for p in recorded] if recorded else control.configs(data_dir)


def _use_sandbox_settings(data_dir: Path | None) -> None:
    """Point this process at the local sandboxes (their ``REVLOOP_*`` settings win over the environment)."""
    import os

    from sandboxes import control

    env = control.client_env(_running_configs(_data_dir(data_dir)))
    if not env:
        err_console.print("no sandbox credentials yet: run 'revloop sandbox up' first")
        raise typer.Exit(1)
    os.environ.update({k: v for values in env.values() for k, v in values.items()})


SandboxOption = Annotated[
    bool, typer.Option("--sandbox", help="Use the local sandboxes' settings (as printed by 'revloop sandbox env').")
]


def _endpoint_table(configs, title: str) -> Table:  # type: ignore[no-untyped-def]
    from sandboxes import control

    table = Table(title=title)
    for column in ("system", "url", "status", "records"):
        table.add_column(column)
    for config in configs:
        doc = control.health(config)
        records = ", ".join(f"{k} {v}" for k, v in (doc or {}).get("records", {}).items())
        table.add_row(config.system, config.base_url, "up" if doc else "down", records or "-")
    return table


@sandbox_app.command("up")
def sandbox_up(
    seed: Annotated[int, typer.Option(help="Seed of the generated book of business.")] = 42,
    scale: Annotated[str, typer.Option(help="demo (a few thousand records), large (>= 1,000,000) or empty.")] = (
        "demo"
    ),
    faults: Annotated[str, typer.Option(help="Fault profile: none, flaky, slow, rate-limited, short-tokens, down.")] = (
        "none"
    ),
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Return once up; stop with 'revloop sandbox down'.")
    ] = False,
    salesforce_port: Annotated[int, typer.Option(help="Salesforce (HTTPS) port.")] = 8441,
    erp_port: Annotated[int, typer.Option(help="ERP port.")] = 8442,
    payments_port: Annotated[int, typer.Option(help="Payments port.")] = 8443,
    data_dir: DataDirOption = None,
) -> None:
    """Start the three sandboxes, seeded on first start; state persists in SQLite under the data dir."""
    from sandboxes import control
    from sandboxes.common.faults import PROFILES

    if scale not in SCALES:
        raise typer.BadParameter(f"scale must be one of {', '.join(SCALES)}", param_hint="--scale")
    if faults not in PROFILES:
        raise typer.BadParameter(f"profile must be one of {', '.join(PROFILES)}", param_hint="--faults")
    directory = _data_dir(data_dir)
    configs = control.configs(
        directory, ports={"salesforce": salesforce_port, "erp": erp_port, "payments": payments_port},
        seed=seed, scale=scale, faults=faults,
    )
    with console.status(f"starting sandboxes ({scale} book, seed {seed})..."):
        try:
            processes = control.up(configs, detach=detach)
        except control.SandboxError as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    console.print(_endpoint_table(configs, "Sandboxes"))
    console.print(f"CA file (trust it for Salesforce): {configs[0].tls_dir / 'ca.pem'}")
    console.print("Client settings: [bold]revloop sandbox env[/bold]")
    if detach:
        return
    console.print("Running; press Ctrl-C to stop.")
    from revloop.demo import wait_for_interrupt

    wait_for_interrupt(lambda: control.stop(processes))


@sandbox_app.command("down")
def sandbox_down(data_dir: DataDirOption = None) -> None:
    """Stop sandboxes started with --detach."""
    from sandboxes import control

    stopped = control.down(_data_dir(data_dir))
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "no detached sandboxes were running")


@sandbox_app.command("status")
def sandbox_status(data_dir: DataDirOption = None) -> None:
    """Show each sandbox's URL, whether it answers, and its record counts."""
    console.print(_endpoint_table(_running_configs(_data_dir(data_dir)), "Sandboxes"))


@sandbox_app.command("reset")
def sandbox_reset(
    seed: Annotated[int | None, typer.Option(help="New seed (default: the one they started with).")] = None,
    scale: Annotated[str | None, typer.Option(help="New scale: demo, large or empty.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Wipe the running sandboxes' state and seed them again."""
    from sandboxes import control

    directory = _data_dir(data_dir)
    configs = _running_configs(directory)
    table = Table(title="Reset")
    for column in ("system", "seed", "scale", "records"):
        table.add_column(column)
    failed = False
    for config in configs:
        try:
            result = control.reset(config, seed=seed, scale=scale)
        except Exception as exc:
            err_console.print(f"[red]error:[/red] {config.system}: {exc}")
            failed = True
            continue
        records = ", ".join(f"{k} {v}" for k, v in result.get("records", {}).items())
        table.add_row(config.system, str(result.get("seed")), str(result.get("scale")), records)
    console.print(table)
    if failed:
        raise typer.Exit(1)


@sandbox_app.command("env")
def sandbox_env(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON grouped by system.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Print what a client needs to reach the sandboxes: the REVLOOP_* settings Revloop itself reads."""
    from sandboxes import control

    env = control.client_env(_running_configs(_data_dir(data_dir)))
    if not env:
        err_console.print("no sandbox credentials yet: run 'revloop sandbox up' first")
        raise typer.Exit(1)
    if as_json:
        grouped = {
            system: {key.removeprefix(f"REVLOOP_{system.upper()}_").lower(): value for key, value in values.items()}
            for system, values in env.items()
        }
        typer.echo(json.dumps(grouped, indent=2))
        return
    for values in env.values():
        for key, value in values.items():
            typer.echo(f"{key}={shlex.quote(value)}")


@sandbox_app.command("faults")
def sandbox_faults(
    profile: Annotated[str, typer.Argument(help="none, flaky, slow, rate-limited, short-tokens or down.")],
    system: Annotated[list[str] | None, typer.Option(help="Only these systems (default: all).")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Switch the running sandboxes to a fault profile (see docs/sandboxes.md for every knob)."""
    from sandboxes import control

    for config in _running_configs(_data_dir(data_dir)):
        if system and config.system not in system:
            continue
        with control.http_client(config) as client:
            response = client.put("/__sandbox__/faults", json={"profile": profile})
        if response.status_code != 200:
            err_console.print(f"[red]error:[/red] {config.system}: {response.text}")
            raise typer.Exit(1)
        console.print(f"{config.system}: faults now {profile}")


@sandbox_app.command("activity")
def sandbox_activity(
    every: Annotated[float, typer.Option(help="Seconds between two business events.")] = 5.0,
    count: Annotated[int, typer.Option(help="Stop after this many events (0: until Ctrl-C).")] = 0,
    seed: Annotated[int | None, typer.Option(help="Seed of the choices, to replay a run.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Make a trickle of business activity in the running sandboxes through the vendors' clients.

    Deals won in Salesforce and payment requests paid (now and then declined first, or disputed), one every
    few seconds, printed as they happen. 'revloop demo' runs this beside the sync loop.
    """
    from sandboxes import control
    from sandboxes.activity import BusinessActivity

    configs = {c.system: c for c in _running_configs(_data_dir(data_dir))}
    if not all(control.alive(c) for c in configs.values()):
        err_console.print("the sandboxes are not all running: start them with 'revloop sandbox up'")
        raise typer.Exit(1)
    activity = BusinessActivity(configs, seed=seed)
    done = {"n": 0}

    def show(action) -> None:  # type: ignore[no-untyped-def]
        done["n"] += 1
        typer.echo(f"{action.kind:<20} {action.record}  {action.detail}".rstrip())

    with contextlib.suppress(KeyboardInterrupt):
        activity.run(lambda: bool(count) and done["n"] >= count, every_seconds=every, on_action=show)
    typer.echo(", ".join(f"{k} {v}" for k, v in sorted(activity.counts.items())) or "nothing happened")


@sandbox_app.command("legacy-export")
def sandbox_legacy_export(
    directory: Annotated[
        Path, typer.Argument(help="Where to write invoices.csv, payments.csv and seeded_differences.json.")
    ],
    scale: Annotated[
        str | None, typer.Option(help="Scale of the book (demo, large); default: the local sandboxes', else demo.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the book; default: the local sandboxes', else 42.")] = None,
    anchor_date: Annotated[
        dt.datetime | None,
        typer.Option("--anchor-date", formats=["%Y-%m-%d"],
                     help="Day the book was seeded (YYYY-MM-DD); default: the local sandboxes', else today (UTC)."),
    ] = None,
    clean: Annotated[bool, typer.Option("--clean", help="Write an export with no seeded difference.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Write the legacy process's export of the sandboxes' book, with known differences seeded in it.

    The differences are printed and written to seeded_differences.json: 'revloop parity --legacy DIRECTORY'
    must report each of them, and nothing else.
    """
    from rich.markup import escape

    from sandboxes.legacy_export import SEEDED_DIFFERENCES_FILE, sandbox_book, write_legacy_export

    recorded = sandbox_book(_data_dir(data_dir))
    book_seed = seed if seed is not None else recorded[0] if recorded else 42
    book_scale = scale or (recorded[1] if recorded else "demo")
    anchor = anchor_date.date() if anchor_date else recorded[2] if recorded else None
    if book_scale not in SCALES:
        raise typer.BadParameter(f"scale must be one of {', '.join(SCALES)}", param_hint="--scale")
    try:
        result = write_legacy_export(directory, seed=book_seed, scale=book_scale, today=anchor, clean=clean)
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    source = "the local sandboxes' book" if recorded else "a book seeded today"
    console.print(f"legacy export of {source} (seed {book_seed}, {book_scale}, anchor date "
                  f"{anchor or 'today'}): {result.invoices:,} invoices, {result.payments:,} payments in {directory}")
    if not result.differences:
        console.print("no seeded differences (clean export)")
        return
    table = Table(title=f"seeded differences ({directory / SEEDED_DIFFERENCES_FILE})")
    for column in ("check", "key", "what"):
        table.add_column(column)
    for difference in result.differences:
        table.add_row(difference.check, escape(difference.key), escape(difference.description))
    console.print(table)


@warehouse_app.command("url")
def warehouse_url() -> None:
    """Print the warehouse URL (starting the embedded PostgreSQL if that is the one in use)."""
    from revloop import warehouse

    typer.echo(warehouse.database_url(_settings()))


@warehouse_app.command("stop")
def warehouse_stop() -> None:
    """Stop the embedded PostgreSQL."""
    from revloop import warehouse

    stopped = warehouse.stop_embedded(_settings().home)
    console.print("embedded PostgreSQL stopped" if stopped else "the embedded PostgreSQL was not running")


@keys_app.command("new")
def keys_new(
    path: Annotated[
        Path, typer.Argument(help="Where to write the keyring (mode 0600); point REVLOOP_KEYRING_FILE at it.")
    ],
    key_id: Annotated[str, typer.Option(help="Id of the first key.")] = "k1",
) -> None:
    """Write a new keyring with one active encryption key and a hash key."""
    from revloop.crypto import new_keyring_json

    if path.exists():
        err_console.print(f"[red]error:[/red] {path} exists; use 'revloop keys rotate' to add a key")
        raise typer.Exit(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(new_keyring_json(key_id))
    console.print(f"keyring written to {path} (active key {key_id})")


@keys_app.command("rotate")
def keys_rotate(
    path: Annotated[Path, typer.Argument(help="The keyring file.")],
    key_id: Annotated[str, typer.Option(help="Id of the new active key.")],
) -> None:
    """Add a new active key; older keys stay so existing values still decrypt. The hash key is kept."""
    from revloop.crypto import KeyringError, rotated_keyring_json

    try:
        path.write_text(rotated_keyring_json(path.read_text(), key_id))
    except (OSError, KeyringError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"{path}: active key is now {key_id}")


@app.command()
def doctor(
    sandbox: SandboxOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Check the configuration and reach each configured system; exits non-zero if anything fails."""
    from revloop.doctor import run_checks

    if sandbox:
        _use_sandbox_settings(data_dir)
    results = run_checks(_settings())
    table = Table(title="revloop doctor")
    for column in ("component", "target", "status", "detail", "time"):
        table.add_column(column)
    for result in results:
        status = "[green]ok[/green]" if result.ok else "[red]FAIL[/red]"
        table.add_row(result.component, result.target, status, result.detail, f"{result.seconds:.2f}s")
    console.print(table)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command()
def load(
    system: Annotated[str, typer.Argument(help="salesforce, erp, payments or all.")] = "all",
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Drop the raw tables and cursors; load all again.")
    ] = False,
    sandbox: SandboxOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Load raw data into raw_<system> (incrementally unless --full-refresh), with a summary at the end."""
    from pipelines.catalog import SYSTEMS, source_factory
    from pipelines.common.locking import PipelineBusy
    from pipelines.common.runner import run_load
    from revloop import warehouse
    from revloop.progress import RichCollector, load_progress

    systems = list(SYSTEMS) if system == "all" else [system]
    if any(s not in SYSTEMS for s in systems):
        raise typer.BadParameter(f"choose one of {', '.join(SYSTEMS)} or all", param_hint="SYSTEM")
    if sandbox:
        _use_sandbox_settings(data_dir)
    settings = _settings()
    url = warehouse.database_url(settings)
    summary = Table(title="revloop load")
    for column in ("system", "table", "rows", "quarantined", "seconds", "cursor / notes"):
        summary.add_column(column, justify="right" if column in ("rows", "quarantined", "seconds") else "left")
    failed = False
    results: list[tuple[str, Any]] = []
    if len(systems) == 1:
        # one system: in this process, with a live progress display of rows per table
        name = systems[0]
        try:
            with load_progress(console=console) as progress:
                results.append((name, run_load(
                    name, source_factory(name), settings, url, full_refresh=full_refresh,
                    progress=RichCollector(progress, name),
                )))
        except Exception as exc:  # reported like the parallel path's per-system errors
            results.append((name, exc))
    else:
        # several: each in its own process, at once (they are independent; see docs/benchmarks.md)
        from pipelines.loads import run_loads

        with console.status(f"loading {', '.join(systems)} in parallel..."):
            for outcome in run_loads(systems, settings, url, full_refresh=full_refresh):
                results.append((outcome.system, outcome.summary if outcome.summary is not None else outcome.error))
    for name, result in results:
        if isinstance(result, PipelineBusy):
            err_console.print(f"[yellow]{name}:[/yellow] {result}")
            failed = True
            continue
        if isinstance(result, BaseException) or result is None:
            err_console.print(f"[red]{name} failed:[/red] {type(result).__name__}: {result}")
            failed = True
            continue
        notes = ", ".join(f"{k}={v}" for k, v in result.notes.items() if not isinstance(v, dict | list))
        tables = sorted(set(result.rows_by_table) | set(result.quarantined_by_object)) or ["-"]
        for index, table_name in enumerate(tables):
            summary.add_row(
                name if index == 0 else "", table_name, f"{result.rows_by_table.get(table_name, 0):,}",
                f"{result.quarantined_by_object.get(table_name, 0):,}",
                f"{result.seconds:.1f}" if index == 0 else "", notes[:120] if index == 0 else "",
            )
    console.print(summary)
    if failed:
        raise typer.Exit(1)


@app.command()
def transform(
    select: Annotated[
        list[str] | None, typer.Option("--select", "-s", help="dbt selection (e.g. fct_invoices+); default all.")
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild incremental models from scratch.")
    ] = False,
    docs: Annotated[
        bool, typer.Option("--docs", help="Only generate the dbt documentation site and print its path.")
    ] = False,
) -> None:
    """Build the canonical layer with dbt (seeds, models and their tests), with a summary at the end."""
    from revloop.dbt import DbtProject, TransformError

    project = DbtProject.from_settings(_settings())
    if docs:
        try:
            with console.status("dbt docs generate..."):
                index = project.docs()
        except TransformError as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        console.print(f"dbt docs: {index} (open it in a browser, or serve its folder: "
                      f"python -m http.server -d {index.parent})")
        return
    try:
        with console.status("dbt build..."):
            summary = project.build(select or (), full_refresh=full_refresh)
    except TransformError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    table = Table(title=f"revloop transform ({summary.seconds:.1f}s)")
    for column in ("node", "type", "status", "rows", "seconds"):
        table.add_column(column, justify="right" if column in ("rows", "seconds") else "left")
    for node in summary.models:
        style = "" if node.ok else "[red]"
        rows = "" if node.rows is None else f"{node.rows:,}"
        table.add_row(node.name, node.resource_type, f"{style}{node.status}", rows, f"{node.seconds:.2f}")
    console.print(table)
    passed = sum(1 for t in summary.tests if t.ok)
    console.print(f"tests: {passed} passed, {len(summary.tests) - passed} failed")
    for node in summary.failures:
        err_console.print(f"[red]{node.resource_type} {node.name} {node.status}:[/red] {node.explanation()}")
    if summary.error:
        err_console.print(f"[red]error:[/red] {summary.error}")
    if not summary.success:
        raise typer.Exit(1)


roles_app = typer.Typer(help="Least-privilege warehouse roles: loader, transformer, sync, analyst.",
                        no_args_is_help=True)
app.add_typer(roles_app, name="roles")


@roles_app.command("apply")
def roles_apply(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the statements without running them.")] = False,
) -> None:
    """Create the roles and schemas if missing and state every grant again (idempotent)."""
    import psycopg

    from revloop import roles, warehouse

    url = warehouse.database_url(_settings())
    if dry_run:
        with psycopg.connect(url) as conn:
            for statement in roles.statements(str(conn.info.dbname)):
                typer.echo(statement.as_string(conn) + ";")
        return
    run = roles.apply(url)
    console.print(f"applied {len(run)} statements: roles {', '.join(roles.ROLES)}")


@app.command()
def replay(
    flow: Annotated[str | None, typer.Option(help="Only writes of this flow.")] = None,
    outbox_id: Annotated[int | None, typer.Option("--id", help="Only this outbox row.")] = None,
    include_parked: Annotated[bool, typer.Option(help="Also parked writes (the target refused them).")] = True,
) -> None:
    """Re-drive dead-lettered (and parked) writes: they become due now; each replay is audited."""
    import psycopg

    from revloop import warehouse
    from revloop.sync import audit, outbox
    from revloop.sync.schema import ensure_schema

    url = warehouse.database_url(_settings())
    states = ("parked", "dead") if include_parked else ("dead",)
    with psycopg.connect(url) as conn:
        ensure_schema(conn)
        rows = outbox.requeue(conn, flow=flow, row_id=outbox_id, states=states)
        actor = audit.current_actor()
        for row in rows:
            audit.record(
                conn, actor=actor, action="replay", result="requeued", target_system=row["target_system"],
                target_object=row["target_object"], idempotency_key=row["idempotency_key"],
                payload_hash=row["payload_hash"], detail={"outbox_id": row["id"], "was": row["last_error_code"]},
            )
    table = Table(title=f"replay: {len(rows)} write(s) due again")
    for column in ("id", "flow", "target", "idempotency key", "last error"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["id"]), row["flow"], f"{row['target_system']} {row['target_object']}",
                      row["idempotency_key"], row["last_error_code"] or "")
    console.print(table)


@app.command()
def demo(
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Leave the sandboxes running and return (no UI).")
    ] = False,
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="Serve the Dagster UI (webserver and daemon).")] = True,
    sync_loop: Annotated[
        bool, typer.Option("--sync/--no-sync", help="Run the webhook receiver and the warm sync loop.")
    ] = True,
    activity: Annotated[
        float, typer.Option(help="Seconds between two business events in the sandboxes (0: no activity).")
    ] = 10.0,
    ui_port: Annotated[int, typer.Option(help="Port of the Dagster UI.")] = 3000,
    webhook_port: Annotated[int, typer.Option(help="Port of the payments webhook receiver.")] = 8444,
    seed: Annotated[int, typer.Option(help="Seed of the demo book of business.")] = 42,
    salesforce_port: Annotated[int, typer.Option(help="Salesforce (HTTPS) port.")] = 8441,
    erp_port: Annotated[int, typer.Option(help="ERP port.")] = 8442,
    payments_port: Annotated[int, typer.Option(help="Payments port.")] = 8443,
    data_dir: DataDirOption = None,
) -> None:
    """Run the whole loop locally: warehouse, seeded sandboxes, load, Dagster UI, sync loop and business activity.

    Starts the embedded warehouse and the three sandboxes, loads them, serves the Dagster UI (schedules and
    sensors on), and runs the payments webhook receiver, the warm sync loop (every step shows in the UI) and a
    trickle of business activity (deals won, invoices paid). Prints one line `READY <url>` once everything is
    up (the Dagster UI's URL, or the Salesforce sandbox's with --no-ui/--detach); Ctrl-C stops what it
    started. --detach only starts and loads the sandboxes.
    """
    import os
    import threading

    from revloop import demo as demo_steps
    from revloop import warehouse
    from sandboxes import control

    settings = _settings()
    with console.status("starting the warehouse..."):
        url = warehouse.database_url(settings)
        version = warehouse.server_version(url)
    directory = _data_dir(data_dir)
    ports = {"salesforce": salesforce_port, "erp": erp_port, "payments": payments_port}
    configs = control.configs(directory, seed=seed, ports=ports)
    processes: list[control.SandboxProcess] = []
    # the payments sandbox sends its webhooks to the receiver this demo runs
    os.environ.setdefault("REVLOOP_SANDBOX_WEBHOOK_URL", f"http://127.0.0.1:{webhook_port}/webhooks/payments")
    if all(control.alive(c) for c in configs):
        console.print("sandboxes already running")
    else:
        with console.status("starting the sandboxes..."):
            try:
                # Ctrl-C reaches the demo alone: it stops the sync loop while the sandboxes still answer
                processes = control.up(configs, detach=detach, own_session=True)
            except control.SandboxError as exc:
                err_console.print(f"[red]error:[/red] {exc}")
                raise typer.Exit(1) from exc
    console.print(_endpoint_table(configs, "Sandboxes"))
    console.print(f"Warehouse: PostgreSQL {version} at {warehouse.redact(url)}")
    env = {k: v for values in control.client_env(configs).values() for k, v in values.items()}
    os.environ.update(env)
    os.environ.setdefault("REVLOOP_DATABASE_URL", url)
    load(system="all", full_refresh=False, sandbox=False, data_dir=None)

    children: dict[str, Any] = {}
    stopping = threading.Event()

    def stop_all() -> None:
        stopping.set()
        # the sync loop first: it ends its step and records its stop while everything it talks to still runs
        for name in ("sync", "dagster", "webhooks"):
            if name in children:
                demo_steps.stop_process_group(children[name], timeout=60.0)
        control.stop(processes)

    ready_url = configs[0].base_url
    logs = settings.home.resolve()
    if not detach:
        # the Dagster UI, the sync loop and `revloop sync` share one instance: the loop's steps show in the UI
        child_env = {**os.environ, "DAGSTER_HOME": str(demo_steps.dagster_home(settings.home)),
                     "REVLOOP_DAGSTER_AUTOMATION": os.environ.get("REVLOOP_DAGSTER_AUTOMATION", "on")}
        try:
            if sync_loop:
                # before the UI: the loop beats by the time the safety-net sensor first looks, so the sensor
                # does not start a sync run beside it
                with console.status("starting the webhook receiver and the sync loop..."):
                    children["webhooks"] = demo_steps.start_revloop(
                        ["webhooks", "serve", "--port", str(webhook_port)], child_env, logs / "webhooks.log")
                    demo_steps.wait_for_port(children["webhooks"], f"http://127.0.0.1:{webhook_port}/healthz",
                                             logs / "webhooks.log")
                    children["sync"] = demo_steps.start_revloop(["sync"], child_env, logs / "sync.log")
                console.print(f"Sync loop: log {logs / 'sync.log'}; webhooks: log {logs / 'webhooks.log'}")
            if ui:
                with console.status(f"starting the Dagster UI (log: {logs / 'dagster.log'})..."):
                    children["dagster"] = demo_steps.start_dagster(child_env, settings.home, ui_port,
                                                                   logs / "dagster.log")
                    ready_url = demo_steps.wait_for_dagster(children["dagster"], ui_port, logs / "dagster.log")
                console.print(f"Dagster UI: {ready_url}  (assets by group: raw_*, canonical_*, sync; runs; sensors)")
        except (RuntimeError, TimeoutError) as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            stop_all()
            raise typer.Exit(1) from exc
        if activity > 0:
            from sandboxes.activity import BusinessActivity

            business = BusinessActivity({c.system: c for c in configs}, seed=seed)
            threading.Thread(target=business.run, args=(stopping.is_set, activity), name="business-activity",
                             daemon=True).start()
            console.print(f"Business activity: one event every {activity:g}s (deals won, invoices paid)")
    console.print("Client settings: [bold]revloop sandbox env[/bold]   Health: [bold]revloop doctor --sandbox[/bold]")
    typer.echo(f"READY {ready_url}")
    sys.stdout.flush()
    if detach:
        return
    console.print("Running; press Ctrl-C to stop.")
    demo_steps.wait_for_interrupt(stop_all)


webhooks_app = typer.Typer(help="Receivers of the systems' webhooks (payments events).", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("serve")
def webhooks_serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8444,
) -> None:
    """Receive payments webhooks at /webhooks/payments: verify, store in sync.webhook_events, then answer 200."""
    from revloop import warehouse
    from revloop.webhooks import PATH, serve

    settings = _settings()
    if settings.payments.webhook_secret is None:
        err_console.print("[red]error:[/red] REVLOOP_PAYMENTS_WEBHOOK_SECRET is not set")
        raise typer.Exit(1)
    url = warehouse.database_url(settings)
    console.print(f"receiving payments webhooks at http://{host}:{port}{PATH} (Ctrl-C to stop)")
    serve(url, settings.payments.webhook_secret.get_secret_value(), host=host, port=port)


quality_app = typer.Typer(help="Data quality: raw, canonical and reconciliation checks (Great Expectations).",
                          no_args_is_help=True)
app.add_typer(quality_app, name="quality")


def _quality_table(results, title: str) -> Table:  # type: ignore[no-untyped-def]
    table = Table(title=title)
    for column in ("check", "suite", "severity", "status", "offending", "seconds"):
        table.add_column(column, justify="right" if column in ("offending", "seconds") else "left")
    styles = {"passed": "[green]", "failed": "[red]", "not_run": "[yellow]"}
    for result in results:
        style = styles.get(result.status, "") if result.severity == "error" or result.status != "failed" else "[yellow]"
        count = "" if result.unexpected_count is None else f"{result.unexpected_count:,}"
        table.add_row(result.check_name, result.suite, result.severity, f"{style}{result.status}", count,
                      f"{result.duration_seconds:.2f}")
    return table


@quality_app.command("run")
def quality_run(
    suite: Annotated[
        list[str] | None, typer.Option("--suite", help="raw, canonical or reconciliation (repeatable; default all).")
    ] = None,
    check: Annotated[list[str] | None, typer.Option("--check", help="Only this check (repeatable).")] = None,
) -> None:
    """Run every checkpoint, store the results, build Data Docs; exit 1 when an error-level check fails."""
    from revloop import quality, warehouse

    settings = _settings()
    try:
        with console.status("running checks..."):
            run = quality.run_quality(warehouse.database_url(settings), settings.home, suite, check)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    console.print(_quality_table([r for r in run.results if r.status != "passed"] or run.results,
                                 f"revloop quality run {run.run_id} ({run.seconds:.1f}s)"))
    passed = sum(1 for r in run.results if r.status == "passed")
    not_run = sum(1 for r in run.results if r.status == "not_run")
    console.print(f"{len(run.results)} checks: {passed} passed, {len(run.failures)} failed "
                  f"({len(run.blocking)} error-level), {not_run} not run")
    for result in run.failures:
        shown = "; ".join(json.dumps(row, default=str) for row in result.sample[:3])
        err_console.print(f"[red]{result.check_name}[/red]: {result.detail or shown}")
    if run.data_docs_index:
        console.print(f"report: {run.data_docs_index}")
    if not run.success:
        raise typer.Exit(1)


@quality_app.command("report")
def quality_report() -> None:
    """Print the latest result of every check and the path of the Data Docs site."""
    from revloop import quality, warehouse

    settings = _settings()
    results = quality.latest_results(warehouse.database_url(settings))
    if not results:
        console.print("no quality run yet: run 'revloop quality run'")
    else:
        console.print(_quality_table(results, "latest data-quality results"))
        for result in results:
            if result.failed:
                shown = "; ".join(json.dumps(row, default=str) for row in result.sample[:3])
                console.print(f"{result.check_name} ({result.run_id}): {result.detail or shown}")
    index = quality.data_docs_dir(settings.home) / "index.html"
    console.print(f"report: {index.resolve()}" if index.exists() else "report: not built yet")


@app.command()
def parity(
    legacy: Annotated[
        Path, typer.Option("--legacy", help="Directory of the legacy export: invoices.csv and payments.csv.")
    ],
    since: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Compare only records dated on or after this day (YYYY-MM-DD)."),
    ] = None,
    until: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Compare only records dated on or before this day (YYYY-MM-DD)."),
    ] = None,
    show: Annotated[int, typer.Option("--show", min=0, help="How many differences and rejected rows to print.")] = 20,
) -> None:
    """Compare a legacy export with the canonical layer (parallel run) and store every difference.

    Exit 0 when they agree, 1 on any difference or rejected export row, 2 when the export cannot be read
    or the canonical layer is not built. Differences are kept in quality.parity_differences.
    """
    from rich.markup import escape

    from expectations.legacy_format import UnreadableExport
    from expectations.parity import ParityError, describe, run_parity
    from revloop import warehouse

    if since and until and since > until:
        raise typer.BadParameter("--since is after --until", param_hint="--since")
    try:
        run = run_parity(warehouse.database_url(_settings()), legacy, since.date() if since else None,
                         until.date() if until else None, sample_size=max(show, 1))
    except (UnreadableExport, ParityError) as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    table = Table(title=f"revloop parity {run.run_id} ({run.seconds:.2f}s)")
    for column in ("check", "differences"):
        table.add_column(column, justify="right" if column == "differences" else "left")
    for check in run.checks:
        table.add_row(check.name, f"{'[red]' if check.differences else ''}{check.differences:,}")
    table.add_row("rejected export rows", f"{'[red]' if run.rejected else ''}{run.rejected_rows:,}")
    console.print(table)
    console.print(f"compared: export {run.legacy_counts['invoices']:,} invoices, {run.legacy_counts['payments']:,} "
                  f"payments; Revloop {run.revloop_counts['invoices']:,} invoices, "
                  f"{run.revloop_counts['payments']:,} payments")
    for rejected in run.rejected[:show]:
        err_console.print(f"rejected {escape(rejected.file)}:{rejected.line} {escape(rejected.field)}: "
                          f"{escape(rejected.reason)}")
    shown = [d for check in run.checks for d in check.sample][:show]
    if shown:
        # one difference per block, never folded, so ids can be copied whole
        console.print(f"first {len(shown)} of {run.differences:,} differences:", soft_wrap=True)
        for d in shown:
            amount = "" if d.difference is None else f" (legacy minus Revloop: {d.difference})"
            console.print(f"[bold]{d.check_name}[/bold] {escape(d.key)}{amount}\n"
                          f"  Revloop: {escape(describe(d.revloop))}\n  export:  {escape(describe(d.legacy))}",
                          soft_wrap=True)
    if not run.agrees:
        console.print(f"all of them: select * from quality.parity_differences where run_id = '{run.run_id}'")
        raise typer.Exit(1)
    console.print("the export and Revloop agree")


# ---- sync: the reverse-ETL flows ---------------------------------------------------------------------------


@app.command()
def plan(
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Load and transform first (incremental); still sends nothing.")
    ] = False,
    sandbox: SandboxOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Dry run: print, per record, the writes a sync would make (field: old -> new) without sending anything."""
    import datetime as dt

    from revloop import warehouse
    from revloop.cycle import SYSTEMS, CycleReport, SyncCycle, plan_now
    from revloop.flows.report import plan_lines

    if sandbox:
        _use_sandbox_settings(data_dir)
    settings = _settings()
    url = warehouse.database_url(settings)
    if refresh:
        cycle = SyncCycle(settings, url, writers={})
        report = CycleReport(started_at=dt.datetime.now(dt.UTC))
        cycle.load(SYSTEMS, report)
        cycle.transform(SYSTEMS, report)
        cycle.close()
    for line in plan_lines(plan_now(settings, url)):
        typer.echo(line)


@app.command()
def sync(
    once: Annotated[bool, typer.Option("--once", help="Run one whole cycle and exit.")] = False,
    poll_seconds: Annotated[float, typer.Option(help="How often Salesforce is polled.")] = 1.0,
    full_every: Annotated[float, typer.Option(help="Seconds between loads of all three systems.")] = 60.0,
    sandbox: SandboxOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Keep the systems in agreement: load -> transform -> checks -> flows -> deliver, warm, until Ctrl-C."""
    import signal

    from revloop import warehouse
    from revloop.cycle import SyncCycle, SyncLoop
    from revloop.flows.report import plan_lines

    if sandbox:
        _use_sandbox_settings(data_dir)
    from revloop.flows.dagster_report import reporter_from_environment

    settings = _settings()
    cycle = SyncCycle(settings, warehouse.database_url(settings), reporter=reporter_from_environment())

    def show(report) -> None:  # type: ignore[no-untyped-def]
        loaded = ", ".join(f"{k} {v}" for k, v in report.loaded.items()) or "-"
        typer.echo(f"cycle {report.started_at:%H:%M:%S}: loaded {loaded}; rebuilt {', '.join(report.models) or '-'}; "
                   f"enqueued {dict(report.enqueued) or 0}; delivered {dict(report.delivered) or 0}; "
                   f"{report.seconds.get('total', 0):.2f}s")
        for system, error in report.load_errors.items():
            err_console.print(f"[yellow]load {system} failed:[/yellow] {error}")
        if report.transform_error:
            err_console.print(f"[red]transform:[/red] {report.transform_error}")
        for line in plan_lines(p for p in report.plans if p.writes or p.holds or p.blocked_by):
            typer.echo(line)

    if once:
        report = cycle.run(force_transform=True)
        show(report)
        cycle.close()
        if report.load_errors or report.transform_error:
            raise typer.Exit(1)
        return
    from revloop.stopping import process_stopping

    # a stop ends the step in progress (and any retry it is waiting out), then the loop records its stop
    signal.signal(signal.SIGTERM, lambda *_: process_stopping.set())
    typer.echo(f"syncing (Salesforce polled every {poll_seconds:g}s, payments on webhooks); Ctrl-C to stop")
    try:
        SyncLoop(cycle, poll_seconds=poll_seconds, full_every_seconds=full_every, on_cycle=show).run(
            process_stopping.is_set)
    except KeyboardInterrupt:
        pass
    finally:
        cycle.close()


@app.command()
def worker() -> None:
    """Run the delivery worker alone: deliver due outbox writes, woken by NOTIFY, until Ctrl-C."""
    import signal

    from revloop import warehouse
    from revloop.alerts import alerter_from_environment
    from revloop.crypto import FieldCipher, load_keyring
    from revloop.sync.worker import DeliveryWorker
    from revloop.sync.writers import SYSTEMS, writer_for

    settings = _settings()
    url = warehouse.database_url(settings)
    writers = {s: writer_for(s, settings, database_url=url) for s in SYSTEMS}
    delivery = DeliveryWorker(url, FieldCipher(load_keyring(settings.environment, settings.home)), writers,
                              alerter_from_environment(url))
    stopping = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(now=True))
    typer.echo(f"{delivery.name}: delivering (Ctrl-C to stop)")
    try:
        total = delivery.run_until(lambda: stopping["now"])
    except KeyboardInterrupt:
        return
    typer.echo(", ".join(f"{k} {v}" for k, v in total.items()) or "nothing delivered")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app()


if __name__ == "__main__":
    main()
