"""Through a real Kafka: 4 partitions, 2 workers in event-time mode, the notices of replay —
for the example month, and for the synthetic county with every rule on (its register imported
before the first event, re-gradings, rapid tests to confirm, grades of incidents)."""
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
from synthetic import UNTIL as SYNTHETIC_UNTIL
from synthetic import generate, write_config
from shian.rules.config import load
from shian.rules.families import RULES
from shian.rules.timeutil import parse_time
from shian.streams.replay import Replay

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "county.yaml"
FILES = [ROOT / "examples" / "events.jsonl", ROOT / "examples" / "化验室抽检结果.xlsx"]
UNTIL = "2026-05-01T00:00:00"
SYNTHETIC_LINES = 20_000


def shian(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "shian.cli", *args], env=env, **kw)


@pytest.fixture
def broker():
    """A broker of this test's own: the topics and the consumer group start empty."""
    with load_kafka_broker().Broker() as b:
        yield f"kafka://{b.bootstrap}"


def replayed(config_path: Path, files: list[Path], until: str) -> dict[str, dict]:
    config = load(config_path)
    out: dict[str, dict] = {}
    Replay(config, lambda n: out.setdefault(n.id, json.loads(json.dumps(n.to_json(), ensure_ascii=False))), lambda r: None,
           until=parse_time(until, config.tz)).run([str(p) for p in files])
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


def through_kafka(broker: str, config: Path, files: list[Path], until: str, tmp_path: Path, want: int) -> tuple[dict, str]:
    """Topics, two workers on event time, ingest of ``files``; the notices they publish, and their logs."""
    subprocess.run([sys.executable, "-m", "shian.cli", "topics", "--config", str(config),
                    "--broker", broker, "--partitions", "4"], check=True)
    workers = [
        shian("worker", "--config", str(config), "--broker", broker, "--event-time",
              "--data-dir", str(tmp_path / f"w{i}"), stdout=subprocess.DEVNULL,
              stderr=open(tmp_path / f"w{i}.log", "w"))
        for i in range(2)
    ]
    try:
        time.sleep(3)
        ingest = subprocess.run([sys.executable, "-m", "shian.cli", "ingest", *map(str, files),
                                 "--config", str(config), "--broker", broker, "--until", until],
                                capture_output=True, text=True, timeout=120)
        assert ingest.returncode == 0, ingest.stderr
        got = collect(broker, want, timeout=120)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
    logs = "\n".join((tmp_path / f"w{i}.log").read_text()[-2000:] for i in range(2))
    return got, logs


def test_two_workers_on_four_partitions_issue_replays_notices(broker, tmp_path):
    """The example month (its register imported first) gives replay's notices through Kafka."""
    expected = replayed(CONFIG, FILES, UNTIL)
    got, logs = through_kafka(broker, CONFIG, FILES, UNTIL, tmp_path, len(expected))
    assert set(got) == set(expected), logs
    assert got == expected


def test_the_synthetic_county_with_every_rule_on_gives_replays_notices(broker, tmp_path):
    """Register rows before the clock starts and mid-stream, re-gradings, rapid tests and graded
    incidents split over partitions: the same notices as replay, every rule among them."""
    config, events = write_config(tmp_path / "county.yaml"), tmp_path / "events.jsonl"
    generate(events, SYNTHETIC_LINES)
    expected = replayed(config, [events], SYNTHETIC_UNTIL)
    assert {n["rule"] for n in expected.values()} == set(RULES)
    got, logs = through_kafka(broker, config, [events], SYNTHETIC_UNTIL, tmp_path, len(expected))
    assert set(got) == set(expected), logs
    assert got == expected
