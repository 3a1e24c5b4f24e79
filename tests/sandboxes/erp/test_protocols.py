"""Contract tests of the ERP sandbox's transport: authentication, errors, faults and persistence."""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import httpx
import odoolib
import pytest
from odoolib.tools import AuthenticationError, JsonRPCException

from tests.sandbox_harness import start_sandbox
from tests.sandboxes.erp.conftest import DATABASE, connect, error_name, json2, odoo_error


def test_version_and_login_answer_when_called_over_jsonrpc_and_xmlrpc(erp: Any, keys: dict[str, str]) -> None:
    for protocol in ("jsonrpc", "xmlrpc"):
        connection = connect(erp, protocol, "revloop-sync", keys["revloop-sync"])
        assert connection.get_service("common").version()["server_version"] == "19.0"
        connection.check_login()
        assert connection.user_id == 6


def test_login_returns_false_when_the_key_is_wrong(erp: Any) -> None:
    common = connect(erp, "jsonrpc", "revloop-sync", "nope").get_service("common")
    assert common.login(DATABASE, "revloop-sync", "nope") is False
    with pytest.raises(AuthenticationError):
        connect(erp, "xmlrpc", "revloop-sync", "nope").check_login()


def test_json2_answers_401_when_the_api_key_is_bad(erp: Any) -> None:
    response = json2(erp, "bad-key", "res.partner", "search", {"domain": []})
    assert response.status_code == 401
    assert response.json()["name"] == "werkzeug.exceptions.Unauthorized"
    assert response.headers["WWW-Authenticate"] == "bearer"
    with pytest.raises(AuthenticationError):
        connect(erp, "json2", "x", "bad-key").get_model("res.partner").search_count(domain=[])


def test_json2_answers_401_when_the_authorization_header_is_missing(erp: Any) -> None:
    response = httpx.post(f"{erp.base_url}/json/2/res.partner/search", json={"domain": []})
    assert response.status_code == 401
    assert response.json()["message"] == 'User not authenticated, use the "Authorization" header'


def test_access_error_is_raised_when_a_read_only_key_writes(erp: Any, keys: dict[str, str]) -> None:
    for protocol in ("json2", "jsonrpc", "xmlrpc"):
        partners = connect(erp, protocol, "revloop-reader", keys["revloop-reader"]).get_model("res.partner")
        assert partners.search_count([]) > 0
        with pytest.raises(Exception) as caught:
            partners.write([1000], {"phone": "+65 0000 0000"})
        assert error_name(caught.value) == "odoo.exceptions.AccessError"
    response = json2(erp, keys["revloop-reader"], "res.partner", "create", {"vals_list": [{"name": "X"}]})
    assert response.status_code == 403
    body = response.json()
    assert list(body) == ["name", "message", "arguments", "context", "debug"]
    assert "You are not allowed to create 'Contact' (res.partner) records." in body["message"]


def test_access_error_is_raised_when_the_restricted_key_reads_invoices(erp: Any, keys: dict[str, str]) -> None:
    response = json2(erp, keys["revloop-restricted"], "account.move", "search_count", {"domain": []})
    assert response.status_code == 403
    assert response.json()["name"] == "odoo.exceptions.AccessError"
    ok = json2(erp, keys["revloop-restricted"], "res.partner", "search_count", {"domain": []})
    assert ok.status_code == 200


def test_unknown_model_is_refused_when_called_over_each_protocol(erp: Any, keys: dict[str, str]) -> None:
    response = json2(erp, keys["revloop-sync"], "no.such.model", "search", {"domain": []})
    assert response.status_code == 404
    assert response.json()["message"] == "the model 'no.such.model' does not exist"
    for protocol in ("jsonrpc", "xmlrpc"):
        with pytest.raises((JsonRPCException, xmlrpc.client.Fault)) as caught:
            connect(erp, protocol, "revloop-sync", keys["revloop-sync"]).get_model("no.such.model").search([])
        assert "no.such.model doesn't exist" in str(odoo_error(caught.value)["message"])


def test_json2_answers_422_when_arguments_do_not_bind(erp: Any, keys: dict[str, str]) -> None:
    missing = json2(erp, keys["revloop-sync"], "res.partner", "search", {})
    assert missing.status_code == 422
    assert missing.json()["message"] == "missing a required argument: 'domain'"
    unexpected = json2(erp, keys["revloop-sync"], "res.partner", "search", {"domain": [], "colour": "red"})
    assert unexpected.status_code == 422
    assert unexpected.json()["name"] == "werkzeug.exceptions.UnprocessableEntity"
    with_ids = json2(erp, keys["revloop-sync"], "res.partner", "create", {"ids": [1], "vals_list": []})
    assert with_ids.status_code == 422
    assert with_ids.json()["message"] == "cannot call res.partner.create with ids"


def test_bad_arguments_raise_type_error_when_called_over_jsonrpc(erp: Any, keys: dict[str, str]) -> None:
    partners = connect(erp, "jsonrpc", "revloop-sync", keys["revloop-sync"]).get_model("res.partner")
    with pytest.raises(JsonRPCException) as caught:
        partners.search([], 0, 10, "id", "one too many")
    assert caught.value.error["data"]["name"] == "builtins.TypeError"


def test_invalid_domain_field_answers_value_error_500_when_called_over_json2(erp: Any, keys: dict[str, str]) -> None:
    response = json2(erp, keys["revloop-sync"], "res.partner", "search", {"domain": [["bad field", "=", "x"]]})
    assert response.status_code == 500
    assert response.json()["name"] == "builtins.ValueError"
    assert response.json()["message"] == "Invalid field res.partner.bad field in condition ('bad field', '=', 'x')"


def test_malformed_json_is_answered_in_odoo_shape_when_posted(erp: Any, keys: dict[str, str]) -> None:
    bad = json2(erp, keys["revloop-sync"], "res.partner", "search", b"not json")
    assert bad.status_code == 400
    assert bad.json()["name"] == "werkzeug.exceptions.BadRequest"
    assert bad.json()["message"].startswith("could not parse the body as json")
    not_object = json2(erp, keys["revloop-sync"], "res.partner", "search", b"null")
    assert not_object.status_code == 400
    assert not_object.json()["message"] == "could not parse the body, expecting a json object"
    rpc = httpx.post(f"{erp.base_url}/jsonrpc", content=b"{nope", headers={"Content-Type": "application/json"})
    assert rpc.status_code == 400
    assert rpc.text == "Invalid JSON data"
    xml = httpx.post(f"{erp.base_url}/xmlrpc/2/object", content=b"<not-xml", headers={"Content-Type": "text/xml"})
    assert xml.status_code == 200
    with pytest.raises(xmlrpc.client.Fault):
        xmlrpc.client.loads(xml.content)
    assert httpx.get(f"{erp.base_url}/__sandbox__/health").json()["status"] == "ok"


def test_wrong_content_type_is_answered_415_when_posting_form_data(erp: Any, keys: dict[str, str]) -> None:
    response = httpx.post(f"{erp.base_url}/json/2/res.partner/search", data={"domain": "[]"},
                          headers={"Authorization": f"Bearer {keys['revloop-sync']}"})
    assert response.status_code == 415
    assert "Please verify the Content-Type request header" in response.text


def test_unknown_database_answers_404_when_named_in_the_header(erp: Any, keys: dict[str, str]) -> None:
    response = json2(erp, keys["revloop-sync"], "res.partner", "search", {"domain": []},
                     headers={"X-Odoo-Database": "elsewhere"})
    assert response.status_code == 404


def test_fields_get_describes_fields_when_asked_for_attributes(sync: Any) -> None:
    fields = sync.get_model("account.move").fields_get(attributes=["type", "string", "relation", "selection",
                                                                   "required", "readonly"])
    assert fields["partner_id"] == {"type": "many2one", "string": "Partner", "relation": "res.partner",
                                    "required": False, "readonly": False}
    assert fields["invoice_line_ids"]["type"] == "one2many"
    assert ["paid", "Paid"] in fields["payment_state"]["selection"]
    assert fields["amount_total"]["readonly"] is True


def test_server_errors_surface_to_the_client_when_the_down_profile_is_on(faults: Any, keys: dict[str, str]) -> None:
    faults.admin("PUT", "faults", {"profile": "down"})
    response = json2(faults, keys["revloop-sync"], "res.partner", "search_count", {"domain": []})
    assert response.status_code == 500
    assert response.json()["name"] == "werkzeug.exceptions.InternalServerError"
    with pytest.raises(JsonRPCException) as caught:
        connect(faults, "jsonrpc", "revloop-sync", keys["revloop-sync"]).get_model("res.partner").search_count([])
    assert caught.value.error["message"] == "Odoo Server Error"
    with pytest.raises(ValueError, match="Unexpected status code 500"):
        connect(faults, "json2", "x", keys["revloop-sync"]).get_model("res.partner").search_count(domain=[])


def test_rate_limits_answer_429_with_retry_after_when_the_rate_limit_knob_is_on(faults: Any,
                                                                                keys: dict[str, str]) -> None:
    faults.admin("PUT", "faults", {"rate_limit_rate": 1.0, "retry_after_seconds": 7})
    response = json2(faults, keys["revloop-sync"], "res.partner", "search_count", {"domain": []})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json()["name"] == "werkzeug.exceptions.TooManyRequests"
    with pytest.raises(xmlrpc.client.ProtocolError) as caught:
        connect(faults, "xmlrpc", "revloop-sync", keys["revloop-sync"]).get_service("common").version()
    assert caught.value.errcode == 429
    assert caught.value.headers["retry-after"] == "7"


def test_lock_conflicts_surface_as_serialization_failures_when_writes_collide(faults: Any,
                                                                              keys: dict[str, str]) -> None:
    faults.admin("PUT", "faults", {"lock_error_rate": 1.0})
    write = json2(faults, keys["revloop-sync"], "res.partner", "write", {"ids": [1000], "vals": {"phone": "1"}})
    assert write.status_code == 500
    assert write.json()["name"] == "psycopg2.errors.SerializationFailure"
    read = json2(faults, keys["revloop-sync"], "res.partner", "search_count", {"domain": []})
    assert read.status_code == 200


def test_data_survives_when_the_server_restarts(tmp_path: Any) -> None:
    first = start_sandbox("erp", tmp_path, seed=7, scale="empty")
    try:
        key = first.env()["REVLOOP_ERP_API_KEY"]
        created = json2(first, key, "res.partner", "create", {"vals_list": [{"name": "Kept Pte Ltd"}]}).json()
    finally:
        first.stop()
    second = start_sandbox("erp", tmp_path, seed=7, scale="empty")
    try:
        assert second.env()["REVLOOP_ERP_API_KEY"] == key
        port = int(second.base_url.rsplit(":", 1)[1])
        partners = odoolib.get_connection(hostname="127.0.0.1", port=port, protocol="json2", database=DATABASE,
                                          password=key).get_model("res.partner")
        assert partners.search_read([("id", "in", created)], ["name"]) == [{"id": created[0], "name": "Kept Pte Ltd"}]
    finally:
        second.stop()
