"""Stripe's error envelope, the exception handlers raise, and the renderer of injected faults."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.responses import Response

from sandboxes.common.app import json_response

DOC_URL = "https://stripe.com/docs/error-codes/"


def request_id() -> str:
    """A fresh ``req_...`` identifier, as in Stripe's ``Request-Id`` header."""
    return "req_" + secrets.token_hex(7)


class StripeError(Exception):
    """An error answered in Stripe's ``{"error": {...}}`` shape.

    Raising one inside a handler rolls the request's writes back; handlers that must keep state
    (a declined payment leaves a failed charge behind) build the body with :func:`error_body` instead.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return error_body(
            self.message, type=self.type, code=self.code, param=self.param,
            decline_code=self.decline_code, extra=self.extra,
        )


def error_body(
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    decline_code: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``{"error": ...}`` body; keys Stripe omits when empty are omitted here too."""
    error: dict[str, Any] = {"type": type, "message": message}
    if code:
        error["code"] = code
        error["doc_url"] = DOC_URL + code.replace("_", "-")
    if param:
        error["param"] = param
    if decline_code:
        error["decline_code"] = decline_code
    if extra:
        error.update(extra)
    return {"error": error}


def missing_param(name: str) -> StripeError:
    return StripeError(400, f"Missing required param: {name}.", code="parameter_missing", param=name)


def unknown_param(name: str) -> StripeError:
    return StripeError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


def invalid_param(name: str, message: str, code: str | None = None) -> StripeError:
    return StripeError(400, message, code=code, param=name)


def no_such(kind: str, object_id: str, param: str = "id") -> StripeError:
    """Stripe's 404 for an id that names nothing: ``No such customer: 'cus_x'``."""
    return StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def state_error(message: str, code: str | None = None) -> StripeError:
    """A request the object's current state does not allow (finalizing a paid invoice...)."""
    return StripeError(400, message, code=code)


def redact_key(key: str) -> str:
    """``sk_test_****abcd``, as Stripe prints keys in error messages."""
    prefix = key[:8] if key.startswith(("sk_test_", "rk_test_", "pk_test_")) else key[:3]
    return f"{prefix}{'*' * 4}{key[-4:]}" if len(key) > 12 else "****"


class StripeFaultRenderer:
    """Injected failures worded as Stripe words them, with Stripe's retry hints."""

    def server_error(self) -> Response:
        body = error_body(
            "An unknown error occurred. Please try again later.", type="api_error",
        )
        return json_response(body, 500, {"Request-Id": request_id(), "Stripe-Should-Retry": "true"})

    def rate_limited(self, retry_after_seconds: int) -> Response:
        body = error_body(
            "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            type="invalid_request_error", code="rate_limit",
        )
        headers = {
            "Request-Id": request_id(),
            "Retry-After": str(retry_after_seconds),
            "Stripe-Should-Retry": "true",
            "Stripe-Rate-Limited-Reason": "global-rate",
        }
        return json_response(body, 429, headers)

    def lock_conflict(self) -> Response | None:
        body = error_body(
            "This object cannot be accessed right now because another API request or Stripe process is "
            "currently accessing it. If you see this error intermittently, retry the request. If you see "
            "this error frequently and are making multiple concurrent requests to a single object, make "
            "your requests serially or at a lower rate.",
            type="invalid_request_error", code="lock_timeout",
        )
        return json_response(body, 429, {"Request-Id": request_id(), "Stripe-Should-Retry": "true"})
