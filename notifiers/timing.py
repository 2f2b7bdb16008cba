"""When a delivery may go out: pure functions of the clock and the ``notifiers:`` settings.

- **Quiet hours** (``quiet_hours: true``, the default): info and warning notices wait for
  working hours (``working_hours.start`` ≤ local time < ``working_hours.end``) on an official
  working day (weekdays except public holidays, plus 调休 workdays: the config's
  :class:`~shian.rules.calendar.Calendar`, the same the rules count with); critical notices go
  at once.
- **Grouping**: a group of notices of one rule and township for one department and channel
  goes out ``group_wait_seconds`` after its first notice arrived, or when quiet hours release
  it, whichever is later.
- **Retries**: exponential backoff from ``retry.first_seconds``, doubling per attempt and
  capped at ``retry.max_seconds``, with jitter so that many failed deliveries do not come
  back all at once; a ``retry_after`` from the far side wins when it is longer. A delivery
  still failing ``retry.give_up_hours`` after its first attempt has failed for good.
- **Catch-up**: a notice that reaches the outbox more than ``catch_up_after`` after its ``at``
  (the clock jumped: a late start, a downtime, a backfill) is late (:func:`is_late`); what
  becomes of late notices is :mod:`shian.notifiers.catchup`'s.
- **Digest**: the digest of day D is due at ``digest.at`` local on D and covers the notices
  whose ``at`` lies in the 24 hours before it (from ``digest.at`` on D − 1), so that a notice
  raised in the evening after one digest is in the next one rather than in none.

Everything takes and returns aware datetimes; local times are in the config's timezone.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Callable, Literal, Protocol

from shian.rules.config import Config

from .message import Outcome, Result
from .settings import Retry

Jitter = Literal["full", "equal"]


class TimingSettings(Protocol):
    """The part of :class:`~shian.notifiers.settings.Settings` these functions read."""
    config: Config
    group_wait_seconds: float
    catch_up_after: timedelta | None
    quiet_hours: bool
    work_start: time
    work_end: time
    digest_at: time | None
    retry: Retry


def _at(day: date, t: time, settings: TimingSettings) -> datetime:
    return datetime.combine(day, t, tzinfo=settings.config.tz)


def release_time(now: datetime, severity: str, settings: TimingSettings) -> datetime:
    """The earliest instant a notice of ``severity`` raised at ``now`` may be delivered."""
    local = now.astimezone(settings.config.tz)
    if not settings.quiet_hours or severity == "critical":
        return local
    day = local.date()
    is_working_day = settings.config.calendar.is_working_day
    if is_working_day(day):
        if local.time() < settings.work_start:
            return _at(day, settings.work_start, settings)
        if local.time() < settings.work_end:
            return local
    for _ in range(366):
        day += timedelta(days=1)
        if is_working_day(day):
            return _at(day, settings.work_start, settings)
    raise AssertionError("no working day within a year")


def is_late(at: datetime, received: datetime, settings: TimingSettings) -> bool:
    """Whether a notice raised at ``at`` that the outbox received at ``received`` is late: more
    than ``catch_up_after`` old when it first could go out. Quiet hours do not count: a notice
    raised on a Friday evening and held for Monday morning is not late."""
    return settings.catch_up_after is not None and received - at > settings.catch_up_after


def flush_time(arrived: datetime, severity: str, settings: TimingSettings) -> datetime:
    """When a group opened by a notice arriving at ``arrived`` goes out."""
    return max(arrived + timedelta(seconds=settings.group_wait_seconds),
               release_time(arrived, severity, settings))


def backoff(attempt: int, retry: Retry, rand: Callable[[], float] = random.random,
            jitter: Jitter = "equal") -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Full jitter draws from [0, cap); equal jitter from [cap/2, cap), which never retries at
    once. ``cap`` is ``first_seconds · 2^(attempt−1)``, at most ``max_seconds``."""
    cap = min(retry.max_seconds, retry.first_seconds * 2.0 ** min(max(attempt - 1, 0), 64))
    r = rand()
    return r * cap if jitter == "full" else cap / 2 + r * cap / 2


@dataclass(frozen=True)
class Next:
    """What becomes of a delivery after one attempt: its new state and, if pending, when next."""
    state: Literal["sent", "pending", "failed"]
    next_at: datetime | None = None


def after_attempt(result: Result, attempts: int, first_attempt: datetime, now: datetime,
                  retry: Retry, rand: Callable[[], float] = random.random,
                  jitter: Jitter = "equal") -> Next:
    """The delivery decision: sent, try again later, or failed for good."""
    if result.outcome is Outcome.DELIVERED:
        return Next("sent")
    if result.outcome is Outcome.FAILED:
        return Next("failed")
    if now - first_attempt >= timedelta(hours=retry.give_up_hours):
        return Next("failed")
    delay = max(backoff(attempts, retry, rand, jitter), result.retry_after or 0.0)
    return Next("pending", now + timedelta(seconds=delay))


def digest_time(day: date, settings: TimingSettings) -> datetime:
    assert settings.digest_at is not None
    return _at(day, settings.digest_at, settings)


def digest_day(now: datetime, settings: TimingSettings) -> date | None:
    """The latest day whose digest is due at ``now`` (None when digests are off)."""
    if settings.digest_at is None:
        return None
    today = now.astimezone(settings.config.tz).date()
    return today if now >= digest_time(today, settings) else today - timedelta(days=1)


def digest_window(day: date, settings: TimingSettings) -> tuple[datetime, datetime]:
    """[start, end) of the notices' ``at`` that day ``day``'s digest reports."""
    return digest_time(day - timedelta(days=1), settings), digest_time(day, settings)
