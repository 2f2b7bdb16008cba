"""The engine's deadlines kept by time (rules/timers.py) fire exactly as a heap of
(time, sequence, fire, arg) fires them: by time, then in the order set — also those set while
others fire (at the same time, before it, after it) and when one raises; through pickling and
from a snapshot that kept the heap."""
from __future__ import annotations

import heapq
import itertools
import pickle
from datetime import datetime, timedelta
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shian.rules.timers import Timers

T0 = datetime(2026, 12, 3, 9, 0)


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


class HeapTimers:
    """The layout before: one heap entry per deadline."""

    def __init__(self) -> None:
        self.heap: list[tuple[datetime, int, Any, Any]] = []
        self.seq = itertools.count()

    def add(self, when: datetime, fire: Any, arg: Any) -> None:
        heapq.heappush(self.heap, (when, next(self.seq), fire, arg))

    def fire_through(self, to: datetime, at_time: Callable[[datetime], None]) -> None:
        while self.heap and self.heap[0][0] <= to:
            when, _, fire, arg = heapq.heappop(self.heap)
            at_time(when)
            fire(when, arg)

    def entries(self) -> list[tuple[datetime, Any, Any]]:
        return [(w, f, a) for w, _, f, a in sorted(self.heap, key=lambda e: e[:2])]


class Boom(Exception):
    pass


class Driver:
    """Deadlines named by numbers; firing one logs it (with the clock), may raise once, and sets
    the deadlines its plan gives (minutes from its own time, negative ones behind it)."""

    def __init__(self, timers: Any, plan: dict[int, list[int]], raising: set[int]) -> None:
        self.timers, self.plan, self.raising = timers, plan, set(raising)
        self.log: list[tuple[datetime, Any, datetime | None]] = []
        self.clock: datetime | None = None

    def tick(self, when: datetime) -> None:
        self.clock = when

    def fire(self, when: datetime, name: Any) -> None:
        self.log.append((when, name, self.clock))
        if name in self.raising:
            self.raising.discard(name)
            raise Boom(name)
        for k, delta in enumerate(self.plan.get(name, ()) if isinstance(name, int) else ()):
            self.timers.add(when + timedelta(minutes=delta), self.fire, (name, k))

    def run(self, steps: list[tuple[str, int, int]]) -> tuple[list[Any], list[Any]]:
        for op, a, b in steps:
            if op == "add":
                self.timers.add(at(a), self.fire, b)
            else:
                try:
                    self.timers.fire_through(at(a), self.tick)
                except Boom:
                    pass
        return self.log, [(w, a) for w, _, a in self.timers.entries()]


STEPS = st.lists(st.one_of(st.tuples(st.just("add"), st.integers(0, 6), st.integers(0, 20)),
                           st.tuples(st.just("fire"), st.integers(-1, 8), st.just(0))), max_size=40)
PLANS = st.dictionaries(st.integers(0, 20), st.lists(st.integers(-2, 2), max_size=3), max_size=8)


@settings(max_examples=300, deadline=None)
@given(STEPS, PLANS, st.sets(st.integers(0, 20), max_size=3))
def test_deadlines_fire_in_the_order_a_heap_of_them_fires(steps: Any, plan: Any, raising: Any) -> None:
    """Same firings, same clock at each, same deadlines left — whatever is set while firing."""
    assert Driver(Timers(), plan, raising).run(steps) == Driver(HeapTimers(), plan, raising).run(steps)


@pytest.mark.parametrize("plan, raising", [
    ({0: [-1]}, set()),        # the first of a time sets one behind it: that one fires before the second
    ({0: [0]}, set()),         # …at its own time: after the second
    ({0: [1], 1: [-2]}, set()),
    ({}, {0}),                 # the first raises: the second stays and fires at the next call
    ({0: [0]}, {1}),           # the second raises after the first set one at their time
])
def test_deadlines_set_or_failing_while_a_time_fires(plan: dict[int, list[int]], raising: set[int]) -> None:
    """The cases where keeping a time's deadlines together could change the order."""
    steps = [("add", 1, 0), ("add", 1, 1), ("add", 1, 2), ("fire", 5, 0), ("fire", 5, 0)]
    assert Driver(Timers(), plan, raising).run(steps) == Driver(HeapTimers(), plan, raising).run(steps)


@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 9])
def test_the_soonest_deadlines_are_the_first_in_firing_order(count: int) -> None:
    """The 期限 page's list: the first ``count`` deadlines, a time's several in the order set."""
    timers = Timers()
    for minute, name in [(3, "c"), (1, "a"), (3, "d"), (1, "b"), (2, "x"), (9, "z")]:
        timers.add(at(minute), print, name)
    firing = [(w, a) for w, _, a in timers.entries()]
    assert firing == [(at(1), "a"), (at(1), "b"), (at(2), "x"), (at(3), "c"), (at(3), "d"), (at(9), "z")]
    assert [(w, a) for w, _, a in timers.soonest(count)] == firing[:count]
    assert len(timers) == 6


def test_deadlines_survive_pickling_and_a_snapshot_that_kept_the_heap() -> None:
    """A snapshot (pickle) holds them in order; one of format /4 (a heap list) converts."""
    heap = HeapTimers()
    for minute, name in [(3, "c"), (1, "a"), (3, "d"), (1, "b")]:
        heap.add(at(minute), print, name)
    converted = Timers.from_heap(list(heap.heap))
    again = pickle.loads(pickle.dumps(converted, protocol=pickle.HIGHEST_PROTOCOL))
    assert [(w, a) for w, _, a in again.entries()] == [(w, a) for w, _, a in heap.entries()]


def test_one_time_shares_one_entry() -> None:
    """Deadlines set at one time cost two list slots each, not an entry of their own."""
    timers = Timers()
    for i in range(100):
        timers.add(at(1), print, i)
    assert len(timers._times) == 1 and len(timers._due[at(1)]) == 200
