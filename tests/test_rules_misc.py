"""Incidents, silence, banquets, acks / notice.unacknowledged, and ``enabled: false``."""
from __future__ import annotations

from typing import Any

import pytest

from conftest import check, config_dict, nid, of
from shian.rules.config import ConfigError, parse

HH, BQ = "红河镇", "板桥镇"


def incident(iid: str, occurred: str, reported: str, township: str = HH, **kw: Any) -> dict[str, Any]:
    ev = {"type": "incident", "id": iid, "township": township, "occurred_at": occurred, "reported_at": reported,
          "kind": "食物中毒", "cases": 12, "deaths": 0}
    ev.update(kw)
    return ev


def insp(iid: str, at: str, township: str = HH, **kw: Any) -> dict[str, Any]:
    ev = {"type": "inspection", "id": iid, "inspected_at": at, "township": township, "entity": "阳光餐馆",
          "entity_type": "餐饮服务", "inspection_type": "日常检查", "outcome": "合格"}
    ev.update(kw)
    return ev


def banquet(bid: str, held: str, registered: str, guests: int, township: str = HH, **kw: Any) -> dict[str, Any]:
    ev = {"type": "banquet", "id": bid, "township": township, "village": "红河村", "host": "李大爷",
          "held_at": held, "registered_at": registered, "guests": guests}
    ev.update(kw)
    return ev


def ack(aid: str, notice: str, by: str, at: str, township: str = HH, action: str | None = None) -> dict[str, Any]:
    ev = {"type": "ack", "id": aid, "township": township, "notice_id": notice, "by": by, "acked_at": at}
    if action is not None:
        ev["action"] = action
    return ev


def report(rid: str, reporter: str, period: str, at: str, township: str = HH) -> dict[str, Any]:
    return {"type": "monthly_report", "id": rid, "reporter": reporter, "township": township,
            "period": period, "submitted_at": at}


def sample(sid: str, at: str, items: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    ev = {"type": "sampling_result", "id": sid, "township": HH, "sampled_at": at, "entity": "王五肉铺",
          "entity_id": "91W", "category": "畜禽肉", "items": items}
    ev.update(kw)
    return ev


UNACK_ON = {"notice.unacknowledged": {"enabled": True}}


# --------------------------------------------------------------------------- incidents

def test_incident_reported_always(replay):
    notices, rejects, _ = replay([incident("E1", "2026-04-10T09:00:00", "2026-04-10T10:00:00")])
    assert rejects == []
    [n] = of(notices, "incident.reported")
    check(n, rule="incident.reported", township=HH, level="county", severity="critical",
          recipients={"county-fso", "hh-fso"}, at="2026-04-10T10:00:00+08:00", key="incident.reported|红河镇|E1")
    assert of(notices, "incident.late_report") == []


@pytest.mark.parametrize("occurred, reported, late", [
    ("2026-04-10T08:00:00", "2026-04-10T10:00:00", False),      # exactly 2 h: not late
    ("2026-04-10T08:00:00", "2026-04-10T10:00:01", True),       # 2 h + 1 s
    ("2026-04-10T08:00:00", "2026-04-10T08:00:00", False),
    ("2026-04-10T02:00:00Z", "2026-04-10T10:30:00+08:00", False),  # 30 min after 10:00 local
    ("2026-04-10T02:00:00Z", "2026-04-10T12:00:01+08:00", True),
    ("2026-04-10T10:00:00+08:00", "2026-04-10T04:00:00+00:00", False),  # 12:00 local: exactly 2 h
    ("2026-04-09T23:30:00", "2026-04-10T01:30:00.5", True),
])
def test_incident_late_report(replay, occurred, reported, late):
    notices, rejects, _ = replay([incident("E1", occurred, reported)])
    assert rejects == []
    assert len(of(notices, "incident.reported")) == 1
    found = of(notices, "incident.late_report")
    assert len(found) == int(late)
    if late:
        check(found[0], level="county", severity="critical", recipients={"county-fso", "hh-fso"},
              key="incident.late_report|红河镇|E1", at=of(notices, "incident.reported")[0]["at"])


def test_incident_notice_at_is_written_with_local_offset(replay):
    notices, _, _ = replay([incident("E1", "2026-04-10T02:00:00Z", "2026-04-10T02:30:00Z")])
    [n] = of(notices, "incident.reported")
    check(n, at="2026-04-10T10:30:00+08:00")


def test_incident_report_within_hours_override(replay):
    notices, _, _ = replay([incident("E1", "2026-04-10T06:00:00", "2026-04-10T09:00:00")],
                           rules={"incident.late_report": {"report_within_hours": 4}})
    assert of(notices, "incident.late_report") == []


BY_GRADE = {"incident.late_report": {"hours_by_grade": {"Ⅰ": 1, "Ⅱ": 1, "Ⅲ": None}}}


@pytest.mark.parametrize("grade, reported, late", [
    ("Ⅰ", "2026-04-10T09:00:00", False),      # exactly its grade's 1 h
    ("Ⅰ", "2026-04-10T09:00:01", True),
    ("Ⅱ", "2026-04-10T09:30:00", True),
    ("Ⅳ", "2026-04-10T10:00:00", False),      # not a key: report_within_hours (2)
    ("Ⅳ", "2026-04-10T10:00:01", True),
    (None, "2026-04-10T10:00:01", True),       # no grade: report_within_hours
    ("Ⅰ级", "2026-04-10T09:30:00", False),    # matched exactly: Ⅰ级 is not Ⅰ, so 2 h
    ("I", "2026-04-10T09:30:00", False),       # Latin I is not Ⅰ
    ("Ⅲ", "2026-04-11T08:00:00", False),      # null: the rule is off for Ⅲ
])
def test_incident_late_report_hours_by_grade(replay, grade, reported, late):
    """limit = hours_by_grade[grade] when grade is a key (null: never late), else report_within_hours."""
    extra = {"grade": grade} if grade is not None else {}
    notices, rejects, _ = replay([incident("E1", "2026-04-10T08:00:00", reported, **extra)], rules=BY_GRADE)
    assert rejects == []
    found = of(notices, "incident.late_report")
    assert len(found) == int(late)
    if late:
        limit = 1 if grade in ("Ⅰ", "Ⅱ") else 2
        check(found[0], facts={"report_within_hours": limit})
        assert ("limit_for_grade" in found[0]["facts"]) == (grade in ("Ⅰ", "Ⅱ"))


@pytest.mark.parametrize("hours_by_grade", [{"I": 1}, {"4": 2}, {"Ⅴ": 1}, {"Ⅰ级": 1}, {"Ⅰ": 0}, {"Ⅰ": "1"}])
def test_hours_by_grade_refuses_other_keys_and_values(hours_by_grade):
    """Keys Ⅰ, Ⅱ, Ⅲ, Ⅳ only, values positive hours or null; anything else refuses the config."""
    with pytest.raises(ConfigError) as err:
        parse(config_dict({"incident.late_report": {"hours_by_grade": hours_by_grade}}), path="county.yaml")
    assert "hours_by_grade" in "\n".join(err.value.problems)


# --------------------------------------------------------------------------- source.silent

def test_source_silent_from_clock_start_and_from_last_event(replay):
    events = [insp("I1", "2026-04-01T10:00:00"), insp("I2", "2026-04-05T08:00:00")]
    notices, _, _ = replay(events, until="2026-06-01T00:00:00")
    bq = of(notices, "source.silent", BQ)
    hh = of(notices, "source.silent", HH)
    assert len(bq) == 1 and len(hh) == 1  # once per silence
    check(bq[0], rule="source.silent", level="county", severity="warning", recipients={"county-fso", "bq-fso"},
          at="2026-04-15T10:00:00+08:00", key="source.silent|板桥镇|2026-04-01T10:00:00+08:00")
    check(hh[0], level="county", severity="warning", recipients={"county-fso", "hh-fso"},
          at="2026-04-19T08:00:00+08:00", key="source.silent|红河镇|2026-04-05T08:00:00+08:00")


def test_source_silent_not_before_days(replay):
    notices, _, _ = replay([insp("I1", "2026-04-01T10:00:00")], until="2026-04-15T09:59:59")
    assert of(notices, "source.silent") == []


def test_source_silent_new_silence_after_new_event(replay):
    events = [insp("I1", "2026-04-01T10:00:00"), insp("B1", "2026-04-01T10:00:00", township=BQ),
              insp("I2", "2026-04-20T10:00:00", township=BQ), insp("I3", "2026-04-25T10:00:00")]
    notices, _, _ = replay(events, until="2026-05-20T00:00:00")
    assert [n["at"] for n in of(notices, "source.silent", HH)] == ["2026-04-15T10:00:00+08:00",
                                                                  "2026-05-09T10:00:00+08:00"]
    assert [n["at"] for n in of(notices, "source.silent", BQ)] == ["2026-04-15T10:00:00+08:00",
                                                                  "2026-05-04T10:00:00+08:00"]


def test_source_silent_days_override(replay):
    notices, _, _ = replay([insp("I1", "2026-04-01T10:00:00")], rules={"source.silent": {"days": 3}},
                           until="2026-04-04T10:00:00")
    assert {n["township"] for n in of(notices, "source.silent")} == {HH, BQ}


def test_source_silent_acks_do_not_count(replay):
    key = "incident.reported|红河镇|E1"
    events = [incident("E1", "2026-04-05T07:00:00", "2026-04-05T08:00:00"),
              ack("A1", nid(key), "hh-fso", "2026-04-10T09:00:00"),
              ack("A2", key, "county-fso", "2026-04-12T09:00:00", action="办结")]
    notices, rejects, _ = replay(events, until="2026-05-01T00:00:00")
    assert rejects == []
    [n] = of(notices, "source.silent", HH)
    check(n, at="2026-04-19T08:00:00+08:00")


@pytest.mark.parametrize("late_type", ["disposal", "banquet", "monthly_report"])
def test_source_silent_counts_disposals_banquets_and_runs_from_clock_time(replay, late_type):
    """A late arrival restarts the silence from the clock's time when it was processed."""
    late = {
        "disposal": {"type": "disposal", "id": "D1", "sample_id": "S0", "township": BQ, "disposed_at": "2026-03-20T10:00:00"},
        "banquet": banquet("B1", "2026-03-22T11:00:00", "2026-03-20T10:00:00", 30, township=BQ),
        "monthly_report": report("R1", "板桥村", "2026-03", "2026-03-20T10:00:00", township=BQ),
    }[late_type]
    events = [insp("I1", "2026-04-01T10:00:00"), insp("I2", "2026-04-05T08:00:00"), late]
    notices, rejects, _ = replay(events, until="2026-05-01T00:00:00")
    assert rejects == []
    [n] = of(notices, "source.silent", BQ)
    check(n, at="2026-04-19T08:00:00+08:00", key="source.silent|板桥镇|2026-04-05T08:00:00+08:00")


def test_source_silent_duplicates_and_rejects_do_not_count(replay):
    i1 = insp("I1", "2026-04-01T10:00:00", township=BQ)
    events = [insp("I0", "2026-04-01T10:00:00"), i1, insp("I9", "2026-04-05T08:00:00"),
              dict(i1),                                                  # duplicate, processed at 04-05
              insp("I8", "2026-04-05T08:00:00", township=BQ, outcome="不存在")]  # rejected
    notices, rejects, summary = replay(events, until="2026-05-01T00:00:00")
    assert summary.duplicates == 1 and len(rejects) == 1
    [n] = of(notices, "source.silent", BQ)
    check(n, at="2026-04-15T10:00:00+08:00")


# --------------------------------------------------------------------------- banquets

@pytest.mark.parametrize("guests, registered, late", [
    (50, "2026-04-19T12:00:00", True),    # 23 h before
    (50, "2026-04-19T11:00:00", False),   # exactly 24 h before: not less than
    (49, "2026-04-20T10:00:00", False),   # under min_guests
    (80, "2026-04-20T12:00:00", True),    # registered after held_at
    (80, "2026-04-18T11:00:00", False),
])
def test_banquet_late_registration(replay, guests, registered, late):
    notices, rejects, _ = replay([banquet("B1", "2026-04-20T11:00:00", registered, guests)])
    assert rejects == []
    found = of(notices, "banquet.late_registration")
    assert len(found) == int(late)
    if late:
        check(found[0], rule="banquet.late_registration", township=HH, level="town", severity="warning",
              recipients={"hh-fso"}, at=f"{registered}+08:00", key="banquet.late_registration|红河镇|B1",
              facts={"host": "李大爷", "guests": guests})


def test_banquet_notices_go_to_town_office_only_even_if_routed(replay):
    over = {"townships": {HH: {"routing": {"蔬菜": "hh-agri", "农村集体聚餐": "hh-edu", "宴席": "hh-edu"}}}}
    notices, _, _ = replay([banquet("B1", "2026-04-20T11:00:00", "2026-04-20T08:00:00", 150)], config_overrides=over)
    for rule in ("banquet.late_registration", "banquet.onsite_guidance"):
        [n] = of(notices, rule)
        check(n, recipients={"hh-fso"})


def test_banquet_min_guests_override(replay):
    notices, _, _ = replay([banquet("B1", "2026-04-20T11:00:00", "2026-04-20T08:00:00", 30)],
                           rules={"banquet.late_registration": {"min_guests": 30}})
    assert len(of(notices, "banquet.late_registration")) == 1


@pytest.mark.parametrize("guests, fires", [(100, True), (99, False), (300, True)])
def test_banquet_onsite_guidance(replay, guests, fires):
    notices, _, _ = replay([banquet("B1", "2026-04-20T11:00:00", "2026-04-15T10:00:00", guests, township=BQ)])
    found = of(notices, "banquet.onsite_guidance")
    assert len(found) == int(fires)
    if fires:
        check(found[0], rule="banquet.onsite_guidance", township=BQ, level="town", severity="info",
              recipients={"bq-fso"}, at="2026-04-15T10:00:00+08:00", due="2026-04-20T11:00:00+08:00",
              key="banquet.onsite_guidance|板桥镇|B1", facts={"host": "李大爷", "guests": guests})
    assert of(notices, "banquet.late_registration") == []


# --------------------------------------------------------------------------- notice.unacknowledged

def lic(iid: str, at: str, **kw: Any) -> dict[str, Any]:
    """An inspection that raises inspection.license_missing (town, warning, to hh-fso)."""
    return insp(iid, at, license_valid=False, **kw)


LIC = lambda iid: nid(f"inspection.license_missing|红河镇|{iid}")  # noqa: E731
INC = lambda iid: nid(f"incident.reported|红河镇|{iid}")           # noqa: E731


def unacks(notices: list[dict[str, Any]], target: str) -> list[dict[str, Any]]:
    return [n for n in of(notices, "notice.unacknowledged") if n["facts"]["notice_id"] == target]


def test_unacknowledged_is_off_by_default(replay):
    events = [incident("E1", "2026-04-10T09:00:00", "2026-04-10T10:00:00"), lic("I1", "2026-04-10T10:00:00")]
    notices, _, _ = replay(events, until="2026-04-30T00:00:00")
    assert of(notices, "notice.unacknowledged") == []


def test_unacknowledged_critical_24_clock_hours_county_level_escalates(replay):
    # Friday 10:00: critical counts every hour, weekend included
    notices, _, _ = replay([incident("E1", "2026-04-10T09:00:00", "2026-04-10T10:00:00")], rules=UNACK_ON,
                           until="2026-04-12T00:00:00")
    [n] = unacks(notices, INC("E1"))
    check(n, rule="notice.unacknowledged", township=HH, level="county", severity="critical",
          recipients={"county-lead"}, at="2026-04-11T10:00:00+08:00",
          key=f"notice.unacknowledged|红河镇|{INC('E1')}", facts={"notice_id": INC("E1")})


def test_unacknowledged_county_level_defaults_to_county_office_without_escalation(replay):
    notices, _, _ = replay([incident("E1", "2026-04-10T09:00:00", "2026-04-10T10:00:00")], rules=UNACK_ON,
                           config_overrides={"county": {"escalation": []}}, until="2026-04-12T00:00:00")
    [n] = unacks(notices, INC("E1"))
    check(n, recipients={"county-fso"})


@pytest.mark.parametrize("issued, expected", [
    ("2026-03-13T10:00:00", "2026-03-18T10:00:00+08:00"),  # Fri → Wed, weekend skipped (14+24+24+10)
    ("2026-03-14T15:00:00", "2026-03-19T00:00:00+08:00"),  # Sat: counting starts Mon 00:00
    ("2026-04-30T10:00:00", "2026-05-08T10:00:00+08:00"),  # Thu before 劳动节 (05-01..05-05 off)
    ("2026-05-08T10:00:00", "2026-05-12T10:00:00+08:00"),  # Sat 05-09 is a 调休 workday
])
def test_unacknowledged_warning_72_working_hours(replay, issued, expected):
    notices, rejects, _ = replay([lic("I1", issued)], rules=UNACK_ON, until="2026-05-20T00:00:00",
                                 config_overrides={"max_jump_days": 120})
    assert rejects == []
    [n] = unacks(notices, LIC("I1"))
    check(n, rule="notice.unacknowledged", township=HH, level="county", severity="warning",
          recipients={"county-fso", "hh-fso"}, at=expected, key=f"notice.unacknowledged|红河镇|{LIC('I1')}",
          facts={"notice_id": LIC("I1")})


def test_unacknowledged_warning_not_before_deadline(replay):
    notices, _, _ = replay([lic("I1", "2026-03-13T10:00:00")], rules=UNACK_ON, until="2026-03-18T09:59:59")
    assert unacks(notices, LIC("I1")) == []


@pytest.mark.parametrize("ack_ev, fires, rejected", [
    (ack("A1", LIC("I1"), "hh-fso", "2026-03-16T09:00:00"), False, False),
    (ack("A1", LIC("I1"), "hh-fso", "2026-03-16T09:00:00", action="办结"), False, False),
    (ack("A1", "inspection.license_missing|红河镇|I1", "hh-fso", "2026-03-16T09:00:00"), False, False),  # by key
    (ack("A1", LIC("I1"), "hh-fso", "2026-03-18T09:59:59"), False, False),
    (ack("A1", LIC("I1"), "hh-fso", "2026-03-18T10:00:00"), True, False),     # at the deadline: late
    (ack("A1", LIC("I1"), "county-fso", "2026-03-16T09:00:00"), True, True),  # not a recipient
    (ack("A1", nid("nope"), "hh-fso", "2026-03-16T09:00:00"), True, True),    # unknown notice
])
def test_unacknowledged_acks(replay, ack_ev, fires, rejected):
    notices, rejects, _ = replay([lic("I1", "2026-03-13T10:00:00"), ack_ev], rules=UNACK_ON,
                                 until="2026-03-25T00:00:00")
    assert len(unacks(notices, LIC("I1"))) == int(fires)
    assert len(rejects) == int(rejected)
    if rejected:
        assert rejects[0]["line"] == 2 and rejects[0]["reason"]


def test_late_ack_checked_against_notices_issued_by_its_acked_at(replay):
    """§3: an ack is checked against the notices issued up to its acked_at; a notice issued
    later (here 03-13 10:00) is unknown to an ack dated 03-13 09:00, even if it arrives late."""
    events = [insp("X", "2026-03-12T10:00:00"), lic("I1", "2026-03-13T10:00:00"),
              insp("Y", "2026-03-13T12:00:00"),
              ack("A1", LIC("I1"), "hh-fso", "2026-03-13T09:00:00")]
    notices, rejects, _ = replay(events, rules=UNACK_ON, until="2026-03-25T00:00:00")
    assert [r["line"] for r in rejects] == [4]
    assert len(unacks(notices, LIC("I1"))) == 1


def test_late_ack_dated_before_deadline_arriving_after_it(replay):
    """The unacknowledged notice already fired; the ack itself is valid (the notice existed)."""
    events = [lic("I1", "2026-03-13T10:00:00"), insp("Y", "2026-03-19T12:00:00"),
              ack("A1", LIC("I1"), "hh-fso", "2026-03-16T09:00:00")]
    notices, rejects, _ = replay(events, rules=UNACK_ON, until="2026-03-25T00:00:00")
    assert rejects == []
    assert len(unacks(notices, LIC("I1"))) == 1


def test_ack_from_another_township_is_rejected(replay):
    events = [lic("I1", "2026-03-13T10:00:00"), ack("A1", LIC("I1"), "hh-fso", "2026-03-16T09:00:00", township=BQ)]
    notices, rejects, _ = replay(events, rules=UNACK_ON, until="2026-03-25T00:00:00")
    assert [r["line"] for r in rejects] == [2]
    assert len(unacks(notices, LIC("I1"))) == 1


@pytest.mark.parametrize("calendar, expected", [
    # Thu 2027-09-30 10:00, no published schedule: Thu 14 h, 国庆 1–3 Oct and the weekend off,
    # Mon 24 h + Tue 24 h + Wed 10 h (§6 statutory fallback, no 调休 guessed)
    (None, "2027-10-06T10:00:00+08:00"),
    # calendar: owns 2027 once it lists any date: 1 Oct (Fri) works unless listed → Fri 24 + Mon 24 + Tue 10
    ({"holidays": ["2027-12-31"]}, "2027-10-05T10:00:00+08:00"),
    # 1 Oct listed off, Saturday 2 Oct a listed workday → Sat 24 + Mon 24 + Tue 10
    ({"holidays": ["2027-10-01"], "workdays": ["2027-10-02"]}, "2027-10-05T10:00:00+08:00"),
    ({"holidays": ["2027-10-01", "2027-10-04"], "workdays": ["2027-10-02"]}, "2027-10-06T10:00:00+08:00"),
])
def test_unacknowledged_working_hours_in_a_year_without_published_schedule(replay, calendar, expected):
    """notice.unacknowledged counts 2027 (not in the pinned library) on the statutory fallback, or on calendar:."""
    from shian.rules.calendar import Calendar
    assert Calendar().source(2027) == "statutory"
    overrides = {"calendar": calendar} if calendar else None
    notices, _, _ = replay([lic("I1", "2027-09-30T10:00:00")], rules=UNACK_ON, until="2027-10-10T00:00:00",
                           config_overrides=overrides)
    [n] = unacks(notices, LIC("I1"))
    check(n, at=expected)


def test_ack_by_routed_recipient_counts(replay):
    ev = lic("I1", "2026-03-13T10:00:00", entity="实验小学食堂", entity_type="学校食堂")
    notices, rejects, _ = replay([ev, ack("A1", LIC("I1"), "hh-edu", "2026-03-16T09:00:00")], rules=UNACK_ON,
                                 until="2026-03-25T00:00:00")
    assert rejects == [] and unacks(notices, LIC("I1")) == []


def test_ack_for_notice_not_yet_issued_is_rejected(replay):
    """An ack is checked against the notices issued up to its acked_at."""
    events = [insp("X", "2026-03-12T10:00:00"), ack("A1", LIC("I1"), "hh-fso", "2026-03-12T11:00:00"),
              lic("I1", "2026-03-13T10:00:00")]
    notices, rejects, _ = replay(events, rules=UNACK_ON, until="2026-03-25T00:00:00")
    assert [r["line"] for r in rejects] == [2]
    assert len(unacks(notices, LIC("I1"))) == 1


def test_ack_of_deadline_notice_fired_at_acked_at_is_accepted(replay):
    """Deadlines at or before acked_at fire first, so the ack can name that notice."""
    key = "report.overdue|红河镇|新寨村|2026-03"
    events = [report("R0", "红河村", "2026-03", "2026-03-20T10:00:00"),
              ack("A1", nid(key), "hh-fso", "2026-03-26T00:00:00")]
    notices, rejects, _ = replay(events, rules=UNACK_ON, until="2026-04-10T00:00:00")
    assert rejects == []
    assert unacks(notices, nid(key)) == []
    assert len(unacks(notices, nid("report.overdue|红河镇|镇卫生院|2026-03"))) == 1


def test_unacknowledged_hours_null_switches_one_off(replay):
    events = [incident("E1", "2026-03-13T09:00:00", "2026-03-13T10:00:00"), lic("I1", "2026-03-13T10:00:00")]
    rules = {"notice.unacknowledged": {"enabled": True, "hours": {"warning": None}}}
    notices, _, _ = replay(events, rules=rules, until="2026-03-25T00:00:00")
    assert unacks(notices, LIC("I1")) == []
    [n] = unacks(notices, INC("E1"))  # critical keeps its default 24 h
    check(n, at="2026-03-14T10:00:00+08:00")


def test_unacknowledged_hours_override_merges_per_severity(replay):
    events = [incident("E1", "2026-03-13T09:00:00", "2026-03-13T10:00:00"), lic("I1", "2026-03-13T10:00:00")]
    rules = {"notice.unacknowledged": {"enabled": True, "hours": {"critical": 2}}}
    notices, _, _ = replay(events, rules=rules, until="2026-03-25T00:00:00")
    check(unacks(notices, INC("E1"))[0], at="2026-03-13T12:00:00+08:00")
    check(unacks(notices, LIC("I1"))[0], at="2026-03-18T10:00:00+08:00")


def test_unacknowledged_never_for_its_own_notices_nor_info(replay):
    events = [incident("E1", "2026-03-13T09:00:00", "2026-03-13T10:00:00"),
              banquet("B1", "2026-03-20T11:00:00", "2026-03-13T11:00:00", 200)]
    notices, _, _ = replay(events, rules=UNACK_ON, until="2026-04-10T00:00:00")
    own = {n["id"] for n in of(notices, "notice.unacknowledged")}
    assert own
    assert not any(n["facts"]["notice_id"] in own for n in of(notices, "notice.unacknowledged"))
    onsite = nid("banquet.onsite_guidance|红河镇|B1")
    assert unacks(notices, onsite) == []


# --------------------------------------------------------------------------- enabled: false

def test_disabled_overdue_escalation_still_fires(replay):
    events = [report("R0", "红河村", "2026-04", "2026-04-20T10:00:00")]
    notices, _, _ = replay(events, rules={"report.overdue": {"enabled": False}}, until="2026-05-01T00:00:00")
    assert of(notices, "report.overdue") == []
    assert {n["facts"]["reporter"] for n in of(notices, "report.escalation", HH)} == {"新寨村", "镇卫生院"}
    assert len(of(notices, "report.reminder", HH)) == 2


def test_disabled_banned_suppresses_unqualified_too_but_not_others(replay):
    items = [{"item": "克伦特罗", "value": 0.5, "limit": 0}]
    events = [sample("S1", "2026-01-05T10:00:00", items), sample("S2", "2026-01-10T10:00:00", items)]
    notices, _, _ = replay(events, rules={"sample.banned_substance": {"enabled": False}},
                           until="2026-04-10T10:00:00", config_overrides={"max_jump_days": 120})
    assert of(notices, "sample.banned_substance") == []
    assert of(notices, "sample.unqualified") == []
    assert [n["key"] for n in of(notices, "entity.repeat_offender")] == ["entity.repeat_offender|红河镇|S2"]
    assert [n["key"] for n in of(notices, "sample.disposal_overdue")] == [
        "sample.disposal_overdue|红河镇|S1", "sample.disposal_overdue|红河镇|S2"]


def test_disabled_unqualified_keeps_disposal_overdue(replay):
    ev = sample("S1", "2026-01-05T10:00:00", [{"item": "铅", "value": 1, "limit": 0.2}])
    notices, _, _ = replay([ev], rules={"sample.unqualified": {"enabled": False}}, until="2026-04-05T10:00:00",
                           config_overrides={"max_jump_days": 120})
    assert of(notices, "sample.unqualified") == []
    [n] = of(notices, "sample.disposal_overdue")
    check(n, at="2026-04-05T10:00:00+08:00")


def test_disabled_incident_reported_keeps_late_report(replay):
    notices, _, _ = replay([incident("E1", "2026-04-10T06:00:00", "2026-04-10T10:00:00")],
                           rules={"incident.reported": {"enabled": False}})
    assert of(notices, "incident.reported") == []
    assert len(of(notices, "incident.late_report")) == 1
