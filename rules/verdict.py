"""Whether a sample is 不合格, and which of its items are banned-substance hits (§1, §6).

Shared by the sample, repeat-offender and pass-rate rules, so it is judged once per event.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .events import POSITIVE_TEXT, Item, SamplingResult, item_failed


@dataclass(frozen=True, slots=True)
class Verdict:
    unqualified: bool
    banned: tuple[Item, ...]


def substance_pattern(params: Any) -> re.Pattern[str]:
    """One regex for "the item's name contains a listed name" over the whole list."""
    names = [*params.substances, *params.extra_substances]
    if not names:
        return re.compile(r"(?!x)x")
    return re.compile("|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True)))


def _banned_hit(item: Item) -> bool:
    if item.result == "不合格" or item.value == POSITIVE_TEXT:
        return True
    n = item.number
    return n is not None and n > 0


class Judge:
    """Judges samples; remembers which item names are banned substances (names repeat)."""

    def __init__(self, banned: re.Pattern[str]) -> None:
        self._banned = banned
        self._names: dict[str, bool] = {}

    def _is_banned(self, name: str) -> bool:
        hit = self._names.get(name)
        if hit is None:
            if len(self._names) > 50_000:
                self._names.clear()
            hit = self._names[name] = self._banned.search(name) is not None
        return hit

    def __call__(self, sample: SamplingResult) -> Verdict:
        hits = ()
        names = self._names
        for it in sample.items:
            banned = names.get(it.item)
            if banned is None:
                banned = self._is_banned(it.item)
            if banned and _banned_hit(it):
                hits += (it,)
        if hits:
            return Verdict(True, hits)
        conclusion = sample.conclusion
        if conclusion is not None:
            return UNQUALIFIED if conclusion == "不合格" else QUALIFIED
        return UNQUALIFIED if any(map(item_failed, sample.items)) else QUALIFIED


#: the two verdicts without a banned-substance hit (immutable, so shared by every sample)
QUALIFIED = Verdict(False, ())
UNQUALIFIED = Verdict(True, ())
