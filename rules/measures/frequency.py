"""The register of food businesses (台账) and their inspections per year: what
``inspection.frequency_due`` decides on at each check date, and what the 检查频次 figures show.

One computation for both (:meth:`RegisterTally.check`): at a check time c of year Y, every
entity registered in Y (its earliest register row dated before 1 January Y) whose register state
at c is 在营 needs ``required = ceil(fraction × per_year[risk_level])`` inspections (exactly, via
:class:`~fractions.Fraction`) and has ``done`` = its accepted inspections with event time in
[1 January Y, c); the rule fires for each with ``done < required`` (§6 "Revision 5"), and the
figures add the same entities up per township and risk level.

Kept (bounded; forgotten with the engine's daily ``forget``). The *keep-from* time is the
horizon (the clock minus ``dedup_days``) or 1 January of the clock's previous year, whichever is
earlier, so that last year's figures stay whole:

- per entity (within its township, by ``entity_id`` else name: :func:`entity_key`): the event
  time of its earliest register row, and its register versions — the one in force at the
  keep-from time and every later one. An entity whose latest version is 注销 is forgotten
  ``dedup_days`` of clock time after the closure took effect; a register row for it after that
  is a new registration;
- per year of event time and entity, the times of its accepted inspections (any type, any
  outcome), while the year ends after the keep-from time (an inspection of a year already
  forgotten is not kept: no check of that year is ahead and its figures are gone).
"""
from __future__ import annotations

import bisect
import functools
import heapq
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from fractions import Fraction
from typing import Iterable, Iterator, Mapping

from ..events import RISK_LEVELS, Inspection, RegisterRow
from ..timeutil import at_local, local_midnight
from .common import period_bounds
from .health import entity_key

CHECK_HOUR = 9   # a check date is looked at 09:00 local
_MM_DD = re.compile(r"(\d{2})-(\d{2})")

EntityKey = tuple[str, str, str]


def check_date(mm_dd: str, year: int) -> date:
    """The date of a ``checks`` key (``MM-DD``) in ``year``; ValueError when it is none."""
    m = _MM_DD.fullmatch(mm_dd)
    if m is None:
        raise ValueError(mm_dd)
    return date(year, int(m[1]), int(m[2]))


def check_time(mm_dd: str, year: int, tz: tzinfo) -> datetime:
    """When ``inspection.frequency_due`` looks at a check date: 09:00 local of it."""
    return at_local(check_date(mm_dd, year), CHECK_HOUR, tz)


def required(fraction: Fraction, per_year: int) -> int:
    """``ceil(fraction × per_year)``, exactly: ``fraction`` is the exact value of the configured
    share (:func:`shian.rules.params.exact`: 0.28 × 25 is 7, not 7.000000000000001)."""
    return math.ceil(fraction * per_year)


def latest_check(checks: Mapping[str, Fraction], year: int, at: datetime, tz: tzinfo) -> tuple[str, datetime] | None:
    """The ``checks`` key of ``year`` looked at last by ``at`` (its time ≤ ``at``) and its time;
    None before the year's first check date."""
    passed = [(when, mm_dd) for mm_dd in checks if (when := check_time(mm_dd, year, tz)) <= at]
    if not passed:
        return None
    when, mm_dd = max(passed)
    return mm_dd, when


@functools.lru_cache(maxsize=256)
def year_end(year: int, tz: tzinfo) -> datetime:
    """Local midnight of 1 January after ``year`` (asked per inspection, so remembered)."""
    return local_midnight(date(year + 1, 1, 1), tz)


@dataclass(frozen=True, slots=True)
class Version:
    """One register row as the tally needs it; ``seq`` orders rows of one time (the one
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
        """The version in force at ``t`` (the latest dated at or before it), or None."""
        i = bisect.bisect_right(self.versions, t, key=lambda x: x.at)
        return self.versions[i - 1] if i else None

    def prune(self, t: datetime) -> None:
        """Drop the versions superseded at ``t`` (the clock never goes back past it)."""
        i = bisect.bisect_right(self.versions, t, key=lambda x: x.at)
        if i > 1:
            del self.versions[:i - 1]


@dataclass(frozen=True, slots=True)
class Due:
    """One entity at one check: its register state then, what it needed and what it had."""

    key: EntityKey
    version: Version
    required: int
    done: int

    @property
    def behind(self) -> bool:
        return self.done < self.required


@dataclass(frozen=True)
class FrequencyRow:
    """One township × risk level of the 检查频次 figures for a year, as seen at a time.

    The entities are those registered in the year and in business at the check (before the
    year's first check date: at the time asked), graded as they were then."""

    township: str
    year: int
    risk_level: str
    check_date: date | None      # the year's latest check date passed (None: none yet)
    fraction: Fraction | None    # its share of the year's quota
    per_year: int                # inspections a year one entity of this level needs
    entities: int
    required: int                # Σ ceil(fraction × per_year): the quota by the check (0 before the first)
    done: int                    # their inspections in [1 January, check) (before the first check: to the time asked)
    behind: int                  # entities with done < required: the check's inspection.frequency_due notices
    yearly: int                  # Σ per_year: the full year's quota
    done_to_date: int            # their inspections of the year up to the time asked
    behind_entities: tuple[str, ...]


class RegisterTally:
    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self.entities: dict[str, dict[EntityKey, Registered]] = {}
        self.inspections: dict[int, dict[EntityKey, list[float]]] = {}  # year → entity → sorted POSIX times
        self.closing: list[tuple[datetime, int, str, EntityKey]] = []   # heap: when a closure took effect
        self.keep_from: datetime | None = None
        self.seq = 0

    # -- feeding ----------------------------------------------------------------------------------

    def take_register(self, ev: RegisterRow, now: datetime) -> None:
        """A register row, taken at the clock's time ``now`` (§6)."""
        v = Version(ev.time, self.seq, ev.id, ev.entity, ev.entity_id, ev.entity_type, ev.risk_level, ev.closed)
        self.seq += 1
        key = entity_key(ev)  # type: ignore[arg-type]
        town = self.entities.setdefault(ev.township, {})
        entity = town.get(key)
        if entity is None:
            town[key] = Registered(v.at, [v])
        else:
            entity.add(v)
        if v.closed:
            heapq.heappush(self.closing, (max(v.at, now), v.seq, ev.township, key))

    def take_inspection(self, ev: Inspection, ts: float | None = None) -> None:
        """An inspection; ``ts``: its event time's POSIX time, when the caller has it already."""
        t = ev.time
        year = t.year
        if self.keep_from is not None and year_end(year, self.tz) <= self.keep_from:
            return
        entities = self.inspections.get(year)
        if entities is None:
            entities = self.inspections[year] = {}
        key = entity_key(ev)
        times = entities.get(key)
        if ts is None:
            ts = t.timestamp()
        if times is None:
            entities[key] = [ts]
        elif times[-1] <= ts:
            times.append(ts)
        else:
            bisect.insort(times, ts)

    def forget(self, horizon: datetime, now: datetime) -> None:
        """Daily: closed entities past ``horizon``; versions and years before the keep-from time."""
        while self.closing and self.closing[0][0] < horizon:
            _, seq, township, key = heapq.heappop(self.closing)
            entity = self.entities.get(township, {}).get(key)
            if entity is not None and entity.versions[-1].seq == seq:
                del self.entities[township][key]
        keep_from = self.keep_from = min(horizon, local_midnight(date(now.year - 1, 1, 1), self.tz))
        for year in [y for y in self.inspections if local_midnight(date(y + 1, 1, 1), self.tz) <= keep_from]:
            del self.inspections[year]
        for town in self.entities.values():
            for entity in town.values():
                entity.prune(keep_from)

    # -- what the rule and the figures ask ----------------------------------------------------------

    def check(self, township: str, year: int, at: datetime, fraction: Fraction,
              per_year: Mapping[str, int]) -> Iterator[Due]:
        """Every entity of ``township`` that a check of ``year`` at ``at`` looks at, with what it
        needed by then and what it had: the rule's decision and the figures' cells."""
        new_year = local_midnight(date(year, 1, 1), self.tz)
        cutoff = at.timestamp()
        counts = self.inspections.get(year, {})
        for key, entity in self.entities.get(township, {}).items():
            if entity.first >= new_year:
                continue  # first registered during the year: not checked in it
            v = entity.state_at(at)
            if v is None or v.closed:
                continue
            yield Due(key, v, required(fraction, per_year[v.risk_level]), bisect.bisect_left(counts.get(key, ()), cutoff))

    def rows(self, townships: Iterable[str], period: str, per_year: Mapping[str, int],
             checks: Mapping[str, Fraction], now: datetime) -> list[FrequencyRow]:
        """Per township × risk level, the year of ``period`` (a year, month or day) as seen at
        the end of ``period`` or at ``now`` if earlier: the latest check date passed by then."""
        year = int(period[:4])
        seen = min(now, period_bounds(period, self.tz)[1])
        latest = latest_check(checks, year, seen, self.tz)
        at, fraction = (latest[1], checks[latest[0]]) if latest else (seen, Fraction(0))
        to_date = seen.timestamp()
        counts = self.inspections.get(year, {})
        rows = []
        for township in townships:
            cells: dict[str, list[Due]] = {level: [] for level in RISK_LEVELS}
            for due in self.check(township, year, at, fraction, per_year):
                cells[due.version.risk_level].append(due)
            for level, dues in cells.items():
                behind = [d for d in dues if d.behind]
                so_far = sum(bisect.bisect_right(counts.get(d.key, ()), to_date) for d in dues)
                rows.append(FrequencyRow(
                    township, year, level, latest[1].date() if latest else None, fraction if latest else None,
                    per_year[level], len(dues), sum(d.required for d in dues),
                    sum(d.done for d in dues) if latest else so_far, len(behind), per_year[level] * len(dues),
                    so_far, tuple(d.version.entity for d in behind)))
        return rows
