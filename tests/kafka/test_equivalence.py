"""Through a real Kafka: 4 partitions, 2 workers in event-time mode, the notices of replay."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from conftest import load_kafka_broker
from shian.rules.config import load
from shian.rules.timeutil import parse_time
from shian.streams.replay import Replay

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "county.yaml"
FILES = [ROOT / "examples" / "events.jsonl", ROOT / "examples" / "化验室抽检结果.xlsx"]
UNTIL = "2026-05-01T00:00:00"


def shian(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "shian.cli", *args], env=env, **kw)


@pytest.fixture
def broker():
    """A broker of this test's own: the topics and the consumer group start empty."""
    with load_kafka_broker().Broker() as b:
        yield f"kafka://{b.bootstrap}"


def replayed() -> dict[str, dict]:
    config = load(CONFIG)
    out: dict[str, dict] = {}
    Replay(config, lambda n: out.setdefault(n.id, json.loads(json.dumps(n.to_json(), ensure_ascii=False))), lambda r: None,
           until=parse_time(UNTIL, config.tz)).run([str(p) for p in FILES])
    return out


def collect(broker: str, want: int, timeout: float) -> dict[str, dict]:
    consumer = KafkaConsumer("notices", bootstrap_servers=broker.removeprefix("kafka://"),
                             auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=1000)
    seen: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(seen) < want:
            for msg in consumer:
                notice = json.loads(msg.value)
                assert seen.setdefault(notice["id"], notice) == notice, "one id, two different notices"
                assert msg.key.decode() == notice["key"]
    finally:
        consumer.close()
    return seen


def test_two_workers_on_four_partitions_issue_replays_notices(broker, tmp_path):
    expected = replayed()
    subprocess.run([sys.executable, "-m", "shian.cli", "topics", "--config", str(CONFIG),
                    "--broker", broker, "--partitions", "4"], check=True)
    workers = [
        shian("worker", "--config", str(CONFIG), "--broker", broker, "--event-time",
              "--data-dir", str(tmp_path / f"w{i}"), stdout=subprocess.DEVNULL,
              stderr=open(tmp_path / f"w{i}.log", "w"))
        for i in range(2)
    ]
    try:
        time.sleep(3)
        ingest = subprocess.run([sys.executable, "-m", "shian.cli", "ingest", *map(str, FILES),
                                 "--config", str(CONFIG), "--broker", broker, "--until", UNTIL],
                                capture_output=True, text=True, timeout=120)
        assert ingest.returncode == 0, ingest.stderr
        got = collect(broker, len(expected), timeout=120)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
    logs = "\n".join((tmp_path / f"w{i}.log").read_text()[-2000:] for i in range(2))
    assert set(got) == set(expected), logs
    assert got == expected
