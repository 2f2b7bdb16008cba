"""On-site inspections: licence, health certificates, severe outcomes, rectification.

State: per entity, the latest event time of an inspection with outcome 合格, kept for
``dedup_days``; pending rectification deadlines live in the engine's timer queue.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..events import Inspection
from ..measures import below_target
from ..params import Rate, RuleParams, RuleSpec, exact
from ..timeutil import cn_date, local_midnight
from .base import Context, Family, drop_oldest, entity_key


class HealthCertParams(RuleParams):
    min_rate: Rate = 0.95


LICENSE = RuleSpec("inspection.license_missing", "town", "warning", summary="经营许可证缺失或无效",
                   kind="预警", template="inspections")
HEALTH_CERT = RuleSpec("inspection.health_cert_low", "town", "warning", HealthCertParams, "从业人员健康证持证率偏低",
                       kind="预警", template="inspections")
SEVERE = RuleSpec("inspection.severe_outcome", "county", "critical", summary="检查结果为责令停业或立案查处",
                  kind="督办", template="inspections")
RECTIFY = RuleSpec("inspection.rectification_overdue", "town", "warning", summary="限期整改逾期未复查合格",
                   kind="督办", template="inspections")

SEVERE_OUTCOMES = ("责令停业", "立案查处")


def inspection_facts(ev: Inspection) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "entity": ev.entity, "entity_type": ev.entity_type, "inspection_type": ev.inspection_type,
        "outcome": ev.outcome, "inspection_id": ev.id,
    }
    for name in ("entity_id", "village", "grade", "findings"):
        value = getattr(ev, name)
        if value:
            facts[name] = value
    return facts


class Inspections(Family):
    name = "inspections"
    RULES = (LICENSE, HEALTH_CERT, SEVERE, RECTIFY)
    DEADLINE_RULE = RECTIFY.id

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.min_rate = ctx.params(HEALTH_CERT.id).min_rate
        self.min_rate_exact = exact(self.min_rate)
        self.last_ok: dict[tuple[str, str, str], datetime] = {}

    def handlers(self) -> dict[str, Any]:
        return {"inspection": self.on_inspection}

    def on_inspection(self, ev: Inspection, now: datetime) -> None:
        emit, tw = self.ctx.emit, ev.township
        if ev.license_valid is False:
            emit(LICENSE.id, tw, ev.id, now, f"【预警】{tw}{ev.entity}经营许可证缺失或无效，请督促办理",
                 inspection_facts(ev), route=ev.entity_type, event_ids=(ev.id,))
        total, certified = ev.staff_total, ev.staff_with_health_cert
        if total and certified is not None and below_target(certified, total, self.min_rate_exact):
            facts = inspection_facts(ev)
            facts.update(staff_total=total, staff_with_health_cert=certified, rate=certified / total,
                         min_rate=self.min_rate)
            emit(HEALTH_CERT.id, tw, ev.id, now,
                 f"【预警】{tw}{ev.entity}从业人员健康证持证率{certified}/{total}，低于{self.min_rate:.0%}",
                 facts, route=ev.entity_type, event_ids=(ev.id,))
        if ev.outcome in SEVERE_OUTCOMES:
            emit(SEVERE.id, tw, ev.id, now, f"【督办】{tw}{ev.entity}被{ev.outcome}，请县食安办跟进督办",
                 inspection_facts(ev), route=ev.entity_type, event_ids=(ev.id,))
        key = entity_key(ev)
        if ev.outcome == "合格":
            prev = self.last_ok.pop(key, None)
            self.last_ok[key] = ev.time if prev is None or ev.time > prev else prev
        elif ev.outcome == "限期整改" and ev.rectify_by is not None:
            deadline = local_midnight(ev.rectify_by + timedelta(days=1), self.ctx.tz)
            if deadline >= now:  # behind the clock: never fires; at it: fires now (§6)
                self.ctx.schedule(deadline, self._overdue, (key, ev))

    def forget(self, horizon: datetime) -> None:
        drop_oldest(self.last_ok, horizon)

    def _overdue(self, at: datetime, arg: tuple[tuple[str, str, str], Inspection]) -> None:
        key, ev = arg
        ok = self.last_ok.get(key)
        if ok is not None and ok > ev.time:
            return
        facts = inspection_facts(ev)
        facts["rectify_by"] = ev.rectify_by.isoformat()  # type: ignore[union-attr]
        self.ctx.emit(
            RECTIFY.id, ev.township, ev.id, at,
            f"【催办】{ev.township}{ev.entity}整改期限（{cn_date(ev.rectify_by)}）已过，未见复查合格",
            facts, route=ev.entity_type, event_ids=(ev.id,),
        )
