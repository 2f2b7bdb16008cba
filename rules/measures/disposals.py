"""Unqualified samples and their disposal (核查处置): due date and status.

Kept: per month of event time and township, the unqualified samples (their due is made again
from the event time), forgotten once the month's end is more than ``dedup_days`` behind the
clock; per (township, sample id) the
earliest disposal naming it, forgotten like the Samples rule forgot it before: in arrival
order, once the latest disposal of that sample is more than ``dedup_days`` old.
"""
from __future__ import annotations

import sys

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Iterable

from ..events import Disposal, SamplingResult
from ..notice import notice_id
from ..timeutil import add_days, from_wall_stamp, wall_stamp
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


#: what an unqualified sample shares with the other samples of its entity (one copy each):
#: entity, program, category, food
What = tuple[str, str, str, "str | None"]


class Unqualified:
    """What the disposal page shows of an unqualified sample (not the whole event): its
    :data:`What` (shared), and in one number its event time with its fold (:func:`wall_stamp`)
    and whether a banned substance was found; its due is :func:`disposal_due` of the
    time, made again when asked. Kept per sample for months, so two slots (a datetime more
    and its pickled copy at every snapshot, by the ten thousand, before). Immutable by
    convention."""

    __slots__ = ("what", "stamp")

    def __init__(self, what: What, time: datetime, banned: bool) -> None:
        self.what, self.stamp = what, wall_stamp(time) << 1 | banned

    @property
    def banned(self) -> bool:
        return bool(self.stamp & 1)

    def time(self, tz: tzinfo) -> datetime:
        """The event time, in the engine's zone ``tz``."""
        return from_wall_stamp(self.stamp >> 1, tz)

    @property
    def entity(self) -> str:
        return self.what[0]

    @property
    def program(self) -> str:
        return self.what[1]

    @property
    def category(self) -> str:
        return self.what[2]

    @property
    def food(self) -> str | None:
        return self.what[3]

    def __getstate__(self) -> tuple[What, int]:
        return self.what, self.stamp

    def __setstate__(self, state: Any) -> None:
        """Also the layouts of earlier snapshots: (what, time, banned), and before that entity,
        program, category, food, time, due, banned."""
        if len(state) == 7:
            entity, program, category, food, time, _due, banned = state
            state = ((entity, program, category, food), time, banned)
        if len(state) == 3:
            Unqualified.__init__(self, *state)
        else:
            self.what, self.stamp = state


@dataclass(slots=True)
class Disposed:
    last_time: datetime              # of the disposal taken last: when the entry is forgotten
    first: Disposal                  # the earliest one (by disposed_at): the one shown


class DisposalTally:
    def __init__(self, disposal_days: int) -> None:
        self._days = disposal_days
        #: per month, per township, per sample id
        self.samples: dict[tuple[int, int], dict[str, dict[str, Unqualified]]] = {}
        self.disposals: dict[tuple[str, str], Disposed] = {}
        self._whats: dict[What, What] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_whats", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Also the layout of earlier snapshots: per month, per (township, sample id)."""
        self.__dict__.update(state)
        self._whats = {}
        for ym, month in self.samples.items():
            if month and isinstance(next(iter(month)), tuple):
                nested: dict[str, dict[str, Unqualified]] = {}
                for (tw, sid), u in month.items():
                    nested.setdefault(tw, {})[sid] = u
                self.samples[ym] = nested

    def take_sample(self, ev: SamplingResult, banned: bool) -> datetime:
        """An unqualified sample; returns its due."""
        t = ev.time
        month = self.samples.get(ym := (t.year, t.month))
        if month is None:
            month = self.samples[ym] = {}
        town = month.get(ev.township)
        if town is None:
            town = month[ev.township] = {}
        if ev.id not in town:
            food = ev.food and sys.intern(ev.food)  # the texts interned, as they are kept (see events.SHARED)
            what = (sys.intern(ev.entity), ev.program, sys.intern(ev.category), food)
            town[ev.id] = Unqualified(self._whats.setdefault(what, what), t, banned)
        return disposal_due(t, self._days)

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
        self._whats.clear()  # the ones already kept stay shared; only new ones start afresh
        for ym in list(self.samples):
            if period_bounds(f"{ym[0]:04d}-{ym[1]:02d}", tz)[1] < horizon:
                del self.samples[ym]

    def rows(self, townships: Iterable[str], period: str, tz: tzinfo, now: datetime) -> list[DisposalRow]:
        """The unqualified samples of ``period`` (all programs: rapid tests raise the disposal
        deadline too) and the earliest disposal naming each."""
        order = {tw: i for i, tw in enumerate(townships)}
        rows = []
        for ym in months_in(period):
            for tw, sid, u in _each(self.samples.get(ym, {})):
                time = u.time(tz)
                due = disposal_due(time, self._days)
                seen = self.disposals.get((tw, sid))
                d = seen.first if seen is not None else None
                rule = "sample.banned_substance" if u.banned else "sample.unqualified"
                rows.append(DisposalRow(
                    tw, sid, u.entity, u.program, u.category, u.food, time, due, u.banned,
                    d.id if d else None, d.disposed_at if d else None, tuple(d.measures or ()) if d else (),
                    disposal_status(d.disposed_at if d else None, due, now), notice_id(f"{rule}|{tw}|{sid}")))
        rows.sort(key=lambda r: (order.get(r.township, len(order)), r.reported_at, r.sample_id))
        return rows


def _each(month: dict[str, dict[str, Unqualified]]) -> Iterable[tuple[str, str, Unqualified]]:
    for tw, town in month.items():
        for sid, u in town.items():
            yield tw, sid, u
