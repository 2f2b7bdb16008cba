"""Health certificates (健康证) of the staff of inspected entities, per township and month.

Kept: per month of event time and township, per entity (as :func:`entity_key` tells them
apart), its latest inspection that gives both staff figures (time, staff, certified; the name
while some of its staff lack a certificate); a month is forgotten once its end is more than ``dedup_days`` behind the clock. The
Inspections rule judges each inspection on its own with the same :func:`below_target`.
"""
from __future__ import annotations

import sys

from dataclasses import dataclass
from datetime import datetime, tzinfo
from fractions import Fraction
from typing import Iterable

from ..events import Inspection
from .common import below_target, months_in, period_bounds


@dataclass(frozen=True)
class HealthRow:
    township: str
    period: str
    entities: int                    # inspected entities with staff figures
    certified: int
    staff: int
    rate: float | None
    target: float
    below: bool
    low_entities: tuple[str, ...]    # entities below the target on their own


_COUNT_BITS = 32
_TIME_SHIFT = 2 * _COUNT_BITS
_MASK = (1 << _COUNT_BITS) - 1

#: an inspection as kept: one int (see :func:`pack`), or for counts of 2**32 and more a tuple
Seen = int | tuple[int, int, int]


def pack(t: datetime, staff: int, certified: int, ts: float | None = None) -> Seen:
    """An inspection's time (milliseconds since the epoch), staff and certified staff as one
    int (time in the high bits), the common case; a tuple when a count does not fit 32 bits.
    ``ts``: ``t.timestamp()``, when the caller has it already."""
    ms = round((t.timestamp() if ts is None else ts) * 1000)
    if staff > _MASK or certified > _MASK:
        return (ms, staff, certified)
    return (ms << _TIME_SHIFT) | (staff << _COUNT_BITS) | certified


def unpack(seen: Seen) -> tuple[int, int, int]:
    """(milliseconds, staff, certified) of a kept inspection."""
    if isinstance(seen, tuple):
        return seen
    return seen >> _TIME_SHIFT, (seen >> _COUNT_BITS) & _MASK, seen & _MASK


def entity_key(ev: Inspection) -> tuple[str, str, str]:
    """An entity within its township: by ``entity_id``, else by ``entity`` (never mixed); the
    text interned, as the keys are kept (validation interns an inspection's, not a sample's)."""
    if ev.entity_id:
        return (ev.township, "id", sys.intern(ev.entity_id))
    return (ev.township, "name", sys.intern(ev.entity))


#: an entity within its township: its id, or ``("name", name)`` for one without an id
EntityKey = str | tuple[str, str]


class HealthTally:
    """Kept small, since it is per entity and month: an entity's latest inspection is one int
    (:func:`pack`) under the entity's key, and its name is kept only while some of its staff
    lack a certificate — an entity whose staff all hold one is below no target."""

    def __init__(self) -> None:
        #: month → township → entity → :func:`pack` of its latest inspection
        self.months: dict[tuple[int, int], dict[str, dict[EntityKey, Seen]]] = {}
        #: month → township → entity → name, for the entities some of whose staff lack one
        self.names: dict[tuple[int, int], dict[str, dict[EntityKey, str]]] = {}

    def take(self, ev: Inspection, ts: float | None = None) -> None:
        """An inspection that gives both figures (``staff_total`` above 0); the latest counts,
        and of two at the same time the one taken last. ``ts``: its time's POSIX time, if known."""
        t = ev.time
        ym = (t.year, t.month)
        tw = ev.township
        month = self.months.get(ym)
        if month is None:
            month = self.months[ym] = {}
            self.names[ym] = {}
        town = month.get(tw)
        if town is None:
            town = month[tw] = {}
            self.names[ym][tw] = {}
        key: EntityKey = ev.entity_id or ("name", ev.entity)
        seen = pack(t, ev.staff_total, ev.staff_with_health_cert, ts)  # type: ignore[arg-type]
        prev = town.get(key)
        if prev is not None and unpack(seen)[0] < unpack(prev)[0]:
            return
        town[key] = seen
        if ev.staff_with_health_cert < ev.staff_total:  # type: ignore[operator]
            self.names[ym][tw][key] = ev.entity
        elif prev is not None:  # (no name is kept for an entity seen for the first time)
            self.names[ym][tw].pop(key, None)

    def forget(self, horizon: datetime, tz: tzinfo) -> None:
        for ym in list(self.months):
            if period_bounds(f"{ym[0]:04d}-{ym[1]:02d}", tz)[1] < horizon:
                del self.months[ym]
                self.names.pop(ym, None)

    def rows(self, townships: Iterable[str], period: str, target: float, exact_target: Fraction) -> list[HealthRow]:
        """Per township for ``period`` (a month, or a year: each entity's latest over its months)."""
        rows = []
        for tw in townships:
            latest: dict[EntityKey, tuple[int, int, str]] = {}
            for ym in months_in(period):
                names = self.names.get(ym, {}).get(tw, {})
                for key, seen in self.months.get(ym, {}).get(tw, {}).items():
                    latest[key] = (*unpack(seen)[1:], names.get(key, ""))
            mine = list(latest.values())
            staff = sum(e[0] for e in mine)
            certified = sum(e[1] for e in mine)
            low = tuple(e[2] for e in mine if below_target(e[1], e[0], exact_target))
            rows.append(HealthRow(tw, period, len(mine), certified, staff, certified / staff if staff else None,
                                  target, below_target(certified, staff, exact_target), low))
        return rows
