"""签收 / 办结 per notice and recipient department, from the journal's ``ack`` events.

One index for the API, the dashboard and the ledger. An ack may name its notice by id or by
key (§1), so the index keeps acks under the name they gave and a notice is looked up under
both; 办结 without an earlier 签收 counts as signed for at that time. The index only grows, as
the journal does, so a long-lived reader (the API, the dashboard) adds just the acks
journalled since it last looked (:meth:`Receipts.follow`). The ids of the notices signed for
and of those closed (:meth:`Receipts.acked_ids`, :meth:`Receipts.closed_ids`) are how the
dashboard asks the runtime for notices by state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Iterable, Mapping

from shian.rules.notice import Notice, notice_id
from shian.rules.timeutil import parse_time


@dataclass
class Receipt:
    """One recipient department's acks of one notice."""
    acked_at: datetime | None = None      # the first 签收 or 办结
    closed_at: datetime | None = None     # the first 办结
    notes: list[tuple[datetime, str]] = field(default_factory=list)   # in journal order

    @property
    def state(self) -> str:
        return "closed" if self.closed_at else "acked" if self.acked_at else "open"


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _id_named(name: str) -> str:
    """The id of the notice an ack names: the id itself, or the id of the key it gives (§1)."""
    return notice_id(name) if "|" in name else name


class Receipts:
    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._acks: dict[str, list[dict[str, Any]]] = {}    # the notice as the ack named it → its acks
        self._seq = 0
        self._added = 0
        self._states: tuple[int, frozenset[str], tuple[str, ...]] | None = None

    def add(self, acks: Iterable[Mapping[str, Any]]) -> None:
        for a in acks:
            if a.get("type", "ack") != "ack" or not a.get("notice_id") or not a.get("by") or not a.get("acked_at"):
                continue
            try:
                at = parse_time(a["acked_at"], self.tz)
            except (TypeError, ValueError):
                continue
            self._acks.setdefault(a["notice_id"], []).append(
                {"id": a.get("id"), "by": a["by"], "action": a.get("action") or "签收", "at": at, "note": a.get("note")})
            self._added += 1

    def follow(self, runtime: Any) -> "Receipts":
        """Adds the acks journalled since the last call (``runtime.acks_after``)."""
        self._seq, acks = runtime.acks_after(self._seq)
        self.add(acks)
        return self

    def acks(self, notice: Notice) -> list[dict[str, Any]]:
        """The acks of a notice (named by its id, then those named by its key): id, by,
        action, at, note."""
        out = list(self._acks.get(notice.id, ()))
        if notice.key and notice.key != notice.id:
            out += self._acks.get(notice.key, ())
        return out

    def of(self, notice: Notice, dept: str) -> Receipt:
        r = Receipt()
        for a in self.acks(notice):
            if a["by"] != dept:
                continue
            r.acked_at = _earliest(r.acked_at, a["at"])
            if a["action"] == "办结":
                r.closed_at = _earliest(r.closed_at, a["at"])
            if a["note"]:
                r.notes.append((a["at"], a["note"]))
        return r

    def departments(self, notice: Notice) -> list[str]:
        """The departments that signed for (or closed) the notice, in the order they did."""
        return list(dict.fromkeys(a["by"] for a in self.acks(notice)))

    def closed(self, notice: Notice) -> bool:
        return any(a["action"] == "办结" for a in self.acks(notice))

    def acked_ids(self) -> frozenset[str]:
        """The ids of the notices some recipient signed for or closed."""
        return self._by_state()[1]

    def closed_ids(self) -> tuple[str, ...]:
        """The ids of the notices some recipient closed (办结), the latest closed first."""
        return self._by_state()[2]

    def _by_state(self) -> tuple[int, frozenset[str], tuple[str, ...]]:
        """Both, worked out again only when acks were added since."""
        if self._states is None or self._states[0] != self._added:
            closed: dict[str, datetime] = {}
            for name, acks in self._acks.items():
                for a in acks:
                    nid = _id_named(name)
                    if a["action"] == "办结" and (nid not in closed or a["at"] < closed[nid]):
                        closed[nid] = a["at"]
            order = sorted(closed, key=lambda nid: (closed[nid], nid), reverse=True)
            self._states = (self._added, frozenset(_id_named(name) for name in self._acks), tuple(order))
        return self._states


def receipts(tz: tzinfo, acks: Iterable[Mapping[str, Any]]) -> Receipts:
    """All at once (the ledger)."""
    index = Receipts(tz)
    index.add(acks)
    return index
