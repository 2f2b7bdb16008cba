"""Rural group banquets (农村集体聚餐): late registration and on-site guidance. Stateless."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..events import Banquet
from ..params import Count, HoursOrZero, RuleParams, RuleSpec
from .base import Context, Family


class LateRegistrationParams(RuleParams):
    min_guests: Count = 50
    register_hours_before: HoursOrZero = 24


class OnsiteParams(RuleParams):
    onsite_guests: Count = 100


LATE = RuleSpec("banquet.late_registration", "town", "warning", LateRegistrationParams, "集体聚餐登记不及时",
                kind="预警", template="banquets")
ONSITE = RuleSpec("banquet.onsite_guidance", "town", "info", OnsiteParams, "大型集体聚餐现场指导",
                  kind="工作提示", template="banquets")


class Banquets(Family):
    name = "banquets"
    RULES = (LATE, ONSITE)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p = ctx.params(LATE.id)
        self.min_guests, self.hours = p.min_guests, p.register_hours_before
        self.before = timedelta(hours=p.register_hours_before)
        self.onsite_guests = ctx.params(ONSITE.id).onsite_guests

    def handlers(self) -> dict[str, Any]:
        return {"banquet": self.on_banquet}

    def on_banquet(self, ev: Banquet, now: datetime) -> None:
        tw = ev.township
        office = (self.ctx.offices(tw).town,)
        facts: dict[str, Any] = {"host": ev.host, "guests": ev.guests, "held_at": ev.held_at.isoformat(),
                                 "registered_at": ev.registered_at.isoformat()}
        for name in ("village", "chef", "chef_health_cert"):
            value = getattr(ev, name)
            if value is not None:
                facts[name] = value
        where = f"{tw}{ev.village or ''}{ev.host}"
        if ev.guests >= self.min_guests and ev.held_at - ev.registered_at < self.before:
            self.ctx.emit(LATE.id, tw, ev.id, now,
                          f"【预警】{where}举办{ev.guests}人聚餐，登记距举办不足{self.hours:g}小时",
                          dict(facts), event_ids=(ev.id,), recipients=office)
        if ev.guests >= self.onsite_guests:
            self.ctx.emit(ONSITE.id, tw, ev.id, now,
                          f"【提醒】{where}将于{ev.held_at:%-m月%-d日%H:%M}举办{ev.guests}人聚餐，请派员现场指导",
                          dict(facts), event_ids=(ev.id,), recipients=office, due=ev.held_at)
