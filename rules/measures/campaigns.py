"""Joint inspections (节前联合检查) in the window before each holiday.

Kept: per day of event time, per township, the number of 节前联合检查 inspections; a day is
forgotten once it is more than ``dedup_days`` behind the clock and out of the longest window
still to be judged (``window_days``), so the Campaigns rule counts what the pages show.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Iterable

from ..calendar import holiday_date
from ..events import Inspection
from ..timeutil import add_days, local_midnight
from .common import period_bounds

JOINT = "节前联合检查"
#: done (one in the window), missed (window over, none), open (window running), upcoming
CAMPAIGN_STATUSES = ("done", "missed", "open", "upcoming")


@dataclass(frozen=True)
class CampaignRow:
    township: str
    holiday: str
    date: date
    inspections: int                 # 节前联合检查 in [H − window_days, H)
    done: bool
    status: str = "done"             # one of CAMPAIGN_STATUSES
    window_start: date | None = None


def campaign_window(holiday: date, window_days: int, tz: tzinfo) -> tuple[datetime, datetime]:
    """[H − window_days, H) in local time: ``campaign.missed`` fires at its end."""
    end = local_midnight(holiday, tz)
    return add_days(end, -window_days), end


def campaign_status(inspections: int, start: datetime, end: datetime, now: datetime) -> str:
    if inspections:
        return "done"
    if now >= end:
        return "missed"
    return "open" if now >= start else "upcoming"


class JointTally:
    def __init__(self, window_days: int) -> None:
        self._window = window_days
        self.days: dict[int, dict[str, int]] = {}

    def take(self, ev: Inspection) -> None:
        counts = self.days.get(day := ev.time.toordinal())
        if counts is None:
            counts = self.days[day] = {}
        counts[ev.township] = counts.get(ev.township, 0) + 1

    def count(self, township: str, start: datetime, end: datetime) -> int:
        """Joint inspections of ``township`` in [start, end) (local midnights)."""
        n = 0
        for day in range(start.toordinal(), end.toordinal()):
            counts = self.days.get(day)
            if counts:
                n += counts.get(township, 0)
        return n

    def forget(self, horizon: datetime, now: datetime) -> None:
        cutoff = min(horizon.toordinal(), add_days(now, -self._window).toordinal())
        for day in [d for d in self.days if d < cutoff]:
            del self.days[day]

    def rows(self, townships: Iterable[str], holidays: Iterable[str], window_days: int, period: str,
             tz: tzinfo, now: datetime) -> list[CampaignRow]:
        """Per township × configured holiday: of the year ``period`` (YYYY), or, for a month
        (YYYY-MM), those of its year and the next whose window and the month overlap."""
        townships, holidays = list(townships), list(holidays)
        if len(period) == 4:
            years, start, end = [int(period)], None, None
        else:
            start, end = period_bounds(period, tz)
            years = [start.year, start.year + 1]
        rows = []
        for year in years:
            for tw in townships:
                for h in holidays:
                    try:
                        d = holiday_date(h, year)
                    except ValueError:
                        continue
                    w_start, w_end = campaign_window(d, window_days, tz)
                    if start is not None and not (w_start < end and w_end > start):  # type: ignore[operator]
                        continue
                    n = self.count(tw, w_start, w_end)
                    rows.append(CampaignRow(tw, h, d, n, n > 0, campaign_status(n, w_start, w_end, now),
                                            w_start.date()))
        return rows
