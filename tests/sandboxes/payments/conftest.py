"""Fixtures: one payments sandbox per test session, the stripe SDK pointed at it, and a webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import stripe

from tests.sandbox_harness import RunningSandbox, free_port, start_sandbox


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    running = start_sandbox("payments", tmp_path_factory.mktemp("payments-sandbox"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def env(sandbox: RunningSandbox) -> dict[str, str]:
    return sandbox.env()


def make_client(sandbox: RunningSandbox, api_key: str, retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(api_key, base_addresses={"api": sandbox.base_url}, max_network_retries=retries)


@pytest.fixture(scope="session")
def client(sandbox: RunningSandbox, env: dict[str, str]) -> stripe.StripeClient:
    return make_client(sandbox, env["REVLOOP_PAYMENTS_SECRET_KEY"])


@pytest.fixture()
def no_faults(sandbox: RunningSandbox) -> Iterator[None]:
    sandbox.admin("PUT", "faults", {"profile": "none"})
    yield
    sandbox.admin("PUT", "faults", {"profile": "none"})


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


class WebhookReceiver:
    """A small HTTP server that verifies each delivery with ``stripe.Webhook.construct_event``."""

    def __init__(self, secret: str | None = None, fail_first: int = 0) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.events: list[stripe.Event] = []
        self.rejected: list[str] = []
        self.requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                payload = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests += 1
                    failing = receiver.requests <= receiver.fail_first
                if failing:
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    event = stripe.Webhook.construct_event(payload, self.headers.get("Stripe-Signature"),
                                                           receiver.secret or "")
                except (stripe.SignatureVerificationError, ValueError) as exc:
                    receiver.rejected.append(str(exc))
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.events.append(event)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(json.dumps({"received": True}).encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks"

    def ids(self) -> list[str]:
        with self._lock:
            return [event.id for event in self.events]

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver(client: stripe.StripeClient) -> Iterator[tuple[WebhookReceiver, Any]]:
    """A receiver registered as a webhook endpoint for every event; removed afterwards."""
    with WebhookReceiver() as rec:
        endpoint = client.v1.webhook_endpoints.create(params={"url": rec.url, "enabled_events": ["*"]})
        rec.secret = endpoint.secret
        try:
            yield rec, endpoint
        finally:
            client.v1.webhook_endpoints.delete(endpoint.id)


def raw(sandbox: RunningSandbox, api_key: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request the SDK cannot express (malformed bodies, odd headers)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    headers.update(kwargs.pop("headers", {}))
    with httpx.Client(base_url=sandbox.base_url, timeout=30) as http:
        return http.request(method, path, headers=headers, **kwargs)
