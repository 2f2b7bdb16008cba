"""``shian notify test``: the fire drill over every configured channel, against a working and a
refusing SMTP server (aiosmtpd) and robot webhook, all on 127.0.0.1."""
from __future__ import annotations

import asyncio
import email
import email.policy
from pathlib import Path
from typing import Any

import pytest
import yaml

from channel_support import RobotServer, SmtpRecorder, smtp_server
from shian.cli import main

OFFICE = "hh-fso"


def write_config(folder: Path, smtp_port: int, robots: RobotServer, *, file_dir: bool = False) -> Path:
    """Three departments: one with e-mail, WeCom and DingTalk, one with e-mail only, one with nothing."""
    notifiers: dict[str, Any] = {"outbox": "outbox.sqlite",
                                 "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                                          "from": "食安预警 <shian@xiping.example>"}}
    if file_dir:
        notifiers["file"] = {"dir": "outbox-files"}
    data = {
        "county": {"name": "西平县", "office": "county-fso"},
        "departments": {
            "county-fso": {"name": "县食安办", "email": ["fso@xiping.example"]},
            OFFICE: {"name": "红河镇食安办", "email": ["hh@honghe.example", "bad@honghe.example"],
                     "wecom": {"webhook": robots.url("wecom", key="693a91f6-7xxx")},
                     "dingtalk": {"webhook": robots.url("dingtalk", access_token="b7e0c9d1a2f3")}},
            "hh-agri": {"name": "红河镇农技中心"},
        },
        "townships": {"红河镇": {"office": OFFICE, "reporters": ["红河村"]}},
        "notifiers": notifiers,
    }
    path = folder / "county.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def run_drill(argv: list[str], setup) -> tuple[int, str, str, SmtpRecorder, RobotServer]:
    """The command in a thread (it runs its own event loop) while the robot server runs here."""
    handler = SmtpRecorder()

    async def go() -> tuple[int, RobotServer]:
        async with RobotServer() as robots:
            with smtp_server(handler) as controller:
                args = setup(handler, robots, controller.port)
                code = await asyncio.to_thread(main, argv + args)
            return code, robots
    return (*asyncio.run(go()), handler)


def _drill(tmp_path: Path, capsys: pytest.CaptureFixture[str], program, *extra: str, file_dir: bool = False):
    def setup(handler: SmtpRecorder, robots: RobotServer, port: int) -> list[str]:
        program(handler, robots)
        return ["--config", str(write_config(tmp_path, port, robots, file_dir=file_dir)), *extra]
    code, robots, handler = run_drill(["notify", "test"], setup)
    out, err = capsys.readouterr()
    return code, out, err, handler, robots


def test_drill_reports_every_channel_delivered_and_exits_0(tmp_path: Path, capsys) -> None:
    """All channels working: each department's each channel says 已送达, the SMTP server and both
    robots got the test message, nothing asks to sign for it; exit 0."""
    code, out, err, handler, robots = _drill(tmp_path, capsys, lambda h, r: None, "--dept", OFFICE, "--dept", "county-fso")
    assert code == 0, out + err
    assert "红河镇食安办（hh-fso）\n  电子邮件：已送达\n  企业微信群机器人：已送达\n  钉钉群机器人：已送达\n" in out
    assert "县食安办（county-fso）\n  电子邮件：已送达\n" in out and "送达 4，未送达 0\n" in out
    mails = [email.message_from_bytes(raw, policy=email.policy.default) for *_, raw in handler.messages]
    assert sorted(rcpt for _, _, rcpts, _ in handler.messages for rcpt in rcpts) == [
        "bad@honghe.example", "fso@xiping.example", "hh@honghe.example"]
    assert all(str(m["Subject"]).startswith("【通知渠道测试】") for m in mails)
    body = mails[0].get_body(("plain",)).get_content()
    assert "测试消息" in body and "无需签收" in body and "shian ack" not in body
    cards = [b["markdown"].get("content") or b["markdown"]["text"] for _, _, b in robots.requests]
    assert len(cards) == 2 and all("通知渠道测试" in c and "无需签收" in c for c in cards)


def test_drill_prints_each_servers_exact_refusal_and_exits_1(tmp_path: Path, capsys) -> None:
    """An SMTP server refusing one address at RCPT and a robot refusing the key: the reply code
    and text, the errcode and errmsg, as the servers gave them, per channel; exit 1."""
    def refuse(handler: SmtpRecorder, robots: RobotServer) -> None:
        handler.rcpt_replies = {"bad@": "550 5.1.1 <bad@honghe.example>: Recipient address rejected: User unknown"}
        robots.replies = [(200, {"errcode": 93000, "errmsg": "invalid webhook url, hint: [1714538355]"}),
                          (200, {"errcode": 310000, "errmsg": "keywords not in content"})]
    code, out, err, _, _ = _drill(tmp_path, capsys, refuse, "--dept", OFFICE)
    assert code == 1, out + err
    assert ("  电子邮件：部分送达——部分收件人被拒绝（已投递给其余收件人）：bad@honghe.example"
            "（550 5.1.1 <bad@honghe.example>: Recipient address rejected: User unknown）") in out
    assert "  企业微信群机器人：未送达——企业微信群机器人拒绝：errcode 93000 invalid webhook url, hint: [1714538355]" in out
    assert "  钉钉群机器人：未送达——钉钉群机器人拒绝：errcode 310000 keywords not in content（加签、关键词或 IP 校验未通过）" in out
    assert "693a91f6-7xxx" not in out and "b7e0c9d1a2f3" not in out  # the keys in the webhooks stay secret


def test_drill_reports_a_server_refusing_the_message_itself(tmp_path: Path, capsys) -> None:
    """DATA refused with 554: the reply as the server wrote it."""
    def refuse(handler: SmtpRecorder, robots: RobotServer) -> None:
        handler.data_reply = "554 5.7.1 Message rejected: sender not allowed"
    code, out, _, _, _ = _drill(tmp_path, capsys, refuse, "--dept", "county-fso")
    assert code == 1
    assert "  电子邮件：未送达——邮件服务器拒绝（554 5.7.1 Message rejected: sender not allowed）" in out


def test_a_department_without_any_channel_fails_the_drill(tmp_path: Path, capsys) -> None:
    """All departments by default; one receiving on no channel is a failure (its notices would
    only show on the dashboard), the others still tried."""
    code, out, _, handler, _ = _drill(tmp_path, capsys, lambda h, r: None)
    assert code == 1
    assert "红河镇农技中心（hh-agri）\n  失败：没有可用的通知渠道" in out
    assert "县食安办（county-fso）\n  电子邮件：已送达" in out and len(handler.messages) == 2
    assert "合计：3 个部门、4 个渠道；送达 4，未送达 0；没有通知渠道的部门 1" in out


def test_drill_writes_the_file_outbox_too(tmp_path: Path, capsys) -> None:
    """The development file outbox is a channel of every department: it gets the test message too."""
    code, out, _, _, _ = _drill(tmp_path, capsys, lambda h, r: None, "--dept", "county-fso", file_dir=True)
    assert code == 0 and "  文件：已送达" in out
    assert len(list((tmp_path / "outbox-files" / "county-fso").glob("drill-county-fso-file-*.eml"))) == 1


def test_unknown_department_is_refused_before_anything_is_sent(tmp_path: Path, capsys) -> None:
    """--dept naming no department: exit 2, the known ids listed, nothing sent."""
    code, _, err, handler, robots = _drill(tmp_path, capsys, lambda h, r: None, "--dept", "hh-nobody")
    assert code == 2 and "未知的部门 id“hh-nobody”" in err and "county-fso" in err
    assert handler.messages == [] and robots.requests == []


def test_notify_without_test_still_needs_its_broker(capsys) -> None:
    """``shian notify`` (Kafka delivery) keeps asking for --config and --broker; the message points to the drill."""
    assert main(["notify", "--config", "x.yaml"]) == 2
    assert "缺少 --broker" in capsys.readouterr().err
