"""Health certificates (健康证) of the staff of inspected entities, per township and month.

Kept: per month of event time and township, per entity (as :func:`entity_key` tells them
apart), its latest inspection that gives both staff figures (time, staff, certified, name);
a month is forgotten once its end is more than ``dedup_days`` behind the clock. The
Inspections rule judges each inspection on its own with the same :func:`below_target`.
"""
from __future__ import annotations

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


def entity_key(ev: Inspection) -> tuple[str, str, str]:
    """An entity within its township: by ``entity_id``, else by ``entity`` (never mixed)."""
    if ev.entity_id:
        return (ev.township, "id", ev.entity_id)
    return (ev.township, "name", ev.entity)


#: (time, staff, certified, entity name) of an entity's latest inspection in the month
Seen = tuple[datetime, int, int, str]


class HealthTally:
    def __init__(self) -> None:
        #: month → township → entity (its key without the township) → its latest inspection
        self.months: dict[tuple[int, int], dict[str, dict[tuple[str, str], Seen]]] = {}

    def take(self, ev: Inspection) -> None:
        """An inspection that gives both figures (``staff_total`` above 0); the latest counts,
        and of two at the same time the one taken last."""
        t = ev.time
        month = self.months.get(ym := (t.year, t.month))
        if month is None:
            month = self.months[ym] = {}
        town = month.get(ev.township)
        if town is None:
            town = month[ev.township] = {}
        key = entity_key(ev)[1:]
        prev = town.get(key)
        if prev is None or t >= prev[0]:
            town[key] = (t, ev.staff_total, ev.staff_with_health_cert, ev.entity)  # type: ignore[assignment]

    def forget(self, horizon: datetime, tz: tzinfo) -> None:
        for ym in list(self.months):
            if period_bounds(f"{ym[0]:04d}-{ym[1]:02d}", tz)[1] < horizon:
                del self.months[ym]

    def rows(self, townships: Iterable[str], period: str, target: float, exact_target: Fraction) -> list[HealthRow]:
        """Per township for ``period`` (a month, or a year: each entity's latest over its months)."""
        rows = []
        for tw in townships:
            latest: dict[tuple[str, str], Seen] = {}
            for ym in months_in(period):
                latest.update(self.months.get(ym, {}).get(tw, {}))
            mine = list(latest.values())
            staff = sum(e[1] for e in mine)
            certified = sum(e[2] for e in mine)
            low = tuple(e[3] for e in mine if below_target(e[2], e[1], exact_target))
            rows.append(HealthRow(tw, period, len(mine), certified, staff, certified / staff if staff else None,
                                  target, below_target(certified, staff, exact_target), low))
        return rows
