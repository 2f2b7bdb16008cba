"""The engine's deadlines: what fires when, in time order, and in the order set at one time.

Deadlines are kept for months (a disposal's 90 days, a notice's acknowledgement) and there
are several per unqualified sample, so they are kept by time: a heap of the distinct times,
and per time its deadlines — one as a (fire, arg) pair, several in one flat list
``[fire, arg, fire, arg, …]``. A live service sets many deadlines at the same second (the
events of a second share their clock), each then two list slots instead of a heap entry of
its own (a 4-tuple and a sequence number, about 110 bytes); a lone deadline costs about what
it did.

The order is the one a heap of (time, sequence, fire, arg) gives: by time, then in the
order set — also for a deadline set at a time whose deadlines are firing (it fires after
them, as its sequence number was higher).
"""
from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any, Callable, Iterator, Sequence

Fire = Callable[[datetime, Any], None]


class Timers:
    __slots__ = ("_times", "_due")

    def __init__(self) -> None:
        self._times: list[datetime] = []                # a heap; each time once
        self._due: dict[datetime, Any] = {}             # time → (fire, arg), or [fire, arg, fire, arg, …]

    def add(self, at: datetime, fire: Fire, arg: Any) -> None:
        slot = self._due.get(at)
        if slot is None:
            self._due[at] = (fire, arg)
            heapq.heappush(self._times, at)
        elif type(slot) is tuple:
            self._due[at] = [*slot, fire, arg]
        else:
            slot += (fire, arg)

    def __bool__(self) -> bool:
        return bool(self._times)

    def __len__(self) -> int:
        return sum(len(slot) for slot in self._due.values()) // 2

    def first(self) -> datetime:
        """The earliest time with a deadline (there must be one)."""
        return self._times[0]

    def take_first(self) -> tuple[datetime, Sequence[Any]]:
        """The earliest time and its deadlines ``(fire, arg, …)`` in the order set, out of the
        queue (a deadline set at that time from now on comes after them)."""
        return (at := heapq.heappop(self._times)), self._due.pop(at)

    def fire_through(self, to: datetime, at_time: Callable[[datetime], None]) -> None:
        """Fire every deadline at or before ``to``, ``at_time(at)`` before each (the clock)."""
        while self._times and self._times[0] <= to:
            self._fire(*self.take_first(), at_time)

    def _fire(self, at: datetime, due: Sequence[Any], at_time: Callable[[datetime], None]) -> None:
        """The deadlines of one time in the order set, as a heap of them would fire them:
        those not fired go back when one raises, or when one sets a deadline before ``at``
        (that one fires first)."""
        for i in range(0, len(due), 2):
            at_time(at)
            try:
                due[i](at, due[i + 1])
            except BaseException:
                self.put_back(at, due[i + 2:])
                raise
            if self._times and self._times[0] < at:
                self.put_back(at, due[i + 2:])
                return

    def pop(self) -> tuple[datetime, Fire, Any]:
        """The first deadline alone, out of the queue (one at a time: ``check-config``'s list)."""
        at, due = self.take_first()
        self.put_back(at, due[2:])
        return at, due[0], due[1]

    def put_back(self, at: datetime, rest: Sequence[Any]) -> None:
        """Deadlines :meth:`take_first` gave that did not fire (one raised): first again at
        ``at``, before any set there since."""
        if not rest:
            return
        since = self._due.pop(at, None)
        if since is None:
            heapq.heappush(self._times, at)
        self._due[at] = [*rest, *(since or ())]

    def entries(self) -> Iterator[tuple[datetime, Fire, Any]]:
        """Every deadline (time, fire, arg), in firing order (for labels and tests)."""
        for at in sorted(self._times):
            slot = self._due[at]
            for i in range(0, len(slot), 2):
                yield at, slot[i], slot[i + 1]

    def soonest(self, count: int) -> list[tuple[datetime, Fire, Any]]:
        """The first ``count`` of :meth:`entries`, without walking the rest."""
        out: list[tuple[datetime, Fire, Any]] = []
        for at in heapq.nsmallest(count, self._times):
            slot = self._due[at]
            out += [(at, slot[i], slot[i + 1]) for i in range(0, len(slot), 2)]
            if len(out) >= count:
                break
        return out[:count]

    @classmethod
    def from_heap(cls, heap: list[tuple[datetime, int, Fire, Any]]) -> "Timers":
        """The deadlines of a snapshot that kept a heap of (time, sequence, fire, arg)."""
        timers = cls()
        for at, _, fire, arg in sorted(heap, key=lambda t: (t[0], t[1])):
            timers.add(at, fire, arg)
        return timers

    def __getstate__(self) -> tuple[list[datetime], dict[datetime, Any]]:
        return self._times, self._due

    def __setstate__(self, state: tuple[list[datetime], dict[datetime, Any]]) -> None:
        self._times, self._due = state
