"""What a peer needs to reach a sandbox: its URLs, the CA to trust, and credentials.

Salesforce refresh tokens rotate in the sandbox as in an org whose connected app enables rotation: each
refresh answers with a new token and a reused one revokes the whole grant. So one :class:`TokenChain`
carries the live refresh token from peer to peer; after each run the runner hands it the token the peer
persisted (tap-salesforce rewrites its config file; Airbyte emits a ``CONNECTOR_CONFIG`` control message).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

SALESFORCE_LOGIN_ORIGINS = ("https://login.salesforce.com", "https://test.salesforce.com")
STRIPE_API_ORIGIN = "https://api.stripe.com"


class AccessError(RuntimeError):
    """A sandbox's client settings lack something a peer needs."""


def _require(env: dict[str, str], key: str, system: str) -> str:
    value = env.get(key)
    if not value:
        raise AccessError(f"the {system} sandbox's client settings have no {key!r} (have: {', '.join(sorted(env))})")
    return value


@dataclasses.dataclass
class TokenChain:
    """The refresh token currently valid for the Salesforce sandbox's main connected app."""

    refresh_token: str

    def advance(self, new_token: str | None) -> None:
        if new_token:
            self.refresh_token = new_token


@dataclasses.dataclass(frozen=True)
class SalesforceAccess:
    instance_url: str
    client_id: str
    client_secret: str
    ca_file: Path | None
    tokens: TokenChain

    @classmethod
    def from_env(cls, env: dict[str, str]) -> SalesforceAccess:
        """From ``client_env`` of the Salesforce sandbox (``REVLOOP_SALESFORCE_*`` keys)."""
        ca_file = env.get("REVLOOP_SALESFORCE_CA_FILE")
        return cls(
            instance_url=_require(env, "REVLOOP_SALESFORCE_INSTANCE_URL", "salesforce").rstrip("/"),
            client_id=_require(env, "REVLOOP_SALESFORCE_CLIENT_ID", "salesforce"),
            client_secret=_require(env, "REVLOOP_SALESFORCE_CLIENT_SECRET", "salesforce"),
            ca_file=Path(ca_file) if ca_file else None,
            tokens=TokenChain(_require(env, "REVLOOP_SALESFORCE_REFRESH_TOKEN", "salesforce")),
        )

    @property
    def login_origin(self) -> str:
        """Where the token endpoint is: the sandbox serves ``/services/oauth2/token`` on its instance URL."""
        return self.instance_url

    def redirects(self) -> dict[str, str]:
        return {origin: self.login_origin for origin in SALESFORCE_LOGIN_ORIGINS}


@dataclasses.dataclass(frozen=True)
class PaymentsAccess:
    api_base: str
    secret_key: str
    account_id: str

    @classmethod
    def from_env(cls, env: dict[str, str]) -> PaymentsAccess:
        """From ``client_env`` of the payments sandbox (``REVLOOP_PAYMENTS_*`` keys)."""
        return cls(
            api_base=_require(env, "REVLOOP_PAYMENTS_API_BASE", "payments").rstrip("/"),
            # Extractors only read: prefer the restricted read key when the sandbox issues one.
            secret_key=(
                env.get("REVLOOP_PAYMENTS_READER_KEY") or _require(env, "REVLOOP_PAYMENTS_SECRET_KEY", "payments")
            ),
            account_id=_require(env, "REVLOOP_PAYMENTS_ACCOUNT_ID", "payments"),
        )

    def redirects(self) -> dict[str, str]:
        return {STRIPE_API_ORIGIN: self.api_base}
