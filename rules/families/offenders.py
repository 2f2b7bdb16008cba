"""Repeat offenders: an entity's 2nd (or later) 不合格 sample within ``window_days``.

State: per entity, the event times (:func:`wall_micros`, in an array: 8 bytes each) and ids of
its 不合格 samples (rapid tests excluded), sorted together by (time, id), kept for
``window_days`` + ``dedup_days`` so that late arrivals still find their window (an entity with
none that recent is dropped by ``forget``, at most ``SWEEP_DAYS`` later).
"""
from __future__ import annotations

import bisect
from array import array
from datetime import datetime
from typing import Any

from ..events import SamplingResult
from ..params import Days, RuleParams, RuleSpec
from ..timeutil import add_days, wall_micros
from .base import Context, Family, entity_key
from .samples import sample_facts


SWEEP_DAYS = 30
#: the sample ids a notice lists in its facts (``sample_ids``): the latest ones of its window.
#: ``count`` says how many there are, ``event_ids`` names them all; an entity failing every
#: week would otherwise list its whole year in each notice, its message growing with each one.
LISTED_SAMPLES = 10


class RepeatParams(RuleParams):
    window_days: Days = 365


REPEAT = RuleSpec("entity.repeat_offender", "county", "critical", RepeatParams, "同一主体多次抽检不合格",
                  kind="督办", template="offenders")


class Offenders(Family):
    name = "offenders"
    RULES = (REPEAT,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.window = ctx.params(REPEAT.id).window_days
        self.keep_days = self.window + ctx.dedup_days
        #: per entity: the times (wall_micros) and the ids of its samples, sorted by (time, id)
        self.bad: dict[tuple[str, str, str], tuple[array[int], list[str]]] = {}
        self._next_sweep: datetime | None = None  # forget walks every entity only every SWEEP_DAYS

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Also the layouts of earlier snapshots: per entity a sorted list of (time, id) pairs,
        then two lists (the times as datetimes)."""
        self.__dict__.update(state)
        self.__dict__.setdefault("_next_sweep", None)
        for key, history in self.bad.items():
            if isinstance(history, list):
                history = ([when for when, _ in history], [sid for _, sid in history])
            if not isinstance(history[0], array):
                self.bad[key] = (array("q", map(wall_micros, history[0])), history[1])

    def handlers(self) -> dict[str, Any]:
        return {"sampling_result": self.on_sample}

    def forget(self, horizon: datetime) -> None:
        """What no later sample could count any more (those older than ``window_days`` before
        ``horizon``): a sample at the clock drops them from its entity's history anyway. Every
        ``SWEEP_DAYS`` only (a walk over every entity each day cost replay about a tenth)."""
        if self._next_sweep is not None and horizon < self._next_sweep:
            return
        self._next_sweep = add_days(horizon, SWEEP_DAYS)
        cutoff = wall_micros(add_days(horizon, -self.window))
        for key in [k for k, (times, _) in self.bad.items() if times[-1] < cutoff]:
            del self.bad[key]

    def on_sample(self, ev: SamplingResult, now: datetime) -> None:
        if ev.program == "rapid_test" or not self.ctx.verdict(ev).unqualified:
            return
        t = wall_micros(ev.time)
        history = self.bad.get(key := entity_key(ev))
        if history is None:
            history = self.bad[key] = (array("q"), [])
        times, ids = history
        old = bisect.bisect_left(times, wall_micros(add_days(now, -self.keep_days)))
        if old:
            del times[:old], ids[:old]
        lo, hi = bisect.bisect_left(times, t), bisect.bisect_right(times, t)
        at = bisect.bisect_right(ids, ev.id, lo, hi)  # after the equal (time, id) pairs, as insort
        times.insert(at, t)
        ids.insert(at, ev.id)
        in_window = ids[bisect.bisect_left(times, wall_micros(add_days(ev.time, -self.window))):
                        bisect.bisect_right(times, t)]
        if len(in_window) < 2:
            return
        facts = sample_facts(ev)
        facts.update(count=len(in_window), window_days=self.window, sample_ids=in_window[-LISTED_SAMPLES:])
        self.ctx.emit(
            REPEAT.id, ev.township, ev.id, now,
            f"【督办】{ev.township}{ev.entity}{self.window}日内第{len(in_window)}次抽检不合格，请依法从严查处",
            facts, route=ev.category, event_ids=tuple(in_window),
        )
