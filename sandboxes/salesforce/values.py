"""Field values: Salesforce's datetime and Id formats, and checking values a client writes."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from sandboxes.book import salesforce_id18
from sandboxes.salesforce.errors import SalesforceError
from sandboxes.salesforce.schema import Field

_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def format_datetime(moment: dt.datetime) -> str:
    """``2026-11-25T10:15:30.000+0000``: how the REST API writes datetimes (always UTC, millisecond precision).

    The store keeps datetimes in this very form: fixed width and UTC, so text comparison is time order.
    """
    moment = moment.astimezone(dt.UTC) if moment.tzinfo else moment
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def now_stamp() -> str:
    return format_datetime(dt.datetime.now(dt.UTC))


def parse_datetime(text: str) -> dt.datetime | None:
    """Parse the ISO 8601 forms Salesforce accepts (``Z``, ``+0800``, ``+08:00``, no zone = UTC)."""
    cleaned = text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    match = re.match(r"^(.*[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)([+-]\d{2}):?(\d{2})$", cleaned)
    if match:
        cleaned = f"{match.group(1)}{match.group(2)}:{match.group(3)}"
    try:
        moment = dt.datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def bulk_datetime(stored: str) -> str:
    """Bulk API CSV writes datetimes with a ``Z`` zone: ``2026-11-25T10:15:30.000Z``."""
    return stored[:-5] + "Z" if stored.endswith("+0000") else stored


def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character Id, or None when ``value`` is not an Id."""
    if not _ID_RE.match(value):
        return None
    if len(value) == 15:
        return salesforce_id18(value)
    # 18-character Ids are case-insensitive; the first 15 characters carry the case.
    return salesforce_id18(value[:15])


def coerce(field: Field, value: Any) -> Any:
    """Check ``value`` written to ``field`` and return what the store keeps; raises :class:`SalesforceError`."""
    if value is None:
        return None
    kind = field.type
    if kind in ("string", "picklist", "email", "phone", "url", "textarea"):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _wrong_type(field, value)
        text = str(value)
        if text == "":
            return None  # Salesforce stores an empty string as null
        if field.length and len(text) > field.length:
            raise SalesforceError(
                400,
                "STRING_TOO_LONG",
                f"{field.label}: data value too large: {text[:100]} (max length={field.length})",
                [field.name],
            )
        if kind == "picklist" and field.restricted_picklist and text not in field.picklist:
            raise SalesforceError(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{field.label}: bad value for restricted picklist field: {text}",
                [field.name],
            )
        if kind == "email" and not _EMAIL_RE.match(text):
            raise SalesforceError(
                400, "INVALID_EMAIL_ADDRESS", f"{field.label}: invalid email address: {text}", [field.name]
            )
        return text
    if kind in ("double", "currency", "percent"):
        if isinstance(value, bool):
            raise _wrong_type(field, value)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise _wrong_type(field, value) from None
        raise _wrong_type(field, value)
    if kind == "boolean":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return int(value.lower() == "true")
        raise _wrong_type(field, value)
    if kind == "date":
        if isinstance(value, str):
            text = value.strip()
            if _DATE_RE.match(text[:10]):
                try:
                    dt.date.fromisoformat(text[:10])
                    return text[:10]
                except ValueError:
                    pass
        raise _wrong_type(field, value)
    if kind == "datetime":
        if isinstance(value, str):
            moment = parse_datetime(value)
            if moment is not None:
                return format_datetime(moment)
        raise _wrong_type(field, value)
    if kind in ("reference", "id"):
        if not isinstance(value, str):
            raise _wrong_type(field, value)
        if value == "":
            return None
        normalized = normalize_id(value)
        if normalized is None:
            raise SalesforceError(
                400, "MALFORMED_ID", f"{field.label}: id value of incorrect type: {value}", [field.name]
            )
        return normalized
    raise _wrong_type(field, value)


def _wrong_type(field: Field, value: Any) -> SalesforceError:
    return SalesforceError(
        400, "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{field.label}: value not of required type: {value}", [field.name]
    )


def to_json(field: Field, stored: Any) -> Any:
    """What the REST API returns for a stored value."""
    if stored is None:
        return None
    if field.type == "boolean":
        return bool(stored)
    return stored


def to_csv(field: Field, stored: Any) -> str:
    """What a Bulk API CSV cell holds for a stored value (null is the empty string)."""
    if stored is None:
        return ""
    if field.type == "boolean":
        return "true" if stored else "false"
    if field.type == "datetime":
        return bulk_datetime(stored)
    if isinstance(stored, float):
        return repr(stored)
    return str(stored)


def csv_cell(field: Field) -> Callable[[Any], str]:
    """``to_csv`` for one field with the CSV quotes inside the value doubled, as one function per field.

    Bulk results are ~15 million cells on the large book: the common stored values (text, floats,
    booleans, UTC datetimes) take a short path; anything else goes through :func:`to_csv`.
    """
    if field.type == "boolean":
        return lambda stored: "" if stored is None else ("true" if stored else "false")

    def quoted(stored: Any) -> str:
        return to_csv(field, stored).replace('"', '""')

    if field.type == "datetime":
        def datetime_cell(stored: Any) -> str:
            if stored.__class__ is str and '"' not in stored:
                return stored[:-5] + "Z" if stored.endswith("+0000") else stored
            return quoted(stored)

        return datetime_cell

    def cell(stored: Any) -> str:
        if stored.__class__ is str:
            return stored.replace('"', '""') if '"' in stored else stored
        if stored.__class__ is float:
            return repr(stored)
        return quoted(stored)

    return cell
