"""Plain-text accounts of plans and cycles (``revloop plan``, ``revloop sync --once``)."""

from __future__ import annotations

from collections.abc import Iterable

from revloop.flows.base import FlowPlan


def plan_lines(plans: Iterable[FlowPlan]) -> list[str]:
    """Per flow, per record: the writes a run would make, field by field (``field: old -> new``)."""
    lines: list[str] = []
    for plan in plans:
        if plan.blocked_by:
            lines.append(f"{plan.flow}: BLOCKED by failed check(s) {', '.join(plan.blocked_by)}; nothing is written")
            continue
        if not plan.writes and not plan.holds:
            lines.append(f"{plan.flow}: nothing to do")
            continue
        lines.append(f"{plan.flow}: {len(plan.writes)} write(s), {len(plan.holds)} held")
        for planned in plan.writes:
            write = planned.write
            lines.append(f"  {write.source_ref}: {write.operation} {write.target_system} {write.target_object} "
                         f"[{write.idempotency_key}] ({planned.reason})")
            lines += [f"      {change.describe()}" for change in planned.changes]
        for hold in plan.holds:
            lines.append(f"  {hold.source_ref}: HELD: {hold.reason}")
    return lines
