"""Unqualified samples and their disposal (核查处置): due date and status.

Kept: per month of event time, the unqualified samples (with their due), forgotten once the
month's end is more than ``dedup_days`` behind the clock; per (township, sample id) the
earliest disposal naming it, forgotten like the Samples rule forgot it before: in arrival
order, once the latest disposal of that sample is more than ``dedup_days`` old.
"""
from __future__ import annotations

import sys

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Iterable

from ..events import Disposal, SamplingResult
from ..notice import notice_id
from ..timeutil import add_days
from .common import months_in, period_bounds

#: disposed (before the due), disposed_late, overdue (due passed, none), open
DISPOSAL_STATUSES = ("disposed", "disposed_late", "overdue", "open")


@dataclass(frozen=True)
class DisposalRow:
    township: str
    sample_id: str
    entity: str
    program: str
    category: str
    food: str | None
    reported_at: datetime            # the sample's event time
    due: datetime
    banned: bool
    disposal_id: str | None
    disposed_at: datetime | None
    measures: tuple[str, ...]
    status: str                      # one of DISPOSAL_STATUSES
    notice_id: str                   # the sample.unqualified / banned_substance notice

    @property
    def overdue(self) -> bool:
        return self.status in ("overdue", "disposed_late")


def disposal_due(sample_time: datetime, disposal_days: int) -> datetime:
    """The sample's event time plus ``disposal_days`` (local days); a disposal at or after it
    is late, and ``sample.disposal_overdue`` fires at it when none has come."""
    return add_days(sample_time, disposal_days)


def disposal_status(disposed_at: datetime | None, due: datetime, now: datetime) -> str:
    if disposed_at is not None:
        return "disposed" if disposed_at < due else "disposed_late"
    return "overdue" if now >= due else "open"


@dataclass(frozen=True, slots=True)
class Unqualified:
    """What the disposal page shows of an unqualified sample (not the whole event)."""
    entity: str
    program: str
    category: str
    food: str | None
    time: datetime
    due: datetime
    banned: bool


@dataclass(slots=True)
class Disposed:
    last_time: datetime              # of the disposal taken last: when the entry is forgotten
    first: Disposal                  # the earliest one (by disposed_at): the one shown


class DisposalTally:
    def __init__(self, disposal_days: int) -> None:
        self._days = disposal_days
        self.samples: dict[tuple[int, int], dict[tuple[str, str], Unqualified]] = {}
        self.disposals: dict[tuple[str, str], Disposed] = {}

    def take_sample(self, ev: SamplingResult, banned: bool) -> datetime:
        """An unqualified sample; returns its due."""
        t = ev.time
        due = disposal_due(t, self._days)
        month = self.samples.get(ym := (t.year, t.month))
        if month is None:
            month = self.samples[ym] = {}
        key = (ev.township, ev.id)
        if key not in month:
            food = ev.food and sys.intern(ev.food)  # the texts interned, as they are kept (see events.SHARED)
            month[key] = Unqualified(sys.intern(ev.entity), ev.program, sys.intern(ev.category), food, t, due, banned)
        return due

    def take_disposal(self, ev: Disposal) -> None:
        key = (ev.township, ev.sample_id)
        seen = self.disposals.get(key)
        if seen is None:
            self.disposals[key] = Disposed(ev.time, ev)
        else:
            seen.last_time = ev.time
            if ev.disposed_at < seen.first.disposed_at:
                seen.first = ev

    def disposed(self, township: str, sample_id: str) -> bool:
        """Whether a disposal names the sample (the Samples rule's question at the due)."""
        return (township, sample_id) in self.disposals

    def forget(self, horizon: datetime, tz: tzinfo) -> None:
        disposals = self.disposals
        while disposals:                 # in arrival order: see shian.rules.families.base.drop_oldest
            key = next(iter(disposals))
            if disposals[key].last_time >= horizon:
                break
            del disposals[key]
        for ym in list(self.samples):
            if period_bounds(f"{ym[0]:04d}-{ym[1]:02d}", tz)[1] < horizon:
                del self.samples[ym]

    def rows(self, townships: Iterable[str], period: str, now: datetime) -> list[DisposalRow]:
        """The unqualified samples of ``period`` (all programs: rapid tests raise the disposal
        deadline too) and the earliest disposal naming each."""
        order = {tw: i for i, tw in enumerate(townships)}
        rows = []
        for ym in months_in(period):
            for (tw, sid), u in self.samples.get(ym, {}).items():
                seen = self.disposals.get((tw, sid))
                d = seen.first if seen is not None else None
                rule = "sample.banned_substance" if u.banned else "sample.unqualified"
                rows.append(DisposalRow(
                    tw, sid, u.entity, u.program, u.category, u.food, u.time, u.due, u.banned,
                    d.id if d else None, d.disposed_at if d else None, tuple(d.measures or ()) if d else (),
                    disposal_status(d.disposed_at if d else None, u.due, now), notice_id(f"{rule}|{tw}|{sid}")))
        rows.sort(key=lambda r: (order.get(r.township, len(order)), r.reported_at, r.sample_id))
        return rows
