"""Stripe's idempotent requests: the first result per (API key, Idempotency-Key) is stored and replayed."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any

import orjson

from sandboxes.payments.errors import StripeError
from sandboxes.payments.store import Store

MAX_KEY_LENGTH = 255
RETENTION_SECONDS = 24 * 3600


@dataclasses.dataclass(frozen=True)
class StoredResult:
    fingerprint: str
    status: int
    body: bytes
    request_id: str


def fingerprint(method: str, path: str, params: dict[str, Any]) -> str:
    """What "the same parameters" means: method, path and the decoded parameters, order-insensitive."""
    canonical = orjson.dumps([method, path, params], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


class IdempotencyKeys:
    """Stored results plus the keys of requests still executing (a second one with the same key gets 409)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._in_flight: set[tuple[str, str]] = set()

    @staticmethod
    def validate(key: str) -> None:
        if len(key) > MAX_KEY_LENGTH:
            raise StripeError(
                400, f"Invalid idempotency key: must be at most {MAX_KEY_LENGTH} characters long.",
                param="Idempotency-Key",
            )

    def claim(self, owner: str, key: str) -> None:
        if (owner, key) in self._in_flight:
            raise StripeError(
                409,
                "There is currently another in-progress request using this Idempotent Key (that probably means you "
                f"submitted twice, and the other request is still going through): {key}. Please try again later.",
                type="idempotency_error", code="idempotency_key_in_use",
                headers={"Stripe-Should-Retry": "true"},
            )
        self._in_flight.add((owner, key))

    def release(self, owner: str, key: str) -> None:
        self._in_flight.discard((owner, key))

    def lookup(self, owner: str, key: str) -> StoredResult | None:
        row = self.store.conn.execute(
            "SELECT fingerprint, status, body, request_id FROM idempotency "
            "WHERE key_owner = ? AND idempotency_key = ? AND created > ?",
            (owner, key, int(time.time()) - RETENTION_SECONDS),
        ).fetchone()
        return StoredResult(row[0], row[1], bytes(row[2]), row[3]) if row else None

    def record(self, owner: str, key: str, print_: str, status: int, body: bytes, request_id: str) -> None:
        with self.store.transaction():
            self.store.conn.execute(
                "INSERT OR REPLACE INTO idempotency (key_owner, idempotency_key, created, fingerprint, status, body,"
                " request_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (owner, key, int(time.time()), print_, status, body, request_id),
            )

    def prune(self) -> int:
        """Forget results older than 24 hours, as Stripe may."""
        with self.store.transaction():
            cursor = self.store.conn.execute(
                "DELETE FROM idempotency WHERE created <= ?", (int(time.time()) - RETENTION_SECONDS,)
            )
        return cursor.rowcount


def mismatch(key: str) -> StripeError:
    return StripeError(
        400,
        "Keys for idempotent requests can only be used with the same parameters they were first used with. Try "
        f"using a key other than '{key}' if you meant to execute a different request.",
        type="idempotency_error", headers={"Stripe-Should-Retry": "false"},
    )
