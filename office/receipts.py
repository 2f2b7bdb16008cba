"""签收 / 办结 per notice and recipient department, from the journal's ``ack`` events.

One index for the API, the dashboard and the ledger. An ack may name its notice by id or by
key (§1), so the index keeps acks under the name they gave and a notice is looked up under
both; 办结 without an earlier 签收 counts as signed for at that time. The index only grows, as
the journal does, so a long-lived reader (the API, the dashboard) adds just the acks
journalled since it last looked (:meth:`Receipts.follow`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Iterable, Mapping

from shian.rules.notice import Notice
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


class Receipts:
    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._acks: dict[str, list[dict[str, Any]]] = {}    # the notice as the ack named it → its acks
        self._seq = 0

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


def receipts(tz: tzinfo, acks: Iterable[Mapping[str, Any]]) -> Receipts:
    """All at once (the ledger)."""
    index = Receipts(tz)
    index.add(acks)
    return index
