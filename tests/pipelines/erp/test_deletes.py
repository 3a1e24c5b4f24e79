"""Records unlinked in the ERP are kept as soft-deleted rows; records the warehouse lacks are recovered."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

import dlt
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


def backdate(erp_harness: ErpHarness, table: str, record_id: int, by: dt.timedelta) -> None:
    """Move a record's ``write_date`` back in the ERP's store, as a transaction committing that much later
    than it started would leave it: the write_date window of the loads in between never sees the record."""
    store = sqlite3.connect(erp_harness.sandbox.config.system_dir / "erp.sqlite3", timeout=30)
    try:
        with store:
            (stamp,), = store.execute(f"select write_date from {table} where id = ?", (record_id,)).fetchall()
            earlier = (dt.datetime.fromisoformat(stamp) - by).isoformat(sep=" ", timespec="microseconds")
            store.execute(f"update {table} set write_date = ? where id = ?", (earlier, record_id))
    finally:
        store.close()


def test_record_committed_late_is_recovered_when_a_later_record_was_loaded(erp_harness: ErpHarness,
                                                                          loaded: str) -> None:
    payments = erp_harness.writer().get_model("account.payment")
    late, on_time = payments.create(vals_list=[
        {"payment_type": "inbound", "partner_type": "customer", "partner_id": 1000, "amount": amount,
         "currency_id": 1, "date": "2026-11-20", "memo": memo}
        for amount, memo in ((11, "committed late"), (12, "committed on time"))])
    backdate(erp_harness, "account_payment", late, dt.timedelta(days=1))
    erp_harness.load(loaded)
    assert on_time in warehouse_ids(loaded, "account_payment") and late not in warehouse_ids(loaded, "account_payment")

    summary = erp_harness.load(loaded)

    assert summary.notes["missed_records_recovered"] == {"account_payment": 1}
    assert late in warehouse_ids(loaded, "account_payment")
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


def stored_live_rows(erp_harness: ErpHarness, database_url: str, table: str) -> Any:
    """The highest id and live count the last committed load keeps for ``table`` in dlt's state."""
    pipeline = dlt.attach(pipeline_name="revloop_erp", pipelines_dir=str(erp_harness.pipelines_dir(database_url)))
    return pipeline.state["sources"]["erp"]["resources"][table].get("live_rows")


def warehouse_extent(database_url: str, table: str) -> dict[str, int]:
    (up_to, count), = warehouse_rows(
        database_url, f"select max(id), count(*) filter (where is_deleted is not true) from raw_erp.{table}")
    return {"up_to": up_to, "count": count}


def test_live_count_follows_the_loads_and_is_counted_again_after_a_deletion(erp_harness: ErpHarness,
                                                                           loaded: str) -> None:
    partners = erp_harness.writer().get_model("res.partner")
    created = partners.create(vals_list=[{"name": "Count One Pte Ltd", "is_company": True},
                                         {"name": "Count Two Pte Ltd", "is_company": True}])
    erp_harness.load(loaded)
    stored = stored_live_rows(erp_harness, loaded, "res_partner")
    # Moved by what the run loaded, not counted in the table: it still agrees with the table.
    assert {k: stored[k] for k in ("up_to", "count")} == warehouse_extent(loaded, "res_partner")
    assert stored["up_to"] == max(created)

    partners.unlink(ids=[created[0]])
    summary = erp_harness.load(loaded)
    assert summary.notes["deleted"] == {"res_partner": 1}
    assert stored_live_rows(erp_harness, loaded, "res_partner") is None  # the comparison changed what is live

    summary = erp_harness.load(loaded)
    assert summary.notes["live_rows_counted"]["res_partner"] == warehouse_extent(loaded, "res_partner")["count"]
    stored = stored_live_rows(erp_harness, loaded, "res_partner")
    assert {k: stored[k] for k in ("up_to", "count")} == warehouse_extent(loaded, "res_partner")
