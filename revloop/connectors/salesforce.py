"""Salesforce: OAuth2 token requests, tokens shared through the encrypted store, and simple-salesforce clients
that trust the configured CA."""

from __future__ import annotations

import dataclasses
import logging
import time

import requests
from simple_salesforce import Salesforce

from revloop.crypto import FieldCipher
from revloop.http import pinned_session
from revloop.settings import SalesforceSettings
from revloop.token_store import IssuedToken, TokenChainRevoked, TokenStore

logger = logging.getLogger(__name__)


class SalesforceAuthError(RuntimeError):
    """The token endpoint refused our credentials (the body's ``error`` code is kept)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.status = status

    @property
    def transient(self) -> bool:
        """The endpoint was unavailable or busy (5xx, 429, a rate limit), not a refusal of the credentials."""
        return self.status >= 500 or self.status == 429 or self.error == "REQUEST_LIMIT_EXCEEDED"


@dataclasses.dataclass(frozen=True)
class SalesforceToken:
    access_token: str
    instance_url: str
    issued_at: float
    refresh_token: str | None = None


def _token_url(settings: SalesforceSettings) -> str:
    if settings.token_url:
        return settings.token_url
    if not settings.instance_url:
        raise ValueError("REVLOOP_SALESFORCE_INSTANCE_URL is not set")
    return settings.instance_url.rstrip("/") + "/services/oauth2/token"


def request_token(
    settings: SalesforceSettings,
    *,
    session: requests.Session | None = None,
    refresh_token: str | None = None,
    reader: bool = False,
    timeout: float = 30.0,
) -> SalesforceToken:
    """Get an access token by the client-credentials grant, or the refresh-token grant when given one."""
    client_id = settings.reader_client_id if reader else settings.client_id
    secret = settings.reader_client_secret if reader else settings.client_secret
    if not client_id or secret is None:
        raise ValueError("the Salesforce client id and secret are not configured")
    url = _token_url(settings)
    session = session or pinned_session(settings.instance_url or url, settings.ca_file)
    form = {"client_id": client_id, "client_secret": secret.get_secret_value()}
    if refresh_token:
        form |= {"grant_type": "refresh_token", "refresh_token": refresh_token}
    else:
        form |= {"grant_type": "client_credentials"}
    response = session.post(url, data=form, timeout=timeout)
    try:
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    except ValueError:
        body = {}
    if isinstance(body, list):  # an API-style error body ([{"errorCode", "message"}]), e.g. from a proxy
        first = body[0] if body and isinstance(body[0], dict) else {}
        body = {"error": first.get("errorCode"), "error_description": first.get("message")}
    if response.status_code != 200:
        raise SalesforceAuthError(
            str(body.get("error") or response.status_code),
            str(body.get("error_description") or response.text[:200]),
            response.status_code,
        )
    return SalesforceToken(
        access_token=body["access_token"],
        instance_url=body.get("instance_url") or settings.instance_url or "",
        issued_at=time.time(),
        refresh_token=body.get("refresh_token"),
    )


def connect(settings: SalesforceSettings, *, reader: bool = False) -> Salesforce:
    """A simple-salesforce client logged in by client credentials, trusting only the configured CA."""
    session = pinned_session(settings.instance_url or "", settings.ca_file)
    token = request_token(settings, session=session, reader=reader)
    return Salesforce(
        instance_url=token.instance_url,
        session_id=token.access_token,
        session=pinned_session(token.instance_url, settings.ca_file),
        version=settings.api_version,
    )


ASSUMED_ACCESS_TOKEN_SECONDS = 15 * 60
"""Salesforce's token response carries no ``expires_in`` (the session timeout is an org setting, 2 h by
default), so a token is reused for this long at most and a 401 ``INVALID_SESSION_ID`` refreshes it earlier."""


class SharedTokens:
    """Access tokens for one connected app, shared through the encrypted :class:`~revloop.token_store.TokenStore`.

    The grant is chosen by least privilege: the read-only app by client credentials when its credentials
    are configured (the ingestion's case); otherwise the refresh-token grant when a refresh token is
    configured (the connected app rotates it, so the newest one is kept in the store and a restart or a
    second process continues the chain); otherwise client credentials of the main app.
    """

    def __init__(
        self,
        settings: SalesforceSettings,
        database_url: str,
        cipher: FieldCipher,
        *,
        session: requests.Session | None = None,
        prefer_reader: bool = True,
    ) -> None:
        self.settings = settings
        self.reader = bool(prefer_reader and settings.reader_client_id and settings.reader_client_secret)
        self.uses_refresh_token = not self.reader and settings.refresh_token is not None
        client_id = settings.reader_client_id if self.reader else settings.client_id
        if not client_id:
            raise ValueError("no Salesforce client id is configured (REVLOOP_SALESFORCE_READER_CLIENT_ID)")
        self.client_id = client_id
        self.grant = "refresh_token" if self.uses_refresh_token else "client_credentials"
        self.session = session or pinned_session(settings.instance_url or _token_url(settings), settings.ca_file)
        self.store = TokenStore(database_url, cipher, "salesforce", client_id)
        if self.uses_refresh_token:
            assert settings.refresh_token is not None
            self.store.seed_refresh_token(settings.refresh_token.get_secret_value())

    def _issue(self, refresh_token: str | None) -> IssuedToken:
        if self.uses_refresh_token and not refresh_token:
            raise TokenChainRevoked("no Salesforce refresh token is stored; authorize the connected app again")
        try:
            token = request_token(
                self.settings, session=self.session, reader=self.reader,
                refresh_token=refresh_token if self.uses_refresh_token else None,
            )
        except SalesforceAuthError as exc:
            if self.uses_refresh_token and exc.error == "invalid_grant":
                raise TokenChainRevoked(
                    "Salesforce refused the stored refresh token (revoked or replayed); authorize the connected "
                    "app again and set REVLOOP_SALESFORCE_REFRESH_TOKEN to the new token"
                ) from exc
            raise
        return IssuedToken(
            access_token=token.access_token, instance_url=token.instance_url,
            expires_in_seconds=ASSUMED_ACCESS_TOKEN_SECONDS, refresh_token=token.refresh_token,
        )

    def current(self) -> IssuedToken:
        """A token believed valid (the stored one, or a new one)."""
        return self.store.access_token(self._issue)

    def refresh(self) -> IssuedToken:
        """A new token now, whatever the stored one (rotates the refresh token under the refresh grant)."""
        return self.store.access_token(self._issue, force_refresh=True)

    def replace(self, rejected_access_token: str) -> IssuedToken:
        """A new token after Salesforce answered ``INVALID_SESSION_ID`` for ``rejected_access_token``
        (or the one another process already obtained meanwhile)."""
        return self.store.access_token(self._issue, rejected_access_token=rejected_access_token)


def client_for(token: IssuedToken, settings: SalesforceSettings, session: requests.Session) -> Salesforce:
    """A simple-salesforce client using ``token`` over ``session``."""
    return Salesforce(
        instance_url=token.instance_url or settings.instance_url,
        session_id=token.access_token,
        session=session,
        version=settings.api_version,
    )
