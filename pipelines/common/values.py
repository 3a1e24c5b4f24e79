"""Checked conversions of source values; each failure is a :class:`BadValue` naming the field."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from pipelines.common.currencies import EXPONENTS
from pipelines.common.quarantine import BadValue

_SALESFORCE_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2})$")


def parse_datetime_utc(value: object, field: str) -> dt.datetime | None:
    """A timezone-aware UTC datetime from Salesforce (``...000+0000``), ISO 8601, Odoo's naive UTC
    (``2026-11-25 10:15:30``) or Unix seconds (Stripe). None stays None."""
    if value is None or value == "" or value is False:
        return None
    if isinstance(value, bool):
        raise BadValue(field, "a datetime was expected, got a boolean", value)
    if isinstance(value, int | float):
        try:
            return dt.datetime.fromtimestamp(value, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise BadValue(field, f"timestamp out of range: {value}", value) from None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not isinstance(value, str):
        raise BadValue(field, f"a datetime was expected, got {type(value).__name__}", value)
    text = value.strip()
    match = _SALESFORCE_DATETIME.match(text)
    if match:
        date, time, fraction, zone = match.groups()
        zone = "+00:00" if zone == "Z" else (zone if ":" in zone else f"{zone[:3]}:{zone[3:]}")
        text = f"{date}T{time}.{(fraction or '0').ljust(6, '0')}{zone}"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadValue(field, f"not a datetime: {value!r}", value) from None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_date(value: object, field: str) -> dt.date | None:
    """A calendar date (``YYYY-MM-DD``); None/empty/False (Odoo's null) stay None."""
    if value is None or value == "" or value is False:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise BadValue(field, f"a date was expected, got {type(value).__name__}", value)
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise BadValue(field, f"not a date: {value!r}", value) from None


def parse_decimal(value: object, field: str) -> Decimal | None:
    """An exact decimal from a number or numeric string; floats go through their shortest repr."""
    if value is None or value == "" or value is False:
        return None
    if isinstance(value, bool):
        raise BadValue(field, "a number was expected, got a boolean", value)
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise BadValue(field, f"not a number: {value!r}", value) from None
    if not number.is_finite():
        raise BadValue(field, f"not a finite number: {value!r}", value)
    return number


def check_currency(value: object, field: str) -> str | None:
    """An ISO 4217 code in upper case (Stripe sends lower case); unknown codes are refused."""
    if value is None or value == "" or value is False:
        return None
    code = str(value).strip().upper()
    if code not in EXPONENTS:
        raise BadValue(field, f"unknown currency code {value!r}", value)
    return code


def require(value: object, field: str) -> object:
    """``value`` unless it is missing, in which case the record cannot be keyed."""
    if value is None or value == "" or value is False:
        raise BadValue(field, "required identifier is missing", value)
    return value
