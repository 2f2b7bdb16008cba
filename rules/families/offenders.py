"""Repeat offenders: an entity's 2nd (or later) 不合格 sample within ``window_days``.

State: per entity, the event times and ids of its 不合格 samples (rapid tests excluded),
kept for ``window_days`` + ``dedup_days`` so that late arrivals still find their window.
"""
from __future__ import annotations

import bisect
from datetime import datetime
from typing import Any

from ..events import SamplingResult
from ..params import Days, RuleParams, RuleSpec
from ..timeutil import add_days
from .base import Context, Family, entity_key
from .samples import sample_facts


class RepeatParams(RuleParams):
    window_days: Days = 365


REPEAT = RuleSpec("entity.repeat_offender", "county", "critical", RepeatParams, "同一主体多次抽检不合格",
                  kind="督办", template="offenders")


class Offenders(Family):
    name = "offenders"
    RULES = (REPEAT,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.window = ctx.params(REPEAT.id).window_days
        self.keep_days = self.window + ctx.dedup_days
        self.bad: dict[tuple[str, str, str], list[tuple[datetime, str]]] = {}

    def handlers(self) -> dict[str, Any]:
        return {"sampling_result": self.on_sample}

    def on_sample(self, ev: SamplingResult, now: datetime) -> None:
        if ev.program == "rapid_test" or not self.ctx.verdict(ev).unqualified:
            return
        t = ev.time
        history = self.bad.setdefault(entity_key(ev), [])
        horizon = add_days(now, -self.keep_days)
        while history and history[0][0] < horizon:
            history.pop(0)
        bisect.insort(history, (t, ev.id))
        start = add_days(t, -self.window)
        lo = bisect.bisect_left(history, (start, ""))
        in_window = [sid for when, sid in history[lo:] if when <= t]
        if len(in_window) < 2:
            return
        facts = sample_facts(ev)
        facts.update(count=len(in_window), window_days=self.window, sample_ids=in_window)
        self.ctx.emit(
            REPEAT.id, ev.township, ev.id, now,
            f"【督办】{ev.township}{ev.entity}{self.window}日内第{len(in_window)}次抽检不合格，请依法从严查处",
            facts, route=ev.category, event_ids=tuple(in_window),
        )
