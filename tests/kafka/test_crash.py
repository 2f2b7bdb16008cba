"""A worker killed with SIGKILL in the middle of a 100,000-event stream, and a new one started
on an empty data folder, lose no notice; duplicates on ``notices`` are only redeliveries of
the same id with the same content, never two different notices for one fact.

The expected notices are replay's over the same file (the event-time pipeline must give
exactly those, §3 and streams/partitioned.py). The second worker's state can only come from
the changelog of the ``shian-engines`` table, and its input from the committed offsets.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from conftest import load_kafka_broker
from shian.rules.config import load
from shian.rules.timeutil import parse_time
from shian.streams import worker as worker_module
from shian.streams.partitioned import partition_of
from shian.streams.replay import Replay
from synthetic import UNTIL, generate, write_config

LINES = 100_000
KILL_AT = float(os.environ.get("SHIAN_CRASH_KILL_AT", "0.30"))  # kill worker1 once this share of notices is out
FIRST_TIMEOUT = 240.0    # for the first worker to get there
SECOND_TIMEOUT = 240.0   # for the second worker to bring the rest
# "snapshot": the kill lands while a snapshot of the worker's state is half written (see
# kill_mid_snapshot); "plain": as soon as KILL_AT is reached.
MODE = os.environ.get("SHIAN_CRASH_MODE", "snapshot")
SNAPSHOT_WAIT = 30.0     # how long to look for a half-written snapshot before killing anyway
SLICE = 0.003            # the worker runs this long between two looks at the changelog
CHANGELOG = "shian-shian-engines-changelog"  # of the worker's state table (streams/worker.py)
QUIET = 5.0              # after the last expected notice: how long no new record must come
# The killed worker stays a member of the consumer group until its session times out, and the
# new one gets no partition before that: Faust's default (60 s) made every run a minute longer.
# Faust reads these settings from the environment; nothing else about the workers changes.
SESSION = {"BROKER_SESSION_TIMEOUT": "10", "BROKER_HEARTBEAT_INTERVAL": "1"}


def replayed(config_path: Path, events: Path) -> tuple[dict[str, dict], list[dict]]:
    config = load(config_path)
    notices: dict[str, dict] = {}
    rejects: list[dict] = []

    def on_notice(n: Any) -> None:
        obj = json.loads(json.dumps(n.to_json(), ensure_ascii=False))
        assert notices.setdefault(obj["id"], obj) == obj, "replay: one id, two notices"

    Replay(config, on_notice, lambda r: rejects.append(r.to_json()), until=parse_time(UNTIL, config.tz)).run([str(events)])
    return notices, rejects


class Topic:
    """Everything on one topic, read from the start and kept in arrival order."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                      enable_auto_commit=False, group_id=None)
        self.records: list[tuple[bytes | None, bytes]] = []
        self.ids: set[str] = set()  # notices: their ids, kept as they come (no re-parsing)
        self._notices = topic == "notices"

    def poll(self, timeout: float = 0.5) -> int:
        got = 0
        for batch in self.consumer.poll(timeout_ms=int(timeout * 1000)).values():
            for msg in batch:
                self.records.append((msg.key, msg.value))
                if self._notices:
                    self.ids.add(json.loads(msg.value)["id"])
                got += 1
        return got

    def close(self) -> None:
        self.consumer.close()


def kill_mid_snapshot(bootstrap: str, worker: subprocess.Popen) -> str:
    """SIGKILL the worker at the worst moment for its state: while a snapshot is only partly
    on the changelog. Its layout (streams/worker.py): the chunks of a snapshot (keys
    ``engine-P-…``), each of at most ``CHUNK`` bytes, then the head ``engine-P`` that names
    them; a chunk of exactly ``CHUNK`` bytes means more follow. The worker runs in slices of
    a few milliseconds (SIGCONT, SIGSTOP) and the changelog is read between them; once a
    partition shows such a chunk with the rest of its snapshot still to come, the worker is
    killed right there, as a SIGKILL at that instant would leave it. If none is seen within
    ``SNAPSHOT_WAIT`` (another layout), it is killed anyway."""
    chunk = getattr(worker_module, "CHUNK", None)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=10)
    try:
        parts = sorted(consumer.partitions_for_topic(CHANGELOG) or ())
        consumer.assign([TopicPartition(CHANGELOG, p) for p in parts])
        since_head: dict[int, list[tuple[int, bytes, int]]] = {p: [] for p in parts}

        def drain(ms: int) -> int:
            got = 0
            for batch in consumer.poll(timeout_ms=ms).values():
                for m in batch:
                    got += 1
                    if m.key == f"engine-{m.partition}".encode():
                        since_head[m.partition] = []
                    else:
                        since_head[m.partition].append((m.offset, m.key, len(m.value)))
            return got

        while parts and drain(500):  # the changelog so far
            pass
        deadline = time.monotonic() + SNAPSHOT_WAIT
        slices = 0
        try:
            while parts and chunk and time.monotonic() < deadline and worker.poll() is None:
                os.kill(worker.pid, signal.SIGCONT)
                time.sleep(SLICE)
                os.kill(worker.pid, signal.SIGSTOP)
                slices += 1
                time.sleep(0.05)  # what was on its way has landed
                while drain(20):
                    pass
                for p, recs in since_head.items():
                    if recs and recs[-1][2] == chunk:
                        return (f"in the middle of a snapshot of partition {p} (after {slices} slices; on "
                                f"{CHANGELOG}/{p} after its head: {[(o, k.decode(), n) for o, k, n in recs]})")
            return f"(no partial snapshot seen in {slices} slices)"
        finally:
            os.kill(worker.pid, signal.SIGKILL)
    finally:
        consumer.close()


def shian(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "w") as err:  # the child keeps its own copy
        return subprocess.Popen([sys.executable, "-m", "shian.cli", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)


def tail(path: Path, chars: int = 3000) -> str:
    """A log's errors, warnings and restores (first 40), then its end."""
    if not path.exists():
        return f"--- {path.name}: (none)"
    text = path.read_text(errors="replace")
    marked = [line[:300] for line in text.splitlines()
              if re.search(r"ERROR|WARNING|Error|Crashed|restored|Traceback", line)]
    return (f"--- {path.name}: {len(marked)} marked lines\n" + "\n".join(marked[:40])
            + f"\n--- {path.name} (last {chars} chars):\n" + text[-chars:])


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)  # in case it was stopped
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def test_worker_killed_mid_stream_loses_no_notice(tmp_path):
    clock = {"start": time.monotonic()}

    def mark(name: str) -> None:
        clock[name] = time.monotonic() - clock["start"]

    config_path = write_config(tmp_path / "county.yaml")
    events = tmp_path / "events.jsonl"
    lines = generate(events, LINES)
    mark("generated")
    expected, expected_rejects = replayed(config_path, events)
    mark("replayed")
    rules = Counter(n["rule"] for n in expected.values())
    assert len(expected) > 5000 and len(rules) >= 15, rules  # the stream is worth the test
    print(f"\n{LINES} lines {lines}; replay: {len(expected)} notices of {len(rules)} rules, "
          f"{len(expected_rejects)} rejects")

    env = dict(os.environ, PYTHONUNBUFFERED="1", **SESSION)
    logs = {name: tmp_path / f"{name}.log" for name in ("worker1", "worker2", "ingest")}
    procs: dict[str, subprocess.Popen] = {}
    notices = rejects = None
    report: list[str] = []
    with load_kafka_broker().Broker() as b:
        broker = f"kafka://{b.bootstrap}"
        try:
            subprocess.run([sys.executable, "-m", "shian.cli", "topics", "--config", str(config_path),
                            "--broker", broker, "--partitions", "4"], check=True, timeout=120, env=env)
            mark("broker")
            notices = Topic(b.bootstrap, "notices")
            rejects = Topic(b.bootstrap, "rejects")

            def worker(name: str) -> subprocess.Popen:
                procs[name] = shian(["worker", "--config", str(config_path), "--broker", broker, "--event-time",
                                     "--data-dir", str(tmp_path / f"{name}-data"), "--loglevel", "info"],
                                    logs[name], env)
                return procs[name]

            first = worker("worker1")
            procs["ingest"] = shian(["ingest", str(events), "--config", str(config_path), "--broker", broker,
                                     "--until", UNTIL, "--no-progress"], logs["ingest"], env)

            # 1. the first worker gets a good part of the way, then dies without a word
            want = int(KILL_AT * len(expected))
            deadline = time.monotonic() + FIRST_TIMEOUT
            while len(notices.records) < want:
                assert first.poll() is None, f"worker1 exited ({first.returncode})\n{tail(logs['worker1'])}"
                assert time.monotonic() < deadline, (
                    f"worker1 gave {len(notices.records)} of {want} notices in {FIRST_TIMEOUT:.0f} s\n"
                    + "\n".join(tail(p) for p in logs.values()))
                notices.poll()
            if MODE == "snapshot":
                moment = kill_mid_snapshot(b.bootstrap, first)
            else:
                os.kill(first.pid, signal.SIGKILL)
                moment = "(plain)"
            first.wait(timeout=20)
            mark("killed")
            at_kill = len(notices.records)
            ingest_running = procs["ingest"].poll() is None
            report.append(f"worker1 SIGKILLed at {clock['killed']:.1f} s {moment}, with {at_kill} notice records "
                          f"out ({at_kill / len(expected):.0%}); ingest {'still running' if ingest_running else 'done'}")

            # 2. a new worker on an empty data folder: state from the changelog, input from the offsets
            second = worker("worker2")
            deadline = time.monotonic() + SECOND_TIMEOUT
            crashed = False  # Faust logs an agent that raised, and restarts it: no use waiting then
            while len(notices.ids & expected.keys()) < len(expected) and time.monotonic() < deadline:
                assert second.poll() is None, f"worker2 exited ({second.returncode})\n{tail(logs['worker2'])}"
                if not notices.poll(1.0) and "Crashed reason=" in logs["worker2"].read_text(errors="replace"):
                    if crashed:
                        break
                    crashed = True  # once more, for what was on its way
            mark("complete")
            ingest = procs["ingest"]
            ingest.wait(timeout=max(10.0, deadline - time.monotonic()))
            mark("ingest-done")
            # whatever comes after the last expected notice: redeliveries or extras, wait for quiet
            quiet_until = time.monotonic() + QUIET
            while time.monotonic() < quiet_until:
                if notices.poll():
                    quiet_until = time.monotonic() + QUIET
                rejects.poll()
            mark("drained")
        finally:
            for proc in procs.values():
                stop(proc)
            for topic in (notices, rejects):
                if topic is not None:
                    topic.close()
    mark("total")
    diagnostics = "\n".join(tail(logs[name]) for name in ("worker2", "worker1", "ingest"))

    # --- what came out ---------------------------------------------------------------------
    assert ingest.returncode == 0, diagnostics
    by_id: dict[str, list[bytes]] = defaultdict(list)
    for key, value in notices.records:
        notice = json.loads(value)
        assert key is not None and key.decode() == notice["key"], notice
        by_id[notice["id"]].append(value)
    missing = set(expected) - set(by_id)
    extra = set(by_id) - set(expected)
    different = {i: vs for i, vs in by_id.items() if len(set(vs)) > 1}
    redelivered = {i: len(vs) - 1 for i, vs in by_id.items() if len(vs) > 1}
    redeliveries = sum(redelivered.values())
    report += [
        f"notices: {len(expected)} expected, {len(notices.records)} records, {len(by_id)} ids; "
        f"missing {len(missing)}, extra {len(extra)}, one id with different content {len(different)}",
        f"redeliveries: {redeliveries} records of {len(redelivered)} ids "
        f"({dict(Counter(json.loads(by_id[i][0])['rule'] for i in redelivered).most_common())})",
        "worker2 restored: " + (", ".join(re.findall(r"partition \d+: state restored \(\d+ bytes\)",
                                                      logs["worker2"].read_text(errors="replace"))) or "(no log line)"),
        "timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in clock.items() if k != "start"),
    ]
    print("\n".join(report))

    def show(ids: set[str]) -> str:
        found = [expected.get(i) or json.loads(by_id[i][0]) for i in sorted(ids)]
        by_rule = Counter(n["rule"] for n in found)
        by_partition = Counter(f"{n['township']} (events/{partition_of(n['township'], 4)})" for n in found)
        return (f"by rule {dict(by_rule)}; by township {dict(by_partition)}; at from {min(n['at'] for n in found)} "
                f"to {max(n['at'] for n in found)}\n" + "\n".join(json.dumps(n, ensure_ascii=False) for n in found[:5]))

    if missing:  # the story, without the test's source around it
        pytest.fail(f"lost {len(missing)} notices: {show(missing)}\n" + "\n".join(report) + "\n" + diagnostics,
                    pytrace=False)
    if extra:
        pytest.fail(f"{len(extra)} notices replay does not give: {show(extra)}\n" + "\n".join(report), pytrace=False)
    assert not different, "one id, two different notices:\n" + "\n".join(
        "\n".join(v.decode() for v in sorted(set(vs))) for vs in list(different.values())[:3])
    for i, vs in by_id.items():  # each id's content is replay's
        assert json.loads(vs[0]) == expected[i], (json.loads(vs[0]), expected[i])

    # rejects: only ingest's (the workers reject nothing here, and a redelivery must not add any)
    got_rejects = [json.loads(v) for _, v in rejects.records]
    assert len(got_rejects) == len(expected_rejects), (
        f"rejects topic: {len(got_rejects)}, replay: {len(expected_rejects)}\n"
        + "\n".join(json.dumps(r, ensure_ascii=False) for r in got_rejects if r["source"].startswith("events/"))[:4000])

    def as_key(r: dict) -> tuple:
        return (r["source"], r["line"], r["raw"], r["reason"])

    assert sorted(map(as_key, got_rejects)) == sorted(map(as_key, expected_rejects))
