"""Monthly pass rates per township and program against their targets.

State: per (month, township, program) the number of samples and of qualified ones, from the
first sample of the month until the month's deadline (the 1st of the next month 00:00 plus
``grace_days``) has been judged.
"""
from __future__ import annotations

from datetime import date, datetime
from fractions import Fraction
from typing import Any

from pydantic import model_validator

from ..events import SamplingResult
from ..notice import PROGRAM_NAMES
from ..params import NonNegInt, Rate, RuleParams, RuleSpec, exact
from ..timeutil import add_days, local_midnight, month_of, next_month
from .base import Context, Family

COUNTED_PROGRAMS = ("food_sampling", "agri_monitoring")


class PassRateParams(RuleParams):
    targets: dict[str, Rate] = {"food_sampling": 0.98, "agri_monitoring": 0.97}
    min_samples: NonNegInt = 20
    county_margin: Rate = 0.05
    grace_days: NonNegInt = 0

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
        self.counts: dict[tuple[tuple[int, int], str, str], list[int]] = {}
        self._deadlines: dict[tuple[int, int], datetime] = {}

    def handlers(self) -> dict[str, Any]:
        return {"sampling_result": self.on_sample}

    def deadline(self, period: str) -> datetime:
        """When ``period`` is judged: the next month's 1st, 00:00 local, plus ``grace_days``."""
        return self._deadline((int(period[:4]), int(period[5:])))

    def _deadline(self, ym: tuple[int, int]) -> datetime:
        d = self._deadlines.get(ym)
        if d is None:
            y, m = ym
            first = local_midnight(date(y + (m == 12), m % 12 + 1, 1), self.ctx.tz)
            d = self._deadlines[ym] = add_days(first, self.p.grace_days)
        return d

    def start(self, now: datetime) -> None:
        period = month_of(add_days(now, -self.p.grace_days - 31))
        while self.deadline(period) < now:
            period = next_month(period)
        self.ctx.schedule(self.deadline(period), self._judge, period)

    def on_sample(self, ev: SamplingResult, now: datetime) -> None:
        if ev.program not in self.targets:
            return
        t = ev.time
        ym = (t.year, t.month)
        if self._deadline(ym) <= now:
            return
        key = (ym, ev.township, ev.program)
        c = self.counts.get(key)
        if c is None:
            c = self.counts[key] = [0, 0]
        c[0] += 1
        if not self.ctx.verdict(ev).unqualified:
            c[1] += 1

    def _judge(self, at: datetime, period: str) -> None:
        ym = (int(period[:4]), int(period[5:]))
        self.ctx.schedule(self.deadline(next_month(period)), self._judge, next_month(period))
        for township in self.ctx.townships:
            for program, (target, exact_target, county_below) in self.targets.items():
                total, qualified = self.counts.pop((ym, township, program), (0, 0))
                if total == 0 or total < self.p.min_samples:
                    continue
                rate = Fraction(qualified, total)
                if rate >= exact_target:
                    continue
                self.ctx.emit(
                    PASS_RATE.id, township, f"{program}|{period}", at,
                    f"【预警】{township}{period[:4]}年{int(period[5:])}月{PROGRAM_NAMES[program]}合格率"
                    f"{float(rate):.1%}，低于{target:.0%}目标",
                    {"program": program, "period": period, "rate": qualified / total, "target": target,
                     "samples": total, "qualified": qualified},
                    level="county" if rate < county_below else "town",
                )
        for key in [k for k in self.counts if k[0] <= ym]:
            del self.counts[key]
