"""Bad ERP records go to ``raw_quarantine.records`` with the field and the reason; the rest loads."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.common.pii import PiiProtector
from pipelines.common.quarantine import Quarantine
from pipelines.erp import settings as erp
from pipelines.erp.tables import PageConverter
from revloop.crypto import FieldCipher, Keyring, MatchHasher, new_keyring_json
from tests.pipelines.erp.conftest import ErpHarness, warehouse_ids, warehouse_rows

MOVE_SPEC = next(spec for spec in erp.MODELS if spec.model == "account.move")


def _quarantined(database_url: str, model: str) -> list[tuple[Any, ...]]:
    return warehouse_rows(
        database_url,
        "select record_id, field, reason, resolved_at is not null from raw_quarantine.records "
        "where source = 'erp' and object = %s order by record_id, field", (model,),
    )


def test_invoice_in_unknown_currency_is_quarantined_and_the_rest_loads(erp_harness: ErpHarness,
                                                                        fresh_database: str) -> None:
    # Only an administrator can add a currency; Odoo does not check its code against ISO 4217.
    currency_id = erp_harness.admin().get_model("res.currency").create(
        vals_list=[{"name": "ZZZ", "symbol": "Z", "full_name": "Not a currency"}])[0]
    moves = erp_harness.writer().get_model("account.move")
    invoice_id = moves.create(vals_list=[{
        "move_type": "out_invoice", "partner_id": 1000, "currency_id": currency_id, "date": "2026-11-21",
        "invoice_line_ids": [[0, 0, {"product_id": 1, "quantity": 1, "price_unit": 99}]],
    }])[0]

    summary = erp_harness.load(fresh_database)

    assert summary.quarantined_by_object == {"res.currency": 1, "account.move": 1}
    assert _quarantined(fresh_database, "account.move") == [
        (str(invoice_id), "currency_id", "unknown currency code 'ZZZ'", False)]
    assert _quarantined(fresh_database, "res.currency")[0][:2] == (str(currency_id), "name")
    loaded_moves = warehouse_ids(fresh_database, "account_move")
    assert invoice_id not in loaded_moves
    assert len(loaded_moves) == moves.search_count(domain=[["move_type", "in", erp.INVOICE_TYPES]]) - 1
    assert summary.rows_by_table["account_move_line"] > 0  # the invoice's line itself is fine

    # Once the currency is corrected and the invoice written again, it loads and its rejection is resolved.
    erp_harness.admin().get_model("res.currency").write(ids=[currency_id], vals={"name": "XPF"})
    moves.write(ids=[invoice_id], vals={"ref": "currency corrected"})
    second = erp_harness.load(fresh_database)

    assert second.quarantined == 0
    assert invoice_id in warehouse_ids(fresh_database, "account_move")
    assert _quarantined(fresh_database, "account.move") == [
        (str(invoice_id), "currency_id", "unknown currency code 'ZZZ'", True)]


def test_unparseable_values_are_quarantined_when_a_page_holds_them(fresh_database: str, tmp_path: Any) -> None:
    # The sandbox, like Odoo, refuses to store a bad date or a non-numeric amount, so this page is crafted:
    # it is what a customised or broken server could answer.
    keyring = Keyring.from_json(new_keyring_json("test-1"))
    protector = PiiProtector("erp", FieldCipher(keyring), MatchHasher(keyring))
    good = {
        "id": 7, "create_date": "2026-11-01 10:00:00", "create_uid": [6, "Sync"], "write_date": "2026-11-02 11:00:00",
        "write_uid": [6, "Sync"], "name": "INV/2026/00007", "move_type": "out_invoice", "state": "posted",
        "payment_state": "paid", "partner_id": [1000, "Acme"], "company_id": [1, "Revloop Pte. Ltd."],
        "date": "2026-11-01", "invoice_date": "2026-11-01", "invoice_date_due": False, "currency_id": [1, "SGD"],
        "ref": False, "invoice_origin": False, "payment_reference": False, "narration": False,
        "amount_untaxed": 100.0, "amount_tax": 9.0, "amount_total": 109.0, "amount_residual": 0.0,
        "reversed_entry_id": False,
    }
    bad_date = {**good, "id": 8, "invoice_date": "31/11/2026"}
    bad_amount = {**good, "id": 9, "amount_total": "one hundred"}
    no_id = {**good, "id": False}
    fields = [*erp.MAGIC_FIELDS, *MOVE_SPEC.fields]

    with Quarantine(fresh_database, "erp", FieldCipher(keyring)) as quarantine:
        converter = PageConverter(MOVE_SPEC, fields, protector, quarantine)
        table = converter.convert([good, bad_date, bad_amount, no_id])

    assert table is not None and table.column("id").to_pylist() == [7]
    assert table.schema == converter.schema
    assert _quarantined(fresh_database, "account.move") == [
        ("8", "invoice_date", "not a date: '31/11/2026'", False),
        ("9", "amount_total", "not a number: 'one hundred'", False),
        (None, "id", "required identifier is missing", False),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(6196000.01, "6196000.0100000000"), (0.1 + 0.2, "0.3000000000"), (28800000, "28800000.0000000000")],
)
def test_amount_keeps_its_decimal_value_when_converted(value: float, expected: str) -> None:
    keyring = Keyring.from_json(new_keyring_json("test-1"))
    converter = PageConverter(MOVE_SPEC, [("id", erp.INT), ("amount_total", erp.DECIMAL)],
                              PiiProtector("erp", FieldCipher(keyring), MatchHasher(keyring)), None)
    table = converter.convert([{"id": 1, "amount_total": value}])
    assert table is not None and str(table.column("amount_total")[0].as_py()) == expected
