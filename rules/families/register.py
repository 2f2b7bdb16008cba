"""The register of food businesses (台账) and ``inspection.frequency_due``: every business in
business is inspected each year as often as its risk grade (风险分级管理, A–D) asks, looked at
on fixed dates of the year (§6 "Revision 5").

State, and for how long:

- per entity (within its township, by ``entity_id`` else name): the event time of its earliest
  register row, and its register versions — the one in force at the clock, and any dated after
  the clock (a version superseded at the clock is dropped). Kept while the entity is in
  business: a register lists businesses that are due every year. An entity whose latest
  version is 注销 is forgotten ``dedup_days`` of clock time after the closure took effect; a
  register row for it after that is a new registration;
- per entity, the number of its accepted inspections in the clock's calendar year (any type,
  any outcome), dropped when the year is over (a late inspection of an earlier year is not
  kept: no check of that year is still ahead);
- the next occurrence of each ``checks`` date, in the engine's timer queue.

The register's ids themselves (the duplicate and re-grading check) are the engine's.
"""
from __future__ import annotations

import bisect
import heapq
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator

from ..events import RISK_LEVELS, Inspection, RegisterRow
from ..params import NonNegInt, RuleParams, RuleSpec, exact
from ..timeutil import at_local, local_midnight
from .base import Context, Family, entity_key

Fraction01 = Annotated[float, Field(gt=0, le=1)]
_MM_DD = re.compile(r"(\d{2})-(\d{2})")
DEFAULT_PER_YEAR = {"A": 1, "B": 2, "C": 3, "D": 4}
DEFAULT_CHECKS = {"07-01": 0.5, "12-01": 1.0}


def check_date(mm_dd: str, year: int) -> date:
    """The date of a ``checks`` key (``MM-DD``) in ``year``; ValueError when it is none."""
    m = _MM_DD.fullmatch(mm_dd)
    if m is None:
        raise ValueError(mm_dd)
    return date(year, int(m[1]), int(m[2]))


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

EntityKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Version:
    """One register row as the rule needs it; ``seq`` orders rows of one time (the one
    accepted last wins)."""

    at: datetime
    seq: int
    row_id: str
    entity: str
    entity_id: str | None
    entity_type: str
    risk_level: str
    closed: bool

    @property
    def order(self) -> tuple[datetime, int]:
        return self.at, self.seq


@dataclass(slots=True)
class Registered:
    """An entity of the register: when it was first registered, and its versions in
    (event time, acceptance) order."""

    first: datetime
    versions: list[Version]

    def add(self, v: Version) -> None:
        self.first = min(self.first, v.at)
        bisect.insort(self.versions, v, key=lambda x: x.order)

    def state_at(self, t: datetime) -> Version | None:
        """The version in force at ``t`` (the latest dated at or before it), or None. The
        clock never goes back, so the versions it supersedes are dropped."""
        versions = self.versions
        i = bisect.bisect_right(versions, t, key=lambda x: x.at)
        if i == 0:
            return None
        del versions[:i - 1]
        return versions[0]


class Register(Family):
    name = "register"
    RULES = (FREQUENCY,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p = ctx.params(FREQUENCY.id)
        self.enabled = p.enabled
        self.per_year: dict[str, int] = dict(p.per_year)
        self.fractions: dict[str, Fraction] = {k: exact(v) for k, v in p.checks.items()}
        self.entities: dict[str, dict[EntityKey, Registered]] = {}
        self.done: dict[int, dict[EntityKey, int]] = {}   # year -> entity -> inspections
        self.closing: list[tuple[datetime, int, str, EntityKey]] = []  # heap: when a closure took effect
        self.seq = 0

    def handlers(self) -> dict[str, Any]:
        if not self.enabled:
            return {}
        return {"entity": self.on_register, "inspection": self.on_inspection}

    def start(self, now: datetime) -> None:
        if not self.enabled:
            return
        for mm_dd in self.fractions:
            year = now.year
            if self._when(mm_dd, year) < now:
                year += 1
            self.ctx.schedule(self._when(mm_dd, year), self._check, (FREQUENCY.id, mm_dd, year))

    def _when(self, mm_dd: str, year: int) -> datetime:
        return at_local(check_date(mm_dd, year), 9, self.ctx.tz)

    def on_register(self, ev: RegisterRow, now: datetime) -> None:
        v = Version(ev.time, self.seq, ev.id, ev.entity, ev.entity_id, ev.entity_type, ev.risk_level, ev.closed)
        self.seq += 1
        key = entity_key(ev)
        town = self.entities.setdefault(ev.township, {})
        entity = town.get(key)
        if entity is None:
            town[key] = entity = Registered(v.at, [v])
        else:
            entity.add(v)
        entity.state_at(now)
        if v.closed:
            heapq.heappush(self.closing, (max(v.at, now), v.seq, ev.township, key))

    def on_inspection(self, ev: Inspection, now: datetime) -> None:
        year = ev.time.year
        if year < now.year:
            return
        counts = self.done.get(year)
        if counts is None:
            counts = self.done[year] = {}
            for old in [y for y in self.done if y < now.year]:
                del self.done[old]
        key = entity_key(ev)
        counts[key] = counts.get(key, 0) + 1

    def forget(self, horizon: datetime) -> None:
        """Entities closed before ``horizon`` and not registered again since."""
        while self.closing and self.closing[0][0] < horizon:
            _, seq, township, key = heapq.heappop(self.closing)
            entity = self.entities.get(township, {}).get(key)
            if entity is not None and entity.versions[-1].seq == seq:
                del self.entities[township][key]

    def _check(self, at: datetime, arg: tuple[str, str, int]) -> None:
        _, mm_dd, year = arg
        self.ctx.schedule(self._when(mm_dd, year + 1), self._check, (FREQUENCY.id, mm_dd, year + 1))
        for old in [y for y in self.done if y < year]:
            del self.done[old]
        new_year = local_midnight(date(year, 1, 1), self.ctx.tz)
        fraction, counts = self.fractions[mm_dd], self.done.get(year, {})
        for township in self.ctx.townships:
            for key, entity in self.entities.get(township, {}).items():
                if entity.first >= new_year:
                    continue  # first registered during the year: not checked in it
                v = entity.state_at(at)
                if v is None or v.closed:
                    continue
                required = math.ceil(fraction * self.per_year[v.risk_level])
                done = counts.get(key, 0)
                if done < required:
                    self._emit(at, township, v, year, required, done)

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
