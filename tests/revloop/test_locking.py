"""Named advisory locks: waiting for a holder, giving up with its name, and one dbt build per warehouse."""

from __future__ import annotations

import threading
import time

import pytest

from revloop.dbt import DbtProject, TransformBusy, dbt_lock
from revloop.locking import LockBusy, advisory_lock


def test_a_waiter_gets_the_lock_once_the_holder_lets_go(warehouse_url: str) -> None:
    held, released = threading.Event(), threading.Event()

    def hold() -> None:
        with advisory_lock(warehouse_url, "probe.wait", holder="first-holder"):
            held.set()
            time.sleep(0.5)  # holding the lock while the waiter waits is the point of this thread
        released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10), "the first holder never got the lock"
    with advisory_lock(warehouse_url, "probe.wait", holder="waiter", wait_seconds=10):
        assert released.is_set(), "the lock was granted while the first holder still had it"
    holder.join()


def test_a_waiter_gives_up_after_its_wait_and_names_the_holder(warehouse_url: str) -> None:
    with advisory_lock(warehouse_url, "probe.busy", holder="the-holder"):
        started = time.monotonic()
        with (pytest.raises(LockBusy, match=r"probe\.busy is held by the-holder since "),
              advisory_lock(warehouse_url, "probe.busy", holder="waiter", wait_seconds=0.5)):
            pass
        assert 0.4 < time.monotonic() - started < 5


def test_dbt_does_not_run_while_another_build_holds_the_warehouse(warehouse_url: str) -> None:
    project = DbtProject(warehouse_url, lock_wait_seconds=0.3)
    busy = r"another dbt build is running on this warehouse \(revloop-dbt:dagster:abc12345:"
    with dbt_lock(warehouse_url, holder="dagster:abc12345"), pytest.raises(TransformBusy, match=busy):
        project.invoke(["run", "--select", "stg_salesforce__accounts"])
    # parse only reads the project: it never waits for a build
    with dbt_lock(warehouse_url, holder="dagster:abc12345"):
        assert project.invoke(["parse"]).success


def test_a_stopping_process_stops_waiting_for_the_lock(warehouse_url: str) -> None:
    stopping = threading.Event()
    threading.Timer(0.3, stopping.set).start()
    with advisory_lock(warehouse_url, "probe.give_up", holder="the-holder"):
        started = time.monotonic()
        with (pytest.raises(LockBusy, match="held by the-holder"),
              advisory_lock(warehouse_url, "probe.give_up", holder="waiter", wait_seconds=60,
                            give_up=stopping.is_set)):
            pass
        assert time.monotonic() - started < 5
