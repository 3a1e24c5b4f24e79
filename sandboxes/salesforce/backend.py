"""The Salesforce sandbox as the common app sees it: routes, API budget, admin endpoints, reset."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import urllib.parse
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from sandboxes.common.app import json_response
from sandboxes.common.config import SandboxConfig
from sandboxes.common.faults import ADMIN_PREFIX, FaultState
from sandboxes.salesforce.auth import OAuthService
from sandboxes.salesforce.bulk import BulkQueryJobs
from sandboxes.salesforce.errors import OAuthError, SalesforceError, SalesforceFaultRenderer, limit_exceeded, not_found
from sandboxes.salesforce.records import RecordService
from sandboxes.salesforce.rest import Limits, RestApi
from sandboxes.salesforce.schema import SOBJECTS, object_of_id, sobject
from sandboxes.salesforce.seed import bulk_insert, seed_store
from sandboxes.salesforce.store import SalesforceStore
from sandboxes.salesforce.values import normalize_id

logger = logging.getLogger(__name__)

API_VERSION = "62.0"
OLDEST_VERSION = 20
DEFAULT_DAILY_API_BUDGET = 5_000_000
_VERSION_RE = re.compile(r"^v(\d{2})\.0$")
_SEASONS = ("Winter", "Spring", "Summer")


def version_label(major: int) -> str:
    """``Winter '25`` for 62: three releases a year since Winter '11 (API 20.0)."""
    step = major - OLDEST_VERSION
    return f"{_SEASONS[step % 3]} '{11 + step // 3}"


class ApiBudget:
    """The org's rolling daily API allocation (reset at midnight UTC here), kept across restarts."""

    def __init__(self, store: SalesforceStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self.maximum = int(store.get_meta("api_budget_max") or DEFAULT_DAILY_API_BUDGET)
        self.day = store.get_meta("api_budget_day") or dt.datetime.now(dt.UTC).date().isoformat()
        self.used = int(store.get_meta("api_budget_used") or 0)

    def _roll(self) -> None:
        today = dt.datetime.now(dt.UTC).date().isoformat()
        if today != self.day:
            self.day, self.used = today, 0

    def consume(self) -> None:
        """Count one call, or raise REQUEST_LIMIT_EXCEEDED when the allocation is spent."""
        with self._lock:
            self._roll()
            if self.used >= self.maximum:
                raise limit_exceeded()
            self.used += 1
            if self.used % 1000 == 0:
                self.save()

    def header(self) -> str:
        return f"api-usage={self.used}/{self.maximum}"

    def set(self, maximum: int | None = None, used: int | None = None) -> None:
        with self._lock:
            self._roll()
            if maximum is not None:
                self.maximum = maximum
            if used is not None:
                self.used = used
            self.save()

    def save(self) -> None:
        for key, value in (
            ("api_budget_max", self.maximum),
            ("api_budget_day", self.day),
            ("api_budget_used", self.used),
        ):
            self.store.set_meta(key, str(value))


class SalesforceBackend:
    """Implements the common :class:`~sandboxes.common.app.SandboxBackend` protocol for Salesforce."""

    name = "salesforce"

    def __init__(self, config: SandboxConfig, faults: FaultState, store: SalesforceStore) -> None:
        self.config = config
        self.faults = faults
        self.store = store
        self.renderer = SalesforceFaultRenderer(faults.random)
        self.oauth = OAuthService(store, config.system_dir / "credentials.json", faults, config.base_url)
        self.budget = ApiBudget(store)
        self.bulk = BulkQueryJobs(store)
        self.rest = RestApi(store, self._limits, self.bulk)

    def _limits(self) -> Limits:
        return Limits(self.budget.maximum, self.budget.used, self.bulk.jobs_created_today)

    # ---- protocol ----------------------------------------------------------------------------------

    def routes(self) -> Sequence[BaseRoute]:
        every = ["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"]
        return [
            Route("/services/oauth2/token", self.token, methods=every),
            Route("/services/oauth2/userinfo", self.userinfo, methods=["GET", "POST"]),
            Route("/id/{org}/{user}", self.userinfo, methods=["GET", "POST"]),
            Route("/services/data", self.versions, methods=["GET"]),
            Route("/services/data/", self.versions, methods=["GET"]),
            Route("/services/data/{version}", self.data_api, methods=every),
            Route("/services/data/{version}/{path:path}", self.data_api, methods=every),
            Route("/services/async/{version}/{path:path}", self.async_api, methods=every),
        ]

    def admin_routes(self) -> Sequence[BaseRoute]:
        prefix = f"{ADMIN_PREFIX}/salesforce"
        return [
            Route(f"{prefix}/apps", self.admin_apps, methods=["GET"]),
            Route(f"{prefix}/tokens/expire", self.admin_expire_tokens, methods=["POST"]),
            Route(f"{prefix}/refresh-token", self.admin_refresh_token, methods=["POST"]),
            Route(f"{prefix}/api-budget", self.admin_budget, methods=["GET", "PUT", "POST"]),
            Route(f"{prefix}/counts", self.admin_counts, methods=["GET"]),
            Route(f"{prefix}/undelete", self.admin_undelete, methods=["POST"]),
            Route(f"{prefix}/bulk-insert", self.admin_bulk_insert, methods=["POST"]),
        ]

    def client_of(self, scope: Scope) -> str:
        if scope["path"].startswith("/services/oauth2/token"):
            return "oauth"
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization")
        return self.oauth.client_label(authorization.decode("latin-1") if authorization else None)

    def is_write(self, scope: Scope) -> bool:
        path = scope["path"]
        return (
            scope.get("method") in ("POST", "PATCH", "PUT", "DELETE")
            and path.startswith("/services/data/")
            and "/jobs/query" not in path
        )

    def reset(self, seed: int, scale: str) -> dict[str, Any]:
        self.rest.cursors.clear()
        self.store.drop_all()
        return seed_store(self.store, seed, scale, dt.datetime.now(dt.UTC).date())

    def stats(self) -> dict[str, Any]:
        return self.store.counts()

    async def startup(self) -> None:
        logger.info("salesforce sandbox ready: %s", self.stats())

    async def shutdown(self) -> None:
        self.budget.save()
        self.store.close()

    # ---- OAuth and identity ------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        if request.method != "POST":
            return OAuthError("invalid_request", "must use HTTP POST").response()
        # The token endpoint takes application/x-www-form-urlencoded; parsed here to need no multipart library.
        form = dict(urllib.parse.parse_qsl((await request.body()).decode("utf-8", errors="replace")))
        form.update({k: v for k, v in request.query_params.items() if k not in form})
        try:
            return json_response(self.oauth.token_endpoint(form))
        except OAuthError as exc:
            return exc.response()

    async def userinfo(self, request: Request) -> Response:
        try:
            session = self.oauth.authenticate(request.headers.get("authorization"))
        except SalesforceError:
            return Response("Bad_OAuth_Token", status_code=403, media_type="text/plain")
        app = session.app
        return json_response(
            {
                "sub": self.oauth.identity_url(app),
                "user_id": app.user_id,
                "organization_id": self.oauth.org_id,
                "preferred_username": app.username,
                "nickname": app.name,
                "name": app.name,
                "email": app.username,
                "email_verified": True,
                "active": True,
                "user_type": "STANDARD",
                "language": "en_US",
                "locale": "en_SG",
                "utcOffset": 28800000,
                "zoneinfo": "Asia/Singapore",
                "urls": {
                    "rest": f"{self.config.base_url}/services/data/v{{version}}/",
                    "sobjects": f"{self.config.base_url}/services/data/v{{version}}/sobjects/",
                    "query": f"{self.config.base_url}/services/data/v{{version}}/query/",
                },
            }
        )

    # ---- REST --------------------------------------------------------------------------------------

    @staticmethod
    def _supported_major(version: str) -> int | None:
        match = _VERSION_RE.match(version)
        if match is None:
            return None
        major = int(match.group(1))
        return major if OLDEST_VERSION <= major <= int(float(API_VERSION)) else None

    async def versions(self, request: Request) -> Response:
        newest = int(float(API_VERSION))
        return json_response(
            [
                {"label": version_label(major), "url": f"/services/data/v{major}.0", "version": f"{major}.0"}
                for major in range(OLDEST_VERSION, newest + 1)
            ]
        )

    async def data_api(self, request: Request) -> Response:
        major = self._supported_major(request.path_params["version"])
        path = request.path_params.get("path", "").strip("/")
        headers: dict[str, str] = {}
        try:
            if major is None:
                raise not_found()
            session = self.oauth.authenticate(request.headers.get("authorization"))
            self.budget.consume()
            headers["Sforce-Limit-Info"] = self.budget.header()
            response = await self.rest.dispatch(request, session, f"{major}.0", path)
        except SalesforceError as exc:
            response = exc.response()
        except Exception:  # never drop a client: answer as the real service does for internal errors
            logger.exception("unhandled error on %s %s", request.method, request.url.path)
            response = self.renderer.server_error()
        response.headers.update(headers or {"Sforce-Limit-Info": self.budget.header()})
        return response

    async def async_api(self, request: Request) -> Response:
        """Bulk API 1.0: this org has the Async API turned off, so tools fall back to REST or Bulk 2.0."""
        code, message = "FeatureNotEnabled", "Async API not enabled"
        if "json" in request.headers.get("content-type", "") or "json" in request.headers.get("accept", ""):
            return json_response({"exceptionCode": code, "exceptionMessage": message}, status_code=400)
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?><error xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
            f"<exceptionCode>{code}</exceptionCode><exceptionMessage>{message}</exceptionMessage></error>"
        )
        return Response(xml, status_code=400, media_type="application/xml")

    # ---- admin -------------------------------------------------------------------------------------

    async def admin_apps(self, request: Request) -> Response:
        return json_response(
            {
                "org_id": self.oauth.org_id,
                "token_url": f"{self.config.base_url}/services/oauth2/token",
                "apps": {
                    name: {
                        "client_id": a.client_id,
                        "client_secret": a.client_secret,
                        "username": a.username,
                        "password": a.password,
                        "user_id": a.user_id,
                    }
                    for name, a in self.oauth.apps.items()
                },
            }
        )

    async def admin_expire_tokens(self, request: Request) -> Response:
        return json_response({"expired": self.oauth.expire_all()})

    async def admin_refresh_token(self, request: Request) -> Response:
        body = await _admin_body(request)
        app = str(body.get("app", "revloop-sync"))
        if app not in self.oauth.apps:
            return json_response(
                {"error": f"unknown app {app!r}; known: {', '.join(self.oauth.apps)}"}, status_code=400
            )
        return json_response({"app": app, "refresh_token": self.oauth.issue_refresh_token(app)})

    async def admin_budget(self, request: Request) -> Response:
        if request.method != "GET":
            body = await _admin_body(request)
            try:
                maximum = int(body["max"]) if "max" in body else None
                used = int(body["used"]) if "used" in body else None
            except (TypeError, ValueError):
                return json_response({"error": "max and used must be integers"}, status_code=400)
            self.budget.set(maximum, used)
        return json_response({"max": self.budget.maximum, "used": self.budget.used, "day": self.budget.day})

    async def admin_counts(self, request: Request) -> Response:
        return json_response(
            {
                name: {"live": self.store.count(o), "all": self.store.count(o, include_deleted=True)}
                for name, o in SOBJECTS.items()
            }
        )

    async def admin_undelete(self, request: Request) -> Response:
        body = await _admin_body(request)
        record_id = normalize_id(str(body.get("id", "")))
        type_name = object_of_id(record_id) if record_id else None
        if record_id is None or type_name is None:
            return json_response({"error": "id must be a record Id"}, status_code=400)
        restored = RecordService(self.store).undelete(SOBJECTS[type_name], record_id)
        return json_response({"id": record_id, "undeleted": restored})

    async def admin_bulk_insert(self, request: Request) -> Response:
        """Insert many records straight into the store (for volume tests); ``{n}`` in values is the row number."""
        body = await _admin_body(request)
        target = sobject(str(body.get("sobject", "")))
        try:
            if target is None:
                raise ValueError(f"unknown sobject {body.get('sobject')!r}")
            count = int(body.get("count", 0))
            inserted = bulk_insert(self.store, target, count, dict(body.get("fields") or {}))
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, status_code=400)
        return json_response({"sobject": target.name, "inserted": inserted})


async def _admin_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}
