"""Monthly pass rates per township and program against their targets.

State: none of its own: the month's samples and qualified ones per township and program are
the measures' sample tally (:mod:`shian.rules.measures.pass_rate`), read when the month is
judged (the 1st of the next month 00:00 plus ``grace_days``) — the counts the office shows.
"""
from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from typing import Annotated

from pydantic import Field, model_validator

from ..measures import COUNTED_PROGRAMS, below_target, judged_at
from ..notice import PROGRAM_NAMES
from ..params import Count, Rate, RuleParams, RuleSpec, exact
from ..timeutil import add_days, month_of, next_month
from .base import Context, Family

__all__ = ["COUNTED_PROGRAMS", "PASS_RATE", "PassRate", "PassRateParams"]


class PassRateParams(RuleParams):
    targets: dict[str, Rate] = {"food_sampling": 0.98, "agri_monitoring": 0.97}
    min_samples: Count = 20
    county_margin: Rate = 0.05
    grace_days: Annotated[int, Field(ge=0, le=28)] = 0  # judged before the next month's

    @model_validator(mode="after")
    def _programs(self) -> "PassRateParams":
        unknown = set(self.targets) - set(COUNTED_PROGRAMS)
        if unknown:
            raise ValueError(f"targets 只接受 {', '.join(COUNTED_PROGRAMS)}（快检不计合格率），不认识：{', '.join(sorted(unknown))}")
        return self


PASS_RATE = RuleSpec("sample.pass_rate_low", "town", "warning", PassRateParams, "月度抽检合格率低于目标",
                     kind="预警", template="pass_rate")


class PassRate(Family):
    name = "pass_rate"
    RULES = (PASS_RATE,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p = ctx.params(PASS_RATE.id)
        self.p = p
        self.targets = {prog: (t, exact(t), exact(t) - exact(p.county_margin)) for prog, t in p.targets.items()}

    def deadline(self, period: str) -> datetime:
        """When ``period`` is judged: the next month's 1st, 00:00 local, plus ``grace_days``."""
        return judged_at(period, self.p.grace_days, self.ctx.tz)

    def start(self, now: datetime) -> None:
        period = month_of(add_days(now, -self.p.grace_days - 31))
        while self.deadline(period) < now:
            period = next_month(period)
        self.ctx.schedule(self.deadline(period), self._judge, period)

    def _judge(self, at: datetime, period: str) -> None:
        """The samples of ``period`` counted so far: all that came before this deadline."""
        self.ctx.schedule(self.deadline(next_month(period)), self._judge, next_month(period))
        counts = self.ctx.measures.samples.of_period(period)
        for township in self.ctx.townships:
            for program, (target, exact_target, county_below) in self.targets.items():
                total, qualified = counts.get((township, program), (0, 0))
                if total == 0 or total < self.p.min_samples:
                    continue
                if not below_target(qualified, total, exact_target):
                    continue
                rate = Fraction(qualified, total)
                self.ctx.emit(
                    PASS_RATE.id, township, f"{program}|{period}", at,
                    f"【预警】{township}{period[:4]}年{int(period[5:])}月{PROGRAM_NAMES[program]}合格率"
                    f"{float(rate):.1%}，低于{target:.0%}目标",
                    {"program": program, "period": period, "rate": qualified / total, "target": target,
                     "samples": total, "qualified": qualified},
                    level="county" if rate < county_below else "town",
                )
