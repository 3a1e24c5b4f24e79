"""The payments sandbox as a :class:`~sandboxes.common.app.SandboxBackend`."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import Headers
from starlette.routing import BaseRoute
from starlette.types import Scope

from sandboxes.common.config import SandboxConfig
from sandboxes.common.faults import FaultState
from sandboxes.payments import objects
from sandboxes.payments.admin import AdminRoutes
from sandboxes.payments.api import Api
from sandboxes.payments.errors import StripeFaultRenderer
from sandboxes.payments.idempotency import IdempotencyKeys
from sandboxes.payments.keys import KeyRing, load_credentials
from sandboxes.payments.seed import Seeder
from sandboxes.payments.service import Service
from sandboxes.payments.store import Store
from sandboxes.payments.webhooks import BackgroundWork

logger = logging.getLogger(__name__)

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8444/webhooks/payments"
DEFAULT_ENDPOINT_META = "default_webhook_endpoint"


class PaymentsBackend:
    """State, routes and background work of the Stripe-compatible sandbox."""

    name = "payments"

    def __init__(self, config: SandboxConfig, faults: FaultState) -> None:
        self.config = config
        self.renderer = StripeFaultRenderer()
        self.credentials = load_credentials(config.system_dir)
        self.store = Store(config.system_dir / "payments.sqlite3")
        self.svc = Service(self.store, faults, self.credentials["account_id"])
        self.keys = KeyRing(self.store, config.system_dir, self.credentials["account_id"])
        self.keys.ensure_defaults(self.credentials)
        self.idempotency = IdempotencyKeys(self.store)
        self.work = BackgroundWork(self.svc, self.idempotency.prune)
        self.api = Api(self.svc, self.keys, self.idempotency)
        self.admin = AdminRoutes(self.svc, self.keys, self.work)
        if self.store.get_meta("seeded_scale") is None:
            self._seed(config.seed, config.scale)

    # -- SandboxBackend ---------------------------------------------------------------------------------

    def routes(self) -> Sequence[BaseRoute]:
        return self.api.routes()

    def admin_routes(self) -> Sequence[BaseRoute]:
        return self.admin.routes()

    def client_of(self, scope: Scope) -> str:
        return self.keys.label(Headers(scope=scope).get("authorization"))

    def is_write(self, scope: Scope) -> bool:
        return scope.get("method") in ("POST", "DELETE") and scope.get("path", "").startswith("/v1/")

    def reset(self, seed: int, scale: str) -> dict[str, Any]:
        self.store.wipe()
        return self._seed(seed, scale)

    def stats(self) -> dict[str, Any]:
        counts = self.store.counts_by_kind()
        pending = self.store.conn.execute("SELECT count(*) FROM deliveries WHERE state = 'pending'").fetchone()[0]
        return {**counts, "pending_webhook_deliveries": pending}

    async def startup(self) -> None:
        await self.work.start()

    async def shutdown(self) -> None:
        await self.work.stop()
        self.store.close()

    # -- seeding ----------------------------------------------------------------------------------------

    def _seed(self, seed: int, scale: str) -> dict[str, Any]:
        anchor = self.store.get_meta("anchor_date")
        if anchor is None:
            anchor = dt.datetime.now(dt.UTC).date().isoformat()
            with self.store.transaction():
                self.store.set_meta("anchor_date", anchor)
        counts = Seeder(self.store, self.credentials["account_id"], dt.date.fromisoformat(anchor)).run(seed, scale)
        with self.store.transaction():
            self._create_default_endpoint()
            self.store.set_meta("seeded_scale", scale)
            self.store.set_meta("seeded_seed", str(seed))
        return counts

    def _create_default_endpoint(self) -> None:
        """The endpoint the platform's own webhook receiver listens on, with the secret clients are given."""
        url = os.environ.get("REVLOOP_SANDBOX_WEBHOOK_URL", DEFAULT_WEBHOOK_URL)
        endpoint = objects.webhook_endpoint(
            "we_" + self.credentials["account_id"][5:] + "default", int(time.time()), url, ["*"],
            description="Revloop platform receiver",
        )
        self.store.insert(endpoint, tag="enabled")
        self.store.set_meta(f"endpoint_secret:{endpoint['id']}", self.credentials["webhook_secret"])
        self.store.set_meta(DEFAULT_ENDPOINT_META, endpoint["id"])
