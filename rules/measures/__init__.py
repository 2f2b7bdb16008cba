"""Measures: what the rules decide on and the office shows, computed once.

Pure functions — when a report is due (:func:`report_due`), whether a rate is below its target
(:func:`below_target`), a disposal's due and status, a campaign's window and status — and
incremental tallies that the engine feeds with every event it accepts (before the rule
families see it). The families read the tallies to decide (``ctx.measures``); the office
asks the engine for :meth:`Measures.figures`, typed rows, and never walks raw events.

State kept, and for how long (all bounded; forgotten with the engine's daily ``forget``):

- samples of the counted programs: per day × township × program, samples and qualified
  ones, for ``dedup_days`` and at least until the month is judged (:mod:`.pass_rate`);
- monthly reports: per period × township × reporter, the first submission, until the period's
  end and escalation are ``dedup_days`` old (:mod:`.reports`);
- unqualified samples per month with their due, and per sample the earliest disposal,
  for ``dedup_days`` (:mod:`.disposals`);
- 节前联合检查 per day × township, for ``dedup_days`` and at least ``window_days``
  (:mod:`.campaigns`);
- per month × entity, the latest inspection with staff figures, for ``dedup_days``
  (:mod:`.health`);
- the register (台账): per entity its first registration and register versions, and per year
  × entity the times of its inspections, for ``dedup_days`` and at least the clock's year and
  the one before (:mod:`.frequency`);
- per notice acked, its first 签收 with the ``notice.unresolved`` deadline it set and its first
  办结, for ``dedup_days`` and at least until the deadline (:mod:`.resolutions`).

So the figures reach back ``dedup_days`` (400 by default) of event time, as far as the engine
still recognises a resent event.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Callable

from ..events import Ack, Disposal, Inspection, SamplingResult
from ..notice import Notice
from ..params import exact
from .campaigns import (CAMPAIGN_STATUSES, JOINT, CampaignRow, JointTally, campaign_status,
                        campaign_window)
from .common import below_target, in_period, period_bounds
from .disposals import DISPOSAL_STATUSES, DisposalRow, DisposalTally, disposal_due, disposal_status
from .frequency import FrequencyRow, RegisterTally, check_date, check_time, latest_check, required
from .health import HealthRow, HealthTally, entity_key
from .pass_rate import (BATCHES_PER_THOUSAND, COUNTED_PROGRAMS, PACE_PROGRAMS, PaceRow, RateRow,
                        SampleTally, judged_at, yearly_target)
from .reports import REPORT_STATUSES, BoardRow, Cell, ReportTally, report_due, report_status
from .resolutions import (RESOLUTION_STATUSES, ResolutionRow, ResolutionTally, followed_up, resolution_status,
                          resolve_deadline)

__all__ = [
    "BATCHES_PER_THOUSAND", "CAMPAIGN_STATUSES", "COUNTED_PROGRAMS", "DISPOSAL_STATUSES", "FIGURE_KINDS", "JOINT",
    "PACE_PROGRAMS", "REPORT_STATUSES", "RESOLUTION_STATUSES", "as_of", "BoardRow", "CampaignRow", "Cell", "DisposalRow",
    "FrequencyRow", "HealthRow", "Measures", "PaceRow", "RateRow", "ResolutionRow", "below_target", "campaign_status",
    "campaign_window", "check_date", "check_time", "disposal_due", "disposal_status", "entity_key", "followed_up",
    "in_period", "judged_at", "latest_check", "period_bounds", "report_due", "report_status", "required",
    "resolution_status", "resolve_deadline", "yearly_target",
]

#: what :meth:`Measures.figures` answers, and the period each takes:
#: reports — a month or a list of months (the board's columns); pass_rate — a month, a year,
#: or None (every month kept); pace — a year, month or day (up to the end of it, or ``now``);
#: health, disposals — a month or a year; campaigns — a year, or a month (the windows over it);
#: frequency — a year, month or day (that year's quotas by its latest check date passed by the
#: end of it, or by ``now``); resolution — a notice (its 签收 / 办结 against notice.unresolved's
#: deadline; no row when that rule is off, does not follow the notice up, or nobody signed for it).
FIGURE_KINDS = ("reports", "pass_rate", "pace", "health", "campaigns", "disposals", "frequency", "resolution")

Handler = Callable[[Any, datetime], None]


class Measures:
    #: the event types whose tally the engine runs after the families, not before: only the
    #: acks the Acks rule accepted (an unknown notice or a department not a recipient is refused)
    AFTER_FAMILIES = frozenset({"ack"})

    def __init__(self, config: Any) -> None:
        p = config.rules
        self.tz = config.tz
        self.reports = ReportTally(p["report.reminder"].due_day, p["report.escalation"].escalate_after_days, self.tz)
        self.samples = SampleTally(p["sample.pass_rate_low"].grace_days)
        self.disposals = DisposalTally(p["sample.unqualified"].disposal_days)
        self.joint = JointTally(p["campaign.missed"].window_days)
        self.health = HealthTally()
        self.register = RegisterTally(self.tz)
        self.resolutions = ResolutionTally()

    def handlers(self, verdict: Callable[[SamplingResult], Any], config: Any) -> dict[str, Handler]:
        """What the engine runs on each accepted event, before the families (those of
        :attr:`AFTER_FAMILIES` after them); wiring, not kept in snapshots. ``verdict`` is the
        engine's, judged once per event; ``config`` the engine's (its calendar and parameters)."""
        samples, disposals, joint, health = self.samples, self.disposals, self.joint, self.health
        register, resolutions = self.register, self.resolutions

        def on_sample(ev: SamplingResult, now: datetime) -> None:
            v = verdict(ev)
            if ev.program in COUNTED_PROGRAMS:
                samples.take(ev, v.unqualified)
            if v.unqualified:
                disposals.take_sample(ev, bool(v.banned))

        def on_inspection(ev: Inspection, now: datetime) -> None:
            if ev.inspection_type == JOINT:
                joint.take(ev)
            ts = ev.inspected_at.timestamp()  # once, for both tallies
            if ev.staff_total and ev.staff_with_health_cert is not None:
                health.take(ev, ts)
            register.take_inspection(ev, ts)

        def on_disposal(ev: Disposal, now: datetime) -> None:
            disposals.take_disposal(ev)

        def on_ack(ev: Ack, now: datetime) -> None:
            resolutions.take(ev, now, config.rules["notice.unresolved"].working_days, config.calendar)

        return {"sampling_result": on_sample, "inspection": on_inspection, "disposal": on_disposal,
                "monthly_report": self.reports.take, "entity": register.take_register, "ack": on_ack}

    def forget(self, horizon: datetime, now: datetime) -> None:
        """Daily, with the families: ``horizon`` is the clock minus ``dedup_days``."""
        self.samples.forget(horizon, now)
        self.reports.forget(horizon)
        self.disposals.forget(horizon, self.tz)
        self.joint.forget(horizon, now)
        self.health.forget(horizon, self.tz)
        self.register.forget(horizon, now)
        self.resolutions.forget(horizon)

    def figures(self, config: Any, kind: str, period: Any, now: datetime) -> list[Any]:
        """Typed rows of one figure (:data:`FIGURE_KINDS`) as seen at ``now``, for the
        configured townships; targets and names come from ``config``, the current one."""
        towns, p, tz = config.townships, config.rules, config.tz
        if kind == "reports":
            months = [period] if isinstance(period, str) else list(period)
            return self.reports.board(towns, months, p["report.reminder"].due_day, tz, now)
        if kind == "pass_rate":
            return self.samples.rates(towns, p["sample.pass_rate_low"].targets, exact, period)
        if kind == "pace":
            return self.samples.pace(towns, as_of(period, now, tz))
        if kind == "health":
            target = p["inspection.health_cert_low"].min_rate
            return self.health.rows(towns, period, target, exact(target))
        if kind == "campaigns":
            return self.joint.rows(towns, p["campaign.reminder"].holidays, p["campaign.missed"].window_days,
                                   period, tz, now)
        if kind == "disposals":
            return self.disposals.rows(towns, period, tz, now)
        if kind == "frequency":
            q = p["inspection.frequency_due"]
            return self.register.rows(towns, period, q.per_year, {k: exact(v) for k, v in q.checks.items()}, now)
        if kind == "resolution":
            if not isinstance(period, Notice):
                raise ValueError("“resolution”统计须给出一条通知")
            return self.resolutions.rows(period, p["notice.unresolved"].enabled, now)
        raise ValueError(f"未知的统计类别“{kind}”（可选：{'、'.join(FIGURE_KINDS)}）")


def as_of(period: str, now: datetime, tz: Any) -> date:
    """The last day a figure of ``period`` counts: its end, or ``now`` if earlier."""
    return min(now, period_bounds(period, tz)[1] - timedelta(seconds=1)).date()
