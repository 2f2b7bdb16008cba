#!/usr/bin/env python3
"""Ingest benchmark: ``Ingest`` (what ``shian ingest --until`` runs) against a bare producer.

    python bench/ingest_bench.py [--lines N] [--seed S] [--partitions P] [--profile FILE]

One run, against a broker it starts itself (``scripts/kafka_broker.py``, on 127.0.0.1) and
stops at the end:

0. The synthetic county of ``tests/kafka/synthetic.py`` (``--lines``, default 50,000), and
   the records ``Ingest`` publishes for it, captured once with a recording producer (not
   timed): topic, partition, key, value bytes and headers.
1. **floor**: a bare kafka-python ``KafkaProducer`` with the settings ``shian ingest`` uses
   (``PRODUCER_SETTINGS``) sends those already-encoded records, then ``flush()``.
2. **result**: ``Ingest`` with a producer of the same settings reads, validates and sends the
   same file, then ``finish()`` (which flushes). Fresh topics for each step.

Both are given in input lines per second. Prints measure, result, floor, ratio, target 0.5 and
met; exits 0 either way (a benchmark measures, it does not assert). ``--profile FILE`` runs
step 2 under cProfile and writes the stats there.
"""
from __future__ import annotations

import argparse
import cProfile
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.5


from pathload import load_by_path  # noqa: E402


class Recorder:
    """A producer that only remembers what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, topic: str, **kwargs: Any) -> None:
        self.sent.append((topic, kwargs))

    def flush(self) -> None:
        pass


def run_ingest(config: Any, producer: Any, path: Path, partitions: int, until: Any) -> Any:
    from shian.streams.kafka import Ingest
    from shian.streams.sources import read_path

    ingest = Ingest(config, producer, partitions, event_time=True, until=until)
    for rec in read_path(path):
        ingest.add(rec)
    return ingest.finish()


def create(bootstrap: str, topics: list[str], partitions: int) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ingest-bench")
    try:
        admin.create_topics([NewTopic(t, 1 if t.startswith("rejects") else partitions, 1) for t in topics])
    finally:
        admin.close()


def renamed(suffix: str) -> dict[str, str]:
    return {t: f"{t}-{suffix}" for t in ("events", "rejects")}


def bare(bootstrap: str, records: list[tuple[str, dict[str, Any]]], names: dict[str, str]) -> float:
    from kafka import KafkaProducer

    from shian.streams.kafka import PRODUCER_SETTINGS

    producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_SETTINGS)
    t0 = time.perf_counter()
    for topic, kwargs in records:
        producer.send(names[topic], **kwargs)
    producer.flush()
    took = time.perf_counter() - t0
    producer.close()
    return took


class Topics:
    """A producer wrapper that sends to renamed topics (so each step writes fresh ones)."""

    def __init__(self, producer: Any, names: dict[str, str]) -> None:
        self.producer, self.names = producer, names

    def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        return self.producer.send(self.names[topic], *args, **kwargs)

    def flush(self, *args: Any, **kwargs: Any) -> None:
        self.producer.flush(*args, **kwargs)


def timed_ingest(bootstrap: str, config: Any, path: Path, partitions: int, until: Any,
                 names: dict[str, str], profile: str | None) -> tuple[float, Any]:
    from kafka import KafkaProducer

    from shian.streams.kafka import PRODUCER_SETTINGS

    producer = Topics(KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_SETTINGS), names)
    prof = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    summary = run_ingest(config, producer, path, partitions, until)
    if prof:
        prof.disable()
    took = time.perf_counter() - t0
    producer.producer.close()
    if prof:
        prof.dump_stats(profile)
    return took, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=20260501)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--profile", metavar="FILE", help="cProfile the Ingest step into FILE")
    args = ap.parse_args(argv)

    from shian.rules.config import load as load_config
    from shian.rules.timeutil import parse_time
    from shian.streams.kafka import PRODUCER_SETTINGS

    synthetic = load_by_path("synthetic", ROOT / "tests" / "kafka" / "synthetic.py")
    broker_mod = load_by_path("kafka_broker", ROOT / "scripts" / "kafka_broker.py")
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        path, config_path = Path(tmp) / "events.jsonl", Path(tmp) / "county.yaml"
        synthetic.generate(path, args.lines, args.seed)
        synthetic.write_config(config_path)
        config = load_config(config_path)
        until = parse_time(synthetic.UNTIL, config.tz)
        recorder = Recorder()
        expected = run_ingest(config, recorder, path, args.partitions, until)
        with broker_mod.Broker() as broker:
            a, b = renamed("bare"), renamed("ingest")
            create(broker.bootstrap, [*a.values(), *b.values()], args.partitions)
            floor_s = bare(broker.bootstrap, recorder.sent, a)
            result_s, summary = timed_ingest(broker.bootstrap, config, path, args.partitions, until, b, args.profile)
    assert summary == expected, (summary, expected)
    floor, result = args.lines / floor_s, args.lines / result_s
    ratio = result / floor
    print(f"settings: {PRODUCER_SETTINGS}; {args.lines} lines, {len(recorder.sent)} records, "
          f"{args.partitions} partitions; {summary.lines()[0]}")
    print("measure: shian ingest (Ingest.add + finish) lines/s vs. a bare KafkaProducer sending the same records")
    print(f"result: {result:,.0f} lines/s ({result_s:.2f} s)")
    print(f"floor: {floor:,.0f} lines/s ({floor_s:.2f} s, bare)")
    print(f"ratio: {ratio:.2f}")
    print(f"target: {TARGET}")
    print(f"met: {'yes' if ratio >= TARGET else 'no — TARGET MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
