"""Sends a peer's HTTP requests for a vendor's public host to the local sandbox, below the peer's own code.

This file runs inside a peer's own virtualenv (not Revloop's), so it uses only the standard library and
``requests``, which every peer here already ships. The redirect is installed on
``requests.adapters.HTTPAdapter.send``, the last step before a request leaves the process: the peer builds
its URLs, headers, queries and retries exactly as it would against the vendor, and only the origin
(scheme, host, port) is swapped. The response keeps the request the peer made, so a peer that inspects
``response.request.url`` (Airbyte's Salesforce source does, to recognise its login call) sees the vendor
URL it asked for.

The mapping comes from the ``REVLOOP_PEER_REDIRECTS`` environment variable, a JSON object of
``{"https://login.salesforce.com": "https://127.0.0.1:8441", ...}``. TLS is verified as usual: the
runner points ``REQUESTS_CA_BUNDLE`` at the sandbox's CA for the peer's process.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests.adapters

REDIRECTS_VARIABLE = "REVLOOP_PEER_REDIRECTS"

logger = logging.getLogger("revloop.peer_redirect")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def install(redirects: Mapping[str, str]) -> None:
    """Send requests whose origin is a key of ``redirects`` to the origin it maps to.

    Args:
        redirects: vendor origin (``https://api.stripe.com``) -> sandbox origin (``http://127.0.0.1:8443``).
    """
    table = {_origin(vendor): urlsplit(sandbox) for vendor, sandbox in redirects.items()}
    if not table:
        return
    original_send = requests.adapters.HTTPAdapter.send

    def send(
        self: requests.adapters.HTTPAdapter, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        parts = urlsplit(request.url or "")
        target = table.get((parts.scheme.lower(), parts.netloc.lower()))
        if target is None:
            return original_send(self, request, **kwargs)
        redirected = request.copy()
        redirected.url = urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))
        # Proxies were chosen for the vendor host; the sandbox is on loopback and is reached directly.
        kwargs["proxies"] = {}
        response = original_send(self, redirected, **kwargs)
        response.request = request
        return response

    requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign,assignment]
    logger.debug("redirecting %s", ", ".join(f"{v} -> {s}" for v, s in redirects.items()))


def install_from_environment() -> None:
    """Install the redirects named in ``REVLOOP_PEER_REDIRECTS`` (nothing when it is unset)."""
    raw = os.environ.get(REDIRECTS_VARIABLE)
    if raw:
        install(json.loads(raw))
