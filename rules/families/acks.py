"""Acknowledgements (签收 / 办结) and the opt-in escalations ``notice.unacknowledged`` (nobody
signed for a notice in time) and ``notice.unresolved`` (it was signed for, but nobody closed it
within ``working_days`` official working days).

State, all bounded:
- every notice issued (id → township, recipients, level, severity, rule, time, and the title
  when ``notice.unresolved`` is on), so that an ack can be checked against it, and per notice
  the furthest ack accepted (签收 or 办结); both kept for ``dedup_days`` of clock time;
- the notices signed for and not yet closed whose ``notice.unresolved`` deadline is ahead
  (id → the notice, the 签收): each until its deadline fires or a 办结 closes it, at most
  ``working_days`` official working days after its 签收 (an ack naming such a notice is still
  checked against it, even if the issued list has already forgotten it).

The deadline is :func:`shian.rules.measures.resolve_deadline` of the first 签收; the measures'
resolution tally, fed with the acks this family accepted, keeps it for the notice page.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field

from ..calendar import Calendar
from ..events import Ack, Rejected
from ..measures import followed_up, resolve_deadline
from ..notice import Notice, notice_id
from ..params import MAX_HOURS, RuleParams, RuleSpec, WorkingDays
from ..timeutil import from_wall_stamp, local_midnight, wall_micros, wall_stamp
from .base import Context, Family

Hours = Annotated[float, Field(gt=0, le=MAX_HOURS, allow_inf_nan=False)] | None  # null: off for that severity
SIGNED, CLOSED = "签收", "办结"
ONE_DAY = timedelta(days=1)
ZERO = timedelta(0)


class UnackParams(RuleParams):
    enabled: bool = False
    hours: dict[str, Hours] = {"critical": 24, "warning": 72}

    def model_post_init(self, _: Any) -> None:
        unknown = set(self.hours) - {"critical", "warning"}
        if unknown:
            raise ValueError(f"hours 只接受 critical 和 warning，不认识：{', '.join(sorted(unknown))}")


class UnresolvedParams(RuleParams):
    enabled: bool = False
    working_days: WorkingDays = 10


UNACK = RuleSpec("notice.unacknowledged", "county", "warning", UnackParams, "通知超时未签收",
                 kind="督办", template="acks")
UNRESOLVED = RuleSpec("notice.unresolved", "county", "warning", UnresolvedParams, "通知签收后逾期未办结",
                      kind="督办", template="unresolved")


#: what a notice shares with the other notices of its rule, township and recipients (one copy
#: each, see :meth:`Acks.kind`): township, recipients, level, severity, rule
Kind = tuple[str, tuple[str, ...], str, str, str]


#: the head of an :class:`Issued`'s packed bytes: the id (its 16 hex digits as a number) and
#: the time (:func:`wall_stamp`)
_HEAD = struct.Struct("<Qq")
_ID = re.compile(r"[0-9a-f]{16}")


def id_number(notice: str) -> int | None:
    """The number of a notice id (16 lowercase hex digits, as :func:`notice_id` makes them):
    the key of the kept notices; None for anything else (a key, a typo)."""
    return int(notice, 16) if _ID.fullmatch(notice) else None


class Issued:
    """A notice as the Acks rule keeps it: its :data:`Kind` (shared) and, packed in one bytes
    object, its id, time and title (empty when no 督办 of this rule would name it). Kept for
    ``dedup_days`` per notice, so small: two slots, the title in UTF-16 (about 130 bytes a
    notice less than a str id, a datetime and a str title). Immutable by convention."""

    __slots__ = ("kind", "packed")

    def __init__(self, id: str, kind: Kind, title: str, at: datetime) -> None:
        self.kind = kind
        self.packed = _HEAD.pack(int(id, 16), wall_stamp(at)) + title.encode("utf-16-le")

    @property
    def number(self) -> int:
        """The id as a number (:func:`id_number`): the key it is kept under."""
        return _HEAD.unpack_from(self.packed)[0]

    @property
    def id(self) -> str:
        return f"{self.number:016x}"

    @property
    def title(self) -> str:
        return self.packed[_HEAD.size:].decode("utf-16-le")

    @property
    def wall(self) -> int:
        """Its time as :func:`wall_micros` gives it (compared with the engine's times so)."""
        return _HEAD.unpack_from(self.packed)[1] >> 1

    def at(self, tz: tzinfo) -> datetime:
        return from_wall_stamp(_HEAD.unpack_from(self.packed)[1], tz)

    @property
    def township(self) -> str:
        return self.kind[0]

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.kind[1]

    @property
    def level(self) -> str:
        return self.kind[2]

    @property
    def severity(self) -> str:
        return self.kind[3]

    @property
    def rule(self) -> str:
        return self.kind[4]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Issued):
            return NotImplemented
        return (self.kind, self.packed) == (other.kind, other.packed)

    def __hash__(self) -> int:
        return hash((self.kind, self.packed))

    def __getstate__(self) -> tuple[Any, ...]:
        return self.kind, self.packed

    def __setstate__(self, state: Any) -> None:
        """Also the layouts of earlier snapshots: (id, kind, title, at), and before that the
        eight fields id, township, recipients, level, severity, rule, title, at."""
        if len(state) == 8:
            id, township, recipients, level, severity, rule, title, at = state
            state = (id, (township, tuple(recipients), level, severity, rule), title, at)
        if len(state) == 4:
            Issued.__init__(self, *state)
        else:
            self.kind, self.packed = state


@dataclass(frozen=True, slots=True)
class Signed:
    """A notice signed for (its first 签收, by whom and when) and not closed yet."""
    ref: Issued
    by: str
    at: datetime


def working_deadline(start: datetime, hours: float, calendar: Calendar) -> datetime:
    """``hours`` of time on official working days after ``start`` (weekends, holidays skipped,
    调休 workdays counted): what is left of ``start``'s day if it is a working day, then whole
    working days (24 hours of wall-clock time each)."""
    left = timedelta(hours=hours)
    day, tz = start.date(), start.tzinfo
    working, midnight = _day(calendar, day, tz)
    if working:
        span = midnight - start
        if left <= span:
            return start + left
        left -= span
    whole, rest = divmod(left, ONE_DAY)
    days = max(1, whole + (rest > ZERO))  # the deadline falls on the days-th working day after ``day``
    return _working_midnight(calendar, day, days, tz) + (left - ONE_DAY * (days - 1))


@lru_cache(maxsize=1024)
def _day(calendar: Calendar, day: date, tz: tzinfo | None) -> tuple[bool, datetime]:
    """Whether ``day`` is a working day, and the local midnight ending it (asked per notice)."""
    return calendar.is_working_day(day), local_midnight(day + ONE_DAY, tz)  # type: ignore[arg-type]


@lru_cache(maxsize=4096)
def _working_midnight(calendar: Calendar, day: date, n: int, tz: tzinfo | None) -> datetime:
    """Local midnight starting the ``n``-th working day after ``day``."""
    return local_midnight(calendar.nth_working_day_after(day, n), tz)  # type: ignore[arg-type]


def escalated(issued: Issued) -> bool:
    """Whether the ``notice.*`` rules follow a notice up: warning or critical, and not one of theirs."""
    return followed_up(issued.severity, issued.rule)


class Acks(Family):
    name = "acks"
    RULES = (UNACK, UNRESOLVED)
    DEADLINE_RULE = {"_check": UNACK.id, "_unresolved": UNRESOLVED.id}

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p = ctx.params(UNACK.id)
        self.enabled = p.enabled
        self.hours = p.hours
        q = ctx.params(UNRESOLVED.id)
        self.resolve_on, self.working_days = q.enabled, q.working_days
        self.issued: dict[int, Issued] = {}  # by id_number
        self.acked: dict[str, str] = {}  # notice id → the furthest ack accepted: 签收 or 办结
        self.signed: dict[str, Signed] = {}  # signed for, not closed, deadline ahead
        self._wire()

    def _wire(self) -> None:
        """What the kept notices share and a snapshot does not keep: one bound method per kind
        of deadline (not one per deadline), one :data:`Kind` per rule, township and recipients."""
        self._fire_check, self._fire_unresolved = self._check, self._unresolved
        self._kinds: dict[Kind, Kind] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for wiring in ("_fire_check", "_fire_unresolved", "_kinds"):
            state.pop(wiring, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Also the layout of earlier snapshots: the kept notices by their id's text."""
        self.__dict__.update(state)
        if self.issued and isinstance(next(iter(self.issued)), str):
            self.issued = {ref.number: ref for ref in self.issued.values()}
        self._wire()

    def handlers(self) -> dict[str, Any]:
        return {"ack": self.on_ack}

    def on_notice(self, n: Notice) -> None:
        # kept for dedup_days: the title only for notice.unresolved's 督办, which names it (the
        # notice.unacknowledged deadline below holds a whole reference until it fires)
        kind = (n.township, n.recipients, n.level, n.severity, n.rule)
        kind = self._kinds.setdefault(kind, kind)
        follow = followed_up(n.severity, n.rule)
        kept = Issued(n.id, kind, n.title if self.resolve_on and follow else "", n.at)
        self.issued[kept.number] = kept
        hours = self.hours.get(n.severity)
        if not self.enabled or not follow or hours is None:
            return
        ref = kept if self.resolve_on else Issued(n.id, kind, n.title, n.at)
        due = (n.at + timedelta(hours=hours) if n.severity == "critical"
               else working_deadline(n.at, hours, self.ctx.calendar))
        self.ctx.schedule(due, self._fire_check, ref)

    def on_ack(self, ev: Ack, now: datetime) -> None:
        ref = self._find(ev.notice_id)
        if ref is None or ref.township != ev.township or ref.wall > wall_micros(ev.acked_at):
            raise Rejected(f"签收的通知“{ev.notice_id}”在{ev.township}不存在（截至 {ev.acked_at:%Y-%m-%d %H:%M} 未发出该通知）")
        if ev.by not in ref.recipients:
            raise Rejected(f"部门“{ev.by}”不是通知 {ref.id} 的接收部门（{', '.join(ref.recipients)}），不能签收")
        before = self.acked.get(ref.id)
        if ev.action == CLOSED:
            self.acked[ref.id] = CLOSED
            self.signed.pop(ref.id, None)
        elif before is None:
            self.acked[ref.id] = SIGNED
            self._start_unresolved(ref, ev, now)

    def _find(self, named: str) -> Issued | None:
        """The notice an ack names, by id or key (one signed for is found even once forgotten)."""
        ref = self._by_id(named)
        return ref if ref is not None else self._by_id(notice_id(named))

    def _by_id(self, notice: str) -> Issued | None:
        number = id_number(notice)
        ref = None if number is None else self.issued.get(number)
        if ref is None and notice in self.signed:
            return self.signed[notice].ref
        return ref

    def _start_unresolved(self, ref: Issued, ev: Ack, now: datetime) -> None:
        """The first 签收 starts the clock; a deadline already behind the clock never fires."""
        if not self.resolve_on or not escalated(ref):
            return
        deadline = resolve_deadline(ev.acked_at, self.working_days, self.ctx.calendar)
        if deadline > now:
            self.signed[ref.id] = Signed(ref, ev.by, ev.acked_at)
            self.ctx.schedule(deadline, self._fire_unresolved, ref.id)

    def forget(self, horizon: datetime) -> None:
        before = wall_micros(horizon)
        while self.issued:
            oldest = next(iter(self.issued.values()))
            if oldest.wall >= before:
                break
            del self.issued[oldest.number]
            if (notice := oldest.id) not in self.signed:
                self.acked.pop(notice, None)

    def _recipients(self, ref: Issued) -> tuple[str, ...]:
        """The county's escalation departments for a county-level notice, else county and town office."""
        offices = self.ctx.offices(ref.township)
        if ref.level == "county":
            return offices.escalation or (offices.county,)
        return tuple(dict.fromkeys((offices.county, offices.town)))

    def _check(self, at: datetime, ref: Issued) -> None:
        if ref.id in self.acked:
            return
        hours = self.hours[ref.severity]
        self.ctx.emit(
            UNACK.id, ref.township, ref.id, at,
            f"【督办】通知“{ref.title}”发出{hours:g}小时仍无人签收",
            {"notice_id": ref.id, "notice_rule": ref.rule, "notice_title": ref.title, "hours": hours,
             "notice_at": ref.at(self.ctx.tz).isoformat()},
            severity="critical" if ref.severity == "critical" else "warning",
            recipients=self._recipients(ref),
        )

    def _unresolved(self, at: datetime, notice: str) -> None:
        signed = self.signed.pop(notice, None)
        if signed is None:  # closed (办结) before the deadline
            return
        ref, days = signed.ref, self.working_days
        if ref.number not in self.issued:
            self.acked.pop(ref.id, None)
        self.ctx.emit(
            UNRESOLVED.id, ref.township, ref.id, at,
            f"【督办】通知“{ref.title}”签收后{days}个工作日仍未办结",
            {"notice_id": ref.id, "notice_rule": ref.rule, "notice_title": ref.title,
             "notice_at": ref.at(self.ctx.tz).isoformat(), "signed_at": signed.at.isoformat(), "signed_by": signed.by,
             "working_days": days},
            severity="critical" if ref.severity == "critical" else "warning",
            recipients=self._recipients(ref),
        )
