"""Monthly reports (月报): when each is due, and each reporter's first submission.

Kept: per period, per (township, reporter), the earliest ``submitted_at``; a period is
forgotten once both its end and its escalation time (``report.escalation``) are more than
``dedup_days`` behind the clock, so the Reports rule can always still ask about it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any, Iterable

from ..events import MonthlyReport
from ..timeutil import add_days, local_midnight
from .common import period_bounds

#: on_time (before the due), late, missing (due passed, none), pending (not yet due)
REPORT_STATUSES = ("on_time", "late", "missing", "pending")


@dataclass(frozen=True)
class Cell:
    status: str                      # one of REPORT_STATUSES
    submitted_at: datetime | None


@dataclass(frozen=True)
class BoardRow:
    township: str
    reporter: str
    cells: dict[str, Cell]


def report_due(period: str, due_day: int, tz: tzinfo) -> datetime:
    """The first instant after the due day of ``period``: local midnight of the next day.
    A report is on time before it; ``report.overdue`` fires at it."""
    return add_days(local_midnight(date(int(period[:4]), int(period[5:7]), due_day), tz), 1)


def report_status(submitted_at: datetime | None, due: datetime, now: datetime) -> str:
    if submitted_at is not None:
        return "on_time" if submitted_at < due else "late"
    return "missing" if now >= due else "pending"


class ReportTally:
    def __init__(self, due_day: int, escalate_days: int, tz: tzinfo) -> None:
        self._due_day, self._escalate, self._tz = due_day, escalate_days, tz
        self.first: dict[str, dict[tuple[str, str], datetime]] = {}

    def take(self, ev: MonthlyReport, now: datetime) -> None:
        got = self.first.get(ev.period)
        if got is None:
            got = self.first[ev.period] = {}
        key = (ev.township, ev.reporter)
        at = got.get(key)
        if at is None or ev.submitted_at < at:
            got[key] = ev.submitted_at

    def submitted(self, township: str, reporter: str, period: str) -> bool:
        """Whether ``reporter`` of ``township`` has reported for ``period`` (the rules' question)."""
        return (township, reporter) in self.first.get(period, ())

    def forget(self, horizon: datetime) -> None:
        for period in list(self.first):
            escalation = add_days(report_due(period, self._due_day, self._tz), self._escalate)
            if max(period_bounds(period, self._tz)[1], escalation) < horizon:
                del self.first[period]

    def board(self, townships: Any, months: Iterable[str], due_day: int, tz: tzinfo,
              now: datetime) -> list[BoardRow]:
        """Per configured reporter (``townships``: name → config with ``reporters``) and month."""
        months = list(months)
        dues = {m: report_due(m, due_day, tz) for m in months}
        rows = []
        for tw, t in townships.items():
            for reporter in t.reporters:
                cells = {}
                for m in months:
                    at = self.first.get(m, {}).get((tw, reporter))
                    cells[m] = Cell(report_status(at, dues[m], now), at)
                rows.append(BoardRow(tw, reporter, cells))
        return rows
