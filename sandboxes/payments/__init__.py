"""A Stripe-compatible payments sandbox: the ``/v1`` API the ``stripe`` SDK speaks, backed by SQLite."""

from __future__ import annotations

from sandboxes.common.config import SandboxConfig
from sandboxes.common.faults import FaultState
from sandboxes.payments.keys import load_credentials


def create_backend(config: SandboxConfig, faults: FaultState):  # type: ignore[no-untyped-def]
    """Open (or create and seed) the store under ``config.system_dir`` and return the backend."""
    from sandboxes.payments.backend import PaymentsBackend

    return PaymentsBackend(config, faults)


def client_env(config: SandboxConfig) -> dict[str, str]:
    """The ``REVLOOP_PAYMENTS_*`` settings a client needs to reach this sandbox."""
    credentials = load_credentials(config.system_dir)
    return {
        "REVLOOP_PAYMENTS_API_BASE": config.base_url,
        "REVLOOP_PAYMENTS_SECRET_KEY": credentials["secret_key"],
        "REVLOOP_PAYMENTS_READER_KEY": credentials["reader_key"],
        "REVLOOP_PAYMENTS_PUBLISHABLE_KEY": credentials["publishable_key"],
        "REVLOOP_PAYMENTS_WEBHOOK_SECRET": credentials["webhook_secret"],
        "REVLOOP_PAYMENTS_ACCOUNT_ID": credentials["account_id"],
    }
