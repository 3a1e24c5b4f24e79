"""Fixtures for the writer tests: one sandbox per system for the package, settings from their environment,
fault switching through ``/__sandbox__/faults``, and read-back clients."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from revloop.connectors import erp as erp_connector
from revloop.connectors import payments as payments_connector
from revloop.settings import ErpSettings, PaymentsSettings, SalesforceSettings
from revloop.sync.model import IntendedWrite
from revloop.sync.writers.erp import ErpWriter
from revloop.sync.writers.payments import PaymentsWriter
from revloop.sync.writers.salesforce import SalesforceWriter
from tests.sandbox_harness import RunningSandbox, start_sandbox

_serial = itertools.count(1)


def unique(prefix: str) -> str:
    """A key no other test uses (the sandboxes are shared by the package's tests)."""
    return f"{prefix}-{next(_serial)}"


def write(system: str, target_object: str, operation: str, key: str, payload: dict[str, Any],
          flow: str = "test") -> IntendedWrite:
    return IntendedWrite(flow, system, target_object, operation, key, payload)


def _settings_values(sandbox: RunningSandbox, system: str) -> dict[str, str]:
    prefix = f"REVLOOP_{system.upper()}_"
    return {k.removeprefix(prefix).lower(): v for k, v in sandbox.env().items() if k.startswith(prefix)}


@contextlib.contextmanager
def faults(sandbox: RunningSandbox, **knobs: Any) -> Iterator[None]:
    """Fault knobs switched on for the ``with`` block, and off again after it."""
    sandbox.admin("PUT", "faults", knobs)
    try:
        yield
    finally:
        sandbox.admin("PUT", "faults", {"profile": "none"})


def _sandbox(system: str, factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    running = start_sandbox(system, factory.mktemp(f"writers-{system}"), seed=42, scale="demo")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="package")
def salesforce_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    yield from _sandbox("salesforce", tmp_path_factory)


@pytest.fixture(scope="package")
def erp_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    yield from _sandbox("erp", tmp_path_factory)


@pytest.fixture(scope="package")
def payments_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    yield from _sandbox("payments", tmp_path_factory)


@pytest.fixture(scope="package")
def salesforce_settings(salesforce_sandbox: RunningSandbox) -> SalesforceSettings:
    return SalesforceSettings(**_settings_values(salesforce_sandbox, "salesforce"))


@pytest.fixture(scope="package")
def erp_settings(erp_sandbox: RunningSandbox) -> ErpSettings:
    return ErpSettings(**_settings_values(erp_sandbox, "erp"))


@pytest.fixture(scope="package")
def payments_settings(payments_sandbox: RunningSandbox) -> PaymentsSettings:
    return PaymentsSettings(**_settings_values(payments_sandbox, "payments"))


@pytest.fixture
def sf_writer(salesforce_settings: SalesforceSettings) -> SalesforceWriter:
    return SalesforceWriter(salesforce_settings)


@pytest.fixture
def erp_writer(erp_settings: ErpSettings) -> Iterator[ErpWriter]:
    writer = ErpWriter(erp_settings)
    yield writer
    writer.close()


@pytest.fixture
def payments_writer(payments_settings: PaymentsSettings) -> PaymentsWriter:
    return PaymentsWriter(payments_settings)


@pytest.fixture(scope="package")
def erp_reader(erp_settings: ErpSettings) -> Any:
    """odoolib on the read-only key: how a person would check what the writer left in the ERP."""
    return erp_connector.connect(erp_settings, reader=True)


@pytest.fixture(scope="package")
def stripe_client(payments_settings: PaymentsSettings) -> stripe.StripeClient:
    return payments_connector.connect(payments_settings, max_network_retries=0)
