"""The benchmark's output: a terminal table per peer and stream, and a JSON file under ``bench/results/``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.common import save
from bench.peers.results import PeerResult


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def summary_table(results: Sequence[PeerResult]) -> Table:
    table = Table(title="Peers against the sandboxes", show_lines=False)
    for column in ("peer", "ok", "discover s", "sync s", "records", "loaded", "rec/s", "peak RSS MiB", "streams ok"):
        table.add_column(column, justify="left" if column == "peer" else "right")
    for r in results:
        compared = [s for s in r.streams.values() if s.expected is not None]
        matching = sum(1 for s in compared if s.verdict == "match")
        rate = r.records_per_second
        table.add_row(
            r.peer, "yes" if r.succeeded else "[red]no[/red]", f"{r.discover_seconds:.1f}", f"{r.sync_seconds:.1f}",
            _count(r.records), _count(r.loaded), "-" if rate is None else f"{rate:,.0f}",
            _mib(r.peak_rss_bytes), f"{matching}/{len(compared)}",
        )
    return table


def stream_table(result: PeerResult) -> Table:
    table = Table(title=f"{result.peer}: per stream", show_lines=False)
    for column in ("stream", "emitted", "loaded", "sandbox", "verdict"):
        table.add_column(column, justify="left" if column in ("stream", "verdict") else "right")
    colours = {"match": "green", "short": "red", "over": "yellow", "no sandbox object": "dim"}
    for s in sorted(result.streams.values(), key=lambda s: s.stream):
        colour = colours[s.verdict]
        verdict = f"[{colour}]{s.verdict}[/{colour}]"
        table.add_row(s.stream, _count(s.emitted), _count(s.loaded), _count(s.expected), verdict)
    return table


def print_report(results: Sequence[PeerResult], console: Console | None = None) -> None:
    console = console or Console()
    for result in results:
        console.print(stream_table(result))
        for error in result.errors[:8]:
            console.print(f"  [red]error[/red] {error.strip()[:600]}")
        if result.sandbox_requests:
            console.print(f"  sandbox answers by status: {result.sandbox_requests.get('responses_by_status', {})}")
    console.print(summary_table(results))


def write_json(results: Sequence[PeerResult], meta: dict[str, Any]) -> Path:
    """``bench/results/peers-<UTC time>.json`` with the machine description; returns its path."""
    return save("peers", {**meta, "peers": [r.to_json() for r in results]})
