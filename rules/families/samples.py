"""Unqualified samples, banned substances, and the disposal (核查处置) deadline.

State: the pending disposal deadlines, in the engine's timer queue; which samples have a
disposal is the measures' disposal tally (:mod:`shian.rules.measures.disposals`), kept for
``dedup_days``, whose due and status the office shows.

A deadline is kept for months (``disposal_days``) and there is one per unqualified sample,
so it is kept small: its argument is a tuple of the texts its notice needs (:data:`Pending`,
the words of the 期限 page first), the texts that repeat from sample to sample (township,
category, entity, program, food) and the tail of that tuple shared rather than one copy per
sample, and every deadline calls back the same bound method. The facts of its notice are
made again when it fires.
"""
from __future__ import annotations

import sys
from datetime import datetime
from typing import Any, Optional, Tuple

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


#: a pending disposal deadline: township, sample id, category, entity — the words of its label
#: on the 期限 page (:func:`shian.rules.engine.timer_words`) — then its tail, in a tuple of its
#: own (not words): program, entity_id, food, village (None: not given)
Pending = Tuple[str, str, str, str, Tuple[str, Optional[str], Optional[str], Optional[str]]]


def _shared(text: Any) -> Any:
    """One copy of a text that repeats across samples (``sys.intern``), anything else as it is."""
    return sys.intern(text) if type(text) is str else text


def pending_facts(p: Pending) -> dict[str, Any]:
    """:func:`sample_facts` of the sample a deadline keeps, key for key in the same order."""
    _, sample_id, category, entity, (program, entity_id, food, village) = p
    facts: dict[str, Any] = {"entity": entity, "sample_id": sample_id, "category": category, "program": program}
    for name, value in (("entity_id", entity_id), ("food", food), ("village", village)):
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
        self._wire()

    def _wire(self) -> None:
        """What a deadline shares and a snapshot does not keep: one bound method for every
        deadline (not one each), and the tails of :data:`Pending` seen today, one copy each."""
        self._fire = self._overdue
        self._tails: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_fire", None)
        state.pop("_tails", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._wire()

    def forget(self, horizon: datetime) -> None:
        self._tails.clear()   # the tails already kept stay shared; only new ones start afresh

    def pending(self, ev: SamplingResult) -> Pending:
        """What the deadline of ``ev`` keeps: :func:`sample_facts` in a few shared texts."""
        tail = (_shared(ev.program), _shared(ev.entity_id or None), _shared(ev.food or None),
                _shared(ev.village or None))
        return _shared(ev.township), ev.id, _shared(ev.category), _shared(ev.entity), self._tails.setdefault(tail, tail)

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
            self.ctx.schedule(due, self._fire, self.pending(ev))

    def _overdue(self, at: datetime, arg: Pending | tuple[str, str, str, dict[str, Any]]) -> None:
        """The deadline of a sample: its notice unless a disposal came. ``arg``: a
        :data:`Pending`, or (a snapshot of an earlier version) township, id, category, facts."""
        township, sample_id, category = arg[0], arg[1], arg[2]
        facts = arg[3] if isinstance(arg[3], dict) else pending_facts(arg)  # type: ignore[arg-type]
        if self.ctx.measures.disposals.disposed(township, sample_id):
            return
        self.ctx.emit(
            DISPOSAL_OVERDUE.id, township, sample_id, at,
            f"【督办】{township}{facts['entity']}不合格样品（{sample_id}）逾期未完成核查处置",
            dict(facts, due_days=self.disposal_days), route=category, event_ids=(sample_id,),
        )
