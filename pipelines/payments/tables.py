"""Stripe objects (parsed JSON) -> Arrow tables of declared columns, bad records quarantined.

Pure functions: no HTTP and no database, so the parsing rules are table-tested directly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
import pyarrow as pa

from pipelines.common.currencies import EXPONENTS
from pipelines.common.quarantine import BadValue, Rejection

MAX_UNIX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z

UTC_SECONDS = pa.timestamp("s", tz="UTC")
UTC_MICROS = pa.timestamp("us", tz="UTC")

ARROW_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(), "text": pa.string(), "ref": pa.string(), "currency": pa.string(), "json": pa.string(),
    "keys": pa.string(), "int": pa.int64(), "amount": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
    "ts": UTC_SECONDS,
}

BOOKKEEPING = (
    pa.field("is_deleted", pa.bool_()),
    pa.field("_revloop_observed_at", UTC_SECONDS),
    pa.field("_revloop_event_id", pa.string()),
    pa.field("_revloop_extracted_at", UTC_MICROS),
)
"""Columns every object row carries: the soft-delete flag; the moment the row's state is known to reflect
(the event's ``created``, or just before the list read), which orders competing versions of a record; the
event that carried it (null for list reads); when it was extracted."""


@dataclasses.dataclass(frozen=True)
class Column:
    """One loaded column: its name, where it sits in the Stripe object, and how it is checked."""

    name: str
    path: tuple[str, ...]
    kind: str

    @property
    def field(self) -> str:
        """The Stripe attribute, dotted, as quarantine rows name it."""
        return ".".join(self.path)


def parse_columns(specs: Sequence[str]) -> tuple[Column, ...]:
    """Columns from ``"name=path:kind"`` / ``"path:kind"`` declarations (see ``settings``)."""
    columns = []
    for spec in specs:
        target, _, kind = spec.rpartition(":")
        name, _, path = target.rpartition("=")
        path = path or target
        if kind not in ARROW_TYPES:
            raise ValueError(f"unknown column kind {kind!r} in {spec!r}")
        columns.append(Column(name or path.replace(".", "_"), tuple(path.split(".")), kind))
    return tuple(columns)


# -- value checks (each raises BadValue naming the Stripe attribute) -----------------------------------------


def _text(value: Any, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise BadValue(field, f"text was expected, got {type(value).__name__}", value)


def _identifier(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadValue(field, "required identifier is missing", value)
    return value


def _integer(value: Any, field: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise BadValue(field, f"an integer was expected, got {value!r}", value)


def _amount(value: Any, field: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise BadValue(field, f"amount is not an integer number of minor units: {value!r}", value)


def _number(value: Any, field: str) -> float | None:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return None if value is None else float(value)
    raise BadValue(field, f"a number was expected, got {value!r}", value)


def _boolean(value: Any, field: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise BadValue(field, f"a boolean was expected, got {value!r}", value)


def _timestamp(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_UNIX_SECONDS:
        return value
    raise BadValue(field, f"not a Unix timestamp: {value!r}", value)


def _currency(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.upper() in EXPONENTS:
        return value
    raise BadValue(field, f"unknown currency code {value!r}", value)


def _reference(value: Any, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return value["id"]  # an expanded object
    raise BadValue(field, f"an id was expected, got {type(value).__name__}", value)


def _json(value: Any, field: str) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _keys(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadValue(field, f"an object was expected, got {type(value).__name__}", value)
    return orjson.dumps(sorted(value)).decode()


CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "id": _identifier, "text": _text, "int": _integer, "amount": _amount, "float": _number, "bool": _boolean,
    "ts": _timestamp, "currency": _currency, "ref": _reference, "json": _json, "keys": _keys,
}


def _getter(path: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Any]:
    if len(path) == 1:
        key = path[0]
        return lambda record: record.get(key)

    def get(record: Mapping[str, Any]) -> Any:
        node: Any = record
        for key in path:
            if not isinstance(node, Mapping):
                return None
            node = node.get(key)
        return node

    return get


# -- one function per table that reads and checks a record's columns ------------------------------------------

_KNOWN_LOWER_CURRENCIES = frozenset(code.lower() for code in EXPONENTS)

_VALID_WITHOUT_CALL: dict[str, str] = {
    # kind -> a condition on ``v`` under which its check would return ``v`` unchanged (Stripe's usual values)
    "id": "v.__class__ is str and v",
    "text": "v is None or v.__class__ is str",
    "ref": "v is None or v.__class__ is str",
    "int": "v is None or v.__class__ is int",
    "amount": "v is None or v.__class__ is int",
    "bool": "v is None or v is True or v is False",
    "ts": f"v is None or (v.__class__ is int and 0 <= v <= {MAX_UNIX_SECONDS})",
    "currency": "v is None or (v.__class__ is str and v in known_lower_currencies)",
}
"""Kinds whose check can be skipped for the values that pass it as they are; other values (and the other
kinds: ``float``, ``json``, ``keys``, which convert) still go through :data:`CHECKS`, which accepts,
converts or raises exactly as before."""


def compile_row(columns: Sequence[Column]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function returning the checked values of ``columns`` for one record (or raising ``BadValue``).

    The same as applying each column's getter and :data:`CHECKS` entry in turn, written out as one
    function: a large payments backfill checks ~13 million values, and two Python calls per value (get,
    check) were a third of the load's CPU. Plain dicts (what orjson makes) are walked inline; any other
    node goes through :func:`_getter`, and any value not known good through its check.
    """
    namespace: dict[str, Any] = {"known_lower_currencies": _KNOWN_LOWER_CURRENCIES}
    lines = ["def row(record):", "    get = record.get"]
    for index, column in enumerate(columns):
        namespace[f"check{index}"] = CHECKS[column.kind]
        namespace[f"field{index}"] = column.field
        head, *rest = column.path
        lines.append(f"    v = get({head!r})")
        if rest:
            namespace[f"getter{index}"] = _getter(column.path)
        for depth, key in enumerate(rest):
            # Down one level while nodes are dicts; None stays None; any other node: the whole path again.
            indent = "    " * (depth + 1)
            lines += [f"{indent}if v.__class__ is dict:", f"{indent}    v = v.get({key!r})"]
        for depth in reversed(range(len(rest))):
            indent = "    " * (depth + 1)
            lines += [f"{indent}elif v is not None:", f"{indent}    v = getter{index}(record)"]
        fast = _VALID_WITHOUT_CALL.get(column.kind)
        if fast is None:
            lines.append(f"    v{index} = check{index}(v, field{index})")
        else:
            lines.append(f"    v{index} = v if {fast} else check{index}(v, field{index})")
    lines.append("    return (" + "".join(f"v{index}, " for index in range(len(columns))) + ")")
    exec(compile("\n".join(lines), f"<payments row of {len(columns)} columns>", "exec"), namespace)  # noqa: S102
    return namespace["row"]  # type: ignore[no-any-return]


@dataclasses.dataclass(frozen=True)
class Versioned:
    """One object as read, with when its state is known to hold and whether it was deleted."""

    record: Mapping[str, Any]
    observed_at: int
    event_id: str | None = None
    deleted: bool = False


class TableBuilder:
    """Builds the Arrow table of one Stripe object type; rejects bad records through ``reject``."""

    def __init__(self, table: str, columns: Sequence[Column], reject: Callable[[Rejection], None],
                 *, bookkeeping: bool = True) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.reject = reject
        self.bookkeeping = bookkeeping
        self._values = compile_row(self.columns)
        fields = [pa.field(c.name, ARROW_TYPES[c.kind], nullable=c.kind != "id") for c in self.columns]
        self.schema = pa.schema([*fields, *(BOOKKEEPING if bookkeeping else BOOKKEEPING[-1:])])
        id_columns = [c for c in self.columns if c.name == "id"]
        self._id = _getter(id_columns[0].path) if id_columns else (lambda record: None)

    def row(self, record: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The checked values of ``record``, or None once it has been quarantined."""
        try:
            values = self._values(record)
        except BadValue as bad:
            record_id = self._id(record)
            self.reject(Rejection(
                object=self.table, record_id=record_id if isinstance(record_id, str) else None,
                field=f"{self.table}.{bad.field}", reason=bad.reason, value=bad.value, payload=dict(record),
            ))
            return None
        return values

    def build(self, items: Sequence[Versioned], extracted_at: dt.datetime) -> pa.Table:
        """One Arrow table of the items that pass their checks, in the builder's schema."""
        rows: list[tuple[Any, ...]] = []
        observed: list[int] = []
        event_ids: list[str | None] = []
        deleted: list[bool] = []
        for item in items:
            row = self.row(item.record)
            if row is None:
                continue
            rows.append(row)
            observed.append(item.observed_at)
            event_ids.append(item.event_id)
            deleted.append(item.deleted)
        return self._assemble(rows, observed, event_ids, deleted, extracted_at)

    def build_plain(self, records: Sequence[Mapping[str, Any]], extracted_at: dt.datetime) -> pa.Table:
        """The table of records that carry no version (events themselves)."""
        rows = [row for row in map(self.row, records) if row is not None]
        return self._assemble(rows, [], [], [], extracted_at)

    def _assemble(self, rows: list[tuple[Any, ...]], observed: list[int], event_ids: list[str | None],
                  deleted: list[bool], extracted_at: dt.datetime) -> pa.Table:
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in self.columns]
        arrays = [pa.array(values, ARROW_TYPES[c.kind]) for c, values in zip(self.columns, columns, strict=True)]
        if self.bookkeeping:
            arrays += [
                pa.array(deleted, pa.bool_()), pa.array(observed, UTC_SECONDS), pa.array(event_ids, pa.string()),
            ]
        arrays.append(pa.array([extracted_at] * len(rows), UTC_MICROS))
        return pa.Table.from_arrays(arrays, schema=self.schema)
