"""What every handler works with: the store, the account, events, expansion and Stripe's list envelope."""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from sandboxes.common.faults import FaultState
from sandboxes.payments import objects
from sandboxes.payments.errors import StripeError, invalid_param, no_such
from sandboxes.payments.params import Params
from sandboxes.payments.store import Store, dumps

MAX_PENDING_DELIVERIES_PER_ENDPOINT = 5_000
"""Past this, the oldest pending deliveries to an endpoint are dropped, so a dead URL cannot grow the store."""


@dataclasses.dataclass
class RuntimeSettings:
    """Timing knobs changeable through ``/__sandbox__/payments/settings``."""

    settlement_delay_seconds: float = 2.0
    webhook_backoff_base_seconds: float = 1.0
    webhook_backoff_cap_seconds: float = 60.0
    webhook_max_attempts: int = 10
    webhook_timeout_seconds: float = 5.0
    webhook_reorder_delay_seconds: float = 1.5


@dataclasses.dataclass
class Raw:
    """A response body already serialised (list pages splice stored JSON without re-encoding it)."""

    body: bytes
    status: int = 200


@dataclasses.dataclass
class Reply:
    """A response with an explicit status, e.g. a 402 after a declined payment was recorded."""

    body: dict[str, Any]
    status: int = 200


class Service:
    """The payments account's state and the operations shared by all resources."""

    def __init__(self, store: Store, faults: FaultState, account_id: str) -> None:
        self.store = store
        self.faults = faults
        self.account_id = account_id
        self.settings = RuntimeSettings()
        self.deliveries_ready = asyncio.Event()
        self.settlements_ready = asyncio.Event()

    @property
    def account(self) -> dict[str, Any]:
        acct = self.store.get(self.account_id, "account")
        assert acct is not None, "the platform account is seeded on first start"
        return acct

    def load(self, kind: str, object_id: str | None, label: str | None = None, param: str = "id") -> dict[str, Any]:
        """Fetch ``object_id`` or answer Stripe's ``No such <label>: '<id>'`` 404."""
        obj = self.store.get(object_id, kind) if object_id else None
        if obj is None:
            raise no_such(label or kind, object_id or "", param)
        return obj

    # -- events -----------------------------------------------------------------------------------------

    def emit(self, call: Call, event_type: str, obj: dict[str, Any],
             previous_attributes: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record an event and queue its webhook deliveries (in the caller's transaction)."""
        now = time.time()
        endpoints = [
            ep for ep in self.store.find("webhook_endpoint", "tag = ?", ("enabled",))
            if any(pattern == "*" or fnmatch.fnmatchcase(event_type, pattern) for pattern in ep["enabled_events"])
        ]
        evt = objects.event(
            objects.new_id("evt"), int(now), event_type, obj, previous_attributes=previous_attributes,
            request_id=call.request_id, idempotency_key=call.idempotency_key, pending_webhooks=len(endpoints),
        )
        self.store.insert(evt, tag=event_type)
        config = self.faults.config
        for ep in endpoints:
            copies = 2 if self.faults.chance(config.webhook_duplicate_rate) else 1
            for copy in range(copies):
                due = now
                if config.webhook_reorder and self.faults.chance(0.5):
                    # Held back so that events emitted after it overtake it, as Stripe's ordering allows.
                    due += self.faults.random.uniform(0.3, 1.0) * self.settings.webhook_reorder_delay_seconds * 2
                self.store.conn.execute(
                    "INSERT INTO deliveries (endpoint_id, event_id, state, attempts, next_attempt_at, duplicate,"
                    " created, updated) VALUES (?, ?, 'pending', 0, ?, ?, ?, ?)",
                    (ep["id"], evt["id"], due, copy, now, now),
                )
            self._bound_backlog(ep["id"])
        if endpoints:
            self.deliveries_ready.set()
        return evt

    def _bound_backlog(self, endpoint_id: str) -> None:
        pending = self.store.conn.execute(
            "SELECT count(*) FROM deliveries WHERE endpoint_id = ? AND state = 'pending'", (endpoint_id,)
        ).fetchone()[0]
        if pending > MAX_PENDING_DELIVERIES_PER_ENDPOINT:
            self.store.conn.execute(
                "UPDATE deliveries SET state = 'dropped', last_error = 'backlog limit reached' WHERE id IN ("
                " SELECT id FROM deliveries WHERE endpoint_id = ? AND state = 'pending' ORDER BY id LIMIT ?)",
                (endpoint_id, pending - MAX_PENDING_DELIVERIES_PER_ENDPOINT),
            )

    # -- expansion --------------------------------------------------------------------------------------

    def expand(self, obj: dict[str, Any], paths: Sequence[str], prefix: str = "") -> dict[str, Any]:
        """Replace id strings named by ``expand[]`` paths with the objects they name (unknown paths are ignored)."""
        for path in paths:
            if prefix:
                if not path.startswith(prefix):
                    continue
                path = path[len(prefix):]
            self._expand_path(obj, path.split(".")[:4])
        return obj

    def _expand_path(self, node: Any, parts: list[str]) -> None:
        if not parts or not isinstance(node, dict):
            return
        head, rest = parts[0], parts[1:]
        value = node.get(head)
        if isinstance(value, str) and not rest and "_" in value:
            found = self.store.get(value)
            if found is not None:
                node[head] = found
        elif isinstance(value, dict):
            if value.get("object") == "list":
                for item in value.get("data", []):
                    self._expand_path(item, rest)
            else:
                self._expand_path(value, rest)

    # -- lists ------------------------------------------------------------------------------------------

    def list_page(self, call: Call, kind: str, url: str, *, where: Sequence[str] = (), args: Sequence[Any] = (),
                  filters: Sequence[str] = (), label: str | None = None,
                  transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Raw:
        """Stripe's list envelope over ``kind``, newest first, with limit, cursors and ``created`` filters.

        Args:
            label: the object name unknown cursors are reported under (``No such plan``); defaults to ``kind``.
            transform: rewrites each item before it is returned (a view such as plans over prices, or a field
                computed at read time); items are then decoded instead of spliced as stored.
        """
        p = call.params
        p.allow({"limit", "starting_after", "ending_before", "created", *filters})
        limit = p.int("limit")
        if limit is None:
            limit = 10
        if not 1 <= limit <= 100:
            raise invalid_param("limit", "This value must be less than or equal to 100." if limit > 100
                                else "This value must be greater than or equal to 1.")
        where = list(where)
        args = list(args)
        created = p.data.get("created")
        if created is not None:
            self._created_filter(created, where, args)
        after = before = None
        starting_after = p.str("starting_after")
        ending_before = p.str("ending_before")
        if starting_after and ending_before:
            raise StripeError(400, "You may only specify one of these parameters: ending_before, starting_after.",
                              param="starting_after")
        cursor_label = label or kind.replace("_", " ")
        if starting_after:
            after = self.store.position(starting_after, kind)
            if after is None:
                raise no_such(cursor_label, starting_after, "starting_after")
        if ending_before:
            before = self.store.position(ending_before, kind)
            if before is None:
                raise no_such(cursor_label, ending_before, "ending_before")
        bodies, has_more = self.store.page(kind, where=where, args=args, after=after, before=before, limit=limit)
        expand = [e for e in p.expand() if e.startswith("data.")]
        if expand or transform is not None:
            items = [orjson.loads(b) for b in bodies]
            if transform is not None:
                items = [transform(item) for item in items]
            if expand:
                items = [self.expand(item, expand, "data.") for item in items]
            bodies = [orjson.dumps(item) for item in items]
        # Joined once: each ``+`` of the envelope's parts would copy the whole page again (~300 KiB of invoices).
        parts = [b'{"object":"list","data":[']
        for index, item in enumerate(bodies):
            parts += (b",", item) if index else (item,)
        parts += (b'],"has_more":', b"true" if has_more else b"false", b',"url":', orjson.dumps(url), b"}")
        return Raw(b"".join(parts))

    @staticmethod
    def _created_filter(created: Any, where: list[str], args: list[Any]) -> None:
        operators = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
        if isinstance(created, str):
            created = {"eq": created}
        if not isinstance(created, dict):
            raise invalid_param("created", "Invalid timestamp: created must be an integer or a hash")
        for op, value in created.items():
            if op not in (*operators, "eq"):
                raise StripeError(400, f"Received unknown parameter: created[{op}]", code="parameter_unknown",
                                  param=f"created[{op}]")
            if not isinstance(value, str) or not value.lstrip("-").isdigit():
                name = "created" if op == "eq" else f"created[{op}]"
                raise invalid_param(name, f"Invalid integer: {value}", "parameter_invalid_integer")
            where.append(f"created {operators.get(op, '=')} ?")
            args.append(int(value))


@dataclasses.dataclass
class Call:
    """One API request as the handlers see it."""

    params: Params
    path: dict[str, str]
    request_id: str
    idempotency_key: str | None
    now: int

    def expand_list(self) -> list[str]:
        return self.params.expand()


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Stripe's ``previous_attributes``: the old values of what changed, nested dicts diffed key by key."""
    changed: dict[str, Any] = {}
    for key in after.keys() | before.keys():
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and old.get("object") != "list":
            changed[key] = diff(old, new)
        else:
            changed[key] = old
    return changed


def serialise(obj: dict[str, Any]) -> str:
    return dumps(obj)
