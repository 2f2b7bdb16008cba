"""The office's figures, for display: their row types, names and formats.

The figures themselves — pass rates, monthly reports, sampling pace, health certificates,
joint inspections, disposals, inspection frequency by risk level, a notice's 签收 / 办结 against
its deadline — are computed in :mod:`shian.rules.measures` from the tallies
the rules decide on, and asked of the runtime as ``figures(kind, period, now)``
(:class:`FigureSource`), so a page and an alert cannot disagree. Counts are integers and
comparisons with targets exact fractions (§6); ``rate`` floats are for display only.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from typing import Any, Iterable, Protocol

from shian.notifiers.render import spec_of
from shian.rules.config import Config
from shian.rules.families import RULES
from shian.rules.measures import (BATCHES_PER_THOUSAND, COUNTED_PROGRAMS, PACE_PROGRAMS, BoardRow, CampaignRow,
                                  Cell, DisposalRow, FrequencyRow, HealthRow, PaceRow, RateRow, ResolutionRow, as_of,
                                  check_date, in_period, period_bounds)
from shian.rules.notice import PROGRAM_NAMES, Notice, notice_id, notice_key

__all__ = [
    "BATCHES_PER_THOUSAND", "CAMPAIGN_STATUS", "COUNTED_PROGRAMS", "DELIVERY_STATUS", "DISPOSAL_STATUS", "LEVEL_NAMES",
    "PACE_PROGRAMS", "REPORT_STATUS", "RESOLUTION_STATUS", "SEVERITY_NAMES", "BoardRow", "CampaignRow", "Cell",
    "DisposalRow", "FigureSource", "FrequencyRow", "FrequencyTotal", "HealthRow", "NoticeCountRow", "PaceRow", "RateRow",
    "ResolutionRow", "as_of", "fmt_rate", "frequency_by_township", "frequency_schedule",
    "frequency_total", "follow_up_id", "in_period", "latest_rate_period",
    "latest_report_month", "notice_counts", "period_bounds", "program_name", "rule_name",
]

REPORT_STATUS = {"on_time": "按时报送", "late": "逾期报送", "missing": "逾期未报", "pending": "未到期"}
CAMPAIGN_STATUS = {"done": "已开展", "missed": "未开展", "open": "进行中", "upcoming": "未开始"}
DISPOSAL_STATUS = {"disposed": "已处置", "disposed_late": "逾期处置", "overdue": "逾期未处置", "open": "待处置"}
SEVERITY_NAMES = {"info": "提示", "warning": "警示", "critical": "紧急"}
LEVEL_NAMES = {"town": "乡镇", "county": "县级"}
RESOLUTION_STATUS = {"closed": "按期办结", "closed_late": "逾期办结", "overdue": "逾期未办结", "open": "办理中"}
DELIVERY_STATUS = {"sent": "已发送", "failed": "发送失败", "silenced": "已静默", "held": "不发送（已过期或已被取代）",
                   "pending": "待发送", "sending": "发送中"}


class FigureSource(Protocol):
    """Who answers the figures: the engine, or a runtime delegating to its engine
    (kinds and periods: :data:`shian.rules.measures.FIGURE_KINDS`)."""

    def figures(self, kind: str, period: Any, now: datetime) -> list[Any]: ...


@dataclass(frozen=True)
class FrequencyTotal:
    """The 检查频次 cells of a township (or of the county: ``township`` empty) added up."""
    township: str
    entities: int
    required: int
    done: int
    behind: int
    yearly: int
    done_to_date: int


def frequency_total(rows: Iterable[FrequencyRow], township: str = "") -> FrequencyTotal:
    rows = list(rows)
    return FrequencyTotal(township, *(sum(getattr(r, f) for r in rows)
                                      for f in ("entities", "required", "done", "behind", "yearly", "done_to_date")))


def frequency_by_township(rows: Iterable[FrequencyRow]) -> list[tuple[str, list[FrequencyRow], FrequencyTotal]]:
    """The cells of each township (risk levels A–D, as the figures give them) with its total."""
    towns: dict[str, list[FrequencyRow]] = {}
    for r in rows:
        towns.setdefault(r.township, []).append(r)
    return [(tw, mine, frequency_total(mine, tw)) for tw, mine in towns.items()]


def follow_up_id(rule: str, n: Notice) -> str:
    """The id a ``notice.*`` rule's notice about ``n`` has (its key is rule|township|n's id)."""
    return notice_id(notice_key(rule, n.township, n.id))


def frequency_schedule(config: Config, year: int) -> list[tuple[date, float]]:
    """The check dates of ``year`` (inspection.frequency_due's ``checks``) with the share of the
    year's quota due by each, in date order."""
    checks = config.params("inspection.frequency_due").checks
    return sorted((check_date(mm_dd, year), share) for mm_dd, share in checks.items())


@dataclass(frozen=True)
class NoticeCountRow:
    rule: str
    summary: str
    severity: str
    level: str
    township: str
    count: int


def fmt_rate(rate: float | Fraction | None, digits: int = 1) -> str:
    return "—" if rate is None else f"{float(rate) * 100:.{digits}f}%"


def notice_counts(config: Config, notices: Iterable[Notice], period: str | None = None) -> list[NoticeCountRow]:
    """Notices per rule, severity, level and township (those with ``at`` in ``period``): a
    count of the outbox, which holds what the rules raised."""
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


def latest_rate_period(rows: Iterable[RateRow], judged_through: str) -> str | None:
    """The month a pass-rate page opens on, from the rows of every month kept
    (``figures("pass_rate", None)``): the latest month with samples that the rule has judged
    (up to ``judged_through``), else the latest with samples; None when there are none."""
    with_samples = sorted({r.period for r in rows if r.total})
    judged = [p for p in with_samples if p <= judged_through]
    return (judged or with_samples or [None])[-1]


def latest_report_month(rows: Iterable[BoardRow]) -> str | None:
    """The latest month of the board's columns in which some reporter has reported (None: nobody)."""
    return max((m for r in rows for m, c in r.cells.items() if c.submitted_at is not None), default=None)
