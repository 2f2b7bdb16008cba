"""Configs (contract §2, §6 Config) good and bad by construction, as YAML bytes.

Good ones vary the example county within what §2/§3 allow (fewer townships, rule overrides in
range, rules switched off, another timezone, flow or block style, comments, a BOM, CRLF,
anchors). Bad ones carry one fault §6 refuses (an unknown key, rule or parameter, a wrong
type, a value out of range, an unknown department or holiday, a missing section, broken
YAML) — expected ``refuse`` — or are hostile files where the contract only asks for a clean
answer, loaded or refused (``either``): other encodings, a lone surrogate, huge numbers.
"""
from __future__ import annotations

import copy
import functools
import random
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable

import yaml

LOAD, REFUSE, EITHER = "load", "refuse", "either"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "county.yaml"
HOLIDAYS = ("元旦", "春节", "劳动节", "国庆节")


@dataclass
class ConfigCase:
    label: str
    data: bytes
    expect: str
    why: str = ""
    heavy: bool = False  # seconds, not milliseconds: left out of the fast test


@functools.lru_cache(maxsize=1)
def _example() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["notifiers"] = {"file": {"dir": "发件箱"}}
    data["service"] = {"listen": "127.0.0.1:0"}
    return data


def example() -> dict[str, Any]:
    """The example county (a fresh copy), delivering to a file outbox."""
    return copy.deepcopy(_example())


# -- good -----------------------------------------------------------------------------------

def _overrides(rng: random.Random) -> dict[str, dict[str, Any]]:
    due = rng.randrange(1, 29)
    choices: list[tuple[str, dict[str, Any]]] = [
        ("sample.unqualified", {"disposal_days": rng.randrange(1, 3651)}),
        ("entity.repeat_offender", {"window_days": rng.randrange(1, 3651)}),
        ("sample.pass_rate_low", {"targets": {"food_sampling": rng.choice((0, 0.9, 0.98, 1, 1.0))},
                                  "min_samples": rng.randrange(0, 100), "county_margin": rng.choice((0, 0.05, 1)),
                                  "grace_days": rng.randrange(0, 29)}),  # 0–28 (README, config bounds)
        ("inspection.health_cert_low", {"min_rate": rng.choice((0, 0.5, 0.95, 1))}),
        ("report.reminder", {"due_day": due, "remind_days_before": rng.randrange(0, due)}),
        ("report.escalation", {"escalate_after_days": rng.randrange(1, 61)}),
        ("campaign.reminder", {"holidays": rng.sample(HOLIDAYS, rng.randrange(0, 5)), "remind_days_before": rng.randrange(0, 61)}),
        ("campaign.missed", {"window_days": rng.randrange(1, 91)}),
        ("incident.late_report", {"report_within_hours": rng.choice((0.5, 1, 2, 24, 48))}),
        ("source.silent", {"days": rng.randrange(1, 366)}),
        ("banquet.late_registration", {"min_guests": rng.randrange(0, 500), "register_hours_before": rng.choice((0, 12, 24.5))}),
        ("banquet.onsite_guidance", {"onsite_guests": rng.randrange(0, 1000)}),
        ("notice.unacknowledged", {"enabled": rng.random() < 0.5,
                                   "hours": {"critical": rng.choice((1, 24, 0.5)), "warning": rng.choice((None, 72, 8))}}),
        ("sample.banned_substance", rng.choice(({"extra_substances": ["苏丹红"]}, {"substances": ["克伦特罗"]}))),
        ("inspection.severe_outcome", {"enabled": False}),
    ]
    return dict(rng.sample(choices, rng.randrange(0, 5)))


def good_dict(rng: random.Random) -> dict[str, Any]:
    data = example()
    names = list(data["townships"])
    keep = rng.sample(names, rng.randrange(1, len(names) + 1))
    data["townships"] = {n: data["townships"][n] for n in names if n in keep}
    data["rules"] = _overrides(rng)
    if rng.random() < 0.3:
        data["timezone"] = rng.choice(("Asia/Shanghai", "Asia/Urumqi", "UTC", "Asia/Hong_Kong"))
    if rng.random() < 0.3:
        data["max_jump_days"] = rng.randrange(1, 3651)
        data["dedup_days"] = rng.randrange(1, 2001)
    if rng.random() < 0.3:
        data["min_event_date"] = rng.choice((date(2000, 1, 1), date(2015, 6, 1), "2010-01-01"))
    for key in rng.sample(("notifiers", "service", "max_jump_days", "dedup_days"), rng.randrange(0, 3)):
        data.pop(key, None)
    return data


def dump(rng: random.Random, data: Any) -> bytes:
    """YAML as people write it: block or flow style, a comment, CRLF or a BOM now and then."""
    style = dict(allow_unicode=rng.random() < 0.8, default_flow_style=rng.choice((False, None)), width=rng.choice((80, 4096)))
    try:
        text = yaml.safe_dump(data, sort_keys=rng.random() < 0.3, **style)
    except TypeError:  # keys of several types do not sort
        text = yaml.safe_dump(data, sort_keys=False, **style)
    if rng.random() < 0.3:
        text = "# 西平县配置（测试）\n" + text
    if rng.random() < 0.2:
        text = text.replace("\n", "\r\n")
    raw = text.encode("utf-8")
    return b"\xef\xbb\xbf" + raw if rng.random() < 0.1 else raw


ANCHORED = """\
timezone: Asia/Shanghai
county: {name: 西平县, office: county-fso}
departments:
  county-fso: {name: 县食安办}
  hh-fso: &dept {name: 红河镇食安办}
  bq-fso: *dept
townships:
  红河镇: {office: hh-fso, reporters: &villages [红河村, 新寨村]}
  板桥镇: {office: bq-fso, reporters: *villages}
rules: {}
"""


# -- bad ------------------------------------------------------------------------------------

def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return out


def _drop(data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node.pop(path[-1], None)
    return out


FIRST = "红河镇"
BAD: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = [
    ("unknown", lambda d: _set(d, ("colour",), "blue")),
    ("unknown", lambda d: _set(d, ("rules", "sample.unknown_rule"), {"enabled": False})),
    ("unknown", lambda d: _set(d, ("rules", "sample.unqualified", "disposal_dayz"), 3)),
    ("unknown", lambda d: _set(d, ("county", "phone"), "123")),
    ("unknown", lambda d: _set(d, ("townships", FIRST, "leader"), "x")),
    ("unknown", lambda d: _set(d, ("rules", "notice.unacknowledged", "hours"), {"critical": 24, "minor": 3})),
    ("type", lambda d: _set(d, ("rules", "report.reminder", "due_day"), 25.5)),
    ("type", lambda d: _set(d, ("rules", "report.reminder", "due_day"), "25")),
    ("type", lambda d: _set(d, ("max_jump_days",), "60")),
    ("type", lambda d: _set(d, ("dedup_days",), True)),
    ("type", lambda d: _set(d, ("rules", "source.silent", "enabled"), "no")),
    ("type", lambda d: _set(d, ("rules", "sample.pass_rate_low", "targets"), {"food_sampling": "98%"})),
    ("type", lambda d: _set(d, ("townships", FIRST, "reporters"), "红河村")),
    ("type", lambda d: _set(d, ("townships", FIRST, "routing"), ["蔬菜", "hh-agri"])),
    ("type", lambda d: _set(d, ("townships", FIRST, "population"), -1)),
    ("type", lambda d: _set(d, ("rules",), ["sample.unqualified"])),
    ("type", lambda d: _set(d, ("departments", "hh-fso", "name"), 12)),
    ("range", lambda d: _set(d, ("rules", "report.reminder", "due_day"), 29)),
    ("range", lambda d: _set(d, ("rules", "report.reminder", "due_day"), 0)),
    ("range", lambda d: _set(d, ("rules", "report.reminder"), {"due_day": 3, "remind_days_before": 3})),
    ("range", lambda d: _set(d, ("rules", "sample.pass_rate_low", "targets"), {"food_sampling": 1.5})),
    ("range", lambda d: _set(d, ("rules", "sample.pass_rate_low", "targets"), {"rapid_test": 0.9})),
    ("range", lambda d: _set(d, ("rules", "inspection.health_cert_low", "min_rate"), -0.1)),
    ("range", lambda d: _set(d, ("max_jump_days",), 0)),
    ("range", lambda d: _set(d, ("dedup_days",), -5)),
    ("range", lambda d: _set(d, ("rules", "source.silent", "days"), 0)),
    ("range", lambda d: _set(d, ("min_event_date",), date(2100, 1, 1))),
    ("range", lambda d: _set(d, ("min_event_date",), "2026-02-30")),
    ("range", lambda d: _set(d, ("min_event_date",), "yesterday")),
    ("range", lambda d: _set(d, ("rules", "incident.late_report", "report_within_hours"), 0)),
    ("department", lambda d: _set(d, ("county", "office"), "nobody")),
    ("department", lambda d: _set(d, ("county", "escalation"), ["nobody"])),
    ("department", lambda d: _set(d, ("townships", FIRST, "office"), "nobody")),
    ("department", lambda d: _set(d, ("townships", FIRST, "routing"), {"蔬菜": "nobody"})),
    ("holiday", lambda d: _set(d, ("rules", "campaign.reminder", "holidays"), ["圣诞节"])),
    ("holiday", lambda d: _set(d, ("rules", "campaign.missed", "holidays"), ["元旦"])),
    ("missing", lambda d: _drop(d, ("county",))),
    ("missing", lambda d: _drop(d, ("departments",))),
    ("missing", lambda d: _drop(d, ("townships",))),
    ("missing", lambda d: _set(d, ("townships",), {})),
    ("missing", lambda d: _drop(d, ("townships", FIRST, "office"))),
    ("missing", lambda d: _set(d, ("departments", "hh-fso"), {"email": ["a@b.example"]})),
    ("missing", lambda d: _set(d, ("county",), None)),
    ("type", lambda d: _set(d, ("county", "office"), b"county-fso")),                 # !!binary
    ("type", lambda d: _set(d, ("townships", FIRST, "reporters"), {"红河村", "新寨村"})),  # !!set
    ("type", lambda d: _set(d, ("max_jump_days",), float("nan"))),
    ("type", lambda d: _set(d, ("rules", "sample.pass_rate_low", "targets"), {"food_sampling": float("inf")})),
    ("range", lambda d: _set(d, ("min_event_date",), datetime(2010, 1, 1, 10, 30))),
    ("unknown", lambda d: _set(d, (1,), "a key that is a number")),                    # type: ignore[arg-type]
    ("missing", lambda d: _set(d, ("departments",), None)),
    ("timezone", lambda d: _set(d, ("timezone",), "Mars/Olympus")),
    ("timezone", lambda d: _set(d, ("timezone",), "../../etc/passwd")),
    ("timezone", lambda d: _set(d, ("timezone",), "")),
]
BAD_TEXT: list[tuple[str, bytes]] = [
    ("yaml", b"county: {name: \xe8\xa5\xbf\xe5\xb9\xb3, office: county-fso\ndepartments: {}\n"),
    ("yaml", b"county:\n\tname: x\n"),
    ("yaml", b"county: 'unclosed\n"),
    ("yaml", b"a: b: c\n"),
    ("yaml", b"!!python/object/apply:os.system [\"true\"]\n"),
    ("yaml", b"county: !!python/name:os.system\n"),
    ("root", b""),
    ("root", b"# only a comment\n"),
    ("root", b"- a\n- b\n"),
    ("root", b"just text\n"),
    ("root", b"null\n"),
]


def truncated(rng: random.Random, data: dict[str, Any]) -> bytes:
    """The file cut inside a flow collection: never valid YAML."""
    text = yaml.safe_dump(data, allow_unicode=True, default_flow_style=True, width=4096)
    opens = [i for i, ch in enumerate(text) if ch in "{["]
    cut = rng.choice(opens[1:]) + rng.randrange(1, 4)
    return text[:cut].encode("utf-8")


def deep(depth: int, where: str) -> bytes:
    nested = "[" * depth + "1" + "]" * depth
    if where == "rule":
        return (yaml.safe_dump(example(), allow_unicode=True).replace("rules:\n", "rules:\n  sample.pass_rate_low: {min_samples: " + nested + "}\n", 1)).encode()
    return (yaml.safe_dump(example(), allow_unicode=True) + "extra: " + nested + "\n").encode()


def laughs(levels: int = 9, width: int = 9) -> bytes:
    """Billion laughs: aliases of aliases, ``width ** levels`` strings if expanded."""
    lines = ['a0: &a0 ["lol"]']
    for n in range(1, levels + 1):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * width) + "]")
    base = yaml.safe_dump(example(), allow_unicode=True)
    base = base.replace("reporters:", f"reporters: *a{levels}\n    old_reporters:", 1)
    return ("\n".join(lines) + "\n" + base).encode()


@functools.lru_cache(maxsize=1)
def hostile() -> list[ConfigCase]:
    """The issue's hostile configs, each once."""
    text = yaml.safe_dump(example(), allow_unicode=True)
    rng = random.Random(5)
    cases = [
        ConfigCase("gbk", text.encode("gbk"), EITHER, "encoding"),
        ConfigCase("gb18030-comment", ("# 西平县\n" + text).encode("gb18030"), EITHER, "encoding"),
        ConfigCase("utf-16", text.encode("utf-16"), EITHER, "encoding"),
        ConfigCase("utf-16-le-no-bom", text.encode("utf-16-le"), EITHER, "encoding"),
        ConfigCase("utf-32", text.encode("utf-32"), EITHER, "encoding"),
        ConfigCase("truncated", truncated(rng, example()), REFUSE, "yaml"),
        ConfigCase("deep-1000-rule", deep(1000, "rule"), REFUSE, "type"),
        ConfigCase("deep-1000-unknown", deep(1000, "top"), REFUSE, "unknown"),
        ConfigCase("deep-100000", deep(100_000, "top"), REFUSE, "unknown", heavy=True),
        ConfigCase("lone-surrogate-name", text.replace("name: 县食安办", 'name: "\\ud800"', 1).encode(), EITHER, "surrogate"),
        ConfigCase("lone-surrogate-township", text.replace("红河镇:", '"\\udc00":', 1).encode(), EITHER, "surrogate"),
        ConfigCase("days-1e9", text.replace("rules:\n", "rules:\n  source.silent: {days: 1000000000}\n", 1).encode(), EITHER, "range"),
        ConfigCase("disposal-days-1e9", text.replace("disposal_days: 15", "disposal_days: 1000000000").encode(), EITHER, "range"),
        ConfigCase("window-days-1e18", text.replace("rules:\n", "rules:\n  entity.repeat_offender: {window_days: 1000000000000000000}\n", 1).encode(), EITHER, "range"),
        ConfigCase("max-jump-1e12", text.replace("max_jump_days: 60", "max_jump_days: 1000000000000").encode(), EITHER, "range"),
        ConfigCase("dedup-1e12", text.replace("dedup_days: 400", "dedup_days: 1000000000000").encode(), EITHER, "range"),
        ConfigCase("billion-laughs", laughs(), REFUSE, "type", heavy=True),
        ConfigCase("due-day-25.5", text.replace("rules:\n", "rules:\n  report.reminder: {due_day: 25.5}\n", 1).encode(), REFUSE, "type"),
        ConfigCase("anchors", ANCHORED.encode(), LOAD),
        ConfigCase("huge-name", text.replace("name: 县食安办", "name: " + "长" * 300_000, 1).encode(), LOAD, heavy=True),
        ConfigCase("nul-byte", text.replace("name: 县食安办", 'name: "县\\0食安办"', 1).encode(), EITHER, "text"),
        ConfigCase("raw-nul-byte", text.replace("name: 县食安办", "name: 县\x00食安办", 1).encode(), REFUSE, "yaml"),
        ConfigCase("invalid-utf8", text.encode().replace("县食安办".encode(), b"\xff\xfe", 1), EITHER, "encoding"),
    ]
    changed = [c for c in cases if c.data in (text.encode(), b"")]
    assert not changed, f"hostile configs that the replacement did not change: {[c.label for c in changed]}"
    return cases


def random_case(rng: random.Random, index: int) -> ConfigCase:
    roll = rng.random()
    if roll < 0.45:
        return ConfigCase(f"good#{index}", dump(rng, good_dict(rng)), LOAD)
    if roll < 0.85:
        why, change = rng.choice(BAD)
        return ConfigCase(f"bad#{index}", dump(rng, change(good_dict(rng) | {"townships": example()["townships"]})), REFUSE, why)
    if roll < 0.92:
        why, data = rng.choice(BAD_TEXT)
        return ConfigCase(f"text#{index}", data, REFUSE, why)
    return ConfigCase(f"truncated#{index}", truncated(rng, good_dict(rng)), REFUSE, "yaml")
