"""Fixtures: one Salesforce sandbox per test session and simple-salesforce clients logged in through OAuth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from revloop.http import pinned_session
from tests.sandbox_harness import RunningSandbox, start_sandbox

API_VERSION = "62.0"

_open_sessions: list[requests.Session] = []
"""Client sessions made by the helpers below; closed before a sandbox stops, since the server waits for
kept-alive connections to close before it exits."""


def close_client_sessions() -> None:
    while _open_sessions:
        _open_sessions.pop().close()


def stop_sandbox(running: RunningSandbox) -> None:
    close_client_sessions()
    running.stop()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    running = start_sandbox("salesforce", tmp_path_factory.mktemp("salesforce-sandbox"))
    try:
        yield running
    finally:
        stop_sandbox(running)


def _session(sandbox: RunningSandbox) -> requests.Session:
    session = pinned_session(sandbox.base_url, sandbox.ca_file)
    _open_sessions.append(session)
    return session


@pytest.fixture(scope="session")
def env(sandbox: RunningSandbox) -> dict[str, str]:
    return sandbox.env()


@pytest.fixture(scope="session")
def apps(sandbox: RunningSandbox) -> dict[str, dict[str, str]]:
    """Every connected app's credentials, as the admin endpoint lists them."""
    return sandbox.admin("GET", "salesforce/apps")["apps"]


def request_token(sandbox: RunningSandbox, form: dict[str, str]) -> Any:
    """POST to the OAuth token endpoint through a session that trusts only the sandbox CA."""
    return _session(sandbox).post(f"{sandbox.base_url}/services/oauth2/token", data=form, timeout=30)


def client_for(sandbox: RunningSandbox, access_token: str, instance_url: str | None = None) -> Salesforce:
    return Salesforce(
        instance_url=instance_url or sandbox.base_url,
        session_id=access_token,
        session=_session(sandbox),
        version=API_VERSION,
    )


def login(sandbox: RunningSandbox, app: dict[str, str]) -> Salesforce:
    """Log in with the client-credentials grant and return a client using the issued token."""
    response = request_token(
        sandbox,
        {"grant_type": "client_credentials", "client_id": app["client_id"], "client_secret": app["client_secret"]},
    )
    response.raise_for_status()
    body = response.json()
    return client_for(sandbox, body["access_token"], body["instance_url"])


@pytest.fixture()
def connect(sandbox: RunningSandbox, apps: dict[str, dict[str, str]]) -> Callable[[str], Salesforce]:
    return lambda name: login(sandbox, apps[name])


@pytest.fixture()
def sf(connect: Callable[[str], Salesforce]) -> Salesforce:
    """The sync service's client (reads everything, writes Account, Opportunity, Invoice__c, Subscription__c)."""
    return connect("revloop-sync")


@pytest.fixture()
def sf_admin(connect: Callable[[str], Salesforce]) -> Salesforce:
    return connect("revloop-admin")


@pytest.fixture()
def no_faults(sandbox: RunningSandbox) -> Iterator[None]:
    sandbox.admin("PUT", "faults", {"profile": "none"})
    yield
    sandbox.admin("PUT", "faults", {"profile": "none"})


def error_code(exc: Exception) -> str:
    """The ``errorCode`` of the first error in a simple-salesforce exception's body."""
    content = exc.content  # type: ignore[attr-defined]
    return content[0]["errorCode"]
