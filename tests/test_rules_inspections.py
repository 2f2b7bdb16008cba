"""Inspection rules (§3, §6 Inspections)."""
from __future__ import annotations

from typing import Any

import pytest

from conftest import check, of

HH, BQ = "红河镇", "板桥镇"


def insp(iid: str, at: str = "2026-04-10T10:00:00", *, outcome: str = "合格", township: str = HH,
         entity: str = "阳光餐馆", entity_type: str = "餐饮服务", inspection_type: str = "日常检查",
         **kw: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": "inspection", "id": iid, "inspected_at": at, "township": township,
                          "entity": entity, "entity_type": entity_type, "inspection_type": inspection_type,
                          "outcome": outcome}
    ev.update(kw)
    return ev


def rectify(iid: str, at: str = "2026-04-10T10:00:00", rectify_by: str = "2026-04-20", **kw: Any) -> dict[str, Any]:
    return insp(iid, at, outcome="限期整改", rectify_by=rectify_by, findings=["后厨卫生差"], **kw)


# --------------------------------------------------------------------------- license_missing

@pytest.mark.parametrize("extra, fires", [
    ({"license_valid": False}, True),
    ({"license_valid": True}, False),
    ({}, False),
    ({"license_valid": None}, False),  # null counts as absent
])
def test_license_missing_only_on_explicit_false(replay, extra, fires):
    notices, rejects, _ = replay([insp("I1", **extra)])
    assert rejects == []
    assert len(of(notices, "inspection.license_missing")) == int(fires)


@pytest.mark.parametrize("entity_type, recipients", [
    ("餐饮服务", {"hh-fso"}),
    ("学校食堂", {"hh-edu", "hh-fso"}),
])
def test_license_missing_notice(replay, entity_type, recipients):
    notices, _, _ = replay([insp("I1", "2026-04-10T10:15:00", entity="实验小学食堂", entity_type=entity_type,
                                 license_valid=False)])
    [n] = of(notices, "inspection.license_missing")
    check(n, rule="inspection.license_missing", township=HH, level="town", severity="warning",
          recipients=recipients, at="2026-04-10T10:15:00+08:00", key="inspection.license_missing|红河镇|I1",
          facts={"entity": "实验小学食堂"})


# --------------------------------------------------------------------------- health_cert_low

@pytest.mark.parametrize("staff, fires", [
    ({"staff_total": 20, "staff_with_health_cert": 19}, False),  # 0.95 exactly: not below
    ({"staff_total": 20, "staff_with_health_cert": 18}, True),
    ({"staff_total": 20, "staff_with_health_cert": 20}, False),
    ({"staff_total": 3, "staff_with_health_cert": 2}, True),
    ({"staff_total": 0, "staff_with_health_cert": 0}, False),    # staff_total must be > 0
    ({"staff_total": 20}, False),                                # one field missing
    ({"staff_with_health_cert": 0}, False),
    ({"staff_total": 20, "staff_with_health_cert": None}, False),
])
def test_health_cert_low(replay, staff, fires):
    notices, rejects, _ = replay([insp("I1", **staff)])
    assert rejects == []
    found = of(notices, "inspection.health_cert_low")
    assert len(found) == int(fires)
    if fires:
        check(found[0], level="town", severity="warning", recipients={"hh-fso"}, township=HH,
              at="2026-04-10T10:00:00+08:00", key="inspection.health_cert_low|红河镇|I1", facts={"entity": "阳光餐馆"})


@pytest.mark.parametrize("with_cert, fires", [(18, False), (17, True)])
def test_health_cert_min_rate_override(replay, with_cert, fires):
    notices, _, _ = replay([insp("I1", staff_total=20, staff_with_health_cert=with_cert)],
                           rules={"inspection.health_cert_low": {"min_rate": 0.9}})
    assert len(of(notices, "inspection.health_cert_low")) == int(fires)


# --------------------------------------------------------------------------- severe_outcome

@pytest.mark.parametrize("outcome, extra, fires", [
    ("责令停业", {}, True),
    ("立案查处", {}, True),
    ("合格", {}, False),
    ("限期整改", {"rectify_by": "2026-04-20"}, False),
])
def test_severe_outcome(replay, outcome, extra, fires):
    notices, rejects, _ = replay([insp("I1", outcome=outcome, entity="城南屠宰场", entity_type="学校食堂", **extra)])
    assert rejects == []
    found = of(notices, "inspection.severe_outcome")
    assert len(found) == int(fires)
    if fires:
        check(found[0], rule="inspection.severe_outcome", level="county", severity="critical", township=HH,
              recipients={"county-fso", "hh-edu", "hh-fso"}, at="2026-04-10T10:00:00+08:00",
              key="inspection.severe_outcome|红河镇|I1", facts={"entity": "城南屠宰场"})


def test_severe_outcome_unrouted_other_township(replay):
    notices, _, _ = replay([insp("I1", outcome="立案查处", township=BQ)])
    [n] = of(notices, "inspection.severe_outcome")
    check(n, township=BQ, recipients={"county-fso", "bq-fso"}, key="inspection.severe_outcome|板桥镇|I1")


# --------------------------------------------------------------------------- rectification_overdue

def test_rectification_overdue_fires_at_midnight_after_rectify_by(replay):
    notices, rejects, _ = replay([rectify("I1", entity="阳光餐馆")], until="2026-04-21T00:00:00")
    assert rejects == []
    [n] = of(notices, "inspection.rectification_overdue")
    check(n, rule="inspection.rectification_overdue", township=HH, level="town", severity="warning",
          recipients={"hh-fso"}, at="2026-04-21T00:00:00+08:00",
          key="inspection.rectification_overdue|红河镇|I1", facts={"entity": "阳光餐馆"})


def test_rectification_not_overdue_on_the_last_day(replay):
    notices, _, _ = replay([rectify("I1")], until="2026-04-20T23:59:59")
    assert of(notices, "inspection.rectification_overdue") == []


def test_rectification_routed_recipients(replay):
    notices, _, _ = replay([rectify("I1", entity="实验小学食堂", entity_type="学校食堂")], until="2026-05-01T00:00:00")
    [n] = of(notices, "inspection.rectification_overdue")
    check(n, recipients={"hh-edu", "hh-fso"})


@pytest.mark.parametrize("follow_up, fires", [
    (insp("I2", "2026-04-18T15:00:00", inspection_type="复查"), False),
    (insp("I2", "2026-04-20T23:59:59", inspection_type="复查"), False),
    (insp("I2", "2026-04-21T00:00:00", inspection_type="复查"), True),   # at the deadline: too late
    (insp("I2", "2026-04-22T09:00:00", inspection_type="复查"), True),
    (insp("I2", "2026-04-05T09:00:00", inspection_type="复查"), True),   # earlier by event time (late arrival)
    (insp("I2", "2026-04-10T10:00:00", inspection_type="复查"), True),   # same time: not later
    (insp("I2", "2026-04-18T15:00:00", entity="别家餐馆"), True),        # another entity
    (insp("I2", "2026-04-18T15:00:00", township=BQ), True),              # same name, other township
    (insp("I2", "2026-04-18T15:00:00", outcome="限期整改", rectify_by="2026-05-10"), True),  # not 合格
    (insp("I2", "2026-04-18T15:00:00", outcome="立案查处"), True),
])
def test_rectification_cancelled_only_by_later_qualified_inspection(replay, follow_up, fires):
    notices, rejects, _ = replay([rectify("I1"), follow_up], until="2026-04-25T00:00:00")
    assert rejects == []
    found = [n for n in of(notices, "inspection.rectification_overdue") if n["key"].endswith("|I1")]
    assert len(found) == int(fires)
    if fires:
        check(found[0], at="2026-04-21T00:00:00+08:00")


@pytest.mark.parametrize("first, second, fires", [
    ({"entity_id": "JY123"}, {"entity_id": "JY123", "entity": "阳光餐馆(改名)"}, False),
    ({"entity_id": "JY123"}, {}, True),           # with id vs without: different entities
    ({}, {}, False),
    ({"entity_id": "JY123"}, {"entity_id": "JY999"}, True),
])
def test_rectification_entity_identity(replay, first, second, fires):
    events = [rectify("I1", **first), insp("I2", "2026-04-15T10:00:00", **second)]
    notices, _, _ = replay(events, until="2026-04-25T00:00:00")
    assert len(of(notices, "inspection.rectification_overdue")) == int(fires)


def test_rectification_qualified_accepted_after_deadline_does_not_retract(replay):
    events = [rectify("I1"), insp("X", "2026-04-22T10:00:00", township=BQ),
              insp("I2", "2026-04-15T10:00:00", inspection_type="复查")]
    notices, rejects, _ = replay(events, until="2026-04-25T00:00:00")
    assert rejects == []
    [n] = of(notices, "inspection.rectification_overdue")
    check(n, at="2026-04-21T00:00:00+08:00")


def test_rectification_deadline_behind_clock_never_fires(replay):
    events = [insp("X", "2026-04-25T10:00:00", township=BQ), rectify("I1", "2026-04-10T10:00:00")]
    notices, rejects, _ = replay(events, until="2026-05-10T00:00:00")
    assert rejects == []
    assert of(notices, "inspection.rectification_overdue") == []


@pytest.mark.parametrize("clock, until, fires", [
    ("2026-04-21T00:00:01", "2026-05-10T00:00:00", False),  # deadline a second behind the clock
    ("2026-04-21T00:00:00", "2026-05-10T00:00:00", True),   # at the clock is not behind it
    ("2026-04-21T00:00:00", None, True),                    # ... and fires with nothing after it
    ("2026-04-20T23:59:59", "2026-05-10T00:00:00", True),
])
def test_late_rectification_deadline_at_the_clock_still_fires(replay, clock, until, fires):
    """§6: only a deadline already behind the clock when the inspection arrives never fires."""
    events = [insp("X", clock, township=BQ), rectify("I1", "2026-04-10T10:00:00")]  # overdue 04-21 00:00
    notices, rejects, _ = replay(events, until=until)
    assert rejects == []
    found = of(notices, "inspection.rectification_overdue")
    assert len(found) == int(fires)
    if fires:
        check(found[0], at="2026-04-21T00:00:00+08:00")


def test_rectification_fires_once(replay):
    notices, _, _ = replay([rectify("I1"), insp("X", "2026-04-22T10:00:00", township=BQ),
                            insp("Y", "2026-04-23T10:00:00", township=BQ)], until="2026-05-20T00:00:00")
    assert len(of(notices, "inspection.rectification_overdue")) == 1


@pytest.mark.parametrize("rectify_by", ["absent", None, "", "2026-04-31", "20260420"])
def test_rectify_by_required_and_valid_for_xianqi_zhenggai(replay, rectify_by):
    ev = insp("I1", outcome="限期整改")
    if rectify_by != "absent":
        ev["rectify_by"] = rectify_by
    notices, rejects, summary = replay([ev], until="2026-06-01T00:00:00")
    assert len(rejects) == 1 and rejects[0]["line"] == 1 and rejects[0]["reason"]
    assert notices == []
