"""Contract tests of external identifiers: ``ir.model.data`` and Odoo's ``load`` import."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.sandboxes.erp.conftest import created_id, error_name, records


def test_external_id_resolves_when_registered_in_ir_model_data(sync: Any) -> None:
    data = sync.get_model("ir.model.data")
    name = f"partner_{uuid.uuid4().hex[:8]}"
    created_id(data.create({"module": "revloop", "name": name, "model": "res.partner", "res_id": 1000}))
    found = data.search_read([("module", "=", "revloop"), ("name", "=", name)], ["model", "res_id", "complete_name"])
    assert found == [{"id": found[0]["id"], "model": "res.partner", "res_id": 1000, "complete_name": f"revloop.{name}"}]


def test_duplicate_module_and_name_is_refused_when_registered_twice(sync: Any) -> None:
    data = sync.get_model("ir.model.data")
    name = f"dup_{uuid.uuid4().hex[:8]}"
    data.create({"module": "revloop", "name": name, "model": "res.partner", "res_id": 1000})
    with pytest.raises(Exception) as caught:
        data.create({"module": "revloop", "name": name, "model": "res.partner", "res_id": 1001})
    assert error_name(caught.value) in ("odoo.exceptions.ValidationError", "odoo.exceptions.UserError")
    assert "ir_model_data_module_name_uniq_index" in str(caught.value)


def test_load_creates_then_updates_when_the_same_external_id_is_imported_twice(sync: Any) -> None:
    partners = sync.get_model("res.partner")
    xmlid = f"revloop.acct_{uuid.uuid4().hex[:8]}"
    fields = ["id", "name", "country_id/id", "is_company", "customer_rank"]
    first = partners.load(fields, [[xmlid, "Loaded Pte Ltd", "", "1", "1"]])
    assert first["messages"] == [] and len(first["ids"]) == 1
    second = partners.load(["id", "name", "country_id"], [[xmlid, "Loaded Pte. Ltd.", "Singapore"]])
    assert second["ids"] == first["ids"]
    row = records(partners.read(first["ids"], ["name", "country_id", "is_company"]))[0]
    assert (row["name"], row["country_id"], row["is_company"]) == ("Loaded Pte. Ltd.", [1, "Singapore"], True)


def test_load_writes_nothing_when_a_row_of_the_batch_is_bad(sync: Any) -> None:
    partners = sync.get_model("res.partner")
    tag = uuid.uuid4().hex[:8]
    result = partners.load(["id", "name", "parent_id/id"], [
        [f"ok_{tag}", f"Good {tag}", ""],
        [f"bad_{tag}", f"Bad {tag}", "revloop.no_such_partner"],
    ])
    assert result["ids"] is False
    assert result["messages"][0]["type"] == "error"
    assert result["messages"][0]["record"] == 1
    assert "No matching record found for external id 'revloop.no_such_partner'" in result["messages"][0]["message"]
    assert partners.search_count([("name", "in", [f"Good {tag}", f"Bad {tag}"])]) == 0


def test_load_links_invoices_to_partners_when_referenced_by_external_id(sync: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    sync.get_model("res.partner").load(["id", "name"], [[f"revloop.cust_{tag}", f"Customer {tag}"]])
    moves = sync.get_model("account.move").load(
        ["id", "move_type", "partner_id/id", "currency_id/.id", "ref"],
        [[f"revloop.inv_{tag}", "out_invoice", f"revloop.cust_{tag}", "1", f"rl-inv-{tag}"]],
    )
    assert moves["messages"] == []
    invoice = records(sync.get_model("account.move").read(moves["ids"], ["partner_id", "ref", "state"]))[0]
    assert invoice["partner_id"][1] == f"Customer {tag}"
    assert (invoice["ref"], invoice["state"]) == (f"rl-inv-{tag}", "draft")
