"""The ERP (Odoo): an odoo-client-lib connection over the JSON-2 API with a bearer API key."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import odoolib

from revloop.settings import ErpSettings


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
