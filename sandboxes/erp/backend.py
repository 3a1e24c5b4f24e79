"""The ERP sandbox as a :class:`~sandboxes.common.app.SandboxBackend`: store, routes, counters' hooks."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from sandboxes.common.app import json_response
from sandboxes.common.config import SandboxConfig
from sandboxes.common.faults import ADMIN_PREFIX, FaultState
from sandboxes.erp import accounting  # noqa: F401  (registers the accounting hooks on the ORM)
from sandboxes.erp.access import BY_LOGIN, DATABASE, Credentials
from sandboxes.erp.app import ErpRoutes
from sandboxes.erp.errors import OdooFaultRenderer
from sandboxes.erp.methods import METHODS
from sandboxes.erp.seed import seed
from sandboxes.erp.store import Store

logger = logging.getLogger(__name__)

STORE_FILE = "erp.sqlite3"
CREDENTIALS_FILE = "credentials.json"
_JSON2_PATH = re.compile(r"^/json/2/[^/]+/([^/]+)$")


class ErpBackend:
    """Odoo 19 imitated: JSON-2, JSON-RPC and XML-RPC over one SQLite store."""

    name = "erp"

    def __init__(self, config: SandboxConfig, faults: FaultState) -> None:
        self.config = config
        self.faults = faults
        self.renderer = OdooFaultRenderer()
        self.credentials = Credentials(config.system_dir / CREDENTIALS_FILE)
        self.store = Store(config.system_dir / STORE_FILE)
        if self.store.meta("seed") is None:
            seed(self.store, config.seed, config.scale)
        self._routes = ErpRoutes(self.store, self.credentials)

    def routes(self) -> Sequence[BaseRoute]:
        return self._routes.routes()

    def admin_routes(self) -> Sequence[BaseRoute]:
        async def credentials(request: Request) -> Response:
            return json_response({
                "database": DATABASE,
                "users": [{"login": login, "uid": BY_LOGIN[login].uid, "api_key": key}
                          for login, key in self.credentials.keys.items() if login in BY_LOGIN],
            })

        return [Route(f"{ADMIN_PREFIX}/erp/credentials", credentials, methods=["GET"])]

    def client_of(self, scope: Scope) -> str:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                user = self.credentials.user_of_key(value.decode("latin-1").partition(" ")[2].strip())
                return user.login if user else "unauthenticated"
        return "rpc" if scope.get("path", "").startswith(("/jsonrpc", "/xmlrpc")) else "anonymous"

    def is_write(self, scope: Scope) -> bool:
        # Only JSON-2 names the method in the URL; RPC calls name it in the body, which is not read here.
        match = _JSON2_PATH.match(scope.get("path", ""))
        method = METHODS.get(match.group(1)) if match else None
        return method is not None and method.operation != "read"

    def reset(self, seed_value: int, scale: str) -> dict[str, Any]:
        self.store.wipe()
        return seed(self.store, seed_value, scale)

    def stats(self) -> dict[str, Any]:
        return self.store.counts()

    async def startup(self) -> None:
        logger.info("ERP sandbox ready: database %r, %s", DATABASE, self.stats())

    async def shutdown(self) -> None:
        self.store.close()


def client_env(config: SandboxConfig) -> dict[str, str]:
    """The ``REVLOOP_ERP_*`` settings a client needs (the sync key writes, the reader key only reads)."""
    credentials = Credentials(config.system_dir / CREDENTIALS_FILE)
    return {
        "REVLOOP_ERP_URL": config.base_url,
        "REVLOOP_ERP_DATABASE": DATABASE,
        "REVLOOP_ERP_LOGIN": "revloop-sync",
        "REVLOOP_ERP_API_KEY": credentials.keys["revloop-sync"],
        "REVLOOP_ERP_READER_LOGIN": "revloop-reader",
        "REVLOOP_ERP_READER_API_KEY": credentials.keys["revloop-reader"],
    }
