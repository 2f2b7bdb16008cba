"""签收 and 办结 of a notice against ``notice.unresolved``'s deadline: what the notice page shows.

The deadline is :func:`resolve_deadline` of the first 签收 accepted, the one the Acks rule
(:mod:`shian.rules.families.acks`) arms its timer with; both take the same acks, since the engine
feeds this tally only with the acks the rule accepted (§6 "Revision 5": a 办结 without an earlier
签收 counts as both; a 签收 after a 办结 starts nothing; a deadline already behind the clock when
its 签收 is accepted is not watched).

Kept: per notice (by id; an ack naming a notice by its key counts for the key's id) the first
签收 — time, department, the deadline computed then and whether it was still ahead of the clock —
and the first 办结 (time, department); forgotten once both the clock time of the first ack and
the deadline are more than ``dedup_days`` behind the clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from ..calendar import Calendar
from ..events import Ack
from ..notice import Notice, notice_id
from ..timeutil import local_midnight

SIGNED, CLOSED = "签收", "办结"
#: closed (办结 before the deadline), closed_late, overdue (deadline passed, no 办结), open
RESOLUTION_STATUSES = ("closed", "closed_late", "overdue", "open")


def resolve_deadline(signed: datetime, working_days: int, calendar: Calendar) -> datetime:
    """00:00 local of the day after the ``working_days``-th official working day counted from
    the day after the 签收's date (§6: 签收 Friday 2026-06-05, 10 → 2026-06-23T00:00)."""
    last: date = calendar.nth_working_day_after(signed.date(), working_days)
    return _midnight_after(last, signed.tzinfo)


@lru_cache(maxsize=4096)
def _midnight_after(last: date, tz: tzinfo | None) -> datetime:
    """(Memoised: the deadlines that fall on one day are one object, however many notices keep one.)"""
    return local_midnight(last + timedelta(days=1), tz)  # type: ignore[arg-type]


def followed_up(severity: str, rule: str) -> bool:
    """Whether the ``notice.*`` rules follow a notice up: warning or critical, and not one of theirs."""
    return severity in ("warning", "critical") and not rule.startswith("notice.")


def resolution_status(closed_at: datetime | None, deadline: datetime, now: datetime) -> str:
    """A 办结 exactly at the deadline is late (§6: the deadline fires first)."""
    if closed_at is not None:
        return "closed" if closed_at < deadline else "closed_late"
    return "overdue" if now >= deadline else "open"


@dataclass(slots=True)
class Resolution:
    signed_at: datetime
    signed_by: str
    working_days: int
    deadline: datetime
    watched: bool                    # the deadline was ahead of the clock when the 签收 was accepted
    keep_until: datetime             # the later of the clock at the first ack and the deadline
    closed_at: datetime | None = None
    closed_by: str | None = None


@dataclass(frozen=True)
class ResolutionRow:
    """One notice's 签收 / 办结 against its ``notice.unresolved`` deadline."""

    notice_id: str
    signed_at: datetime              # the first 签收 (or the 办结 that came without one)
    signed_by: str
    working_days: int
    deadline: datetime               # 00:00 after last_day: a 办结 must come before it
    last_day: date                   # the working_days-th official working day after the 签收's date
    watched: bool                    # False: the 签收 arrived after its deadline, so no 督办 follows
    closed_at: datetime | None       # the first 办结
    closed_by: str | None
    status: str                      # one of RESOLUTION_STATUSES


class ResolutionTally:
    def __init__(self) -> None:
        self.notices: dict[str, Resolution] = {}

    def take(self, ev: Ack, now: datetime, working_days: int, calendar: Calendar) -> None:
        """An ack the Acks rule accepted, at the clock's time ``now``."""
        named = ev.notice_id
        nid = notice_id(named) if "|" in named else named
        r = self.notices.get(nid)
        if r is None:
            deadline = resolve_deadline(ev.acked_at, working_days, calendar)
            r = self.notices[nid] = Resolution(ev.acked_at, ev.by, working_days, deadline, deadline > now,
                                               max(now, deadline))
        if ev.action == CLOSED and r.closed_at is None:
            r.closed_at, r.closed_by = ev.acked_at, ev.by

    def forget(self, horizon: datetime) -> None:
        """In order of the first ack: a notice acked late is forgotten a little later, never early."""
        notices = self.notices
        while notices:
            nid = next(iter(notices))
            if notices[nid].keep_until >= horizon:
                return
            del notices[nid]

    def rows(self, notice: Notice, enabled: bool, now: datetime) -> list[ResolutionRow]:
        """The notice's row, when ``notice.unresolved`` is on, follows the notice up and it was
        signed for; else none."""
        r = self.notices.get(notice.id)
        if not enabled or r is None or not followed_up(notice.severity, notice.rule):
            return []
        last_day = (r.deadline - timedelta(days=1)).date()
        return [ResolutionRow(notice.id, r.signed_at, r.signed_by, r.working_days, r.deadline, last_day, r.watched,
                              r.closed_at, r.closed_by, resolution_status(r.closed_at, r.deadline, now))]

