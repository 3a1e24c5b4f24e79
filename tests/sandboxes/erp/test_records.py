"""Contract tests of the generic ORM methods: domains, paging, CRUD and the incremental ``write_date`` pattern."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.sandboxes.erp.conftest import created_id, error_name, records


@pytest.mark.parametrize(("domain", "check"), [
    ([("is_company", "=", True)], lambda r: r["is_company"] is True),
    ([("vat", "!=", False)], lambda r: r["vat"]),
    ([("customer_rank", ">", 0)], lambda r: r["customer_rank"] > 0),
    ([("customer_rank", ">=", 2)], lambda r: r["customer_rank"] >= 2),
    ([("customer_rank", "<", 2)], lambda r: r["customer_rank"] < 2),
    ([("customer_rank", "<=", 1)], lambda r: r["customer_rank"] <= 1),
    ([("id", "in", [1000, 1001])], lambda r: r["id"] in (1000, 1001)),
    ([("id", "not in", [1000, 1001])], lambda r: r["id"] not in (1000, 1001)),
    ([("name", "like", "Ltd")], lambda r: "Ltd" in r["name"]),
    ([("name", "ilike", "ltd")], lambda r: "ltd" in r["name"].lower()),
    ([("name", "=like", "PT %")], lambda r: r["name"].startswith("PT ")),
    ([("name", "=ilike", "pt %")], lambda r: r["name"].lower().startswith("pt ")),
    (["|", ("country_id.code", "=", "SG"), ("country_id.code", "=", "JP")],
     lambda r: r["country_id"][1] in ("Singapore", "Japan")),
    (["!", ("is_company", "=", True)], lambda r: r["is_company"] is False),
])
def test_search_read_filters_when_given_each_operator(sync: Any, domain: list[Any], check: Any) -> None:
    found = sync.get_model("res.partner").search_read(domain, ["name", "vat", "is_company", "customer_rank",
                                                               "country_id"])
    assert all(check(r) for r in found), found[:3]
    everyone = sync.get_model("res.partner").search_count([])
    if domain[0] != "!":
        assert 0 < len(found) <= everyone


def test_child_of_finds_the_contacts_when_searching_under_a_company(sync: Any) -> None:
    partners = sync.get_model("res.partner")
    contact = created_id(partners.create({"name": "Ana Contact", "parent_id": 1000}))
    assert set(partners.search([("id", "child_of", 1000)])) == {1000, contact}
    assert records(partners.read([contact], ["display_name"]))[0]["display_name"].endswith(", Ana Contact")
    partners.unlink([contact])


def test_paging_visits_every_invoice_once_when_ordered_by_write_date_and_id(sync: Any) -> None:
    moves = sync.get_model("account.move")
    total = moves.search_count([])
    seen: list[int] = []
    for offset in range(0, total + 50, 50):
        page = moves.search([], offset, 50, "write_date asc, id asc")
        seen += page
    assert len(seen) == len(set(seen)) == total


def test_search_read_projects_fields_when_a_field_list_is_given(sync: Any) -> None:
    rows = sync.get_model("account.move").search_read([("state", "=", "posted")], ["name", "partner_id"], limit=3,
                                                      order="name asc")
    assert len(rows) == 3
    assert all(set(r) == {"id", "name", "partner_id"} for r in rows)
    assert rows[0]["name"] < rows[1]["name"] < rows[2]["name"]
    assert isinstance(rows[0]["partner_id"], list) and isinstance(rows[0]["partner_id"][1], str)


def test_archived_partners_are_hidden_when_active_is_not_in_the_domain(sync: Any) -> None:
    partners = sync.get_model("res.partner")
    name = f"Archived Co {uuid.uuid4().hex[:8]}"
    archived = created_id(partners.create({"name": name, "active": False}))
    assert archived not in partners.search([("name", "=", name)])
    assert partners.search([("name", "=", name), ("active", "=", False)]) == [archived]
    assert partners.search([("name", "=", name)], context={"active_test": False}) == [archived]
    assert records(partners.read([archived], ["active"]))[0]["active"] is False


def test_create_write_unlink_round_trip_when_managing_a_partner(sync: Any) -> None:
    partners = sync.get_model("res.partner")
    partner_id = created_id(partners.create({"name": "Round Trip Pte Ltd", "is_company": True, "country_id": 1}))
    assert partner_id >= 1_000_000_000
    partners.write([partner_id], {"email": "ap@roundtrip.sg"})
    row = records(partners.read([partner_id], ["email", "country_id", "create_date", "write_date"]))[0]
    assert row["email"] == "ap@roundtrip.sg"
    assert row["country_id"] == [1, "Singapore"]
    assert len(row["write_date"]) == 19
    assert partners.unlink([partner_id]) is True
    with pytest.raises(Exception) as caught:
        partners.read([partner_id], ["name"])
    assert error_name(caught.value) == "odoo.exceptions.MissingError"


def test_create_returns_ids_when_given_a_list_of_values(sync: Any) -> None:
    ids = sync.get_model("res.partner").create([{"name": "Batch A"}, {"name": "Batch B"}])
    assert isinstance(ids, list) and len(ids) == 2
    sync.get_model("res.partner").unlink(ids)


def test_write_date_moves_when_a_record_is_written(sync: Any) -> None:
    partners = sync.get_model("res.partner")
    before = records(partners.read([1001], ["write_date"]))[0]["write_date"]
    partners.write([1001], {"phone": "+65 6000 0001"})
    after = records(partners.read([1001], ["write_date"]))[0]["write_date"]
    assert after >= before  # reads show whole seconds; the stored value keeps microseconds, as in Odoo
    changed = partners.search_read([("write_date", ">", before)], ["id"])
    assert 1001 in [r["id"] for r in changed]


def test_name_search_matches_display_names_when_given_a_fragment(sync: Any) -> None:
    products = sync.get_model("product.product")
    found = products.name_search("RL-FX")
    assert found and found[0][1].startswith("[RL-FX]")


def test_unknown_selection_value_is_refused_when_creating_an_invoice(sync: Any) -> None:
    with pytest.raises(Exception) as caught:
        sync.get_model("account.move").create({"move_type": "bogus", "partner_id": 1000})
    assert "Wrong value for account.move.move_type: 'bogus'" in str(caught.value)


def test_missing_required_field_is_a_validation_error_when_creating(sync: Any) -> None:
    with pytest.raises(Exception) as caught:
        sync.get_model("account.move.line").create({"name": "a line without its invoice"})
    # Odoo's legacy /xmlrpc/ fault strings report every UserError subclass as "UserError".
    assert error_name(caught.value) in ("odoo.exceptions.ValidationError", "odoo.exceptions.UserError")
    assert "Field: Journal Entry (move_id)" in str(caught.value)


def test_access_error_is_raised_when_the_sync_key_creates_a_product(sync: Any) -> None:
    with pytest.raises(Exception) as caught:
        sync.get_model("product.product").create({"name": "Not allowed", "list_price": 1.0})
    assert error_name(caught.value) == "odoo.exceptions.AccessError"
