"""Odoo's exceptions and the three ways Odoo puts them on the wire (JSON-2, JSON-RPC, XML-RPC).

The class names double as the ``name`` clients see (``odoo.exceptions.AccessError``...), so each exception
carries the dotted name and the HTTP status Odoo 19's JSON-2 controller answers with.
"""

from __future__ import annotations

import traceback
import xmlrpc.client
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


class OdooError(Exception):
    """Base of the errors the sandbox raises on purpose; ``name`` is what Odoo's serializer reports."""

    name = "odoo.exceptions.UserError"
    http_status = 422

    def __init__(self, message: str, *arguments: Any) -> None:
        super().__init__(message, *arguments)
        self.message = message


class UserError(OdooError):
    name = "odoo.exceptions.UserError"
    http_status = 422


class ValidationError(UserError):
    name = "odoo.exceptions.ValidationError"


class AccessError(UserError):
    name = "odoo.exceptions.AccessError"
    http_status = 403


class AccessDenied(UserError):
    name = "odoo.exceptions.AccessDenied"
    http_status = 403

    def __init__(self, message: str = "Access Denied") -> None:
        super().__init__(message)


class MissingError(UserError):
    name = "odoo.exceptions.MissingError"
    http_status = 404


class OdooValueError(OdooError):
    """A plain ``ValueError`` inside Odoo (bad domain, bad field): a 500 on JSON-2, as in Odoo."""

    name = "builtins.ValueError"
    http_status = 500


class OdooTypeError(OdooError):
    """A ``TypeError`` raised while calling the method (RPC protocols only; JSON-2 answers 422 instead)."""

    name = "builtins.TypeError"
    http_status = 500


class HttpError(OdooError):
    """A werkzeug HTTP exception (404, 405, 422...): its arguments are ``[description, code]``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, status)
        self.http_status = status
        self.name = f"werkzeug.exceptions.{_WERKZEUG_NAMES.get(status, 'HTTPException')}"


class SerializationFailure(OdooError):
    """PostgreSQL's concurrent update error, surfaced once Odoo's own retries are spent."""

    name = "psycopg2.errors.SerializationFailure"
    http_status = 500

    def __init__(self) -> None:
        super().__init__("could not serialize access due to concurrent update")


_WERKZEUG_NAMES = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    415: "UnsupportedMediaType", 422: "UnprocessableEntity", 429: "TooManyRequests", 500: "InternalServerError",
}


def serialize_exception(exc: BaseException) -> dict[str, Any]:
    """Odoo's ``http.serialize_exception``: the body JSON-2 answers with and JSON-RPC's ``error.data``."""
    if isinstance(exc, OdooError):
        name, message, arguments = exc.name, exc.message, list(exc.args)
    else:
        name, message, arguments = f"builtins.{type(exc).__name__}", str(exc), [str(a) for a in exc.args]
    return {
        "name": name,
        "message": message,
        "arguments": arguments,
        "context": {},
        "debug": "".join(traceback.format_exception(exc)) if exc.__traceback__ else f"{name}: {message}\n",
    }


def http_status_of(exc: BaseException) -> int:
    return exc.http_status if isinstance(exc, OdooError) else 500


def json2_error(exc: BaseException, headers: dict[str, str] | None = None) -> Response:
    """A JSON-2 error response: Odoo's serialized exception with the exception's HTTP status."""
    return Response(
        orjson.dumps(serialize_exception(exc)), status_code=http_status_of(exc), headers=headers,
        media_type=JSON_CONTENT_TYPE,
    )


def jsonrpc_error_body(exc: BaseException, request_id: Any) -> dict[str, Any]:
    """Odoo's JSON-RPC error envelope (``JsonRPCDispatcher.handle_error``)."""
    error: dict[str, Any] = {"code": 200, "message": "Odoo Server Error", "data": serialize_exception(exc)}
    if isinstance(exc, HttpError) and exc.http_status == 404:
        error["code"], error["message"] = 404, "404: Not Found"
    elif isinstance(exc, HttpError) and exc.http_status == 429:
        error["code"], error["message"] = 429, "429: Too Many Requests"
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def jsonrpc_error(exc: BaseException, request_id: Any, status_code: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(jsonrpc_error_body(exc, request_id)), status_code=status_code, headers=headers,
        media_type="application/json",
    )


# Odoo's fault codes for /xmlrpc/2/ (odoo/addons/base/controllers/rpc.py).
RPC_FAULT_CODE_APPLICATION_ERROR = 1
RPC_FAULT_CODE_WARNING = 2
RPC_FAULT_CODE_ACCESS_DENIED = 3
RPC_FAULT_CODE_ACCESS_ERROR = 4


def xmlrpc_fault(exc: BaseException, numeric_codes: bool) -> xmlrpc.client.Fault:
    """The Fault Odoo answers: integer codes on ``/xmlrpc/2/``, the legacy string codes on ``/xmlrpc/``."""
    message = exc.message if isinstance(exc, OdooError) else str(exc)
    if numeric_codes:
        if isinstance(exc, AccessError):
            return xmlrpc.client.Fault(RPC_FAULT_CODE_ACCESS_ERROR, message)
        if isinstance(exc, AccessDenied):
            return xmlrpc.client.Fault(RPC_FAULT_CODE_ACCESS_DENIED, message)
        if isinstance(exc, UserError):
            return xmlrpc.client.Fault(RPC_FAULT_CODE_WARNING, message)
        return xmlrpc.client.Fault(RPC_FAULT_CODE_APPLICATION_ERROR, serialize_exception(exc)["debug"])
    if isinstance(exc, MissingError):
        return xmlrpc.client.Fault("warning -- MissingError\n\n" + message, "")
    if isinstance(exc, AccessError):
        return xmlrpc.client.Fault("warning -- AccessError\n\n" + message, "")
    if isinstance(exc, AccessDenied):
        return xmlrpc.client.Fault("AccessDenied", message)
    if isinstance(exc, UserError):
        return xmlrpc.client.Fault("warning -- UserError\n\n" + message, "")
    return xmlrpc.client.Fault(message, serialize_exception(exc)["debug"])


def xmlrpc_response(fault: xmlrpc.client.Fault, status_code: int = 200,
                    headers: dict[str, str] | None = None) -> Response:
    return Response(
        xmlrpc.client.dumps(fault, methodresponse=True, allow_none=True), status_code=status_code,
        headers=headers, media_type="text/xml",
    )


class _ProtocolAwareError(Response):
    """An injected failure worded for the protocol of the request it answers.

    The fault middleware asks the renderer for a response without saying which endpoint was called; since
    one Odoo server speaks JSON-2, JSON-RPC and XML-RPC, the wording is decided here, when the response is
    sent and the request path (and, for JSON-RPC, the request id) can be read.
    """

    def __init__(self, exc: OdooError, status_code: int, headers: dict[str, str] | None = None,
                 rpc_status_code: int = 200) -> None:
        super().__init__(b"", status_code=status_code, headers=headers)
        self.exc = exc
        self.extra_headers = headers
        self.rpc_status_code = rpc_status_code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if path.startswith("/jsonrpc"):
            request_id = await _jsonrpc_request_id(receive)
            response = jsonrpc_error(self.exc, request_id, self.rpc_status_code, self.extra_headers)
        elif path.startswith("/xmlrpc"):
            numeric = path.startswith("/xmlrpc/2/")
            response = xmlrpc_response(xmlrpc_fault(self.exc, numeric), self.rpc_status_code, self.extra_headers)
        else:
            response = json2_error(self.exc, self.extra_headers)
            response.status_code = self.status_code
        await response(scope, receive, send)


async def _jsonrpc_request_id(receive: Receive) -> Any:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    try:
        payload = orjson.loads(body)
        return payload.get("id") if isinstance(payload, dict) else None
    except orjson.JSONDecodeError:
        return None


class OdooFaultRenderer:
    """Injected failures as Odoo and Odoo.sh's front proxy word them."""

    def server_error(self) -> Response:
        exc = HttpError(500, "The server encountered an internal error and was unable to complete your request. "
                             "Either the server is overloaded or there is an error in the application.")
        return _ProtocolAwareError(exc, 500)

    def rate_limited(self, retry_after_seconds: int) -> Response:
        # Odoo.sh throttles at its proxy, before Odoo: every protocol sees a real 429 with Retry-After.
        exc = HttpError(429, "This user has exceeded an allotted request count. Try again later.")
        return _ProtocolAwareError(exc, 429, headers={"Retry-After": str(retry_after_seconds)}, rpc_status_code=429)

    def lock_conflict(self) -> Response | None:
        # Odoo retries serialization failures itself; when its retries are spent the error reaches the client.
        return _ProtocolAwareError(SerializationFailure(), 500)
