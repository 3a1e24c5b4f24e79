"""The vocabulary of delivery: an intended write, its outcome, and how a failure is classified.

Writers (``revloop/sync/writers/<system>.py``) turn an :class:`IntendedWrite` into calls on the target
system's client library, carrying the write's idempotency key into the target's own mechanism, and raise
one of the :class:`DeliveryError` subclasses below so the worker knows whether to retry, wait, refresh
credentials, or park the write with its reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Literal, Protocol

Operation = Literal["create", "upsert", "update", "post", "pay", "cancel", "register_payment"]


@dataclasses.dataclass(frozen=True)
class IntendedWrite:
    """One write we mean to make to an outside system."""

    flow: str
    """Which flow wants it: ``won_deal_invoice``, ``invoice_payment_request``, ``payment_outcome``, ..."""
    target_system: str
    """``salesforce``, ``erp`` or ``payments``."""
    target_object: str
    """The vendor's object: ``Invoice__c``, ``account.move``, ``invoice``..."""
    operation: str
    idempotency_key: str
    """Derived from the source event, identical however often the event is seen (at most 255 chars)."""
    payload: dict[str, Any]
    source_ref: str | None = None
    """The record that caused it (e.g. the Salesforce Opportunity Id), for people following a deal."""

    @property
    def payload_hash(self) -> str:
        """SHA-256 of the canonical JSON payload: what the audit log and change detection compare."""
        return payload_hash(self.payload)


def payload_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class DeliveryOutcome:
    """What the target confirmed."""

    target_id: str
    """The id of the record in the target system (created, found, or updated)."""
    created: bool
    """False when the write found its record already there (a replay, or a crash after the target's write)."""
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)


class DeliveryError(Exception):
    """A write did not go through. Subclasses say what to do about it."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.http_status = http_status


class RetryableError(DeliveryError):
    """Transient: 5xx, timeouts, dropped connections, ``UNABLE_TO_LOCK_ROW``. Retry with backoff and jitter."""

    code = "transient"


class RateLimited(RetryableError):
    """429 / ``REQUEST_LIMIT_EXCEEDED``: wait at least ``retry_after_seconds`` before the next attempt."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_seconds: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after_seconds = retry_after_seconds


class SessionExpired(DeliveryError):
    """``INVALID_SESSION_ID`` / 401: refresh credentials once, then retry at once."""

    code = "session_expired"


class PermanentError(DeliveryError):
    """Validation errors (4xx): retrying cannot help. The write is parked with its reason for a person."""

    code = "rejected"


class Writer(Protocol):
    """Delivers intended writes to one system."""

    system: str

    def deliver(self, write: IntendedWrite) -> DeliveryOutcome:
        """Apply ``write`` exactly once (look up by its key first where the target has no idempotency)."""

    def refresh_credentials(self) -> None:
        """Get a new session (after :class:`SessionExpired`)."""
