"""Records unlinked in the ERP are kept as soft-deleted rows; records the warehouse lacks are recovered."""

from __future__ import annotations

import psycopg
import pytest

from tests.pipelines.erp.conftest import ErpHarness, warehouse_ids, warehouse_rows


@pytest.fixture(scope="module")
def loaded(erp_harness: ErpHarness, module_database: str) -> str:
    erp_harness.load(module_database)
    return module_database


def test_unlinked_invoice_and_its_lines_are_flagged_deleted_when_run_again(erp_harness: ErpHarness,
                                                                            loaded: str) -> None:
    moves = erp_harness.writer().get_model("account.move")
    invoice_id = moves.create(vals_list=[{
        "move_type": "out_invoice", "partner_id": 1000, "currency_id": 1, "date": "2026-11-20", "ref": "to-delete",
        "invoice_line_ids": [[0, 0, {"product_id": 1, "quantity": 1, "price_unit": 10}],
                             [0, 0, {"product_id": 2, "quantity": 3, "price_unit": 20}]],
    }])[0]
    erp_harness.load(loaded)
    line_ids = warehouse_rows(loaded, "select id from raw_erp.account_move_line where move_id = %s", (invoice_id,))
    assert len(line_ids) == 2

    moves.unlink(ids=[invoice_id])
    summary = erp_harness.load(loaded)

    assert summary.notes["deleted"] == {"account_move": 1, "account_move_line": 2}
    row = warehouse_rows(loaded, "select is_deleted, deleted_at, ref, amount_total from raw_erp.account_move "
                                 "where id = %s", (invoice_id,))
    assert row[0][0] is True and row[0][1] is not None
    assert row[0][2:] == ("to-delete", 70)  # the last-known values are kept
    assert warehouse_rows(loaded, "select bool_and(is_deleted) from raw_erp.account_move_line where move_id = %s",
                          (invoice_id,)) == [(True,)]
    assert invoice_id not in warehouse_ids(loaded, "account_move")


def test_deletion_is_recorded_once_when_run_again(erp_harness: ErpHarness, loaded: str) -> None:
    summary = erp_harness.load(loaded)
    assert "deleted" not in summary.notes
    assert "account_move" not in summary.rows_by_table


def test_unlinked_partner_is_flagged_deleted_with_its_pii_still_protected(erp_harness: ErpHarness,
                                                                           loaded: str) -> None:
    partners = erp_harness.writer().get_model("res.partner")
    partner_id = partners.create(vals_list=[{"name": "Aiko Watanabe", "email": "aiko@example.jp"}])[0]
    erp_harness.load(loaded)
    partners.unlink(ids=[partner_id])

    erp_harness.load(loaded)

    row = warehouse_rows(loaded, "select is_deleted, name, email_enc is not null, email_hash is not null "
                                 "from raw_erp.res_partner where id = %s", (partner_id,))
    assert row == [(True, None, True, True)]


def test_missing_row_is_recovered_when_the_warehouse_lost_it(erp_harness: ErpHarness, loaded: str) -> None:
    # A record written by a transaction that committed long after its write_date is never seen by the
    # write_date window; from the loader's side that looks exactly like a row missing from the warehouse.
    victim = sorted(warehouse_ids(loaded, "account_payment"))[3]
    with psycopg.connect(loaded) as conn:
        conn.execute("delete from raw_erp.account_payment where id = %s", (victim,))

    summary = erp_harness.load(loaded)

    assert summary.notes["missed_records_recovered"] == {"account_payment": 1}
    assert victim in warehouse_ids(loaded, "account_payment")
    assert len(warehouse_ids(loaded, "account_payment")) == len(erp_harness.erp_ids("account.payment"))


def test_deleted_currency_is_flagged_when_a_whole_read_model_loses_a_record(erp_harness: ErpHarness,
                                                                            loaded: str) -> None:
    currencies = erp_harness.admin().get_model("res.currency")
    currency_id = currencies.create(vals_list=[{"name": "CHF", "symbol": "CHF", "full_name": "Swiss Franc"}])[0]
    erp_harness.load(loaded)
    currencies.unlink(ids=[currency_id])

    summary = erp_harness.load(loaded)

    assert summary.notes["deleted"] == {"res_currency": 1}
    assert warehouse_rows(loaded, "select is_deleted, name from raw_erp.res_currency where id = %s",
                          (currency_id,)) == [(True, "CHF")]
