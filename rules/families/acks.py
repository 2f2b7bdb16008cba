"""Acknowledgements (签收 / 办结) and the opt-in ``notice.unacknowledged`` escalation.

State: every notice issued (id → township, recipients, level, severity), so that an ack can
be checked against it, and the ids acknowledged; both kept for ``dedup_days`` of clock time.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import Field

from ..calendar import Calendar
from ..events import Ack, Rejected
from ..notice import Notice, notice_id
from ..params import RuleParams, RuleSpec
from ..timeutil import add_days, local_midnight
from .base import Context, Family

Hours = Annotated[float, Field(gt=0)] | None


class UnackParams(RuleParams):
    enabled: bool = False
    hours: dict[str, Hours] = {"critical": 24, "warning": 72}

    def model_post_init(self, _: Any) -> None:
        unknown = set(self.hours) - {"critical", "warning"}
        if unknown:
            raise ValueError(f"hours 只接受 critical 和 warning，不认识：{', '.join(sorted(unknown))}")


UNACK = RuleSpec("notice.unacknowledged", "county", "warning", UnackParams, "通知超时未签收",
                 kind="督办", template="acks")


@dataclass(frozen=True, slots=True)
class Issued:
    id: str
    township: str
    recipients: tuple[str, ...]
    level: str
    severity: str
    rule: str
    title: str
    at: datetime


def working_deadline(start: datetime, hours: float, calendar: Calendar) -> datetime:
    """``hours`` of time on official working days after ``start`` (weekends, holidays skipped,
    调休 workdays counted)."""
    left = timedelta(hours=hours)
    cursor = start
    while True:
        midnight = add_days(local_midnight(cursor.date(), cursor.tzinfo), 1)
        if calendar.is_working_day(cursor.date()):
            span = midnight - cursor
            if left <= span:
                return cursor + left
            left -= span
        cursor = midnight


class Acks(Family):
    name = "acks"
    RULES = (UNACK,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p = ctx.params(UNACK.id)
        self.enabled = p.enabled
        self.hours = p.hours
        self.issued: dict[str, Issued] = {}
        self.acked: set[str] = set()

    def handlers(self) -> dict[str, Any]:
        return {"ack": self.on_ack}

    def on_notice(self, n: Notice) -> None:
        ref = Issued(n.id, n.township, n.recipients, n.level, n.severity, n.rule, n.title, n.at)
        self.issued[n.id] = ref
        hours = self.hours.get(n.severity)
        if not self.enabled or n.rule == UNACK.id or hours is None:
            return
        due = (n.at + timedelta(hours=hours) if n.severity == "critical"
               else working_deadline(n.at, hours, self.ctx.calendar))
        self.ctx.schedule(due, self._check, ref)

    def on_ack(self, ev: Ack, now: datetime) -> None:
        ref = self.issued.get(ev.notice_id) or self.issued.get(notice_id(ev.notice_id))
        if ref is None or ref.township != ev.township or ref.at > ev.acked_at:
            raise Rejected(f"签收的通知“{ev.notice_id}”在{ev.township}不存在（截至 {ev.acked_at:%Y-%m-%d %H:%M} 未发出该通知）")
        if ev.by not in ref.recipients:
            raise Rejected(f"部门“{ev.by}”不是通知 {ref.id} 的接收部门（{', '.join(ref.recipients)}），不能签收")
        self.acked.add(ref.id)

    def forget(self, horizon: datetime) -> None:
        while self.issued:
            oldest = next(iter(self.issued.values()))
            if oldest.at >= horizon:
                break
            del self.issued[oldest.id]
            self.acked.discard(oldest.id)

    def _check(self, at: datetime, ref: Issued) -> None:
        if ref.id in self.acked:
            return
        offices = self.ctx.offices(ref.township)
        if ref.level == "county":
            recipients = offices.escalation or (offices.county,)
        else:
            recipients = tuple(dict.fromkeys((offices.county, offices.town)))
        hours = self.hours[ref.severity]
        self.ctx.emit(
            UNACK.id, ref.township, ref.id, at,
            f"【督办】通知“{ref.title}”发出{hours:g}小时仍无人签收",
            {"notice_id": ref.id, "notice_rule": ref.rule, "notice_title": ref.title, "hours": hours,
             "notice_at": ref.at.isoformat()},
            severity="critical" if ref.severity == "critical" else "warning",
            recipients=recipients,
        )
