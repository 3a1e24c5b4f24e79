"""Batch delivery against the sandboxes: ERP invoices created and posted by the list (a refused record is
parked alone, crash leftovers are found), payments writes in parallel lanes (one customer per Account),
each through the delivery worker, the outbox and the audit log of a real warehouse."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import psycopg
import pytest
import stripe

from revloop.alerts import TableAlerter
from revloop.crypto import FieldCipher, Keyring, new_keyring_json
from revloop.settings import ErpSettings, PaymentsSettings
from revloop.sync import outbox
from revloop.sync.model import DeliveryOutcome, IntendedWrite, PermanentError
from revloop.sync.schema import ensure_schema
from revloop.sync.worker import DeliveryWorker, WorkerPolicy
from revloop.sync.writers.erp import ErpWriter
from revloop.sync.writers.payments import PaymentsWriter
from tests.sandbox_harness import RunningSandbox
from tests.sync.writers.conftest import unique, write
from tests.sync.writers.test_erp_writer import account_id, invoice_write, moves_with_ref, partner_write


@pytest.fixture
def db(fresh_database: str) -> str:
    with psycopg.connect(fresh_database) as conn:
        ensure_schema(conn)
    return fresh_database


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher(Keyring.from_json(new_keyring_json()))


def worker_for(db: str, cipher: FieldCipher, system: str, writer: Any) -> DeliveryWorker:
    return DeliveryWorker(db, cipher, {system: writer}, TableAlerter(db),
                          WorkerPolicy(backoff_base_seconds=0.0, backoff_cap_seconds=0.0), name="worker:test",
                          rng=random.Random(1))


def enqueue(db: str, cipher: FieldCipher, writes: list[IntendedWrite]) -> None:
    with psycopg.connect(db) as conn:
        assert outbox.enqueue_many(conn, cipher, writes) == {w.idempotency_key for w in writes}


def outbox_rows(db: str) -> dict[str, tuple[str, str | None, str | None]]:
    with psycopg.connect(db) as conn:
        return {key: (state, code, target) for key, state, code, target in conn.execute(
            "select idempotency_key, state, last_error_code, target_id from sync.outbox order by id")}


def api_requests(sandbox: RunningSandbox) -> int:
    return int(sandbox.admin("GET", "counters")["requests_total"])


def test_erp_invoices_of_one_batch_are_posted_in_a_few_calls_with_one_partner_when_delivered_together(
    db: str, cipher: FieldCipher, erp_settings: ErpSettings, erp_sandbox: RunningSandbox, erp_reader: Any
) -> None:
    account = account_id()  # a new Account: its partner is created once for the whole batch
    writes = [invoice_write(account, unique("won-batch")) for _ in range(30)]
    enqueue(db, cipher, writes)
    writer = ErpWriter(erp_settings)
    before = api_requests(erp_sandbox)
    assert worker_for(db, cipher, "erp", writer).run_once() == Counter({"created": 30})
    calls = api_requests(erp_sandbox) - before
    assert calls <= 15, f"{calls} ERP calls for 30 invoices"  # one at a time, it is five per invoice
    moves = [moves_with_ref(erp_reader, w.idempotency_key) for w in writes]
    assert all(len(found) == 1 and found[0]["state"] == "posted" for found in moves)
    assert len({found[0]["partner_id"][0] for found in moves}) == 1
    rows = outbox_rows(db)
    assert [rows[w.idempotency_key][2] for w in writes] == [str(found[0]["id"]) for found in moves]
    with psycopg.connect(db) as conn:
        audited = conn.execute("select idempotency_key, result from sync.audit_log").fetchall()
    assert sorted(audited) == sorted((w.idempotency_key, "created") for w in writes)


def test_erp_invoice_refused_in_a_batch_is_parked_with_its_reason_while_the_rest_are_posted(
    db: str, cipher: FieldCipher, erp_settings: ErpSettings, erp_reader: Any
) -> None:
    account = account_id()
    good = [invoice_write(account, unique("won-batch")) for _ in range(4)]
    payload = {**invoice_write(account, "x").payload, "partner_id": 987654321}  # Odoo refuses it on create
    payload.pop("partner")
    bad = write("erp", "account.move", "post", unique("won-batch"), payload, flow="won_deal_invoice")
    enqueue(db, cipher, [good[0], good[1], bad, good[2], good[3]])
    assert worker_for(db, cipher, "erp", ErpWriter(erp_settings)).run_once() == Counter({"created": 4, "parked": 1})
    rows = outbox_rows(db)
    assert rows[bad.idempotency_key][:2] == ("parked", "odoo.exceptions.ValidationError")
    assert moves_with_ref(erp_reader, bad.idempotency_key) == []
    for w in good:
        (move,) = moves_with_ref(erp_reader, w.idempotency_key)
        assert move["state"] == "posted" and rows[w.idempotency_key] == ("delivered", None, str(move["id"]))
    with psycopg.connect(db) as conn:
        ((kind, detail),) = conn.execute("select kind, detail from ops.alerts").fetchall()
    assert kind == "write-parked" and detail["idempotency_key"] == bad.idempotency_key


def test_erp_batch_finds_what_an_earlier_delivery_made_and_parks_a_duplicated_ref_alone(
    erp_settings: ErpSettings, erp_reader: Any
) -> None:
    account = account_id()
    writer = ErpWriter(erp_settings)
    partner_id = int(writer.deliver(partner_write(account)).target_id)
    currency = writer.call("res.currency", "search", domain=[["name", "=", "USD"]])[0]

    def draft(ref: str) -> int:
        return int(writer.call("account.move", "create", vals_list=[{
            "move_type": "out_invoice", "partner_id": partner_id, "currency_id": currency, "ref": ref,
            "invoice_date": "2026-03-02", "date": "2026-03-02",
            "invoice_line_ids": [[0, 0, {"name": "Billing", "quantity": 1, "price_unit": 10}]]}])[0])

    posted, crashed, doubled, new = (invoice_write(account, unique("won-batch")) for _ in range(4))
    posted_id = int(writer.deliver(posted).target_id)  # delivered before, its bookkeeping lost
    draft_id = draft(crashed.idempotency_key)  # created, never posted
    for _ in range(2):  # made twice by hand
        draft(doubled.idempotency_key)
    results = ErpWriter(erp_settings).deliver_many([posted, crashed, doubled, new])
    assert isinstance(results[0], DeliveryOutcome) and (results[0].created, results[0].target_id) == (
        False, str(posted_id))
    assert isinstance(results[1], DeliveryOutcome)
    assert (results[1].created, results[1].target_id, results[1].detail["posted_now"]) == (False, str(draft_id), True)
    assert isinstance(results[2], PermanentError) and results[2].code == "duplicate_ref"
    assert isinstance(results[3], DeliveryOutcome) and results[3].created is True
    for w in (posted, crashed, new):
        (move,) = moves_with_ref(erp_reader, w.idempotency_key)
        assert move["state"] == "posted"
    assert [m["state"] for m in moves_with_ref(erp_reader, doubled.idempotency_key)] == ["draft", "draft"]


def payment_request(account: str, key: str, amount: str) -> IntendedWrite:
    return write("payments", "invoice", "create", key, {
        "customer": {"salesforce_account_id": account, "name": f"Customer {account}"},
        "currency": "usd", "items": [{"description": f"Invoice {key}", "amount": amount}],
        "metadata": {"salesforce_opportunity_id": "006T00000000001AAA"}, "due_date": "2026-12-31",
    }, flow="invoice_payment_request")


def test_payments_batch_runs_accounts_side_by_side_with_one_customer_each_when_delivered_twice(
    db: str, cipher: FieldCipher, payments_settings: PaymentsSettings, stripe_client: stripe.StripeClient
) -> None:
    accounts = [unique("001PAR") for _ in range(4)]
    # no customer writes first: each Account's invoices find-or-create its customer, in one lane
    writes = [payment_request(accounts[n % 4], unique("pay-par"), f"{100 + n}.00") for n in range(16)]
    enqueue(db, cipher, writes)
    assert worker_for(db, cipher, "payments", PaymentsWriter(payments_settings, concurrency=4)).run_once() == Counter(
        {"created": 16})
    rows = outbox_rows(db)
    for n, w in enumerate(writes):
        invoice = stripe_client.v1.invoices.retrieve(str(rows[w.idempotency_key][2]))
        assert (invoice.status, invoice.amount_due, invoice.metadata["revloop_key"]) == (
            "open", 10_000 + 100 * n, w.idempotency_key)
    for account in accounts:
        found = stripe_client.v1.customers.search(
            params={"query": f"metadata['salesforce_account_id']:'{account}'"}).data
        assert len(found) == 1, f"{len(found)} customers for {account}"
    again = PaymentsWriter(payments_settings, concurrency=4).deliver_many(writes)
    assert all(isinstance(r, DeliveryOutcome) for r in again), again
    assert [(r.created, r.target_id) for r in again] == [  # type: ignore[union-attr]
        (False, rows[w.idempotency_key][2]) for w in writes]
