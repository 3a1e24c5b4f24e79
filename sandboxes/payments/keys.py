"""API keys: the secret key, restricted keys with per-resource permissions, and key rolling with expiry."""

from __future__ import annotations

import base64
import dataclasses
import time
from pathlib import Path
from typing import Any

import orjson

from sandboxes.common.credentials import load_or_create, token
from sandboxes.payments import unmodelled
from sandboxes.payments.errors import StripeError, redact_key
from sandboxes.payments.store import Store

_MODELLED = (
    "customers", "products", "prices", "invoices", "invoiceitems", "payment_intents", "charges", "refunds",
    "disputes", "events", "webhook_endpoints", "accounts", "balance", "balance_transactions", "plans",
    "subscriptions", "subscription_items",
)
RESOURCES = (*_MODELLED, *sorted({spec.permission for spec in unmodelled.RESOURCES} - set(_MODELLED)))
"""Resources a restricted key's permissions name (``/v1/<resource>``; ``/v1/account`` counts as accounts)."""

READER_KEY_NAME = "revloop-reader"
NO_REFUNDS_KEY_NAME = "revloop-no-refunds"


def new_credentials() -> dict[str, Any]:
    """Credentials made on first start and kept in ``credentials.json`` so clients survive restarts."""
    return {
        "account_id": "acct_" + token(nbytes=12)[:16],
        "secret_key": token("sk_test_", 36),
        "reader_key": token("rk_test_", 36),
        "no_refunds_key": token("rk_test_", 36),
        "publishable_key": token("pk_test_", 36),
        "webhook_secret": token("whsec_", 24),
    }


def credentials_path(system_dir: Path) -> Path:
    return system_dir / "credentials.json"


def load_credentials(system_dir: Path) -> dict[str, Any]:
    return load_or_create(credentials_path(system_dir), new_credentials)


@dataclasses.dataclass(frozen=True)
class ApiKey:
    secret: str
    kind: str
    """``secret`` or ``restricted``."""
    name: str
    permissions: dict[str, str]
    """Resource -> ``read`` or ``write`` (``*`` applies to resources not named); secret keys ignore it."""
    created: int
    expires_at: int | None

    def allows(self, resource: str, write: bool) -> bool:
        if self.kind == "secret":
            return True
        level = self.permissions.get(resource, self.permissions.get("*", "none"))
        return level == "write" or (level == "read" and not write)


class KeyRing:
    """Every API key of the account, cached in memory and persisted in the store."""

    def __init__(self, store: Store, system_dir: Path, account_id: str) -> None:
        self.store = store
        self.system_dir = system_dir
        self.account_id = account_id
        self._keys: dict[str, ApiKey] = {}
        self.reload()

    def reload(self) -> None:
        rows = self.store.conn.execute(
            "SELECT secret, kind, name, permissions, created, expires_at FROM api_keys"
        ).fetchall()
        self._keys = {
            row[0]: ApiKey(row[0], row[1], row[2], orjson.loads(row[3]), row[4], row[5]) for row in rows
        }

    def ensure_defaults(self, credentials: dict[str, Any]) -> None:
        """Register the keys from ``credentials.json`` (first start, or a store wiped by hand)."""
        now = int(time.time())
        defaults = [
            (credentials["secret_key"], "secret", "secret", {}),
            (credentials["reader_key"], "restricted", READER_KEY_NAME, {"*": "read"}),
            (credentials["no_refunds_key"], "restricted", NO_REFUNDS_KEY_NAME, {"*": "write", "refunds": "none"}),
        ]
        with self.store.transaction():
            for secret, kind, name, permissions in defaults:
                self.store.conn.execute(
                    "INSERT OR IGNORE INTO api_keys (secret, kind, name, permissions, created, expires_at) "
                    "VALUES (?, ?, ?, ?, ?, NULL)",
                    (secret, kind, name, orjson.dumps(permissions).decode(), now),
                )
        self.reload()

    def create_restricted(self, name: str, permissions: dict[str, str]) -> ApiKey:
        for resource, level in permissions.items():
            if resource != "*" and resource not in RESOURCES:
                raise ValueError(f"unknown resource {resource!r}; known: {', '.join(RESOURCES)}")
            if level not in ("none", "read", "write"):
                raise ValueError(f"permission for {resource!r} must be none, read or write")
        secret = token("rk_test_", 36)
        with self.store.transaction():
            self.store.conn.execute(
                "INSERT INTO api_keys (secret, kind, name, permissions, created, expires_at) VALUES (?,?,?,?,?,NULL)",
                (secret, "restricted", name, orjson.dumps(permissions).decode(), int(time.time())),
            )
        self.reload()
        return self._keys[secret]

    def roll(self, secret: str, expires_in_seconds: int) -> tuple[ApiKey, ApiKey]:
        """Replace ``secret`` by a new key of the same kind; the old one works until it expires.

        Returns:
            The new key and the old key (now carrying its expiry).
        """
        old = self._keys.get(secret)
        if old is None:
            raise KeyError(secret)
        prefix = "sk_test_" if old.kind == "secret" else "rk_test_"
        new_secret = token(prefix, 36)
        now = int(time.time())
        with self.store.transaction():
            self.store.conn.execute(
                "UPDATE api_keys SET expires_at = ? WHERE secret = ?", (now + max(0, expires_in_seconds), secret)
            )
            self.store.conn.execute(
                "INSERT INTO api_keys (secret, kind, name, permissions, created, expires_at) VALUES (?,?,?,?,?,NULL)",
                (new_secret, old.kind, old.name, orjson.dumps(old.permissions).decode(), now),
            )
        self.reload()
        self._rewrite_credentials(secret, new_secret)
        return self._keys[new_secret], self._keys[secret]

    def _rewrite_credentials(self, old_secret: str, new_secret: str) -> None:
        """Keep ``credentials.json`` naming the current keys, so ``client_env`` hands out the new one."""
        path = credentials_path(self.system_dir)
        data = load_credentials(self.system_dir)
        for field, value in list(data.items()):
            if value == old_secret:
                data[field] = new_secret
        path.write_text(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"name": k.name, "kind": k.kind, "key": redact_key(k.secret), "permissions": k.permissions,
             "created": k.created, "expires_at": k.expires_at}
            for k in self._keys.values()
        ]

    def label(self, authorization: str | None) -> str:
        """A short name of the caller for request counters (never the secret itself)."""
        secret = parse_authorization(authorization)
        key = self._keys.get(secret or "")
        return key.name if key else "anonymous"

    def authenticate(self, authorization: str | None, resource: str, write: bool) -> ApiKey:
        """The key behind an ``Authorization`` header, if it may do this; Stripe's 401/403 otherwise."""
        secret = parse_authorization(authorization)
        if not secret:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#"
                "authentication for details, or we can help at https://support.stripe.com/.",
            )
        key = self._keys.get(secret)
        if key is None:
            raise StripeError(401, f"Invalid API Key provided: {redact_key(secret)}")
        if key.expires_at is not None and key.expires_at <= time.time():
            raise StripeError(
                401, f"Expired API Key provided: {redact_key(secret)}. Roll the key to create a new one.",
                code="api_key_expired",
            )
        if not key.allows(resource, write):
            singular = resource[:-1] if resource.endswith("s") else resource
            raise StripeError(
                403,
                f"The provided key '{redact_key(secret)}' does not have the required permissions for this "
                f"endpoint on account '{self.account_id}'. Having the 'rak_{singular}_{'write' if write else 'read'}'"
                " permission would allow this request to continue.",
            )
        return key


def parse_authorization(header: str | None) -> str | None:
    """The key from ``Bearer <key>`` or ``Basic base64(<key>:)``; None when absent or unreadable."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return decoded.split(":", 1)[0] or None
    return None
