"""A worker started before its broker (and its topics) waits for them, saying so in Chinese, and then works; a
topics or ingest command against a broker that is not there ends with a Chinese error, no traceback."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from kafka import KafkaConsumer

from conftest import load_kafka_broker

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "county.yaml"
TZ = ZoneInfo("Asia/Shanghai")


def cli(*args: str, **kw):
    return subprocess.run([sys.executable, "-m", "shian.cli", *args], **kw)


def wait_for_text(path: Path, text: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in path.read_text(encoding="utf-8", errors="replace"):
            return True
        time.sleep(0.2)
    return False


def test_topics_against_no_broker_is_a_chinese_error_with_exit_2():
    """shian topics with nothing listening: exit 2 and one Chinese line naming the address."""
    port = load_kafka_broker().free_port()
    out = cli("topics", "--config", str(CONFIG), "--broker", f"kafka://127.0.0.1:{port}",
              capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert f"无法连接 Kafka 127.0.0.1:{port}" in out.stderr and "Traceback" not in out.stderr


def test_a_worker_started_before_its_broker_waits_then_raises_notices(tmp_path):
    """The worker retries until the broker answers and has the topics, then takes a live event to its notice."""
    kb = load_kafka_broker()
    port = kb.free_port()
    broker = f"kafka://127.0.0.1:{port}"
    log_path = tmp_path / "worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "shian.cli", "worker", "--config", str(CONFIG),
                               "--broker", broker, "--data-dir", str(tmp_path / "w")],
                              stderr=open(log_path, "w"))
    try:
        assert wait_for_text(log_path, "尚未就绪", 30), log_path.read_text()[-2000:]
        assert worker.poll() is None
        with kb.Broker(port=port):
            assert wait_for_text(log_path, "还没有主题 events", 30), log_path.read_text()[-2000:]
            cli("topics", "--config", str(CONFIG), "--broker", broker, "--partitions", "2", check=True, timeout=120)
            now = datetime.now(TZ).replace(microsecond=0)
            incident = {"type": "incident", "id": "LATE-1", "township": "红河镇", "kind": "食物中毒",
                        "occurred_at": (now - timedelta(hours=3)).isoformat(), "reported_at": now.isoformat(),
                        "cases": 4}
            events = tmp_path / "live.jsonl"
            events.write_text(json.dumps(incident, ensure_ascii=False) + "\n", encoding="utf-8")
            out = cli("ingest", str(events), "--config", str(CONFIG), "--broker", broker,
                      capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            consumer = KafkaConsumer("notices", bootstrap_servers=f"127.0.0.1:{port}",
                                     auto_offset_reset="earliest", consumer_timeout_ms=1000)
            rules: set[str] = set()
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and "incident.reported" not in rules:
                rules |= {json.loads(m.value)["rule"] for m in consumer}
            consumer.close()
            worker.terminate()
            worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert "incident.reported" in rules, log_path.read_text()[-3000:]
