"""A warm dbt runner keeps its cost: repeated invocations do not accumulate per-invocation state."""

from __future__ import annotations

from revloop.dbt import DbtProject


def test_repeated_invocations_do_not_grow_the_adapters_behavior_flags(warehouse_url: str) -> None:
    from dbt.adapters.base import impl

    project = DbtProject(warehouse_url)
    sizes = []
    for _ in range(6):
        assert project.invoke(["ls", "--select", "nothing_matches_this"]).success
        sizes.append(len(impl.DEFAULT_BASE_BEHAVIOR_FLAGS))
    # each invocation's adapter appends its flags to the shared list; the runner trims it back before the next
    assert len(set(sizes[1:])) == 1, sizes
    names = [flag["name"] for flag in impl.DEFAULT_BASE_BEHAVIOR_FLAGS]
    assert len(names) - len(set(names)) <= 1, names
