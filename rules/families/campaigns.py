"""Joint inspections (节前联合检查) before 元旦, 春节, 劳动节 and 国庆节.

State: none of its own: the 节前联合检查 per township and day are the measures' tally
(:mod:`shian.rules.measures.campaigns`), kept at least ``window_days``, counted over the same
window the office shows.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, field_validator

from ..calendar import HOLIDAYS, holiday_date
from ..measures import JOINT, campaign_window
from ..params import RuleParams, RuleSpec
from ..timeutil import add_days, at_local
from .base import Context, Family

__all__ = ["JOINT", "MISSED", "REMINDER", "CampaignParams", "Campaigns", "MissedParams"]


class CampaignParams(RuleParams):
    holidays: list[str] = list(HOLIDAYS)
    remind_days_before: Annotated[int, Field(ge=0, le=366)] = 10

    @field_validator("holidays")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [h for h in v if h not in HOLIDAYS]
        if unknown:
            raise ValueError(f"不认识的节日：{', '.join(unknown)}（可选：{', '.join(HOLIDAYS)}）")
        return list(dict.fromkeys(v))


class MissedParams(RuleParams):
    window_days: Annotated[int, Field(ge=1, le=366)] = 30


REMINDER = RuleSpec("campaign.reminder", "town", "info", CampaignParams, "节前联合检查提醒",
                    kind="工作提示", template="campaigns")
MISSED = RuleSpec("campaign.missed", "county", "warning", MissedParams, "节前未开展联合检查",
                  kind="督办", template="campaigns")


class Campaigns(Family):
    name = "campaigns"
    RULES = (REMINDER, MISSED)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p = ctx.params(REMINDER.id)
        self.holidays, self.remind = p.holidays, p.remind_days_before
        self.window = ctx.params(MISSED.id).window_days

    def when(self, rule: str, holiday: str, year: int) -> datetime:
        h = holiday_date(holiday, year)
        if rule == REMINDER.id:
            return add_days(at_local(h, 9, self.ctx.tz), -self.remind)
        return campaign_window(h, self.window, self.ctx.tz)[1]

    def _schedule(self, rule: str, holiday: str, year: int) -> None:
        """Schedule H of ``year``; 春节 after 2099 is beyond the lunar calendar and is not."""
        try:
            at = self.when(rule, holiday, year)
        except ValueError:
            return
        self.ctx.schedule(at, self._fire, (rule, holiday, year))

    def start(self, now: datetime) -> None:
        for holiday in self.holidays:
            for rule in (REMINDER.id, MISSED.id):
                for year in range(now.year - 1, now.year + 2):
                    try:
                        if self.when(rule, holiday, year) >= now:
                            self._schedule(rule, holiday, year)
                            break
                    except ValueError:
                        break

    def _fire(self, at: datetime, arg: tuple[str, str, int]) -> None:
        rule, holiday, year = arg
        self._schedule(rule, holiday, year + 1)
        h = holiday_date(holiday, year)
        facts_base = {"holiday": holiday, "date": h.isoformat()}
        start, end = campaign_window(h, self.window, self.ctx.tz)
        joint = self.ctx.measures.joint
        for township in self.ctx.townships:
            if rule == REMINDER.id:
                title = f"【提醒】{holiday}（{h:%-m月%-d日}）将至，请{township}于节前组织开展食品安全联合检查"
            else:
                if joint.count(township, start, end):
                    continue
                title = f"【督办】{township}{holiday}前{self.window}日内未开展节前联合检查"
            self.ctx.emit(rule, township, f"{holiday}|{h.isoformat()}", at, title, dict(facts_base))
