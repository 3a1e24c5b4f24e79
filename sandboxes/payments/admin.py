"""``/__sandbox__/payments/...``: delivery attempts, flushing, settlement, timing settings and API keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandboxes.common.app import json_response
from sandboxes.common.faults import ADMIN_PREFIX
from sandboxes.payments import charging
from sandboxes.payments.keys import KeyRing
from sandboxes.payments.service import RuntimeSettings, Service
from sandboxes.payments.webhooks import BackgroundWork

PREFIX = f"{ADMIN_PREFIX}/payments"


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    body = orjson.loads(raw or b"{}")
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def _bad(exc: Exception) -> Response:
    return json_response({"error": str(exc)}, 400)


class AdminRoutes:
    """Operator endpoints for tests and demos; none of them exists on the real service."""

    def __init__(self, svc: Service, keys: KeyRing, work: BackgroundWork) -> None:
        self.svc = svc
        self.keys = keys
        self.work = work

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route(f"{PREFIX}/deliveries", self.deliveries, methods=["GET"]),
            Route(f"{PREFIX}/deliveries/flush", self.flush, methods=["POST"]),
            Route(f"{PREFIX}/settlements/advance", self.advance, methods=["POST"]),
            Route(f"{PREFIX}/settings", self.get_settings, methods=["GET"]),
            Route(f"{PREFIX}/settings", self.put_settings, methods=["PUT", "POST"]),
            Route(f"{PREFIX}/keys", self.list_keys, methods=["GET"]),
            Route(f"{PREFIX}/keys", self.create_key, methods=["POST"]),
            Route(f"{PREFIX}/keys/roll", self.roll_key, methods=["POST"]),
        ]

    async def deliveries(self, request: Request) -> Response:
        """Delivery attempts, newest first; ``?endpoint=we_...&state=pending&event=evt_...&limit=N``."""
        query = request.query_params
        where, args = ["1 = 1"], []
        for param, column in (("endpoint", "d.endpoint_id"), ("state", "d.state"), ("event", "d.event_id")):
            if query.get(param):
                where.append(f"{column} = ?")
                args.append(query[param])
        try:
            limit = max(1, min(1000, int(query.get("limit", "100"))))
        except ValueError as exc:
            return _bad(exc)
        rows = self.svc.store.conn.execute(
            "SELECT d.id, d.endpoint_id, d.event_id, e.tag, d.state, d.attempts, d.next_attempt_at, d.last_status,"
            " d.last_error, d.duplicate, d.created, d.updated"
            " FROM deliveries d LEFT JOIN objects e ON e.id = d.event_id"
            f" WHERE {' AND '.join(where)} ORDER BY d.id DESC LIMIT ?", (*args, limit),
        ).fetchall()
        keys = ("id", "endpoint_id", "event_id", "event_type", "state", "attempts", "next_attempt_at", "last_status",
                "last_error", "duplicate", "created", "updated")
        data = [dict(zip(keys, row, strict=True)) for row in rows]
        for entry in data:
            entry["duplicate"] = bool(entry["duplicate"])
            if entry["state"] != "pending":
                entry["next_attempt_at"] = None
        return json_response({"data": data})

    async def flush(self, request: Request) -> Response:
        """Attempt every pending delivery now, whatever its backoff; repeats until none is left or 20 passes."""
        attempted = 0
        for _ in range(20):
            sent = await self.work.deliver_due(everything=True)
            attempted += sent
            if not sent:
                break
        pending = self.svc.store.conn.execute("SELECT count(*) FROM deliveries WHERE state = 'pending'").fetchone()[0]
        return json_response({"attempted": attempted, "pending": pending})

    async def advance(self, request: Request) -> Response:
        """Settle every processing (asynchronous) payment now."""
        settled = charging.settle_due(self.svc, force=True)
        return json_response({"settled": settled})

    async def get_settings(self, request: Request) -> Response:
        return json_response(dataclasses.asdict(self.svc.settings))

    async def put_settings(self, request: Request) -> Response:
        try:
            body = await _json_body(request)
            merged = {**dataclasses.asdict(self.svc.settings), **body}
            settings = RuntimeSettings(**merged)
            for field in dataclasses.fields(settings):
                if float(getattr(settings, field.name)) < 0:
                    raise ValueError(f"{field.name} must not be negative")
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            return _bad(exc)
        self.svc.settings = settings
        return json_response(dataclasses.asdict(settings))

    async def list_keys(self, request: Request) -> Response:
        return json_response({"data": self.keys.describe()})

    async def create_key(self, request: Request) -> Response:
        """Make a restricted key: ``{"name": ..., "permissions": {"customers": "read", "*": "none"}}``."""
        try:
            body = await _json_body(request)
            permissions = body.get("permissions") or {}
            if not isinstance(permissions, dict):
                raise ValueError("permissions must be an object of resource -> none|read|write")
            key = self.keys.create_restricted(str(body.get("name") or "restricted"), permissions)
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            return _bad(exc)
        return json_response({"name": key.name, "secret": key.secret, "permissions": key.permissions})

    async def roll_key(self, request: Request) -> Response:
        """Roll a key (the secret key by default): ``{"key": ..., "expires_in_seconds": 3600}``."""
        try:
            body = await _json_body(request)
            from sandboxes.payments.keys import load_credentials

            current = str(body.get("key") or load_credentials(self.keys.system_dir)["secret_key"])
            expires_in = int(body.get("expires_in_seconds", 3600))
            new, old = self.keys.roll(current, expires_in)
        except KeyError:
            return json_response({"error": "no such key"}, 404)
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            return _bad(exc)
        return json_response({"secret": new.secret, "previous_expires_at": old.expires_at, "name": new.name})
