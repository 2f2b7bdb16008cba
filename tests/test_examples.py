"""The shipped example (examples/): one month of 西平县 events plus the lab workbook.

The example is the demo (`make demo`) and the place users copy from, so it must keep doing
what it promises: every rule of §3 fires at least once (also run as the Makefile's `replay`
target runs it), the rejects are exactly the lines that were made bad on purpose, the lab
workbook (samples and the register) converts without a single reject, and the config passes
`shian check-config`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shlex
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shian.rules.config import load
from shian.rules.events import Validator
from shian.rules.families import RULES
from shian.cli import main
from shian.streams.replay import Replay
from shian.streams.sources import read_tabular

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CONFIG = EXAMPLES / "county.yaml"
EVENTS = EXAMPLES / "events.jsonl"
WORKBOOK = EXAMPLES / "化验室抽检结果.xlsx"
UNTIL = datetime(2026, 5, 1, tzinfo=ZoneInfo("Asia/Shanghai"))

# The deliberately bad lines of events.jsonl: line number -> what is wrong with it.
BAD_LINES = {
    24: "红和镇",        # township typo (红河镇)
    54: "2062",          # year typo: 2062 instead of 2026
    68: "outcome",       # inspection without its outcome (检查结果)
    81: "JSON",          # line cut off: not valid JSON
}


def make_recipe(target: str) -> list[str]:
    """The ``shian`` command of a Makefile target, as its words after the program (continuation
    lines joined), e.g. ``["replay", "examples/events.jsonl", …]``."""
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = lines.index(next(line for line in lines if line.startswith(f"{target}:"))) + 1
    recipe = []
    for line in lines[start:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().rstrip("\\"))
        if not line.rstrip().endswith("\\"):
            break
    words = shlex.split(" ".join(recipe))
    return words[next(i for i, w in enumerate(words) if w.endswith("/shian")) + 1:]


def replay() -> tuple[list[dict], list[dict], object]:
    notices: list[dict] = []
    rejects: list[dict] = []
    config = load(CONFIG)
    summary = Replay(config, lambda n: notices.append(n.to_json()), lambda r: rejects.append(r.to_json()), until=UNTIL).run(
        [str(EVENTS), str(WORKBOOK)]
    )
    return notices, rejects, summary


@pytest.fixture(scope="module")
def run() -> tuple[list[dict], list[dict], object]:
    return replay()


def test_every_rule_fires_at_least_once(run):
    notices, _, _ = run
    fired = Counter(n["rule"] for n in notices)
    assert sorted(set(RULES) - set(fired)) == []
    assert sum(fired.values()) == len(notices)


def test_make_replay_as_written_fires_every_rule(tmp_path, monkeypatch, capsys):
    """`make replay` (its files and its --until, which takes in the 1 April check of
    inspection.frequency_due) raises a notice of every rule; here without delivery."""
    words = make_recipe("replay")
    assert words[0] == "replay" and "--until" in words and "--deliver" in words
    args, skip = [], False
    for w in words:
        if skip:
            skip = False
        elif w in ("--out", "--rejects"):
            args += [w, str(tmp_path / w.strip("-"))]
            skip = True
        elif w != "--deliver":
            args.append(w)
    monkeypatch.chdir(ROOT)
    assert main(args) == 0
    fired = Counter(json.loads(line)["rule"] for line in (tmp_path / "out").read_text(encoding="utf-8").splitlines())
    assert sorted(set(RULES) - set(fired)) == []
    assert fired["inspection.frequency_due"] == 3
    printed = capsys.readouterr()
    assert re.search(r"inspection\.frequency_due\s+3\n", printed.out + printed.err)   # the per-rule counts


def test_rejects_are_exactly_the_deliberate_bad_lines(run):
    _, rejects, summary = run
    assert [r["line"] for r in rejects] == sorted(BAD_LINES)
    assert all(r["source"] == str(EVENTS) for r in rejects)
    for r in rejects:
        assert BAD_LINES[r["line"]] in r["raw"] + r["reason"], r
        assert r["reason"]
    assert summary.rejected == len(BAD_LINES)
    # the joint inspection sent twice, and the workbook's 台账 repeating the six current register
    # rows at the top of events.jsonl with the same content
    assert summary.duplicates == 1 + 6
    assert summary.skipped == 0


def test_the_workbook_converts_without_rejects():
    records = read_tabular(WORKBOOK)
    assert [(r.line, r.reason) for r in records if r.obj is None] == []
    samples = [r for r in records if r.line.startswith("抽检结果!")]
    register = [r for r in records if r.line.startswith("台账!")]
    assert (len(samples), len(register)) == (32, 50) and len(records) == 82
    multi = [r for r in samples if len(r.obj["items"]) > 1]
    assert len(multi) == len(samples)  # every sample has several 检验项目 rows
    assert {r.obj["type"] for r in register} == {"entity"}
    assert Counter(r.obj["risk_level"] for r in register) == {"A": 17, "B": 13, "C": 10, "D": 10}  # cells say A级 …
    assert Counter(r.obj["status"] for r in register) == {"在营": 48, "注销": 2}


def test_the_register_sheet_repeats_the_jsonl_rows_it_shares_unchanged():
    """A register row id in both events.jsonl and the 台账 sheet has the same content as the
    JSON line's latest version (a duplicate, not a reject or a re-grading)."""
    config = load(CONFIG)
    validator = Validator(config.known())
    latest = {}
    for line in EVENTS.read_text(encoding="utf-8").splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("type") == "entity":
            latest[(obj["township"], obj["id"])] = validator.from_object(obj)
    sheet = {(r.obj["township"], r.obj["id"]): validator.from_object(r.obj) for r in read_tabular(WORKBOOK)
             if r.line.startswith("台账!")}
    shared = set(latest) & set(sheet)
    assert len(shared) == len(latest) == 6
    assert all(sheet[k] == latest[k] for k in shared)


def test_the_workbook_script_regenerates_the_same_content(tmp_path):
    spec = importlib.util.spec_from_file_location("make_lab_workbook", EXAMPLES / "make_lab_workbook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / WORKBOOK.name
    module.save(module.build(), out)
    assert [r.obj for r in read_tabular(out)] == [r.obj for r in read_tabular(WORKBOOK)]


def test_check_config_accepts_the_example(capsys):
    assert main(["check-config", "--config", str(CONFIG), "--now", "2026-04-01T00:00:00"]) == 0
    assert "有效" in capsys.readouterr().out


def test_the_2027_calendar_is_a_marked_example_that_fits_the_statutory_days():
    """examples/county.yaml lists a 2027 schedule (the library lacks 2027), says it is an example
    to replace with the State Council's, keeps every statutory day of 2027 off, and moves work
    only onto weekends; 2026 still comes from the library."""
    from datetime import date as day
    from shian.rules.calendar import statutory_holidays

    text = CONFIG.read_text(encoding="utf-8")
    assert "示例，请按国务院办公厅通知替换" in text[:text.index("\ncalendar:")]
    config = load(CONFIG)
    cal = config.calendar
    assert (cal.source(2027), cal.source(2026)) == ("config", "library")
    for name, days in statutory_holidays(2027):
        assert not any(cal.is_working_day(d) for d in days), name
    moved = [d for d in (day(2027, 1, 1) + timedelta(days=i) for i in range(365))
             if cal.is_working_day(d) != (d.weekday() < 5)]
    assert moved and all((d.weekday() >= 5) == cal.is_working_day(d) for d in moved)


def test_the_story_of_the_month(run):
    """What the example is meant to show, so that edits to it keep the story straight."""
    notices, _, _ = run
    by_rule: dict[str, list[dict]] = {}
    for n in notices:
        by_rule.setdefault(n["rule"], []).append(n)

    # 红河镇's April 食用农产品监测 from the workbook: 20 of 22 qualified, below 97 % and by more
    # than the 5-point margin, so the county hears of it.
    [rate] = by_rule["sample.pass_rate_low"]
    assert (rate["township"], rate["facts"]["program"], rate["facts"]["samples"], rate["level"]) == (
        "红河镇", "agri_monitoring", 22, "county")
    assert rate["at"] == "2026-05-01T00:00:00+08:00"

    # The 克伦特罗 sample was disposed of in time; the 韭菜 one of 出山镇 was not.
    assert [n["facts"]["sample_id"] for n in by_rule["sample.disposal_overdue"]] == ["XP-JC-2026-0317"]
    assert by_rule["sample.disposal_overdue"][0]["at"] == "2026-04-18T10:00:00+08:00"

    # 权寨镇 went quiet after 7 April; 盆尧镇 did no joint inspection before 劳动节.
    assert [(n["township"], n["at"]) for n in by_rule["source.silent"]] == [
        ("权寨镇", "2026-04-21T10:30:00+08:00")]
    assert [n["township"] for n in by_rule["campaign.missed"]] == ["盆尧镇"]
    assert len(by_rule["campaign.reminder"]) == 5
    assert {n["at"] for n in by_rule["campaign.reminder"]} == {"2026-04-21T09:00:00+08:00"}

    # Monthly reports: 于庄村 late (overdue, no escalation), 马庄村 and 郭庄村 never came.
    assert sorted(n["facts"]["reporter"] for n in by_rule["report.overdue"]) == ["于庄村", "郭庄村", "马庄村"]
    assert sorted(n["facts"]["reporter"] for n in by_rule["report.escalation"]) == ["郭庄村", "马庄村"]

    # The late arrival (a 14 April inspection entered on the 16th) is dated by the clock.
    [late] = [n for n in by_rule["inspection.health_cert_low"] if n["event_ids"] == ["BQ-JC-20260414-02"]]
    assert late["at"] == "2026-04-16T10:10:00+08:00"

    # The register (台账 rows at the top of the file, before the clock starts), checked quarterly
    # on 1 April at 09:00: 中心学校食堂 (D) was inspected at 08:30, exactly the one required; 兴旺饭店
    # is checked as re-graded C in March; 家家乐超市 was first registered in 2026 and 东庄村李记早餐店
    # closed (注销) in March, so neither is checked.
    assert [(n["township"], n["facts"]["entity"], n["facts"]["risk_level"], n["facts"]["done"], n["facts"]["required"])
            for n in by_rule["inspection.frequency_due"]] == [
        ("红河镇", "兴旺饭店", "C", 0, 1), ("板桥镇", "惠民购物广场", "C", 0, 1), ("出山镇", "杨湾村幼儿园食堂", "D", 0, 1)]
    assert {n["at"] for n in by_rule["inspection.frequency_due"]} == {"2026-04-01T09:00:00+08:00"}

    # 盆尧镇's positive rapid test of 韭菜 was sent for a lab re-test that never came back.
    [rapid] = by_rule["sample.rapid_unconfirmed"]
    assert (rapid["facts"]["sample_id"], rapid["at"]) == ("PY-KJ-20260413-05", "2026-04-20T09:20:00+08:00")

    # The Ⅳ-grade food poisoning of 出山镇 was reported 12 hours late, against its grade's 2 hours.
    [late_report] = by_rule["incident.late_report"]
    assert (late_report["facts"]["limit_for_grade"], late_report["facts"]["report_within_hours"]) == ("Ⅳ", 2)

    # Acknowledged notices are not escalated; the ones left unacknowledged are.
    unacked = {n["facts"]["notice_id"] for n in by_rule["notice.unacknowledged"]}
    by_id = {n["id"]: n for n in notices}
    assert sorted(by_id[i]["rule"] for i in unacked) == [
        "incident.late_report", *["inspection.frequency_due"] * 3, "report.overdue", "sample.disposal_overdue",
        "sample.rapid_unconfirmed"]
    acked = set()
    for line in EVENTS.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("type") == "ack":
            assert event["notice_id"] in by_id, event
            acked.add(event["notice_id"])
    assert acked and not acked & unacked
    for n in notices:  # ids are the first 16 hex digits of SHA-256 of the key (§4)
        assert n["id"] == hashlib.sha256(n["key"].encode("utf-8")).hexdigest()[:16]


def test_replaying_twice_gives_the_same_notices(run):
    notices, rejects, _ = run
    again, rejects_again, _ = replay()
    assert again == notices
    assert rejects_again == rejects
