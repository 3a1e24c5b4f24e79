"""The benchmark's output: a terminal table per peer and stream, and a JSON file under ``bench/results/``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.common import save
from bench.peers.compare import Comparison
from bench.peers.results import PeerResult


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def summary_table(results: Sequence[PeerResult]) -> Table:
    table = Table(title="Peers against the sandboxes", show_lines=False)
    for column in ("peer", "round", "ok", "discover s", "sync s", "records", "loaded", "rec/s", "peak RSS MiB",
                   "streams ok"):
        table.add_column(column, justify="left" if column == "peer" else "right")
    for r in results:
        compared = [s for s in r.streams.values() if s.expected is not None]
        matching = sum(1 for s in compared if s.verdict == "match")
        rate = r.records_per_second
        ok = "yes" if r.succeeded else ("[red]timed out[/red]" if r.timed_out else "[red]no[/red]")
        table.add_row(
            r.peer, str(r.round), ok, f"{r.discover_seconds:.1f}", f"{r.sync_seconds:.1f}",
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


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def comparison_table(comparisons: Sequence[Comparison]) -> Table:
    """Revloop and every peer, per system, with the ratios to the best peer."""
    table = Table(title="Revloop vs peers (medians over rounds; peer time = sync, discover excluded)")
    columns = ("system", "participant", "rounds", "seconds", "records", "rec/s", "peak RSS MiB",
               "ran to end", "nothing missing", "streams compared")
    for column in columns:
        table.add_column(column, justify="left" if column in ("system", "participant", "streams compared") else "right")
    for comparison in comparisons:
        for s in sorted(comparison.standings, key=lambda s: (s.participant != "revloop", s.ranking_seconds)):
            labels = [
                label for label, peer in (("best peer", comparison.best_peer),
                                          ("best complete peer", comparison.best_complete_peer))
                if peer is not None and s.participant == peer.participant
            ]
            seconds = f"{s.seconds:.1f}"
            if not s.ran_to_end and s.projected_seconds is not None:
                seconds += f" (projected {s.projected_seconds:,.0f})"
            shorts = [f"{k} {v}" for k, v in s.missing.items()]
            more = ", ..." if len(shorts) > 3 else ""
            missing = "yes" if s.nothing_missing else "no: " + ", ".join(shorts[:3]) + more
            table.add_row(
                comparison.system, s.participant + (f" ({', '.join(labels)})" if labels else ""), str(s.rounds),
                seconds, _count(s.records),
                "-" if s.records_per_second is None else f"{s.records_per_second:,.0f}",
                "-" if s.peak_rss_mib is None else f"{s.peak_rss_mib:,.0f}",
                "yes" if s.ran_to_end else ("timed out" if s.timed_out else "no"), missing,
                ", ".join(s.compared_streams),
            )
    return table


def print_comparison(comparisons: Sequence[Comparison], console: Console) -> None:
    console.print(comparison_table(comparisons))
    for c in comparisons:
        if c.revloop is None or c.best_peer is None:
            continue
        goal = {True: "met", False: "[red]not met[/red]", None: "-"}[c.goal_met]
        projected = " [yellow](peer time projected: stopped at the budget)[/yellow]" if c.best_peer_projected else ""
        console.print(
            f"{c.system}: revloop / best peer {c.best_peer.participant}: time {_ratio(c.time_ratio)}"
            f"{_speed(c.time_ratio)}{projected}, vs its discover+sync {_ratio(c.end_to_end_time_ratio)}, "
            f"records/s {_ratio(c.rate_ratio)}; goal (2x faster, nothing missing): {goal}"
        )
        if c.best_complete_peer is not None and c.best_complete_peer is not c.best_peer:
            console.print(
                f"{c.system}: revloop / best complete peer {c.best_complete_peer.participant}: "
                f"time {_ratio(c.time_ratio_to_complete_peer)}{_speed(c.time_ratio_to_complete_peer)}"
            )


def _speed(ratio: float | None) -> str:
    if not ratio:
        return ""
    return f" ({1 / ratio:.1f}x faster)" if ratio <= 1 else f" ({ratio:.1f}x slower)"


def print_report(
    results: Sequence[PeerResult], comparisons: Sequence[Comparison] = (), console: Console | None = None
) -> None:
    console = console or Console(width=200)
    for result in results:
        if result.round > 1:
            continue  # per-stream detail of the first round; later rounds are in the summary and the JSON
        console.print(stream_table(result))
        for error in result.errors[:8]:
            console.print(f"  [red]error[/red] {error.strip()[:600]}")
        if result.sandbox_requests:
            console.print(f"  sandbox answers by status: {result.sandbox_requests.get('responses_by_status', {})}")
        if result.facts:
            console.print(f"  facts: {result.facts}")
    console.print(summary_table(results))
    if comparisons:
        print_comparison(comparisons, console)


def write_json(results: Sequence[PeerResult], meta: dict[str, Any], comparisons: Sequence[Comparison] = ()) -> Path:
    """``bench/results/peers-<UTC time>.json`` with the machine description; returns its path."""
    return save("peers", {
        **meta,
        "comparison": [c.to_json() for c in comparisons],
        "peers": [r.to_json() for r in results],
    })
