"""Full and incremental loads of the ERP into ``raw_erp``, and the PII the warehouse never holds in clear."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from decimal import Decimal

import psycopg
import pytest

from pipelines.erp import settings as erp
from revloop.crypto import FieldCipher, load_keyring
from sandboxes import book
from tests.pipelines.erp.conftest import ErpHarness, warehouse_ids, warehouse_rows


@pytest.fixture(scope="module")
def loaded(erp_harness: ErpHarness, module_database: str) -> str:
    """The demo book loaded once into the module's database."""
    summary = erp_harness.load(module_database)
    assert summary.rows_loaded > 0
    return module_database


def test_every_record_loads_when_the_warehouse_starts_empty(erp_harness: ErpHarness, loaded: str) -> None:
    writer = erp_harness.writer()
    for spec in erp.MODELS:
        expected = writer.get_model(spec.model).search_count(
            domain=[list(term) for term in spec.domain], context={"active_test": False}
        )
        ids = warehouse_ids(loaded, spec.table)
        assert len(ids) == expected, spec.model
        assert len(ids) == len(set(ids)), f"duplicates in {spec.table}"


def test_values_match_the_erp_when_loaded(erp_harness: ErpHarness, loaded: str) -> None:
    moves = erp_harness.writer().get_model("account.move").search_read(
        domain=[["move_type", "in", erp.INVOICE_TYPES]], fields=["amount_total", "currency_id", "write_date", "date"],
    )
    in_warehouse = {
        r[0]: r[1:] for r in warehouse_rows(
            loaded, "select id, amount_total, currency_name, write_date, date from raw_erp.account_move")
    }
    for move in moves:
        amount, currency, written, date = in_warehouse[move["id"]]
        assert amount == Decimal(repr(move["amount_total"]))
        assert currency == move["currency_id"][1]
        assert written == dt.datetime.fromisoformat(move["write_date"]).replace(tzinfo=dt.UTC)
        assert date == dt.date.fromisoformat(move["date"])


def test_next_run_reads_only_changes_when_nothing_changed(erp_harness: ErpHarness, loaded: str) -> None:
    summary = erp_harness.load(loaded)
    incremental_tables = {spec.table for spec in erp.MODELS if spec.incremental}
    assert not incremental_tables & set(summary.rows_by_table), summary.rows_by_table
    assert all(isinstance(summary.cursors[table], str) for table in incremental_tables)


def test_created_and_changed_records_load_when_run_again(erp_harness: ErpHarness, loaded: str) -> None:
    writer = erp_harness.writer()
    partners, moves = writer.get_model("res.partner"), writer.get_model("account.move")
    company_id = partners.create(vals_list=[{"name": "Harbourline Freight Pte. Ltd.", "is_company": True,
                                             "email": "billing@harbourline.example", "country_id": 1}])[0]
    person_id = partners.create(vals_list=[{"name": "Mei Ling Tan", "parent_id": company_id,
                                            "email": "mei.ling@harbourline.example", "phone": "+65 6123 4567"}])[0]
    invoice_id = moves.create(vals_list=[{
        "move_type": "out_invoice", "partner_id": company_id, "currency_id": 1, "date": "2026-11-20",
        "invoice_line_ids": [[0, 0, {"product_id": 1, "quantity": 2, "price_unit": 150.5}]],
    }])[0]
    existing = min(warehouse_ids(loaded, "account_move"))
    moves.write(ids=[existing], vals={"ref": "changed-by-test"})

    summary = erp_harness.load(loaded)

    assert summary.rows_by_table["res_partner"] == 2
    assert summary.rows_by_table["account_move"] == 2
    assert summary.rows_by_table["account_move_line"] == 1
    rows = dict(warehouse_rows(loaded, "select id, ref from raw_erp.account_move where id = any(%s)",
                               ([existing, invoice_id],)))
    assert rows[existing] == "changed-by-test"
    total = warehouse_rows(loaded, "select amount_total from raw_erp.account_move where id = %s", (invoice_id,))
    assert total == [(Decimal("301.0"),)]
    names = dict((r[0], r[1:]) for r in warehouse_rows(
        loaded, "select id, name, name_enc, name_hash from raw_erp.res_partner where id = any(%s)",
        ([company_id, person_id],)))
    assert names[company_id][0] == "Harbourline Freight Pte. Ltd." and names[company_id][1] is None
    assert names[person_id][0] is None and names[person_id][1] and names[person_id][2]
    cipher = FieldCipher(load_keyring("dev", erp_harness.home))
    assert cipher.decrypt(names[person_id][1], "erp.res_partner.name") == "Mei Ling Tan"


def test_archived_record_stays_live_when_archived(erp_harness: ErpHarness, loaded: str) -> None:
    partners = erp_harness.writer().get_model("res.partner")
    partner_id = min(warehouse_ids(loaded, "res_partner"))
    partners.write(ids=[partner_id], vals={"active": False})

    erp_harness.load(loaded)

    assert warehouse_rows(loaded, "select active, is_deleted from raw_erp.res_partner where id = %s",
                          (partner_id,)) == [(False, False)]


def _seed_secrets(erp_harness: ErpHarness) -> list[str]:
    """Every email, phone, VAT number and street the sandbox was seeded with."""
    store = erp_harness.sandbox.config.system_dir / "erp.sqlite3"
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
        anchor = dt.date.fromisoformat(conn.execute(
            "select value from sandbox_meta where key = 'anchor_date'").fetchone()[0])
    secrets: set[str] = set()
    for company in book.iter_companies(42, "demo", anchor):
        secrets.update(v for v in (company.billing_email, company.phone, company.vat, company.street) if v)
        for person in company.contacts:
            secrets.update(v for v in (person.email, person.phone) if v)
    return sorted(secrets)


def test_no_seeded_email_phone_vat_or_street_is_stored_when_loaded(erp_harness: ErpHarness, loaded: str) -> None:
    secrets = _seed_secrets(erp_harness)
    assert len(secrets) > 100
    pattern = re.compile("|".join(re.escape(s) for s in secrets))
    found: list[str] = []
    with psycopg.connect(loaded) as conn:
        columns = conn.execute(
            """select table_schema, table_name, column_name from information_schema.columns
               where table_schema not in ('pg_catalog', 'information_schema')
                 and data_type in ('text', 'character varying', 'json', 'jsonb')"""
        ).fetchall()
        assert any(c[1] == "res_partner" for c in columns)
        for schema, table, column in columns:
            values = conn.execute(
                psycopg.sql.SQL("select distinct {}::text from {}.{} where {} is not null").format(
                    psycopg.sql.Identifier(column), psycopg.sql.Identifier(schema), psycopg.sql.Identifier(table),
                    psycopg.sql.Identifier(column))
            ).fetchall()
            found += [f"{schema}.{table}.{column}" for (value,) in values if pattern.search(value)]
    assert not found
