"""``shian notify`` on a real broker: notices read from ``notices`` are delivered by e-mail to
a real SMTP server, once each; a record that is not a notice goes to ``rejects``."""
from __future__ import annotations

import email
import email.policy
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller
from kafka import KafkaConsumer, KafkaProducer

from shian.notifiers.catchup import DEADLINES

from conftest import load_kafka_broker

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def broker():
    with load_kafka_broker().Broker() as b:
        yield f"kafka://{b.bootstrap}"


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shian.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"), **kw)


def test_notify_delivers_each_notice_from_kafka_once_and_sets_bad_records_aside(broker, tmp_path):
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    data = yaml.safe_load((EXAMPLES / "county.yaml").read_text(encoding="utf-8"))
    data["notifiers"] = {"smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                                  "from": "西平县食安办 <shianban@xiping.example>"},
                         "outbox": "outbox.sqlite", "group_wait_seconds": 0, "quiet_hours": False, "digest": None}
    cfg = tmp_path / "county.yaml"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "notices.jsonl"
    done = cli("replay", str(EXAMPLES / "events.jsonl"), "--config", str(cfg), "--until", "2026-05-01T00:00:00",
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    notices = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert cli("topics", "--config", str(cfg), "--broker", broker, "--partitions", "2").returncode == 0
    bootstrap = broker.removeprefix("kafka://")
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for n in notices:
        producer.send("notices", key=n["key"].encode(), value=json.dumps(n, ensure_ascii=False).encode())
    producer.send("notices", key=b"x", value=b'{"id": "not a notice"}')
    for n in notices[:5]:  # redelivered records: the same ids again
        producer.send("notices", key=n["key"].encode(), value=json.dumps(n, ensure_ascii=False).encode())
    producer.flush()
    producer.close()
    # April's reminders are past their action date on today's clock: held, never sent (README, catch-up)
    want = Counter((n["id"], d) for n in notices if n["rule"] not in DEADLINES
                   for d in n["recipients"] if data["departments"][d].get("email"))
    log = open(tmp_path / "notify.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "shian.cli", "notify", "--config", str(cfg),
                             "--broker", broker, "--loglevel", "info"], stderr=log, stdout=log)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(inbox.messages) < len(want):
            time.sleep(0.2)
        time.sleep(1.0)  # anything extra would arrive now
    finally:
        proc.terminate()
        proc.wait(30)
        smtp.stop()
    assert proc.returncode == 0, (tmp_path / "notify.log").read_text()
    got = Counter((nid, m["Message-ID"].strip("<>").split(".")[1])
                  for m in inbox.messages for nid in m["X-Shian-Notice-Ids"].split(","))
    assert got == want
    consumer = KafkaConsumer("rejects", bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000)
    rejects = [json.loads(m.value) for m in consumer]
    consumer.close()
    assert [r["raw"] for r in rejects] == ['{"id": "not a notice"}']
    assert "缺少字段" in rejects[0]["reason"] and rejects[0]["source"].startswith("notices/")


def test_ack_with_broker_publishes_the_ack_event_on_its_townships_partition(broker, tmp_path):
    from shian.streams.partitioned import partition_of

    cfg = EXAMPLES / "county.yaml"
    assert cli("topics", "--config", str(cfg), "--broker", broker, "--partitions", "4").returncode == 0
    notices = tmp_path / "n.jsonl"
    notice = {"id": "0123456789abcdef", "rule": "banquet.onsite_guidance", "severity": "info", "level": "town",
              "township": "板桥镇", "recipients": ["bq-fso"], "title": "聚餐指导", "at": "2026-04-07T09:30:00+08:00",
              "due": None, "event_ids": ["B-1"], "key": "k", "facts": {}}  # a whole notice, as replay --out writes
    notices.write_text(json.dumps(notice, ensure_ascii=False) + "\n", encoding="utf-8")
    done = cli("ack", notice["id"], "--by", "bq-fso", "--note", "已阅", "--config", str(cfg), "--notices", str(notices),
               "--broker", broker)
    assert done.returncode == 0, done.stderr
    consumer = KafkaConsumer("events", bootstrap_servers=broker.removeprefix("kafka://"),
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    records = list(consumer)
    consumer.close()
    assert len(records) == 1
    ack = json.loads(records[0].value)
    assert (ack["type"], ack["notice_id"], ack["by"], ack["action"], ack["note"]) == \
        ("ack", notice["id"], "bq-fso", "签收", "已阅")
    assert records[0].partition == partition_of("板桥镇", 4) and records[0].key == "板桥镇".encode()
