"""Periods and the exact "below target" comparison, shared by every measure and rule."""
from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from fractions import Fraction

from ..timeutil import local_midnight, month_of


def below_target(qualified: int, total: int, target: Fraction) -> bool:
    """``qualified / total`` under ``target``, compared exactly (§6); never with no samples.

    ``target`` is the exact fraction of the configured rate (:func:`shian.rules.params.exact`)."""
    # qualified / total < n / d, cross-multiplied (total and d are positive): exact, no Fraction made
    return total > 0 and qualified * target.denominator < target.numerator * total


def in_period(dt: datetime, period: str) -> bool:
    """``period`` is YYYY-MM or YYYY."""
    return (month_of(dt) if len(period) == 7 else f"{dt.year:04d}") == period


def period_bounds(period: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) in local time of a year (YYYY), a month (YYYY-MM) or a day (YYYY-MM-DD)."""
    y = int(period[:4])
    if len(period) == 4:
        return local_midnight(date(y, 1, 1), tz), local_midnight(date(y + 1, 1, 1), tz)
    m = int(period[5:7])
    if len(period) == 7:
        return (local_midnight(date(y, m, 1), tz),
                local_midnight(date(y + (m == 12), m % 12 + 1, 1), tz))
    d = date(y, m, int(period[8:10]))
    return local_midnight(d, tz), local_midnight(d + timedelta(days=1), tz)


def month_key(period: str) -> tuple[int, int]:
    """YYYY-MM as the (year, month) the tallies are keyed by."""
    return int(period[:4]), int(period[5:7])


def months_in(period: str) -> list[tuple[int, int]]:
    """The (year, month) keys of a month or a year."""
    if len(period) == 4:
        return [(int(period), m) for m in range(1, 13)]
    return [month_key(period)]
