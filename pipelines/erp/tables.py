"""One page of Odoo records -> one Arrow table of the raw layer, PII protected, bad records quarantined.

The common case is converted column by column with Arrow's kernels (no per-record Python beyond
list comprehensions). When any value does not fit its column (a string where a number belongs, a date that
does not parse, an unknown currency, a missing id), the page is converted again record by record with the
checked parsers of ``pipelines.common.values``; the records that fail go to the quarantine with the field
and the reason, and the rest of the page loads.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.common.currencies import EXPONENTS
from pipelines.common.pii import PiiProtector
from pipelines.common.quarantine import BadValue, Quarantine, Rejection
from pipelines.common.values import check_currency, parse_date, parse_datetime_utc, parse_decimal, require
from pipelines.erp import settings as erp

Record = dict[str, Any]

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
DECIMAL_TYPE = pa.decimal128(erp.DECIMAL_PRECISION, erp.DECIMAL_SCALE)
_QUANTUM = Decimal(1).scaleb(-erp.DECIMAL_SCALE)
_NO_TEXT = pa.scalar(None, pa.string())


class _NeedsChecking(Exception):
    """A value the fast path does not accept: convert the page record by record."""


def _base(field: str) -> str:
    return field.removesuffix("_id")


def output_columns(field: str, kind: str) -> list[pa.Field]:
    """The raw-layer columns one Odoo field becomes."""
    if kind in (erp.MANY2ONE, erp.CURRENCY):
        return [pa.field(f"{_base(field)}_id", pa.int64()), pa.field(f"{_base(field)}_name", pa.string())]
    arrow_type = {
        erp.INT: pa.int64(), erp.TEXT: pa.string(), erp.BOOL: pa.bool_(), erp.DATETIME: UTC_TIMESTAMP,
        erp.DATE: pa.date32(), erp.DECIMAL: DECIMAL_TYPE, erp.CURRENCY_CODE: pa.string(),
        erp.MANY2ONE_ID: pa.int64(), erp.ID_LIST: pa.string(),
    }[kind]
    return [pa.field(field, arrow_type, nullable=field != "id")]


TRAILING_COLUMNS = [
    pa.field("is_deleted", pa.bool_()),
    pa.field("deleted_at", UTC_TIMESTAMP),
    pa.field("_revloop_extracted_at", UTC_TIMESTAMP),
]


# ------------------------------------------------------------------------------------------------ fast path


def _texts(values: list[Any]) -> pa.Array:
    return pa.array([None if v is False else v for v in values], pa.string())


def _fast_datetimes(values: list[Any]) -> pa.Array:
    return pc.strptime(_texts(values), format=erp.ODOO_DATETIME_FORMAT, unit="us").cast(UTC_TIMESTAMP)


def _fast_dates(values: list[Any]) -> pa.Array:
    return pc.strptime(_texts(values), format="%Y-%m-%d", unit="s").cast(pa.date32())


def _fast_decimals(values: list[Any]) -> pa.Array:
    floats = pa.array([None if v is False else v for v in values], pa.float64())
    # Through the shortest text of each float (what Python's repr gives), not its binary value:
    # 6196000.01 must load as 6196000.01, not 6196000.0099999998.
    return pc.round(floats, erp.DECIMAL_SCALE).cast(pa.string()).cast(DECIMAL_TYPE)


def _fast_currency_codes(values: list[Any]) -> pa.Array:
    if any(v not in EXPONENTS for v in values if v is not False and v is not None):
        raise _NeedsChecking
    return _texts(values)


def _fast_many2one(values: list[Any], currency: bool = False) -> list[pa.Array]:
    ids = [v[0] if v else None for v in values]
    names = [v[1] if v else None for v in values]
    if currency and any(n not in EXPONENTS for n in names if n is not None):
        raise _NeedsChecking
    return [pa.array(ids, pa.int64()), pa.array(names, pa.string())]


def _fast_id_lists(values: list[Any]) -> pa.Array:
    if not all(isinstance(v, list) for v in values):
        raise _NeedsChecking
    return pa.array([orjson.dumps(v).decode() for v in values], pa.string())


def _fast_column(kind: str, values: list[Any]) -> list[pa.Array]:
    if kind == erp.INT:
        if any(isinstance(v, bool) for v in values):
            raise _NeedsChecking
        return [pa.array(values, pa.int64())]
    if kind == erp.BOOL:
        return [pa.array(values, pa.bool_())]
    if kind == erp.TEXT:
        return [_texts(values)]
    if kind == erp.DATETIME:
        return [_fast_datetimes(values)]
    if kind == erp.DATE:
        return [_fast_dates(values)]
    if kind == erp.DECIMAL:
        return [_fast_decimals(values)]
    if kind == erp.CURRENCY_CODE:
        return [_fast_currency_codes(values)]
    if kind == erp.MANY2ONE:
        return _fast_many2one(values)
    if kind == erp.CURRENCY:
        return _fast_many2one(values, currency=True)
    if kind == erp.MANY2ONE_ID:
        return [pa.array([v[0] if v else None for v in values], pa.int64())]
    if kind == erp.ID_LIST:
        return [_fast_id_lists(values)]
    raise ValueError(f"unknown column kind {kind!r}")


# ---------------------------------------------------------------------------------------------- checked path


def _checked_int(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadValue(field, f"an integer was expected, got {type(value).__name__}", value)
    return value


def _checked_text(value: Any, field: str) -> str | None:
    if value is None or value is False:
        return None
    if not isinstance(value, str):
        raise BadValue(field, f"a text was expected, got {type(value).__name__}", value)
    return value


def _checked_bool(value: Any, field: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise BadValue(field, f"a boolean was expected, got {type(value).__name__}", value)
    return value


def _checked_decimal(value: Any, field: str) -> Decimal | None:
    number = parse_decimal(value, field)
    if number is None:
        return None
    if abs(number) >= Decimal(10) ** (erp.DECIMAL_PRECISION - erp.DECIMAL_SCALE):
        raise BadValue(field, f"number out of range: {value!r}", value)
    return number.quantize(_QUANTUM)


def _checked_many2one(value: Any, field: str) -> tuple[int | None, str | None]:
    if value is None or value is False:
        return None, None
    if (not isinstance(value, list) or len(value) != 2 or isinstance(value[0], bool)
            or not isinstance(value[0], int) or not isinstance(value[1], str)):
        raise BadValue(field, "a many2one [id, name] was expected", value)
    return value[0], value[1]


def _checked_currency(value: Any, field: str) -> tuple[int | None, str | None]:
    record_id, name = _checked_many2one(value, field)
    return record_id, check_currency(name, field)


def _checked_id_list(value: Any, field: str) -> str:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise BadValue(field, "a list of ids was expected", value)
    return orjson.dumps(value).decode()


_CHECKED: dict[str, Callable[[Any, str], Any]] = {
    erp.INT: _checked_int, erp.TEXT: _checked_text, erp.BOOL: _checked_bool,
    erp.DATETIME: parse_datetime_utc, erp.DATE: parse_date, erp.DECIMAL: _checked_decimal,
    erp.CURRENCY_CODE: check_currency, erp.MANY2ONE_ID: lambda v, f: _checked_many2one(v, f)[0],
    erp.ID_LIST: _checked_id_list,
}
_CHECKED_PAIRS: dict[str, Callable[[Any, str], tuple[Any, Any]]] = {
    erp.MANY2ONE: _checked_many2one, erp.CURRENCY: _checked_currency,
}


# ------------------------------------------------------------------------------------------------ converter


class PageConverter:
    """Converts pages of one model with the fields the server has; knows the final table's schema."""

    def __init__(self, spec: erp.ModelSpec, fields: Sequence[tuple[str, str]], protector: PiiProtector,
                 quarantine: Quarantine | None, open_rejections: Iterable[str] = ()) -> None:
        self.spec = spec
        self.table_name = spec.table
        self.fields = list(fields)
        self.field_names = [name for name, _ in self.fields]
        self.protector = protector
        self.quarantine = quarantine
        self.open_rejections = set(open_rejections)
        self.raw_schema = pa.schema(
            [column for name, kind in self.fields for column in output_columns(name, kind)] + TRAILING_COLUMNS
        )
        self.pii = dict(erp.PII_COLUMNS.get(self.table_name, {}))
        self.person_name = erp.PERSON_NAME_COLUMNS.get(self.table_name)
        if self.person_name and self.person_name[0] in self.raw_schema.names:
            self.pii[self.person_name[0]] = "name"
        else:
            self.person_name = None
        self.schema = self._protect(self.raw_schema.empty_table()).schema
        """The schema of every table this converter yields (after PII protection)."""
        self.rejected = 0
        self.seconds = 0.0
        """Time spent converting and protecting pages, for the load summary."""

    def convert(self, rows: list[Record], extracted_at: dt.datetime | None = None) -> pa.Table | None:
        """The raw-layer table of ``rows`` (bad records quarantined), or None when nothing is left."""
        if not rows:
            return None
        started = time.perf_counter()
        try:
            return self._convert(rows, extracted_at or dt.datetime.now(dt.UTC))
        finally:
            self.seconds += time.perf_counter() - started

    def _convert(self, rows: list[Record], extracted_at: dt.datetime) -> pa.Table | None:
        try:
            columns = self._fast_columns(rows)
        except (_NeedsChecking, pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError,
                TypeError, IndexError, KeyError, ValueError):
            columns, rows = self._checked_columns(rows)
            if not rows:
                return None
        count = len(rows)
        columns += [
            pa.array([False] * count, pa.bool_()),
            pa.nulls(count, UTC_TIMESTAMP),
            pa.array([extracted_at] * count, UTC_TIMESTAMP),
        ]
        table = pa.Table.from_arrays(columns, schema=self.raw_schema)
        self._resolve_rejections(rows)
        return self._protect(table)

    def deleted(self, table: pa.Table, deleted_at: dt.datetime) -> pa.Table:
        """Last-known rows (already protected, read back from the warehouse) flagged as deleted."""
        count = table.num_rows
        for name, values in (
            ("is_deleted", pa.array([True] * count, pa.bool_())),
            ("deleted_at", pa.array([deleted_at] * count, UTC_TIMESTAMP)),
            ("_revloop_extracted_at", pa.array([deleted_at] * count, UTC_TIMESTAMP)),
        ):
            table = table.set_column(table.schema.get_field_index(name), name, values)
        return table

    def _fast_columns(self, rows: list[Record]) -> list[pa.Array]:
        columns: list[pa.Array] = []
        for name, kind in self.fields:
            values = [r[name] for r in rows]
            if name == "id" and any(v is None or v is False for v in values):
                raise _NeedsChecking
            columns.extend(_fast_column(kind, values))
        return columns

    def _checked_columns(self, rows: list[Record]) -> tuple[list[pa.Array], list[Record]]:
        """Record-by-record conversion; failing records are quarantined and dropped."""
        good_rows: list[Record] = []
        values: list[list[Any]] = [[] for _ in range(len(self.raw_schema) - len(TRAILING_COLUMNS))]
        for row in rows:
            try:
                converted = self._checked_row(row)
            except BadValue as bad:
                self._reject(row, bad)
                continue
            good_rows.append(row)
            for index, value in enumerate(converted):
                values[index].append(value)
        arrays = [pa.array(column, field.type) for column, field in zip(values, self.raw_schema, strict=False)]
        return arrays, good_rows

    def _checked_row(self, row: Record) -> list[Any]:
        converted: list[Any] = []
        for name, kind in self.fields:
            value = row.get(name)
            if name == "id":
                require(value, "id")
            if kind in _CHECKED_PAIRS:
                converted.extend(_CHECKED_PAIRS[kind](value, name))
            else:
                converted.append(_CHECKED[kind](value, name))
        return converted

    def _reject(self, row: Record, bad: BadValue) -> None:
        self.rejected += 1
        if self.quarantine is None:
            raise bad
        record_id = row.get("id")
        self.quarantine.reject(Rejection(
            object=self.spec.model, record_id=None if record_id in (None, False) else str(record_id),
            field=bad.field, reason=bad.reason, value=bad.value, payload=row,
        ))

    def _resolve_rejections(self, rows: list[Record]) -> None:
        """Open rejections of records that now loaded cleanly are marked resolved."""
        if not self.open_rejections or self.quarantine is None:
            return
        cleared = [str(r["id"]) for r in rows if str(r["id"]) in self.open_rejections]
        if cleared:
            self.quarantine.resolve(self.spec.model, cleared)
            self.open_rejections.difference_update(cleared)

    def _protect(self, table: pa.Table) -> pa.Table:
        """PII columns encrypted and hashed; a person's name too, a company's name kept plain."""
        company_names = None
        if self.person_name is not None:
            name, flag = self.person_name
            is_company = pc.fill_null(table.column(flag), False)
            company_names = pc.if_else(is_company, table.column(name), _NO_TEXT)
            person_names = pc.if_else(is_company, _NO_TEXT, table.column(name))
            table = table.set_column(table.schema.get_field_index(name), name, person_names)
        table = self.protector.protect_table(self.table_name, table, self.pii)
        if self.person_name is not None and company_names is not None:
            name = self.person_name[0]
            table = table.add_column(table.schema.get_field_index(f"{name}_enc"), pa.field(name, pa.string()),
                                     company_names)
        return table
