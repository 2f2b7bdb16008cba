"""Monthly reports (月报) due on ``due_day``: reminder, overdue, escalation to the county.

State: none of its own: who has reported for a period is the measures' report tally
(:mod:`shian.rules.measures.reports`), which keeps a period at least until its escalation.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import Field, model_validator

from ..measures import report_due
from ..params import Days, RuleParams, RuleSpec
from ..timeutil import add_days, at_local, month_of, next_month
from .base import Context, Family


class ReminderParams(RuleParams):
    due_day: Annotated[int, Field(ge=1, le=28)] = 25  # every month has it (§3)
    remind_days_before: Annotated[int, Field(ge=0, le=27)] = 3

    @model_validator(mode="after")
    def _days(self) -> "ReminderParams":
        if self.due_day <= self.remind_days_before:
            raise ValueError(f"due_day（{self.due_day}）应大于 remind_days_before（{self.remind_days_before}）")
        return self


class EscalationParams(RuleParams):
    escalate_after_days: Days = 5


REMINDER = RuleSpec("report.reminder", "town", "info", ReminderParams, "月报报送提醒",
                    kind="催报", template="reports")
OVERDUE = RuleSpec("report.overdue", "town", "warning", summary="月报逾期未报", kind="催报", template="reports")
ESCALATION = RuleSpec("report.escalation", "county", "warning", EscalationParams, "月报逾期未报（升级督办）",
                      kind="督办", template="reports")


def _month_day(period: str, day: int) -> date:
    return date(int(period[:4]), int(period[5:]), day)


class Reports(Family):
    name = "reports"
    RULES = (REMINDER, OVERDUE, ESCALATION)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p = ctx.params(REMINDER.id)
        self.due_day, self.remind = p.due_day, p.remind_days_before
        self.escalate = ctx.params(ESCALATION.id).escalate_after_days

    def when(self, rule: str, period: str) -> datetime:
        tz = self.ctx.tz
        if rule == REMINDER.id:
            return at_local(_month_day(period, self.due_day - self.remind), 9, tz)
        overdue = report_due(period, self.due_day, tz)
        return overdue if rule == OVERDUE.id else add_days(overdue, self.escalate)

    def start(self, now: datetime) -> None:
        for rule in (REMINDER.id, OVERDUE.id, ESCALATION.id):
            period = month_of(add_days(now, -self.escalate - 62))
            while self.when(rule, period) < now:
                period = next_month(period)
            self.ctx.schedule(self.when(rule, period), self._fire, (rule, period))

    def _fire(self, at: datetime, arg: tuple[str, str]) -> None:
        rule, period = arg
        self.ctx.schedule(self.when(rule, next_month(period)), self._fire, (rule, next_month(period)))
        submitted = self.ctx.measures.reports.submitted
        y, m = period[:4], int(period[5:])
        for township in self.ctx.townships:
            for reporter in self.ctx.reporters(township):
                if submitted(township, reporter, period):
                    continue
                if rule == REMINDER.id:
                    title = f"【催报】请{reporter}于{m}月{self.due_day}日前报送{y}年{m}月食品安全工作月报"
                elif rule == OVERDUE.id:
                    title = f"【催报】{reporter}{y}年{m}月食品安全工作月报已逾期未报，请立即报送"
                else:
                    title = f"【督办】{township}{reporter}{y}年{m}月月报逾期{self.escalate}日仍未报送"
                facts = {"reporter": reporter, "period": period,
                         "due_date": _month_day(period, self.due_day).isoformat()}
                self.ctx.emit(rule, township, f"{reporter}|{period}", at, title, facts)
