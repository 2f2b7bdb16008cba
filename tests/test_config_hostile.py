"""Hostile and broken config files: each is refused with a Chinese ConfigError naming the file
(and the key path and line where there is one) and the fix; none crashes, hangs or exhausts
memory, and no English message of PyYAML or pydantic reaches the person who wrote the file."""
from __future__ import annotations

import math
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from conftest import config_dict
from shian.cli import main
from shian.notifiers.settings import parse as parse_notifiers
from shian.office.settings import parse as parse_service
from shian.rules import configfile, yamlzh
from shian.rules.config import ConfigError, load
from shian.rules.params import MAX_DAYS, MAX_HOURS
from shian.rules.problems import pydantic_problem

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

# Words of PyYAML's, pydantic's and Python's own messages: none may reach a refusal.
LEAKS = ("Input should", "mapping values", "could not find", "cannot start", "found ", "expected", "while ",
         "Value error", "valid ", "codec", "decode", "unacceptable", "Traceback", "Error", "greater than",
         "less than", "NoneType", "<unicode string>")

GOOD = yaml.safe_dump(config_dict(), allow_unicode=True, sort_keys=False)


def refusal(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load(path)
    return err.value.problems


def assert_chinese(problems: list[str], name: str) -> None:
    """Every problem names the file, holds Chinese and none of the libraries' English."""
    assert problems
    for p in problems:
        assert name in p, p
        assert any("\u4e00" <= ch <= "\u9fff" for ch in p), p
        assert not [w for w in LEAKS if w in p], p


def _deep_flow(n: int) -> bytes:
    return ("a: " + "[" * n + "]" * n + "\n").encode()


def _deep_block(n: int) -> bytes:
    return "".join(" " * i + f"k{i}:\n" for i in range(n)).encode() + b" " * n + b"x\n"


def _laughs(levels: int = 9, width: int = 10) -> bytes:
    lines = ['l0: &a0 [' + ", ".join(["lol"] * width) + ']']
    lines += [f"l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return ("\n".join(lines) + "\n").encode()


def _truncated() -> bytes:
    raw = GOOD.encode()
    cut = raw.index("县食安办".encode()) + 1  # in the middle of 县
    return raw[:cut]


def _with(line: str) -> bytes:
    return (GOOD + line + "\n").encode()


GOOD_LINES = GOOD.count("\n")

FILES: list[tuple[str, Callable[[], bytes], list[str]]] = [
    # (id, the file's bytes, words the refusal must hold)
    ("GBK", lambda: GOOD.encode("gbk"), ["GBK", "UTF-8", "第 "]),
    ("GB18030 outside GBK", lambda: ("# 𠀀\n" + GOOD).encode("gb18030"), ["GB18030", "UTF-8"]),
    ("UTF-16 with BOM", lambda: GOOD.encode("utf-16"), ["UTF-16", "带 BOM", "UTF-8"]),
    ("UTF-16 LE without BOM", lambda: GOOD.encode("utf-16-le"), ["UTF-16 LE", "无 BOM", "UTF-8"]),
    ("UTF-16 BE without BOM", lambda: GOOD.encode("utf-16-be"), ["UTF-16 BE", "无 BOM"]),
    ("UTF-32 with BOM", lambda: GOOD.encode("utf-32"), ["UTF-32"]),
    ("truncated mid-character", _truncated, ["截断", "第 "]),
    ("surrogate as bytes", lambda: GOOD.encode() + b"x: \xed\xa0\x80\n", ["代理字符", f"第 {GOOD_LINES + 1} 行"]),
    ("surrogate as escape", lambda: _with('county_note: "\\ud800"'),
     ["county_note", f"第 {GOOD_LINES + 1} 行", "U+D800", "代理字符"]),
    ("control character", lambda: _with("x: a\x07b"), ["U+0007", f"第 {GOOD_LINES + 1} 行第 5 列"]),
    ("NUL byte", lambda: _with("x: a\x00b"), ["U+0000", f"第 {GOOD_LINES + 1} 行"]),
    ("control character as escape", lambda: _with('x: "a\\x1bb"'), ["U+001B", f"第 {GOOD_LINES + 1} 行"]),
    ("mapping values not allowed", lambda: b"a: b: c\n", ["第 1 行第 5 列", "键: 值", "引号"]),
    ("could not find expected ':'", lambda: b"a: 1\nb\n'c': 2\n", ["第 ", "冒号"]),
    ("character that cannot start a token", lambda: b"a: @x\n", ["第 1 行第 4 列", "“@”", "引号"]),
    ("backquote", lambda: b"a: `x`\n", ["“`”"]),
    ("tab indentation", lambda: b"a:\n\tb: 1\n", ["第 2 行", "制表符"]),
    ("unclosed quote", lambda: b"a: 'x\nb: 2\n", ["引号没有闭合", "第 1 行开始"]),
    ("unclosed flow list", lambda: b"a: [1, 2\nb: 3\n", ["方括号", "第 2 行"]),
    ("unclosed flow mapping", lambda: b"a: {x: 1\nb: 2\n", ["花括号", "第 2 行"]),
    ("bad indentation", lambda: b"a:\n  - 1\n - 2\n", ["缩进", "第 3 行"]),
    ("bad escape", lambda: b'a: "C:\\q"\n', ["转义"]),
    ("undefined alias", lambda: b"a: *nope\n", ["*nope", "锚点"]),
    ("duplicate anchor", lambda: b"a: &x 1\nb: &x 2\n", ["&x", "第 2 行"]),
    ("two documents", lambda: b"a: 1\n---\nb: 2\n", ["---"]),
    ("python tag", lambda: b"a: !!python/object/apply:os.system [ls]\n", ["!!python/object/apply:os.system", "标签"]),
    ("unhashable key", lambda: b"? [1, 2]\n: x\n", ["键不能是列表或映射"]),
    ("bad merge", lambda: b"a: {<<: 5}\n", ["<<"]),
    ("duplicate %YAML directive", lambda: b"%YAML 1.1\n%YAML 1.1\n---\na: 1\n", ["%YAML"]),
    ("nesting 1000 deep (flow)", lambda: _deep_flow(1000), ["嵌套超过 64 层", "第 1 行"]),
    ("nesting 100 deep (block)", lambda: _deep_block(100), ["嵌套超过 64 层", "第 64 行"]),
    ("nesting through aliases", lambda: b"a: &a " + b"[" * 40 + b"]" * 40 + b"\nb: " + b"[" * 40 + b"*a" + b"]" * 40 + b"\n",
     ["*a", "64"]),
    ("billion laughs", _laughs, ["YAML 炸弹", "20000"]),
    ("doubling aliases", lambda: ("\n".join(["d0: &d0 [x, x]"] + [f"d{i}: &d{i} [*d{i - 1}, *d{i - 1}]" for i in range(1, 60)])
                                  + "\n").encode(), ["YAML 炸弹"]),
    ("too many aliases", lambda: ("a: &a 1\nb: [" + ", ".join(["*a"] * 501) + "]\n").encode(), ["别名", "500"]),
    ("recursive alias", lambda: b"a: &a [1, *a]\n", ["*a", "循环引用"]),
    ("file over 1 MiB", lambda: GOOD.encode() + b"#" * configfile.MAX_BYTES, ["文件太大", "1 MiB"]),
    ("duplicate top-level key", lambda: _with("timezone: Asia/Shanghai"),
     ["timezone", f"第 {GOOD_LINES + 1} 行", f"第 {GOOD.splitlines().index('timezone: Asia/Shanghai') + 1} 行已有"]),
    ("duplicate nested key", lambda: GOOD.replace("    office: bq-fso\n", "    office: bq-fso\n    office: hh-fso\n").encode(),
     ["townships.板桥镇.office", "重复", "已有"]),
    ("duplicate rule parameter",
     lambda: GOOD.replace("rules: {}", "rules:\n  source.silent:\n    days: 14\n    days: 15").encode(),
     ["rules.source.silent.days", f"第 {GOOD_LINES + 3} 行", f"第 {GOOD_LINES + 2} 行已有"]),
    ("empty file", lambda: b"", ["空的文件"]),
    ("only comments", lambda: b"# nothing here\n", ["空的文件"]),
    ("a list at the top", lambda: b"- a\n- b\n", ["实为列表"]),
    ("a date where a name goes", lambda: GOOD.replace("name: 西平县", "name: 2026-01-01").encode(),
     ["county.name", "应为文字"]),
    ("a 5000-digit number", lambda: GOOD.replace("population: 30000", "population: " + "9" * 5000).encode(),
     ["townships.红河镇.population", "应为整数"]),
    ("a 13th month", lambda: GOOD.replace("timezone: Asia/Shanghai", "timezone: Asia/Shanghai\nmin_event_date: 2000-13-01")
     .encode(), ["min_event_date", "不是有效的日期"]),
]


@pytest.mark.parametrize("make, words", [r[1:] for r in FILES], ids=[r[0] for r in FILES])
def test_hostile_file_refused_in_chinese(tmp_path, make, words):
    """Each broken or hostile file is a ConfigError naming the file and saying what and where."""
    path = tmp_path / "县配置.yaml"
    path.write_bytes(make())
    started = time.process_time()  # CPU time: a loaded machine does not make it flaky
    problems = refusal(path)
    assert time.process_time() - started < 2
    assert_chinese(problems, "县配置.yaml")
    text = "\n".join(problems)
    assert all(w in text for w in words), (words, problems)


@pytest.mark.parametrize("where, words", [("missing.yaml", "文件不存在"), (".", "文件夹")], ids=["missing", "directory"])
def test_unreadable_path_refused_in_chinese(tmp_path, where, words):
    """A path that is no readable file is said in Chinese, not with the system's English."""
    problems = refusal(tmp_path / where)
    assert_chinese(problems, str(tmp_path))
    assert words in problems[0]


def test_billion_laughs_refused_fast_and_small(tmp_path):
    """A YAML bomb is refused before anything expands: well under a second, little memory."""
    path = tmp_path / "bomb.yaml"
    path.write_bytes(_laughs(levels=12))
    tracemalloc.start()
    started = time.perf_counter()
    try:
        problems = refusal(path)
        took = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "YAML 炸弹" in problems[0]
    assert took < 1, took
    assert peak < 5_000_000, peak


def test_many_values_refused_at_the_node_limit(tmp_path, monkeypatch):
    """A file of more values than a config has is refused when composing reaches the limit
    (the limit lowered so that the test is fast)."""
    monkeypatch.setattr(yamlzh, "MAX_NODES", 500)
    path = tmp_path / "big.yaml"
    path.write_text("a: [" + ", ".join(["1"] * 1000) + "]\n", encoding="utf-8")
    problems = refusal(path)
    assert_chinese(problems, "big.yaml")
    assert "值的个数超过 500 个" in problems[0]


def test_utf8_bom_and_crlf_are_fine(tmp_path):
    """A UTF-8 byte-order mark (Windows Notepad) and CRLF line ends load like plain UTF-8."""
    path = tmp_path / "county.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    assert load(path).county.name == "西平县"


def test_anchors_and_merge_keys_within_bounds_load(tmp_path):
    """Anchors, aliases and merge keys a real config may use (shared routing) still load."""
    data = GOOD.replace('    routing:\n', '    routing: &routing\n', 1)
    data = data.replace("    office: bq-fso\n", "    office: bq-fso\n    routing: *routing\n")
    path = tmp_path / "county.yaml"
    path.write_text(data, encoding="utf-8")
    config = load(path)
    assert config.townships["板桥镇"].routing == config.townships["红河镇"].routing


FALLBACKS = [
    # (id, pydantic error, words of the Chinese sentence)
    ("an error type without a translation", {"type": "uuid_parsing", "msg": "Input should be a valid UUID", "input": "x"},
     "取值 “x” 无效"),
    ("a validator's English message", {"type": "value_error", "msg": "Value error, bad", "input": 3,
                                       "ctx": {"error": ValueError("bad")}}, "取值 3 无效"),
    ("a validator's Chinese message", {"type": "value_error", "msg": "Value error, 坏", "input": 3,
                                       "ctx": {"error": ValueError("应为偶数")}}, "应为偶数"),
]


@pytest.mark.parametrize("err, words", [r[1:] for r in FALLBACKS], ids=[r[0] for r in FALLBACKS])
def test_pydantic_error_without_translation_falls_back_to_chinese(err, words):
    """An error type the table lacks, or a validator's English, still comes out Chinese."""
    what, fix = pydantic_problem(err)
    assert words in what and not [w for w in LEAKS if w in what + fix], (what, fix)


def test_yaml_error_without_translation_falls_back_to_chinese():
    """A PyYAML message the table lacks comes out as the generic Chinese sentence."""
    assert yamlzh.translate("found something PyYAML may say one day") == yamlzh.GENERIC


# --------------------------------------------------------------------------- numbers

NUMBERS: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None, str, str]] = [
    # (id, rules, other overrides, key path named, words)
    ("days 10^9 (was OverflowError)", {"source.silent": {"days": 1_000_000_000}}, None, "rules.source.silent.days",
     f"应不大于 {MAX_DAYS}"),
    ("days 0", {"source.silent": {"days": 0}}, None, "rules.source.silent.days", "应不小于 1"),
    ("days as float", {"source.silent": {"days": 14.5}}, None, "rules.source.silent.days", "应为整数，实为 14.5"),
    ("days as bool", {"source.silent": {"days": True}}, None, "rules.source.silent.days", "应为整数，实为 true"),
    ("days as text", {"source.silent": {"days": "14"}}, None, "rules.source.silent.days", "应为整数，实为 “14”"),
    ("disposal_days 3661", {"sample.unqualified": {"disposal_days": MAX_DAYS + 1}}, None,
     "rules.sample.unqualified.disposal_days", "太大"),
    ("window_days 0", {"entity.repeat_offender": {"window_days": 0}}, None,
     "rules.entity.repeat_offender.window_days", "太小"),
    ("escalate_after_days 10^6", {"report.escalation": {"escalate_after_days": 10 ** 6}}, None,
     "rules.report.escalation.escalate_after_days", "太大"),
    ("due_day 25.5", {"report.reminder": {"due_day": 25.5}}, None, "rules.report.reminder.due_day", "应为整数"),
    ("due_day 25.0", {"report.reminder": {"due_day": 25.0}}, None, "rules.report.reminder.due_day", "应为整数"),
    ("due_day true", {"report.reminder": {"due_day": True}}, None, "rules.report.reminder.due_day", "应为整数"),
    ("due_day 29", {"report.reminder": {"due_day": 29}}, None, "rules.report.reminder.due_day", "应不大于 28"),
    ("due_day 0", {"report.reminder": {"due_day": 0}}, None, "rules.report.reminder.due_day", "应不小于 1"),
    ("remind_days_before -1", {"report.reminder": {"remind_days_before": -1}}, None,
     "rules.report.reminder.remind_days_before", "应不小于 0"),
    ("due_day not after remind_days_before", {"report.reminder": {"due_day": 5, "remind_days_before": 5}}, None,
     "rules.report.reminder", "应大于 remind_days_before"),
    ("campaign remind_days_before 367", {"campaign.reminder": {"remind_days_before": 367}}, None,
     "rules.campaign.reminder.remind_days_before", "应不大于 366"),
    ("campaign window_days 0", {"campaign.missed": {"window_days": 0}}, None, "rules.campaign.missed.window_days",
     "应不小于 1"),
    ("grace_days 29", {"sample.pass_rate_low": {"grace_days": 29}}, None, "rules.sample.pass_rate_low.grace_days",
     "应不大于 28"),
    ("min_samples -1", {"sample.pass_rate_low": {"min_samples": -1}}, None, "rules.sample.pass_rate_low.min_samples",
     "太小"),
    ("target NaN", {"sample.pass_rate_low": {"targets": {"food_sampling": math.nan}}}, None,
     "rules.sample.pass_rate_low.targets.food_sampling", "有限的数字"),
    ("target 1.2", {"sample.pass_rate_low": {"targets": {"food_sampling": 1.2}}}, None,
     "rules.sample.pass_rate_low.targets.food_sampling", "应不大于 1"),
    ("county_margin as text", {"sample.pass_rate_low": {"county_margin": "5%"}}, None,
     "rules.sample.pass_rate_low.county_margin", "应为数字"),
    ("min_rate -0.1", {"inspection.health_cert_low": {"min_rate": -0.1}}, None,
     "rules.inspection.health_cert_low.min_rate", "应不小于 0"),
    ("min_guests 10^7", {"banquet.late_registration": {"min_guests": 10 ** 7}}, None,
     "rules.banquet.late_registration.min_guests", "太大"),
    ("register_hours_before infinite", {"banquet.late_registration": {"register_hours_before": math.inf}}, None,
     "rules.banquet.late_registration.register_hours_before", "有限的数字"),
    ("onsite_guests -1", {"banquet.onsite_guidance": {"onsite_guests": -1}}, None,
     "rules.banquet.onsite_guidance.onsite_guests", "太小"),
    ("report_within_hours 0", {"incident.late_report": {"report_within_hours": 0}}, None,
     "rules.incident.late_report.report_within_hours", "应大于 0"),
    ("report_within_hours a year and an hour", {"incident.late_report": {"report_within_hours": MAX_HOURS + 1}}, None,
     "rules.incident.late_report.report_within_hours", f"应不大于 {MAX_HOURS}"),
    ("ack hours 10^9", {"notice.unacknowledged": {"hours": {"warning": 10 ** 9}}}, None,
     "rules.notice.unacknowledged.hours.warning", "太大"),
    ("ack hours as bool", {"notice.unacknowledged": {"hours": {"critical": False}}}, None,
     "rules.notice.unacknowledged.hours.critical", "应为数字"),
    ("rule overrides not a mapping", {"source.silent": 14}, None, "rules.source.silent", "应为参数映射"),
    ("enabled as text", {"source.silent": {"enabled": "否"}}, None, "rules.source.silent.enabled", "true 或 false"),
    ("list as text", {"sample.banned_substance": {"extra_substances": "苏丹红"}}, None,
     "rules.sample.banned_substance.extra_substances", "应为列表"),
    ("max_jump_days 0", None, {"max_jump_days": 0}, "max_jump_days", "应不小于 1"),
    ("max_jump_days 10^9", None, {"max_jump_days": 10 ** 9}, "max_jump_days", "太大"),
    ("max_jump_days as bool", None, {"max_jump_days": True}, "max_jump_days", "应为整数"),
    ("dedup_days 60.0", None, {"dedup_days": 60.0}, "dedup_days", "应为整数"),
    ("dedup_days 3661", None, {"dedup_days": MAX_DAYS + 1}, "dedup_days", "太大"),
    ("population -1", None, {"townships": {"红河镇": {"population": -1}}}, "townships.红河镇.population", "太小"),
    ("population 1.5", None, {"townships": {"红河镇": {"population": 1.5}}}, "townships.红河镇.population", "应为整数"),
    ("min_event_date as a number", None, {"min_event_date": 20000101}, "min_event_date", "YYYY-MM-DD"),
    ("min_event_date bad text", None, {"min_event_date": "2000-02-30"}, "min_event_date", "不是有效的日期"),
    ("min_event_date with a time", None, {"min_event_date": "2000-01-01T08:00"}, "min_event_date", "YYYY-MM-DD"),
    ("min_event_date before 1900", None, {"min_event_date": "1899-12-31"}, "min_event_date", "1900-01-01"),
    ("min_event_date after 2099", None, {"min_event_date": "2100-01-01"}, "min_event_date", "2099-12-31"),
    ("township key a number", None, {"townships": {7: {"office": "hh-fso"}}}, "townships.7", "键 7 无效"),
    ("escalation not a list", None, {"county": {"escalation": "county-lead"}}, "county.escalation", "应为列表"),
    ("unknown top-level key", None, {"countys": {}}, "countys", "未知的键"),
]


@pytest.mark.parametrize("rules, overrides, where, words", [r[1:] for r in NUMBERS], ids=[r[0] for r in NUMBERS])
def test_value_out_of_range_or_of_wrong_type_refused(write_config, rules, overrides, where, words):
    """Every number has a range and integers are integers; the refusal names key path and line."""
    path = Path(write_config(rules, overrides))
    problems = refusal(path)
    assert_chinese(problems, "county.yaml")
    [problem] = [p for p in problems if f": {where}（第 " in p]
    assert words in problem, problem


SECTIONS: list[tuple[str, str, dict[str, Any], str, str]] = [
    # (id, section, its content, key path named, words)
    ("group_wait_seconds negative", "notifiers", {"group_wait_seconds": -1}, "notifiers.group_wait_seconds", "太小"),
    ("group_wait_seconds over a day", "notifiers", {"group_wait_seconds": 86_401}, "notifiers.group_wait_seconds",
     "应不大于 86400"),
    ("retry first_seconds 0", "notifiers", {"retry": {"first_seconds": 0}}, "notifiers.retry.first_seconds", "应大于 0"),
    ("give_up_hours infinite", "notifiers", {"retry": {"give_up_hours": math.inf}}, "notifiers.retry.give_up_hours",
     "有限的数字"),
    ("robot_per_minute 2.5", "notifiers", {"robot_per_minute": 2.5}, "notifiers.robot_per_minute", "应为整数"),
    ("robot_per_minute 0", "notifiers", {"robot_per_minute": 0}, "notifiers.robot_per_minute", "应不小于 1"),
    ("smtp port 65536", "notifiers", {"smtp": {"host": "h", "from": "a@b.example", "port": 65536}},
     "notifiers.smtp.port", "应不大于 65535"),
    ("smtp port as bool", "notifiers", {"smtp": {"host": "h", "from": "a@b.example", "port": True}},
     "notifiers.smtp.port", "应为整数"),
    ("smtp security unknown", "notifiers", {"smtp": {"host": "h", "from": "a@b.example", "security": "ssl"}},
     "notifiers.smtp.security", "'starttls'、'tls'、'none'"),
    ("smtp timeout an hour and a second", "notifiers",
     {"smtp": {"host": "h", "from": "a@b.example", "timeout_seconds": 3601}}, "notifiers.smtp.timeout_seconds", "太大"),
    ("smtp connections 0", "notifiers", {"smtp": {"host": "h", "from": "a@b.example", "connections": 0}},
     "notifiers.smtp.connections", "应不小于 1"),
    ("smtp connections 9", "notifiers", {"smtp": {"host": "h", "from": "a@b.example", "connections": 9}},
     "notifiers.smtp.connections", "应不大于 8"),
    ("smtp connections 1.5", "notifiers", {"smtp": {"host": "h", "from": "a@b.example", "connections": 1.5}},
     "notifiers.smtp.connections", "应为整数"),
    ("working hours 25:00", "notifiers", {"working_hours": {"start": "25:00"}}, "notifiers.working_hours.start",
     "HH:MM"),
    ("working hours 17:60", "notifiers", {"working_hours": {"end": "17:60"}}, "notifiers.working_hours.end", "HH:MM"),
    ("digest at as a list", "notifiers", {"digest": {"at": [17, 30]}}, "notifiers.digest.at", "HH:MM"),
    ("unknown notifiers key", "notifiers", {"smpt": {}}, "notifiers.smpt", "未知的键"),
    ("port 65536", "service", {"listen": "127.0.0.1:65536"}, "service.listen", "0–65535"),
    ("port in other digits", "service", {"listen": "127.0.0.1:٨٠٨٠"}, "service.listen", "主机:端口"),
    ("listen without port", "service", {"listen": "localhost"}, "service.listen", "主机:端口"),
    ("snapshot_every 0", "service", {"snapshot_every": 0}, "service.snapshot_every", "应不小于 1"),
    ("snapshot_every 1.5", "service", {"snapshot_every": 1.5}, "service.snapshot_every", "应为整数"),
    ("feed without a name", "service", {"feeds": {"lab": {"token": "x" * 12}}}, "service.feeds.lab.name", "缺少"),
    ("a token of 5 characters", "service", {"tokens": {"hh-fso": {"token": "short"}}}, "service.tokens.hh-fso.token",
     "令牌太短"),
    ("a feed and a department with the same token", "service",
     {"feeds": {"lab": {"name": "化验室", "token": "same-token-123"}}, "tokens": {"hh-fso": {"token": "same-token-123"}}},
     "service", "相同的令牌"),
    ("a token for an unknown department", "service", {"tokens": {"no-such": {"token": "x" * 12}}},
     "service.tokens.no-such", "未知的部门"),
    ("auth failures burst 0", "service", {"auth_failures": {"burst": 0}}, "service.auth_failures.burst", "应不小于 1"),
    ("auth failures per minute over 10,000", "service", {"auth_failures": {"per_minute": 10_001}},
     "service.auth_failures.per_minute", "太大"),
    ("auth failures for 10 addresses", "service", {"auth_failures": {"addresses": 10}},
     "service.auth_failures.addresses", "应不小于 100"),
    ("auth failures burst 2.5", "service", {"auth_failures": {"burst": 2.5}}, "service.auth_failures.burst", "应为整数"),
    ("auth failures unknown key", "service", {"auth_failures": {"window": 60}}, "service.auth_failures.window",
     "未知的键"),
]


@pytest.mark.parametrize("section, content, where, words", [r[1:] for r in SECTIONS], ids=[r[0] for r in SECTIONS])
def test_bad_section_value_refused(write_config, section, content, where, words):
    """The notifiers and service sections bound their numbers too, in the same terms."""
    config = load(write_config(config_overrides={section: content}))
    with pytest.raises(ConfigError) as err:
        (parse_notifiers if section == "notifiers" else parse_service)(config, env={})
    problems = err.value.problems
    assert_chinese(problems, "county.yaml")
    [problem] = [p for p in problems if f": {where}（第 " in p]
    assert words in problem, problem


# --------------------------------------------------------------------------- every problem at once

def _check_config(path: str, capsys) -> tuple[int, str]:
    try:
        code = main(["check-config", "--config", path, "--now", "2026-04-20T00:00"]) or 0
    except SystemExit as e:
        code = int(e.code or 0)
    return code, capsys.readouterr().err


def test_check_config_reports_every_section_in_one_run(write_config, capsys):
    """Top-level, rules, contacts, notifiers and service problems come out together."""
    path = write_config(
        rules={"source.silent": {"days": 0}},
        config_overrides={"max_jump_days": "60", "departments": {"hh-fso": {"emial": ["a@hh.example"]}},
                          "notifiers": {"group_wait_seconds": -1}, "service": {"listen": "127.0.0.1:99999"}})
    code, err = _check_config(path, capsys)
    assert code == 2
    for where in ("max_jump_days", "rules.source.silent.days", "notifiers.group_wait_seconds", "service.listen"):
        assert f": {where}（第 " in err, (where, err)
    assert_chinese([line.strip() for line in err.splitlines()[1:]], "county.yaml")


def test_check_config_skips_sections_when_departments_are_broken(write_config, capsys):
    """A broken departments section would make every section's department check wrong: only
    the config's own problems are reported then."""
    path = write_config(config_overrides={"departments": {"hh-fso": {"name": 5}},
                                          "service": {"tokens": {"hh-fso": {"token": "x" * 12}}}})
    code, err = _check_config(path, capsys)
    assert code == 2
    assert "departments.hh-fso.name" in err and "service" not in err


def test_check_config_reports_a_hostile_file_without_traceback(tmp_path, capsys):
    """check-config on a bomb exits 2 with the one Chinese sentence."""
    path = tmp_path / "bomb.yaml"
    path.write_bytes(_laughs())
    code, err = _check_config(str(path), capsys)
    assert code == 2 and "YAML 炸弹" in err and "Traceback" not in err


# --------------------------------------------------------------------------- what must still load

@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_still_load(example):
    """The shipped examples pass every check (service tokens given by name only)."""
    config = load(example)
    env = {name: name.lower() * 2 for name in ("SHIAN_FEED_LAB", "SHIAN_TOKEN_COUNTY", "SHIAN_TOKEN_HH_FSO",
                                               "SHIAN_SMTP_PASSWORD")}
    parse_notifiers(config, env=env)
    parse_service(config, env=env)


def test_the_tests_config_still_loads_from_a_file(write_config):
    """The config the test suite builds its cases on loads from a file as from a dict."""
    config = load(write_config())
    assert set(config.townships) == {"红河镇", "板桥镇"} and config.lines[("townships", "红河镇", "office")] > 0
