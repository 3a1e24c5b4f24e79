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


def salesforce_bulk_jobs_used(env: dict[str, str]) -> int | None:
    """Bulk API 2.0 query jobs the org has created today, as its ``/limits`` reports them.

    Read before and after a participant, the difference says whether it loaded through Bulk 2.0 (and in
    how many jobs) without looking inside the sandbox. Logs in with the read-only app's client
    credentials, so the peers' rotating refresh token is left alone. None when the org cannot be asked.
    """
    from revloop.http import pinned_session  # the benchmark's own process only

    instance = env.get("REVLOOP_SALESFORCE_INSTANCE_URL", "").rstrip("/")
    client_id = env.get("REVLOOP_SALESFORCE_READER_CLIENT_ID")
    secret = env.get("REVLOOP_SALESFORCE_READER_CLIENT_SECRET")
    version = env.get("REVLOOP_SALESFORCE_API_VERSION", "62.0")
    if not (instance and client_id and secret):
        return None
    ca_file = env.get("REVLOOP_SALESFORCE_CA_FILE")
    with pinned_session(instance, Path(ca_file) if ca_file else None) as session:
        token = session.post(
            f"{instance}/services/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
            timeout=30,
        )
        if token.status_code != 200:
            return None
        limits = session.get(
            f"{instance}/services/data/v{version}/limits",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=30,
        )
        if limits.status_code != 200:
            return None
        jobs = limits.json().get("DailyBulkV2QueryJobs", {})
        return int(jobs["Max"]) - int(jobs["Remaining"]) if "Max" in jobs and "Remaining" in jobs else None
