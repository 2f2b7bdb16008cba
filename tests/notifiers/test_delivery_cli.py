"""The delivery commands end to end: ``replay --deliver`` to a real SMTP server (also killed
with SIGKILL half-way and run again), ``shian ack`` and ``shian silence``.

Each process is the real CLI; messages are read back from an aiosmtpd server and parsed.
"""
from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from channel_support import SmtpRecorder, smtp_server
from shian.notifiers.outbox import Outbox

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
EVENTS = [str(EXAMPLES / "events.jsonl"), str(EXAMPLES / "化验室抽检结果.xlsx")]
UNTIL = "2026-05-01T00:00:00"


def shian(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shian.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONWARNINGS="ignore"))


def example_config(tmp_path: Path, port: int, **notifiers: Any) -> str:
    data = yaml.safe_load((EXAMPLES / "county.yaml").read_text(encoding="utf-8"))
    data["notifiers"] = {"smtp": {"host": "127.0.0.1", "port": port, "security": "none",
                                  "from": "西平县食安办 <shianban@xiping.example>"},
                         "outbox": "outbox.sqlite", "group_wait_seconds": 0, "quiet_hours": False,
                         "digest": None, **notifiers}
    path = tmp_path / "county.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


class SlowRecorder(SmtpRecorder):
    """Takes a moment per message, so that a kill lands in the middle of the delivery."""

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.02)
        return await super().handle_DATA(server, session, envelope)


def test_replay_deliver_sends_each_notice_to_each_recipient_department_once(tmp_path: Path) -> None:
    recorder = SmtpRecorder()
    with smtp_server(recorder) as server:
        cfg = example_config(tmp_path, server.port)
        done = shian("replay", *EVENTS, "--config", cfg, "--until", UNTIL, "--out", str(tmp_path / "n.jsonl"),
                     "--deliver")
        assert done.returncode == 0, done.stderr
        notices = [json.loads(line) for line in (tmp_path / "n.jsonl").read_text(encoding="utf-8").splitlines()]
        config = yaml.safe_load(Path(cfg).read_text(encoding="utf-8"))
        with Outbox(tmp_path / "outbox.sqlite") as outbox:
            held = {(d.notice_id, d.dept): d.last_error for d in outbox.deliveries(state="held")}
        rules = {n["id"]: n["rule"] for n in notices}
        # April's reminders, replayed later than April, ask for dates already passed: held, with the reason
        assert held and {rules[nid] for nid, _ in held} <= {"report.reminder", "campaign.reminder"}
        assert all(reason.startswith("不发送：") for reason in held.values())
        want = Counter()
        for n in notices:
            for dept in n["recipients"]:
                if config["departments"][dept].get("email") and (n["id"], dept) not in held:
                    want[(n["id"], dept)] += 1
        got = Counter()
        for _, _, rcpts, raw in recorder.messages:
            msg = parsed(raw)
            dept = msg["Message-ID"].strip("<>").split(".")[1]
            assert sorted(rcpts) == sorted(config["departments"][dept]["email"])
            for nid in msg["X-Shian-Notice-Ids"].split(","):
                got[(nid, dept)] += 1
        assert got == want
        assert len(notices) > 40
        # a second run finds every notice already in the outbox and sends nothing
        again = shian("replay", *EVENTS, "--config", cfg, "--until", UNTIL, "--out", os.devnull, "--deliver")
        assert again.returncode == 0, again.stderr
        assert "0 条新通知" in again.stderr
        assert sum(got.values()) == len({(n, d) for n, d in got})


def test_delivery_killed_half_way_and_restarted_loses_nothing_and_repeats_only_in_flight(tmp_path: Path) -> None:
    """SIGKILL in the middle of delivery, then the same command again: every (notice,
    department) arrives; one arrives twice at most — the message the server had accepted when
    the process died — with the same Message-ID. (No catch-up summary here: each delivery row
    is its own message, so that the kill lands among many.)"""
    recorder = SlowRecorder()
    with smtp_server(recorder) as server:
        cfg = example_config(tmp_path, server.port, catch_up_after=None)
        args = [sys.executable, "-m", "shian.cli", "replay", *EVENTS, "--config", cfg, "--until", UNTIL,
                "--out", os.devnull, "--deliver"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        while len(recorder.messages) < 15 and time.monotonic() - t0 < 60:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = len(recorder.messages)
        assert 15 <= killed_at, "the delivery never got going"
        with Outbox(tmp_path / "outbox.sqlite") as outbox:
            counts = outbox.state_counts()
        assert counts["pending"] + counts["sending"] > 0, "killed too late: nothing was left to deliver"
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        with Outbox(tmp_path / "outbox.sqlite") as outbox:
            counts = outbox.state_counts()
        assert counts["pending"] == counts["sending"] == counts["failed"] == 0
        ids = Counter(parsed(raw)["Message-ID"] for *_, raw in recorder.messages)
        assert len(ids) == counts["sent"], "every delivery row marked sent arrived"
        assert sum(ids.values()) - len(ids) <= 1, "more repeats than messages in flight at the kill"


def test_ack_finds_the_notice_in_the_outbox_and_appends_an_ack_event(tmp_path: Path) -> None:
    with smtp_server(SmtpRecorder()) as server:
        cfg = example_config(tmp_path, server.port)
        assert shian("replay", *EVENTS, "--config", cfg, "--until", UNTIL, "--out", str(tmp_path / "n.jsonl"),
                     "--deliver").returncode == 0
    notice = next(json.loads(line) for line in (tmp_path / "n.jsonl").read_text(encoding="utf-8").splitlines()
                  if json.loads(line)["severity"] == "critical")
    acks = tmp_path / "acks.jsonl"
    dept = notice["recipients"][0]
    done = shian("ack", notice["id"], "--by", dept, "--action", "办结", "--note", "已下架处置", "--config", cfg,
                 "--at", "2026-04-30T10:00", "--out", str(acks))
    assert done.returncode == 0, done.stderr
    event = json.loads(acks.read_text(encoding="utf-8"))
    assert event == {"type": "ack", "id": event["id"], "township": notice["township"], "notice_id": notice["id"],
                     "by": dept, "action": "办结", "acked_at": "2026-04-30T10:00:00+08:00", "note": "已下架处置"}
    # the event is a valid ack for replay: the notice is known and dept is a recipient
    before = shian("replay", *EVENTS, "--config", cfg, "--until", UNTIL, "--out", os.devnull)
    after = shian("replay", *EVENTS, str(acks), "--config", cfg, "--until", UNTIL, "--out", os.devnull)
    rejected = [int(re.search(r"拒收 (\d+)", r.stderr).group(1)) for r in (before, after)]
    accepted = [int(re.search(r"接受 (\d+)", r.stderr).group(1)) for r in (before, after)]
    assert rejected[0] == rejected[1] and accepted[1] == accepted[0] + 1, after.stderr


ELSEWHERE = {"id": "0123456789abcdef", "rule": "sample.unqualified", "severity": "warning", "level": "town",
             "township": "红河镇", "recipients": ["hh-fso"], "title": "抽检不合格", "at": "2026-04-03T10:00:00+08:00",
             "due": None, "event_ids": ["S-1"], "key": "k", "facts": {}}


def test_ack_by_a_department_that_did_not_receive_the_notice_is_refused(tmp_path: Path) -> None:
    notices = tmp_path / "n.jsonl"
    notices.write_text(json.dumps(ELSEWHERE, ensure_ascii=False) + "\n", encoding="utf-8")
    done = shian("ack", ELSEWHERE["id"], "--by", "bq-fso", "--config", str(EXAMPLES / "county.yaml"),
                 "--notices", str(notices), "--out", str(tmp_path / "acks.jsonl"))
    assert done.returncode == 2 and "不是通知" in done.stderr
    assert done.stdout == "" and not (tmp_path / "acks.jsonl").exists()


@pytest.mark.parametrize("line", [
    json.dumps({k: v for k, v in ELSEWHERE.items() if k not in ("rule", "at")}, ensure_ascii=False),
    json.dumps({**ELSEWHERE, "recipients": "hh-fso"}, ensure_ascii=False),
    json.dumps({**ELSEWHERE, "at": "四月三日"}, ensure_ascii=False),
    "{not json",
], ids=["fields missing", "recipients not a list", "time unreadable", "not JSON"])
def test_ack_names_the_line_of_the_notices_file_that_is_not_a_notice(tmp_path: Path, line: str) -> None:
    """A broken --notices file is reported (file, line, what is wrong), not a traceback."""
    notices = tmp_path / "n.jsonl"
    notices.write_text(line + "\n", encoding="utf-8")
    done = shian("ack", ELSEWHERE["id"], "--by", "hh-fso", "--config", str(EXAMPLES / "county.yaml"),
                 "--notices", str(notices), "--out", str(tmp_path / "acks.jsonl"))
    assert done.returncode == 2 and f"{notices} 第 1 行不是完整的通知" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_ack_of_an_unknown_notice_asks_for_its_township(tmp_path: Path) -> None:
    done = shian("ack", "ffffffffffffffff", "--by", "hh-fso", "--config", str(EXAMPLES / "county.yaml"),
                 "--out", str(tmp_path / "acks.jsonl"))
    assert done.returncode == 2 and "--township" in done.stderr


def test_silence_add_list_expire_and_a_silenced_notice_is_recorded_not_sent(tmp_path: Path) -> None:
    recorder = SmtpRecorder()
    with smtp_server(recorder) as server:
        cfg = example_config(tmp_path, server.port)
        added = shian("silence", "add", "--config", cfg, "--township", "红河镇", "--start", "2026-01-01",
                      "--end", "2027-01-01", "--comment", "测试", "--by", "county-fso")
        assert added.returncode == 0, added.stderr
        listed = shian("silence", "list", "--config", cfg)
        assert "#1" in listed.stdout and "红河镇" in listed.stdout
        assert shian("replay", *EVENTS, "--config", cfg, "--until", UNTIL, "--out", str(tmp_path / "n.jsonl"),
                     "--deliver").returncode == 0
        notices = [json.loads(line) for line in (tmp_path / "n.jsonl").read_text(encoding="utf-8").splitlines()]
        honghe = {n["id"] for n in notices if n["township"] == "红河镇"}
        sent = {nid for *_, raw in recorder.messages for nid in parsed(raw)["X-Shian-Notice-Ids"].split(",")}
        assert honghe and not (honghe & sent)
        assert sent, "the other townships were delivered"
        with Outbox(tmp_path / "outbox.sqlite") as outbox:
            assert all(outbox.is_silenced(nid) for nid in honghe)
        assert shian("silence", "expire", "1", "--config", cfg).returncode == 0
        assert "#1" not in shian("silence", "list", "--config", cfg).stdout
        assert shian("silence", "expire", "1", "--config", cfg).returncode == 2


def test_silence_needs_a_rule_or_a_township(tmp_path: Path) -> None:
    with smtp_server(SmtpRecorder()) as server:
        cfg = example_config(tmp_path, server.port)
        done = shian("silence", "add", "--config", cfg, "--end", "2027-01-01")
        assert done.returncode == 2 and "规则或乡镇" in done.stderr
