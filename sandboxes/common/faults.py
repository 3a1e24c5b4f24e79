"""Fault injection: named profiles, knobs changeable at run time, and the ASGI middleware that applies them.

Each sandbox supplies a :class:`FaultRenderer` so that an injected failure answers in that system's own
error format (Salesforce's error array, Stripe's ``error`` object, Odoo's JSON-RPC error).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import re
import threading
from collections.abc import Callable
from typing import Any, Protocol

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

ADMIN_PREFIX = "/__sandbox__"


@dataclasses.dataclass
class FaultConfig:
    """Every knob of fault injection. Rates are probabilities per request, between 0 and 1."""

    latency_ms_min: int = 0
    latency_ms_max: int = 0
    server_error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after_seconds: int = 1
    lock_error_rate: float = 0.0
    drop_connection_rate: float = 0.0
    token_ttl_seconds: int | None = None
    webhook_duplicate_rate: float = 0.0
    webhook_reorder: bool = False
    webhook_failure_rate: float = 0.0
    path_pattern: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: FaultConfig | None = None) -> FaultConfig:
        """Build a config from ``data`` on top of ``base``; unknown knobs raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known - {"profile"})
        if unknown:
            raise ValueError(f"unknown fault knob(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        merged = dataclasses.asdict(base or cls())
        merged.update({k: v for k, v in data.items() if k != "profile"})
        config = cls(**merged)
        config.validate()
        return config

    def validate(self) -> None:
        for name in (
            "server_error_rate", "rate_limit_rate", "lock_error_rate", "drop_connection_rate",
            "webhook_duplicate_rate", "webhook_failure_rate",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
        if self.latency_ms_min < 0 or self.latency_ms_max < self.latency_ms_min:
            raise ValueError("latency_ms_min must be >= 0 and <= latency_ms_max")
        if self.token_ttl_seconds is not None and self.token_ttl_seconds <= 0:
            raise ValueError("token_ttl_seconds must be positive")
        if self.path_pattern is not None:
            re.compile(self.path_pattern)


PROFILES: dict[str, FaultConfig] = {
    "none": FaultConfig(),
    "flaky": FaultConfig(
        latency_ms_min=5, latency_ms_max=120, server_error_rate=0.05, rate_limit_rate=0.02,
        retry_after_seconds=1, lock_error_rate=0.03, drop_connection_rate=0.01,
        webhook_duplicate_rate=0.2, webhook_reorder=True, webhook_failure_rate=0.1,
    ),
    "slow": FaultConfig(latency_ms_min=200, latency_ms_max=800),
    "rate-limited": FaultConfig(rate_limit_rate=0.3, retry_after_seconds=2),
    "short-tokens": FaultConfig(token_ttl_seconds=5),
    "down": FaultConfig(server_error_rate=1.0),
}


def profile(name: str) -> FaultConfig:
    """Return a copy of the named profile, or raise ``ValueError`` listing the known names."""
    try:
        return dataclasses.replace(PROFILES[name])
    except KeyError:
        raise ValueError(f"unknown fault profile {name!r}; known: {', '.join(PROFILES)}") from None


class FaultRenderer(Protocol):
    """How one system words an injected failure."""

    def server_error(self) -> Response: ...

    def rate_limited(self, retry_after_seconds: int) -> Response: ...

    def lock_conflict(self) -> Response | None:
        """The system's 'record locked' error, or None when the system has none."""


class FaultState:
    """The fault knobs in force, shared by the middleware and the system's own code (token TTL, webhooks)."""

    def __init__(self, config: FaultConfig | None = None, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._config = config or FaultConfig()
        self._profile_name = "none" if config is None else "custom"
        self.random = random.Random(seed)

    @property
    def config(self) -> FaultConfig:
        return self._config

    @property
    def profile_name(self) -> str:
        return self._profile_name

    def set_profile(self, name: str) -> None:
        with self._lock:
            self._config = profile(name)
            self._profile_name = name

    def update(self, data: dict[str, Any]) -> None:
        """Apply ``{"profile": name, knob: value, ...}``: the profile first, then the knobs on top."""
        with self._lock:
            base = profile(data["profile"]) if "profile" in data else self._config
            self._config = FaultConfig.from_dict(data, base)
            self._profile_name = data.get("profile", "custom") if len(data) == 1 else "custom"

    def chance(self, rate: float) -> bool:
        return rate > 0 and self.random.random() < rate

    def snapshot(self) -> dict[str, Any]:
        return {"profile": self._profile_name, **self._config.to_dict()}


def _abort_connection(send: Send) -> bool:
    """Close the TCP connection under a request without answering; True when that was possible.

    uvicorn's ``send`` is a bound method of its request cycle, which holds the transport; a client
    then sees the connection reset or closed mid-request, as with a dropped load balancer connection.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    transport.abort() if hasattr(transport, "abort") else transport.close()
    return True


class FaultMiddleware:
    """ASGI middleware that injects latency and failures into every non-admin request."""

    def __init__(
        self,
        app: ASGIApp,
        state: FaultState,
        renderer: FaultRenderer,
        is_write: Callable[[Scope], bool] | None = None,
    ) -> None:
        self.app = app
        self.state = state
        self.renderer = renderer
        self.is_write = is_write or (lambda scope: scope.get("method", "GET") not in ("GET", "HEAD"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        config = self.state.config
        if config.path_pattern and not re.search(config.path_pattern, scope["path"]):
            await self.app(scope, receive, send)
            return
        if config.latency_ms_max > 0:
            delay = self.state.random.uniform(config.latency_ms_min, config.latency_ms_max) / 1000.0
            await asyncio.sleep(delay)
        if self.state.chance(config.drop_connection_rate) and _abort_connection(send):
            logger.info("fault: dropped connection on %s %s", scope["method"], scope["path"])
            return
        injected: Response | None = None
        if self.state.chance(config.server_error_rate):
            injected = self.renderer.server_error()
        elif self.state.chance(config.rate_limit_rate):
            injected = self.renderer.rate_limited(config.retry_after_seconds)
        elif self.is_write(scope) and self.state.chance(config.lock_error_rate):
            injected = self.renderer.lock_conflict()
        if injected is not None:
            logger.info("fault: injected %s on %s %s", injected.status_code, scope["method"], scope["path"])
            await injected(scope, receive, send)
            return
        await self.app(scope, receive, send)

