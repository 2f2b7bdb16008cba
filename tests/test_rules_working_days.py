"""The rules that count official working days on the config's calendar (CONTRACT.md §3, §6
Revision 5): ``notice.unresolved`` (signed for, not closed in ``working_days``) and
``sample.lab_late`` (a lab report after more than ``working_days``)."""
from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import check, config_dict, nid, of, t
from shian.notifiers.routing import recipients
from shian.rules.config import ConfigError, parse
from shian.rules.engine import Engine
from shian.rules.events import Rejected, Validator

HH = "红河镇"
UNRESOLVED_ON = {"notice.unresolved": {"enabled": True}}
LAB_ON = {"sample.lab_late": {"enabled": True}}


def lic(iid: str, at: str, **kw: Any) -> dict[str, Any]:
    """An inspection with license_valid false: an inspection.license_missing notice (town, warning)."""
    ev = {"type": "inspection", "id": iid, "inspected_at": at, "township": HH, "entity": "阳光餐馆",
          "entity_type": "餐饮服务", "inspection_type": "日常检查", "outcome": "合格", "license_valid": False}
    ev.update(kw)
    return ev


def ack(aid: str, notice: str, at: str, action: str = "签收", by: str = "hh-fso") -> dict[str, Any]:
    return {"type": "ack", "id": aid, "township": HH, "notice_id": notice, "by": by, "action": action, "acked_at": at}


def incident(iid: str, at: str) -> dict[str, Any]:
    return {"type": "incident", "id": iid, "township": HH, "occurred_at": at, "reported_at": at, "kind": "食物中毒"}


LIC = nid("inspection.license_missing|红河镇|I1")


def unresolved(notices: list[dict[str, Any]], notice: str) -> list[dict[str, Any]]:
    return [n for n in of(notices, "notice.unresolved") if n["facts"]["notice_id"] == notice]


# --------------------------------------------------------------------------- notice.unresolved

# The notice is issued Thu 2026-06-04 10:00 and signed for on Friday 2026-06-05: with
# working_days 10 the deadline is 2026-06-23T00:00 (8–12, 15–18, 22 June; 19 June is 端午).
UNRESOLVED_CASES = [
    # (acks after the notice, fires at)
    ([ack("A1", LIC, "2026-06-05T09:00:00")], "2026-06-23T00:00:00+08:00"),
    ([ack("A1", LIC, "2026-06-05T23:59:59")], "2026-06-23T00:00:00+08:00"),   # the 签收's date counts, not its hour
    ([ack("A1", LIC, "2026-06-05T09:00:00"), ack("A2", LIC, "2026-06-22T23:59:59", "办结")], None),
    ([ack("A1", LIC, "2026-06-05T09:00:00"), ack("A2", LIC, "2026-06-23T00:00:00", "办结")],
     "2026-06-23T00:00:00+08:00"),                                            # 办结 exactly at the deadline: late
    ([ack("A1", LIC, "2026-06-05T09:00:00"), ack("A2", LIC, "2026-06-24T09:00:00", "办结")],
     "2026-06-23T00:00:00+08:00"),
    ([ack("A1", LIC, "2026-06-05T09:00:00", "办结")], None),                  # 办结 without 签收 counts as both
    ([ack("A1", LIC, "2026-06-05T09:00:00", "办结"), ack("A2", LIC, "2026-06-08T09:00:00")], None),  # 签收 after 办结
    ([ack("A1", LIC, "2026-06-05T09:00:00"), ack("A2", LIC, "2026-06-12T09:00:00")],
     "2026-06-23T00:00:00+08:00"),                                            # a later 签收 changes nothing
    ([ack("A1", LIC, "2026-06-05T09:00:00"), ack("A2", LIC, "2026-06-12T09:00:00", by="hh-edu")],
     "2026-06-23T00:00:00+08:00"),                                            # nor a 签收 by another recipient
    ([ack("A1", LIC, "2026-06-05T09:00:00"), ack("A2", LIC, "2026-06-12T09:00:00", "办结", by="hh-edu")], None),
    ([], None),                                                               # never signed: not this rule's
]


@pytest.mark.parametrize("acks, fires", UNRESOLVED_CASES)
def test_unresolved_boundaries(replay, acks, fires):
    """§6: the first 签收 starts it; a 办结 before the deadline prevents it; the deadline is 00:00
    after the working_days-th official working day counted from the day after the 签收's date."""
    events = [lic("I1", "2026-06-04T10:00:00", entity_type="学校食堂"), *acks]
    notices, rejects, _ = replay(events, rules=UNRESOLVED_ON, until="2026-07-10T00:00:00")
    assert rejects == []
    found = unresolved(notices, LIC)
    if fires is None:
        assert found == []
        return
    [n] = found
    check(n, rule="notice.unresolved", township=HH, level="county", severity="warning", at=fires, due=None,
          recipients={"county-fso", "hh-fso"}, key=f"notice.unresolved|红河镇|{LIC}", event_ids=[],
          facts={"notice_id": LIC, "working_days": 10, "signed_at": acks[0]["acked_at"] + "+08:00",
                 "notice_rule": "inspection.license_missing"})


@pytest.mark.parametrize("params, calendar, fires", [
    ({"working_days": 1}, None, "2026-06-09T00:00:00+08:00"),               # Mon 8 June is the first
    ({"working_days": 4}, None, "2026-06-12T00:00:00+08:00"),
    ({"working_days": 5}, None, "2026-06-13T00:00:00+08:00"),               # ends Friday 12 June
    # calendar: owns 2026 once it lists a date: 19 June (端午) works unless listed
    ({}, {"holidays": ["2026-12-31"]}, "2026-06-20T00:00:00+08:00"),        # 8–12, 15–19
    ({}, {"holidays": ["2026-06-08", "2026-06-19"]}, "2026-06-24T00:00:00+08:00"),  # 9–12, 15–18, 22, 23
    ({}, {"holidays": ["2026-06-19"], "workdays": ["2026-06-06"]}, "2026-06-19T00:00:00+08:00"),  # Sat 6, 8–12, 15–18
])
def test_unresolved_counts_on_the_configs_calendar(replay, params, calendar, fires):
    """working_days is counted on the config's calendar (calendar: owns the years it lists)."""
    events = [lic("I1", "2026-06-04T10:00:00"), ack("A1", LIC, "2026-06-05T09:00:00")]
    notices, _, _ = replay(events, rules={"notice.unresolved": {"enabled": True, **params}},
                           until="2026-07-10T00:00:00",
                           config_overrides={"calendar": calendar} if calendar else None)
    [n] = unresolved(notices, LIC)
    check(n, at=fires)


@pytest.mark.parametrize("ack_at, clock_event, fires", [
    # a 签收 arriving late, after another event moved the clock
    ("2026-06-05T09:00:00", lic("I2", "2026-06-23T00:00:00"), None),        # its deadline is the clock: never
    ("2026-06-05T09:00:00", lic("I2", "2026-06-24T09:00:00"), None),        # behind the clock: never
    ("2026-06-05T09:00:00", lic("I2", "2026-06-22T23:00:00"), "2026-06-23T00:00:00+08:00"),  # still ahead
])
def test_unresolved_deadline_behind_the_clock_when_signed_never_fires(replay, ack_at, clock_event, fires):
    """§6: a deadline already behind the clock when its 签收 is accepted never fires."""
    events = [lic("I1", "2026-06-04T10:00:00"), clock_event, ack("A1", LIC, ack_at)]
    notices, rejects, _ = replay(events, rules=UNRESOLVED_ON, until="2026-07-10T00:00:00")
    assert rejects == []
    assert [n["at"] for n in unresolved(notices, LIC)] == ([fires] if fires else [])


def test_unresolved_critical_county_notice_goes_to_escalation_as_critical(replay):
    """Critical if the notice was; a county-level notice's follow-up goes to county.escalation."""
    inc = nid("incident.reported|红河镇|E1")
    events = [incident("E1", "2026-06-04T10:00:00"), ack("A1", inc, "2026-06-05T09:00:00", by="county-fso")]
    notices, rejects, _ = replay(events, rules=UNRESOLVED_ON, until="2026-07-10T00:00:00")
    assert rejects == []
    [n] = unresolved(notices, inc)
    check(n, severity="critical", level="county", recipients={"county-lead"}, at="2026-06-23T00:00:00+08:00")


def test_unresolved_never_for_notice_rules_nor_info_and_off_by_default(replay):
    """Never for a notice of a notice.* rule (unacknowledged, unresolved) nor an info notice;
    opt-in (enabled: false by default)."""
    unack = nid(f"notice.unacknowledged|红河镇|{LIC}")
    onsite = nid("banquet.onsite_guidance|红河镇|B1")
    banquet = {"type": "banquet", "id": "B1", "township": HH, "host": "李大爷", "held_at": "2026-06-20T11:00:00",
               "registered_at": "2026-06-04T11:00:00", "guests": 200}
    events = [lic("I1", "2026-06-04T10:00:00"), banquet, ack("A0", onsite, "2026-06-05T08:00:00"),
              lic("I2", "2026-06-09T10:00:00"),  # moves the clock past the unacknowledged deadline (06-09 10:00)
              ack("A1", unack, "2026-06-09T11:00:00", by="county-fso")]
    rules = {**UNRESOLVED_ON, "notice.unacknowledged": {"enabled": True}}
    notices, rejects, _ = replay(events, rules=rules, until="2026-07-20T00:00:00")
    assert rejects == [] and len(of(notices, "notice.unacknowledged")) >= 1
    assert unresolved(notices, unack) == [] and unresolved(notices, onsite) == []
    off, _, _ = replay([lic("I1", "2026-06-04T10:00:00"), ack("A1", LIC, "2026-06-05T09:00:00")],
                       until="2026-07-10T00:00:00")
    assert of(off, "notice.unresolved") == []


def test_unacknowledged_never_follows_an_unresolved_notice(replay):
    """§6: neither notice.* rule ever fires for a notice of a notice.* rule."""
    events = [lic("I1", "2026-06-04T10:00:00"), ack("A1", LIC, "2026-06-05T09:00:00")]
    rules = {**UNRESOLVED_ON, "notice.unacknowledged": {"enabled": True}}
    notices, _, _ = replay(events, rules=rules, until="2026-08-01T00:00:00")
    [n] = unresolved(notices, LIC)
    assert [u for u in of(notices, "notice.unacknowledged") if u["facts"]["notice_id"] == n["id"]] == []


@pytest.mark.parametrize("rule, value", [
    ("notice.unresolved", 0), ("notice.unresolved", 1.5), ("notice.unresolved", "10"), ("notice.unresolved", 251),
    ("sample.lab_late", 0), ("sample.lab_late", 20.0), ("sample.lab_late", -1), ("sample.lab_late", True),
])
def test_working_days_must_be_a_positive_integer_in_range(rule, value):
    """working_days: an integer 1–250; anything else refuses the config naming rule and key."""
    with pytest.raises(ConfigError) as err:
        parse(config_dict({rule: {"working_days": value}}), path="county.yaml")
    assert any(p.startswith(f"county.yaml: rules.{rule}.working_days") for p in err.value.problems), err.value.problems


def _run_engine(config, events, sink, engine=None):
    validator = Validator(config.known())
    engine = engine or Engine(config, recipients, sink, durable=True)
    for ev in events:
        try:
            engine.admit(validator.from_json(json.dumps(ev, ensure_ascii=False).encode()))
        except Rejected:
            pass
    return engine


def test_unresolved_deadline_survives_a_snapshot_and_a_close_after_it_still_counts():
    """A restored engine keeps the pending 签收 deadlines and the 签收 / 办结 state (format 3)."""
    config = parse(config_dict(UNRESOLVED_ON), path="<test>")
    events = [lic("I1", "2026-06-04T10:00:00"), lic("I2", "2026-06-04T11:00:00"),
              ack("A1", LIC, "2026-06-05T09:00:00"),
              ack("A2", nid("inspection.license_missing|红河镇|I2"), "2026-06-05T09:30:00")]
    tail = [ack("A3", nid("inspection.license_missing|红河镇|I2"), "2026-06-10T09:00:00", "办结"),
            ack("A4", LIC, "2026-06-11T09:00:00")]  # a later 签收: changes nothing
    straight: list[Any] = []
    _run_engine(config, events + tail, straight.append).finish(t("2026-07-10T00:00:00"))
    split: list[Any] = []
    blob = _run_engine(config, events, split.append).snapshot()
    assert blob.startswith(b"shian-engine/6\n")
    restored = Engine.restore(blob, config, recipients, split.append)
    _run_engine(config, tail, split.append, restored).finish(t("2026-07-10T00:00:00"))
    assert [n.to_json() for n in split] == [n.to_json() for n in straight]
    assert [(n.rule, n.facts.get("notice_id")) for n in split if n.rule == "notice.unresolved"] == [
        ("notice.unresolved", LIC)]


# --------------------------------------------------------------------------- sample.lab_late

def lab(sid: str, sampled: str, reported: str | None, **kw: Any) -> dict[str, Any]:
    ev = {"type": "sampling_result", "id": sid, "program": "food_sampling", "township": HH, "sampled_at": sampled,
          "entity": "好又多超市", "category": "粮食", "food": "大米",
          "items": [{"item": "镉", "value": 0.05, "limit": 0.2}]}
    if reported is not None:
        ev["reported_at"] = reported
    ev.update(kw)
    return ev


# (sampled_at, reported_at, extra, working days counted or None when the rule does not fire)
# 2026-03-10 → 04-08: 11–13, 16–20, 23–27, 30–31 March, 1–3 and 7–8 April (4–6 April 清明) = 20.
LAB_CASES = [
    ("2026-03-10T09:00:00", "2026-04-07T10:00:00", {}, None),     # 19
    ("2026-03-10T09:00:00", "2026-04-08T10:00:00", {}, None),     # exactly 20: not late
    ("2026-03-10T09:00:00", "2026-04-09T10:00:00", {}, 21),
    ("2026-03-10T23:30:00", "2026-04-09T00:10:00", {}, 21),       # local dates, not 24-hour spans
    ("2026-03-10T16:30:00Z", "2026-04-09T10:00:00", {}, None),    # 2026-03-11 00:30 local: 20
    ("2026-03-10", "2026-04-09T10:00:00+00:00", {}, 21),
    ("2026-03-10T09:00:00", "2026-04-09T10:00:00", {"program": "agri_monitoring"}, 21),
    ("2026-03-10T09:00:00", "2026-04-09T10:00:00", {"program": "rapid_test"}, None),   # never for rapid tests
    ("2026-03-10T09:00:00", None, {}, None),                                         # no reported_at: never
    ("2026-03-10T09:00:00", "2026-04-09T10:00:00",                                   # whatever its conclusion
     {"items": [{"item": "镉", "value": 0.5, "limit": 0.2}]}, 21),
]


@pytest.mark.parametrize("sampled, reported, extra, count", LAB_CASES)
def test_lab_late_boundaries(replay, sampled, reported, extra, count):
    """§6: the count is of official working days d with date(sampled_at) < d ≤ date(reported_at),
    local dates; exactly working_days is not late."""
    notices, rejects, _ = replay([lab("S1", sampled, reported, **extra)], rules=LAB_ON)
    assert rejects == []
    found = of(notices, "sample.lab_late")
    if count is None:
        assert found == []
        return
    [n] = found
    at = t(reported or sampled).isoformat()
    check(n, rule="sample.lab_late", township=HH, level="county", severity="info", recipients={"county-fso"},
          key="sample.lab_late|红河镇|S1", at=at, due=None, event_ids=["S1"],
          facts={"sample_id": "S1", "working_days": count, "entity": "好又多超市"})


@pytest.mark.parametrize("calendar, limit, count", [
    # 2027-01-15 → 02-19 across 春节 2027: fallback 除夕 5th and 初三 8th off → 23
    (None, 20, 23),
    (None, 23, None),
    # the office's schedule: 5–11 Feb off, Sunday 31 Jan and Saturday 20 Feb worked → 21
    ({"holidays": [f"2027-02-{d:02d}" for d in range(5, 12)], "workdays": ["2027-01-31", "2027-02-20"]}, 20, 21),
    ({"holidays": [f"2027-02-{d:02d}" for d in range(5, 12)], "workdays": ["2027-01-31", "2027-02-20"]}, 22, None),
])
def test_lab_late_across_spring_festival_2027_with_and_without_calendar(replay, calendar, limit, count):
    """The working days are counted on the config's calendar: the 2027 fallback, or calendar:."""
    notices, _, _ = replay([lab("S1", "2027-01-15T09:00:00", "2027-02-19T10:00:00")],
                           rules={"sample.lab_late": {"enabled": True, "working_days": limit}},
                           config_overrides={"calendar": calendar} if calendar else None)
    assert [n["facts"]["working_days"] for n in of(notices, "sample.lab_late")] == ([count] if count else [])


def test_lab_late_arrival_fires_at_the_clock_and_is_off_by_default(replay):
    """A late arrival fires at the clock's time (§4 at); the rule is opt-in."""
    events = [lab("S0", "2026-04-20T09:00:00", "2026-04-20T10:00:00"),
              lab("S1", "2026-03-10T09:00:00", "2026-04-09T10:00:00")]
    notices, _, _ = replay(events, rules=LAB_ON)
    [n] = of(notices, "sample.lab_late")
    check(n, at="2026-04-20T10:00:00+08:00", key="sample.lab_late|红河镇|S1")
    off, _, _ = replay(events)
    assert of(off, "sample.lab_late") == []


def _walked_deadline(start, hours, calendar):
    """The working-hours deadline walked day by day: the reference ``working_deadline`` must equal."""
    from datetime import timedelta

    from shian.rules.timeutil import local_midnight
    left, cursor, day = timedelta(hours=hours), start, start.date()
    while True:
        following = day + timedelta(days=1)
        midnight = local_midnight(following, start.tzinfo)
        if calendar.is_working_day(day):
            if left <= midnight - cursor:
                return cursor + left
            left -= midnight - cursor
        cursor, day = midnight, following


def test_working_hours_deadline_equals_the_day_by_day_walk() -> None:
    """notice.unacknowledged's working-hours deadline, over holidays, 调休 and day boundaries."""
    import random
    from datetime import datetime, timedelta

    from shian.rules.families.acks import working_deadline
    cal = parse(config_dict()).calendar
    tz = parse(config_dict()).tz
    rnd = random.Random(7)
    for _ in range(3000):
        start = datetime(2026, 1, 1, tzinfo=tz) + timedelta(seconds=rnd.randrange(0, 400 * 86400))
        if rnd.random() < 0.2:
            start = start.replace(hour=0, minute=0, second=0)
        hours = rnd.choice([24, 48, 72, 0.5, 1e-9, 23.999, rnd.uniform(0.01, 500)])
        assert working_deadline(start, hours, cal) == _walked_deadline(start, hours, cal), (start, hours)
