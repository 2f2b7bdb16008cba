"""Configuration (§2, §6 Config): refusals name file and key path; overrides merge per key."""
from __future__ import annotations

from typing import Any

import pytest
import yaml

from conftest import config_dict, of
from shian.rules.config import ConfigError, parse
from shian.cli import main

HH = "红河镇"

BAD_CONFIGS = [
    # (id, rules, config_overrides, key path parts the message must name)
    ("unknown rule id", {"sample.unknwon": {"enabled": False}}, None, ["rules", "sample.unknwon"]),
    ("unknown parameter", {"report.reminder": {"due": 25}}, None, ["rules", "report.reminder", "due"]),
    ("parameter of another rule (due_day)", {"report.overdue": {"due_day": 20}}, None, ["report.overdue", "due_day"]),
    ("parameter of another rule (holidays)", {"campaign.missed": {"holidays": ["春节"]}}, None,
     ["campaign.missed", "holidays"]),
    ("wrong type: string for int", {"report.reminder": {"due_day": "25"}}, None, ["report.reminder", "due_day"]),
    ("wrong type: float for int", {"sample.pass_rate_low": {"min_samples": 2.5}}, None,
     ["sample.pass_rate_low", "min_samples"]),
    ("wrong type: string for list", {"sample.banned_substance": {"extra_substances": "苏丹红"}}, None,
     ["sample.banned_substance", "extra_substances"]),
    ("wrong type: enabled", {"report.overdue": {"enabled": "no"}}, None, ["report.overdue", "enabled"]),
    ("target above 1", {"sample.pass_rate_low": {"targets": {"food_sampling": 1.2}}}, None,
     ["sample.pass_rate_low", "targets", "food_sampling"]),
    ("target below 0", {"sample.pass_rate_low": {"targets": {"agri_monitoring": -0.1}}}, None,
     ["sample.pass_rate_low", "targets", "agri_monitoring"]),
    ("unknown holiday", {"campaign.reminder": {"holidays": ["春节", "端午节"]}}, None,
     ["campaign.reminder", "holidays", "端午节"]),
    ("hours unknown severity", {"notice.unacknowledged": {"hours": {"info": 5}}}, None,
     ["notice.unacknowledged", "hours", "info"]),
    ("due_day 29", {"report.reminder": {"due_day": 29}}, None, ["report.reminder", "due_day"]),
    ("due_day 0", {"report.reminder": {"due_day": 0}}, None, ["report.reminder", "due_day"]),
    ("due_day equal to remind_days_before", {"report.reminder": {"due_day": 3, "remind_days_before": 3}}, None,
     ["report.reminder", "due_day"]),
    ("due_day below remind_days_before", {"report.reminder": {"due_day": 2}}, None, ["report.reminder", "due_day"]),
    ("unknown department in routing", None, {"townships": {HH: {"routing": {"水果": "hh-fruit"}}}},
     ["townships", HH, "routing", "水果", "hh-fruit"]),
    ("unknown department as town office", None, {"townships": {HH: {"office": "hh-office"}}},
     ["townships", HH, "office", "hh-office"]),
    ("unknown department as county office", None, {"county": {"office": "cty"}}, ["county", "office", "cty"]),
    ("unknown department in escalation", None, {"county": {"escalation": ["county-lead", "boss"]}},
     ["county", "escalation", "boss"]),
    ("unknown top-level key", None, {"countys": {"name": "x"}}, ["countys"]),
    ("wrong type top-level", None, {"max_jump_days": "60"}, ["max_jump_days"]),
]


@pytest.mark.parametrize("rules, overrides, parts", [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_refused_with_file_and_key_path(rules, overrides, parts):
    with pytest.raises(ConfigError) as err:
        parse(config_dict(rules, overrides), path="county.yaml")
    problems = err.value.problems
    assert problems
    assert all("county.yaml" in p for p in problems)
    assert any(all(part in p for part in parts) for p in problems), problems


def test_township_without_office_refused():
    data = config_dict()
    del data["townships"]["板桥镇"]["office"]
    with pytest.raises(ConfigError) as err:
        parse(data, path="county.yaml")
    assert any("county.yaml" in p and "板桥镇" in p and "office" in p for p in err.value.problems)


def test_all_problems_reported_together():
    with pytest.raises(ConfigError) as err:
        parse(config_dict({"report.reminder": {"due_day": 29}, "x.y": {}},
                          {"townships": {HH: {"routing": {"蔬菜": "nope"}}}}), path="county.yaml")
    text = "\n".join(err.value.problems)
    assert "x.y" in text and "nope" in text and "due_day" in text


def test_informational_fields_optional():
    data = config_dict()
    del data["county"]["name"]
    data["townships"][HH].pop("population")
    parse(data, path="county.yaml")


def test_every_rule_takes_enabled_false():
    ids = ["sample.banned_substance", "sample.unqualified", "sample.disposal_overdue", "entity.repeat_offender",
           "sample.pass_rate_low", "inspection.license_missing", "inspection.health_cert_low",
           "inspection.severe_outcome", "inspection.rectification_overdue", "report.reminder", "report.overdue",
           "report.escalation", "campaign.reminder", "campaign.missed", "incident.reported", "incident.late_report",
           "source.silent", "banquet.late_registration", "banquet.onsite_guidance", "notice.unacknowledged"]
    parse(config_dict({i: {"enabled": False} for i in ids}), path="county.yaml")


def _samples(program: str, n_bad: int, prefix: str) -> list[dict[str, Any]]:
    out = []
    for i in range(20):
        limit = 0.2
        value = 0.5 if i < n_bad else 0.1
        out.append({"type": "sampling_result", "id": f"{prefix}{i}", "township": HH, "program": program,
                    "sampled_at": f"2026-04-{i + 1:02d}T10:00:00", "entity": f"单位{prefix}{i}", "category": "蔬菜",
                    "items": [{"item": "铅", "value": value, "limit": limit}]})
    return out


def test_targets_override_merges_per_program(replay):
    events = sorted(_samples("food_sampling", 1, "F") + _samples("agri_monitoring", 1, "A"),
                    key=lambda e: e["sampled_at"])
    notices, _, _ = replay(events, rules={"sample.pass_rate_low": {"targets": {"agri_monitoring": 0.9}}},
                           until="2026-05-01T00:00:00")
    found = of(notices, "sample.pass_rate_low")
    assert [(n["facts"]["program"], n["facts"]["target"]) for n in found] == [("food_sampling", 0.98)]


def test_lists_replace_holidays(replay):
    events = [{"type": "inspection", "id": "I0", "inspected_at": "2026-09-01T10:00:00", "township": HH,
               "entity": "x", "entity_type": "餐饮服务", "inspection_type": "日常检查", "outcome": "合格"}]
    notices, _, _ = replay(events, rules={"campaign.reminder": {"holidays": ["国庆节", "元旦"]}},
                           until="2026-10-01T00:00:00")
    assert {n["facts"]["holiday"] for n in of(notices, "campaign.reminder")} == {"国庆节"}
    notices, _, _ = replay(events, rules={"campaign.reminder": {"holidays": ["元旦"]}}, until="2026-10-01T00:00:00")
    assert of(notices, "campaign.reminder") == [] and of(notices, "campaign.missed") == []


# --------------------------------------------------------------------------- check-config

def test_check_config_prints_rules_and_upcoming_deadlines(write_config, capsys):
    path = write_config()
    rc = main(["check-config", "--config", path, "--now", "2026-04-20T00:00"])
    assert rc in (0, None)
    out = capsys.readouterr().out
    for rule_id in ("sample.unqualified", "sample.pass_rate_low", "report.reminder", "campaign.missed",
                    "notice.unacknowledged", "banquet.onsite_guidance"):
        assert rule_id in out
    assert "2026-04-21T09:00" in out   # campaign.reminder for 劳动节
    assert "2026-04-22T09:00" in out   # report.reminder
    assert "2026-04-26T00:00" in out   # report.overdue
    assert "2026-05-01T00:00" in out   # pass rate, escalation, campaign.missed


def test_check_config_shows_overrides(write_config, capsys):
    path = write_config(rules={"report.reminder": {"due_day": 28, "remind_days_before": 5}})
    main(["check-config", "--config", path, "--now", "2026-04-20T00:00"])
    out = capsys.readouterr().out
    assert "2026-04-23T09:00" in out and "2026-04-29T00:00" in out


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv) or 0
    except SystemExit as e:  # argparse-style exit
        return int(e.code or 0)


def test_check_config_refuses_bad_config(write_config, capsys):
    path = write_config(rules={"report.reminder": {"due_day": 29}}, name="bad.yaml")
    assert _exit_code(["check-config", "--config", path, "--now", "2026-04-20T00:00"]) != 0
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "report.reminder" in err and "due_day" in err


def test_replay_refuses_bad_config(write_config, tmp_path, capsys):
    path = write_config(config_overrides={"townships": {HH: {"office": "nobody"}}}, name="bad.yaml")
    ev = tmp_path / "e.jsonl"
    ev.write_text("", encoding="utf-8")
    assert _exit_code(["replay", str(ev), "--config", path, "--out", str(tmp_path / "o.jsonl")]) != 0
    assert "bad.yaml" in capsys.readouterr().err


def test_yaml_file_errors_name_the_file(tmp_path):
    from shian.rules.config import load
    p = tmp_path / "county.yaml"
    p.write_text(yaml.safe_dump(config_dict({"source.silent": {"days": "14"}}), allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load(p)
    assert any(str(p) in x and "source.silent" in x and "days" in x for x in err.value.problems)


def test_check_config_refuses_a_service_section_whose_token_variable_is_unset(write_config, capsys, monkeypatch):
    """The service section is checked like the rest: a token named by an unset variable."""
    monkeypatch.delenv("SHIAN_TEST_UNSET_TOKEN", raising=False)
    path = write_config(config_overrides={"service": {"tokens": {"hh-fso": {"token_env": "SHIAN_TEST_UNSET_TOKEN"}}}})
    assert _exit_code(["check-config", "--config", path, "--now", "2026-04-20T00:00"]) == 2
    err = capsys.readouterr().err
    assert "service.tokens.hh-fso.token_env" in err and "SHIAN_TEST_UNSET_TOKEN" in err


# --------------------------------------------------------------------------- departments' contacts

BAD_CONTACTS = [
    # (id, keys added to hh-fso, key path the message must name, words it must hold, refused by replay too)
    ("unknown key", {"emial": ["a@hh.example"]}, "departments.hh-fso.emial", "未知的键", True),
    ("file is not a department key", {"file": {"dir": "out"}}, "departments.hh-fso.file", "未知的键", True),
    ("email not a list", {"email": "a@hh.example"}, "departments.hh-fso.email", "应为列表", True),
    ("email address not a string", {"email": ["a@hh.example", 5]}, "departments.hh-fso.email.1", "应为文字",
     True),
    ("robot not a mapping", {"dingtalk": "https://oapi.dingtalk.com/robot/send"}, "departments.hh-fso.dingtalk",
     "应为映射", True),
    ("robot unknown key", {"wecom": {"webhok": "https://x.example"}}, "departments.hh-fso.wecom.webhok", "未知的键",
     True),
    ("robot with two webhooks", {"wecom": {"webhook": "https://x.example", "webhook_env": "SHIAN_TEST_HOOK"}},
     "departments.hh-fso.wecom", "webhook 或 webhook_env", False),
    ("robot webhook not http", {"dingtalk": {"webhook": "oapi.dingtalk.com"}}, "departments.hh-fso.dingtalk.webhook",
     "https://", True),
    ("robot webhook without a host", {"wecom": {"webhook": "https:///send?key=1"}}, "departments.hh-fso.wecom.webhook",
     "主机名", True),
    ("email address without @", {"email": ["shianban.honghe.example"]}, "departments.hh-fso.email.0",
     "不是有效的邮件地址", True),
    ("email address without a domain", {"email": ["a@hh.example", "fso@"]}, "departments.hh-fso.email.1",
     "用户名@域名", True),
    ("robot webhook variable unset", {"wecom": {"webhook_env": "SHIAN_TEST_UNSET_HOOK"}},
     "departments.hh-fso.wecom.webhook_env", "SHIAN_TEST_UNSET_HOOK", False),
    ("wecom has no signing secret", {"wecom": {"webhook": "https://x.example", "secret_env": "S"}},
     "departments.hh-fso.wecom.secret_env", "没有签名密钥", False),
    ("dingtalk secret variable unset", {"dingtalk": {"webhook": "https://x.example", "secret_env": "SHIAN_TEST_UNSET"}},
     "departments.hh-fso.dingtalk.secret_env", "SHIAN_TEST_UNSET", False),
]


@pytest.mark.parametrize("keys, where, words, on_load", [c[1:] for c in BAD_CONTACTS], ids=[c[0] for c in BAD_CONTACTS])
def test_bad_contact_refused_with_file_key_path_and_line(write_config, tmp_path, capsys, keys, where, words, on_load):
    """A department's contact is checked by its channel, in the config's terms; a malformed one
    stops every command (replay too), one the environment lacks stops the delivering ones."""
    path = write_config(config_overrides={"departments": {"hh-fso": keys}}, name="bad.yaml")
    assert _exit_code(["check-config", "--config", path, "--now", "2026-04-20T00:00"]) == 2
    err = capsys.readouterr().err
    [problem] = [p for p in err.splitlines() if where + "（" in p]
    assert "bad.yaml" in problem and "行）" in problem and words in problem, problem
    ev = tmp_path / "e.jsonl"
    ev.write_text("", encoding="utf-8")
    refused = _exit_code(["replay", str(ev), "--config", path, "--out", str(tmp_path / "o.jsonl")]) != 0
    assert refused == on_load, capsys.readouterr().err


def test_contact_and_notifiers_problems_are_reported_together(write_config):
    """Every problem at once: two departments' contacts and the notifiers section."""
    from shian.notifiers.settings import parse as parse_settings
    from shian.rules.config import load

    path = write_config(config_overrides={
        "departments": {"hh-fso": {"wecom": {"webhook_env": "SHIAN_TEST_UNSET_HOOK"}},
                        "bq-fso": {"email": "fso@bq.example"}},
        "notifiers": {"smtp": {"host": "localhost", "from": "a@b.example", "port": 0}}})
    with pytest.raises(ConfigError) as err:
        parse_settings(load(path), env={})
    problems = err.value.problems
    for where in ("departments.hh-fso.wecom.webhook_env", "departments.bq-fso.email", "notifiers.smtp.port"):
        assert any(where + "（第 " in p for p in problems), (where, problems)
