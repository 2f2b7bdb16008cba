"""Smoke tests of the development broker with the kafka-python client: what the project relies
on (explicitly created partitioned topics, keyed partitioning, no auto-creation) really holds."""
from __future__ import annotations

import time
from collections import defaultdict

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaTimeoutError


@pytest.fixture
def admin(kafka_broker):
    client = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap, client_id="shian-test")
    yield client
    client.close()


def test_keyed_messages_round_trip(kafka_broker, admin):
    topic = "smoke-events"
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    keys = [f"township-{i % 10}" for i in range(100)]

    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    for i, key in enumerate(keys):
        producer.send(topic, key=key.encode(), value=f"event-{i}".encode())
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_broker.bootstrap, group_id="smoke",
                             auto_offset_reset="earliest", consumer_timeout_ms=1000)
    got = []
    deadline = time.monotonic() + 30
    while len(got) < len(keys) and time.monotonic() < deadline:
        got.extend(consumer)  # stops after consumer_timeout_ms without messages
    consumer.close()
    got = [m._replace(key=m.key.decode(), value=m.value.decode()) for m in got]

    assert sorted(int(m.value.split("-")[1]) for m in got) == list(range(100))
    assert all(m.key == keys[int(m.value.split("-")[1])] for m in got)
    partitions = defaultdict(set)
    for m in got:
        partitions[m.key].add(m.partition)
    assert all(len(p) == 1 for p in partitions.values()), partitions
    assert len(set().union(*partitions.values())) > 1  # the keys did spread over partitions


def test_topics_are_not_auto_created(kafka_broker, admin):
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, max_block_ms=2000)
    with pytest.raises(KafkaTimeoutError):
        producer.send("never-created", b"x").get(timeout=5)
    producer.close()
    assert "never-created" not in admin.list_topics()
