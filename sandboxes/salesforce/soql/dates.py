"""SOQL's relative date literals (TODAY, LAST_N_DAYS:n, THIS_MONTH...) as half-open date ranges."""

from __future__ import annotations

import datetime as dt


def _month_start(day: dt.date, shift: int = 0) -> dt.date:
    month_index = day.year * 12 + (day.month - 1) + shift
    return dt.date(month_index // 12, month_index % 12 + 1, 1)


def date_literal_range(literal: tuple[str, int], today: dt.date) -> tuple[dt.date, dt.date]:
    """The ``[start, end)`` dates a literal covers; weeks start on Sunday, as in the default locale."""
    word, amount = literal
    one_day = dt.timedelta(days=1)
    week_start = today - dt.timedelta(days=(today.weekday() + 1) % 7)
    ranges = {
        "TODAY": (today, today + one_day),
        "YESTERDAY": (today - one_day, today),
        "TOMORROW": (today + one_day, today + 2 * one_day),
        "THIS_WEEK": (week_start, week_start + 7 * one_day),
        "LAST_WEEK": (week_start - 7 * one_day, week_start),
        "NEXT_WEEK": (week_start + 7 * one_day, week_start + 14 * one_day),
        "THIS_MONTH": (_month_start(today), _month_start(today, 1)),
        "LAST_MONTH": (_month_start(today, -1), _month_start(today)),
        "NEXT_MONTH": (_month_start(today, 1), _month_start(today, 2)),
        "THIS_YEAR": (dt.date(today.year, 1, 1), dt.date(today.year + 1, 1, 1)),
        "LAST_YEAR": (dt.date(today.year - 1, 1, 1), dt.date(today.year, 1, 1)),
        "NEXT_YEAR": (dt.date(today.year + 1, 1, 1), dt.date(today.year + 2, 1, 1)),
        # LAST_N_DAYS:n covers the n days before today and today itself.
        "LAST_90_DAYS": (today - 90 * one_day, today + one_day),
        "NEXT_90_DAYS": (today + one_day, today + 91 * one_day),
        "LAST_N_DAYS": (today - amount * one_day, today + one_day),
        "NEXT_N_DAYS": (today + one_day, today + (amount + 1) * one_day),
    }
    return ranges[word]
