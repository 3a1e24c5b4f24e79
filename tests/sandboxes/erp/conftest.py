"""Fixtures for the ERP sandbox's contract tests: one seeded server per session, clients per protocol."""

from __future__ import annotations

import json
import xmlrpc.client
from collections.abc import Iterator
from typing import Any

import httpx
import odoolib
import pytest
from odoolib.tools import JsonRPCException

from tests.sandbox_harness import RunningSandbox, start_sandbox

PROTOCOLS = ("json2", "jsonrpc", "xmlrpc")
DATABASE = "revloop"


@pytest.fixture(scope="session")
def erp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    sandbox = start_sandbox("erp", tmp_path_factory.mktemp("erp-data"), seed=42, scale="demo")
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="session")
def keys(erp: RunningSandbox) -> dict[str, str]:
    """API key per integration login, from the sandbox's admin endpoint."""
    return {u["login"]: u["api_key"] for u in erp.admin("GET", "erp/credentials")["users"]}


def connect(erp: RunningSandbox, protocol: str, login: str, key: str) -> Any:
    port = int(erp.base_url.rsplit(":", 1)[1])
    return odoolib.get_connection(hostname="127.0.0.1", port=port, protocol=protocol, database=DATABASE,
                                  login=login, password=key)


@pytest.fixture(params=PROTOCOLS)
def sync(request: pytest.FixtureRequest, erp: RunningSandbox, keys: dict[str, str]) -> Any:
    """The read-write sync integration, over each protocol odoolib speaks."""
    return connect(erp, request.param, "revloop-sync", keys["revloop-sync"])


@pytest.fixture
def faults(erp: RunningSandbox) -> Iterator[RunningSandbox]:
    """The sandbox, with its faults switched back off after the test."""
    yield erp
    erp.admin("PUT", "faults", {"profile": "none"})


def odoo_error(exc: BaseException) -> dict[str, Any]:
    """The Odoo error (``name``, ``message``...) carried by whichever exception the client raised."""
    if isinstance(exc, JsonRPCException):
        return exc.error["data"]
    if isinstance(exc, xmlrpc.client.Fault):
        code = exc.faultCode
        if isinstance(code, str) and code.startswith("warning -- "):
            # odoolib calls /xmlrpc/<service>, where Odoo words faults "warning -- <Error>\n\n<message>".
            kind, _, message = code.removeprefix("warning -- ").partition("\n\n")
            return {"name": f"odoo.exceptions.{kind}", "message": message}
        return {"name": code, "message": exc.faultString if isinstance(code, int) else code}
    text = str(exc)
    start = text.index("{")
    return json.JSONDecoder().raw_decode(text[start:])[0]


def error_name(exc: BaseException) -> str:
    """The Odoo exception name, whatever the protocol (XML-RPC's integer fault codes mapped back)."""
    name = odoo_error(exc)["name"]
    if isinstance(name, int):
        return {2: "odoo.exceptions.UserError", 3: "odoo.exceptions.AccessDenied",
                4: "odoo.exceptions.AccessError"}.get(name, "application error")
    return name


def json2(erp: RunningSandbox, key: str, model: str, method: str, body: Any, **kwargs: Any) -> httpx.Response:
    """A raw JSON-2 call, for requests the client library cannot express."""
    headers = {"Authorization": f"Bearer {key}", "X-Odoo-Database": DATABASE, **kwargs.pop("headers", {})}
    if isinstance(body, bytes | str):
        return httpx.post(f"{erp.base_url}/json/2/{model}/{method}", content=body,
                          headers={"Content-Type": "application/json", **headers}, timeout=30)
    return httpx.post(f"{erp.base_url}/json/2/{model}/{method}", json=body, headers=headers, timeout=30)


def records(result: Any) -> list[dict[str, Any]]:
    """odoolib's JSON-2 ``read`` unwraps a single record; make every protocol's answer a list."""
    return [result] if isinstance(result, dict) else list(result)


def invoice_vals(partner_id: int = 1000, currency_id: int = 1, **extra: Any) -> dict[str, Any]:
    """A customer invoice with two lines: 2 x 100.50 and 1 x 49.995 (rounded half-up per line)."""
    return {
        "move_type": "out_invoice", "partner_id": partner_id, "currency_id": currency_id,
        "invoice_line_ids": [
            [0, 0, {"product_id": 1, "quantity": 2, "price_unit": 100.5}],
            [0, 0, {"product_id": 2, "quantity": 1, "price_unit": 49.995, "name": "Setup"}],
        ],
        **extra,
    }


def created_id(result: Any) -> int:
    """JSON-2 answers a list of ids to ``create``; the RPC protocols a single id for a single dict."""
    return result[0] if isinstance(result, list) else result
