"""HTTP sessions that trust exactly the CA a system is configured with.

``requests`` lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` from the environment override the ``verify``
set on a ``Session`` (``Session.merge_environment_settings``), so a client told to trust a private CA
still fails with CERTIFICATE_VERIFY_FAILED on machines that set those variables for their own proxies.
The adapter below fixes ``verify`` per request, after that merge, for the one base URL it is mounted on;
proxies and every other environment setting keep working, and other hosts keep the default trust.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter


class PinnedCAAdapter(HTTPAdapter):
    """A transport adapter that always verifies TLS against one CA bundle."""

    def __init__(self, ca_file: Path | str, **kwargs: Any) -> None:
        self.ca_file = str(ca_file)
        if not Path(self.ca_file).is_file():
            raise FileNotFoundError(f"CA file not found: {self.ca_file}")
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["verify"] = self.ca_file
        return super().send(request, **kwargs)


def pinned_session(base_url: str, ca_file: Path | str | None) -> requests.Session:
    """A ``requests.Session`` whose requests to ``base_url`` trust only ``ca_file`` (or the default CAs if None)."""
    session = requests.Session()
    if ca_file is not None:
        adapter = PinnedCAAdapter(ca_file, pool_connections=4, pool_maxsize=16)
        session.mount(base_url.rstrip("/") + "/", adapter)
        session.verify = str(ca_file)
    return session
