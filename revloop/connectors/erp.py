"""The ERP (Odoo): an odoo-client-lib connection over the JSON-2 API with a bearer API key.

Writes and ad-hoc calls go through odoolib (:func:`connect`). Bulk reads go through :class:`Json2Reader`,
which speaks the same JSON-2 protocol on the URL and headers odoolib builds, because odoolib's JSON-2
proxy cannot serve a loader: it posts with the module-level ``httpx.post`` (a new connection per call),
decodes with the standard ``json`` module, and raises ``ValueError("Unexpected status code ...")`` without
the response headers, so the ``Retry-After`` of a 429 cannot be honoured.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
import odoolib
import orjson

from revloop.settings import ErpSettings

logger = logging.getLogger(__name__)

READ_TIMEOUT_SECONDS = 120.0
"""A search_read of a large page on a busy server can take tens of seconds."""

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
PERMANENT_SERVER_ERRORS = ("builtins.", "odoo.exceptions.")
"""Error names of a 500 that a retry cannot fix: a bad domain or field (``builtins.ValueError``), an Odoo
business error. Others (``werkzeug...InternalServerError`` from the proxy, ``psycopg2...SerializationFailure``
once Odoo's own retries are spent, a database restart) are transient."""


def connect(settings: ErpSettings, *, reader: bool = False) -> Any:
    """An odoolib JSON-2 connection (``json2s`` for https URLs) using the sync or the read-only key."""
    if not settings.url or not settings.database:
        raise ValueError("REVLOOP_ERP_URL and REVLOOP_ERP_DATABASE must be set")
    key = settings.reader_api_key if reader and settings.reader_api_key else settings.api_key
    if key is None:
        raise ValueError("REVLOOP_ERP_API_KEY is not set")
    parts = urlsplit(settings.url)
    secure = parts.scheme == "https"
    return odoolib.get_connection(
        hostname=parts.hostname,
        port=parts.port or (443 if secure else 80),
        protocol="json2s" if secure else "json2",
        database=settings.database,
        password=key.get_secret_value(),
    )


class OdooApiError(Exception):
    """An error answer of Odoo's JSON-2 API: HTTP status, Odoo's exception name and message."""

    def __init__(self, status: int, name: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {name}: {message}")
        self.status = status
        self.name = name
        self.message = message
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Whether the same call may succeed later (throttling, overload, a serialization failure)."""
        if self.status not in TRANSIENT_STATUSES:
            return False
        return not (self.status == 500 and self.name.startswith(PERMANENT_SERVER_ERRORS))


def is_transient(exc: BaseException) -> bool:
    """The retry classification of the ERP: transient API errors, timeouts and broken connections."""
    if isinstance(exc, OdooApiError):
        return exc.transient
    return isinstance(exc, httpx.TransportError)


def retry_after(exc: BaseException) -> float | None:
    """The delay the server asked for (``Retry-After`` of a 429 or 503), if any."""
    return exc.retry_after if isinstance(exc, OdooApiError) else None


class Json2Reader:
    """Calls of ``POST /json/2/<model>/<method>`` on one pooled HTTP connection, decoded with orjson."""

    def __init__(self, settings: ErpSettings, *, reader: bool = True, timeout: float = READ_TIMEOUT_SECONDS) -> None:
        connection = connect(settings, reader=reader)
        self.base_url: str = connection.connector.url
        self._client = httpx.Client(
            headers=connection.bearer_header, timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
        )

    def __enter__(self) -> Json2Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def call(self, model: str, method: str, **arguments: Any) -> Any:
        """One call with named arguments; raises :class:`OdooApiError` or an ``httpx.TransportError``."""
        response = self._client.post(f"{self.base_url}{model}/{method}", content=orjson.dumps(arguments))
        if response.status_code == 200:
            return orjson.loads(response.content)
        raise _error_of(response)


def _error_of(response: httpx.Response) -> OdooApiError:
    name, message = f"http.{response.status_code}", response.text[:500]
    try:
        body = orjson.loads(response.content)
        if isinstance(body, dict):
            name = str(body.get("name") or name)
            message = str(body.get("message") or message)
    except orjson.JSONDecodeError:
        pass  # a proxy's HTML page: keep its text
    wait = None
    header = response.headers.get("retry-after")
    if header is not None:
        try:
            wait = max(0.0, float(header))
        except ValueError:
            wait = None  # an HTTP date: fall back to backoff
    return OdooApiError(response.status_code, name, message, wait)
