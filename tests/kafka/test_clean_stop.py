"""Through a real Kafka: a worker stopped with SIGTERM finishes, snapshots and commits every
partition up to its end, so that the next worker of the group (state from the changelog
only) is redelivered nothing and raises nothing again."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from conftest import load_kafka_broker
from shian.rules.config import load
from shian.rules.timeutil import parse_time
from shian.streams.replay import Replay

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "county.yaml"
FILES = [ROOT / "examples" / "events.jsonl", ROOT / "examples" / "化验室抽检结果.xlsx"]
UNTIL = "2026-05-01T00:00:00"


def shian(*args: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "shian.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), env=dict(os.environ, PYTHONUNBUFFERED="1"))


def notice_ids(bootstrap: str) -> list[str]:
    consumer = KafkaConsumer("notices", bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=1500)
    try:
        return [json.loads(m.value)["id"] for m in consumer]
    finally:
        consumer.close()


def offsets(bootstrap: str) -> tuple[dict[int, int], dict[int, int | None]]:
    """End offsets of ``events`` and the group ``shian``'s committed ones."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id="shian", enable_auto_commit=False)
    try:
        tps = [TopicPartition("events", p) for p in sorted(consumer.partitions_for_topic("events"))]
        return ({tp.partition: o for tp, o in consumer.end_offsets(tps).items()},
                {tp.partition: consumer.committed(tp) for tp in tps})
    finally:
        consumer.close()


def members(bootstrap: str) -> tuple[str, set[str]]:
    """The group ``shian``'s state and member ids."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="shian-test")
    try:
        desc = admin.describe_groups(["shian"])["shian"]
        return desc["group_state"], {m["member_id"] for m in desc["members"]}
    finally:
        admin.close()


def wait_group_stable(bootstrap: str, before: set[str], timeout: float = 90.0) -> None:
    """Until the group is stable with members other than ``before`` (the stopped worker may
    still be listed until its session times out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state, now = members(bootstrap)
        if state == "Stable" and now and not now & before:
            return
        time.sleep(0.5)
    raise AssertionError("the restarted worker never joined the group")


def test_a_sigterm_commits_every_partition_and_the_next_worker_is_redelivered_nothing(tmp_path):
    """SIGTERM after the last notice: exit 0, committed == end offset on every partition, and a
    restarted worker's stop report names no partition it received a record of, no new notice."""
    config = load(CONFIG)
    want: set[str] = set()
    Replay(config, lambda n: want.add(n.id), lambda r: None, until=parse_time(UNTIL, config.tz)).run([str(p) for p in FILES])
    with load_kafka_broker().Broker() as b:
        broker = f"kafka://{b.bootstrap}"
        subprocess.run([sys.executable, "-m", "shian.cli", "topics", "--config", str(CONFIG), "--broker", broker,
                        "--partitions", "4"], check=True, capture_output=True)
        first = shian("worker", "--config", str(CONFIG), "--broker", broker, "--event-time",
                      "--data-dir", str(tmp_path / "w1"), log=tmp_path / "w1.log")
        try:
            subprocess.run([sys.executable, "-m", "shian.cli", "ingest", *map(str, FILES), "--config", str(CONFIG),
                            "--broker", broker, "--until", UNTIL, "--no-progress"], check=True, capture_output=True)
            deadline = time.monotonic() + 180
            while set(notice_ids(b.bootstrap)) < want and time.monotonic() < deadline and first.poll() is None:
                time.sleep(1)
            assert set(notice_ids(b.bootstrap)) == want, (tmp_path / "w1.log").read_text()[-2000:]
        finally:
            first.send_signal(signal.SIGTERM)
            code = first.wait(120)
        assert code == 0, (tmp_path / "w1.log").read_text()[-2000:]
        ends, committed = offsets(b.bootstrap)
        assert committed == ends and all(ends.values())
        published = len(notice_ids(b.bootstrap))
        _, before = members(b.bootstrap)

        second = shian("worker", "--config", str(CONFIG), "--broker", broker, "--event-time", "--loglevel", "info",
                       "--data-dir", str(tmp_path / "w2"), log=tmp_path / "w2.log")
        try:
            wait_group_stable(b.bootstrap, before)
            time.sleep(5)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(120) == 0
        log = (tmp_path / "w2.log").read_text()
        assert "stopped cleanly: no partition" in log, log[-2000:]
        assert len(notice_ids(b.bootstrap)) == published
        assert offsets(b.bootstrap) == (ends, committed)
