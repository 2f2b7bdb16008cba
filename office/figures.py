"""The office's figures — pass rates, monthly reports, sampling pace, health certificates,
joint inspections, disposals — computed from the stored events and notices.

Pure functions of (config, events, notices, time), shared by the dashboard, the monthly report
and the ledger so that every page shows the same numbers. Events are the JSON objects of the
store's journal; they are validated again here, so the fields mean what the rules read.
Counts are integers and comparisons with targets are exact fractions (§6); ``rate`` floats are
for display only.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any, Iterable, Mapping, Sequence

from shian.notifiers.render import spec_of
from shian.rules.calendar import holiday_date
from shian.rules.config import Config
from shian.rules.events import (Disposal, Event, Inspection, MonthlyReport, Rejected, SamplingResult,
                                Validator)
from shian.rules.families import RULES
from shian.rules.families.base import entity_key
from shian.rules.families.campaigns import JOINT
from shian.rules.families.pass_rate import COUNTED_PROGRAMS
from shian.rules.notice import PROGRAM_NAMES, notice_id, notice_key
from shian.rules.params import exact
from shian.rules.timeutil import add_days, local_midnight, month_of
from shian.rules.verdict import Judge, substance_pattern

#: 4 批次/千人·年: the seeds count lab samples (食品安全抽检 and 农产品监测), 不含快速检测.
BATCHES_PER_THOUSAND = 4
PACE_PROGRAMS = COUNTED_PROGRAMS

REPORT_STATUS = {"on_time": "按时报送", "late": "逾期报送", "missing": "逾期未报", "pending": "未到期"}
CAMPAIGN_STATUS = {"done": "已开展", "missed": "未开展", "open": "进行中", "upcoming": "未开始"}
DISPOSAL_STATUS = {"disposed": "已处置", "disposed_late": "逾期处置", "overdue": "逾期未处置", "open": "待处置"}
SEVERITY_NAMES = {"info": "提示", "warning": "警示", "critical": "紧急"}
LEVEL_NAMES = {"town": "乡镇", "county": "县级"}


# -- rows ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    status: str                      # on_time, late, missing, pending
    submitted_at: datetime | None


@dataclass(frozen=True)
class BoardRow:
    township: str
    reporter: str
    cells: dict[str, Cell]


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
    batches: int                     # lab samples with event time in the year up to today
    yearly_target: int               # ceil(population × 4 / 1000)
    target_to_date: Fraction         # yearly_target × day of year / days in year
    ratio: float | None              # batches / target_to_date, display only
    behind: bool


@dataclass(frozen=True)
class HealthRow:
    township: str
    period: str
    entities: int                    # inspected entities with staff figures
    certified: int
    staff: int
    rate: float | None
    target: float
    below: bool
    low_entities: tuple[str, ...]    # entities below the target on their own


@dataclass(frozen=True)
class CampaignRow:
    township: str
    holiday: str
    date: date
    inspections: int                 # 节前联合检查 in [H − window_days, H)
    done: bool
    status: str = "done"             # done, missed, open (window running), upcoming
    window_start: date | None = None


@dataclass(frozen=True)
class DisposalRow:
    township: str
    sample_id: str
    entity: str
    program: str
    category: str
    food: str | None
    reported_at: datetime            # the sample's event time
    due: datetime
    banned: bool
    disposal_id: str | None
    disposed_at: datetime | None
    measures: tuple[str, ...]
    status: str                      # disposed, disposed_late, overdue, open
    notice_id: str                   # the sample.unqualified / banned_substance notice

    @property
    def overdue(self) -> bool:
        return self.status in ("overdue", "disposed_late")


@dataclass(frozen=True)
class NoticeCountRow:
    rule: str
    summary: str
    severity: str
    level: str
    township: str
    count: int


# -- helpers ---------------------------------------------------------------------------------

def typed(config: Config, events: Iterable[Mapping[str, Any] | Event]) -> list[Event]:
    """Journal objects as typed events; a row that no longer validates (config changed since)
    is left out rather than breaking every page."""
    validator = Validator(config.known())
    out: list[Event] = []
    for obj in events:
        if isinstance(obj, Event):
            out.append(obj)
            continue
        try:
            out.append(validator.from_object(obj))
        except Rejected:
            continue
    return out


def in_period(dt: datetime, period: str) -> bool:
    """``period`` is YYYY-MM or YYYY."""
    return (month_of(dt) if len(period) == 7 else f"{dt.year:04d}") == period


def period_bounds(period: str, tz: Any) -> tuple[datetime, datetime]:
    """[start, end) of a month or year in local time."""
    y = int(period[:4])
    if len(period) == 4:
        return local_midnight(date(y, 1, 1), tz), local_midnight(date(y + 1, 1, 1), tz)
    m = int(period[5:7])
    return (local_midnight(date(y, m, 1), tz),
            local_midnight(date(y + (m == 12), m % 12 + 1, 1), tz))


def judge(config: Config) -> Judge:
    return Judge(substance_pattern(config.params("sample.banned_substance")))


def fmt_rate(rate: float | Fraction | None, digits: int = 1) -> str:
    return "—" if rate is None else f"{float(rate) * 100:.{digits}f}%"


def _of(evs: Sequence[Event], kind: type) -> list[Any]:
    return [e for e in evs if isinstance(e, kind)]


def report_due(config: Config, period: str) -> datetime:
    """The first instant after the due day of ``period`` (local midnight of the next day)."""
    day = config.params("report.reminder").due_day
    return local_midnight(date(int(period[:4]), int(period[5:7]), day) + timedelta(days=1), config.tz)


# -- figures ---------------------------------------------------------------------------------

def report_board(config: Config, events: Iterable[Any], months: list[str], now: datetime) -> list[BoardRow]:
    """Per configured reporter and month: on time (by the due day 23:59:59 local), late,
    missing (due passed, none) or pending (not yet due). The earliest report counts."""
    first: dict[tuple[str, str, str], datetime] = {}
    for ev in _of(typed(config, events), MonthlyReport):
        k = (ev.township, ev.reporter, ev.period)
        if k not in first or ev.submitted_at < first[k]:
            first[k] = ev.submitted_at
    dues = {m: report_due(config, m) for m in months}
    rows = []
    for tw, t in config.townships.items():
        for reporter in t.reporters:
            cells = {}
            for m in months:
                at = first.get((tw, reporter, m))
                if at is not None:
                    status = "on_time" if at < dues[m] else "late"
                else:
                    status = "missing" if now >= dues[m] else "pending"
                cells[m] = Cell(status, at)
            rows.append(BoardRow(tw, reporter, cells))
    return rows


def pass_rates(config: Config, events: Iterable[Any], period: str | None = None) -> list[RateRow]:
    """Per township × program (rapid tests excluded, §3) for ``period`` (YYYY-MM or YYYY), or
    for every month with samples when None; samples count in the month of their event time."""
    targets = config.params("sample.pass_rate_low").targets
    j = judge(config)
    counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    months: set[str] = set()
    for ev in _of(typed(config, events), SamplingResult):
        if ev.program not in COUNTED_PROGRAMS:
            continue
        t = ev.time
        if period is not None and not in_period(t, period):
            continue
        p = period if period is not None and len(period) == 4 else month_of(t)
        months.add(p)
        c = counts[(ev.township, ev.program, p)]
        c[0] += 1
        if not j(ev).unqualified:
            c[1] += 1
    periods = [period] if period is not None else sorted(months)
    rows = []
    for p in periods:
        for tw in config.townships:
            for program in COUNTED_PROGRAMS:
                total, qualified = counts.get((tw, program, p), (0, 0))
                target = targets.get(program)
                if target is None:
                    continue
                rows.append(RateRow(tw, program, p, qualified, total, qualified / total if total else None,
                                    target, bool(total) and Fraction(qualified, total) < exact(target)))
    return rows


def sampling_pace(config: Config, events: Iterable[Any], today: date) -> list[PaceRow]:
    """Lab samples (食品安全抽检 + 农产品监测; the seeds' 4 批次/千人 is 不含快速检测) taken this
    year up to the end of ``today``, against the yearly target pro-rated by day of year."""
    start = local_midnight(date(today.year, 1, 1), config.tz)
    end = local_midnight(today + timedelta(days=1), config.tz)
    batches: dict[str, int] = defaultdict(int)
    for ev in _of(typed(config, events), SamplingResult):
        if ev.program in PACE_PROGRAMS and start <= ev.time < end:
            batches[ev.township] += 1
    days = (date(today.year + 1, 1, 1) - date(today.year, 1, 1)).days
    doy = today.timetuple().tm_yday
    rows = []
    for tw, t in config.townships.items():
        pop = t.population or 0
        yearly = math.ceil(Fraction(pop * BATCHES_PER_THOUSAND, 1000))
        to_date = Fraction(yearly * doy, days)
        n = batches.get(tw, 0)
        rows.append(PaceRow(tw, pop, n, yearly, to_date, float(n / to_date) if to_date else None,
                            n < to_date))
    return rows


def health_certs(config: Config, events: Iterable[Any], period: str) -> list[HealthRow]:
    """Per township: staff with a health certificate over staff, from the inspections of
    ``period`` that give both figures; an entity inspected twice counts once (its latest)."""
    target = config.params("inspection.health_cert_low").min_rate
    exact_target = exact(target)
    latest: dict[tuple[str, str, str], Inspection] = {}
    for ev in _of(typed(config, events), Inspection):
        if not ev.staff_total or ev.staff_with_health_cert is None or not in_period(ev.time, period):
            continue
        k = entity_key(ev)
        if k not in latest or ev.time >= latest[k].time:
            latest[k] = ev
    rows = []
    for tw in config.townships:
        mine = [e for k, e in latest.items() if k[0] == tw]
        staff = sum(e.staff_total for e in mine)
        certified = sum(e.staff_with_health_cert for e in mine)
        low = tuple(e.entity for e in mine if Fraction(e.staff_with_health_cert, e.staff_total) < exact_target)
        rows.append(HealthRow(tw, period, len(mine), certified, staff, certified / staff if staff else None,
                              target, bool(staff) and Fraction(certified, staff) < exact_target, low))
    return rows


def campaigns(config: Config, events: Iterable[Any], year: int, now: datetime | None = None) -> list[CampaignRow]:
    """Per township × configured holiday H of ``year``: the 节前联合检查 in
    [H − window_days, H) (the window of ``campaign.missed``). Without ``now`` a holiday
    without one is "missed"; with it, "open" while its window runs and "upcoming" before."""
    holidays = config.params("campaign.reminder").holidays
    window = config.params("campaign.missed").window_days
    joint = [e for e in _of(typed(config, events), Inspection) if e.inspection_type == JOINT]
    rows = []
    for tw in config.townships:
        times = [e.time for e in joint if e.township == tw]
        for h in holidays:
            try:
                d = holiday_date(h, year)
            except ValueError:
                continue
            end = local_midnight(d, config.tz)
            start = add_days(end, -window)
            n = sum(1 for t in times if start <= t < end)
            if n:
                status = "done"
            elif now is None or now >= end:
                status = "missed"
            else:
                status = "open" if now >= start else "upcoming"
            rows.append(CampaignRow(tw, h, d, n, n > 0, status, start.date()))
    return rows


def disposals(config: Config, events: Iterable[Any], notices: Iterable[Mapping[str, Any]], period: str,
              now: datetime | None = None) -> list[DisposalRow]:
    """The unqualified samples of ``period`` (all programs: rapid tests raise the disposal
    deadline too) and the disposal naming each; one at or after ``due`` is late (§6).

    ``due`` is the one in the sample's notice when there is one, else event time +
    ``disposal_days``. Without ``now``, an undisposed sample is overdue once a
    ``sample.disposal_overdue`` notice names it."""
    evs = typed(config, events)
    days = config.params("sample.unqualified").disposal_days
    j = judge(config)
    disposed: dict[tuple[str, str], Disposal] = {}
    for d in _of(evs, Disposal):
        k = (d.township, d.sample_id)
        if k not in disposed or d.disposed_at < disposed[k].disposed_at:
            disposed[k] = d
    by_id = {n.id: n for n in notices}
    overdue_named = {(n.township, n.facts.get("sample_id") or (n.event_ids or (None,))[0])
                     for n in by_id.values() if n.rule == "sample.disposal_overdue"}
    seen: set[tuple[str, str]] = set()
    rows = []
    for ev in _of(evs, SamplingResult):
        if not in_period(ev.time, period) or (ev.township, ev.id) in seen:
            continue
        v = j(ev)
        if not v.unqualified:
            continue
        seen.add((ev.township, ev.id))
        rule = "sample.banned_substance" if v.banned else "sample.unqualified"
        nid = notice_id(notice_key(rule, ev.township, ev.id))
        due = add_days(ev.time, days)
        n = by_id.get(nid)
        if n and n.due:
            due = n.due.astimezone(config.tz)
        d = disposed.get((ev.township, ev.id))
        if d is not None:
            status = "disposed" if d.disposed_at < due else "disposed_late"
        elif (now is not None and now >= due) or (now is None and (ev.township, ev.id) in overdue_named):
            status = "overdue"
        else:
            status = "open"
        rows.append(DisposalRow(ev.township, ev.id, ev.entity, ev.program, ev.category, ev.food, ev.time, due,
                                bool(v.banned), d.id if d else None, d.disposed_at if d else None,
                                tuple(d.measures or ()) if d else (), status, nid))
    rows.sort(key=lambda r: (list(config.townships).index(r.township), r.reported_at, r.sample_id))
    return rows


def notice_counts(config: Config, notices: Iterable[Mapping[str, Any]], period: str | None = None) -> list[NoticeCountRow]:
    """Notices per rule, severity, level and township (those with ``at`` in ``period``)."""
    counts: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for n in notices:
        if period is not None and not in_period(n.at.astimezone(config.tz), period):
            continue
        counts[(n.rule, n.severity, n.level, n.township)] += 1
    order = {r: i for i, r in enumerate(RULES)}
    towns = {t: i for i, t in enumerate(config.townships)}
    return [NoticeCountRow(rule, rule_name(rule), sev, lvl, tw, c)
            for (rule, sev, lvl, tw), c in sorted(counts.items(),
                                                  key=lambda kv: (order.get(kv[0][0], 99), towns.get(kv[0][3], 99),
                                                                  kv[0][1], kv[0][2]))]


def rule_name(rule: str) -> str:
    return spec_of(rule).summary or rule


def program_name(program: str) -> str:
    return PROGRAM_NAMES.get(program, program)
