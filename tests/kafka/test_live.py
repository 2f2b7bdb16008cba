"""A worker on the wall clock: events published live raise their notices within seconds."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from kafka import KafkaConsumer

from conftest import load_kafka_broker

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "county.yaml"
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def broker():
    with load_kafka_broker().Broker() as b:
        yield f"kafka://{b.bootstrap}"


def cli(*args: str, **kw):
    return subprocess.run([sys.executable, "-m", "shian.cli", *args], **kw)


def test_live_worker_raises_notices_and_rejects_a_far_future_time(broker, tmp_path):
    cli("topics", "--config", str(CONFIG), "--broker", broker, "--partitions", "2", check=True)
    log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen([sys.executable, "-m", "shian.cli", "worker", "--config", str(CONFIG),
                               "--broker", broker, "--data-dir", str(tmp_path / "w")], stderr=log)
    try:
        now = datetime.now(TZ).replace(microsecond=0)
        events = tmp_path / "live.jsonl"
        incident = {"type": "incident", "id": "LIVE-1", "township": "红河镇", "kind": "食物中毒",
                    "occurred_at": (now - timedelta(hours=3)).isoformat(), "reported_at": now.isoformat(), "cases": 4}
        typo = dict(incident, id="LIVE-2", reported_at=(now + timedelta(days=3)).isoformat())
        events.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in (incident, typo)) + "\n")
        out = cli("ingest", str(events), "--config", str(CONFIG), "--broker", broker,
                  capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "拒收 1" in out.stderr
        consumer = KafkaConsumer("notices", bootstrap_servers=broker.removeprefix("kafka://"),
                                 auto_offset_reset="earliest", consumer_timeout_ms=1000)
        rules: set[str] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not {"incident.reported", "incident.late_report"} <= rules:
            rules |= {json.loads(m.value)["rule"] for m in consumer}
        consumer.close()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert {"incident.reported", "incident.late_report"} <= rules, (tmp_path / "worker.log").read_text()[-3000:]
