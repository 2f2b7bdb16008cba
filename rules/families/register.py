"""``inspection.frequency_due``: every business in the register (台账) that is in business is
inspected each year as often as its risk grade (风险分级管理, A–D) asks, looked at on fixed
dates of the year (§6 "Revision 5").

State: none of its own but the next occurrence of each ``checks`` date, in the engine's timer
queue. The register and the inspections per entity and year are the measures' register tally
(:mod:`shian.rules.measures.frequency`), which also computes what each entity needs and has at a
check (:meth:`~shian.rules.measures.frequency.RegisterTally.check`), so that the 检查频次 page
shows exactly what this rule decides on. The register's ids themselves (the duplicate and
re-grading check) are the engine's.
"""
from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator

from ..events import RISK_LEVELS
from ..measures import check_date, check_time
from ..measures.frequency import Version
from ..params import NonNegInt, RuleParams, RuleSpec, exact
from .base import Context, Family

Fraction01 = Annotated[float, Field(gt=0, le=1)]
DEFAULT_PER_YEAR = {"A": 1, "B": 2, "C": 3, "D": 4}
DEFAULT_CHECKS = {"07-01": 0.5, "12-01": 1.0}


class FrequencyParams(RuleParams):
    #: a ``checks`` given under ``rules:`` replaces the default schedule as a whole (§6)
    WHOLE: ClassVar[frozenset[str]] = frozenset({"checks"})
    per_year: dict[str, NonNegInt] = dict(DEFAULT_PER_YEAR)
    checks: dict[str, Fraction01] = dict(DEFAULT_CHECKS)

    @field_validator("per_year")
    @classmethod
    def _grades(cls, v: dict[str, int]) -> dict[str, int]:
        unknown = [k for k in v if k not in RISK_LEVELS]
        if unknown:
            raise ValueError(f"per_year 只接受风险等级 A、B、C、D，不认识：{', '.join(unknown)}")
        return v

    @field_validator("checks")
    @classmethod
    def _dates(cls, v: dict[str, float]) -> dict[str, float]:
        for key in v:
            try:
                check_date(key, 2001)  # not a leap year: 02-29 is not a date every year has
            except ValueError:
                raise ValueError(f"checks 的日期“{key}”无效：应为 MM-DD（如 07-01），且不能是 02-29（并非每年都有）") from None
        return v


FREQUENCY = RuleSpec("inspection.frequency_due", "town", "warning", FrequencyParams, "未按风险等级完成检查频次",
                     kind="预警", template="register")


class Register(Family):
    name = "register"
    RULES = (FREQUENCY,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p = ctx.params(FREQUENCY.id)
        self.enabled = p.enabled
        self.per_year: dict[str, int] = dict(p.per_year)
        self.fractions: dict[str, Fraction] = {k: exact(v) for k, v in p.checks.items()}

    def start(self, now: datetime) -> None:
        if not self.enabled:
            return
        for mm_dd in self.fractions:
            year = now.year
            if check_time(mm_dd, year, self.ctx.tz) < now:
                year += 1
            self.ctx.schedule(check_time(mm_dd, year, self.ctx.tz), self._check, (FREQUENCY.id, mm_dd, year))

    def _check(self, at: datetime, arg: tuple[str, str, int]) -> None:
        _, mm_dd, year = arg
        self.ctx.schedule(check_time(mm_dd, year + 1, self.ctx.tz), self._check, (FREQUENCY.id, mm_dd, year + 1))
        register, fraction = self.ctx.measures.register, self.fractions[mm_dd]
        for township in self.ctx.townships:
            for due in register.check(township, year, at, fraction, self.per_year):
                if due.behind:
                    self._emit(at, township, due.version, year, due.required, due.done)

    def _emit(self, at: datetime, township: str, v: Version, year: int, required: int, done: int) -> None:
        day = at.date()
        facts: dict[str, Any] = {
            "entity": v.entity, "entity_type": v.entity_type, "risk_level": v.risk_level,
            "required": required, "done": done, "year": year, "per_year": self.per_year[v.risk_level],
            "check_date": day.isoformat(), "register_id": v.row_id,
        }
        if v.entity_id:
            facts["entity_id"] = v.entity_id
        self.ctx.emit(
            FREQUENCY.id, township, f"{v.entity_id or v.entity}|{day.isoformat()}", at,
            f"【预警】{township}{v.entity}（风险等级{v.risk_level}级）{year}年已检查{done}次，"
            f"截至{day:%-m月%-d日}应至少检查{required}次",
            facts, route=v.entity_type, event_ids=(v.row_id,),
        )
