"""Bad records served by the API are quarantined with field and reason; the rest of the load goes on.

Stripe's API (and the sandbox's) refuses to create an unknown currency or a fractional amount, so such
records are placed in the sandbox's store directly, as a payments platform answering with a currency
newer than our table, or a malformed amount, would serve them.
"""

from __future__ import annotations

import sqlite3

import orjson
import psycopg
import pytest

from pipelines.common.runner import LoadSummary
from revloop.settings import Settings
from tests.pipelines.payments.conftest import make_loader, sandbox_ids, secret_client, warehouse_rows
from tests.sandbox_harness import RunningSandbox

BAD = {"ch_badcurrency000001": ("charge", {"currency": "zzz"}), "re_badamount00000001": ("refund", {"amount": 12.5})}


@pytest.fixture(scope="module")
def bad_records_served(sandbox: RunningSandbox) -> dict[str, str]:
    """Copies of a seeded charge and refund, each with one bad value, stored beside the originals."""
    store = sqlite3.connect(sandbox.config.system_dir / "payments.sqlite3", timeout=30)
    try:
        for object_id, (kind, change) in BAD.items():
            row = store.execute("select created, customer, parent, tag, body from objects where kind = ? limit 1",
                                (kind,)).fetchone()
            body = {**orjson.loads(row[4]), **change, "id": object_id}
            with store:
                store.execute(
                    "insert into objects (id, kind, created, customer, parent, tag, deleted, body)"
                    " values (?, ?, ?, ?, ?, ?, 0, ?)",
                    (object_id, kind, row[0], row[1], row[2], row[3], orjson.dumps(body).decode()),
                )
    finally:
        store.close()
    return {object_id: kind for object_id, (kind, _) in BAD.items()}


@pytest.fixture(scope="module")
def loaded(bad_records_served: dict[str, str], settings: Settings, module_database: str) -> LoadSummary:
    return make_loader(settings, module_database)()


def test_bad_records_are_quarantined_with_field_and_reason_when_loaded(
    loaded: LoadSummary, module_database: str
) -> None:
    assert loaded.quarantined_by_object == {"charge": 1, "refund": 1}
    with psycopg.connect(module_database) as conn:
        rows = conn.execute("select object, record_id, field, reason, value_enc is not null from raw_quarantine.records"
                            " where source = 'payments' order by object").fetchall()
    assert rows == [
        ("charge", "ch_badcurrency000001", "charge.currency", "unknown currency code 'zzz'", True),
        ("refund", "re_badamount00000001", "refund.amount",
         "amount is not an integer number of minor units: 12.5", True),
    ]


def test_rest_of_the_batch_loads_when_records_are_quarantined(
    loaded: LoadSummary, sandbox: RunningSandbox, module_database: str
) -> None:
    client = secret_client(sandbox)
    for table in ("charge", "refund"):
        served = sandbox_ids(client, table)
        loaded_ids = {row[0] for row in warehouse_rows(module_database, table)}
        assert loaded_ids == served - set(BAD), table
        assert len(served) > 10


def test_quarantine_is_not_repeated_when_the_same_bad_record_is_read_again(
    loaded: LoadSummary, settings: Settings, module_database: str
) -> None:
    make_loader(settings, module_database)(full_refresh=True)
    with psycopg.connect(module_database) as conn:
        rows = conn.execute("select record_id, occurrences from raw_quarantine.records order by 1").fetchall()
    assert rows == [("ch_badcurrency000001", 2), ("re_badamount00000001", 2)]
