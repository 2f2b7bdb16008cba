"""The lab's clock: the opt-in ``sample.lab_late`` (a lab took more than ``working_days``
official working days from sampling to its report; labs must report within 20).

State: none. The rule decides on the sample alone — the official working days d with
date(``sampled_at``) < d ≤ date(``reported_at``), local dates, counted on the config's calendar.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ..events import SamplingResult
from ..params import RuleParams, RuleSpec, WorkingDays
from .base import Context, Family
from .samples import sample_facts



class LabLateParams(RuleParams):
    enabled: bool = False
    working_days: WorkingDays = 20


LAB_LATE = RuleSpec("sample.lab_late", "county", "info", LabLateParams, "检验报告超时限出具",
                    kind="工作提示", template="labs")


class Labs(Family):
    name = "labs"
    RULES = (LAB_LATE,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p = ctx.params(LAB_LATE.id)
        self.enabled = p.enabled
        self.limit = p.working_days

    def handlers(self) -> dict[str, Any]:
        return {"sampling_result": self.on_sample} if self.enabled else {}

    def on_sample(self, ev: SamplingResult, now: datetime) -> None:
        if ev.program == "rapid_test" or ev.reported_at is None:
            return
        sampled, reported = ev.sampled_at.date(), ev.reported_at.date()
        count = self.ctx.calendar.count_working_days(sampled, reported)
        if count <= self.limit:
            return
        facts: dict[str, Any] = {**sample_facts(ev), "working_days": count, "limit_working_days": self.limit,
                                 "sampled_on": sampled.isoformat(), "reported_on": reported.isoformat()}
        self.ctx.emit(
            LAB_LATE.id, ev.township, ev.id, now,
            f"【工作提示】{ev.township}{ev.entity}{ev.food or ev.category}样品（{ev.id}）检验报告用时"
            f"{count}个工作日，超过{self.limit}个工作日的时限",
            facts, event_ids=(ev.id,), recipients=(self.ctx.offices(ev.township).county,),
        )
