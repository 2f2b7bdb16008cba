"""The register tally (shian.rules.measures.frequency): the 检查频次 figures, per township × risk
level, from the computation ``inspection.frequency_due`` decides on.

Checks here are quarterly (04-01 0.25, 07-01 0.5, 12-01 1.0) at 09:00, with the default
``per_year {A: 1, B: 2, C: 3, D: 4}``: on 1 April every grade needs 1, on 1 July A 1, B 1, C 2,
D 2, on 1 December the whole year.
"""
from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction
from typing import Any

import pytest

from conftest import TZ, config_dict, t
from shian.notifiers.routing import recipients
from shian.rules.config import parse
from shian.rules.engine import Engine
from shian.rules.events import Validator
from shian.rules.families import FAMILIES
from shian.rules.measures import check_time, latest_check, required

HH = "红河镇"
CHECKS = {"04-01": 0.25, "07-01": 0.5, "12-01": 1.0}
RULES = {"inspection.frequency_due": {"checks": CHECKS}}


def reg(rid: str, at: str, risk: str = "B", *, name: str = "阳光餐馆", eid: str | None = "91YG", **kw: Any) -> dict:
    ev = {"type": "entity", "id": rid, "township": HH, "entity": name, "entity_type": "餐饮服务",
          "risk_level": risk, "registered_at": at, **kw}
    if eid:
        ev["entity_id"] = eid
    return ev


def insp(iid: str, at: str, *, name: str = "阳光餐馆", eid: str | None = "91YG") -> dict:
    ev = {"type": "inspection", "id": iid, "township": HH, "inspected_at": at, "entity": name,
          "entity_type": "餐饮服务", "inspection_type": "日常检查", "outcome": "合格"}
    if eid:
        ev["entity_id"] = eid
    return ev


def clock(at: str) -> dict:
    """An event of the other township, to start or move the clock."""
    return {"type": "monthly_report", "id": f"M-{at}", "township": "板桥镇", "reporter": "板桥村",
            "period": "2026-01", "submitted_at": at}


def engine(events: list[dict], *, families=FAMILIES, durable: bool = False, overrides=None) -> tuple[Engine, list]:
    config = parse(config_dict(RULES, overrides), path="<test>")
    raised: list = []
    e = Engine(config, recipients, raised.append, families=families, durable=durable)
    v = Validator(config.known())
    for obj in events:
        ev = v.from_object(obj)
        if e.clock is not None and ev.type != "entity" and ev.time - e.clock > timedelta(days=50):
            e.advance(ev.time - timedelta(days=1))   # steps within max_jump_days
        e.admit(ev)
    return e, raised


def cell(e: Engine, period: str, now: str, level: str = "B", township: str = HH):
    return next(r for r in e.figures("frequency", period, t(now)) if (r.township, r.risk_level) == (township, level))


@pytest.mark.parametrize("now, check_date, need, done, behind", [
    ("2026-03-31T23:00:00", None, 0, 1, 0),                     # before the first check date: no quota yet
    ("2026-04-01T08:59:59", None, 0, 1, 0),
    ("2026-04-01T09:00:00", date(2026, 4, 1), 1, 1, 0),          # exactly at the check: it counts
    ("2026-07-01T08:59:59", date(2026, 4, 1), 1, 1, 0),
    ("2026-07-01T09:00:00", date(2026, 7, 1), 2, 1, 1),          # C: ceil(0.5 × 3) = 2; the 09:00 one is too late
    ("2026-11-30T23:00:00", date(2026, 7, 1), 2, 1, 1),
    ("2026-12-01T09:00:00", date(2026, 12, 1), 3, 3, 0),
])
def test_the_quota_is_the_latest_check_passed(now, check_date, need, done, behind):
    """Quota and done are those of the year's latest check date passed (09:00 of it); done
    counts inspections in [1 January, check), one exactly at the check not; before the first
    check date the quota is 0 and done is what was done so far; last year's do not count."""
    times = ("2026-03-25T10:00:00", "2026-07-01T09:00:00", "2026-08-01T10:00:00")
    events = [reg("R1", "2024-05-01", "C"), clock("2025-12-20T10:00:00"), insp("I-old", "2025-12-21T10:00:00"),
              clock("2026-02-01T10:00:00"), insp("I0", times[0]), clock("2026-05-01T10:00:00"), insp("I1", times[1]),
              insp("I2", times[2])]
    e, _ = engine(events, families=())
    c = cell(e, "2026", now, "C")
    assert (c.check_date, c.required, c.done, c.behind, c.entities, c.yearly) == (check_date, need, done, behind, 1, 3)
    assert c.behind_entities == (("阳光餐馆",) if behind else ())
    assert c.done_to_date == sum(t(x) <= t(now) for x in times)


@pytest.mark.parametrize("rows, counted", [
    ([reg("R1", "2024-05-01")], True),
    ([reg("R1", "2026-01-01")], False),                              # first registered this year
    ([reg("R1", "2025-12-31T23:59:59")], True),
    ([reg("R1", "2024-05-01"), reg("R1", "2026-02-01", status="注销")], False),  # closed before the check
    ([reg("R1", "2024-05-01"), reg("R1", "2026-04-01T09:00:01", status="注销")], True),  # closed after it
    ([reg("R1", "2024-05-01"), reg("R2", "2026-03-01", status="注销"), reg("R3", "2026-03-15")], True),  # reopened
])
def test_who_is_counted_at_a_check(rows, counted):
    """Registered in the year (earliest row before 1 January) and 在营 at the check: a closed
    (注销) entity and one first registered this year are not counted."""
    e, _ = engine([*rows, clock("2026-03-20T10:00:00")], families=())
    c = cell(e, "2026", "2026-05-01")
    assert (c.entities, c.required, c.behind, c.yearly) == ((1, 1, 1, 2) if counted else (0, 0, 0, 0))


def test_the_grade_is_the_one_in_force_at_the_check():
    """Re-graded after the check (accepted before or after it): the check's cells keep the old grade."""
    e, _ = engine([reg("R1", "2024-05-01", "A"), clock("2026-03-20T10:00:00"), clock("2026-05-20T10:00:00"),
                   reg("R1", "2026-05-10", "D")], families=())
    assert (cell(e, "2026", "2026-05-20", "A").entities, cell(e, "2026", "2026-05-20", "D").entities) == (1, 0)
    assert (cell(e, "2026", "2026-07-01T09:00:00", "D").entities, cell(e, "2026", "2026-07-01T09:00:00", "D").required) == (1, 2)


def test_every_township_has_every_grade_and_entities_are_told_apart():
    """Rows for each configured township × A–D; an entity without entity_id is another than one with."""
    e, _ = engine([reg("R1", "2024-05-01", "C"), reg("R2", "2024-05-01", "C", eid=None),
                   clock("2026-01-05T10:00:00"), insp("I1", "2026-02-01T10:00:00", eid=None)], families=())
    rows = e.figures("frequency", "2026", t("2026-04-02"))
    assert [(r.township, r.risk_level) for r in rows] == [(tw, lv) for tw in ("红河镇", "板桥镇") for lv in "ABCD"]
    c = cell(e, "2026", "2026-04-02", "C")
    assert (c.entities, c.required, c.done, c.behind, c.behind_entities, c.yearly) == (2, 2, 1, 1, ("阳光餐馆",), 6)


@pytest.mark.parametrize("period, now, check_date", [
    ("2025", "2026-05-01", date(2025, 12, 1)),    # a past year: its last check
    ("2026-03", "2026-05-01", None),               # a month: as at its end (no check passed by 31 March)
    ("2026-04", "2026-05-01", date(2026, 4, 1)),
    ("2026-04", "2026-04-01T08:00:00", None),      # a month not over: as at now
    ("2026-04-01", "2026-05-01", date(2026, 4, 1)),
])
def test_periods_are_seen_at_their_end_or_now(period, now, check_date):
    """A year, month or day: the year's quota by the latest check passed by the end of it, or now."""
    e, _ = engine([reg("R1", "2020-05-01"), clock("2025-11-20T10:00:00"), clock("2026-01-05T10:00:00")], families=())
    assert cell(e, period, now).check_date == check_date


def test_the_figures_are_what_the_rule_decided():
    """At a check time the cells' behind entities are the rule's notices of that check."""
    events = [reg("R1", "2024-05-01", "D", name="甲店", eid="E1"), reg("R2", "2024-05-01", "A", name="乙店", eid="E2"),
              reg("R3", "2024-05-01", "C", name="丙店", eid="E3"), clock("2026-02-05T10:00:00"),
              insp("I1", "2026-03-01T10:00:00", name="乙店", eid="E2"), clock("2026-04-01T10:00:00")]
    e, raised = engine(events)
    at = check_time("04-01", 2026, TZ)
    behind = {(r.township, r.risk_level, n) for r in e.figures("frequency", "2026", at) for n in r.behind_entities}
    assert behind == {(n.township, n.facts["risk_level"], n.facts["entity"]) for n in raised
                      if n.rule == "inspection.frequency_due"} == {(HH, "D", "甲店"), (HH, "C", "丙店")}


def test_the_register_is_kept_in_the_snapshot():
    """A restored engine shows the same 检查频次 figures, and its rule decides the next check alike."""
    events = [reg("R1", "2024-05-01", "D"), clock("2026-01-05T10:00:00"), insp("I1", "2026-02-01T10:00:00")]
    e, raised = engine(events, durable=True)
    e.advance(t("2026-04-01T09:00:00"))
    again: list = []
    back = Engine.restore(e.snapshot(), e.config, recipients, again.append)
    for now in ("2026-03-01", "2026-04-01T09:00:00", "2026-07-01T09:00:00", "2026-12-31"):
        assert back.figures("frequency", "2026", t(now)) == e.figures("frequency", "2026", t(now))
    for one in (e, back):
        one.advance(t("2026-07-01T09:00:00"))
    due = [[(n.facts["done"], n.facts["required"]) for n in ns if n.rule == "inspection.frequency_due"]
           for ns in (raised, again)]
    assert due == [[(1, 2)], [(1, 2)]]   # 1 April: 1 of 1 done; 1 July: D needs 2


def test_the_tally_is_bounded():
    """Kept: this year's and last year's inspections; a closed entity is forgotten dedup_days
    after its closure, older years when they end before the keep-from time."""
    events = [reg("R1", "2020-05-01", "A"), reg("R1", "2025-01-10", "B", status="注销"),
              *(reg("R2", at, risk, eid="E2") for at, risk in (("2020-05-01", "B"), ("2024-06-01", "C"), ("2025-03-01", "D"))),
              clock("2024-12-20T10:00:00"), insp("I0", "2024-12-21T10:00:00", eid="E2")]
    e, _ = engine(events, families=(), overrides={"dedup_days": 30})
    for month in range(1, 13):
        e.advance(t(f"2025-{month:02d}-15"))
    e.advance(t("2026-01-10"))
    tally = e.measures.register
    assert sorted(tally.inspections) == []                          # 2024 ended before 1 January 2025
    assert list(tally.entities[HH]) == [(HH, "id", "E2")]           # R1 closed in January 2025, forgotten
    # versions superseded before the keep-from time (1 January 2025) are dropped
    assert [v.risk_level for v in tally.entities[HH][(HH, "id", "E2")].versions] == ["C", "D"]


@pytest.mark.parametrize("fraction, per_year, need", [
    ("0.28", 25, 7), ("0.56", 50, 28), ("0.5", 3, 2), ("0.25", 4, 1), ("1", 0, 0), ("0.01", 1, 1),
])
def test_required_is_ceiled_exactly(fraction, per_year, need):
    """The one quota function the rule and the figures share: ceil(fraction × per_year), exactly."""
    assert required(Fraction(fraction), per_year) == need


def test_latest_check_before_the_first_is_none():
    """The check a time falls after: none before 09:00 of the year's first check date."""
    checks = {k: Fraction(v).limit_denominator() for k, v in CHECKS.items()}
    assert latest_check(checks, 2026, t("2026-04-01T08:59:59"), TZ) is None
    assert latest_check(checks, 2026, t("2026-04-01T09:00:00"), TZ) == ("04-01", t("2026-04-01T09:00:00"))
    assert latest_check(checks, 2026, t("2027-03-01"), TZ) == ("12-01", t("2026-12-01T09:00:00"))
