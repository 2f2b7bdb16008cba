"""Unqualified samples, banned substances, and the disposal (核查处置) deadline.

State: the pending disposal deadlines, in the engine's timer queue; which samples have a
disposal is the measures' disposal tally (:mod:`shian.rules.measures.disposals`), kept for
``dedup_days``, whose due and status the office shows.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ..events import SamplingResult
from ..measures import disposal_due
from ..params import Days, RuleParams, RuleSpec
from ..timeutil import cn_date
from .base import Context, Family

DEFAULT_SUBSTANCES = (
    "克伦特罗", "克仑特罗", "瘦肉精", "莱克多巴胺", "沙丁胺醇", "西马特罗", "氯霉素", "孔雀石绿",
    "五氯酚酸钠", "呋喃唑酮代谢物", "呋喃西林代谢物", "呋喃它酮代谢物", "呋喃妥因代谢物",
)


class BannedParams(RuleParams):
    substances: list[str] = list(DEFAULT_SUBSTANCES)
    extra_substances: list[str] = []


class UnqualifiedParams(RuleParams):
    disposal_days: Days = 90


BANNED = RuleSpec("sample.banned_substance", "county", "critical", BannedParams, "样品检出禁用物质",
                  kind="督办", template="samples")
UNQUALIFIED = RuleSpec("sample.unqualified", "town", "warning", UnqualifiedParams, "样品抽检不合格",
                       kind="预警", template="samples")
DISPOSAL_OVERDUE = RuleSpec("sample.disposal_overdue", "county", "warning", summary="不合格样品逾期未核查处置",
                            kind="督办", template="samples")


def sample_facts(ev: SamplingResult) -> dict[str, Any]:
    facts: dict[str, Any] = {"entity": ev.entity, "sample_id": ev.id, "category": ev.category, "program": ev.program}
    for name in ("entity_id", "food", "village"):
        value = getattr(ev, name)
        if value:
            facts[name] = value
    return facts


def _what(ev: SamplingResult) -> str:
    return f"{ev.entity}{ev.food or ev.category}"


class Samples(Family):
    name = "samples"
    RULES = (BANNED, UNQUALIFIED, DISPOSAL_OVERDUE)
    DEADLINE_RULE = DISPOSAL_OVERDUE.id

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.disposal_days = ctx.params(UNQUALIFIED.id).disposal_days

    def handlers(self) -> dict[str, Any]:
        return {"sampling_result": self.on_sample}

    def on_sample(self, ev: SamplingResult, now: datetime) -> None:
        verdict = self.ctx.verdict(ev)
        if not verdict.unqualified:
            return
        due = disposal_due(ev.time, self.disposal_days)
        facts = sample_facts(ev)
        if verdict.banned:
            names = "、".join(dict.fromkeys(it.item for it in verdict.banned))
            facts["substances"] = [it.item for it in verdict.banned]
            self.ctx.emit(
                BANNED.id, ev.township, ev.id, now,
                f"【督办】{ev.township}{_what(ev)}检出禁用物质（{names}），请立即核查处置",
                facts, route=ev.category, event_ids=(ev.id,), due=due,
            )
        else:
            facts["failed_items"] = [it.item for it in ev.items if it.failed]
            self.ctx.emit(
                UNQUALIFIED.id, ev.township, ev.id, now,
                f"【预警】{ev.township}{_what(ev)}抽检不合格，请于{cn_date(due)}前完成核查处置",
                facts, route=ev.category, event_ids=(ev.id,), due=due,
            )
        if due >= now:  # a due behind the clock never fires; one at it fires now (§6)
            self.ctx.schedule(due, self._overdue, (ev.township, ev.id, ev.category, sample_facts(ev)))

    def _overdue(self, at: datetime, arg: tuple[str, str, str, dict[str, Any]]) -> None:
        township, sample_id, category, facts = arg
        if self.ctx.measures.disposals.disposed(township, sample_id):
            return
        self.ctx.emit(
            DISPOSAL_OVERDUE.id, township, sample_id, at,
            f"【督办】{township}{facts['entity']}不合格样品（{sample_id}）逾期未完成核查处置",
            dict(facts, due_days=self.disposal_days), route=category, event_ids=(sample_id,),
        )
