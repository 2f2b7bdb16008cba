"""``sample.rapid_unconfirmed`` (opt-in, ``confirm_days: 7``): a 不合格 rapid test needs a lab
sample of the same entity and category, sampled on or after its local sampling date, accepted
before its deadline (§3, §6 "Revision 5")."""
from __future__ import annotations

from typing import Any

import pytest

from conftest import check, of

HH = "红河镇"
RULE = "sample.rapid_unconfirmed"
ON = {RULE: {"enabled": True}}
DEADLINE = "2026-04-17T10:00:00"  # 7 local days after the rapid test's event time


def rapid(sid: str = "K1", at: str = "2026-04-10T10:00:00", value: str = "阳性", **kw: Any) -> dict[str, Any]:
    ev = {"type": "sampling_result", "id": sid, "program": "rapid_test", "township": HH, "sampled_at": at,
          "entity": "王五蔬菜摊", "entity_id": "92W5", "category": "蔬菜", "food": "韭菜",
          "items": [{"item": "有机磷和氨基甲酸酯类农药", "value": value}]}
    ev.update(kw)
    return ev


def lab(sid: str, sampled: str, reported: str, **kw: Any) -> dict[str, Any]:
    ev = {"type": "sampling_result", "id": sid, "program": "food_sampling", "township": HH, "sampled_at": sampled,
          "reported_at": reported, "entity": "王五蔬菜摊", "entity_id": "92W5", "category": "蔬菜", "food": "韭菜",
          "items": [{"item": "毒死蜱", "value": 0.01, "limit": 0.02}]}
    ev.update(kw)
    return ev


def tick(at: str) -> dict[str, Any]:
    return {"type": "monthly_report", "id": f"M-{at}", "reporter": "红河村", "township": HH, "period": "2026-04",
            "submitted_at": at}


def by_time(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: e.get("reported_at") or e.get("sampled_at") or e.get("submitted_at"))


@pytest.mark.parametrize("confirmation, fires", [
    (None, True),
    (lab("L1", "2026-04-10T08:00:00", "2026-04-12T10:00:00"), False),   # taken earlier the same day
    (lab("L1", "2026-04-09T16:00:00", "2026-04-12T10:00:00"), True),    # taken the day before
    (lab("L1", "2026-04-12T09:00:00", "2026-04-16T10:00:00"), False),
    (lab("L1", "2026-04-12T09:00:00", DEADLINE), True),                 # exactly at the deadline: late
    (lab("L1", "2026-04-12T09:00:00", "2026-04-17T09:59:59"), False),
    (lab("L1", "2026-04-12T09:00:00", "2026-04-16T10:00:00", category="水果"), True),   # another category
    (lab("L1", "2026-04-12T09:00:00", "2026-04-16T10:00:00", entity_id="92W6"), True),  # another entity
    (lab("L1", "2026-04-12T09:00:00", "2026-04-16T10:00:00", entity_id=None), True),    # ids never mixed
    (lab("L1", "2026-04-12T09:00:00", "2026-04-16T10:00:00", program="agri_monitoring"), False),
    (lab("L1", "2026-04-12T09:00:00", "2026-04-16T10:00:00", program="rapid_test"), True),  # not a lab sample
    (lab("L1", "2026-04-12T09:00:00", "2026-04-16T10:00:00",                            # its own verdict aside
         items=[{"item": "毒死蜱", "value": 0.5, "limit": 0.02}]), False),
    (lab("L1", "2026-04-10T08:00:00", "2026-04-10T09:00:00"), False),   # accepted before the rapid test
    (lab("L1", "2026-04-12T09:00:00", "2026-04-16T10:00:00", township="板桥镇"), True),
])
def test_confirmation(replay, confirmation, fires):
    """Which lab sample confirms a positive rapid test, and until when."""
    events = by_time([rapid(), *([confirmation] if confirmation else []), tick("2026-04-20T10:00:00")])
    notices, rejects, _ = replay(events, rules=ON)
    assert rejects == []
    assert len(of(notices, RULE)) == int(fires)


def test_notice_fields(replay):
    """Town level, warning, at the deadline, routed by category, keyed by the sample id, due null."""
    notices, _, _ = replay([rapid(), tick("2026-04-20T10:00:00")], rules=ON)
    [n] = of(notices, RULE)
    check(n, level="town", severity="warning", at="2026-04-17T10:00:00+08:00", due=None, event_ids=["K1"],
          recipients={"hh-agri", "hh-fso"}, key=f"{RULE}|红河镇|K1",
          facts={"sample_id": "K1", "category": "蔬菜", "entity": "王五蔬菜摊"})
    assert n["title"].startswith("【预警】")


@pytest.mark.parametrize("items, conclusion, fires", [
    ([{"item": "有机磷", "value": "阴性"}], None, False),
    ([{"item": "有机磷", "value": "阳性"}], None, True),
    ([{"item": "有机磷", "value": "阳性"}], "合格", False),       # a given conclusion wins
    ([{"item": "克伦特罗", "value": "阳性"}], "合格", True),      # a banned hit is always 不合格
    ([{"item": "克伦特罗", "value": 0.3}], None, True),
])
def test_only_unqualified_rapid_tests(replay, items, conclusion, fires):
    """Only a rapid test concluded 不合格 (a banned-substance hit counts as 不合格) is followed up."""
    ev = rapid(items=items, category="畜禽肉")
    if conclusion:
        ev["conclusion"] = conclusion
    notices, _, _ = replay([ev, tick("2026-04-20T10:00:00")], rules=ON)
    assert len(of(notices, RULE)) == int(fires)


def test_deadline_counts_from_the_event_time_in_local_days(replay):
    """The event time is reported_at when given; confirm_days is configurable."""
    ev = rapid(at="2026-04-08T10:00:00", reported_at="2026-04-09T15:30:00")
    notices, _, _ = replay([ev, tick("2026-04-20T10:00:00")], rules={RULE: {"enabled": True, "confirm_days": 3}})
    [n] = of(notices, RULE)
    assert n["at"] == "2026-04-12T15:30:00+08:00"


@pytest.mark.parametrize("arrives, fires", [
    ("2026-04-16T10:00:00", True),    # late, but the deadline is still ahead
    ("2026-04-17T10:00:00", False),   # the deadline is the clock's time when it arrives: none
    ("2026-04-18T10:00:00", False),
])
def test_late_rapid_test_with_its_deadline_behind_the_clock_gets_none(replay, arrives, fires):
    """A rapid test whose deadline is already behind the clock when it arrives gets none."""
    notices, rejects, _ = replay([tick(arrives), rapid(), tick("2026-04-25T10:00:00")], rules=ON)
    assert rejects == []
    assert len(of(notices, RULE)) == int(fires)


def test_off_by_default(replay):
    """Opt-in: nothing without enabled: true."""
    notices, _, _ = replay([rapid(), tick("2026-04-20T10:00:00")])
    assert of(notices, RULE) == []


def test_one_lab_sample_confirms_every_earlier_rapid_test_of_the_entity_and_category(replay):
    """Two positive rapid tests, one lab sample sampled after both: neither fires."""
    events = [rapid("K1"), rapid("K2", at="2026-04-11T10:00:00"), lab("L1", "2026-04-11T11:00:00", "2026-04-14T10:00:00"),
              tick("2026-04-25T10:00:00")]
    notices, _, _ = replay(events, rules=ON)
    assert of(notices, RULE) == []
