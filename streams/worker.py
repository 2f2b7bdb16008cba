"""``shian worker``: the rules on Kafka, one engine per ``events`` partition (faust-streaming).

Each partition's engine owns that partition's townships (:mod:`shian.streams.partitioned`).
Faust runs the consumer group, the table ``shian-engines`` (changelog topic
``shian-shian-engines-changelog``, partition p holding the state of ``events`` partition p) and
its recovery; the records of ``events`` reach the engines in fetched batches
(:mod:`shian.streams.faust_batch`), not one by one through an agent.

State: every 10,000 events or 5 seconds of a partition (and at every clock tick) the engine
is snapshotted into the table, split into chunks under Kafka's message size. Two slots take
turns, and the head key naming the complete one is written last, so a worker killed in the
middle of a snapshot leaves the previous one intact. Order of the writes: the notices raised
so far are flushed, then the snapshot is written, then the partition's offset is committed
(Faust flushes the producer before a commit), so neither the snapshot nor the committed
offset runs ahead of what was published. A worker that crashes, or a new one on an empty
data folder, recovers the table from its changelog and is redelivered the events after the
snapshot. Those may raise notices again — with the same ids (at-least-once; a notice's id
identifies it) — never different ones. Saved state this version cannot read stops the worker
(:class:`~shian.rules.engine.SnapshotError`) instead of starting afresh.

Clocks: with ``--event-time`` each partition follows the stamps and ticks ``shian ingest``
sends (replay's clock); otherwise the wall clock drives the deadlines, checked every second,
and a restarted worker fires the deadlines it missed, once (they are in the snapshot).
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

from shian.notifiers.routing import recipients
from shian.rules.config import Config
from shian.rules.engine import Engine, SnapshotError
from shian.rules.events import Rejected, Validator
from shian.rules.notice import Notice
from shian.rules.timeutil import parse_time

from .kafka import CLOCK_HEADER, EVENTS, NOTICES, REJECTS, TICK_HEADER, bootstrap
from .faust_batch import install
from .partitioned import PartitionRunner

log = logging.getLogger("shian.worker")
CHUNK = 512 * 1024
SNAPSHOT_EVERY = 10_000
SNAPSHOT_SECONDS = 5.0
SESSION_TIMEOUT = 10.0  # a killed worker's partitions move to the others after this long


def build_app(config: Config, broker: str, partitions: int, *, event_time: bool, data_dir: str,
              app_id: str = "shian") -> Any:
    import faust

    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap(broker)}",
        store="memory://",
        datadir=data_dir,
        topic_partitions=partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        web_enabled=False,
        autodiscover=False,
        broker_commit_every=SNAPSHOT_EVERY,
        broker_commit_interval=1.0,
        producer_max_request_size=2 * CHUNK,
        stream_wait_empty=False,
        broker_session_timeout=SESSION_TIMEOUT,
        broker_heartbeat_interval=SESSION_TIMEOUT / 4,
    )
    events = app.topic(EVENTS, key_serializer="raw", value_serializer="raw", partitions=partitions)
    table = app.Table("shian-engines", default=None, partitions=partitions, key_type=bytes, value_type=bytes)
    validator = Validator(config.known())
    runners: dict[int, PartitionRunner] = {}
    outbox: list[Notice] = []

    def runner_for(p: int) -> PartitionRunner:
        runner = runners.get(p)
        if runner is None:
            engine = None
            head = table.get(f"engine-{p}".encode())
            if head:
                slot, chunks = head.decode().split(":")
                blob = b"".join(table[f"engine-{p}-{slot}-{i}".encode()] for i in range(int(chunks)))
                try:
                    engine = Engine.restore(blob, config, recipients, outbox.append)
                except SnapshotError as e:
                    log.critical("分区 %d 的已保存状态无法恢复，工作进程退出（不会从头重算而重复发出通知）：%s", p, e)
                    raise
                log.info("partition %d: state restored (%d bytes)", p, len(blob))
            runner = runners[p] = PartitionRunner(config, p, partitions, outbox.append, engine=engine)
        return runner

    def save(p: int, runner: PartitionRunner) -> None:
        """Write the snapshot's chunks into the slot the head does not name, then move the
        head: a worker killed half-way through leaves the previous snapshot whole."""
        blob = runner.engine.snapshot()
        chunks = [blob[i:i + CHUNK] for i in range(0, len(blob), CHUNK)] or [b""]
        head = table.get(f"engine-{p}".encode())
        slot = "b" if head and head.startswith(b"a:") else "a"
        for i, chunk in enumerate(chunks):
            put(p, f"engine-{p}-{slot}-{i}".encode(), chunk)
        put(p, f"engine-{p}".encode(), f"{slot}:{len(chunks)}".encode())

    def put(p: int, key: bytes, value: bytes) -> None:
        """A table write on partition ``p`` of the changelog, outside Faust's stream iteration
        (which would take the partition from the current event)."""
        table.data[key] = value
        table.send_changelog(p, key, value)

    async def reject(record: Any, reason: str) -> None:
        out = {"source": f"{EVENTS}/{record.partition}", "line": record.offset,
               "raw": (record.value or b"").decode("utf-8", "replace"), "reason": reason}
        await app.producer.send(REJECTS, b"worker", json.dumps(out, ensure_ascii=False).encode(),
                                partition=None, timestamp=None, headers=None)

    async def flush_outbox() -> None:
        send = app.producer.send
        for n in outbox:
            await send(NOTICES, n.key.encode(), json.dumps(n.to_json(), ensure_ascii=False).encode(),
                       partition=None, timestamp=None, headers=None)
        outbox.clear()

    async def checkpoint(tp: Any, runner: PartitionRunner, state: list[Any]) -> None:
        """Notices out, then the snapshot, then the offset (Faust flushes before it commits)."""
        await flush_outbox()
        await app.producer.flush()
        save(tp.partition, runner)
        await app.consumer._commit_offsets({tp: state[1] + 1})
        state[0], state[2] = 0, time.monotonic()

    @app.on_partitions_revoked.connect
    async def hand_over(sender: Any, revoked: Any, **_: Any) -> None:
        """A partition that moves to another worker is that worker's: a last snapshot and
        commit here, so that it starts where this one stopped (if that fails, it is only
        redelivered more events: at least once)."""
        for tp in revoked:
            if tp.topic != EVENTS:
                continue
            runner, state = runners.pop(tp.partition, None), progress.pop(tp.partition, None)
            if runner is not None and state is not None and state[0]:
                try:
                    await checkpoint(tp, runner, state)
                except Exception:  # the runtime's boundary: the next owner is redelivered the rest
                    log.warning("partition %d: no hand-over snapshot", tp.partition, exc_info=True)

    progress: dict[int, list[Any]] = {}  # partition → [events since the snapshot, last offset, saved at]

    async def on_batch(tp: Any, records: list[Any]) -> None:
        """One fetched batch of one ``events`` partition, in offset order (see FastConsumer)."""
        p = tp.partition
        runner = runner_for(p)
        state = progress.setdefault(p, [0, None, time.monotonic()])
        ticked = False
        for record in records:
            headers = dict(record.headers or ())
            tick = headers.get(TICK_HEADER)
            try:
                if tick is not None:
                    ticked = True
                    runner.tick(parse_time(record.value.decode(), config.tz))
                else:
                    ev = validator.from_json(record.value)
                    stamp = headers.get(CLOCK_HEADER)
                    if event_time and stamp:
                        runner.event(ev, parse_time(stamp.decode(), config.tz))
                    else:
                        runner.live_event(ev, datetime.now(config.tz))
            except Rejected as r:
                await reject(record, r.reason)
            except Exception as e:  # the runtime's boundary: the input is set aside, never lost
                log.exception("partition %d offset %d", p, record.offset)
                await reject(record, f"处理失败：{type(e).__name__}: {e}")
        state[0] += len(records)
        state[1] = records[-1].offset
        if runners.get(p) is not runner:  # handed over meanwhile: the new owner is redelivered the rest
            await flush_outbox()
            return
        if ticked or state[0] >= SNAPSHOT_EVERY or time.monotonic() - state[2] >= SNAPSHOT_SECONDS:
            await checkpoint(tp, runner, state)
        else:
            await flush_outbox()

    install(app, EVENTS, on_batch)
    app.topics.add(events)

    if not event_time:
        @app.timer(interval=1.0)
        async def wall_clock() -> None:
            """Deadlines on the wall clock, for every partition this worker owns — also those
            with no new event, so that a restarted worker fires what it missed, once."""
            if app.rebalancing or app.in_recovery:
                return
            now = datetime.now(config.tz)
            for tp in app.consumer.assignment():
                if tp.topic == EVENTS:
                    runner_for(tp.partition).tick(now)
            await flush_outbox()

    return app


def run_worker(config: Config, broker: str, partitions: int, *, event_time: bool, data_dir: str,
               loglevel: str = "warning") -> None:
    import faust

    app = build_app(config, broker, partitions, event_time=event_time, data_dir=data_dir)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
