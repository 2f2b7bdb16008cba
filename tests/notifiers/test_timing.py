"""When deliveries may go out: quiet hours on the official calendar, group flush, backoff,
give-up and the digest's time and window (shian.notifiers.timing, pure functions)."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from shian.notifiers.message import Outcome, Result
from shian.notifiers.settings import Retry, parse as parse_settings
from shian.notifiers.timing import (after_attempt, backoff, digest_day, digest_time, digest_window,
                                    flush_time, release_time)
from shian.rules.config import parse as parse_config

TZ = ZoneInfo("Asia/Shanghai")

CONFIG = {
    "timezone": "Asia/Shanghai",
    "county": {"name": "西平县", "office": "county-fso"},
    "departments": {"county-fso": {"name": "县食安办"}, "hh-fso": {"name": "红河镇食安办"}},
    "townships": {"红河镇": {"office": "hh-fso"}},
}


def settings(calendar=None, **notifiers):
    extra = {"calendar": calendar} if calendar is not None else {}
    return parse_settings(parse_config({**CONFIG, **extra, "notifiers": notifiers}), env={})


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_calendar_assumptions_hold():
    """The table below relies on the official 2026 schedule as chinese_calendar has it."""
    is_working_day = settings().config.calendar.is_working_day
    assert not is_working_day(date(2026, 10, 2))   # 国庆
    assert is_working_day(date(2026, 10, 10))       # Saturday, 调休 workday
    assert is_working_day(date(2026, 5, 9))         # Saturday, 调休 workday after 劳动节
    assert not is_working_day(date(2026, 5, 5))     # 劳动节 on a Tuesday


QUIET = [
    # (now, severity, released at) — working hours 08:30–17:30 on official working days
    ("2026-04-24T17:29:59", "warning", "2026-04-24T17:29:59"),   # Friday, still working hours
    ("2026-04-24T17:30:00", "warning", "2026-04-27T08:30:00"),   # Friday end of day → Monday
    ("2026-04-24T17:30:00", "info", "2026-04-27T08:30:00"),
    ("2026-04-24T17:30:00", "critical", "2026-04-24T17:30:00"),  # critical never waits
    ("2026-04-25T10:00:00", "warning", "2026-04-27T08:30:00"),   # Saturday
    ("2026-04-25T03:00:00", "critical", "2026-04-25T03:00:00"),
    ("2026-04-27T08:29:00", "warning", "2026-04-27T08:30:00"),   # Monday before start
    ("2026-04-27T08:30:00", "warning", "2026-04-27T08:30:00"),   # start is inside
    ("2026-04-27T00:00:00", "info", "2026-04-27T08:30:00"),
    ("2026-04-30T18:00:00", "warning", "2026-05-06T08:30:00"),   # 劳动节 1–5 May
    ("2026-05-08T20:00:00", "warning", "2026-05-09T08:30:00"),   # Saturday 9 May is a workday
    ("2026-10-02T10:00:00", "warning", "2026-10-08T08:30:00"),   # 国庆 holiday
    ("2026-09-30T17:30:00", "info", "2026-10-08T08:30:00"),
    ("2026-10-09T17:45:00", "warning", "2026-10-10T08:30:00"),   # Saturday 10 Oct, 调休 workday
    ("2026-10-10T12:00:00", "warning", "2026-10-10T12:00:00"),
    ("2026-10-10T17:30:00", "warning", "2026-10-12T08:30:00"),   # Sunday 11 Oct is off
]


@pytest.mark.parametrize("now,severity,expected", QUIET)
def test_quiet_hours_hold_info_and_warning_until_working_hours(now, severity, expected):
    assert release_time(t(now), severity, settings()) == t(expected)


# calendar: owns the years it lists a date of; 2027 has no published schedule (statutory fallback).
OWN_2026 = {"holidays": ["2026-04-27"], "workdays": ["2026-04-25"]}
CALENDAR_QUIET = [
    # (calendar:, now, released at)
    (OWN_2026, "2026-04-24T17:30:00", "2026-04-25T08:30:00"),   # Saturday 25th listed as a workday
    (OWN_2026, "2026-04-25T17:30:00", "2026-04-28T08:30:00"),   # Monday 27th listed as a holiday
    (OWN_2026, "2026-04-30T18:00:00", "2026-05-01T08:30:00"),   # 2026 is calendar:'s: 劳动节 not listed
    (OWN_2026, "2026-05-08T20:00:00", "2026-05-11T08:30:00"),   # nor the library's 调休 Saturday 9 May
    ({}, "2027-02-04T17:30:00", "2027-02-09T08:30:00"),         # 2027 fallback: 除夕 5th to 初三 8th off
    ({}, "2027-09-30T17:30:00", "2027-10-04T08:30:00"),         # 国庆 1–3 Oct only; Monday 4th works
    ({"holidays": ["2027-10-04", "2027-10-05"]}, "2027-09-30T17:30:00", "2027-10-01T08:30:00"),  # 2027 is
    # calendar:'s as soon as it lists a date: 1 Oct not listed, so a working day
    ({"holidays": [f"2027-10-0{i}" for i in range(1, 6)]}, "2027-09-30T17:30:00", "2027-10-06T08:30:00"),
    ({"workdays": ["2027-09-26"]}, "2027-09-24T17:30:00", "2027-09-26T08:30:00"),   # 2027 now calendar:'s
]


@pytest.mark.parametrize("calendar,now,expected", CALENDAR_QUIET)
def test_quiet_hours_follow_the_configs_calendar(calendar, now, expected):
    """Quiet hours use the config's calendar: its years from calendar: alone, 2027 from the fallback."""
    assert release_time(t(now), "warning", settings(calendar)) == t(expected)


def test_quiet_hours_off_releases_at_once():
    s = settings(quiet_hours=False)
    assert release_time(t("2026-04-25T03:00:00"), "info", s) == t("2026-04-25T03:00:00")


def test_working_hours_come_from_settings_and_times_in_other_zones_are_converted():
    s = settings(working_hours={"start": "09:00", "end": "17:00"})
    assert release_time(t("2026-04-27T08:45:00"), "warning", s) == t("2026-04-27T09:00:00")
    assert release_time(t("2026-04-27T17:00:00"), "warning", s) == t("2026-04-28T09:00:00")
    utc = datetime(2026, 4, 27, 1, 0, tzinfo=ZoneInfo("UTC"))  # 09:00 Beijing
    assert release_time(utc, "warning", settings()) == t("2026-04-27T09:00:00")


@pytest.mark.parametrize("arrived,severity,wait,expected", [
    ("2026-04-27T10:00:00", "warning", 30, "2026-04-27T10:00:30"),   # group_wait after the first
    ("2026-04-27T10:00:00", "warning", 0, "2026-04-27T10:00:00"),
    ("2026-04-25T10:00:00", "warning", 30, "2026-04-27T08:30:00"),   # quiet hours later still
    ("2026-04-25T10:00:00", "critical", 30, "2026-04-25T10:00:30"),
])
def test_a_group_flushes_at_first_arrival_plus_group_wait_or_release(arrived, severity, wait, expected):
    s = settings(group_wait_seconds=wait)
    assert flush_time(t(arrived), severity, s) == t(expected)


RETRY = Retry(first_seconds=30, max_seconds=3600, give_up_hours=24)


@pytest.mark.parametrize("attempt,r,jitter,expected", [
    (1, 0.0, "equal", 15.0),
    (1, 0.999999, "equal", pytest.approx(30.0, abs=1e-3)),
    (2, 0.5, "equal", 45.0),
    (3, 0.0, "full", 0.0),
    (3, 0.5, "full", 60.0),
    (8, 1.0, "equal", 3600.0),    # 30·2^7 = 3840 capped at 3600
    (10_000, 0.5, "full", 1800.0),  # no overflow however many attempts
])
def test_backoff_is_exponential_capped_and_jittered(attempt, r, jitter, expected):
    assert backoff(attempt, RETRY, lambda: r, jitter) == expected


def test_after_attempt_decides_sent_retry_or_failed():
    first = t("2026-04-27T10:00:00")
    now = first + timedelta(minutes=1)
    half = lambda: 0.5  # noqa: E731
    assert after_attempt(Result(Outcome.DELIVERED), 1, first, now, RETRY, half).state == "sent"
    assert after_attempt(Result(Outcome.FAILED, "550"), 1, first, now, RETRY, half).state == "failed"
    nxt = after_attempt(Result(Outcome.RETRY, "421"), 1, first, now, RETRY, half)
    assert (nxt.state, nxt.next_at) == ("pending", now + timedelta(seconds=22.5))


def test_retry_after_from_the_far_side_wins_only_when_longer():
    first = now = t("2026-04-27T10:00:00")
    longer = after_attempt(Result(Outcome.RETRY, "429", retry_after=120), 1, first, now, RETRY, lambda: 0.5)
    shorter = after_attempt(Result(Outcome.RETRY, "429", retry_after=1), 1, first, now, RETRY, lambda: 0.5)
    assert longer.next_at == now + timedelta(seconds=120)
    assert shorter.next_at == now + timedelta(seconds=22.5)


@pytest.mark.parametrize("elapsed_hours,state", [(23.99, "pending"), (24, "failed"), (30, "failed")])
def test_retries_give_up_after_give_up_hours_since_the_first_attempt(elapsed_hours, state):
    first = t("2026-04-27T10:00:00")
    now = first + timedelta(hours=elapsed_hours)
    assert after_attempt(Result(Outcome.RETRY, "timeout"), 9, first, now, RETRY, lambda: 0.5).state == state


@pytest.mark.parametrize("now,expected", [
    ("2026-04-27T17:29:59", date(2026, 4, 26)),
    ("2026-04-27T17:30:00", date(2026, 4, 27)),
    ("2026-04-28T00:10:00", date(2026, 4, 27)),
])
def test_the_digest_due_is_the_latest_day_whose_digest_time_has_come(now, expected):
    assert digest_day(t(now), settings()) == expected


def test_digest_covers_the_24_hours_before_it_and_can_be_turned_off():
    s = settings(digest={"at": "08:00"})
    assert digest_time(date(2026, 4, 27), s) == t("2026-04-27T08:00:00")
    assert digest_window(date(2026, 4, 27), s) == (t("2026-04-26T08:00:00"), t("2026-04-27T08:00:00"))
    off = dataclasses.replace(s, digest_at=None)
    assert digest_day(t("2026-04-27T09:00:00"), off) is None
    assert settings(digest=None).digest_at is None
    assert settings().digest_at == time(17, 30)
