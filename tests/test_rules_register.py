"""The entity register (``entity`` events, §1 and §6 "Revision 5") and ``inspection.frequency_due``.

Defaults: ``per_year {A: 1, B: 2, C: 3, D: 4}``, ``checks {07-01: 0.5, 12-01: 1.0}`` at 09:00, so
on 1 July A and B need 1 inspection, C and D 2; on 1 December A 1, B 2, C 3, D 4.
"""
from __future__ import annotations

from typing import Any

import pytest

from conftest import check, config_dict, of
from shian.rules.config import ConfigError, parse

HH, BQ = "红河镇", "板桥镇"
RULE = "inspection.frequency_due"
JULY = "2026-07-01T09:00:00+08:00"
DECEMBER = "2026-12-01T09:00:00+08:00"


def reg(rid: str, at: str, risk: str = "D", township: str = HH, **kw: Any) -> dict[str, Any]:
    ev = {"type": "entity", "id": rid, "township": township, "entity": "阳光餐馆", "entity_id": "91YG",
          "entity_type": "餐饮服务", "risk_level": risk, "registered_at": at}
    ev.update(kw)
    return ev


def insp(iid: str, at: str, township: str = HH, **kw: Any) -> dict[str, Any]:
    ev = {"type": "inspection", "id": iid, "inspected_at": at, "township": township, "entity": "阳光餐馆",
          "entity_id": "91YG", "entity_type": "餐饮服务", "inspection_type": "日常检查", "outcome": "合格"}
    ev.update(kw)
    return ev


def start(at: str = "2026-01-05T10:00:00") -> dict[str, Any]:
    """An event of the other township, to start or move the clock without inspecting anything."""
    return {"type": "monthly_report", "id": f"M-{at}", "reporter": "板桥村", "township": BQ,
            "period": "2026-01", "submitted_at": at}


def ticks(first: str, last: str) -> list[dict[str, Any]]:
    """start() on the 1st of every month from ``first`` to ``last`` (YYYY-MM), so that the clock
    moves in steps well under max_jump_days."""
    out, (y, m) = [], (int(first[:4]), int(first[5:]))
    while f"{y:04d}-{m:02d}" <= last:
        out.append(start(f"{y:04d}-{m:02d}-01T10:00:00"))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def due(notices: list[dict[str, Any]], at: str | None = None) -> list[dict[str, Any]]:
    return [n for n in of(notices, RULE) if at is None or n["at"] == at]


def inspections(n: int, month: int = 3) -> list[dict[str, Any]]:
    return [insp(f"I{i}", f"2026-{month:02d}-{i + 1:02d}T10:00:00") for i in range(n)]


# --------------------------------------------------------------------------- required against done

@pytest.mark.parametrize("risk, done, fires_july, fires_december", [
    ("A", 0, True, True),
    ("A", 1, False, False),      # 1 July: ceil(0.5 × 1) = 1, exactly done
    ("B", 1, False, True),       # 1 July: 1 of 2; 1 December: 2 required
    ("B", 2, False, False),
    ("C", 1, True, True),        # ceil(0.5 × 3) = 2
    ("C", 2, False, True),
    ("C", 3, False, False),
    ("D", 2, False, True),       # 1 July: exactly 2 of 2
    ("D", 3, False, True),
    ("D", 4, False, False),      # 1 December: exactly 4 of 4
])
def test_required_against_done_at_each_check(replay, risk, done, fires_july, fires_december):
    """Fires iff done < ceil(fraction × per_year[risk]); done equal to required does not fire."""
    notices, rejects, _ = replay([reg("R1", "2025-06-01", risk), start(), *inspections(done)], until="2026-12-31")
    assert rejects == []
    assert len(due(notices, JULY)) == int(fires_july)
    assert len(due(notices, DECEMBER)) == int(fires_december)


def test_notice_fields_routing_and_key(replay):
    """Town level, warning, routed by the register's entity_type, key by entity_id and check date, due null."""
    notices, _, _ = replay([reg("R1", "2025-06-01", "C", entity_type="学校食堂", entity="红河小学食堂"), start(),
                            insp("I1", "2026-03-01T10:00:00", entity_type="学校食堂")], until="2026-07-02")
    [n] = due(notices)
    check(n, rule=RULE, level="town", severity="warning", township=HH, at=JULY, due=None,
          recipients={"hh-edu", "hh-fso"}, key=f"{RULE}|红河镇|91YG|2026-07-01",
          facts={"entity": "红河小学食堂", "risk_level": "C", "required": 2, "done": 1, "year": 2026})
    assert isinstance(n["facts"]["year"], int)
    assert n["title"].startswith("【预警】")


def test_key_uses_the_name_without_entity_id_and_unrouted_type_goes_to_the_town_office(replay):
    """An entity without entity_id is keyed by its name; no routing for its type: the town office alone."""
    notices, _, _ = replay([reg("R1", "2025-06-01", "A", entity_id=None, entity="路口小卖部", entity_type="食品销售"),
                            start()], until="2026-07-02")
    [n] = due(notices)
    check(n, recipients={"hh-fso"}, key=f"{RULE}|红河镇|路口小卖部|2026-07-01", facts={"entity": "路口小卖部"})


@pytest.mark.parametrize("per_year, fraction, done, fires", [
    (25, 0.28, 7, False),  # exactly 7: in binary floating point 0.28 × 25 = 7.000000000000001, ceil 8
    (25, 0.28, 6, True),
    (50, 0.56, 28, False),  # float: 28.000000000000004
    (3, 0.5, 1, True),     # ceil(1.5) = 2
    (3, 0.34, 1, True),    # ceil(1.02) = 2
    (3, 0.33, 1, False),   # ceil(0.99) = 1
    (4, 0.25, 1, False),   # exactly 1
    (0, 1.0, 0, False),    # nothing required
])
def test_fractional_quotas_are_ceiled_exactly(replay, per_year, fraction, done, fires):
    """required = ceil(fraction × per_year) computed exactly (no binary floating-point error)."""
    rules = {RULE: {"per_year": {"B": per_year}, "checks": {"07-01": fraction}}}
    notices, _, _ = replay([reg("R1", "2025-06-01", "B"), start(), *inspections(done)], rules=rules, until="2026-12-31")
    assert len(due(notices)) == int(fires)


# --------------------------------------------------------------------------- who is registered in the year

@pytest.mark.parametrize("registered_at, checked", [
    ("2025-12-31", True),
    ("2025-12-31T23:59:59", True),
    ("2026-01-01", False),            # 00:00 of 1 January: first registered during the year
    ("2026-01-01T00:00:01", False),
    ("2026-06-30", False),
    ("2020-05-01", True),
])
def test_registered_before_the_year_is_checked_in_it(replay, registered_at, checked):
    """Registered in Y iff its earliest register row is dated before 00:00 of 1 January Y."""
    notices, _, _ = replay([reg("R1", registered_at, "A"), start()], until="2026-12-31")
    assert len(due(notices)) == 2 * int(checked)


def test_registered_during_the_year_is_checked_the_next_year(replay):
    """First registered in 2026: not checked in 2026, checked on 1 July 2027."""
    notices, _, _ = replay([reg("R1", "2026-03-01", "A"), start(), start("2027-02-01T10:00:00"),
                            start("2027-03-15T10:00:00"), start("2027-05-01T10:00:00")], until="2027-07-02")
    assert [n["at"] for n in due(notices)] == ["2027-07-01T09:00:00+08:00"]


def test_regrading_keeps_the_first_registration(replay):
    """A re-grading row dated in the year does not make the entity newly registered."""
    notices, rejects, _ = replay([reg("R1", "2024-01-01", "A"), reg("R1", "2026-03-01", "D"), start()],
                                 until="2026-07-02")
    assert rejects == []
    [n] = due(notices)
    check(n, facts={"risk_level": "D", "required": 2, "done": 0})


# --------------------------------------------------------------------------- versions of a register row

@pytest.mark.parametrize("second_at, risk, july_risk, december_risk", [
    ("2026-03-01", "D", "D", "D"),            # re-graded before the check: D from then on
    ("2026-07-01T09:00:00", "D", "D", "D"),   # dated exactly at the check: in force at it
    ("2026-07-01T09:00:01", "D", "A", "D"),   # dated after the July check, accepted before it
    ("2026-12-01T09:00:01", "D", "A", "A"),
])
def test_regrading_mid_year(replay, second_at, risk, july_risk, december_risk):
    """State at c is the version with the latest registered_at ≤ c among those accepted so far."""
    events = [reg("R1", "2024-01-01", "A"), reg("R1", second_at, risk), start()]
    notices, rejects, _ = replay(events, until="2026-12-31")
    assert rejects == []
    assert [n["facts"]["risk_level"] for n in due(notices)] == [july_risk, december_risk]


def test_regrading_arriving_after_the_check_changes_only_later_checks(replay):
    """A re-grading accepted after the July check fired: July stays A, December is D."""
    events = [reg("R1", "2024-01-01", "A"), *ticks("2026-01", "2026-07"), start("2026-07-02T10:00:00"),
              reg("R1", "2026-03-01", "D"), *ticks("2026-08", "2026-11")]
    notices, rejects, _ = replay(events, until="2026-12-02")
    assert rejects == []
    assert [(n["at"], n["facts"]["risk_level"]) for n in due(notices)] == [(JULY, "A"), (DECEMBER, "D")]


def test_two_register_rows_of_one_entity_latest_dated_wins(replay):
    """Two row ids for one entity_id: the one dated later wins, whatever the arrival order."""
    events = [reg("R2", "2025-05-01", "D"), reg("R1", "2024-01-01", "A"), start()]
    notices, _, _ = replay(events, until="2026-07-02")
    [n] = due(notices)
    check(n, facts={"risk_level": "D"}, event_ids=["R2"])


def test_same_time_rows_the_one_accepted_last_wins(replay):
    """Ties on registered_at: the row accepted last is the state."""
    events = [reg("R1", "2025-05-01", "A"), reg("R2", "2025-05-01", "D"), start()]
    notices, _, _ = replay(events, until="2026-07-02")
    [n] = due(notices)
    check(n, facts={"risk_level": "D"})


@pytest.mark.parametrize("second_at, outcome", [
    ("2025-05-01", "rejected"),             # same registered_at, other content
    ("2025-04-30T23:59:59", "rejected"),    # earlier
    ("2025-05-01T00:00:01", "accepted"),    # later: a new version
])
def test_same_id_other_content(replay, second_at, outcome):
    """Same id, other content: a new version iff its registered_at is later, else the duplicate reject."""
    events = [reg("R1", "2025-05-01", "A"), start(), reg("R1", second_at, "D")]
    notices, rejects, summary = replay(events)
    assert summary.accepted == (3 if outcome == "accepted" else 2)
    if outcome == "rejected":
        [r] = rejects
        assert r["line"] == 3 and "编号重复但内容不同" in r["reason"]
    else:
        assert rejects == []


def test_exact_resends_are_duplicates_even_of_an_earlier_version(replay):
    """A resent register row (this version or an earlier one) is a duplicate, not a reject."""
    v1, v2 = reg("R1", "2025-05-01", "A"), reg("R1", "2026-02-01", "D")
    notices, rejects, summary = replay([v1, start(), v2, dict(v2), dict(v1)])
    assert rejects == [] and summary.duplicates == 2 and summary.accepted == 3


@pytest.mark.parametrize("registered_at, value", [("2026-01-05T10:00:00", "D"), ("2026-01-05T10:00:00", "A")])
def test_register_row_and_inspection_ids_do_not_collide(replay, registered_at, value):
    """Ids are unique per type: a register row and an inspection may share one."""
    notices, rejects, _ = replay([reg("X1", registered_at, value), insp("X1", "2026-01-05T10:00:00")])
    assert rejects == []


# --------------------------------------------------------------------------- the clock

def test_register_imported_before_any_other_event_is_kept(replay):
    """Rows before the clock starts are kept and taken at the start; nothing fires for their old dates."""
    events = [reg("R1", "2019-03-01", "D"), reg("R2", "2020-01-01", "A", entity_id="91B"), start("2026-06-01T10:00:00")]
    notices, rejects, summary = replay(events, until="2026-07-02")
    assert rejects == [] and summary.accepted == 3
    assert [n["facts"]["risk_level"] for n in due(notices)] == ["D", "A"]
    assert min(n["at"] for n in notices) >= "2026-06-01T10:00:00+08:00"


def test_register_rows_alone_never_start_the_clock(replay):
    """Only register rows, even with --until: the clock never starts, nothing fires."""
    notices, rejects, summary = replay([reg("R1", "2019-03-01"), reg("R2", "2026-01-01", entity_id="91B")],
                                       until="2026-12-31")
    assert notices == [] and rejects == [] and summary.accepted == 2


def test_years_old_register_row_arriving_mid_stream(replay):
    """A row dated years back, arriving mid-year, is taken at the clock's time and counts."""
    events = [*ticks("2026-01", "2026-03"), reg("R1", "2018-05-01", "D"), *ticks("2026-04", "2026-06")]
    notices, rejects, _ = replay(events, until="2026-07-02")
    assert rejects == []
    [n] = due(notices)
    check(n, at=JULY, facts={"required": 2, "done": 0})


def test_register_row_never_moves_the_clock_nor_is_held_against_max_jump(replay):
    """A row dated far ahead is accepted; no deadline passed by its date fires; later events are judged as before."""
    events = [start("2026-03-01T10:00:00"), reg("R1", "2026-12-15", "D"), insp("I1", "2026-03-02T10:00:00")]
    notices, rejects, summary = replay(events)
    assert rejects == [] and summary.accepted == 3
    assert all(n["at"] <= "2026-03-02T10:00:00+08:00" for n in notices)  # report.reminder of 22 March did not fire


def test_register_row_after_until_is_skipped(replay):
    """A row dated after --until is not processed (its state would hold only after the end)."""
    _, rejects, summary = replay([start(), reg("R1", "2026-02-01")], until="2026-01-31")
    assert rejects == [] and summary.skipped == 1


def test_register_rows_do_not_count_for_source_silent(replay):
    """红河镇's register row at clock 03-10 does not reset its silence, which runs from its inspection on 03-01."""
    events = [insp("I1", "2026-03-01T10:00:00"), start("2026-03-10T10:00:00"), reg("R1", "2020-01-01"),
              start("2026-03-20T10:00:00")]
    notices, _, _ = replay(events)
    silent = of(notices, "source.silent", HH)
    assert [n["at"] for n in silent] == ["2026-03-15T10:00:00+08:00"]


def test_register_id_remembered_for_dedup_days_of_clock_time(replay):
    """dedup_days of clock time from the start (for a row before it): then the id is forgotten."""
    v1, other = reg("R1", "2020-01-01", "A"), reg("R1", "2020-01-01", "D")
    within = replay([v1, start("2026-01-05T10:00:00"), start("2026-02-03T10:00:00"), other],
                    config_overrides={"dedup_days": 30})
    after = replay([v1, start("2026-01-05T10:00:00"), start("2026-02-06T10:00:00"), other],
                   config_overrides={"dedup_days": 30})
    assert len(within[1]) == 1 and after[1] == []


# --------------------------------------------------------------------------- status and inspections

@pytest.mark.parametrize("closed_at, fires", [
    ("2026-05-01", False),            # 注销 before the check
    ("2026-07-01T09:00:00", False),   # in force exactly at the check
    ("2026-07-01T09:00:01", True),    # closed after the check
])
def test_closed_before_the_check_is_not_checked(replay, closed_at, fires):
    """State 注销 at c: not due; status defaults to 在营."""
    events = [reg("R1", "2024-01-01", "D"), reg("R1", closed_at, "D", status="注销"), start()]
    notices, rejects, _ = replay(events, until="2026-07-02")
    assert rejects == []
    assert len(due(notices)) == int(fires)


def test_reopened_after_closure_is_checked(replay):
    """注销 then 在营 again before the check: checked; status null counts as absent (在营)."""
    events = [reg("R1", "2024-01-01", "A"), reg("R1", "2025-01-01", "A", status="注销"),
              reg("R1", "2026-02-01", "A", status=None), start()]
    notices, rejects, _ = replay(events, until="2026-07-02")
    assert rejects == [] and len(due(notices)) == 1


@pytest.mark.parametrize("inspected_at, counted", [
    ("2026-07-01T08:59:59", True),
    ("2026-07-01T09:00:00", False),   # exactly at the check: the check fires first
    ("2026-01-01T00:00:00", True),    # first instant of the year
    ("2025-12-31T23:59:59", False),   # last year's
])
def test_inspection_at_the_check_boundaries(replay, inspected_at, counted):
    """done counts inspections with event time in [1 January 00:00, c)."""
    events = [reg("R1", "2024-01-01", "D"), start("2025-12-20T10:00:00"), insp("I0", "2026-02-01T10:00:00"),
              *ticks("2026-03", "2026-06"), insp("I1", inspected_at)]
    events.sort(key=lambda e: e.get("inspected_at") or e.get("submitted_at") or "")
    notices, _, _ = replay(events, rules={RULE: {"per_year": {"D": 6}}}, until="2026-07-02")  # 3 due by July
    [n] = due(notices)
    assert n["facts"]["done"] == 1 + int(counted)


def test_any_inspection_type_and_outcome_counts_and_identity_is_never_mixed(replay):
    """Every type and outcome counts; an inspection of the same name without entity_id is another entity."""
    events = [reg("R1", "2024-01-01", "D"), start(),
              insp("I1", "2026-02-01T10:00:00", inspection_type="复查", outcome="立案查处"),
              insp("I2", "2026-02-02T10:00:00", inspection_type="节前联合检查", outcome="限期整改", rectify_by="2026-02-20"),
              insp("I3", "2026-02-03T10:00:00", entity_id=None), insp("I4", "2026-02-04T10:00:00", township=BQ)]
    notices, rejects, _ = replay(events, until="2026-07-02")
    assert rejects == []
    assert due(notices) == []  # 2 counted of 2 required
    notices, _, _ = replay(events[:3] + events[4:], until="2026-07-02")
    [n] = due(notices)
    assert n["facts"]["done"] == 1


def test_late_inspection_counts_for_later_checks_only(replay):
    """An inspection of June arriving after the July check counts in December, not retroactively."""
    events = [reg("R1", "2024-01-01", "B"), *ticks("2026-01", "2026-07"), start("2026-07-05T10:00:00"),
              insp("I1", "2026-06-20T10:00:00"), *ticks("2026-08", "2026-11")]
    notices, rejects, _ = replay(events, until="2026-12-02")
    assert rejects == []
    assert [(n["at"], n["facts"]["done"]) for n in due(notices)] == [(JULY, 0), (DECEMBER, 1)]


def test_disabled_rule_fires_nothing(replay):
    """enabled: false suppresses the rule."""
    notices, _, _ = replay([reg("R1", "2024-01-01"), start()], rules={RULE: {"enabled": False}}, until="2026-12-31")
    assert due(notices) == []


def test_checks_given_replace_the_default_schedule(replay):
    """A checks mapping under rules: replaces the whole schedule; per_year keys missing keep their defaults."""
    rules = {RULE: {"checks": {"03-31": 0.25}, "per_year": {"A": 4}}}
    events = [reg("R1", "2024-01-01", "A"), reg("R2", "2024-01-01", "D", entity_id="91D"), start()]
    notices, _, _ = replay(events, rules=rules, until="2026-12-31")
    assert [(n["at"], n["facts"]["risk_level"], n["facts"]["required"]) for n in due(notices)] == [
        ("2026-03-31T09:00:00+08:00", "A", 1), ("2026-03-31T09:00:00+08:00", "D", 1)]


def test_every_year(replay):
    """The checks recur every year, each year's inspections counted afresh."""
    events = [reg("R1", "2024-01-01", "A"), start("2026-06-01T10:00:00"), insp("I1", "2026-06-02T10:00:00")]
    events += [start(f"2026-{m:02d}-01T10:00:00") for m in (7, 8, 9, 10, 11, 12)]
    events += [start(f"2027-{m:02d}-01T10:00:00") for m in (1, 2, 3, 4, 5, 6)]
    notices, _, _ = replay(events, until="2027-12-31")
    assert [n["at"] for n in due(notices)] == ["2027-07-01T09:00:00+08:00", "2027-12-01T09:00:00+08:00"]


# --------------------------------------------------------------------------- validation and config

@pytest.mark.parametrize("field, value, words", [
    ("risk_level", "E", "风险等级"),
    ("risk_level", "A级", "风险等级"),    # only spreadsheets read A级
    ("risk_level", "a", "风险等级"),
    ("status", "停业", "状态"),
    ("status", "", "状态"),
    ("entity_type", " ", "业态"),
    ("registered_at", "1900-01-00", "registered_at"),
    ("registered_at", "1999-12-31", "min_event_date"),
])
def test_bad_register_rows_are_rejected(replay, field, value, words):
    """Closed sets risk_level A–D and status 在营 / 注销; required text and dates as for every type."""
    notices, rejects, summary = replay([start(), reg("R1", "2024-01-01", **{field: value})])
    [r] = rejects
    assert r["line"] == 2 and words in r["reason"], r
    assert summary.accepted == 1


@pytest.mark.parametrize("missing", ["entity", "entity_type", "risk_level", "registered_at", "id", "township"])
def test_register_row_required_fields(replay, missing):
    """Every field not marked optional is required."""
    ev = reg("R1", "2024-01-01")
    del ev[missing]
    _, rejects, _ = replay([start(), ev])
    assert len(rejects) == 1


@pytest.mark.parametrize("params, problem", [
    ({"checks": {"02-29": 1.0}}, "02-29"),
    ({"checks": {"7-1": 1.0}}, "7-1"),
    ({"checks": {"13-01": 1.0}}, "13-01"),
    ({"checks": {"07-01": 0}}, "checks"),
    ({"checks": {"07-01": 1.5}}, "checks"),
    ({"checks": {"07-01": True}}, "checks"),
    ({"per_year": {"E": 1}}, "E"),
    ({"per_year": {"A": -1}}, "per_year"),
    ({"per_year": {"A": 1.5}}, "per_year"),
    ({"per_year": {"A": True}}, "per_year"),
])
def test_bad_parameters_refuse_the_config(params, problem):
    """MM-DD keys (no 29 February), fractions in (0, 1], per_year keys A–D with non-negative ints."""
    with pytest.raises(ConfigError) as err:
        parse(config_dict({RULE: params}), path="county.yaml")
    text = "\n".join(err.value.problems)
    assert problem in text and RULE in text, text


def test_resolved_parameters():
    """Defaults as §3 says; a checks override replaces, a per_year override merges per key."""
    default = parse(config_dict(), path="c.yaml").rules[RULE]
    assert default.enabled and default.per_year == {"A": 1, "B": 2, "C": 3, "D": 4}
    assert default.checks == {"07-01": 0.5, "12-01": 1.0}
    given = parse(config_dict({RULE: {"checks": {"04-01": 0.25}, "per_year": {"D": 6}}}), path="c.yaml").rules[RULE]
    assert given.checks == {"04-01": 0.25} and given.per_year == {"A": 1, "B": 2, "C": 3, "D": 6}
