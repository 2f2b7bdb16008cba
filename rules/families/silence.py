"""A township that sends nothing for ``days``: its feeds may be broken or its staff away.

State: per township, the clock time of its last accepted event and whether a check is
pending. One timer per township at a time: an event only updates the time, and the timer,
when it comes due, either fires or moves itself to the new silence's end.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ..params import Days, RuleParams, RuleSpec
from ..timeutil import add_days, cn_date, fmt
from .base import Context, Family


class SilentParams(RuleParams):
    days: Days = 14


SILENT = RuleSpec("source.silent", "county", "warning", SilentParams, "长期无数据报送",
                  kind="预警", template="silence")
COUNTED_TYPES = ("sampling_result", "inspection", "monthly_report", "incident", "disposal", "banquet")


class Silence(Family):
    name = "silence"
    RULES = (SILENT,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.days = ctx.params(SILENT.id).days
        self.last: dict[str, datetime] = {}
        self.pending: set[str] = set()

    def handlers(self) -> dict[str, Any]:
        return {t: self.on_event for t in COUNTED_TYPES}

    def start(self, now: datetime) -> None:
        for township in self.ctx.townships:
            self.last[township] = now
            self._arm(township, now)

    def _arm(self, township: str, since: datetime) -> None:
        self.pending.add(township)
        self.ctx.schedule(add_days(since, self.days), self._check, township)

    def on_event(self, ev: Any, now: datetime) -> None:
        self.last[ev.township] = now
        if ev.township not in self.pending:
            self._arm(ev.township, now)

    def _check(self, at: datetime, township: str) -> None:
        since = self.last[township]
        due = add_days(since, self.days)
        if due > at:
            self.ctx.schedule(due, self._check, township)
            return
        self.pending.discard(township)
        self.ctx.emit(
            SILENT.id, township, fmt(since), at,
            f"【预警】{township}自{cn_date(since)}起已{self.days}日无任何数据报送，请核实",
            {"since": fmt(since), "days": self.days},
        )
