"""The holidays the campaign rules follow and the official working days.

春节 (正月初一) comes from ``lunardate`` (valid 1900–2099); the working-day calendar, with
public holidays and 调休 workdays as the State Council publishes them, from
``chinese_calendar``. A year that library has no data for falls back to weekends only.
"""
from __future__ import annotations

from datetime import date
from functools import lru_cache

import chinese_calendar
from lunardate import LunarDate

HOLIDAYS = ("元旦", "春节", "劳动节", "国庆节")


@lru_cache(maxsize=4096)
def holiday_date(name: str, year: int) -> date:
    """Date of holiday H in ``year``: 1 Jan, 正月初一, 1 May or 1 Oct.

    ValueError for 春节 outside 1900–2099, the range of the lunar tables."""
    if name == "元旦":
        return date(year, 1, 1)
    if name == "劳动节":
        return date(year, 5, 1)
    if name == "国庆节":
        return date(year, 10, 1)
    if name == "春节":
        return LunarDate(year, 1, 1).to_solar_date()
    raise ValueError(f"unknown holiday {name!r}")


@lru_cache(maxsize=8192)
def is_working_day(d: date) -> bool:
    """Official working day: weekdays except public holidays, plus 调休 weekend workdays."""
    try:
        return chinese_calendar.is_workday(d)
    except NotImplementedError:
        return d.weekday() < 5


def covers_year(year: int) -> bool:
    """Whether the official schedule of ``year`` is known (else weekends only)."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
        return True
    except NotImplementedError:
        return False
