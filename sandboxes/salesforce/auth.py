"""OAuth 2.0 for the sandbox org: connected apps, access tokens with a TTL, rotating refresh tokens.

Refresh tokens rotate: each refresh answers with a new one and marks the presented one used. Presenting a
used token again is treated as theft (as OAuth 2.0 security best practice recommends): the whole family
descended from the original grant is revoked, access tokens included.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import secrets
import time
from pathlib import Path
from typing import Any

from sandboxes.book import salesforce_id
from sandboxes.common.credentials import load_or_create, token
from sandboxes.common.faults import FaultState
from sandboxes.salesforce.errors import OAuthError, invalid_session
from sandboxes.salesforce.permissions import PERMISSION_SETS, PermissionSet
from sandboxes.salesforce.schema import ORG_KEY_PREFIX, USER_KEY_PREFIX
from sandboxes.salesforce.store import SalesforceStore

DEFAULT_TOKEN_TTL_SECONDS = 7200
MAIN_APP = "revloop-sync"


@dataclasses.dataclass(frozen=True)
class ConnectedApp:
    """A connected app and the integration user it runs as."""

    name: str
    client_id: str
    client_secret: str
    username: str
    password: str
    user_id: str
    rotate_refresh_tokens: bool = True

    @property
    def permissions(self) -> PermissionSet:
        return PERMISSION_SETS[self.name]


@dataclasses.dataclass(frozen=True)
class ApiSession:
    """Who is calling: the app, its user and what they may touch."""

    token: str
    app: ConnectedApp

    @property
    def user_id(self) -> str:
        return self.app.user_id

    @property
    def permissions(self) -> PermissionSet:
        return self.app.permissions


def make_credentials() -> dict[str, Any]:
    apps = {}
    for number, name in enumerate(PERMISSION_SETS, start=1):
        apps[name] = {
            "client_id": "3MVG9" + token(nbytes=30)[:80],
            "client_secret": secrets.token_hex(32).upper(),
            "username": f"{name}@revloop.sandbox",
            "password": token(nbytes=12),
            "user_id": salesforce_id(USER_KEY_PREFIX, number),
        }
    return {"org_id": salesforce_id(ORG_KEY_PREFIX, 1), "apps": apps, "initial_refresh_token": _refresh_token()}


def _refresh_token() -> str:
    return "5Aep861" + token(nbytes=60).replace("y", ".")[:80]


class OAuthService:
    """Issues and checks tokens; state lives in the store so tokens survive a restart."""

    def __init__(self, store: SalesforceStore, credentials_file: Path, faults: FaultState, instance_url: str) -> None:
        self.store = store
        self.faults = faults
        self.instance_url = instance_url
        self.credentials = load_or_create(credentials_file, make_credentials)
        self.org_id: str = self.credentials["org_id"]
        self.apps = {name: ConnectedApp(name=name, **data) for name, data in self.credentials["apps"].items()}
        self._by_client_id = {app.client_id: app for app in self.apps.values()}
        self._access_cache: dict[str, tuple[str, float]] = {}
        db = store.db
        db.execute(
            "CREATE TABLE IF NOT EXISTS oauth_access (token TEXT PRIMARY KEY, app TEXT, issued_at REAL,"
            " family TEXT, revoked INTEGER DEFAULT 0)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS oauth_refresh (token TEXT PRIMARY KEY, app TEXT, issued_at REAL,"
            " family TEXT, used INTEGER DEFAULT 0, revoked INTEGER DEFAULT 0)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS ix_oauth_access_family ON oauth_access (family)")
        db.execute("CREATE INDEX IF NOT EXISTS ix_oauth_refresh_family ON oauth_refresh (family)")
        # The first start's refresh token, so tools that only know the refresh grant can log in.
        db.execute(
            "INSERT OR IGNORE INTO oauth_refresh (token, app, issued_at, family) VALUES (?, ?, ?, ?)",
            (self.credentials["initial_refresh_token"], MAIN_APP, time.time(), secrets.token_hex(8)),
        )

    # ---- token endpoint -----------------------------------------------------------------------------

    def token_endpoint(self, form: dict[str, str]) -> dict[str, Any]:
        """Answer a ``/services/oauth2/token`` POST; raises :class:`OAuthError`."""
        grant = form.get("grant_type", "")
        if grant not in ("client_credentials", "refresh_token", "password"):
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        app = self._by_client_id.get(form.get("client_id", ""))
        if app is None:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        secret = form.get("client_secret")
        if grant == "refresh_token":
            # Refresh may omit the secret only for public clients; every app here is confidential.
            if secret is not None and not hmac.compare_digest(secret, app.client_secret):
                raise OAuthError("invalid_client", "invalid client credentials")
            return self._refresh(app, form.get("refresh_token", ""))
        if secret is None or not hmac.compare_digest(secret, app.client_secret):
            raise OAuthError("invalid_client", "invalid client credentials")
        if grant == "password":
            if form.get("username") != app.username or form.get("password") != app.password:
                raise OAuthError("invalid_grant", "authentication failure")
            family = secrets.token_hex(8)
            return self._grant(app, family, with_refresh=True)
        return self._grant(app, secrets.token_hex(8), with_refresh=False)

    def _refresh(self, app: ConnectedApp, presented: str) -> dict[str, Any]:
        row = self.store.db.execute(
            "SELECT app, family, used, revoked FROM oauth_refresh WHERE token = ?", (presented,)
        ).fetchone()
        if row is None or row[0] != app.name or row[3]:
            raise OAuthError("invalid_grant", "expired access/refresh token")
        family = row[1]
        if row[2] and app.rotate_refresh_tokens:
            self.revoke_family(family)
            raise OAuthError("invalid_grant", "expired access/refresh token")
        if app.rotate_refresh_tokens:
            self.store.db.execute("UPDATE oauth_refresh SET used = 1 WHERE token = ?", (presented,))
        return self._grant(app, family, with_refresh=app.rotate_refresh_tokens)

    def _grant(self, app: ConnectedApp, family: str, with_refresh: bool) -> dict[str, Any]:
        issued_at = time.time()
        access = f"{self.org_id[:15]}!AQ" + token(nbytes=72)[:96]
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO oauth_access (token, app, issued_at, family) VALUES (?, ?, ?, ?)",
                (access, app.name, issued_at, family),
            )
            refresh = None
            if with_refresh:
                refresh = _refresh_token()
                db.execute(
                    "INSERT INTO oauth_refresh (token, app, issued_at, family) VALUES (?, ?, ?, ?)",
                    (refresh, app.name, issued_at, family),
                )
        self._access_cache[access] = (app.name, issued_at)
        issued_ms = str(int(issued_at * 1000))
        identity = self.identity_url(app)
        signature = base64.b64encode(
            hmac.new(app.client_secret.encode(), (identity + issued_ms).encode(), hashlib.sha256).digest()
        ).decode()
        body: dict[str, Any] = {
            "access_token": access,
            "signature": signature,
            "scope": "api refresh_token" if with_refresh else "api",
            "instance_url": self.instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_ms,
        }
        if refresh:
            body["refresh_token"] = refresh
        return body

    def identity_url(self, app: ConnectedApp) -> str:
        return f"{self.instance_url}/id/{self.org_id}/{app.user_id}"

    def revoke_family(self, family: str) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE oauth_refresh SET revoked = 1 WHERE family = ?", (family,))
            revoked = [r[0] for r in db.execute("SELECT token FROM oauth_access WHERE family = ?", (family,))]
            db.execute("UPDATE oauth_access SET revoked = 1 WHERE family = ?", (family,))
        for access in revoked:
            self._access_cache.pop(access, None)

    def issue_refresh_token(self, app_name: str) -> str:
        """A refresh token starting a new family (the admin endpoint's way to hand out logins)."""
        refresh = _refresh_token()
        self.store.db.execute(
            "INSERT INTO oauth_refresh (token, app, issued_at, family) VALUES (?, ?, ?, ?)",
            (refresh, self.apps[app_name].name, time.time(), secrets.token_hex(8)),
        )
        return refresh

    def expire_all(self) -> int:
        """Make every access token expired now (refresh tokens stay valid)."""
        cursor = self.store.db.execute("UPDATE oauth_access SET revoked = 1 WHERE revoked = 0")
        self._access_cache.clear()
        return cursor.rowcount

    # ---- checking requests --------------------------------------------------------------------------

    @property
    def ttl_seconds(self) -> float:
        # Read at each check, so a fault-profile change applies to tokens already issued.
        return float(self.faults.config.token_ttl_seconds or DEFAULT_TOKEN_TTL_SECONDS)

    def _lookup(self, access: str) -> tuple[str, float] | None:
        cached = self._access_cache.get(access)
        if cached is not None:
            return cached
        row = self.store.db.execute(
            "SELECT app, issued_at FROM oauth_access WHERE token = ? AND revoked = 0", (access,)
        ).fetchone()
        if row is None:
            return None
        self._access_cache[access] = (row[0], row[1])
        return row[0], row[1]

    def authenticate(self, authorization: str | None) -> ApiSession:
        """The session behind an ``Authorization: Bearer <token>`` header; raises INVALID_SESSION_ID."""
        if not authorization:
            raise invalid_session()
        scheme, _, access = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not access:
            raise invalid_session()
        found = self._lookup(access.strip())
        if found is None or time.time() - found[1] > self.ttl_seconds:
            raise invalid_session()
        return ApiSession(access.strip(), self.apps[found[0]])

    def client_label(self, authorization: str | None) -> str:
        """The app name behind a header, for the request counters (no expiry check)."""
        if not authorization:
            return "anonymous"
        found = self._lookup(authorization.partition(" ")[2].strip())
        return found[0] if found else "unauthenticated"
