"""The channel registry (shian.notifiers.channels): a channel is one module and one line in
``CHANNELS``. A throw-away SMS channel (sms_channel.py), added by that one line, is checked with
the rest of the config and receives notices end to end (events → rules → outbox → dispatcher →
its send); without the line its keys are unknown. The real channels' labels come from their
modules and read as before."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import sms_channel
from shian.notifiers import channels, dispatch, render
from shian.notifiers.outbox import Outbox
from shian.notifiers.settings import parse as parse_settings
from shian.office import ledger
from shian.rules.config import ConfigError, load
from shian.rules.notice import Notice
from shian.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
EVENTS = [str(EXAMPLES / "events.jsonl"), str(EXAMPLES / "化验室抽检结果.xlsx")]
UNTIL = "2026-05-01T00:00:00"
PHONES = {"hh-fso": ["13800000001"], "county-fso": ["13800000002", "13800000003"]}


@pytest.fixture
def sms(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one registry line that adds the channel."""
    monkeypatch.setattr(channels, "CHANNELS", (*channels.CHANNELS, sms_channel.SPEC))


def sms_config(tmp_path: Path, phones: dict[str, Any]) -> str:
    """The example county, the SMS gateway as its only channel, and ``phones`` per department."""
    data = yaml.safe_load((EXAMPLES / "county.yaml").read_text(encoding="utf-8"))
    for dept, numbers in phones.items():
        data["departments"][dept]["sms"] = numbers
    data["notifiers"] = {"outbox": "outbox.sqlite", "sms": {"spool": "短信"}, "group_wait_seconds": 0,
                         "quiet_hours": False, "digest": None}
    path = tmp_path / "county.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv) or 0
    except SystemExit as e:
        return int(e.code or 0)


def line_of(path: str, dept: str, key: str) -> int:
    """The 1-based line of ``key:`` inside department ``dept`` of the YAML file."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip() == f"{dept}:")
    return next(i for i, ln in enumerate(lines) if i > start and ln.strip().startswith(f"{key}:")) + 1


def test_a_channel_added_by_one_registry_line_gets_each_notice_end_to_end(sms, tmp_path):
    """replay --deliver: every notice to a department with phones arrives once over SMS (but
    the reminders whose date has passed by now, which are held)."""
    cfg = sms_config(tmp_path, PHONES)
    out = tmp_path / "n.jsonl"
    assert exit_code(["replay", *EVENTS, "--config", cfg, "--until", UNTIL, "--out", str(out), "--deliver"]) == 0
    notices = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        held = {(d.notice_id, d.dept) for d in outbox.deliveries(state="held")}
    want = Counter((n["id"], d) for n in notices for d in n["recipients"] if d in PHONES and (n["id"], d) not in held)
    got: Counter = Counter()
    for f in (tmp_path / "短信").glob("*.json"):
        sent = json.loads(f.read_text(encoding="utf-8"))
        assert sent["to"] == PHONES[sent["dept"]]
        for nid in sent["notice_ids"]:
            got[(nid, sent["dept"])] += 1
    assert want and got == want


def test_the_added_channel_is_routed_labelled_and_shown_from_its_module(sms, tmp_path, capsys):
    """Routing, the three label tables and check-config all read the registry."""
    cfg = sms_config(tmp_path, PHONES)
    settings = parse_settings(load(cfg), env={})
    assert settings.channels_of("hh-fso") == ("sms",) and settings.channels_of("hh-agri") == ()
    assert settings.section("sms").spool == str(tmp_path / "短信")
    assert set(channels.build(settings)) == {"wecom", "dingtalk", "sms"}
    assert (dispatch.CHANNEL_NAMES["sms"], render.CHANNEL_NAMES["sms"], ledger.CHANNEL_NAMES["sms"]) == \
        ("短信", "手机短信", "短信")
    notice = Notice(id="n1", rule="sample.unqualified", severity="warning", level="town", township="红河镇",
                    recipients=("hh-fso",), title="抽检不合格", at=datetime(2026, 4, 27, 9, 0, tzinfo=settings.config.tz),
                    due=None, event_ids=(), key="n1")
    failed = dispatch.failure_notice(settings, notice, "hh-fso", "sms", "网关拒收", datetime(2026, 4, 27, 10, 0))
    assert failed is not None and "（短信）" in failed.title
    assert exit_code(["check-config", "--config", cfg, "--now", "2026-04-20T00:00"]) == 0
    out = capsys.readouterr().out
    assert "☎ 13800000002, 13800000003  [sms]" in out


BAD_PHONES = [
    # (id, hh-fso's sms value, key path the problem names, its line: that of ``sms:`` plus …)
    ("not a list", "13800000001", "departments.hh-fso.sms", 0),
    ("not a string", [13800000001], "departments.hh-fso.sms.0", 1),
    ("not a mobile number", ["0871-1234567"], "departments.hh-fso.sms.0", 1),
]


@pytest.mark.parametrize("phones, where, below", [c[1:] for c in BAD_PHONES], ids=[c[0] for c in BAD_PHONES])
def test_the_added_channel_s_contact_is_checked_like_the_rest(sms, tmp_path, phones, where, below):
    """Its module's model and check refuse a bad contact naming file, key path and line."""
    cfg = sms_config(tmp_path, {"hh-fso": phones})
    with pytest.raises(ConfigError) as err:
        parse_settings(load(cfg), env={})
    [problem] = err.value.problems
    assert problem.startswith(f"{cfg}: {where}（第 {line_of(cfg, 'hh-fso', 'sms') + below} 行）："), problem


def test_without_its_registry_line_the_channel_s_keys_are_unknown(tmp_path, capsys):
    """The registry is what makes a channel known: the same file is refused without the line."""
    cfg = sms_config(tmp_path, PHONES)
    assert exit_code(["check-config", "--config", cfg, "--now", "2026-04-20T00:00"]) == 2
    err = capsys.readouterr().err
    line = line_of(cfg, "hh-fso", "sms")
    assert f"departments.hh-fso.sms（第 {line} 行）：未知的键" in err
    with pytest.raises(ConfigError) as refused:
        parse_settings(load(cfg), env={})
    assert any("notifiers.sms" in p and "未知的键" in p for p in refused.value.problems)


LABELS = [
    # (channel, in a notice's title, in a letter, in the ledger)
    ("email", "邮件", "电子邮件", "邮件"),
    ("wecom", "企业微信", "企业微信群机器人", "企业微信"),
    ("dingtalk", "钉钉", "钉钉群机器人", "钉钉"),
    ("file", "文件", "文件", "文件发件箱"),
]


@pytest.mark.parametrize("name, short, full, in_ledger", LABELS, ids=[c[0] for c in LABELS])
def test_each_channel_s_labels_come_from_its_module(name, short, full, in_ledger):
    """The three label tables read the registry and keep the words they had."""
    assert (dispatch.CHANNEL_NAMES[name], render.CHANNEL_NAMES[name], ledger.CHANNEL_NAMES[name]) == \
        (short, full, in_ledger)


def test_the_registry_lists_each_channel_once_in_delivery_order():
    """One list: the order a department's channels are listed in, no name twice."""
    assert [c.name for c in channels.CHANNELS] == ["email", "wecom", "dingtalk", "file"]
    assert list(dispatch.CHANNEL_NAMES) == ["email", "wecom", "dingtalk", "file"]
    assert dispatch.CHANNEL_NAMES.get("pager", "pager") == "pager"
