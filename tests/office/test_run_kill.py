"""``shian run`` killed with SIGKILL in the middle of a stream of posted events and started
again: no acknowledged event is lost, every notice is delivered, and none twice except the
one message the SMTP server may have taken while the process died (the outbox's window)."""
from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from aiosmtpd.controller import Controller

from office_support import county

TZ = ZoneInfo("Asia/Shanghai")
TOKEN = "kill-test-feed-token"


class Inbox:
    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.ids[str(msg["Message-ID"])] += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "shian.cli", "run", "--config", str(config)],
                            stdout=open(log, "a"), stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONWARNINGS="ignore"))


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def wait_up(base: str, proc: subprocess.Popen, log: Path) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        assert proc.poll() is None, log.read_text()
        try:
            get(f"{base}/health")
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("shian run did not come up:\n" + log.read_text())


def post(base: str, ev: dict) -> bool:
    req = urllib.request.Request(f"{base}/api/events", data=json.dumps(ev, ensure_ascii=False).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status == 200 and json.loads(r.read())["accepted"] == 1
    except (OSError, urllib.error.URLError):
        return False


def sample(i: int) -> dict:
    now = datetime.now(TZ).replace(microsecond=0)
    return {"type": "sampling_result", "id": f"KILL-{i}", "program": "food_sampling", "township": "红河镇",
            "entity": f"商户{i}", "category": "蔬菜", "food": "韭菜", "sampled_at": (now - timedelta(days=1)).isoformat(),
            "reported_at": now.isoformat(),
            "items": [{"item": "腐霉利", "value": 0.5 if i % 3 == 0 else 0.1, "limit": 0.2, "unit": "mg/kg"}]}


def test_sigkill_mid_stream_loses_no_acknowledged_event_and_repeats_at_most_the_message_in_flight(tmp_path: Path):
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    port = free_port()
    data = county(service={"listen": f"127.0.0.1:{port}", "data_dir": "data",
                           "feeds": {"lab": {"name": "化验室", "token": TOKEN}}},
                  notifiers={"outbox": "outbox.sqlite", "quiet_hours": False, "group_wait_seconds": 0,
                             "digest": None, "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                                                      "from": "食安办 <fso@xiping.example>"}})
    config = tmp_path / "county.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    log = tmp_path / "run.log"
    base = f"http://127.0.0.1:{port}"
    proc = start(config, log)
    acknowledged: list[str] = []
    try:
        wait_up(base, proc, log)
        for i in range(120):
            if post(base, sample(i)):
                acknowledged.append(f"KILL-{i}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        first = len(acknowledged)
        proc = start(config, log)
        wait_up(base, proc, log)
        for i in range(120, 200):
            if post(base, sample(i)):
                acknowledged.append(f"KILL-{i}")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            outbox = get(f"{base}/health")["outbox"]
            if outbox["pending"] == outbox["sending"] == 0:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        smtp.stop()
    assert first == 120 and len(acknowledged) == 200, log.read_text()[-3000:]
    db = sqlite3.connect(tmp_path / "data" / "events.sqlite")
    journal = [r[0] for r in db.execute("SELECT id FROM events ORDER BY seq")]
    db.close()
    assert sorted(journal) == sorted(acknowledged), "each acknowledged event once in the journal"
    db = sqlite3.connect(tmp_path / "outbox.sqlite")
    notices = db.execute("SELECT COUNT(*) FROM notices WHERE rule = 'sample.unqualified'").fetchone()[0]
    states = dict(db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall())
    db.close()
    assert notices == len([i for i in range(200) if i % 3 == 0])
    assert set(states) == {"sent"}, states
    assert len(inbox.ids) == states["sent"], "every delivery the outbox marked sent arrived"
    assert sum(inbox.ids.values()) - len(inbox.ids) <= 1
    assert proc.returncode == 0
