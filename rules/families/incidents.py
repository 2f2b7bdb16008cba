"""Food-safety incidents: every one goes to the county; late reports are flagged. Stateless."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..events import Incident
from ..params import Hours, RuleParams, RuleSpec
from .base import Context, Family


class LateReportParams(RuleParams):
    report_within_hours: Hours = 2


REPORTED = RuleSpec("incident.reported", "county", "critical", summary="食品安全事件",
                    kind="预警", template="incidents")
LATE_REPORT = RuleSpec("incident.late_report", "county", "critical", LateReportParams, "食品安全事件迟报",
                       kind="督办", template="incidents")


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


class Incidents(Family):
    name = "incidents"
    RULES = (REPORTED, LATE_REPORT)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.within_hours = ctx.params(LATE_REPORT.id).report_within_hours
        self.within = timedelta(hours=self.within_hours)

    def handlers(self) -> dict[str, Any]:
        return {"incident": self.on_incident}

    def on_incident(self, ev: Incident, now: datetime) -> None:
        tw = ev.township
        delay = ev.reported_at - ev.occurred_at
        facts: dict[str, Any] = {
            "kind": ev.kind, "occurred_at": ev.occurred_at.isoformat(), "reported_at": ev.reported_at.isoformat(),
            "delay_hours": _hours(delay),
        }
        for name in ("cases", "deaths", "grade"):
            value = getattr(ev, name)
            if value is not None:
                facts[name] = value
        cases = f"，发病{ev.cases}人" if ev.cases is not None else ""
        self.ctx.emit(REPORTED.id, tw, ev.id, now, f"【紧急】{tw}发生{ev.kind}{cases}，请立即启动应急处置",
                      dict(facts), event_ids=(ev.id,))
        if delay > self.within:
            self.ctx.emit(
                LATE_REPORT.id, tw, ev.id, now,
                f"【督办】{tw}{ev.kind}迟报：发生后{_hours(delay)}小时才报告（时限{self.within_hours:g}小时）",
                dict(facts, report_within_hours=self.within_hours), event_ids=(ev.id,),
            )
