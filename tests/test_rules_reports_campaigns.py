"""Monthly reports and holiday campaigns (§3, §6 Reports, campaigns)."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from lunardate import LunarDate

from conftest import check, of

HH, BQ = "红河镇", "板桥镇"
HH_REPORTERS = {"红河村", "新寨村", "镇卫生院"}


def report(rid: str, reporter: str, period: str, at: str, township: str = HH) -> dict[str, Any]:
    return {"type": "monthly_report", "id": rid, "reporter": reporter, "township": township,
            "period": period, "submitted_at": at}


def insp(iid: str, at: str, *, township: str = HH, inspection_type: str = "日常检查", outcome: str = "合格",
         **kw: Any) -> dict[str, Any]:
    ev = {"type": "inspection", "id": iid, "inspected_at": at, "township": township, "entity": "集贸市场",
          "entity_type": "集贸市场", "inspection_type": inspection_type, "outcome": outcome}
    ev.update(kw)
    return ev


def reporters_of(notices: list[dict[str, Any]], rule: str, period: str, township: str = HH) -> set[str]:
    return {n["facts"]["reporter"] for n in of(notices, rule, township) if n["facts"]["period"] == period}


# --------------------------------------------------------------------------- report.reminder

def test_report_reminder_at_0900_on_22nd(replay):
    events = [report("R1", "红河村", "2026-04", "2026-04-10T10:00:00")]
    notices, rejects, _ = replay(events, until="2026-04-22T09:00:00")
    assert rejects == []
    rem = [n for n in of(notices, "report.reminder") if n["facts"]["period"] == "2026-04"]
    assert {(n["township"], n["facts"]["reporter"]) for n in rem} == {
        (HH, "新寨村"), (HH, "镇卫生院"), (BQ, "板桥村")}
    for n in rem:
        office = "hh-fso" if n["township"] == HH else "bq-fso"
        check(n, rule="report.reminder", level="town", severity="info", recipients={office},
              at="2026-04-22T09:00:00+08:00",
              key=f"report.reminder|{n['township']}|{n['facts']['reporter']}|2026-04")


def test_report_reminder_not_before_0900(replay):
    notices, _, _ = replay([report("R1", "红河村", "2026-04", "2026-04-10T10:00:00")], until="2026-04-22T08:59:59")
    assert of(notices, "report.reminder") == []


def test_report_for_another_period_does_not_count(replay):
    events = [report("R1", "红河村", "2026-03", "2026-04-10T10:00:00")]
    notices, _, _ = replay(events, until="2026-04-22T09:00:00")
    assert reporters_of(notices, "report.reminder", "2026-04") == HH_REPORTERS


def test_report_submitted_before_its_month_counts(replay):
    events = [report("R1", "新寨村", "2026-04", "2026-03-30T10:00:00")]
    notices, _, _ = replay(events, until="2026-05-01T00:00:00")
    for rule in ("report.reminder", "report.overdue", "report.escalation"):
        assert reporters_of(notices, rule, "2026-04") == {"红河村", "镇卫生院"}


# --------------------------------------------------------------------------- report.overdue

@pytest.mark.parametrize("submitted_at, overdue", [
    ("2026-04-25T23:59:59", False),
    ("2026-04-26T00:00:00", True),  # the deadline fires first
])
def test_report_overdue_edge(replay, submitted_at, overdue):
    events = [report("R0", "红河村", "2026-04", "2026-04-20T10:00:00"), report("R1", "新寨村", "2026-04", submitted_at)]
    notices, rejects, _ = replay(events, until="2026-04-26T00:00:00")
    assert rejects == []
    expected = {"镇卫生院"} | ({"新寨村"} if overdue else set())
    assert reporters_of(notices, "report.overdue", "2026-04") == expected
    for n in of(notices, "report.overdue", HH):
        check(n, level="town", severity="warning", recipients={"hh-fso"}, at="2026-04-26T00:00:00+08:00",
              due=None, key=f"report.overdue|红河镇|{n['facts']['reporter']}|2026-04")


def test_report_overdue_not_on_the_due_day(replay):
    notices, _, _ = replay([report("R0", "红河村", "2026-04", "2026-04-20T10:00:00")], until="2026-04-25T23:59:59")
    assert of(notices, "report.overdue") == []


# --------------------------------------------------------------------------- report.escalation

def test_report_escalation_five_days_after_overdue(replay):
    events = [report("R0", "红河村", "2026-04", "2026-04-20T10:00:00")]
    notices, _, _ = replay(events, until="2026-05-01T00:00:00")
    esc = [n for n in of(notices, "report.escalation") if n["facts"]["period"] == "2026-04"]
    assert {(n["township"], n["facts"]["reporter"]) for n in esc} == {(HH, "新寨村"), (HH, "镇卫生院"), (BQ, "板桥村")}
    for n in esc:
        office = "hh-fso" if n["township"] == HH else "bq-fso"
        check(n, rule="report.escalation", level="county", severity="warning", recipients={"county-fso", office},
              at="2026-05-01T00:00:00+08:00",
              key=f"report.escalation|{n['township']}|{n['facts']['reporter']}|2026-04")


def test_report_escalation_not_before_its_time(replay):
    notices, _, _ = replay([report("R0", "红河村", "2026-04", "2026-04-20T10:00:00")], until="2026-04-30T23:59:59")
    assert of(notices, "report.escalation") == []


def test_report_escalation_even_if_clock_started_after_overdue(replay):
    events = [report("R0", "红河村", "2026-04", "2026-04-28T10:00:00")]
    notices, _, _ = replay(events, until="2026-05-01T00:00:00")
    assert reporters_of(notices, "report.overdue", "2026-04") == set()  # before the clock start
    assert reporters_of(notices, "report.escalation", "2026-04") == {"新寨村", "镇卫生院"}


def test_late_report_stops_escalation(replay):
    events = [report("R0", "红河村", "2026-04", "2026-04-20T10:00:00"),
              report("R1", "新寨村", "2026-04", "2026-04-28T10:00:00")]
    notices, _, _ = replay(events, until="2026-05-01T00:00:00")
    assert reporters_of(notices, "report.overdue", "2026-04") == {"新寨村", "镇卫生院"}
    assert reporters_of(notices, "report.escalation", "2026-04") == {"镇卫生院"}


def test_report_arriving_late_by_event_time_still_stops_escalation(replay):
    events = [report("R0", "红河村", "2026-04", "2026-04-20T10:00:00"),
              report("X", "板桥村", "2026-04", "2026-04-29T10:00:00", township=BQ),
              report("R1", "新寨村", "2026-04", "2026-04-24T10:00:00")]  # late arrival, clock at 04-29
    notices, rejects, _ = replay(events, until="2026-05-01T00:00:00")
    assert rejects == []
    assert reporters_of(notices, "report.overdue", "2026-04") == {"新寨村", "镇卫生院"}  # fired at 04-26
    assert reporters_of(notices, "report.escalation", "2026-04") == {"镇卫生院"}


def test_report_escalation_fires_once(replay):
    events = [report("R0", "红河村", "2026-04", "2026-04-20T10:00:00"),
              report("R9", "红河村", "2026-05", "2026-05-10T10:00:00")]
    notices, _, _ = replay(events, until="2026-05-10T10:00:00")
    assert len([n for n in of(notices, "report.escalation", HH) if n["facts"]["reporter"] == "镇卫生院"
                and n["facts"]["period"] == "2026-04"]) == 1


def test_report_due_day_and_remind_days_before_overrides(replay):
    rules = {"report.reminder": {"due_day": 10, "remind_days_before": 2},
             "report.escalation": {"escalate_after_days": 3}}
    events = [report("R0", "红河村", "2026-04", "2026-04-02T10:00:00")]
    notices, _, _ = replay(events, rules=rules, until="2026-04-30T00:00:00")
    hh = lambda rule: [n for n in of(notices, rule, HH) if n["facts"]["period"] == "2026-04"]  # noqa: E731
    assert {n["at"] for n in hh("report.reminder")} == {"2026-04-08T09:00:00+08:00"}
    assert {n["at"] for n in hh("report.overdue")} == {"2026-04-11T00:00:00+08:00"}
    assert {n["at"] for n in hh("report.escalation")} == {"2026-04-14T00:00:00+08:00"}
    assert {n["facts"]["reporter"] for n in hh("report.escalation")} == {"新寨村", "镇卫生院"}


# --------------------------------------------------------------------------- campaigns

def spring_festival(year: int) -> date:
    return LunarDate(year, 1, 1).to_solar_date()


def holiday_date(name: str, year: int) -> date:
    return {"元旦": date(year, 1, 1), "劳动节": date(year, 5, 1), "国庆节": date(year, 10, 1)}.get(name) \
        or spring_festival(year)


def iso(d: date, hhmm: str = "00:00:00") -> str:
    return f"{d.isoformat()}T{hhmm}"


CAMPAIGN_CASES = [("元旦", 2027), ("春节", 2026), ("春节", 2027), ("劳动节", 2026), ("国庆节", 2026)]


@pytest.mark.parametrize("holiday, year", CAMPAIGN_CASES)
def test_campaign_reminder_and_missed(replay, holiday, year):
    h = holiday_date(holiday, year)
    start = h - timedelta(days=20)
    events = [insp("I0", iso(start, "10:00:00"))]  # a 日常检查: does not count for the campaign
    notices, rejects, _ = replay(events, until=iso(h))
    assert rejects == []
    rem = [n for n in of(notices, "campaign.reminder") if n["facts"]["holiday"] == holiday]
    assert {n["township"] for n in rem} == {HH, BQ}
    for n in rem:
        office = "hh-fso" if n["township"] == HH else "bq-fso"
        check(n, rule="campaign.reminder", level="town", severity="info", recipients={office},
              at=iso(h - timedelta(days=10), "09:00:00+08:00"),
              key=f"campaign.reminder|{n['township']}|{holiday}|{h.isoformat()}",
              facts={"holiday": holiday, "date": h.isoformat()})
    missed = [n for n in of(notices, "campaign.missed") if n["facts"]["holiday"] == holiday]
    assert {n["township"] for n in missed} == {HH, BQ}
    for n in missed:
        office = "hh-fso" if n["township"] == HH else "bq-fso"
        check(n, rule="campaign.missed", level="county", severity="warning", recipients={"county-fso", office},
              at=iso(h, "00:00:00+08:00"), key=f"campaign.missed|{n['township']}|{holiday}|{h.isoformat()}",
              facts={"holiday": holiday, "date": h.isoformat()})


@pytest.mark.parametrize("year", [1901, 1985, 2033, 2057, 2099])
def test_spring_festival_date_across_supported_years(replay, year):
    """§6: 春节 must be right for every year from 1901 to 2099 (expected from lunardate); events
    before 2000 need the config's ``min_event_date`` moved back (revision 5)."""
    h = spring_festival(year)
    notices, _, _ = replay([insp("I0", iso(h - timedelta(days=15), "10:00:00"))], until=iso(h),
                           config_overrides={"min_event_date": "1900-01-01"})
    rem = [n for n in of(notices, "campaign.reminder", HH) if n["facts"]["holiday"] == "春节"]
    assert [(n["at"], n["facts"]["date"]) for n in rem] == [(iso(h - timedelta(days=10), "09:00:00+08:00"), h.isoformat())]
    assert [n["facts"]["date"] for n in of(notices, "campaign.missed", HH) if n["facts"]["holiday"] == "春节"] == [h.isoformat()]


def test_campaign_rules_cover_every_year(replay):
    notices, _, _ = replay([insp("I0", "2026-09-01T10:00:00")], until="2027-10-01T00:00:00")
    rem = sorted((n["facts"]["holiday"], n["facts"]["date"]) for n in of(notices, "campaign.reminder", HH))
    assert rem == sorted([("国庆节", "2026-10-01"), ("元旦", "2027-01-01"),
                          ("春节", spring_festival(2027).isoformat()), ("劳动节", "2027-05-01"), ("国庆节", "2027-10-01")])
    assert len(of(notices, "campaign.missed", HH)) == 5


def test_campaign_reminder_not_before_0900(replay):
    notices, _, _ = replay([insp("I0", "2026-04-01T10:00:00")], until="2026-04-21T08:59:59")
    assert [n for n in of(notices, "campaign.reminder") if n["facts"]["holiday"] == "劳动节"] == []


@pytest.mark.parametrize("joint_at, missed", [
    ("2026-04-01T00:00:00", False),   # exactly H − 30 d: counts
    ("2026-03-31T23:59:59", True),    # just before the window
    ("2026-04-20T10:00:00", False),
    ("2026-04-30T23:59:59", False),
    ("2026-05-01T00:00:00", True),    # at H: outside [H − 30 d, H)
])
def test_campaign_missed_window_edges(replay, joint_at, missed):
    events = [insp("I0", "2026-03-25T10:00:00"),
              insp("J1", joint_at, inspection_type="节前联合检查")]
    notices, rejects, _ = replay(sorted(events, key=lambda e: e["inspected_at"]), until="2026-05-01T00:00:00")
    assert rejects == []
    hh = [n for n in of(notices, "campaign.missed", HH) if n["facts"]["holiday"] == "劳动节"]
    assert len(hh) == int(missed)
    assert len([n for n in of(notices, "campaign.missed", BQ) if n["facts"]["holiday"] == "劳动节"]) == 1


def test_campaign_joint_inspection_outcome_does_not_matter(replay):
    events = [insp("J1", "2026-04-20T10:00:00", inspection_type="节前联合检查", outcome="限期整改", rectify_by="2026-04-25")]
    notices, rejects, _ = replay(events, until="2026-05-01T00:00:00")
    assert rejects == []
    assert [n for n in of(notices, "campaign.missed", HH) if n["facts"]["holiday"] == "劳动节"] == []


def test_campaign_joint_inspection_in_another_township_does_not_count(replay):
    events = [insp("J1", "2026-04-20T10:00:00", inspection_type="节前联合检查", township=BQ)]
    notices, _, _ = replay(events, until="2026-05-01T00:00:00")
    assert {n["township"] for n in of(notices, "campaign.missed") if n["facts"]["holiday"] == "劳动节"} == {HH}


def test_campaign_reminder_fires_even_if_inspection_done(replay):
    events = [insp("J1", "2026-04-05T10:00:00", inspection_type="节前联合检查")]
    notices, _, _ = replay(events, until="2026-05-01T00:00:00")
    assert {n["township"] for n in of(notices, "campaign.reminder") if n["facts"]["holiday"] == "劳动节"} == {HH, BQ}
    assert {n["township"] for n in of(notices, "campaign.missed") if n["facts"]["holiday"] == "劳动节"} == {BQ}


def test_one_joint_inspection_counts_for_two_holidays(replay):
    h1, h2 = date(2028, 1, 1), spring_festival(2028)
    assert h2 - timedelta(days=30) < h1  # windows overlap
    joint = h2 - timedelta(days=30) + timedelta(hours=10)
    events = [insp("I0", "2027-12-01T10:00:00"),
              insp("J1", f"{joint.isoformat()}T10:00:00", inspection_type="节前联合检查")]
    notices, rejects, _ = replay(events, until=iso(h2))
    assert rejects == []
    missed_hh = {n["facts"]["holiday"] for n in of(notices, "campaign.missed", HH)}
    missed_bq = {n["facts"]["holiday"] for n in of(notices, "campaign.missed", BQ)}
    assert missed_bq == {"元旦", "春节"}
    assert missed_hh == set()


def test_campaign_holidays_override_applies_to_both_rules(replay):
    events = [insp("I0", "2026-04-01T10:00:00")]
    notices, _, _ = replay(events, rules={"campaign.reminder": {"holidays": ["春节"]}}, until="2026-05-01T00:00:00")
    assert of(notices, "campaign.reminder") == []
    assert of(notices, "campaign.missed") == []


def test_campaign_remind_days_before_and_window_days_overrides(replay):
    rules = {"campaign.reminder": {"remind_days_before": 7}, "campaign.missed": {"window_days": 10}}
    events = [insp("I0", "2026-04-01T10:00:00"), insp("J1", "2026-04-20T10:00:00", inspection_type="节前联合检查")]
    notices, _, _ = replay(events, rules=rules, until="2026-05-01T00:00:00")
    assert {n["at"] for n in of(notices, "campaign.reminder") if n["facts"]["holiday"] == "劳动节"} == {
        "2026-04-24T09:00:00+08:00"}
    # 04-20 is before [04-21, 05-01): both townships missed
    assert {n["township"] for n in of(notices, "campaign.missed") if n["facts"]["holiday"] == "劳动节"} == {HH, BQ}
