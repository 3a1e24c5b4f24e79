"""Routing and the request pipeline every ``/v1`` call goes through.

Order follows Stripe: authenticate, claim the idempotency key, decode and fingerprint the parameters,
replay a stored result or execute the handler in one transaction, then store the result when execution
started (successes, card declines, 500s; not validation errors).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandboxes.payments import (
    catalog,
    customers,
    disputes,
    invoices,
    ledger,
    payments,
    platform,
    subscriptions,
    unmodelled,
)
from sandboxes.payments.errors import StripeError, error_body, request_id
from sandboxes.payments.forms import decode
from sandboxes.payments.idempotency import IdempotencyKeys, fingerprint, mismatch
from sandboxes.payments.keys import KeyRing
from sandboxes.payments.objects import API_VERSION
from sandboxes.payments.params import Params
from sandboxes.payments.service import Call, Raw, Reply, Service

logger = logging.getLogger(__name__)

Handler = Callable[[Service, Call], Any]
ROUTE_TABLES = (customers.ROUTES, catalog.ROUTES, invoices.ROUTES, payments.ROUTES, platform.ROUTES, ledger.ROUTES,
                subscriptions.ROUTES, unmodelled.ROUTES, disputes.ROUTES)
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
FORM = "application/x-www-form-urlencoded"


def _json(body: dict[str, Any], status: int, headers: dict[str, str]) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


class Api:
    """Turns the resource modules' route tables into Starlette routes sharing one pipeline."""

    def __init__(self, svc: Service, keys: KeyRing, idempotency: IdempotencyKeys) -> None:
        self.svc = svc
        self.keys = keys
        self.idempotency = idempotency

    def routes(self) -> Sequence[BaseRoute]:
        routes: list[BaseRoute] = []
        for table in ROUTE_TABLES:
            for method, path, handler, resource in table:
                routes.append(Route(path, self._endpoint(handler, resource), methods=[method]))
        routes.append(Route("/v1/{rest:path}", self._unrecognized,
                            methods=["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD"]))
        return routes

    async def _unrecognized(self, request: Request) -> Response:
        body = error_body(
            f"Unrecognized request URL ({request.method}: {request.url.path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
        )
        return _json(body, 404, {"Request-Id": request_id()})

    def _endpoint(self, handler: Handler, resource: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            return await self._handle(request, handler, resource)

        endpoint.__name__ = handler.__name__
        return endpoint

    async def _handle(self, request: Request, handler: Handler, resource: str) -> Response:
        rid = request_id()
        version = request.headers.get("stripe-version") or API_VERSION
        headers = {"Request-Id": rid, "Stripe-Version": version}
        method = request.method
        write = method in ("POST", "DELETE")
        idem_key = request.headers.get("idempotency-key") if method == "POST" else None
        if idem_key is not None:
            headers["Idempotency-Key"] = idem_key
        claimed: tuple[str, str] | None = None
        try:
            if not _VERSION.match(version):
                raise StripeError(400, f"Invalid Stripe API version: {version}", param="Stripe-Version")
            key = self.keys.authenticate(request.headers.get("authorization"), resource, write)
            if idem_key is not None:
                self.idempotency.validate(idem_key)
                # Claimed before the body is read: a second request with the same key arriving while the
                # first is still uploading or executing is the concurrent case Stripe answers with 409.
                self.idempotency.claim(key.secret, idem_key)
                claimed = (key.secret, idem_key)
            data = await self._params(request)
            if claimed is not None:
                print_ = fingerprint(method, request.url.path, data)
                stored = self.idempotency.lookup(key.secret, idem_key or "")
                if stored is not None:
                    if stored.fingerprint != print_:
                        raise mismatch(idem_key or "")
                    return Response(
                        stored.body, status_code=stored.status, media_type="application/json",
                        headers={**headers, "Request-Id": stored.request_id, "Idempotent-Replayed": "true",
                                 "Original-Request": stored.request_id},
                    )
            call = Call(Params(data), dict(request.path_params), rid, idem_key, int(time.time()))
            status, body = self._execute(handler, call, headers)
            if claimed is not None and status in (200, 402, 500):
                self.idempotency.record(key.secret, idem_key or "", print_, status, body, rid)
            return Response(body, status_code=status, headers=headers, media_type="application/json")
        except StripeError as exc:
            headers.update(exc.headers)
            if exc.status >= 400 and "Stripe-Should-Retry" not in headers and exc.status != 409:
                headers["Stripe-Should-Retry"] = "false"
            return _json(exc.body(), exc.status, headers)
        finally:
            if claimed is not None:
                self.idempotency.release(*claimed)

    def _execute(self, handler: Handler, call: Call, headers: dict[str, str]) -> tuple[int, bytes]:
        """Run ``handler`` atomically; an unexpected failure becomes Stripe's 500 ``api_error``."""
        try:
            with self.svc.store.transaction():
                result = handler(self.svc, call)
        except StripeError:
            raise
        except Exception:
            logger.exception("unhandled error in %s", handler.__name__)
            headers["Stripe-Should-Retry"] = "false"
            body = error_body("An unknown error occurred. Please try again later.", type="api_error")
            return 500, orjson.dumps(body)
        if isinstance(result, Raw):
            return result.status, result.body
        if isinstance(result, Reply):
            return result.status, orjson.dumps(result.body)
        return 200, orjson.dumps(result)

    @staticmethod
    async def _params(request: Request) -> dict[str, Any]:
        data = decode(request.url.query) if request.url.query else {}
        if request.method == "POST":
            raw = await request.body()
            content_type = request.headers.get("content-type", FORM).split(";")[0].strip().lower()
            if raw and content_type != FORM:
                raise StripeError(
                    400, f"Invalid request: unsupported Content-Type {content_type}. If error persists and you "
                         "need assistance, please contact support@stripe.com.",
                )
            if raw:
                body = decode(raw)
                data.update(body)
        return data
