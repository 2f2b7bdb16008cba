"""Event dates are bounded (§2 ``min_event_date``, §6, revision 5): a date before
``min_event_date`` (default 2000-01-01) or after 2099-12-31, as a local date, rejects its line
as validation — so it never starts or moves the clock, and a year 0001 or 9999 never crashes."""
from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from conftest import config_dict, of
from shian.rules.config import ConfigError, parse

HH = "红河镇"


def incident(iid: str, at: str, **kw: Any) -> dict[str, Any]:
    return {"type": "incident", "id": iid, "township": HH, "occurred_at": at, "reported_at": at,
            "kind": "食物中毒", **kw}


def sample(sid: str, at: str, **kw: Any) -> dict[str, Any]:
    return {"type": "sampling_result", "id": sid, "township": HH, "sampled_at": at, "entity": "张三蔬菜店",
            "category": "蔬菜", "items": [{"item": "铅", "value": 0.5, "limit": 0.2}], **kw}


@pytest.mark.parametrize("at, accepted", [
    ("1999-12-31T23:59:59+08:00", False),     # the last second before the default bound
    ("2000-01-01T00:00:00+08:00", True),      # the bound itself
    ("1999-12-31T16:00:00Z", True),           # UTC, but 2000-01-01 00:00 local
    ("1999-12-31T15:59:59Z", False),
    ("2099-12-31T23:59:59+08:00", True),      # the last local day
    ("2100-01-01T00:00:00+08:00", False),
    ("2099-12-31T16:00:00Z", False),          # 2100-01-01 00:00 local
    ("1900-01-01", False),                    # what Excel shows for an empty date cell
    ("0001-01-01T00:00:00Z", False),          # years that overflowed the clock before
    ("9999-12-31T23:59:59-12:00", False),
    ("9999-12-31", False),
])
def test_an_event_date_outside_the_bounds_rejects_the_line(replay, at, accepted):
    """Every date field counts, as a local date; the reason names the field and the date."""
    notices, rejects, summary = replay([incident("I-1", at)])
    assert (summary.accepted, len(rejects)) == ((1, 0) if accepted else (0, 1)), rejects
    if not accepted:
        assert "发生时间" in rejects[0]["reason"] and at in rejects[0]["reason"]


def test_a_date_field_other_than_the_event_time_is_bounded_too(replay):
    """Not only the event time: a 整改期限 of 1900-01-01 rejects its inspection."""
    insp = {"type": "inspection", "id": "J-1", "township": HH, "inspected_at": "2026-04-10T10:00:00",
            "entity": "阳光餐馆", "entity_type": "餐饮服务", "inspection_type": "日常检查",
            "outcome": "限期整改", "rectify_by": "1900-01-01"}
    _, rejects, summary = replay([insp])
    assert summary.accepted == 0 and "整改期限" in rejects[0]["reason"]


def test_an_empty_excel_date_never_starts_the_clock(replay):
    """A 1900 row first, then real 2026 events: the row is rejected and the clock starts at the
    first real event (before, every 2026 event was refused as 60 days ahead of 1900)."""
    notices, rejects, summary = replay([sample("S-0", "1900-01-01"), sample("S-1", "2026-04-10T09:00:00"),
                                        incident("I-2", "2026-04-11T09:00:00")])
    assert summary.accepted == 2 and [r["line"] for r in rejects] == [1]
    assert [n["facts"]["sample_id"] for n in of(notices, "sample.unqualified")] == ["S-1"]


def test_a_far_future_year_never_moves_the_clock(replay):
    """A 2206 typo is refused by validation, not taken as the clock's new time."""
    notices, rejects, summary = replay([sample("S-1", "2026-04-10T09:00:00"), incident("I-9", "2206-04-11T09:00:00"),
                                        incident("I-2", "2026-04-11T09:00:00")])
    assert summary.accepted == 2 and [r["line"] for r in rejects] == [2] and "2099-12-31" in rejects[0]["reason"]


@pytest.mark.parametrize("min_date, at, accepted", [
    (date(2020, 1, 1), "2019-12-31T23:59:59", False),
    (date(2020, 1, 1), "2020-01-01T00:00:00", True),
    (date(1990, 1, 1), "1995-06-01T00:00:00", True),
])
def test_min_event_date_is_the_configs(replay, min_date, at, accepted):
    """``min_event_date`` replaces the default bound; 2099-12-31 stays."""
    _, rejects, summary = replay([incident("I-1", at)], config_overrides={"min_event_date": min_date})
    assert summary.accepted == (1 if accepted else 0), rejects


@pytest.mark.parametrize("value, problem", [
    (date(2100, 1, 1), "2099-12-31"),
    ("2000-01-01x", "min_event_date"),
])
def test_a_min_event_date_that_cannot_be_is_refused(value, problem):
    """A bound after the last date, or not a date, is a config problem, never a crash."""
    with pytest.raises(ConfigError) as e:
        parse(config_dict(None, {"min_event_date": value}), path="<test>")
    assert any(problem in p and "min_event_date" in p for p in e.value.problems), e.value.problems


@pytest.mark.parametrize("at, accepted", [
    ("2026-04-01T08:00:00+08:00", True),
    ("2026-04-01T08:00:00+05:45", True),      # Nepal
    ("2026-04-01T08:00:00-12:00", True),
    ("2026-04-01T08:00:00+14:00", True),      # the easternmost zone
    ("2026-04-01T08:00:00+08:60", False),     # read as +09:00 before
    ("2026-04-01T08:00:00+15:00", False),
    ("2026-04-01T08:00:00+24:00", False),
])
def test_an_offset_that_no_clock_uses_rejects_the_line(replay, at, accepted):
    """Offsets are ±HH:MM with minutes 00–59 and hours up to 14."""
    _, rejects, summary = replay([incident("I-1", at)])
    assert summary.accepted == (1 if accepted else 0), rejects
