"""``sample.rapid_unconfirmed`` (opt-in): a 不合格 rapid test (快检) must be confirmed by a
lab sample (Food Safety Law art. 112) within ``confirm_days`` local days of its event time.

Any lab sample (program other than ``rapid_test``) of the same entity and ``category``,
sampled on or after the rapid test's local sampling date, confirms it — whatever its own
conclusion, and whether it was accepted before or after the rapid test — if it is accepted
before the deadline (the deadline fires before an event at its own time).

State, and for how long (nothing while the rule is off):

- per entity × category, the latest local sampling date of its lab samples, kept for
  ``dedup_days`` of clock time after the last such sample was accepted;
- the pending deadlines, in the engine's timer queue (a rapid test whose deadline is already
  behind the clock when it arrives gets none).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..events import SamplingResult
from ..params import Days, RuleParams, RuleSpec
from ..timeutil import add_days
from .base import Context, Family, entity_key
from .samples import sample_facts


class RapidParams(RuleParams):
    enabled: bool = False
    confirm_days: Days = 7


RAPID = RuleSpec("sample.rapid_unconfirmed", "town", "warning", RapidParams, "快检不合格未经检验确认",
                 kind="预警", template="rapid")

LabKey = tuple[tuple[str, str, str], str]  # (entity, category)


class Rapid(Family):
    name = "rapid"
    RULES = (RAPID,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p = ctx.params(RAPID.id)
        self.enabled = p.enabled
        self.days = p.confirm_days
        self.lab_day: dict[LabKey, date] = {}
        self.lab_seen: dict[LabKey, datetime] = {}  # the same keys, in the clock order they were last fed

    def handlers(self) -> dict[str, Any]:
        return {"sampling_result": self.on_sample} if self.enabled else {}

    def on_sample(self, ev: SamplingResult, now: datetime) -> None:
        key = (entity_key(ev), ev.category)
        if ev.program != "rapid_test":
            day = ev.sampled_at.date()
            prev = self.lab_day.get(key)
            if prev is None or day > prev:
                self.lab_day[key] = day
            self.lab_seen.pop(key, None)
            self.lab_seen[key] = now
            return
        if not self.ctx.verdict(ev).unqualified:
            return
        deadline = add_days(ev.time, self.days)
        if deadline > now:
            facts = sample_facts(ev)
            facts.update(sampled_at=ev.sampled_at.isoformat(), confirm_days=self.days)
            self.ctx.schedule(deadline, self._check, (ev.township, ev.id, key, ev.sampled_at.date(), facts))

    def forget(self, horizon: datetime) -> None:
        seen = self.lab_seen
        while seen:
            key = next(iter(seen))
            if seen[key] >= horizon:
                return
            del seen[key]
            del self.lab_day[key]

    def _check(self, at: datetime, arg: tuple[str, str, LabKey, date, dict[str, Any]]) -> None:
        township, sample_id, key, sampled, facts = arg
        lab = self.lab_day.get(key)
        if lab is not None and lab >= sampled:
            return
        what = facts.get("food") or facts["category"]
        self.ctx.emit(
            RAPID.id, township, sample_id, at,
            f"【预警】{township}{facts['entity']}{what}快检不合格，{self.days}日内未见检验机构抽检确认",
            dict(facts), route=facts["category"], event_ids=(sample_id,),
        )
