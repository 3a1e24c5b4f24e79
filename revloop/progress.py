"""A dlt progress collector that draws with rich: rows per table as they are extracted and loaded."""

from __future__ import annotations

from typing import Any

from dlt.common.runtime.collector import Collector
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn


class RichCollector(Collector):
    """Shows one line per dlt counter (tables during extract, files/items during normalize, jobs at load)."""

    def __init__(self, progress: Progress, prefix: str) -> None:
        self.progress = progress
        self.prefix = prefix
        self.step = ""
        self._tasks: dict[str, TaskID] = {}
        self._totals: dict[str, int] = {}

    def update(
        self,
        name: str,
        inc: int = 1,
        total: int | None = None,
        inc_total: int | None = None,
        message: str | None = None,
        label: str | None = "",
    ) -> None:
        if name.startswith("_dlt"):
            return
        key = f"{name}[{label}]" if label else name
        task = self._tasks.get(key)
        if task is None:
            task = self.progress.add_task(f"{self.prefix} {self.step}: {key}", total=total)
            self._tasks[key] = task
            self._totals[key] = total or 0
        elif inc_total:
            self._totals[key] += inc_total
            self.progress.update(task, total=self._totals[key])
        self.progress.update(task, advance=inc)

    def _start(self, step: str) -> None:
        self.step = step.split(" ")[0]
        self._tasks = {}
        self._totals = {}

    def _stop(self) -> None:
        for task in self._tasks.values():
            self.progress.remove_task(task)
        self._tasks = {}


def load_progress(**kwargs: Any) -> Progress:
    """The progress display used by ``revloop load``."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:>10,.0f} rows"),
        TimeElapsedColumn(),
        transient=True,
        **kwargs,
    )
