"""Pure parsing and event folding of the payments source: table tests, no server."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pyarrow as pa
import pytest

from pipelines.common.quarantine import BadValue, Rejection
from pipelines.payments import settings
from pipelines.payments.events import changes_from_feed, newer_than_stored, stale_parents
from pipelines.payments.tables import CHECKS, Column, TableBuilder, Versioned, _getter, compile_row, parse_columns

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)


def charge(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "ch_1", "object": "charge", "created": 1_790_000_000, "amount": 1250, "amount_captured": 1250,
        "amount_refunded": 0, "currency": "sgd", "status": "succeeded", "captured": True, "paid": True,
        "customer": {"id": "cus_1", "object": "customer"}, "payment_intent": "pi_1",
        "billing_details": {"name": "Mei Tan", "email": "mei@example.com", "phone": None, "address": None},
        "outcome": {"type": "authorized", "risk_level": "normal"}, "metadata": {"erp_payment_id": "7"},
    }
    record.update(overrides)
    return record


def build(records: list[dict[str, Any]], table: str = "charge") -> tuple[pa.Table, list[Rejection]]:
    rejected: list[Rejection] = []
    columns = parse_columns(settings.OBJECTS[table]["columns"])  # type: ignore[arg-type]
    builder = TableBuilder(table, columns, rejected.append)
    return builder.build([Versioned(r, 1_790_000_100) for r in records], NOW), rejected


def test_column_is_named_after_its_path_when_declared_without_a_name() -> None:
    assert parse_columns(["billing_details.address.line1:text", "price=pricing.price_details.price:ref"]) == (
        Column("billing_details_address_line1", ("billing_details", "address", "line1"), "text"),
        Column("price", ("pricing", "price_details", "price"), "ref"),
    )


def test_row_keeps_minor_units_and_currency_as_sent_when_record_is_valid() -> None:
    table, rejected = build([charge()])
    row = table.to_pylist()[0]
    assert rejected == []
    assert (row["amount"], row["currency"], row["customer"]) == (1250, "sgd", "cus_1")
    assert row["outcome_risk_level"] == "normal"
    assert row["created"] == dt.datetime.fromtimestamp(1_790_000_000, dt.UTC)
    assert row["metadata"] == '{"erp_payment_id":"7"}'
    assert row["is_deleted"] is False
    assert row["_revloop_observed_at"] == dt.datetime.fromtimestamp(1_790_000_100, dt.UTC)


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"currency": "zzz"}, "charge.currency", "unknown currency code 'zzz'"),
        ({"amount": 12.5}, "charge.amount", "amount is not an integer number of minor units: 12.5"),
        ({"amount": "1250"}, "charge.amount", "amount is not an integer number of minor units: '1250'"),
        ({"id": None}, "charge.id", "required identifier is missing"),
        ({"created": "yesterday"}, "charge.created", "not a Unix timestamp: 'yesterday'"),
        ({"captured": "yes"}, "charge.captured", "a boolean was expected, got 'yes'"),
    ],
)
def test_record_is_quarantined_and_rest_of_page_loads_when_a_value_is_bad(
    overrides: dict[str, Any], field: str, reason: str
) -> None:
    table, rejected = build([charge(id="ch_ok1"), charge(**{"id": "ch_bad", **overrides}), charge(id="ch_ok2")])
    assert table.column("id").to_pylist() == ["ch_ok1", "ch_ok2"]
    assert [(r.object, r.field, r.reason) for r in rejected] == [("charge", field, reason)]
    assert rejected[0].record_id == (None if overrides.get("id", "x") is None else "ch_bad")
    assert rejected[0].payload["status"] == "succeeded"


def test_event_row_keeps_changed_attribute_names_but_not_their_values_when_built() -> None:
    event = {
        "id": "evt_1", "object": "event", "type": "customer.updated", "created": 1_790_000_000,
        "api_version": "2025-08-27.basil", "livemode": False, "pending_webhooks": 1,
        "request": {"id": "req_1", "idempotency_key": "k-1"},
        "data": {"object": {"id": "cus_1", "object": "customer", "email": "new@example.com"},
                 "previous_attributes": {"email": "old@example.com", "phone": "+6561234567"}},
    }
    builder = TableBuilder("event", parse_columns(settings.EVENT), lambda r: None)
    row = builder.build([Versioned(event, 1_790_000_000, "evt_1")], NOW).to_pylist()[0]
    assert (row["object_id"], row["object_type"], row["request_idempotency_key"]) == ("cus_1", "customer", "k-1")
    assert row["previous_attribute_names"] == '["email","phone"]'
    assert "example.com" not in str(row) and "+6561234567" not in str(row)


ODD_VALUES: list[Any] = [
    None, "", "x", "usd", "USD", "Usd", "zzz", 0, -1, 7, 253_402_300_799, 253_402_300_800, 12.5, True, False,
    {"id": "obj_1"}, {"id": 5}, MappingProxyType({"id": "obj_2", "line1": "proxied"}), ["a"], {"b": 1, "a": 2},
]
"""Values of every type a column can meet, valid or not, including a Mapping that is not a dict."""

USUAL_VALUES: dict[str, list[Any]] = {
    "id": ["obj_9"], "text": [None, "t"], "ref": [None, "ref_1", {"id": "ref_2"}], "int": [None, 3],
    "amount": [None, 1250], "bool": [None, True, False], "ts": [None, 1_790_000_000],
    "currency": [None, "sgd", "EUR"], "float": [None, 1.5, 2], "json": [None, {"k": "v"}],
    "keys": [None, {"b": 1, "a": 2}],
}
"""Values each kind of column usually holds, so most records get past their first columns."""

DECLARED = {
    **{table: spec["columns"] for table, spec in settings.OBJECTS.items()},
    **{table: spec["columns"] for table, spec in settings.CHILD_TABLES.items()},
    "event": settings.EVENT,
}


def _outcome(read: Callable[[dict[str, Any]], tuple[Any, ...]], record: dict[str, Any]) -> tuple[Any, ...]:
    """What reading ``record`` gives: its values, or the error raised (a rejection names field and reason)."""
    try:
        return ("row", read(record))
    except BadValue as bad:
        return ("rejected", bad.field, bad.reason)
    except Exception as exc:  # noqa: BLE001 - any other error must be the same error too
        return ("error", type(exc), str(exc))


def _one_column_at_a_time(columns: tuple[Column, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """The reference reading of a record: each column's getter, then its check."""
    return lambda record: tuple(CHECKS[c.kind](_getter(c.path)(record), c.field) for c in columns)


def _odd_record(columns: tuple[Column, ...], seed: int) -> dict[str, Any]:
    """A record whose column paths hold a usual value, or now and then one of :data:`ODD_VALUES` at the
    leaf or in place of a parent object."""
    chosen = random.Random(seed)
    record: dict[str, Any] = {}
    for column in columns:
        node = record
        for key in column.path[:-1]:
            if chosen.random() < 0.05:
                node.setdefault(key, chosen.choice(ODD_VALUES))
                break
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            odd = chosen.random() < 0.03
            node[column.path[-1]] = chosen.choice(ODD_VALUES if odd else USUAL_VALUES[column.kind])
    return record


@pytest.mark.parametrize("table", sorted(DECLARED))
def test_compiled_row_reads_and_checks_as_one_column_at_a_time_when_values_are_odd(table: str) -> None:
    columns = parse_columns(DECLARED[table])  # type: ignore[arg-type]
    compiled, reference = compile_row(columns), _one_column_at_a_time(columns)
    kinds: Counter[str] = Counter()
    for seed in range(400):
        record = _odd_record(columns, seed)
        expected = _outcome(reference, record)
        assert _outcome(compiled, record) == expected, (seed, record)
        kinds[expected[0]] += 1
    assert kinds["row"] >= 20 and kinds["rejected"] >= 20, kinds  # both outcomes were really compared


def test_compiled_row_follows_a_mapping_that_is_not_a_dict_when_nested() -> None:
    columns = parse_columns(["address.line1:text", "address.city:text", "id:id"])
    record = {"id": "cus_1", "address": MappingProxyType({"line1": "1 Main St", "city": None})}
    assert compile_row(columns)(record) == ("1 Main St", None, "cus_1")


def event(
    event_id: str, created: int, kind: str, object_id: str, event_type: str = "", **fields: Any
) -> dict[str, Any]:
    return {
        "id": event_id, "object": "event", "created": created, "type": event_type or f"{kind}.updated",
        "data": {"object": {"id": object_id, "object": kind, **fields}},
    }


TABLES = [t for t, spec in settings.OBJECTS.items() if spec["events"]]


def test_newest_state_wins_when_an_older_event_arrives_after_a_newer_one() -> None:
    # Feed order is newest first; here the older "open" event is listed before the newer "paid" one.
    feed = [
        event("evt_open", 100, "invoice", "in_1", status="open"),
        event("evt_paid", 160, "invoice", "in_1", status="paid"),
        event("evt_draft", 50, "invoice", "in_1", status="draft"),
    ]
    changes = changes_from_feed(feed, TABLES, settings.REFETCH_PARENT_EVENTS)
    snapshot = changes.snapshots["invoice"]["in_1"]
    assert (snapshot.record["status"], snapshot.observed_at, snapshot.event_id) == ("paid", 160, "evt_paid")
    assert [e["id"] for e in changes.events] == ["evt_draft", "evt_open", "evt_paid"]


def test_feed_order_breaks_the_tie_when_events_share_a_second() -> None:
    feed = [
        event("evt_b", 100, "charge", "ch_1", status="succeeded"),
        event("evt_a", 100, "charge", "ch_1", status="pending"),
    ]
    changes = changes_from_feed(feed, TABLES, {})
    assert changes.snapshots["charge"]["ch_1"].record["status"] == "succeeded"


def test_duplicate_event_is_counted_once_when_listed_twice() -> None:
    feed = [event("evt_1", 100, "customer", "cus_1"), event("evt_1", 100, "customer", "cus_1")]
    changes = changes_from_feed(feed, TABLES, {})
    assert (len(changes.events), changes.duplicates) == (1, 1)


def test_object_is_marked_deleted_when_its_last_event_is_a_deletion() -> None:
    feed = [event("evt_del", 200, "customer", "cus_1", "customer.deleted"), event("evt_upd", 150, "customer", "cus_1")]
    changes = changes_from_feed(feed, TABLES, {})
    assert changes.snapshots["customer"]["cus_1"].deleted is True


def test_parent_invoice_is_read_again_when_one_of_its_items_changes() -> None:
    feed = [event("evt_ii", 100, "invoiceitem", "ii_1", "invoiceitem.created", invoice="in_9")]
    changes = changes_from_feed(feed, TABLES, settings.REFETCH_PARENT_EVENTS)
    assert changes.refetch == {"invoice": {"in_9": 100}} and changes.snapshots == {}


def test_parent_remembers_its_newest_child_event() -> None:
    feed = [event("evt_ii2", 130, "invoiceitem", "ii_2", "invoiceitem.created", invoice="in_9"),
            event("evt_ii1", 100, "invoiceitem", "ii_1", "invoiceitem.created", invoice="in_9")]
    assert changes_from_feed(feed, TABLES, settings.REFETCH_PARENT_EVENTS).refetch == {"invoice": {"in_9": 130}}


@pytest.mark.parametrize(
    ("known", "read_again"),
    [
        ({}, ["in_1", "in_2"]),  # nothing stored: both are read
        ({"in_1": 101, "in_2": 201}, []),  # stored snapshots observed after the child events
        ({"in_1": 100, "in_2": 199}, ["in_1", "in_2"]),  # same second or older: the item may be missing
        ({"in_1": 150}, ["in_2"]),
    ],
)
def test_only_parents_without_a_later_snapshot_are_read_again(known: dict[str, int], read_again: list[str]) -> None:
    assert stale_parents({"in_1": 100, "in_2": 200}, known) == read_again


def test_untracked_object_events_are_kept_but_not_applied_when_folded() -> None:
    changes = changes_from_feed([event("evt_acct", 100, "account", "acct_1")], TABLES, {})
    assert changes.snapshots == {} and len(changes.events) == 1


@pytest.mark.parametrize(
    ("stored", "applied"),
    [
        ({}, True),
        ({"in_1": (150, "evt_open")}, True),
        ({"in_1": (160, "evt_other_same_second")}, True),
        ({"in_1": (160, None)}, True),
        ({"in_1": (160, "evt_paid")}, False),
        ({"in_1": (170, "evt_void")}, False),
    ],
    ids=["new", "older-stored", "tie-other-event", "tie-list-read", "same-event", "newer-stored"],
)
def test_snapshot_applies_only_when_newer_than_the_stored_row(
    stored: dict[str, tuple[int, str | None]], applied: bool
) -> None:
    snapshots = {"in_1": Versioned({"id": "in_1"}, 160, "evt_paid")}
    assert bool(newer_than_stored(snapshots, stored)) is applied
