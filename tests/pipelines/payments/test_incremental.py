"""Incremental cycles: changes made through the stripe SDK reach the warehouse through the events feed."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from revloop.crypto import MatchHasher, load_keyring
from revloop.settings import Settings
from tests.pipelines.payments.conftest import Loader, make_loader, warehouse_rows


@pytest.fixture(scope="module")
def load(settings: Settings, module_database: str) -> Loader:
    loader = make_loader(settings, module_database)
    assert loader().notes["mode"] == "backfill"
    return loader


def one(url: str, table: str, columns: str, object_id: str) -> tuple[Any, ...]:
    rows = warehouse_rows(url, table, columns, f"id = '{object_id}'")
    assert len(rows) == 1, f"{table} {object_id}: {len(rows)} rows"
    return rows[0]


def new_customer(client: stripe.StripeClient, email: str) -> Any:
    return client.v1.customers.create(params={"name": "Harbourfront Analytics Pte. Ltd.", "email": email,
                                              "phone": "+6568881234"})


def draft_invoice(client: stripe.StripeClient, customer_id: str, amounts: list[int]) -> Any:
    invoice = client.v1.invoices.create(params={
        "customer": customer_id, "currency": "sgd", "collection_method": "send_invoice", "days_until_due": 30,
    })
    for amount in amounts:
        client.v1.invoice_items.create(params={"customer": customer_id, "invoice": invoice.id, "amount": amount,
                                               "currency": "sgd"})
    return invoice


def test_new_customer_and_draft_invoice_appear_when_created_after_the_backfill(
    load: Loader, client: stripe.StripeClient, module_database: str, settings: Settings
) -> None:
    customer = new_customer(client, "ap@harbourfront.example")
    invoice = draft_invoice(client, customer.id, [120_000, 30_050])

    summary = load()

    assert summary.notes["mode"] == "incremental"
    email_hash, name_hash, email_enc = one(module_database, "customer", "email_hash, name_hash, email_enc", customer.id)
    hasher = MatchHasher(load_keyring(settings.environment, settings.home))
    assert email_hash == hasher.hash("AP@harbourfront.example ", "email")
    assert name_hash and email_enc and "harbourfront" not in email_enc
    assert one(module_database, "invoice", "status, total", invoice.id) == ("draft", 150_050)
    lines = warehouse_rows(module_database, "invoice_line", "amount", f"invoice = '{invoice.id}' and not is_deleted")
    assert sorted(lines) == [(30_050,), (120_000,)]
    # The cycle reads what changed, not the book.
    assert summary.rows_by_table.get("customer") == 1 and summary.rows_by_table.get("invoice") == 1


def test_invoice_state_moves_from_draft_to_paid_and_events_are_kept_when_paid(
    load: Loader, client: stripe.StripeClient, module_database: str
) -> None:
    customer = new_customer(client, "finance@quayside.example")
    invoice = draft_invoice(client, customer.id, [99_900])
    load()
    assert one(module_database, "invoice", "status", invoice.id) == ("draft",)

    client.v1.invoices.finalize_invoice(invoice.id)
    paid = client.v1.invoices.pay(invoice.id, params={"payment_method": "pm_card_visa"})
    load()

    status, amount_paid, paid_at, intent = one(
        module_database, "invoice", "status, amount_paid, status_transitions_paid_at, payment_intent", invoice.id)
    assert (status, amount_paid, intent) == ("paid", 99_900, paid.payment_intent)
    assert paid_at is not None
    intent_state = one(module_database, "payment_intent", "status, amount_received", paid.payment_intent)
    assert intent_state == ("succeeded", 99_900)
    kept = {row[0] for row in warehouse_rows(module_database, "event", "type", f"object_id = '{invoice.id}'")}
    assert {"invoice.created", "invoice.finalized", "invoice.paid"} <= kept


def test_refund_appears_and_charge_is_updated_when_a_charge_is_refunded(
    load: Loader, client: stripe.StripeClient, module_database: str
) -> None:
    charge_id, amount = warehouse_rows(
        module_database, "charge", "id, amount", "status = 'succeeded' and amount_refunded = 0 order by id limit 1")[0]
    refund = client.v1.refunds.create(params={"charge": charge_id, "amount": amount // 2})

    summary = load()

    assert one(module_database, "refund", "charge, amount, status", refund.id) == (charge_id, amount // 2, "succeeded")
    assert one(module_database, "charge", "amount_refunded, refunded", charge_id) == (amount // 2, False)
    assert summary.rows_by_table.get("refund") == 1


def test_customer_is_marked_deleted_when_deleted_at_the_source(
    load: Loader, client: stripe.StripeClient, module_database: str
) -> None:
    customer = new_customer(client, "gone@example.org")
    load()
    client.v1.customers.delete(customer.id)

    summary = load()

    assert one(module_database, "customer", "is_deleted", customer.id) == (True,)
    assert summary.notes["deleted"] == {"customer": 1}


def test_rerun_over_the_overlap_window_adds_no_duplicates_when_events_are_read_again(
    load: Loader, client: stripe.StripeClient, module_database: str
) -> None:
    customer = new_customer(client, "twice@example.org")
    invoice = draft_invoice(client, customer.id, [5_000])
    client.v1.invoices.finalize_invoice(invoice.id)
    client.v1.invoices.pay(invoice.id, params={"payment_method": "pm_card_visa"})
    load()
    events_before = warehouse_rows(module_database, "event", "count(*), count(distinct id)")[0]

    again = load()

    assert again.notes["events_read"] > 0  # the overlap window re-read recent events
    assert warehouse_rows(module_database, "event", "count(*), count(distinct id)")[0] == events_before
    assert events_before[0] == events_before[1]
    assert one(module_database, "invoice", "status", invoice.id) == ("paid",)
    for table in ("customer", "invoice", "payment_intent", "charge", "invoice_line"):
        total, distinct = warehouse_rows(module_database, table, "count(*), count(distinct (id))")[0]
        assert total == distinct, table


def test_a_hot_cycle_rereads_a_short_window_of_the_feed_when_given_a_smaller_overlap(
    load: Loader, client: stripe.StripeClient, module_database: str
) -> None:
    import time

    first = new_customer(client, "first@overlap.example")
    load()  # the cursor now stands at (or just after) the first customer's events
    # the second customer must be created two whole seconds after the first (Stripe's `created` is in
    # seconds), so a 1 s window excludes the first: wait for the clock to get there, with a deadline
    deadline = time.monotonic() + 10
    while time.time() < first.created + 2.2 and time.monotonic() < deadline:
        time.sleep(0.05)
    second = new_customer(client, "second@overlap.example")

    hot = load(events_overlap_seconds=1.0)  # a float, as the sync loop passes it

    # the default window (300 s) would read the first customer's event again; the hot one reads only newer
    assert hot.notes["events_read"] >= 1
    assert one(module_database, "customer", "id", second.id) == (second.id,)
    full = load()
    assert full.notes["events_read"] > hot.notes["events_read"]
    assert one(module_database, "customer", "id", first.id) == (first.id,)


def test_a_draft_invoice_is_read_again_only_while_an_item_event_is_newer_than_its_stored_snapshot(
    load: Loader, client: stripe.StripeClient, module_database: str
) -> None:
    import time

    customer = new_customer(client, "items@overlap.example")
    invoice = draft_invoice(client, customer.id, [1_000])
    # a read in the item's own second may miss the item: the first load reads two seconds after it
    item_created = max(e.created for e in client.v1.events.list(params={"type": "invoiceitem.created", "limit": 1}))
    deadline = time.monotonic() + 10
    while time.time() < item_created + 2.2 and time.monotonic() < deadline:
        time.sleep(0.05)

    first = load()
    again = load()  # the overlap window re-reads the item's event: its invoice is stored newer than it

    assert first.notes["parents_read_again"] >= 1
    assert again.notes.get("parents_read_again", 0) == 0
    client.v1.invoice_items.create(params={"customer": customer.id, "invoice": invoice.id, "amount": 2_000,
                                           "currency": "sgd"})
    third = load()
    assert third.notes["parents_read_again"] == 1
    lines = warehouse_rows(module_database, "invoice_line", "amount", f"invoice = '{invoice.id}' and not is_deleted")
    assert sorted(lines) == [(1_000,), (2_000,)]


def test_a_long_stretch_of_the_feed_is_read_in_ranges_side_by_side_in_the_order_one_chain_reads_it(
    client: stripe.StripeClient, settings: Settings
) -> None:
    import time

    from pipelines.payments.helpers import StripeReader
    from revloop.connectors.payments import connect

    first = new_customer(client, "burst@ranges.example")
    while time.time() < first.created + 3.5:  # the burst spans four seconds or more, so ranges split it
        new_customer(client, "burst@ranges.example")
    for _ in range(130):  # and holds more than a page of events
        new_customer(client, "burst@ranges.example")
    reader = StripeReader(connect(settings.payments, reader=True))
    since = first.created

    chain = [e["id"] for page in reader.pages("/v1/events", {"created": {"gte": since}}) for e in page.records]
    ranged = [e["id"] for e in reader.created_since("/v1/events", since, 4)]

    assert len(chain) >= 130 and ranged == chain
    quiet = StripeReader(connect(settings.payments, reader=True))
    assert quiet.created_since("/v1/events", int(time.time()) + 60, 4) == []
    assert quiet.stats.requests == 1  # a stretch that fits one page costs one request
