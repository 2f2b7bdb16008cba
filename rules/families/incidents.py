"""Food-safety incidents: every one goes to the county; late reports are flagged, against a
limit per incident grade (``hours_by_grade``, matched exactly) or ``report_within_hours``.
Stateless."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import field_validator

from ..events import Incident
from ..params import Hours, RuleParams, RuleSpec
from .base import Context, Family


GRADES = ("Ⅰ", "Ⅱ", "Ⅲ", "Ⅳ")  # 特别重大, 重大, 较大, 一般


class LateReportParams(RuleParams):
    report_within_hours: Hours = 2
    hours_by_grade: dict[str, Hours | None] = {}  # null: no late report for that grade

    @field_validator("hours_by_grade")
    @classmethod
    def _grades(cls, v: dict[str, float | None]) -> dict[str, float | None]:
        unknown = [k for k in v if k not in GRADES]
        if unknown:
            raise ValueError(f"hours_by_grade 只接受事件等级 {'、'.join(GRADES)}（罗马数字），不认识：{', '.join(unknown)}")
        return v


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
        p = ctx.params(LATE_REPORT.id)
        self.within_hours = p.report_within_hours
        self.by_grade: dict[str, float | None] = dict(p.hours_by_grade)

    def limit(self, grade: str | None) -> float | None:
        """The reporting limit in hours for an incident of ``grade``; None: not judged."""
        if grade is not None and grade in self.by_grade:
            return self.by_grade[grade]
        return self.within_hours

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
        limit = self.limit(ev.grade)
        if limit is not None and delay > timedelta(hours=limit):
            late = dict(facts, report_within_hours=limit)
            if ev.grade in self.by_grade:
                late["limit_for_grade"] = ev.grade
            self.ctx.emit(
                LATE_REPORT.id, tw, ev.id, now,
                f"【督办】{tw}{ev.kind}迟报：发生后{_hours(delay)}小时才报告（时限{limit:g}小时）",
                late, event_ids=(ev.id,),
            )
