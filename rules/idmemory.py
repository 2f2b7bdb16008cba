"""The event ids the engine remembers, with their content fingerprints, kept compactly.

A remembered id is a 64-bit key (the id's hash), a 64-bit fingerprint and the day (an ordinal)
it is forgotten after. As Python ints in a dict with a per-day list of keys that was about
115-145 bytes an id; here most ids sit in three sorted parallel arrays — 20 bytes an id — and
only the newest (at most :data:`RECENT` of them) in a dict with per-day lists, as before.

- lookup: the dict, then a binary search (C-level :func:`bisect.bisect_left`) of the keys;
- the dict is merged into the arrays when it holds more than ``RECENT`` ids;
- :meth:`IdMemory.forget_before` forgets the ids of the days before ``day``: at once those in
  the dict, and in the arrays by raising the day below which an entry counts as gone; the
  arrays are filtered when a quarter of their entries are gone.

The ids are the same as with the plain dict: an id added is found until a ``forget_before``
with a later day than its own (whatever the order of the two days when it was added).

:class:`DictIds` keeps the same ids the plain way, for the in-process replay: a lookup there is
one ``dict.get`` where the arrays' binary search and merges cost a few µs per id in Python, much
of replay's time per event; a replay's memory lasts one run.
"""
from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import Counter
from itertools import compress
from typing import Any

#: How many ids wait in the dict before they are merged into the arrays. A merge costs about
#: 1.5 µs per id merged (and a copy of the arrays): with 8192 a merge holds the service's loop
#: for some tens of ms, and the dict's ints stay a small share of the memory.
RECENT = 8192


class IdMemory:
    """Key → fingerprint, each forgotten after its day. ``add`` takes a key not remembered."""

    __slots__ = ("_recent", "_recent_days", "_keys", "_fps", "_days", "_gone_before", "_day_counts", "_gone")

    def __init__(self) -> None:
        self._recent: dict[int, int] = {}
        self._recent_days: dict[int, list[int]] = {}  # day → keys in _recent forgotten after it
        self._keys = array("Q")  # sorted; one live entry per key at most
        self._fps = array("Q")
        self._days = array("i")
        self._gone_before = -1 << 62  # an array entry whose day is below this is forgotten
        self._day_counts: Counter[int] = Counter()  # day → array entries of that day not yet gone
        self._gone = 0  # array entries that are forgotten but still there

    def get(self, key: int) -> int | None:
        """The fingerprint remembered for ``key``, or None."""
        fp = self._recent.get(key)
        if fp is not None:
            return fp
        keys = self._keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key and self._days[i] >= self._gone_before:
            return self._fps[i]
        return None

    def add(self, key: int, fp: int, day: int) -> None:
        """Remember ``key`` (not remembered now) with ``fp`` until a ``forget_before`` a later day."""
        self._recent[key] = fp
        keys = self._recent_days.get(day)
        if keys is None:
            self._recent_days[day] = [key]
        else:
            keys.append(key)
        if len(self._recent) > RECENT:
            self._merge()

    def forget_before(self, day: int) -> None:
        """Forget every id whose day is before ``day``."""
        recent = self._recent
        for d in [d for d in self._recent_days if d < day]:
            for key in self._recent_days.pop(d):
                recent.pop(key, None)
        if day > self._gone_before:
            self._gone_before = day
            counts = self._day_counts
            for d in [d for d in counts if d < day]:
                self._gone += counts.pop(d)
            if self._gone * 4 > len(self._keys):
                self._compact()

    def __len__(self) -> int:
        return len(self._recent) + len(self._keys) - self._gone

    def entries(self) -> list[tuple[int, int, int]]:
        """Every remembered (key, fingerprint, day), in key order (for tests and conversions)."""
        gone = self._gone_before
        out = [(k, f, d) for k, f, d in zip(self._keys, self._fps, self._days) if d >= gone]
        out += [(k, self._recent[k], d) for d, ks in self._recent_days.items() for k in ks]
        return sorted(out)

    @classmethod
    def from_dicts(cls, seen: dict[int, int], expiry: dict[int, list[int]]) -> "IdMemory":
        """The memory of an engine snapshot that kept ``_seen`` (key → fingerprint) and
        ``_seen_expiry`` (day → keys), as engines wrote before this class."""
        memory = cls()
        new = sorted((key, seen[key], day) for day, keys in expiry.items() for key in keys if key in seen)
        memory._keys = array("Q", [k for k, _, _ in new])
        memory._fps = array("Q", [f for _, f, _ in new])
        memory._days = array("i", [d for _, _, d in new])
        memory._day_counts.update(memory._days)
        return memory

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def _compact(self) -> None:
        """Drop the forgotten entries from the arrays."""
        live = array("b", map(self._gone_before.__le__, self._days))
        self._keys = array("Q", compress(self._keys, live))
        self._fps = array("Q", compress(self._fps, live))
        self._days = array("i", compress(self._days, live))
        self._gone = 0

    def _merge(self) -> None:
        """Move the dict's ids into the arrays, except those of days already forgotten in the
        arrays (they stay in the dict until the next ``forget_before``, as they would have)."""
        gone_before, recent = self._gone_before, self._recent
        new: list[tuple[int, int, int]] = []
        kept: dict[int, list[int]] = {}
        for day, ks in self._recent_days.items():
            if day < gone_before:
                kept[day] = ks
            else:
                new += [(k, recent[k], day) for k in ks]
        new.sort()
        self._recent = {k: recent[k] for ks in kept.values() for k in ks}
        self._recent_days = kept
        old_keys, old_fps, old_days = self._keys, self._fps, self._days
        keys, fps, days = array("Q"), array("Q"), array("i")
        n, at = len(old_keys), 0
        for key, fp, day in new:
            i = bisect_left(old_keys, key, at)
            keys += old_keys[at:i]
            fps += old_fps[at:i]
            days += old_days[at:i]
            keys.append(key)
            fps.append(fp)
            days.append(day)
            at = i
            if i < n and old_keys[i] == key:  # the same key, forgotten: the new entry replaces it
                at = i + 1
                self._gone -= 1
        keys += old_keys[at:]
        fps += old_fps[at:]
        days += old_days[at:]
        self._keys, self._fps, self._days = keys, fps, days
        self._day_counts.update(day for _, _, day in new)


class DictIds(dict):
    """The same memory as :class:`IdMemory` as a plain dict (``get`` and ``len`` are the dict's),
    with the keys per day: about 115 bytes an id, and the cheapest lookup."""

    __slots__ = ("_days",)

    def __init__(self) -> None:
        super().__init__()
        self._days: dict[int, list[int]] = {}

    def add(self, key: int, fp: int, day: int) -> None:
        """Remember ``key`` (not remembered now) with ``fp`` until a ``forget_before`` a later day."""
        self[key] = fp
        keys = self._days.get(day)
        if keys is None:
            self._days[day] = [key]
        else:
            keys.append(key)

    def forget_before(self, day: int) -> None:
        """Forget every id whose day is before ``day``."""
        for d in [d for d in self._days if d < day]:
            for key in self._days.pop(d):
                self.pop(key, None)

    def entries(self) -> list[tuple[int, int, int]]:
        """Every remembered (key, fingerprint, day), in key order."""
        return sorted((k, self[k], d) for d, ks in self._days.items() for k in ks if k in self)
