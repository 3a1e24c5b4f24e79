"""Salesforce: OAuth2 token requests and a simple-salesforce client that trusts the configured CA."""

from __future__ import annotations

import dataclasses
import logging
import time

import requests
from simple_salesforce import Salesforce

from revloop.http import pinned_session
from revloop.settings import SalesforceSettings

logger = logging.getLogger(__name__)


class SalesforceAuthError(RuntimeError):
    """The token endpoint refused our credentials (the body's ``error`` code is kept)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error


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
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        raise SalesforceAuthError(
            str(body.get("error", response.status_code)), str(body.get("error_description", response.text[:200]))
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
