"""Pages to Arrow tables: SOQL for a run, text columns from CSV or JSON pages, typed and checked columns.

Both APIs' pages become text columns first (Bulk CSV is text; REST JSON values are rendered the way the
CSV would hold them), so one conversion serves both. Conversion is column-wise and vectorized; only a
column that fails to convert is examined value by value, to quarantine exactly the bad records and load
the rest of the page.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from pipelines.common.currencies import EXPONENTS
from pipelines.common.quarantine import Quarantine, Rejection
from pipelines.salesforce.schema import UTC_TIMESTAMP, FieldSpec

logger = logging.getLogger(__name__)

ID_FIELD = "Id"
DELETED_FIELD = "IsDeleted"
CURRENCY_FIELD = "CurrencyIsoCode"
EXTRACTED_AT_COLUMN = "_revloop_extracted_at"
_WIDE_DECIMAL = pa.decimal128(38, 18)
_BOOLEAN_TEXT = pa.array(["true", "false"])
_KNOWN_CURRENCIES = pa.array(sorted(EXPONENTS))


class BadColumn(ValueError):
    """A column whose values do not all convert; :func:`convert_column` then finds the culprits."""


# ---- SOQL -------------------------------------------------------------------------------------------


def soql_datetime(moment: dt.datetime) -> str:
    """A SOQL datetime literal in UTC, to the second (``2026-11-25T10:15:30Z``)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def where_since(cursor_field: str, since: dt.datetime | None) -> str:
    """`` WHERE <cursor> >= <since>`` or nothing for a backfill."""
    return "" if since is None else f" WHERE {cursor_field} >= {soql_datetime(since)}"


def select_soql(sobject: str, specs: Sequence[FieldSpec], where: str) -> str:
    return f"SELECT {', '.join(spec.name for spec in specs)} FROM {sobject}{where}"


# ---- pages to text columns --------------------------------------------------------------------------


def csv_columns(page: bytes, specs: Sequence[FieldSpec]) -> dict[str, pa.Array]:
    """A Bulk 2.0 CSV page as text columns by field name (empty cells are null, as Salesforce means them)."""
    table = pa_csv.read_csv(
        pa.BufferReader(page),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={spec.name: pa.string() for spec in specs},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )
    return {name: table.column(name).combine_chunks() for name in table.column_names}


def _as_text(value: Any) -> str | None:
    """A JSON value as the Bulk CSV writes it: booleans ``true``/``false``, numbers by their shortest repr."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return str(value)


def rest_columns(records: Sequence[Mapping[str, Any]], specs: Sequence[FieldSpec]) -> dict[str, pa.Array]:
    """REST query records as text columns by field name (``attributes`` and parent objects left out)."""
    return {
        spec.name: pa.array([_as_text(record.get(spec.name)) for record in records], pa.string())
        for spec in specs
    }


# ---- text to typed columns --------------------------------------------------------------------------


def _cast(spec: FieldSpec, values: pa.Array) -> pa.Array:
    """Convert a text column to ``spec.arrow_type``; raises pyarrow's errors or :class:`BadColumn`."""
    target = spec.arrow_type
    if pa.types.is_string(target):
        return values
    if pa.types.is_boolean(target):
        if not pc.all(pc.or_kleene(pc.is_null(values), pc.is_in(values, value_set=_BOOLEAN_TEXT))).as_py():
            raise BadColumn("not a boolean")
        return pc.equal(values, "true")
    if pa.types.is_decimal(target):
        # Parsed wide, then rounded to the field's scale as Salesforce displays it: values written through
        # the API as binary doubles (299.96999999999997) keep their meaning; too many digits is an error.
        wide = pc.cast(values, _WIDE_DECIMAL)
        return pc.cast(pc.round(wide, ndigits=target.scale, round_mode="half_towards_infinity"), target)
    return pc.cast(values, target)


_REASONS = {
    "bool": "not a boolean (true/false)",
    "int64": "not an integer",
    "date32[day]": "not a date (YYYY-MM-DD)",
    "double": "not a number",
}


def _reason(spec: FieldSpec, value: str) -> str:
    target = spec.arrow_type
    if pa.types.is_decimal(target):
        try:
            pc.cast(pa.array([value]), _WIDE_DECIMAL)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return f"not a number: {value[:40]!r}"
        return f"number out of range for decimal({target.precision},{target.scale})"
    if pa.types.is_timestamp(target):
        return f"not a datetime: {value[:40]!r}"
    return f"{_REASONS.get(str(target), f'not a {target}')}: {value[:40]!r}"


def convert_column(spec: FieldSpec, values: pa.Array) -> tuple[pa.Array, dict[int, str]]:
    """The typed column and, when some values do not convert, their row positions with the reason
    (those positions are null in the returned column)."""
    try:
        return _cast(spec, values), {}
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, BadColumn):
        pass
    bad: dict[int, str] = {}
    for index, value in enumerate(values.to_pylist()):
        if value is None:
            continue
        try:
            _cast(spec, pa.array([value], pa.string()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, BadColumn):
            bad[index] = _reason(spec, value)
    keep = pa.array([index not in bad for index in range(len(values))])
    cleaned = pc.if_else(keep, values, pa.scalar(None, pa.string()))
    return _cast(spec, cleaned), bad


def _row(columns: Mapping[str, pa.Array], index: int) -> dict[str, Any]:
    return {name: column[index].as_py() for name, column in columns.items()}


def typed_table(
    sobject: str,
    columns: Mapping[str, pa.Array],
    specs: Sequence[FieldSpec],
    quarantine: Quarantine,
    extracted_at: dt.datetime,
) -> pa.Table:
    """A page's text columns as a typed table named by warehouse columns, bad records quarantined.

    A record is bad when its ``Id`` is missing, its ``CurrencyIsoCode`` is not an ISO 4217 code we know,
    or a value does not convert to its field's type; it goes to the quarantine with the field and the
    reason, and the rest of the page loads. The first problem of a record is the one reported.
    """
    rows = len(next(iter(columns.values()))) if columns else 0
    problems: dict[int, tuple[str, str]] = {}

    def flag(index: int, field: str, reason: str) -> None:
        problems.setdefault(index, (field, reason))

    ids = columns.get(ID_FIELD)
    if ids is not None and ids.null_count:
        for index in pc.indices_nonzero(pc.is_null(ids)).to_pylist():
            flag(index, ID_FIELD, "required identifier is missing")
    currencies = columns.get(CURRENCY_FIELD)
    if currencies is not None:
        unknown = pc.and_(pc.is_valid(currencies), pc.invert(pc.is_in(currencies, value_set=_KNOWN_CURRENCIES)))
        for index in pc.indices_nonzero(unknown).to_pylist():
            flag(index, CURRENCY_FIELD, f"unknown currency code {currencies[index].as_py()!r}")

    arrays: list[pa.Array] = []
    fields: list[pa.Field] = []
    for spec in specs:
        values = columns.get(spec.name)
        if values is None:  # a field the query did not return (cannot happen with our SELECT; be safe)
            values = pa.nulls(rows, pa.string())
        typed, bad = convert_column(spec, values)
        for index, reason in bad.items():
            flag(index, spec.name, reason)
        arrays.append(typed)
        fields.append(pa.field(spec.column, spec.arrow_type, nullable=spec.name != ID_FIELD))
    arrays.append(pa.array([extracted_at] * rows, UTC_TIMESTAMP) if rows else pa.array([], UTC_TIMESTAMP))
    fields.append(pa.field(EXTRACTED_AT_COLUMN, UTC_TIMESTAMP, nullable=False))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    if problems:
        for index, (field, reason) in sorted(problems.items()):
            raw = columns.get(field)
            quarantine.reject(
                Rejection(
                    object=sobject,
                    record_id=ids[index].as_py() if ids is not None else None,
                    field=field,
                    reason=reason,
                    value=raw[index].as_py() if raw is not None else None,
                    payload=_row(columns, index),
                )
            )
        keep = pa.array([index not in problems for index in range(rows)])
        table = table.filter(keep)
    return table

