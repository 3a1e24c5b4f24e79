"""Shared fixtures: a throwaway warehouse database per test run."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from revloop import warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]


def _admin_url() -> str:
    """REVLOOP_TEST_DATABASE_URL when set (CI: the local server), else the embedded PostgreSQL."""
    return os.environ.get("REVLOOP_TEST_DATABASE_URL") or warehouse.embedded_url(REPO_ROOT / ".revloop" / "test-home")


@pytest.fixture(scope="session")
def warehouse_admin_url() -> str:
    return _admin_url()


def _throwaway_database(admin_url: str) -> Iterator[str]:
    name = f"revloop_test_{os.getpid()}_{secrets.token_hex(4)}"
    url = warehouse.create_database(admin_url, name)
    try:
        yield url
    finally:
        warehouse.drop_database(admin_url, name)


@pytest.fixture(scope="session")
def warehouse_url(warehouse_admin_url: str) -> Iterator[str]:
    """A database made for this test run and dropped at its end."""
    yield from _throwaway_database(warehouse_admin_url)


@pytest.fixture
def fresh_database(warehouse_admin_url: str) -> Iterator[str]:
    """A database of its own for one test (loads that must start from nothing), dropped afterwards."""
    yield from _throwaway_database(warehouse_admin_url)


@pytest.fixture(scope="module")
def module_database(warehouse_admin_url: str) -> Iterator[str]:
    """A database shared by the tests of one module, dropped after them."""
    yield from _throwaway_database(warehouse_admin_url)
