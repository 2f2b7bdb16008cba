"""Lab samples: monthly pass rates per township and program, and the sampling pace.

Kept: per month of event time, per (township, program) of the counted programs (which are
the pace's too), the number of samples and of qualified ones; per day and township, the
number of samples (the pace). Both are forgotten once more than ``dedup_days`` behind the
clock and judged (the month's deadline — the next month's 1st plus ``grace_days`` — has
passed), so the PassRate rule reads the same counts the pages show.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from fractions import Fraction
from typing import Any, Iterable

from ..events import SamplingResult
from ..timeutil import add_days, local_midnight
from .common import below_target, month_key, months_in

#: the programs with a pass rate; rapid tests (快检) count nowhere (§3)
COUNTED_PROGRAMS = ("food_sampling", "agri_monitoring")
#: 4 批次/千人·年: the seeds count lab samples (食品安全抽检 and 农产品监测), 不含快速检测.
BATCHES_PER_THOUSAND = 4
PACE_PROGRAMS = COUNTED_PROGRAMS


@dataclass(frozen=True)
class RateRow:
    township: str
    program: str
    period: str                      # YYYY-MM, or YYYY for a year
    qualified: int
    total: int
    rate: float | None               # display only; None without samples
    target: float
    below: bool                      # exact: qualified/total < target

    @property
    def exact_rate(self) -> Fraction | None:
        return Fraction(self.qualified, self.total) if self.total else None


@dataclass(frozen=True)
class PaceRow:
    township: str
    population: int
    batches: int                     # lab samples with event time in the year up to the day
    yearly_target: int               # ceil(population × 4 / 1000)
    target_to_date: Fraction         # yearly_target × day of year / days in year
    ratio: float | None              # batches / target_to_date, display only
    behind: bool


def judged_at(period: str, grace_days: int, tz: tzinfo) -> datetime:
    """When the pass rates of ``period`` are judged: the next month's 1st, 00:00 local, plus
    ``grace_days``; samples arriving later are shown but were not judged."""
    y, m = month_key(period)
    return add_days(local_midnight(date(y + (m == 12), m % 12 + 1, 1), tz), grace_days)


def yearly_target(population: int) -> int:
    return math.ceil(Fraction(population * BATCHES_PER_THOUSAND, 1000))


class SampleTally:
    def __init__(self, grace_days: int) -> None:
        self._keep_days = grace_days + 31      # a month is judged at most this long after its days
        self.months: dict[tuple[int, int], dict[tuple[str, str], list[int]]] = {}
        self.days: dict[int, dict[str, int]] = {}     # lab samples per township, for the pace

    def take(self, ev: SamplingResult, unqualified: bool) -> None:
        t = ev.time
        month = self.months.get(ym := (t.year, t.month))
        if month is None:
            month = self.months[ym] = {}
        key = (ev.township, ev.program)
        c = month.get(key)
        if c is None:
            c = month[key] = [0, 0]
        c[0] += 1
        if not unqualified:
            c[1] += 1
        day = self.days.get(o := t.toordinal())
        if day is None:
            day = self.days[o] = {}
        day[ev.township] = day.get(ev.township, 0) + 1

    def of_period(self, period: str) -> dict[tuple[str, str], tuple[int, int]]:
        """(township, program) → (samples, qualified) with event time in ``period`` (a month
        or a year)."""
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for ym in months_in(period):
            for key, (n, q) in self.months.get(ym, {}).items():
                n0, q0 = out.get(key, (0, 0))
                out[key] = (n0 + n, q0 + q)
        return out

    def months_kept(self) -> list[str]:
        """The months (YYYY-MM) with samples kept."""
        return [f"{y:04d}-{m:02d}" for y, m in sorted(self.months)]

    def forget(self, horizon: datetime, now: datetime) -> None:
        cutoff = min(horizon.toordinal(), now.toordinal() - self._keep_days)
        for day in [d for d in self.days if d < cutoff]:
            del self.days[day]
        for y, m in list(self.months):
            if date(y + (m == 12), m % 12 + 1, 1).toordinal() <= cutoff:   # its last day is before the cutoff
                del self.months[(y, m)]

    def rates(self, townships: Iterable[str], targets: dict[str, Any], exact: Any,
              period: str | None) -> list[RateRow]:
        """Per township × program with a target, for ``period`` (YYYY-MM or YYYY), or for every
        month with samples when None; samples count in the month of their event time."""
        periods = [period] if period is not None else self.months_kept()
        townships = list(townships)
        rows = []
        for p in periods:
            counts = self.of_period(p)
            for tw in townships:
                for program in COUNTED_PROGRAMS:
                    target = targets.get(program)
                    if target is None:
                        continue
                    total, qualified = counts.get((tw, program), (0, 0))
                    rows.append(RateRow(tw, program, p, qualified, total, qualified / total if total else None,
                                        target, below_target(qualified, total, exact(target))))
        return rows

    def pace(self, townships: Any, today: date) -> list[PaceRow]:
        """Lab samples taken this year up to the end of ``today``, against the yearly target
        pro-rated by day of year (``townships``: name → config with ``population``)."""
        lo, hi = date(today.year, 1, 1).toordinal(), today.toordinal()
        counts: dict[str, int] = {}
        for day, towns in self.days.items():
            if lo <= day <= hi:
                for tw, n in towns.items():
                    counts[tw] = counts.get(tw, 0) + n
        days = (date(today.year + 1, 1, 1) - date(today.year, 1, 1)).days
        doy = today.timetuple().tm_yday
        rows = []
        for tw, t in townships.items():
            pop = t.population or 0
            yearly = yearly_target(pop)
            to_date = Fraction(yearly * doy, days)
            n = counts.get(tw, 0)
            rows.append(PaceRow(tw, pop, n, yearly, to_date, float(n / to_date) if to_date else None, n < to_date))
        return rows
