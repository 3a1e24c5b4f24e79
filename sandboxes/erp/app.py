"""The ERP sandbox's HTTP routes: Odoo 19's JSON-2 API and ``/doc-bearer``, plus JSON-RPC and XML-RPC.

Each route parses its protocol, hands the call to :mod:`sandboxes.erp.methods` on a worker thread (SQLite
work must not block the event loop), and words errors the way that protocol does in Odoo.
"""

from __future__ import annotations

import logging
import xmlrpc.client
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandboxes.erp import methods
from sandboxes.erp.access import DATABASE, Credentials, Integration
from sandboxes.erp.errors import (
    JSON_CONTENT_TYPE,
    AccessDenied,
    HttpError,
    OdooError,
    OdooTypeError,
    OdooValueError,
    json2_error,
    jsonrpc_error,
    xmlrpc_fault,
    xmlrpc_response,
)
from sandboxes.erp.store import Store

logger = logging.getLogger(__name__)

SERVER_VERSION = {
    "server_version": "19.0", "server_version_info": [19, 0, 0, "final", 0, ""], "server_serie": "19.0",
    "protocol_version": 1,
}
JSON_MIMETYPES = ("application/json", "application/json-rpc")
NOT_FOUND_HTML = (
    "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
    "<p>The requested URL was not found on the server. URL was not found in the server-wide controllers.</p>\n"
)


class DatabaseNotFound(OdooError):
    name = "psycopg2.OperationalError"
    http_status = 500

    def __init__(self, database: Any) -> None:
        super().__init__(f'connection to server failed: FATAL:  database "{database}" does not exist')


def _mimetype(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS), media_type=JSON_CONTENT_TYPE)


def _unsupported_media_type(path: str) -> Response:
    body = (
        "<!doctype html>\n<html lang=en>\n<title>415 Unsupported Media Type</title>\n<h1>Unsupported Media Type</h1>\n"
        f"<p>Request inferred type is compatible with ['http'] but {path} is type=json.\n\n"
        "Please verify the Content-Type request header and try again.</p>\n"
    )
    return Response(body, status_code=415, media_type="text/html; charset=utf-8")


class ErpRoutes:
    """The handlers, bound to one store and one set of credentials."""

    def __init__(self, store: Store, credentials: Credentials) -> None:
        self.store = store
        self.credentials = credentials

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/json/2/{model}/{method}", self.json2, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/doc-bearer/{model}.json", self.doc_bearer, methods=["GET"]),
            Route("/jsonrpc", self.jsonrpc, methods=["POST"]),
            Route("/xmlrpc/2/{service}", self.xmlrpc_numeric, methods=["POST"]),
            Route("/xmlrpc/{service}", self.xmlrpc_legacy, methods=["POST"]),
        ]

    # ---------------------------------------------------------------------------------------------- JSON-2

    def _bearer_user(self, request: Request) -> Integration:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if not header or scheme.lower() != "bearer":
            raise HttpError(401, 'User not authenticated, use the "Authorization" header')
        user = self.credentials.user_of_key(key.strip())
        if user is None:
            raise HttpError(401, "Invalid apikey")
        return user

    async def json2(self, request: Request) -> Response:
        model_name, method_name = request.path_params["model"], request.path_params["method"]
        if request.method != "POST":
            return json2_error(HttpError(404, "Did you mean POST /json/2/<model>/<method>?"))
        if _mimetype(request) not in JSON_MIMETYPES:
            return _unsupported_media_type(request.url.path)
        database = request.headers.get("x-odoo-database")
        if database is not None and database != DATABASE:
            return Response(NOT_FOUND_HTML, status_code=404, media_type="text/html; charset=utf-8")
        raw = await request.body()
        try:
            params = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError as exc:
            return json2_error(HttpError(400, f"could not parse the body as json: {exc}"))
        if not isinstance(params, dict):
            return json2_error(HttpError(400, "could not parse the body, expecting a json object"))
        try:
            user = self._bearer_user(request)
        except HttpError as exc:
            return json2_error(exc, headers={"WWW-Authenticate": "bearer"})
        try:
            model, method = methods.resolve(model_name, method_name, for_json2=True)
            ids = params.pop("ids", ())
            result = await run_in_threadpool(methods.call, self.store, user, model, method, ids, [], params, True)
        except OdooError as exc:
            return json2_error(exc)
        except Exception as exc:  # an unexpected bug still answers in Odoo's shape, never a bare 500
            logger.exception("JSON-2 %s.%s failed", model_name, method_name)
            return json2_error(exc)
        return _json(result)

    async def doc_bearer(self, request: Request) -> Response:
        try:
            self._bearer_user(request)
        except HttpError as exc:
            return json2_error(exc, headers={"WWW-Authenticate": "bearer"})
        model_name = request.path_params["model"]
        try:
            model, _ = methods.resolve(model_name, "read", for_json2=True)
        except OdooError as exc:
            return json2_error(exc)
        from sandboxes.erp import orm

        described = {}
        for method in methods.methods_of(model):
            parameters = {
                name: ({} if default is methods.REQUIRED else {"default": default})
                for name, default in method.parameters
            }
            if method.var_keyword:
                parameters[method.var_keyword] = {"kind": "VAR_KEYWORD"}
            described[method.name] = {
                "parameters": parameters, "api": ["model"] if method.api_model else [], "doc": method.doc,
                "module": "base" if not model.name.startswith("account") else "account",
            }
        return _json({"model": model.name, "name": model.description, "fields": orm.fields_get(model),
                      "methods": described})

    # ------------------------------------------------------------------------------------- JSON-RPC, XML-RPC

    async def jsonrpc(self, request: Request) -> Response:
        if _mimetype(request) not in JSON_MIMETYPES:
            return _unsupported_media_type(request.url.path)
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return Response("Invalid JSON data", status_code=400, media_type="text/plain")
        if not isinstance(payload, dict) or not isinstance(payload.get("params", {}), dict):
            return Response("Invalid JSON-RPC data", status_code=400, media_type="text/plain")
        request_id = payload.get("id")
        params = payload.get("params") or {}
        args = params.get("args") or []
        try:
            if not isinstance(args, list):
                raise OdooValueError(f"Invalid args {args!r}: a list is expected")
            result = await run_in_threadpool(self.dispatch_rpc, params.get("service"), params.get("method"), args)
        except Exception as exc:
            if not isinstance(exc, OdooError):
                logger.exception("JSON-RPC call failed")
            return jsonrpc_error(exc, request_id)
        return Response(orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}),
                        media_type="application/json")

    async def xmlrpc_numeric(self, request: Request) -> Response:
        return await self._xmlrpc(request, numeric_codes=True)

    async def xmlrpc_legacy(self, request: Request) -> Response:
        return await self._xmlrpc(request, numeric_codes=False)

    async def _xmlrpc(self, request: Request, numeric_codes: bool) -> Response:
        try:
            params, method = xmlrpc.client.loads(await request.body(), use_builtin_types=True)
        except Exception as exc:  # expat and marshalling errors alike
            return xmlrpc_response(xmlrpc_fault(OdooValueError(f"Invalid XML-RPC request: {exc}"), numeric_codes))
        try:
            result = await run_in_threadpool(self.dispatch_rpc, request.path_params["service"], method, list(params))
            body = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=True)
        except Exception as exc:
            if not isinstance(exc, OdooError):
                logger.exception("XML-RPC call failed")
            return xmlrpc_response(xmlrpc_fault(exc, numeric_codes))
        return Response(body, media_type="text/xml")

    def dispatch_rpc(self, service: Any, method: Any, args: list[Any]) -> Any:
        """Odoo's ``dispatch_rpc``: the ``common``, ``object`` and ``db`` services."""
        if service == "common":
            return self._common(method, args)
        if service == "object":
            return self._object(method, args)
        if service == "db" and method == "list":
            return [DATABASE]
        if service == "db" and method == "server_version":
            return SERVER_VERSION["server_version"]
        raise OdooValueError(f"The method {service}.{method} does not exist")

    def _common(self, method: Any, args: list[Any]) -> Any:
        if method == "version":
            return SERVER_VERSION
        if method in ("login", "authenticate"):
            if len(args) < 3:
                raise OdooTypeError(f"{method}() missing required positional arguments: 'db', 'login', 'password'")
            database, login, password = args[:3]
            if database != DATABASE:
                raise DatabaseNotFound(database)
            user = self.credentials.login(login, password)
            return user.uid if user is not None else False
        if method == "about":
            return "See https://www.odoo.com"
        raise OdooValueError(f"The method common.{method} does not exist")

    def _object(self, method: Any, args: list[Any]) -> Any:
        if method not in ("execute_kw", "execute"):
            raise OdooValueError(f"The method object.{method} does not exist")
        if len(args) < 5:
            raise OdooTypeError(f"{method}() missing required positional arguments: 'db', 'uid', 'passwd', "
                                "'model', 'method'")
        database, uid, password, model_name, method_name = args[:5]
        if method == "execute_kw":
            call_args = args[5] if len(args) > 5 else []
            call_kwargs = args[6] if len(args) > 6 else {}
        else:
            call_args, call_kwargs = list(args[5:]), {}
        if database != DATABASE:
            raise DatabaseNotFound(database)
        user = self.credentials.check_password(uid, password)
        if user is None:
            raise AccessDenied()
        if not isinstance(call_args, list | tuple) or not isinstance(call_kwargs or {}, dict):
            raise OdooTypeError("execute_kw() expects a list of arguments and a dictionary of keyword arguments")
        if not isinstance(model_name, str) or not isinstance(method_name, str):
            raise OdooValueError("The model and method names must be strings")
        model, method_def = methods.resolve(model_name, method_name, for_json2=False)
        call_args, call_kwargs = list(call_args), dict(call_kwargs or {})
        ids: Any = ()
        if not method_def.api_model:
            if not call_args:
                raise OdooTypeError(f"{model_name}.{method_name}() missing the record ids (first argument)")
            ids, call_args = call_args[0], call_args[1:]
        result = methods.call(self.store, user, model, method_def, ids, call_args, call_kwargs, False)
        if method_def.name == "create" and call_args and isinstance(call_args[0], dict):
            return result[0]  # Odoo answers a single id to a single dict, a list to a list
        if method_def.name == "create" and isinstance(call_kwargs.get("vals_list"), dict):
            return result[0]
        return result
