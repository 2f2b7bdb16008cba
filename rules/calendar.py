"""The holidays the campaign rules follow, and the one calendar of official working days.

春节 (正月初一) and the other lunar dates come from ``lunardate`` (lunar years 1900–2099); the
清明 solar term from ``chinese_calendar``'s solar-term formula (1900–2100). Both libraries are
pinned to exact versions (pyproject.toml), so that a fresh install cannot move a date.

:class:`Calendar` answers "is this an official working day" (CONTRACT.md §3, §6) for every rule
that counts working days and for the delivery's quiet hours. Each year comes from one source:

- ``config``: a year of which the config's ``calendar:`` lists any date is taken from it alone —
  Monday to Friday are working days except its listed holidays, plus its listed workdays — so
  the office that typed a year's State Council schedule owns that year, whatever library
  version is installed;
- ``library``: a year ``chinese_calendar`` has the State Council's schedule for (public
  holidays and 调休 workdays);
- ``statutory``: any other year (one whose schedule is not published yet): Monday to Friday
  except the statutory holidays — 元旦 1 Jan; 春节 除夕 to 正月初三; 清明节 the day of the 清明
  solar term; 劳动节 1–2 May; 端午节 五月初五; 中秋节 八月十五; 国庆节 1–3 Oct. No bridging or
  substitute day is guessed. Beyond the lunar tables (after 2099) the lunar holidays, and
  after 2100 清明, cannot be computed and are not days off.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Literal

import chinese_calendar
from lunardate import LunarDate

HOLIDAYS = ("元旦", "春节", "劳动节", "国庆节")
STATUTORY = ("元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节")

Source = Literal["config", "library", "statutory"]
SOURCE_NAMES: dict[str, str] = {
    "config": "配置文件 calendar: 所列的安排",
    "library": "chinese-calendar 收录的国务院节假日安排",
    "statutory": "周一至周五减法定节假日（国务院安排尚未收录，不推测调休）",
}

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date(value: object) -> date | None:
    """A date as a config lists it (a YAML date, or the text ``YYYY-MM-DD``); None otherwise
    (a time of day, another format, a date that does not exist)."""
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


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


def _lunar(year: int, month: int, day: int) -> date | None:
    try:
        return LunarDate(year, month, day).to_solar_date()
    except ValueError:  # outside the lunar tables
        return None


def _qingming(year: int) -> date | None:
    try:
        terms = chinese_calendar.get_solar_terms(date(year, 4, 1), date(year, 4, 30))
    except NotImplementedError:  # outside the solar-term formula's years
        return None
    return next((d for d, name in terms if name == "清明"), None)


@lru_cache(maxsize=512)
def statutory_holidays(year: int) -> tuple[tuple[str, tuple[date, ...]], ...]:
    """The statutory holidays of ``year`` (§6), in date order: (name, its days)."""
    spring = _lunar(year, 1, 1)
    dragon, autumn, qingming = _lunar(year, 5, 5), _lunar(year, 8, 15), _qingming(year)
    days: list[tuple[str, tuple[date, ...]]] = [("元旦", (date(year, 1, 1),))]
    if spring is not None:
        days.append(("春节", tuple(spring + timedelta(days=i) for i in range(-1, 3))))
    days += [(name, (d,)) for name, d in (("清明节", qingming), ("端午节", dragon), ("中秋节", autumn)) if d]
    days += [("劳动节", (date(year, 5, 1), date(year, 5, 2))),
             ("国庆节", tuple(date(year, 10, i) for i in (1, 2, 3)))]
    return tuple(sorted(days, key=lambda item: item[1][0]))


def next_statutory_holiday(on_or_after: date) -> tuple[str, tuple[date, ...]] | None:
    """The first statutory holiday (§6) not over by ``on_or_after``, within that year and the next."""
    for year in (on_or_after.year, on_or_after.year + 1):
        for name, days in statutory_holidays(year):
            if days[-1] >= on_or_after:
                return name, days
    return None


@lru_cache(maxsize=512)
def library_covers(year: int) -> bool:
    """Whether ``chinese_calendar`` has the State Council's schedule of ``year``."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Year:
    """One year's exceptions to "Monday to Friday": weekdays off and weekend days worked,
    each as a set (lookup) and a sorted tuple (counting)."""

    source: Source
    off: tuple[date, ...]
    on: tuple[date, ...]
    off_set: frozenset[date] = field(init=False, repr=False, compare=False)
    on_set: frozenset[date] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "off_set", frozenset(self.off))
        object.__setattr__(self, "on_set", frozenset(self.on))

    @classmethod
    def of(cls, source: Source, off: set[date], on: set[date]) -> "Year":
        return cls(source, tuple(sorted(d for d in off if d.weekday() < 5)),
                   tuple(sorted(d for d in on if d.weekday() >= 5)))

    def is_working_day(self, d: date) -> bool:
        return d in self.on_set if d.weekday() >= 5 else d not in self.off_set

    def exceptions(self, after: date, through: date) -> int:
        """Weekend days worked less weekdays off, in (after, through] (dates of this year)."""
        on = bisect.bisect_right(self.on, through) - bisect.bisect_right(self.on, after)
        off = bisect.bisect_right(self.off, through) - bisect.bisect_right(self.off, after)
        return on - off


@lru_cache(maxsize=512)
def _library_year(year: int) -> Year:
    days = [date(year, 1, 1) + timedelta(days=i) for i in range(366)]
    days = [d for d in days if d.year == year]
    off = {d for d in days if d.weekday() < 5 and not chinese_calendar.is_workday(d)}
    on = {d for d in days if d.weekday() >= 5 and chinese_calendar.is_workday(d)}
    return Year.of("library", off, on)


@lru_cache(maxsize=512)
def _statutory_year(year: int) -> Year:
    return Year.of("statutory", {d for _, ds in statutory_holidays(year) for d in ds}, set())


def _weekdays(after: date, through: date) -> int:
    """Mondays to Fridays in (after, through]."""
    def upto(d: date) -> int:  # weekdays from a fixed Monday through d
        n = d.toordinal() - 1  # ordinal 1 (0001-01-01) is a Monday
        return n // 7 * 5 + min(n % 7 + 1, 5)
    return max(upto(through) - upto(after), 0)


@dataclass(frozen=True)
class Calendar:
    """Official working days (§3): the config's ``calendar:`` dates over the library's
    schedule, over the statutory fallback. Immutable; ``_years`` and ``_nth`` only memoise each
    year's exceptions and the working-day counts made, which depend on nothing but the dates
    given and the pinned libraries."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    _years: dict[int, Year] = field(default_factory=dict, init=False, repr=False, compare=False)
    _nth: dict[tuple[date, int], date] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def owned_years(self) -> frozenset[int]:
        """The years ``calendar:`` lists a date of, which it alone decides."""
        return frozenset(d.year for d in self.holidays | self.workdays)

    def source(self, year: int) -> Source:
        if year in self.owned_years:
            return "config"
        return "library" if library_covers(year) else "statutory"

    def year(self, year: int) -> Year:
        found = self._years.get(year)
        if found is None:
            source = self.source(year)
            if source == "config":
                found = Year.of("config", {d for d in self.holidays if d.year == year},
                                {d for d in self.workdays if d.year == year})
            else:
                found = _library_year(year) if source == "library" else _statutory_year(year)
            self._years[year] = found
        return found

    def is_working_day(self, d: date) -> bool:
        return self.year(d.year).is_working_day(d)

    def count_working_days(self, after: date, through: date) -> int:
        """Official working days d with ``after`` < d ≤ ``through`` (0 when through ≤ after)."""
        if through <= after:
            return 0
        count = _weekdays(after, through)
        for y in range(after.year, through.year + 1):
            lo = after if y == after.year else date(y - 1, 12, 31)
            count += self.year(y).exceptions(lo, min(through, date(y, 12, 31)))
        return count

    def nth_working_day_after(self, d: date, n: int) -> date:
        """The ``n``-th official working day after ``d`` (n ≥ 1): ``d`` itself never counts."""
        if n < 1:
            raise ValueError("n must be at least 1")
        found = self._nth.get((d, n))  # the same few (date, n) pairs are asked over and over
        if found is None:
            if len(self._nth) > 50_000:
                self._nth.clear()
            found = self._nth[d, n] = self._count_off(d, n)
        return found

    def _count_off(self, d: date, n: int) -> date:
        while n:
            d += timedelta(days=1)
            n -= self.is_working_day(d)
        return d
