"""``shian run --broker``: the office process on Kafka runs no rules; it shows what the
workers publish and publishes what the office posts."""
from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer

from conftest import load_kafka_broker

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def broker():
    with load_kafka_broker().Broker() as b:
        yield b.bootstrap


def test_kafka_office_publishes_posted_events_and_follows_notices_and_events(broker, tmp_path):
    from shian.notifiers.settings import parse as delivery_settings
    from shian.office.settings import parse as service_settings
    from shian.rules.config import load
    from shian.streams.kafka import create_topics
    from shian.streams.follower import KafkaFollower

    data = yaml.safe_load((ROOT / "examples" / "county.yaml").read_text(encoding="utf-8"))
    data["notifiers"] = {"outbox": "outbox.sqlite", "file": {"dir": "out"}, "quiet_hours": False}
    data["service"] = {"data_dir": "data"}
    path = tmp_path / "county.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load(path)
    create_topics(f"kafka://{broker}", 2)
    now = datetime.now(TZ).replace(microsecond=0)
    posted = {"type": "incident", "id": "K-1", "township": "红河镇", "kind": "食物中毒",
              "occurred_at": (now - timedelta(hours=1)).isoformat(), "reported_at": now.isoformat(), "cases": 3}
    notice = {"id": "00000000000000aa", "rule": "incident.reported", "severity": "critical", "level": "county",
              "township": "红河镇", "recipients": ["county-fso", "hh-fso"], "title": "食物中毒", "at": now.isoformat(),
              "due": None, "event_ids": ["K-1"], "key": "incident.reported|红河镇|K-1", "facts": {}}
    producer = KafkaProducer(bootstrap_servers=broker)
    producer.send("notices", json.dumps(notice, ensure_ascii=False).encode())
    producer.flush()
    producer.close()

    async def scenario() -> tuple:
        office = KafkaFollower(config, service_settings(config, env={}), delivery_settings(config, env={}),
                             broker=f"kafka://{broker}")
        stop = asyncio.Event()
        task = asyncio.create_task(office.run(stop))
        for _ in range(200):
            if office._producer is not None:
                break
            await asyncio.sleep(0.05)
        result = office.accept_object(posted, "test")
        bad = office.accept_object(dict(posted, id="K-2", reported_at=(now + timedelta(days=3)).isoformat()), "test")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30 and (not office.outbox.notices() or not office.store.events()):
            await asyncio.sleep(0.1)
        stop.set()
        await task
        out = (result, bad, office.outbox.notices(), office.store.events(), office.outbox.state_counts())
        office.outbox.close()
        office.store.close()
        return out

    result, bad, notices, events, states = asyncio.run(scenario())
    assert result.status == "accepted" and bad.status == "rejected"
    assert [n.id for n in notices] == ["00000000000000aa"]
    assert sum(states.values()) == 0, "shown, not delivered: shian notify delivers"
    assert [e["id"] for e in events] == ["K-1"], "the posted event came back from events into the journal"
    consumer = KafkaConsumer("events", bootstrap_servers=broker, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    on_topic = [json.loads(m.value)["id"] for m in consumer]
    consumer.close()
    assert on_topic == ["K-1"]
