#!/usr/bin/env python3
"""Kafka benchmark: the synthetic county-year of ``bench/replay_bench.py`` through a real broker.

    python bench/kafka_bench.py [--quick] [--json PATH] [--events N] [--townships T] [--seed S] [--out DIR]
                                [--rate R] [--seconds S] [--unqualified-share F]
                                [--profile auto|always|never] [--timeout S] [--idle-timeout S]

One run, against brokers it starts itself (``scripts/kafka_broker.py``) and stops at the end:

0. The data: ``replay_bench.dataset`` (generated, or reused when its manifest matches), then the
   in-process replay (``Replay(...).run``, ``until`` = the end of the year) in a child process of
   its own, before any broker runs — **replay events/s** and the expected notices.
1. Broker A; ``shian topics --partitions 4``; ``shian ingest FILE --until 2027-01-01`` (timed on
   its own). Then a bare aiokafka ``AIOKafkaConsumer`` reads the whole ``events`` topic from the
   earliest offset — **raw consume events/s**.
2. ONE ``shian worker --event-time`` (a subprocess) on that topic while a reader process follows
   ``notices`` from the start. The worker is consuming from its first notice on (the feed's
   first notices come from its first lines); **worker events/s** = records in ``events`` /
   (the time the last expected notice — replay's count, distinct ids — is read − the time the
   first is read). Also reported: spawn → last notice, and that minus the start-up time of
   step 3. The worker's CPU (main thread vs. the others: Faust's consumer thread) and the
   broker's are read from /proc. Then the worker is stopped with SIGTERM — a clean stop
   finishes its batch, snapshots and commits — and **offsets all committed** says whether the
   group's committed offset equals the end offset of every ``events`` partition; a new worker
   in the same group (state from the changelog only) joins, runs a few seconds and is stopped
   again: its stop report gives the events it was **redelivered** (0 expected), and no new
   notice may appear. With ``--profile always`` (or ``auto``, without ``--quick``, and the
   worker below its target) a second worker (app id ``shian-prof``: its own group and changelog)
   runs the same events under cProfile (main thread only) → ``<out>/kafka_worker.prof`` and
   ``<out>/kafka_worker_profile.txt``.
3. Broker B (fresh topics and group); one event waits on ``events``; a LIVE worker (no
   ``--event-time``) is spawned — **start-up time** = spawn → its notice on ``notices``. Then a
   kafka-python producer sends sampling results at ``--rate`` per second (default 1,000) for
   ``--seconds`` (30), event times at the wall clock, a ``--unqualified-share`` (0.1) of them
   不合格 (each with an entity of its own, so one ``sample.unqualified`` notice each); for each
   such notice, latency = reading it (matched by the event id in ``event_ids``) − the moment its
   event was handed to the producer — **p50 / p99** and the count.

Prints a readable summary, writes ``<out>/kafka_bench.json`` (and with ``--json PATH`` the
``bench/targets.py`` rows) and exits 0; a missed target is a ``TARGET MISSED`` line (a
benchmark measures, it does not assert). Targets: worker events/s ≥ 0.5 × min(raw consume,
replay), notice latency p99 < 250 ms, all offsets committed after the SIGTERM, 0 events
redelivered to the next worker, the notices replay gives. ``--quick``: 50,000 events and a
10-second latency run (a few minutes in all); the default is 200,000 events and 30 seconds.

The machine is shared by everything: broker (JVM), worker, producer and reader run on the same
CPUs (``cpus`` in the report), so on a small box the figures include that contention; the report
also gives the 1-minute load before each step, the CPU other processes took during step 2, and
the worker's events per CPU second of its event-loop thread (less sensitive to that load).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

DIR = Path(__file__).resolve().parent
ROOT = DIR.parent
UNTIL_TEXT = "2027-01-01T00:00:00"  # replay_bench's UNTIL: the end of the synthetic year
PARTITIONS = 4
SHARE_TARGET = 0.5  # worker events/s over min(raw consume, replay)
P99_TARGET_MS = 250.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


from pathload import load_by_path  # noqa: E402


def replay_bench() -> Any:
    return load_by_path("replay_bench", DIR / "replay_bench.py")


def targets() -> Any:
    return load_by_path("targets", DIR / "targets.py")


def kafka_broker() -> Any:
    return load_by_path("kafka_broker", ROOT / "scripts" / "kafka_broker.py")


# ---------------------------------------------------------------------------------------
# /proc: CPU seconds of a process and of its threads

def _stat_cpu(path: str) -> float | None:
    try:
        with open(path) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(rest[11]) + int(rest[12])) / CLK_TCK  # utime + stime


def proc_cpu(pid: int) -> float | None:
    return _stat_cpu(f"/proc/{pid}/stat")


def system_busy() -> float | None:
    """CPU seconds all CPUs spent busy since boot (/proc/stat): with the processes we know,
    it tells how much else ran on the machine meanwhile."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of the main thread and of all the others together."""
    main = other = 0.0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for tid in tids:
        cpu = _stat_cpu(f"/proc/{pid}/task/{tid}/stat") or 0.0
        if int(tid) == pid:
            main += cpu
        else:
            other += cpu
    return {"main_thread": round(main, 2), "other_threads": round(other, 2), "threads": len(tids)}


# ---------------------------------------------------------------------------------------
# The notices reader: a process of its own, so its work and the GIL do not touch the producer.

def notices_reader(bootstrap: str, out_path: str, want: int | None, start: dict[int, int] | None,
                   ready: Any, stop: Any) -> None:
    """Follows ``notices`` (all partitions, assigned by hand: no group join) and writes one line
    per notice: ``read-time  id  rule  event_ids``. Ends when ``stop`` is set or, given
    ``want``, once that many distinct ids were read."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=100)
    parts = None
    for _ in range(100):
        parts = consumer.partitions_for_topic("notices")
        if parts:
            break
        time.sleep(0.1)
    tps = [TopicPartition("notices", p) for p in sorted(parts or ())]
    consumer.assign(tps)
    for tp in tps:
        if start and tp.partition in start:
            consumer.seek(tp, start[tp.partition])
        else:
            consumer.seek_to_beginning(tp)
    for tp in tps:
        consumer.position(tp)
    ready.set()
    seen: set[str] = set()
    with open(out_path, "w", encoding="utf-8") as out:
        while not stop.is_set():
            batch = consumer.poll(timeout_ms=50)
            if not batch:
                continue
            now = time.time()
            for msgs in batch.values():
                for m in msgs:
                    n = json.loads(m.value)
                    seen.add(n["id"])
                    out.write(f"{now:.6f}\t{n['id']}\t{n['rule']}\t{'|'.join(n['event_ids'])}\n")
            out.flush()
            if want is not None and len(seen) >= want:
                break
    consumer.close()


class Reader:
    def __init__(self, bootstrap: str, path: Path, want: int | None = None,
                 start: dict[int, int] | None = None) -> None:
        ctx = mp.get_context("spawn")
        self.path = path
        self.ready, self.stop_event = ctx.Event(), ctx.Event()
        self.proc = ctx.Process(target=notices_reader, args=(bootstrap, str(path), want, start, self.ready,
                                                             self.stop_event), daemon=True)
        self.proc.start()
        if not self.ready.wait(60):
            raise RuntimeError("the notices reader did not start")

    def rows(self) -> list[tuple[float, str, str, list[str]]]:
        out = []
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            return out
        for line in text.splitlines():
            parts = line.split("\t")
            if len(parts) == 4:
                out.append((float(parts[0]), parts[1], parts[2], parts[3].split("|") if parts[3] else []))
        return out

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def close(self) -> None:
        self.stop_event.set()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)


# ---------------------------------------------------------------------------------------
# Kafka helpers

def cli(*args: str, timeout: float | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "shian.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    secs = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"shian {args[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return secs, done


def worker_cmd(*cli_args: str) -> list[str]:
    """``shian worker …`` as a subprocess: the CLI as shipped."""
    return [sys.executable, "-m", "shian.cli", "worker", *cli_args]


def spawn_worker(args: list[str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore"))


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> float:
    """Stops one process we started; returns the seconds it took."""
    t0 = time.perf_counter()
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return time.perf_counter() - t0


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    """The group's committed offsets (a consumer that never joins: it only asks)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        return {p: consumer.committed(TopicPartition(topic, p)) for p in parts}
    finally:
        consumer.close()


async def _raw_consume(bootstrap: str, topic: str) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    ends = end_offsets(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(ends)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp: ends[tp.partition] for tp in tps if ends[tp.partition] > 0}
        records = nbytes = 0
        t0 = time.perf_counter()
        first = None
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, msgs in batch.items():
                if first is None and msgs:
                    first = time.perf_counter()
                records += len(msgs)
                nbytes += sum(len(m.value or b"") for m in msgs)
                if msgs and msgs[-1].offset + 1 >= remaining.get(tp, 0):
                    remaining.pop(tp, None)
        t1 = time.perf_counter()
    finally:
        await consumer.stop()
    return {"records": records, "bytes": nbytes, "seconds": round(t1 - t0, 3),
            "seconds_from_first_record": round(t1 - (first or t0), 3),
            "eps": round(records / (t1 - t0)) if t1 > t0 else None}


def raw_consume(bootstrap: str, topic: str = "events") -> dict[str, Any]:
    return asyncio.run(_raw_consume(bootstrap, topic))


# ---------------------------------------------------------------------------------------
# Step 2: one event-time worker over the whole topic

def wait_for_notices(reader: Reader, proc: subprocess.Popen, t_spawn: float, want: int,
                     timeout: float, idle_timeout: float) -> str:
    """Until the reader has ``want`` distinct ids ('done'), the worker dies, nothing new comes
    for ``idle_timeout`` seconds after the first notice, or ``timeout`` passes."""
    last_size, last_change = 0, time.time()
    while True:
        time.sleep(0.2)
        now = time.time()
        if not reader.proc.is_alive():
            return "done"
        if proc.poll() is not None:
            return f"worker exited with code {proc.returncode}"
        size = reader.size()
        if size != last_size:
            last_size, last_change = size, now
        elif size and now - last_change > idle_timeout:
            return f"no new notice for {idle_timeout:.0f} s"
        if now - t_spawn > timeout:
            return f"timeout after {timeout:.0f} s"


def summarize_notices(rows: list[tuple[float, str, str, list[str]]], want: int) -> dict[str, Any]:
    seen: dict[str, float] = {}
    rules: Counter[str] = Counter()
    t_want = None
    for t, nid, rule, _ in rows:
        if nid not in seen:
            seen[nid] = t
            rules[rule] += 1
            if len(seen) == want:
                t_want = t
    times = sorted(seen.values())
    return {"read": len(rows), "distinct": len(seen), "duplicates": len(rows) - len(seen),
            "first": times[0] if times else None, "last_new": times[-1] if times else None,
            "at_expected_count": t_want, "by_rule": dict(sorted(rules.items()))}


def worker_run(bootstrap: str, m: dict[str, Any], want: int, work: Path, args: argparse.Namespace,
               broker_pid: int) -> dict[str, Any]:
    reader = Reader(bootstrap, work / "notices_event_time.tsv", want=want)
    cmd = worker_cmd("--config", m["config_path"], "--broker", f"kafka://{bootstrap}", "--event-time",
                     "--data-dir", str(work / "worker-et"))
    broker_cpu0, busy0, reader0 = proc_cpu(broker_pid), system_busy(), proc_cpu(reader.proc.pid)
    t_spawn = time.time()
    proc = spawn_worker(cmd, work / "worker-et.log")
    try:
        outcome = wait_for_notices(reader, proc, t_spawn, want, args.timeout, args.idle_timeout)
        t_end = time.time()
        cpu = {"worker": proc_cpu(proc.pid), **{f"worker_{k}": v for k, v in thread_cpu(proc.pid).items()}}
        broker_cpu1, busy1, reader1 = proc_cpu(broker_pid), system_busy(), proc_cpu(reader.proc.pid)
    finally:
        # A clean stop: the worker ends its batch, snapshots and commits before it exits.
        stop_seconds = stop_process(proc, signal.SIGTERM, timeout=120)
        reader.close()
    s = summarize_notices(reader.rows(), want)
    r: dict[str, Any] = {"outcome": outcome, "notices": s, "stop_seconds": round(stop_seconds, 1),
                         "exit_code": proc.returncode}
    r["cpu_seconds"] = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in cpu.items()}
    if broker_cpu0 is not None and broker_cpu1 is not None:
        r["cpu_seconds"]["broker"] = round(broker_cpu1 - broker_cpu0, 2)
    if reader0 is not None and reader1 is not None:
        r["cpu_seconds"]["notices_reader"] = round(reader1 - reader0, 2)
    if busy0 is not None and busy1 is not None:
        known = sum(r["cpu_seconds"].get(k) or 0 for k in ("worker", "broker", "notices_reader"))
        r["cpu_seconds"]["whole_machine"] = round(busy1 - busy0, 2)
        r["cpu_seconds"]["everything_else"] = round(busy1 - busy0 - known, 2)
    r["wall_seconds"] = round(t_end - t_spawn, 2)
    if outcome != "done":
        r["worker_log_tail"] = tail(work / "worker-et.log")
    last = s["at_expected_count"] or s["last_new"]
    if s["first"] is not None and last is not None:
        r["startup_to_first_notice_s"] = round(s["first"] - t_spawn, 2)
        r["first_to_last_notice_s"] = round(last - s["first"], 2)
        r["spawn_to_last_notice_s"] = round(last - t_spawn, 2)
    try:
        ends, comm = end_offsets(bootstrap, "events"), committed(bootstrap, "shian", "events")
        r["committed_offsets"] = comm
        r["end_offsets"] = ends
        r["all_committed"] = all((comm.get(p) or 0) >= e for p, e in ends.items())
    except Exception as e:  # noqa: BLE001 - a report, not a test
        r["committed_offsets_error"] = repr(e)
    if outcome == "done":
        r["restart"] = restart_run(bootstrap, m, work)
    return r


def group_members(bootstrap: str, group: str) -> tuple[str, set[str]]:
    """The group's state and member ids (kafka-python's admin)."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="shian-bench")
    try:
        desc = admin.describe_groups([group])[group]
        return desc["group_state"], {m["member_id"] for m in desc["members"]}
    finally:
        admin.close()


def restart_run(bootstrap: str, m: dict[str, Any], work: Path, settle: float = 5.0) -> dict[str, Any]:
    """After the clean stop: a new worker in the same group (an empty data folder: its state
    comes from the changelog) joins, runs ``settle`` seconds after the group is stable, and is
    stopped with SIGTERM; its stop report (log level info) says how many records it was
    redelivered, and no new notice may appear."""
    notices_before = end_offsets(bootstrap, "notices")
    _, stopped = group_members(bootstrap, "shian")  # the stopped worker, until it has left
    cmd = worker_cmd("--config", m["config_path"], "--broker", f"kafka://{bootstrap}", "--event-time",
                     "--data-dir", str(work / "worker-et-2"), "--loglevel", "info")
    log_path = work / "worker-et-2.log"
    t0 = time.time()
    proc = spawn_worker(cmd, log_path)
    r: dict[str, Any] = {}
    try:
        while time.time() - t0 < 120 and proc.poll() is None:
            time.sleep(0.5)
            try:
                state, now = group_members(bootstrap, "shian")
                if state == "Stable" and now and not now & stopped:
                    break
            except Exception:  # noqa: BLE001 - the group is not there yet
                pass
        r["joined_seconds"] = round(time.time() - t0, 1)
        time.sleep(settle)
    finally:
        stop_process(proc, signal.SIGTERM, timeout=120)
    text = tail(log_path, 20000)
    said = [ln for ln in text.splitlines() if "stopped cleanly" in ln]
    r["stop_report"] = said[-1].split("stopped cleanly:")[-1].strip() if said else None
    received = [int(x) for x in re.findall(r"(\d+) records received", said[-1])] if said else []
    r["redelivered"] = sum(received) if said else None
    r["new_notices"] = sum(end_offsets(bootstrap, "notices").values()) - sum(notices_before.values())
    r["exit_code"] = proc.returncode
    if not said:
        r["worker_log_tail"] = tail(log_path)
    return r


# ---------------------------------------------------------------------------------------
# The profiled worker (child): same app, its own id, under cProfile

def child_profile_worker(config_path: str, bootstrap: str, data_dir: str, prof_path: str) -> int:
    import cProfile

    from shian.rules.config import load
    from shian.streams.kafka import event_partitions
    from shian.streams.worker import build_app, faust_worker

    config = load(config_path)
    app = build_app(config, bootstrap, event_partitions(bootstrap), event_time=True, data_dir=data_dir,
                    app_id="shian-prof")
    worker = faust_worker(app)
    prof = cProfile.Profile()
    prof.enable()
    try:
        worker.execute_from_commandline()
    finally:
        prof.disable()
        prof.dump_stats(prof_path)
    return 0


def profile_run(bootstrap: str, m: dict[str, Any], want: int, work: Path, out: Path,
                args: argparse.Namespace) -> dict[str, Any]:
    import io
    import pstats

    start = end_offsets(bootstrap, "notices")
    reader = Reader(bootstrap, work / "notices_profile.tsv", want=want, start=start)
    prof_path = out / "kafka_worker.prof"
    prof_path.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "profile-worker", "--config-file",
           m["config_path"], "--bootstrap", bootstrap, "--data-dir", str(work / "worker-prof"),
           "--prof-file", str(prof_path)]
    t_spawn = time.time()
    proc = spawn_worker(cmd, work / "worker-prof.log")
    try:
        outcome = wait_for_notices(reader, proc, t_spawn, want, args.timeout * 3, args.idle_timeout * 2)
        t_end = time.time()
        threads = thread_cpu(proc.pid)
    finally:
        stop_process(proc, signal.SIGINT, timeout=120)  # SIGINT: Faust stops, the child dumps the profile
        reader.close()
    s = summarize_notices(reader.rows(), want)
    r: dict[str, Any] = {"outcome": outcome, "wall_seconds": round(t_end - t_spawn, 1), "cpu_seconds": threads,
                         "notices_distinct": s["distinct"]}
    if s["first"] is not None:
        r["first_to_last_notice_s"] = round((s["at_expected_count"] or s["last_new"]) - s["first"], 2)
    if not prof_path.exists():
        r["error"] = "no profile written"
        r["worker_log_tail"] = tail(work / "worker-prof.log")
        return r
    buf = io.StringIO()
    stats = pstats.Stats(str(prof_path), stream=buf)
    stats.sort_stats("tottime").print_stats(40)
    buf.write("\n\n")
    stats.sort_stats("cumulative").print_stats(45)
    text = buf.getvalue()
    (out / "kafka_worker_profile.txt").write_text(text, encoding="utf-8")
    r["profile_file"] = str(prof_path)
    r["profile_text"] = str(out / "kafka_worker_profile.txt")
    r["profile_total_seconds"] = round(stats.total_tt, 1)  # type: ignore[attr-defined]
    return r


# ---------------------------------------------------------------------------------------
# Step 3: a live worker, its start-up, and notice latency at a fixed rate

def live_sample(i: int, township: str, now: datetime, unqualified: bool, prefix: str = "LAT") -> tuple[str, bytes]:
    eid = f"{prefix}-{i:07d}"
    ev = {
        "type": "sampling_result", "id": eid, "township": township, "program": "food_sampling",
        "sampled_at": (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S"),
        "reported_at": now.strftime("%Y-%m-%dT%H:%M:%S"),
        "entity": f"基准测试商户{i:07d}", "category": "蔬菜", "food": "韭菜",
        "items": [{"item": "腐霉利", "value": 0.5 if unqualified else 0.05, "unit": "mg/kg", "limit": 0.2}],
        "conclusion": "不合格" if unqualified else "合格",
    }
    return eid, json.dumps(ev, ensure_ascii=False).encode()


def pct(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def first_read(rows: list[tuple[float, str, str, list[str]]]) -> dict[str, float]:
    """Event id → when a notice naming it was first read."""
    out: dict[str, float] = {}
    for t, _, _, ids in rows:
        for eid in ids:
            out.setdefault(eid, t)
    return out


def _startup(producer: Any, reader: Reader, m: dict[str, Any], config: Any, towns: list[str],
             bootstrap: str, work: Path) -> tuple[subprocess.Popen, float | None]:
    """An event waits on ``events``; spawn the live worker → (it, seconds until that event's notice)."""
    from shian.streams.partitioned import partition_of

    warm_id, value = live_sample(0, towns[0], datetime.now(config.tz), True, prefix="WARMUP")
    producer.send("events", key=towns[0].encode(), value=value, partition=partition_of(towns[0], PARTITIONS))
    producer.flush()
    cmd = worker_cmd("--config", m["config_path"], "--broker", f"kafka://{bootstrap}",
                     "--data-dir", str(work / "worker-live"))
    t_spawn = time.time()
    proc = spawn_worker(cmd, work / "worker-live.log")
    while time.time() - t_spawn < 180 and proc.poll() is None:
        got = first_read(reader.rows()).get(warm_id)
        if got is not None:
            return proc, got - t_spawn
        time.sleep(0.05)
    return proc, None


def _feed(producer: Any, config: Any, towns: list[str], args: argparse.Namespace,
          r: dict[str, Any]) -> tuple[dict[str, float], float]:
    """Send ``--rate`` events/s for ``--seconds`` → (unqualified event id → when sent, wall start)."""
    from shian.streams.partitioned import partition_of

    every = max(1, round(1 / args.unqualified_share)) if args.unqualified_share > 0 else 0
    total = int(args.rate * args.seconds)
    sent: dict[str, float] = {}
    start = time.perf_counter()
    wall_start = time.time()
    for i in range(1, total + 1):
        delay = start + (i - 1) / args.rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        town = towns[i % len(towns)]
        unq = bool(every) and i % every == 0
        eid, value = live_sample(i, town, datetime.now(config.tz), unq)
        t_send = time.time()
        producer.send("events", key=town.encode(), value=value, partition=partition_of(town, PARTITIONS))
        if unq:
            sent[eid] = t_send
    send_seconds = time.perf_counter() - start
    producer.flush()
    r.update(sent=total, sent_unqualified=len(sent), send_seconds=round(send_seconds, 2),
             achieved_rate=round(total / send_seconds, 1))
    return sent, wall_start


def _drain(reader: Reader, sent: dict[str, float], seconds: float = 60.0) -> None:
    """Wait until every expected notice is read, or ``seconds`` without."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        seen = first_read(reader.rows())
        if all(eid in seen for eid in sent):
            return
        time.sleep(0.25)


def _cpu_shares(before: tuple[float | None, ...], after: tuple[float | None, ...], wall: float,
                r: dict[str, Any]) -> None:
    """Worker, broker and machine CPU over the feed, as shares of the wall time."""
    for key, b, a in zip(("worker_cpu_share", "broker_cpu_share", "machine_busy_cpus"), before, after):
        if b is not None and a is not None:
            r[key] = round((a - b) / wall, 2 if key == "machine_busy_cpus" else 3)


def _latency_figures(sent: dict[str, float], seen: dict[str, float], wall_start: float, r: dict[str, Any]) -> None:
    """p50 / p90 / p99 of send → notice read, overall and in 5-second slices."""
    lat = sorted((seen[eid] - t) * 1000 for eid, t in sent.items() if eid in seen)
    r["notices_matched"] = len(lat)
    r["notices_missing"] = len(sent) - len(lat)
    if not lat:
        return
    r.update(p50_ms=round(pct(lat, 0.5), 1), p90_ms=round(pct(lat, 0.9), 1),
             p99_ms=round(pct(lat, 0.99), 1), max_ms=round(lat[-1], 1), min_ms=round(lat[0], 1),
             mean_ms=round(sum(lat) / len(lat), 1))
    # Latency over the run, in 5-second slices (does it drift as state grows?).
    slices: dict[int, list[float]] = {}
    for eid, t in sent.items():
        if eid in seen:
            slices.setdefault(int((t - wall_start) // 5), []).append((seen[eid] - t) * 1000)
    r["p50_ms_by_5s"] = {f"{k * 5}s": round(pct(sorted(v), 0.5), 1) for k, v in sorted(slices.items())}
    r["p99_ms_by_5s"] = {f"{k * 5}s": round(pct(sorted(v), 0.99), 1) for k, v in sorted(slices.items())}
    r["_samples"] = sorted((round(t - wall_start, 3), round((seen[eid] - t) * 1000, 1))
                           for eid, t in sent.items() if eid in seen)


def latency_run(m: dict[str, Any], work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from kafka import KafkaProducer

    from shian.rules.config import load

    config = load(m["config_path"])
    towns = list(config.townships)
    r: dict[str, Any] = {}
    sent: dict[str, float] = {}
    t0 = time.perf_counter()
    with kafka_broker().Broker() as broker:
        r["broker_start_seconds"] = round(time.perf_counter() - t0, 1)
        bootstrap = broker.bootstrap
        cli("topics", "--config", m["config_path"], "--broker", f"kafka://{bootstrap}",
            "--partitions", str(PARTITIONS), timeout=120)
        reader = Reader(bootstrap, work / "notices_live.tsv")
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
        proc = None
        try:
            proc, startup = _startup(producer, reader, m, config, towns, bootstrap, work)
            r["startup_seconds"] = round(startup, 2) if startup is not None else None
            if startup is None:
                r["error"] = "the live worker raised no notice for the waiting event"
                r["worker_log_tail"] = tail(work / "worker-live.log")
                return r
            time.sleep(2.0)  # let the first snapshot and the wall-clock timer settle
            before = (proc_cpu(proc.pid), proc_cpu(broker.proc.pid), system_busy())
            sent, wall_start = _feed(producer, config, towns, args, r)
            _drain(reader, sent)
            after = (proc_cpu(proc.pid), proc_cpu(broker.proc.pid), system_busy())
            _cpu_shares(before, after, time.time() - wall_start, r)
        finally:
            if proc is not None:
                stop_process(proc)
            reader.close()
            producer.close()
        _latency_figures(sent, first_read(reader.rows()), wall_start, r)
        if r["notices_missing"]:
            r["worker_log_tail"] = tail(work / "worker-live.log")
    return r


# ---------------------------------------------------------------------------------------

def report_lines(r: dict[str, Any]) -> list[str]:
    g = r["data"]
    lines = [
        f"shian Kafka benchmark: {g['lines']:,} lines ({g['file_mb']} MB), {g['townships']} townships, "
        f"seed {g['seed']}, {PARTITIONS} partitions, {r['cpus']} CPUs, code {r['code']['commit']}"
        + (" + local changes to the engine" if r["code"]["engine_modified"] else "")
        + (" (the code changed during the run!)" if r["code"].get("changed_during_run") else ""),
        f"  replay (in-process)      {r['replay_eps']:>10,} events/s  ({r['replay_seconds']} s, no broker running)",
        f"  ingest --until           {r['ingest_eps']:>10,} events/s  ({r['ingest_seconds']} s: {r['ingest_summary']})",
        f"  raw consume (aiokafka)   {r['raw_consume']['eps']:>10,} events/s  ({r['raw_consume']['records']:,} records, "
        f"{r['raw_consume']['seconds']} s)",
    ]
    lines += _worker_lines(r)
    loads = r.get("loadavg_1min", {})
    if loads and max(loads.values()) > 0.5 * (r["cpus"] or 1):
        lines.append(f"  NOTE: the machine was busy (1-min load before the steps: {loads}); figures are noisy")
    lines += _latency_lines(r["latency"])
    p = r.get("profile")
    if p:
        lines.append(f"  profiled worker (cProfile, main thread): {p.get('outcome')}, first→last notice "
                     f"{p.get('first_to_last_notice_s')} s; {p.get('profile_text', p.get('error'))}")
    return lines


def _worker_lines(r: dict[str, Any]) -> list[str]:
    """Step 2 of the report: the event-time worker, its stop and its restart."""
    w, lat = r["worker_event_time"], r["latency"]
    lines: list[str] = []
    if r.get("worker_eps"):
        lines.append(f"  worker --event-time      {r['worker_eps']:>10,} events/s  (first→last notice "
                     f"{w['first_to_last_notice_s']} s; = {r['worker_share']:.3f} × min(raw, replay); "
                     f"target ≥ {SHARE_TARGET})")
        if r.get("worker_eps_minus_startup"):
            lines.append(f"    spawn→last notice {w['spawn_to_last_notice_s']} s − start-up {lat.get('startup_seconds')} s"
                         f" → {r['worker_eps_minus_startup']:,} events/s; spawn→first notice "
                         f"{w['startup_to_first_notice_s']} s")
    else:
        lines.append(f"  worker --event-time      no figure: {w['outcome']}")
    n = w["notices"]
    lines.append(f"    notices: {n['distinct']:,} distinct ({n['duplicates']} repeats) of {r['expected_notices']:,} "
                 f"from replay; outcome: {w['outcome']}")
    lines.append(f"    SIGTERM at the end: exit {w.get('exit_code')} after {w.get('stop_seconds')} s; "
                 f"offsets all committed: {w.get('all_committed')} (committed {w.get('committed_offsets')}, "
                 f"end {w.get('end_offsets')})")
    rs = w.get("restart")
    if rs:
        lines.append(f"    restarted worker (same group, state from the changelog): redelivered {rs.get('redelivered')} "
                     f"events, {rs.get('new_notices')} new notices (its stop report: {rs.get('stop_report')})")
    if r.get("notice_rule_differences"):
        lines.append("    by rule, worker ≠ replay: " + ", ".join(
            f"{k} {v[0]} vs {v[1]}" for k, v in r["notice_rule_differences"].items()))
    cpu = w.get("cpu_seconds", {})
    if cpu:
        lines.append(f"    CPU seconds: worker {cpu.get('worker')} (main thread {cpu.get('worker_main_thread')}, "
                     f"other threads {cpu.get('worker_other_threads')}), broker {cpu.get('broker')}, "
                     f"over {w['wall_seconds']} s wall")
    if r.get("worker_eps_per_main_thread_cpu_second"):
        lines.append(f"    per CPU second of the worker's event-loop thread: {r['worker_eps_per_main_thread_cpu_second']:,} "
                     f"events (a whole core, never waiting, would give that; "
                     f"{r['worker_eps_per_main_thread_cpu_second'] / min(r['raw_consume']['eps'], r['replay_eps']):.3f} × min)")
    if cpu.get("whole_machine") is not None:
        lines.append(f"    machine: {cpu['whole_machine']} CPU s busy in all ({r['cpus']} CPUs × {w['wall_seconds']} s), "
                     f"{cpu['everything_else']} of them by processes outside this benchmark")
    return lines


def _latency_lines(lat: dict[str, Any]) -> list[str]:
    """Step 3 of the report: the live worker's start-up and notice latency."""
    lines: list[str] = []
    if "startup_seconds" in lat:
        lines.append(f"  worker start-up (live)   {lat['startup_seconds']} s  (spawn → notice of a waiting event)")
    if lat.get("p50_ms") is not None:
        lines.append(f"  notice latency (live)    p50 {lat['p50_ms']} ms, p90 {lat['p90_ms']} ms, p99 {lat['p99_ms']} ms, "
                     f"max {lat['max_ms']} ms over {lat['notices_matched']:,} notices "
                     f"({lat['notices_missing']} missing) at {lat['achieved_rate']:,} events/s for {lat['send_seconds']} s "
                     f"(target p99 < {P99_TARGET_MS:g} ms)")
        lines.append(f"    worker CPU {lat.get('worker_cpu_share')} of a core, broker {lat.get('broker_cpu_share')}, "
                     f"machine {lat.get('machine_busy_cpus')} CPUs busy; "
                     f"p99 by 5 s: {lat.get('p99_ms_by_5s')}")
    elif lat:
        lines.append(f"  notice latency (live)    no figure: {lat.get('error') or lat}")
    return lines


def target_rows(r: dict[str, Any]) -> list[Any]:
    """The report as ``bench/targets.py`` rows."""
    Target = targets().Target
    w, lat = r["worker_event_time"], r["latency"]
    floor = f"min(raw consume {r['raw_consume']['eps']:,}, replay {r['replay_eps']:,}) events/s"
    share = r.get("worker_share")
    rows = [
        Target("kafka", "worker --event-time events/s", f"{r['worker_eps']:,}" if r.get("worker_eps") else w["outcome"],
               floor, f"{share:.2f}" if share else "", f"≥ {SHARE_TARGET}", bool(share and share >= SHARE_TARGET)),
    ]
    n = w["notices"]
    rows.append(Target("kafka", "notices out / expected (replay)", f"{n['distinct']:,} / {r['expected_notices']:,}, "
                       f"{n['duplicates']} repeats", "", "", "= replay's",
                       n["distinct"] == r["expected_notices"] and not r.get("notice_rule_differences")))
    rows.append(Target("kafka", "offsets all committed after SIGTERM", str(w.get("all_committed")), "", "", "True",
                       w.get("all_committed") is True))
    rs = w.get("restart") or {}
    rows.append(Target("kafka", "events redelivered to a restarted worker", str(rs.get("redelivered")), "", "", "0",
                       rs.get("redelivered") == 0 and rs.get("new_notices") == 0))
    if lat.get("p99_ms") is not None:
        rows.append(Target("kafka", f"notice latency p99 at {lat['achieved_rate']:,.0f} events/s",
                           f"{lat['p99_ms']} ms (p50 {lat['p50_ms']}, max {lat['max_ms']}, {lat['notices_missing']} missing)",
                           "", "", f"< {P99_TARGET_MS:g} ms", lat["p99_ms"] < P99_TARGET_MS and not lat["notices_missing"]))
    elif lat:
        rows.append(Target("kafka", "notice latency p99", f"no figure: {lat.get('error')}", "", "",
                           f"< {P99_TARGET_MS:g} ms", False))
    rows.append(Target("kafka", "shian ingest --until lines/s (ratio: bench/ingest_bench.py)", f"{r['ingest_eps']:,}"))
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=None, help="lines to generate (about; default 200,000, --quick 50,000)")
    ap.add_argument("--quick", action="store_true", help="50,000 events and a 10 s latency run (a few minutes)")
    ap.add_argument("--json", type=Path, help="write the target rows (bench/targets.py) to this file")
    ap.add_argument("--townships", type=int, default=24)
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument("--out", type=Path, default=DIR / "out", help="work folder (default bench/out/)")
    ap.add_argument("--rate", type=float, default=1000.0, help="events/s of the latency run")
    ap.add_argument("--seconds", type=float, default=None, help="length of the latency run (default 30, --quick 10)")
    ap.add_argument("--unqualified-share", type=float, default=0.1, help="share of the latency feed that is 不合格")
    ap.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                    help="profile the event-time worker (auto: when it misses the target, not with --quick)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="most seconds the event-time worker may take")
    ap.add_argument("--idle-timeout", type=float, default=120.0, help="give up after this long without a new notice")
    ap.add_argument("--skip-latency", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child", choices=("profile-worker",), help=argparse.SUPPRESS)
    ap.add_argument("--config-file", help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    ap.add_argument("--prof-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.events is None:
        args.events = 50_000 if args.quick else 200_000
    if args.seconds is None:
        args.seconds = 10.0 if args.quick else 30.0
    return args


class Phases:
    """The 1-minute load before each step, printed as the step starts."""

    def __init__(self, r: dict[str, Any]) -> None:
        self.loads: dict[str, float] = r.setdefault("loadavg_1min", {})

    def __call__(self, name: str) -> None:
        self.loads[name] = round(os.getloadavg()[0], 2)
        print(f"{name} … (load {self.loads[name]})", flush=True)


def ingest_and_raw(bootstrap: str, m: dict[str, Any], r: dict[str, Any], phase: Phases) -> None:
    """Step 1: topics, ``shian ingest --until``, then a bare consumer over the whole topic."""
    secs, _ = cli("topics", "--config", m["config_path"], "--broker", f"kafka://{bootstrap}",
                  "--partitions", str(PARTITIONS), timeout=120)
    r["topics_seconds"] = round(secs, 2)
    phase("ingest")
    secs, done = cli("ingest", m["events_path"], "--config", m["config_path"], "--broker",
                     f"kafka://{bootstrap}", "--until", UNTIL_TEXT, "--no-progress", timeout=3600)
    r["ingest_seconds"] = round(secs, 2)
    r["ingest_summary"] = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    r["ingest_eps"] = round(m["lines"] / secs)
    print(f"  {r['ingest_eps']:,} lines/s ({secs:.1f} s)", flush=True)
    phase("raw consume")
    r["raw_consume"] = raw_consume(bootstrap)
    print(f"  {r['raw_consume']['eps']:,} events/s", flush=True)


def worker_figures(r: dict[str, Any], replay_notices: dict[str, int]) -> None:
    """Step 2's rates: worker events/s, per main-thread CPU second, share of min(raw, replay)."""
    w = r["worker_event_time"]
    records = r["raw_consume"]["records"]
    if w["outcome"] == "done" and w.get("first_to_last_notice_s"):
        r["worker_eps"] = round(records / w["first_to_last_notice_s"])
    if w["outcome"] == "done" and w["cpu_seconds"].get("worker_main_thread"):
        # Records per CPU second of the worker's event-loop thread (start-up included): the
        # rate a whole core with no waiting would give — less sensitive to other load.
        r["worker_eps_per_main_thread_cpu_second"] = round(records / w["cpu_seconds"]["worker_main_thread"])
    base = min(r["raw_consume"]["eps"], r["replay_eps"])
    r["worker_share"] = round(r["worker_eps"] / base, 4) if r.get("worker_eps") else None
    worker_rules = w["notices"]["by_rule"]
    r["notice_rule_differences"] = dict(sorted(
        (k, (worker_rules.get(k, 0), replay_notices.get(k, 0)))
        for k in set(worker_rules) | set(replay_notices) if worker_rules.get(k, 0) != replay_notices.get(k, 0)))


def broker_a(m: dict[str, Any], r: dict[str, Any], rep: dict[str, Any], work: Path,
             args: argparse.Namespace, phase: Phases) -> None:
    """Steps 1 and 2 on broker A."""
    want = r["expected_notices"]
    t0 = time.perf_counter()
    with kafka_broker().Broker() as broker:
        bootstrap = broker.bootstrap
        r["broker_start_seconds"] = round(time.perf_counter() - t0, 1)
        ingest_and_raw(bootstrap, m, r, phase)
        phase("worker --event-time")
        w = r["worker_event_time"] = worker_run(bootstrap, m, want, work, args, broker.proc.pid)
        worker_figures(r, rep["notices"])
        print(f"  {w['outcome']}: {r.get('worker_eps')} events/s "
              f"({w['notices']['distinct']:,}/{want:,} notices)", flush=True)
        if args.profile == "always" or (args.profile == "auto" and not args.quick and (r["worker_share"] or 0) < SHARE_TARGET):
            phase("profiled worker")
            r["profile"] = profile_run(bootstrap, m, want, work, args.out, args)


def missed_lines(r: dict[str, Any]) -> list[str]:
    """A ``TARGET MISSED`` line per missed target."""
    lat, w = r["latency"], r["worker_event_time"]
    lines = []
    if not r.get("worker_share") or r["worker_share"] < SHARE_TARGET:
        lines.append(f"TARGET MISSED: worker {r.get('worker_eps')} events/s is {r.get('worker_share')} × min(raw consume, "
                     f"replay) (target ≥ {SHARE_TARGET})")
    if not w.get("all_committed"):
        lines.append("TARGET MISSED: after the SIGTERM not every partition's offset was committed up to its end")
    if lat.get("p99_ms") is None or lat["p99_ms"] >= P99_TARGET_MS or lat.get("notices_missing"):
        lines.append(f"TARGET MISSED: notice latency p99 {lat.get('p99_ms')} ms (target < {P99_TARGET_MS:g} ms)"
                     + (f", {lat['notices_missing']} notices never read" if lat.get("notices_missing") else ""))
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child == "profile-worker":
        return child_profile_worker(args.config_file, args.bootstrap, args.data_dir, args.prof_file)

    rb = replay_bench()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    m = rb.dataset(args.out, args.events, args.townships, args.seed, False)
    print(f"data: {m['events_path']} ({'reused' if m['reused'] else f'generated in {time.perf_counter() - t0:.0f} s'})",
          flush=True)
    code = rb.code_version()
    r: dict[str, Any] = {
        "data": {"events_path": m["events_path"], "config_path": m["config_path"], "lines": m["lines"],
                 "file_mb": round(m["bytes"] / 2**20, 1), "townships": args.townships, "seed": args.seed},
        "partitions": PARTITIONS, "python": sys.version.split()[0], "platform": platform.platform(),
        "cpus": os.cpu_count(), "code": code,
        "targets": {"worker_share_of_min_raw_replay": SHARE_TARGET,
                    "p99_ms": P99_TARGET_MS},
    }
    phase = Phases(r)

    phase("replay")
    rep = rb.run_child("replay", m)
    r["replay_seconds"] = round(rep["seconds"], 2)
    r["replay_eps"] = round(rep["lines"] / rep["seconds"])
    r["replay_notices_by_rule"] = rep["notices"]
    r["expected_notices"] = sum(rep["notices"].values())
    print(f"  {r['replay_eps']:,} events/s, {r['expected_notices']:,} notices", flush=True)

    work = Path(tempfile.mkdtemp(prefix="shian-kafka-bench-"))
    try:
        phase("broker A")
        broker_a(m, r, rep, work, args, phase)
        r["latency"] = {}
        if not args.skip_latency:
            phase(f"latency: broker B, live worker, {args.rate:g} events/s for {args.seconds:g} s")
            r["latency"] = latency_run(m, work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lat, w = r["latency"], r["worker_event_time"]
    lat.pop("_samples", None)
    if lat.get("startup_seconds") and w.get("spawn_to_last_notice_s"):
        net = w["spawn_to_last_notice_s"] - lat["startup_seconds"]
        if net > 0:
            r["worker_eps_minus_startup"] = round(r["raw_consume"]["records"] / net)
    if rb.code_version() != code:
        code["changed_during_run"] = True

    print("\n".join(report_lines(r) + missed_lines(r)))
    targets().write_rows(args.json, target_rows(r))
    (args.out / "kafka_bench.json").write_text(json.dumps(r, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"report: {args.out / 'kafka_bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
