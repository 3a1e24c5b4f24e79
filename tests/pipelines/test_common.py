"""The pieces every source shares: value checks, currencies, PII protection, quarantine, the load lock."""

from __future__ import annotations

import datetime as dt
import gc
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest

from pipelines.common.currencies import exponent, stripe_exponent
from pipelines.common.locking import PipelineBusy, pipeline_lock
from pipelines.common.memory import YOUNG_COLLECTION_THRESHOLD, fewer_collections
from pipelines.common.pii import PiiProtector
from pipelines.common.quarantine import BadValue, Quarantine, Rejection
from pipelines.common.values import check_currency, parse_date, parse_datetime_utc, parse_decimal, require
from revloop.crypto import FieldCipher, Keyring, MatchHasher, new_keyring_json

UTC = dt.UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-25T10:15:30.000+0000", dt.datetime(2026, 11, 25, 10, 15, 30, tzinfo=UTC)),
        ("2026-11-25T18:15:30.250+0800", dt.datetime(2026, 11, 25, 10, 15, 30, 250000, tzinfo=UTC)),
        ("2026-11-25T10:15:30Z", dt.datetime(2026, 11, 25, 10, 15, 30, tzinfo=UTC)),
        ("2026-11-25 10:15:30", dt.datetime(2026, 11, 25, 10, 15, 30, tzinfo=UTC)),
        (1795600000, dt.datetime.fromtimestamp(1795600000, UTC)),
        (None, None),
        (False, None),
    ],
)
def test_datetime_is_utc_when_parsed_from_each_source_format(value: object, expected: dt.datetime | None) -> None:
    assert parse_datetime_utc(value, "f") == expected


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", True, [2026]])
def test_bad_datetime_names_the_field_when_refused(value: object) -> None:
    with pytest.raises(BadValue) as caught:
        parse_datetime_utc(value, "Opportunity.CloseDate")
    assert caught.value.field == "Opportunity.CloseDate"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2026-11-25", dt.date(2026, 11, 25)), ("2026-11-25 00:00:00", dt.date(2026, 11, 25)), (False, None)],
)
def test_date_is_parsed_when_valid(value: object, expected: dt.date | None) -> None:
    assert parse_date(value, "f") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("10.50", Decimal("10.50")), (0.1, Decimal("0.1")), (1200, Decimal("1200")), (" 3 ", Decimal("3"))],
)
def test_decimal_is_exact_when_parsed(value: object, expected: Decimal) -> None:
    assert parse_decimal(value, "f") == expected


@pytest.mark.parametrize("value", ["12,50", "abc", "NaN", "Infinity", True])
def test_non_number_is_refused_when_parsed_as_decimal(value: object) -> None:
    with pytest.raises(BadValue, match="number"):
        parse_decimal(value, "Amount")


@pytest.mark.parametrize(("code", "expected"), [("sgd", "SGD"), ("JPY", "JPY"), (None, None)])
def test_currency_is_upper_case_when_known(code: str | None, expected: str | None) -> None:
    assert check_currency(code, "f") == expected


def test_unknown_currency_is_refused_when_checked() -> None:
    with pytest.raises(BadValue, match="unknown currency code 'XYZ'"):
        check_currency("XYZ", "CurrencyIsoCode")


def test_missing_identifier_is_refused_when_required() -> None:
    with pytest.raises(BadValue, match="required identifier"):
        require("", "Id")


@pytest.mark.parametrize(
    ("code", "iso", "stripe"),
    [("SGD", 2, 2), ("JPY", 0, 0), ("KRW", 0, 0), ("VND", 0, 0), ("BHD", 3, 3), ("ISK", 0, 2), ("MGA", 2, 0)],
)
def test_exponents_follow_iso_and_stripe_when_they_differ(code: str, iso: int, stripe: int) -> None:
    assert exponent(code) == iso and stripe_exponent(code.lower()) == stripe


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.from_json(new_keyring_json())


def test_pii_columns_are_replaced_by_token_and_hash_when_protected(keyring: Keyring) -> None:
    protector = PiiProtector("salesforce", FieldCipher(keyring), MatchHasher(keyring))
    table = pa.table({"id": ["003A"], "email": ["Ana@Example.sg"], "title": ["CFO"]})
    protected = protector.protect_table("contact", table, {"email": "email"})
    assert protected.column_names == ["id", "email_enc", "email_hash", "title"]
    token = protected.column("email_enc")[0].as_py()
    assert "Ana" not in token
    assert FieldCipher(keyring).decrypt(token, "salesforce.contact.email") == "Ana@Example.sg"
    assert protected.column("email_hash")[0].as_py() == MatchHasher(keyring).hash("ana@example.sg", "email")


def test_quarantine_keeps_one_row_per_record_version_when_rejected_twice(warehouse_url: str, keyring: Keyring) -> None:
    rejection = Rejection(
        "Opportunity", "006X", "Amount", "not a number: 'abc'", "abc", {"Id": "006X", "Amount": "abc"}
    )
    with Quarantine(warehouse_url, "test_source", FieldCipher(keyring)) as quarantine:
        quarantine.reject(rejection)
        quarantine.reject(rejection)
        assert quarantine.count == 2 and quarantine.by_object == {"Opportunity": 2}
        with psycopg.connect(warehouse_url) as conn:
            rows = conn.execute(
                "select record_id, field, reason, occurrences, value_enc like 'enc:v1:%' from raw_quarantine.records"
                " where source = 'test_source'"
            ).fetchall()
        assert rows == [("006X", "Amount", "not a number: 'abc'", 2, True)]
        assert quarantine.resolve("Opportunity", ["006X"]) == 1


def test_second_load_is_refused_with_holder_when_lock_is_taken(warehouse_url: str) -> None:
    busy = r"'lock_probe' load is already running \(revloop-load:lock_probe:"
    with (
        pipeline_lock(warehouse_url, "lock_probe"),
        pytest.raises(PipelineBusy, match=busy),
        pipeline_lock(warehouse_url, "lock_probe"),
    ):
        pass
    with pipeline_lock(warehouse_url, "lock_probe"):  # released on exit
        pass


def test_lock_is_free_at_once_when_a_load_finishes(warehouse_url: str) -> None:
    for _ in range(50):  # back to back, as a scheduler or a test would start the next load
        with pipeline_lock(warehouse_url, "back_to_back"):
            pass


_MAPPED_BYTES_AFTER_A_FREED_BIG_BLOCK = """
import ctypes
from pipelines.common.memory import return_large_blocks_when_freed

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
if APPLY:
    return_large_blocks_when_freed()
libc.free(libc.malloc(4 << 20))  # glibc alone would now serve blocks below 4 MiB from the heap
before = libc.mallinfo2().hblkhd
block = libc.malloc(1 << 20)
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.parametrize(("apply", "mapped"), [(True, True), (False, False)])
def test_freed_page_sized_blocks_return_to_the_system_when_a_load_has_started(apply: bool, mapped: bool) -> None:
    # A fresh interpreter, so the heap holds no free chunk big enough to serve the block from.
    out = subprocess.run([sys.executable, "-c", f"APPLY = {apply}\n" + _MAPPED_BYTES_AFTER_A_FREED_BIG_BLOCK],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    # Mapped: a mapping of its own, unmapped when freed; otherwise carved out of the heap, which keeps it.
    assert (int(out) >= 1 << 20) is mapped


@pytest.fixture
def default_gc_threshold() -> Iterator[tuple[int, int, int]]:
    previous = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*previous)


def test_young_collections_are_rarer_while_a_load_runs_and_as_before_after(
    default_gc_threshold: tuple[int, int, int],
) -> None:
    with fewer_collections():
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, 10, 10)
    assert gc.get_threshold() == default_gc_threshold


def test_threshold_comes_back_only_when_the_last_of_overlapping_loads_ends(
    default_gc_threshold: tuple[int, int, int],
) -> None:
    first, second = fewer_collections(), fewer_collections()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # loads in threads need not end in the order they started
    assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD
    second.__exit__(None, None, None)
    assert gc.get_threshold() == default_gc_threshold
