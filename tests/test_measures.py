"""The measures (shian.rules.measures): the pure functions the rules and the office share, and
the tallies the engine keeps — bounded, snapshotted with the rule state, answered as figures."""
from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest

from conftest import TZ, config_dict, t
from shian.notifiers.routing import recipients
from shian.rules.config import parse
from shian.rules.engine import SNAPSHOT_MAGIC, Engine, SnapshotError
from shian.rules.events import Validator
from shian.rules.families import FAMILIES
from shian.rules.measures import (FIGURE_KINDS, below_target, campaign_status, disposal_due, disposal_status,
                                  judged_at, period_bounds, report_due, report_status)


def engine_of(events, rules=None, config_overrides=None, *, durable=False, families=()):
    config = parse(config_dict(rules, config_overrides), path="<test>")
    engine = Engine(config, recipients, lambda n: None, families=families, durable=durable)
    validator = Validator(config.known())
    for obj in events:
        engine.admit(validator.from_object(obj))
    return engine


def sample(i, at, *, township="红河镇", program="food_sampling", failed=False):
    return {"type": "sampling_result", "id": f"S{i}", "township": township, "program": program, "sampled_at": at,
            "entity": f"店{i}", "category": "蔬菜", "items": [], "conclusion": "不合格" if failed else "合格"}


def inspection(i, at, *, kind="日常检查", staff=None):
    ev = {"type": "inspection", "id": f"I{i}", "township": "红河镇", "inspected_at": at, "entity": f"店{i}",
          "entity_type": "餐饮服务", "inspection_type": kind, "outcome": "合格"}
    if staff:
        ev.update(staff_total=staff[0], staff_with_health_cert=staff[1])
    return ev


REPORT = {"type": "monthly_report", "id": "R1", "township": "红河镇", "reporter": "红河村", "period": "2026-01",
          "submitted_at": "2026-01-20T10:00:00"}
DISPOSAL = {"type": "disposal", "id": "D1", "township": "红河镇", "sample_id": "S1", "disposed_at": "2026-01-12"}


@pytest.mark.parametrize("qualified, total, target, below", [
    (19, 20, "0.95", False),      # exactly on target is not below (a float 0.95 would say it is)
    (18, 20, "0.95", True),
    (97, 100, "0.98", True),
    (0, 0, "0.98", False),        # no samples: never below
    (49, 50, "0.98", False),
])
def test_below_target_is_exact(qualified, total, target, below):
    """The one comparison the PassRate / Inspections rules and the rates pages use."""
    assert below_target(qualified, total, Fraction(target)) is below


@pytest.mark.parametrize("submitted, now, status", [
    ("2026-04-25T23:59:59", "2026-05-10", "on_time"),   # the due day counts, to its last second
    ("2026-04-26T00:00:00", "2026-05-10", "late"),
    (None, "2026-04-26T00:00:00", "missing"),            # report.overdue fires at this instant
    (None, "2026-04-25T23:00:00", "pending"),
])
def test_report_due_and_status(submitted, now, status):
    """A report is due by the end of due_day (local); report.overdue fires at report_due."""
    due = report_due("2026-04", 25, TZ)
    assert due == t("2026-04-26T00:00:00")
    assert report_status(t(submitted) if submitted else None, due, t(now)) == status


@pytest.mark.parametrize("disposed, now, status", [
    ("2026-01-15T23:00:00", "2026-02-01", "disposed"),
    ("2026-01-16T09:00:00", "2026-02-01", "disposed_late"),   # at the due is late
    (None, "2026-01-16T09:00:00", "overdue"),
    (None, "2026-01-16T08:59:59", "open"),
])
def test_disposal_due_and_status(disposed, now, status):
    """The due is event time + disposal_days; sample.disposal_overdue fires at it."""
    due = disposal_due(t("2026-01-01T09:00:00"), 15)
    assert due == t("2026-01-16T09:00:00")
    assert disposal_status(t(disposed) if disposed else None, due, t(now)) == status


@pytest.mark.parametrize("count, now, status", [
    (1, "2026-03-01", "done"), (0, "2026-05-01", "missed"), (0, "2026-04-10", "open"), (0, "2026-03-31", "upcoming"),
])
def test_campaign_status(count, now, status):
    """Window [H − window_days, H): missed once it closed without a 节前联合检查."""
    assert campaign_status(count, t("2026-04-01"), t("2026-05-01"), t(now)) == status


@pytest.mark.parametrize("period, grace, at", [
    ("2026-04", 0, "2026-05-01"), ("2026-12", 0, "2027-01-01"), ("2026-04", 3, "2026-05-04"),
])
def test_pass_rate_judged_at(period, grace, at):
    """A month's pass rates are judged at the next month's 1st plus grace_days."""
    assert judged_at(period, grace, TZ) == t(at)


@pytest.mark.parametrize("period, start, end", [
    ("2026", "2026-01-01", "2027-01-01"), ("2026-12", "2026-12-01", "2027-01-01"),
    ("2026-02-28", "2026-02-28", "2026-03-01"),
])
def test_period_bounds(period, start, end):
    """Years, months and days as [start, end) in local time."""
    assert period_bounds(period, TZ) == (t(start), t(end))


def test_figures_of_a_bare_engine():
    """The tallies are fed for every accepted event, rules or none; duplicates count once."""
    events = [sample(1, "2026-01-02", failed=True), sample(2, "2026-01-03"), sample(3, "2026-01-04", program="rapid_test"),
              sample(2, "2026-01-03"), REPORT, DISPOSAL, inspection(1, "2026-01-05", staff=(10, 9)),
              inspection(2, "2026-01-20", kind="节前联合检查")]
    e = engine_of(events)
    now = t("2026-02-01")
    rate = next(r for r in e.figures("pass_rate", "2026-01", now) if (r.township, r.program) == ("红河镇", "food_sampling"))
    assert (rate.qualified, rate.total, rate.below) == (1, 2, True)
    assert next(r for r in e.figures("pace", "2026", now) if r.township == "红河镇").batches == 2
    board = {(r.township, r.reporter): r.cells["2026-01"].status for r in e.figures("reports", "2026-01", now)}
    assert board[("红河镇", "红河村")] == "on_time" and board[("红河镇", "新寨村")] == "missing"
    [d] = e.figures("disposals", "2026-01", now)
    assert (d.sample_id, d.status, d.disposal_id) == ("S1", "disposed", "D1")
    health = next(r for r in e.figures("health", "2026-01", now) if r.township == "红河镇")
    assert (health.certified, health.staff, health.below, health.low_entities) == (9, 10, True, ("店1",))
    spring = next(r for r in e.figures("campaigns", "2026", now) if (r.township, r.holiday) == ("红河镇", "春节"))
    assert (spring.inspections, spring.status) == (1, "done")
    with pytest.raises(ValueError):
        e.figures("weather", "2026-01", now)
    assert set(FIGURE_KINDS) == {"reports", "pass_rate", "pace", "health", "campaigns", "disposals", "frequency",
                                 "resolution"}


def test_tallies_forget_what_is_older_than_dedup_days():
    """Bounded state: a year later with dedup_days 30, nothing of January is kept."""
    e = engine_of([sample(1, "2026-01-02", failed=True), REPORT, DISPOSAL, inspection(1, "2026-01-05", staff=(10, 9)),
                   inspection(2, "2026-01-06", kind="节前联合检查")], config_overrides={"dedup_days": 30})
    e.advance(t("2026-06-01"))
    m = e.measures
    assert (m.samples.days, m.samples.months, m.reports.first, m.disposals.samples, m.disposals.disposals, m.joint.days,
            m.health.months) == ({}, {}, {}, {}, {}, {}, {})


def test_tallies_outlive_dedup_days_until_the_rules_used_them():
    """A month's samples stay until it is judged, however short dedup_days (here 5 days,
    with grace_days 20: January is judged on 21 February)."""
    failed = [sample(i, "2026-01-02", failed=i < 3) for i in range(20)]
    e = engine_of(failed, rules={"sample.pass_rate_low": {"grace_days": 20}}, config_overrides={"dedup_days": 5})
    e.advance(t("2026-02-20T23:00:00"))
    counts = e.measures.samples.of_period("2026-01")
    assert counts[("红河镇", "food_sampling")] == (20, 17)


def test_tallies_are_snapshotted_with_the_rule_state():
    """A restored engine answers the same figures; the snapshot format says version 5 (since 3 the
    签收 / 办结 distinction with the unresolved deadlines, and the register)."""
    e = engine_of([sample(1, "2026-01-02", failed=True), REPORT, DISPOSAL], durable=True, families=FAMILIES)
    blob = e.snapshot()
    assert blob.startswith(b"shian-engine/6\n") and SNAPSHOT_MAGIC == b"shian-engine/6\n"
    back = Engine.restore(blob, e.config, recipients, lambda n: None)
    now = t("2026-02-01")
    for kind in ("pass_rate", "reports", "disposals"):
        assert back.figures(kind, "2026-01", now) == e.figures(kind, "2026-01", now), kind
    with pytest.raises(SnapshotError):
        Engine.restore(b"shian-engine/2\n" + blob[len(SNAPSHOT_MAGIC):], e.config, recipients, lambda n: None)


def test_a_gate_without_measures():
    """measures=False is the ingest gate's: no figures, and no families (they decide on them)."""
    config = parse(config_dict(), path="<test>")
    gate = Engine(config, recipients, lambda n: None, families=(), measures=False)
    with pytest.raises(ValueError):
        gate.figures("pass_rate", "2026-01", t("2026-02-01"))
    with pytest.raises(ValueError):
        Engine(config, recipients, lambda n: None, measures=False)


def test_pace_counts_up_to_the_end_of_the_day():
    """Pace of a day counts that day whole; of a month, to its end or now, if earlier."""
    e = engine_of([sample(1, "2026-03-10T23:59:00"), sample(2, "2026-03-11T00:00:00")])
    batches = {p: next(r for r in e.figures("pace", p, t("2026-12-31")) if r.township == "红河镇").batches
               for p in ("2026-03-10", "2026-03", "2026-02")}
    assert batches == {"2026-03-10": 1, "2026-03": 2, "2026-02": 0}
    early = next(r for r in e.figures("pace", "2026", t("2026-03-10T12:00:00")) if r.township == "红河镇")
    assert early.batches == 1 and early.target_to_date == Fraction(120 * 69, 365)
    assert date(2026, 3, 10).timetuple().tm_yday == 69
