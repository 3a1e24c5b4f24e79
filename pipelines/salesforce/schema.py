"""From ``describe`` to columns: which fields are read, their Arrow (hence warehouse) types, and what changed.

Columns are whatever the integration user can see, custom fields included, so a field added in Salesforce
appears in the warehouse on the next run without code changes. A snapshot of each object's fields is kept
in the resource state; comparing the next describe with it finds type changes and removed fields, which
are reported (never dropped silently: dlt keeps the old column, and a changed type lands in a variant
column).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
from dlt.common.normalizers.naming.snake_case import NamingConvention

_NAMING = NamingConvention()

TEXT_TYPES = frozenset(
    {
        "id", "reference", "string", "picklist", "multipicklist", "combobox", "email", "phone", "url",
        "textarea", "encryptedstring", "anyType", "time", "complexvalue",
    }
)
NUMBER_TYPES = frozenset({"double", "currency", "percent"})
UNREADABLE_TYPES = frozenset({"address", "location", "base64"})
"""Compound fields (their components are fields of their own) and blobs, which Bulk queries refuse."""

MAX_DECIMAL_PRECISION = 38
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


def column_name(field_name: str) -> str:
    """The warehouse column of a Salesforce field: dlt's snake_case (``VAT_Number__c`` -> ``vat_number_c``)."""
    return _NAMING.normalize_identifier(field_name)


def table_name(sobject: str) -> str:
    """The warehouse table of an sObject: dlt's snake_case (``OpportunityLineItem`` -> ``opportunity_line_item``)."""
    return _NAMING.normalize_table_identifier(sobject)


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One field as loaded: its Salesforce name and type, its column and its Arrow type."""

    name: str
    sf_type: str
    column: str
    arrow_type: pa.DataType
    precision: int = 0
    scale: int = 0

    @property
    def signature(self) -> str:
        """What a type change is judged on: ``currency(18,2)``, ``string``."""
        return f"{self.sf_type}({self.precision},{self.scale})" if self.sf_type in NUMBER_TYPES else self.sf_type


def arrow_type_for(sf_type: str, precision: int = 0, scale: int = 0) -> pa.DataType:
    """The Arrow type of a describe type: text, bigint, decimal(p, s), bool, date or timestamptz."""
    if sf_type == "boolean":
        return pa.bool_()
    if sf_type == "int":
        return pa.int64()
    if sf_type in NUMBER_TYPES:
        if 0 < precision <= MAX_DECIMAL_PRECISION and 0 <= scale <= precision:
            return pa.decimal128(precision, scale)
        return pa.float64()
    if sf_type == "date":
        return pa.date32()
    if sf_type == "datetime":
        return UTC_TIMESTAMP
    return pa.string()


def field_specs(describe: Mapping[str, Any]) -> list[FieldSpec]:
    """The readable fields of a describe result, in describe order (compound and blob fields left out)."""
    specs = []
    for field in describe.get("fields", []):
        sf_type = str(field.get("type", "string"))
        if sf_type in UNREADABLE_TYPES:
            continue
        precision, scale = int(field.get("precision") or 0), int(field.get("scale") or 0)
        specs.append(
            FieldSpec(
                name=field["name"], sf_type=sf_type, column=column_name(field["name"]),
                arrow_type=arrow_type_for(sf_type, precision, scale), precision=precision, scale=scale,
            )
        )
    return specs


def snapshot(specs: Iterable[FieldSpec]) -> dict[str, str]:
    """Field name -> type signature, kept in the resource state between runs."""
    return {spec.name: spec.signature for spec in specs}


def schema_changes(
    sobject: str, previous: Mapping[str, str] | None, current: Mapping[str, str], detected_at: dt.datetime
) -> list[dict[str, Any]]:
    """Rows for ``_revloop_schema_changes``: fields removed, types changed, fields added (since ``previous``)."""
    if not previous:
        return []
    rows = []
    for name, old in previous.items():
        new = current.get(name)
        if new is None:
            rows.append(_change(sobject, name, "removed", old, None, detected_at))
        elif new != old:
            rows.append(_change(sobject, name, "type_changed", old, new, detected_at))
    for name, new in current.items():
        if name not in previous:
            rows.append(_change(sobject, name, "added", None, new, detected_at))
    return rows


def _change(
    sobject: str, field: str, change: str, old: str | None, new: str | None, detected_at: dt.datetime
) -> dict[str, Any]:
    return {
        "id": f"{sobject}.{field}.{change}.{detected_at.isoformat()}",
        "object": sobject,
        "field": field,
        "change": change,
        "old_type": old,
        "new_type": new,
        "detected_at": detected_at,
    }
