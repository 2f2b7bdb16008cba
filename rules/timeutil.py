"""Parsing and writing the contract's times.

The contract accepts exactly ``YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM]``; a time without an
offset is local time in the configured zone, a bare date is 00:00 local. Everything inside the
engine is an aware datetime in the configured zone, so comparisons never mix zones.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, tzinfo

_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"(Z|[+-](?:0\d|1[0-4]):[0-5]\d)?"   # offsets as they exist: -14:59 … +14:59, minutes 00–59
)
_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")

#: The dates an event may carry (§2 ``min_event_date``, §6): earlier or later is a probable
#: empty Excel date cell or a mistyped year, refused by validation.
MIN_EVENT_DATE = date(2000, 1, 1)
LAST_EVENT_DATE = date(2099, 12, 31)


_fromiso = datetime.fromisoformat


def parse_local(text: str, tz: tzinfo) -> datetime:
    """:func:`parse_time`, the same result, with a fast path for the common
    ``YYYY-MM-DDTHH:MM:SS`` (local time): the separators are checked by position and the
    digits by :meth:`datetime.fromisoformat`, which reads only ASCII digits there, so no regex
    runs. Anything else, or anything it refuses, goes through :func:`parse_time` (its words)."""
    if len(text) == 19 and text[10] == "T" and text[4] == "-" and text[7] == "-" and text[13] == ":" \
            and text[16] == ":" and text.isascii():
        try:
            dt = _fromiso(text)
        except ValueError:
            return parse_time(text, tz)
        return datetime(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond, tz)
    return parse_time(text, tz)


def parse_time(text: str, tz: tzinfo) -> datetime:
    """Parse a contract time into an aware datetime in ``tz``; ValueError names what is wrong.

    The regex enforces the contract's shape; :meth:`datetime.fromisoformat` (C) does the rest.
    """
    if _TIME.fullmatch(text) is None:
        raise ValueError(f"时间格式无法识别：“{text}”（应为 YYYY-MM-DD 或 YYYY-MM-DDTHH:MM[:SS][+08:00]）")
    try:
        if len(text) > 10 and text[10] != "T":
            dt = datetime.fromisoformat(text[:10] + "T00:00" + text[10:])
        else:
            dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"日期或时间不存在：“{text}”") from None
    if dt.tzinfo is None:
        # The constructor with a positional tzinfo is several times faster than replace().
        return datetime(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond, tz)
    try:
        return dt.astimezone(tz)
    except OverflowError:  # year 1 or 9999 moved past the calendar's ends
        raise ValueError(f"日期超出可用范围：“{text}”") from None


def parse_period(text: str) -> str:
    if _PERIOD.fullmatch(text) is None:
        raise ValueError(f"月份格式无法识别：“{text}”（应为 YYYY-MM，月份 01–12）")
    return text


def fmt(dt: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS±HH:MM`` as notices carry it (seconds precision)."""
    text = dt.isoformat(timespec="seconds")  # the same text, from C, for a whole-minute offset
    if len(text) == 25 and dt.year >= 1000:  # (not for an offset with seconds, or no offset)
        return text
    off = dt.utcoffset() or timedelta(0)
    total = int(off.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    return f"{dt:%Y-%m-%dT%H:%M:%S}{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"


def cn_date(d: date) -> str:
    """``2026年3月5日``: a date as titles write it (``%Y年%-m月%-d日`` without strftime, which
    costs several times more and runs for many notices)."""
    return f"{d.year}年{d.month}月{d.day}日"


def local_midnight(d: date, tz: tzinfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=tz)


def at_local(d: date, hour: int, tz: tzinfo) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=tz)


def add_days(dt: datetime, days: int) -> datetime:
    """Local-day arithmetic: the same wall-clock time ``days`` later (an aware datetime plus a
    timedelta is wall-clock arithmetic in Python: the zone is kept, the offset not consulted)."""
    return dt + timedelta(days=days)


_WALL_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def wall_micros(dt: datetime) -> int:
    """A time of the engine as a number, for state kept by the hundred thousand (8 bytes in an
    array, or inside a packed record, instead of a 48-byte datetime): its local wall-clock time
    in µs since 1970-01-01 00:00, zone and fold left out. Times of the engine share one zone,
    and Python compares datetimes that share a tzinfo by their wall clocks, so these numbers
    compare as the times do."""
    return (dt.replace(tzinfo=None) - _WALL_EPOCH) // _MICROSECOND


def wall_stamp(dt: datetime) -> int:
    """:func:`wall_micros` with the time's fold in the lowest bit: all a kept time needs to
    come back exactly (:func:`from_wall_stamp`), its order that of the times."""
    return wall_micros(dt) << 1 | dt.fold


def from_wall_stamp(stamp: int, tz: tzinfo) -> datetime:
    """The datetime in ``tz`` that :func:`wall_stamp` gave ``stamp`` for."""
    return (_WALL_EPOCH + timedelta(microseconds=stamp >> 1)).replace(tzinfo=tz, fold=stamp & 1)


def month_of(dt: datetime) -> str:
    return f"{dt.year:04d}-{dt.month:02d}"


def next_month(period: str) -> str:
    y, m = int(period[:4]), int(period[5:7])
    return f"{y + (m == 12):04d}-{m % 12 + 1:02d}"
