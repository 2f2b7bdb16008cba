"""The replay clock (§3 end, §6 Clock and output), duplicates (§1) and input validation (§1, §6 Input)."""
from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import check, nid, of, t, write_events
from shian.cli import main

HH, BQ = "红河镇", "板桥镇"


def incident(iid: str, reported: str, occurred: str | None = None, township: str = HH, **kw: Any) -> dict[str, Any]:
    ev = {"type": "incident", "id": iid, "township": township, "occurred_at": occurred or reported,
          "reported_at": reported, "kind": "食物中毒"}
    ev.update(kw)
    return ev


def insp(iid: str, at: str, township: str = HH, **kw: Any) -> dict[str, Any]:
    ev = {"type": "inspection", "id": iid, "inspected_at": at, "township": township, "entity": "阳光餐馆",
          "entity_type": "餐饮服务", "inspection_type": "日常检查", "outcome": "合格"}
    ev.update(kw)
    return ev


def report(rid: str, reporter: str, period: str, at: str, township: str = HH) -> dict[str, Any]:
    return {"type": "monthly_report", "id": rid, "reporter": reporter, "township": township,
            "period": period, "submitted_at": at}


def sample(sid: str, at: str, **kw: Any) -> dict[str, Any]:
    ev = {"type": "sampling_result", "id": sid, "township": HH, "sampled_at": at, "entity": "张三蔬菜店",
          "category": "蔬菜", "items": [{"item": "铅", "value": 0.5, "limit": 0.2}]}
    ev.update(kw)
    return ev


def reminders(notices: list[dict[str, Any]], period: str = "2026-04") -> list[dict[str, Any]]:
    return [n for n in of(notices, "report.reminder") if n["facts"]["period"] == period]


# --------------------------------------------------------------------------- clock

def test_deadline_at_clock_start_fires_before_first_event(replay):
    notices, _, _ = replay([report("R1", "红河村", "2026-04", "2026-04-22T09:00:00")])
    assert {n["facts"]["reporter"] for n in reminders(notices) if n["township"] == HH} == {"红河村", "新寨村", "镇卫生院"}
    assert {n["at"] for n in reminders(notices)} == {"2026-04-22T09:00:00+08:00"}


def test_deadline_before_clock_start_never_fires(replay):
    notices, _, _ = replay([report("R1", "红河村", "2026-04", "2026-04-22T09:00:01")], until="2026-04-25T00:00:00")
    assert reminders(notices) == []


def test_deadline_exactly_at_until_fires(replay):
    notices, _, _ = replay([insp("I1", "2026-04-20T10:00:00")], until="2026-04-22T09:00:00")
    assert len(reminders(notices)) == 4


def test_deadline_at_event_time_fires_before_that_event(replay):
    events = [insp("I1", "2026-04-20T10:00:00"), incident("E1", "2026-04-22T09:00:00")]
    notices, _, _ = replay(events)
    rules = [n["rule"] for n in notices if n["rule"] in ("report.reminder", "incident.reported")]
    assert rules == ["report.reminder"] * 4 + ["incident.reported"]


def test_no_accepted_event_nothing_fires(replay):
    events = ["not json", json.dumps(insp("I1", "2026-04-20T10:00:00", township="青山镇"), ensure_ascii=False)]
    notices, rejects, summary = replay(events, until="2026-12-31T00:00:00")
    assert notices == [] and len(rejects) == 2 and summary.accepted == 0


def test_empty_file_fires_nothing_and_is_reported_as_a_reject(replay):
    """An empty events file is bad input: one reject says so, and no clock starts."""
    notices, rejects, _ = replay([], until="2026-12-31T00:00:00")
    assert notices == []
    assert [(r["line"], r["raw"]) for r in rejects] == [(0, "")]
    assert "空" in rejects[0]["reason"]


def test_without_until_nothing_after_last_event(replay):
    notices, _, _ = replay([insp("I1", "2026-04-10T10:00:00"), insp("I2", "2026-04-22T08:59:59")])
    assert reminders(notices) == []
    assert of(notices, "source.silent") == []


def test_rejected_lines_do_not_move_the_clock(replay):
    events = [insp("I1", "2026-04-20T10:00:00"), insp("I2", "2026-04-23T10:00:00", outcome="坏值")]
    notices, rejects, _ = replay(events)
    assert len(rejects) == 1
    assert reminders(notices) == []


def test_rejected_ack_still_moves_the_clock(replay):
    """§3: an ack naming an unknown notice is rejected after the clock has moved."""
    bad_ack = {"type": "ack", "id": "A1", "township": HH, "notice_id": "0123456789abcdef", "by": "hh-fso",
               "acked_at": "2026-04-22T10:00:00"}
    notices, rejects, _ = replay([insp("I1", "2026-04-20T10:00:00"), bad_ack])
    assert [r["line"] for r in rejects] == [2]
    assert len(reminders(notices)) == 4


def test_late_arrival_evaluated_at_clock_time_and_clock_not_moved_back(replay):
    events = [insp("I1", "2026-04-20T10:00:00"),
              incident("E2", "2026-04-23T10:00:00"),
              incident("E1", "2026-04-21T08:00:00"),       # late arrival
              insp("I3", "2026-04-23T11:00:00")]
    notices, rejects, _ = replay(events)
    assert rejects == []
    assert len(reminders(notices)) == 4  # fired once, not again for the late arrival
    [late] = [n for n in of(notices, "incident.reported") if n["key"].endswith("|E1")]
    check(late, at="2026-04-23T10:00:00+08:00")


def test_late_arrival_does_not_refire_passed_deadlines(replay):
    events = [insp("I1", "2026-04-20T10:00:00"), insp("I2", "2026-04-23T10:00:00"),
              report("R1", "红河村", "2026-04", "2026-04-21T10:00:00"),  # late arrival, before the reminder time
              insp("I3", "2026-04-24T10:00:00")]
    notices, _, _ = replay(events)
    assert {n["facts"]["reporter"] for n in reminders(notices) if n["township"] == HH} == {"红河村", "新寨村", "镇卫生院"}
    assert len(reminders(notices)) == 4


def test_notices_sorted_by_at(replay):
    events = [sample("S1", "2026-01-05T10:00:00"), insp("I1", "2026-02-20T10:00:00", license_valid=False),
              incident("E1", "2026-02-10T10:00:00"),  # late arrival
              report("R1", "红河村", "2026-03", "2026-03-30T10:00:00"), incident("E2", "2026-04-20T10:00:00")]
    notices, _, _ = replay(events, until="2026-06-01T00:00:00")
    assert len(notices) > 10
    ats = [t(n["at"]) for n in notices]
    assert ats == sorted(ats)
    for n in notices:
        assert n["at"].endswith("+08:00") and len(n["at"]) == 25


def test_two_cli_replays_are_byte_identical(tmp_path, write_config, capsys):
    cfg = write_config()
    events = [sample("S1", "2026-01-05T10:00:00"), sample("S2", "2026-01-06T10:00:00"),
              insp("I1", "2026-02-20T10:00:00", license_valid=False, outcome="限期整改", rectify_by="2026-03-01"),
              incident("E1", "2026-02-10T10:00:00"), report("R1", "红河村", "2026-03", "2026-03-30T10:00:00"),
              "not json at all"]
    src = write_events(tmp_path / "events.jsonl", events)
    outs = []
    for i in range(2):
        out, rej = tmp_path / f"out{i}.jsonl", tmp_path / f"rej{i}.jsonl"
        rc = main(["replay", str(src), "--config", cfg, "--until", "2026-06-01T00:00:00",
                   "--out", str(out), "--rejects", str(rej)])
        assert rc == 0
        outs.append((out.read_bytes(), rej.read_bytes()))
    assert outs[0] == outs[1]
    text = outs[0][0].decode("utf-8")
    assert "红河镇" in text and "\\u" not in text  # UTF-8, Chinese unescaped
    lines = [json.loads(x) for x in text.splitlines()]
    assert len(lines) > 5 and all(n["id"] == nid(n["key"]) for n in lines)
    assert len(outs[0][1].decode("utf-8").splitlines()) == 1


def test_event_exactly_at_until_is_processed(replay):
    notices, _, summary = replay([insp("I1", "2026-04-20T10:00:00"), incident("E1", "2026-04-22T10:00:00"),
                                  incident("E2", "2026-04-22T10:00:01")], until="2026-04-22T10:00:00")
    assert summary.accepted == 2 and summary.skipped == 1
    assert [n["key"] for n in of(notices, "incident.reported")] == ["incident.reported|红河镇|E1"]


def test_cli_files_read_in_order_given(tmp_path, write_config):
    cfg = write_config()
    a = write_events(tmp_path / "a.jsonl", [insp("I1", "2026-04-20T10:00:00")])
    b = write_events(tmp_path / "b.jsonl", [incident("E1", "2026-04-10T10:00:00")])
    out = tmp_path / "out.jsonl"
    assert main(["replay", str(a), str(b), "--config", cfg, "--out", str(out)]) == 0
    [n] = [x for x in map(json.loads, out.read_text(encoding="utf-8").splitlines()) if x["rule"] == "incident.reported"]
    assert n["at"] == "2026-04-20T10:00:00+08:00"  # b's event arrived after a's: a late arrival


def test_cli_rejects_to_stderr_without_rejects_option(tmp_path, write_config, capsys):
    cfg = write_config()
    src = write_events(tmp_path / "e.jsonl", [incident("E1", "2026-04-10T10:00:00"), "{nope"])
    assert main(["replay", str(src), "--config", cfg, "--out", str(tmp_path / "o.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "{nope" in err


# --------------------------------------------------------------------------- duplicates

def test_duplicate_same_content_any_key_order_and_spacing(replay):
    ev = incident("E1", "2026-04-10T10:00:00", cases=3, deaths=0)
    reordered = json.dumps(dict(reversed(list(ev.items()))), ensure_ascii=False, indent=None, separators=(" ,  ", " :   "))
    escaped = json.dumps(ev, ensure_ascii=True)
    notices, rejects, summary = replay([ev, reordered, escaped, insp("I1", "2026-04-11T10:00:00")])
    assert rejects == []
    assert summary.duplicates == 2 and summary.accepted == 2
    assert len(of(notices, "incident.reported")) == 1


def test_duplicate_id_with_different_content_is_rejected(replay):
    ev = incident("E1", "2026-04-10T10:00:00", cases=3)
    notices, rejects, summary = replay([ev, incident("E1", "2026-04-10T10:00:00", cases=4)])
    [r] = rejects
    assert r["line"] == 2
    assert "duplicate" in r["reason"].lower() or "重复" in r["reason"]
    assert summary.duplicates == 0
    [n] = of(notices, "incident.reported")
    assert n["event_ids"] in ([], ["E1"])  # the first is kept


@pytest.mark.parametrize("second", [
    incident("E1", "2026-04-10T11:00:00", township=BQ),                    # other township
    insp("E1", "2026-04-10T11:00:00"),                                      # other type
])
def test_id_scoped_by_type_and_township(replay, second):
    notices, rejects, summary = replay([incident("E1", "2026-04-10T10:00:00"), second])
    assert rejects == [] and summary.accepted == 2 and summary.duplicates == 0


def test_rejected_line_id_is_not_remembered(replay):
    bad = incident("E1", "2026-04-10T10:00:00", occurred="2026-04-10T11:00:00")
    notices, rejects, summary = replay([bad, incident("E1", "2026-04-10T10:30:00")])
    assert len(rejects) == 1 and summary.accepted == 1
    assert len(of(notices, "incident.reported")) == 1


# --------------------------------------------------------------------------- rejects

GOOD_INCIDENT = incident("E0", "2026-04-10T10:00:00")


def _with(base: dict[str, Any], **changes: Any) -> str:
    ev = dict(base)
    for k, v in changes.items():
        if v is _DROP:
            ev.pop(k, None)
        else:
            ev[k] = v
    return json.dumps(ev, ensure_ascii=False)


_DROP = object()
INC = incident("E1", "2026-04-10T11:00:00", cases=2)
INS = insp("I1", "2026-04-10T11:00:00", staff_total=5, staff_with_health_cert=5)
SMP = sample("S1", "2026-04-10T11:00:00")
REP = report("R1", "红河村", "2026-04", "2026-04-10T11:00:00")
BAN = {"type": "banquet", "id": "B1", "township": HH, "host": "李大爷", "held_at": "2026-04-12T11:00:00",
       "registered_at": "2026-04-10T11:00:00", "guests": 60}
DIS = {"type": "disposal", "id": "D1", "township": HH, "sample_id": "S0", "disposed_at": "2026-04-10T11:00:00"}
ACK = {"type": "ack", "id": "A1", "township": HH, "notice_id": nid("incident.reported|红河镇|E0"), "by": "hh-fso",
       "acked_at": "2026-04-10T11:00:00"}

REJECT_CASES = [
    ("not JSON", '{"type": "incident", "id": '),
    ("not JSON (garbage)", "这不是JSON"),
    ("not an object: list", "[1, 2, 3]"),
    ("not an object: string", '"incident"'),
    ("not an object: number", "42"),
    ("not an object: null", "null"),
    ("unknown type", _with(INC, type="complaint")),
    ("missing type", _with(INC, type=_DROP)),
    ("missing id", _with(INC, id=_DROP)),
    ("missing township", _with(INC, township=_DROP)),
    ("missing kind", _with(INC, kind=_DROP)),
    ("missing occurred_at", _with(INC, occurred_at=_DROP)),
    ("missing sample entity", _with(SMP, entity=_DROP)),
    ("missing sample items", _with(SMP, items=_DROP)),
    ("missing item name", _with(SMP, items=[{"value": 1, "limit": 2}])),
    ("missing outcome", _with(INS, outcome=_DROP)),
    ("missing banquet guests", _with(BAN, guests=_DROP)),
    ("missing disposal sample_id", _with(DIS, sample_id=_DROP)),
    ("missing ack by", _with(ACK, by=_DROP)),
    ("null required field", _with(INC, kind=None)),
    ("null id", _with(INC, id=None)),
    ("null sampled_at", _with(SMP, sampled_at=None)),
    ("empty required string", _with(INC, id="")),
    ("blank required string", _with(SMP, entity="   ")),
    ("blank category", _with(SMP, category=" ")),
    ("wrong type: id number", _with(INC, id=5)),
    ("wrong type: guests string", _with(BAN, guests="60")),
    ("wrong type: guests boolean", _with(BAN, guests=True)),
    ("wrong type: cases float", _with(INC, cases=1.5)),
    ("wrong type: items object", _with(SMP, items={"item": "铅"})),
    ("wrong type: item value text", _with(SMP, items=[{"item": "铅", "value": "很高", "limit": 0.2}])),
    ("wrong type: license_valid string", _with(INS, license_valid="false")),
    ("wrong type: findings string", _with(INS, findings="后厨脏")),
    ("wrong type: township number", _with(INC, township=7)),
    ("wrong type: reported_at number", _with(INC, reported_at=20260410)),
    ("negative guests", _with(BAN, guests=-1)),
    ("negative cases", _with(INC, cases=-2)),
    ("negative staff_total", _with(INS, staff_total=-3)),
    ("program outside set", _with(SMP, program="supervision")),
    ("conclusion outside set", _with(SMP, conclusion="基本合格")),
    ("item result outside set", _with(SMP, items=[{"item": "铅", "value": 0.1, "limit": 0.2, "result": "可疑"}])),
    ("outcome outside set", _with(INS, outcome="警告")),
    ("inspection_type outside set", _with(INS, inspection_type="飞行检查")),
    ("action outside set", _with(ACK, action="转办")),
    ("unknown township", _with(INC, township="青山镇")),
    ("unknown reporter", _with(REP, reporter="李家村")),
    ("reporter of another township", _with(REP, reporter="板桥村")),
    ("unknown department in ack", _with(ACK, by="nobody-dept")),
    ("bad date: Feb 30", _with(INC, reported_at="2026-02-30T10:00:00", occurred_at="2026-02-30T09:00:00")),
    ("bad date: slashes", _with(INC, reported_at="2026/04/10 11:00")),
    ("bad date: space separator", _with(INC, reported_at="2026-04-10 11:00:00")),
    ("bad date: words", _with(INC, reported_at="yesterday")),
    ("bad date: hour 24", _with(INC, reported_at="2026-04-10T24:00:00")),
    ("bad period: month 13", _with(REP, period="2026-13")),
    ("bad period: month 00", _with(REP, period="2026-00")),
    ("bad period: one digit", _with(REP, period="2026-4")),
    ("bad period: a date", _with(REP, period="2026-04-01")),
    ("bad period: Chinese month", _with(REP, period="2026年4月")),
    ("bad offset without colon", _with(INC, reported_at="2026-04-10T11:00:00+0800")),
    ("time too far ahead", _with(INC, reported_at="2026-06-09T10:00:01", occurred_at="2026-06-09T09:00:00")),
    ("incident reported before occurred", _with(INC, occurred_at="2026-04-10T11:00:01")),
]


@pytest.mark.parametrize("raw", [c[1] for c in REJECT_CASES], ids=[c[0] for c in REJECT_CASES])
def test_reject_reasons(replay, raw, tmp_path):
    notices, rejects, summary = replay([GOOD_INCIDENT, raw, insp("I9", "2026-04-10T12:00:00")])
    assert len(rejects) == 1, rejects
    r = rejects[0]
    assert set(r) >= {"source", "line", "raw", "reason"}
    assert r["line"] == 2
    assert r["raw"] == raw
    assert isinstance(r["reason"], str) and r["reason"].strip()
    assert r["source"].endswith(".jsonl")
    assert summary.rejected == 1 and summary.accepted == 2  # processing goes on


@pytest.mark.parametrize("raw", [
    _with(INC, reported_at="2026-06-09T10:00:00", occurred_at="2026-06-09T09:00:00"),   # exactly 60 days ahead
    _with(INC, program="whatever", note="unknown fields are ignored"),
    _with(INC, cases=None, deaths=None, grade=None),                                    # optional nulls
    _with(INC, grade="特别重大（Ⅰ级）"),                                                   # grade is free text
    _with(SMP, items=[]),
    _with(SMP, program="agri_monitoring", reported_at="2026-04-10T12:00:00.123"),
    _with(REP, period="2026-12"),
    _with(ACK, action="办结"),
    _with(INC, reported_at="2026-04-10", occurred_at="2026-04-09T23:00"),               # bare date = 00:00
    _with(BAN, guests=0),
    _with(BAN, held_at="2026-09-01T11:00:00"),                                          # only event time is checked
    _with(INS, outcome="限期整改", rectify_by="2026-09-30"),
    _with(SMP, program=None),                                                           # null = absent: the default
    _with(ACK, action=None),
])
def test_accepted_edge_values(replay, raw):
    _, rejects, summary = replay([GOOD_INCIDENT, raw])
    assert rejects == [] and summary.accepted == 2


def test_null_for_a_field_with_a_default_takes_the_default(replay):
    """§6 "null counts as absent": a sample with program null is a food_sampling sample (it counts
    towards that pass rate) and an ack with action null is a 签收."""
    from shian.rules.config import parse
    from shian.rules.events import Validator
    from conftest import config_dict

    validator = Validator(parse(config_dict(), path="<test>").known())
    assert validator.from_json(_with(SMP, program=None)).program == "food_sampling"
    assert validator.from_json(_with(ACK, action=None)).action == "签收"
    assert validator.from_json(_with(SMP, program=None)) == validator.from_json(_with(SMP, program=_DROP))


def test_max_jump_days_override(replay):
    raw = _with(INC, reported_at="2026-04-20T11:00:00", occurred_at="2026-04-20T10:00:00")
    _, rejects, _ = replay([GOOD_INCIDENT, raw], config_overrides={"max_jump_days": 5})
    assert len(rejects) == 1


def test_too_far_ahead_reject_does_not_move_clock(replay):
    far = _with(INC, reported_at="2027-04-10T11:00:00", occurred_at="2027-04-10T10:00:00")
    notices, rejects, _ = replay([GOOD_INCIDENT, far, insp("I1", "2026-04-12T10:00:00")])
    assert len(rejects) == 1
    assert reminders(notices) == [] and of(notices, "source.silent") == []


def test_invalid_line_after_until_is_rejected_valid_one_skipped(replay):
    events = [GOOD_INCIDENT, insp("I1", "2026-04-20T10:00:00", license_valid=False),
              insp("I2", "2026-04-20T11:00:00", outcome="坏值")]
    notices, rejects, summary = replay(events, until="2026-04-15T00:00:00")
    assert [r["line"] for r in rejects] == [3]
    assert summary.skipped == 1 and summary.accepted == 1
    assert of(notices, "inspection.license_missing") == []


def test_blank_lines_skipped_and_line_numbers_physical(replay):
    events = ["", GOOD_INCIDENT, "   ", "\t", "oops", ""]
    notices, rejects, summary = replay(events)
    assert [r["line"] for r in rejects] == [5]
    assert summary.rejected == 1 and summary.accepted == 1


def test_utf8_bom_ignored(replay):
    notices, rejects, summary = replay(["\ufeff" + json.dumps(GOOD_INCIDENT, ensure_ascii=False)])
    assert rejects == [] and summary.accepted == 1
    assert len(of(notices, "incident.reported")) == 1


def test_reject_record_shape_via_cli(tmp_path, write_config):
    cfg = write_config()
    src = write_events(tmp_path / "events.jsonl", [GOOD_INCIDENT, "{broken", _with(INC, township="青山镇")])
    out, rej = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    assert main(["replay", str(src), "--config", cfg, "--out", str(out), "--rejects", str(rej)]) == 0
    records = [json.loads(x) for x in rej.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["raw"]) for r in records] == [(2, "{broken"), (3, _with(INC, township="青山镇"))]
    for r in records:
        assert r["source"].endswith("events.jsonl") and r["reason"].strip()
    assert "青山镇" in rej.read_text(encoding="utf-8")


def test_notice_ids_are_sha256_of_key(replay):
    events = [GOOD_INCIDENT, sample("S1", "2026-04-11T10:00:00"), insp("I1", "2026-04-12T10:00:00", license_valid=False)]
    notices, _, _ = replay(events, until="2026-05-10T00:00:00")
    assert len(notices) > 5
    assert len({n["key"] for n in notices}) == len(notices)
    for n in notices:
        assert n["id"] == nid(n["key"]) and len(n["id"]) == 16
        assert n["due"] is None or (n["due"].endswith("+08:00") and len(n["due"]) == 25)
