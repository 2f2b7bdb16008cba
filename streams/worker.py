"""``shian worker``: the rules on Kafka, one engine per ``events`` partition (faust-streaming).

Each partition's engine owns that partition's townships (:mod:`shian.streams.partitioned`).
Faust runs the consumer group, the table ``shian-engines`` (changelog topic
``shian-shian-engines-changelog``, partition p holding the state of ``events`` partition p) and
its recovery; the records of ``events`` reach the engines in fetched batches
(:mod:`shian.streams.faust_batch`), not one by one through an agent.

State: every 10,000 events or 5 seconds of a partition (and at every clock tick) the engine
is snapshotted into the table, split into chunks under Kafka's message size. Two slots take
turns, and the head key naming the complete one (and its SHA-256, checked at load) is written
last, so a worker killed in the middle of a snapshot leaves the previous one intact. Order of the writes: the notices raised
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

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shian.notifiers.routing import recipients
from shian.rules.config import Config
from shian.rules.engine import Engine, SnapshotError
from shian.rules.events import REGISTER, Rejected, Validator
from shian.rules.notice import Notice
from shian.rules.records import Record
from shian.rules.timeutil import parse_time

from .kafka import CLOCK_HEADER, EVENTS, NOTICES, REJECTS, TICK_HEADER, bootstrap
from .faust_batch import install
from .partitioned import PartitionRunner

log = logging.getLogger("shian.worker")
CHUNK = 512 * 1024
SNAPSHOT_EVERY = 10_000
SNAPSHOT_SECONDS = 5.0
SESSION_TIMEOUT = 10.0  # a killed worker's partitions move to the others after this long


def faust_app(broker: str, partitions: int, data_dir: str, app_id: str) -> Any:
    """The Faust app: consumer group, in-memory table store recovered from its changelog,
    commits and heartbeats tuned for quick hand-overs (see the module docstring)."""
    import faust

    return faust.App(
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


class Snapshots:
    """Engine snapshots in the Faust table, in chunks under Kafka's message size, in two slots
    that take turns; the head key naming the complete slot, the number of chunks and the
    SHA-256 of the whole snapshot (``a:3:<hex>``) is written last.

    The digest is checked when a snapshot is loaded: a pickle with a flipped bit or a chunk
    replaced by another often loads without an error, as a state that is silently not the one
    saved. A head without a digest (written before it was added) is loaded unchecked."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def load(self, p: int) -> bytes | None:
        """Partition ``p``'s snapshot (None: there is none). Raises SnapshotError when a chunk
        is missing or the bytes are not those that were saved."""
        head = self.table.get(f"engine-{p}".encode())
        if not head:
            return None
        try:
            slot, chunks, *digest = head.decode().split(":")
            blob = b"".join(self.table[f"engine-{p}-{slot}-{i}".encode()] for i in range(int(chunks)))
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as e:
            raise SnapshotError(f"分区 {p} 的状态快照不完整（{head[:80]!r}）：{type(e).__name__}: {e}") from e
        if digest and hashlib.sha256(blob).hexdigest() != digest[0]:
            raise SnapshotError(f"分区 {p} 的状态快照校验失败：内容与保存时的 SHA-256 不符，快照已损坏")
        return blob

    def save(self, p: int, blob: bytes) -> None:
        """The chunks into the slot the head does not name, then the head: a worker killed
        half-way through leaves the previous snapshot whole."""
        chunks = [blob[i:i + CHUNK] for i in range(0, len(blob), CHUNK)] or [b""]
        head = self.table.get(f"engine-{p}".encode())
        slot = "b" if head and head.startswith(b"a:") else "a"
        for i, chunk in enumerate(chunks):
            self._put(p, f"engine-{p}-{slot}-{i}".encode(), chunk)
        self._put(p, f"engine-{p}".encode(), f"{slot}:{len(chunks)}:{hashlib.sha256(blob).hexdigest()}".encode())

    def _put(self, p: int, key: bytes, value: bytes) -> None:
        """A table write on partition ``p`` of the changelog, outside Faust's stream iteration
        (which would take the partition from the current event)."""
        self.table.data[key] = value
        self.table.send_changelog(p, key, value)


@dataclass
class Progress:
    """Of one partition: events since its snapshot, the last offset run, when it was saved."""
    since_snapshot: int = 0
    offset: int | None = None
    saved_at: float = field(default_factory=time.monotonic)


class PartitionWorker:
    """The engines of the partitions this worker owns, fed batch by batch; what they raise is
    published to ``notices`` before each snapshot, input they refuse to ``rejects``."""

    def __init__(self, app: Any, config: Config, partitions: int, *, event_time: bool,
                 snapshots: Snapshots) -> None:
        self.app, self.config, self.partitions, self.event_time = app, config, partitions, event_time
        self.snapshots = snapshots
        self.validator = Validator(config.known())
        self.runners: dict[int, PartitionRunner] = {}
        self.progress: dict[int, Progress] = {}
        self.outbox: list[Notice] = []

    def runner_for(self, p: int) -> PartitionRunner:
        runner = self.runners.get(p)
        if runner is None:
            engine = None
            try:
                blob = self.snapshots.load(p)
                if blob is not None:
                    engine = Engine.restore(blob, self.config, recipients, self.outbox.append)
            except SnapshotError as e:
                log.critical("分区 %d 的已保存状态无法恢复，工作进程退出（不会从头重算而重复发出通知）：%s", p, e)
                raise
            if blob is not None:
                log.info("partition %d: state restored (%d bytes)", p, len(blob))
            runner = self.runners[p] = PartitionRunner(self.config, p, self.partitions, self.outbox.append,
                                                       engine=engine)
        return runner

    async def reject(self, record: Any, reason: str) -> None:
        reject = Record(f"{EVENTS}/{record.partition}", record.offset, record.value or b"").reject(reason)
        await self.app.producer.send(REJECTS, b"worker", json.dumps(reject.to_json(), ensure_ascii=False).encode(),
                                     partition=None, timestamp=None, headers=None)

    async def flush_outbox(self) -> None:
        send = self.app.producer.send
        for n in self.outbox:
            await send(NOTICES, n.key.encode(), json.dumps(n.to_json(), ensure_ascii=False).encode(),
                       partition=None, timestamp=None, headers=None)
        self.outbox.clear()

    async def checkpoint(self, tp: Any, runner: PartitionRunner, state: Progress) -> None:
        """Notices out, then the snapshot, then the offset (Faust flushes before it commits)."""
        await self.flush_outbox()
        await self.app.producer.flush()
        self.snapshots.save(tp.partition, runner.engine.snapshot())
        await self.app.consumer._commit_offsets({tp: state.offset + 1})
        state.since_snapshot, state.saved_at = 0, time.monotonic()

    async def hand_over(self, revoked: Any) -> None:
        """A partition that moves to another worker is that worker's: a last snapshot and
        commit here, so that it starts where this one stopped (if that fails, it is only
        redelivered more events: at least once)."""
        for tp in revoked:
            if tp.topic != EVENTS:
                continue
            runner, state = self.runners.pop(tp.partition, None), self.progress.pop(tp.partition, None)
            if runner is not None and state is not None and state.since_snapshot:
                try:
                    await self.checkpoint(tp, runner, state)
                except Exception:  # the runtime's boundary: the next owner is redelivered the rest
                    log.warning("partition %d: no hand-over snapshot", tp.partition, exc_info=True)

    def _run(self, runner: PartitionRunner, record: Any) -> bool:
        """One record into its partition's engine; True for a clock tick. Raises Rejected."""
        headers = dict(record.headers or ())
        tick = headers.get(TICK_HEADER)
        if tick is not None:
            runner.tick(parse_time(record.value.decode(), self.config.tz))
            return True
        ev = self.validator.from_json(record.value)
        stamp = headers.get(CLOCK_HEADER)
        if self.event_time and stamp:
            runner.event(ev, parse_time(stamp.decode(), self.config.tz))
        elif self.event_time and ev.type == REGISTER:  # sent before the clock started: no stamp
            runner.event(ev, None)
        else:
            runner.live_event(ev, datetime.now(self.config.tz))
        return False

    async def on_batch(self, tp: Any, records: list[Any]) -> None:
        """One fetched batch of one ``events`` partition, in offset order (see FastConsumer)."""
        p = tp.partition
        runner = self.runner_for(p)
        state = self.progress.setdefault(p, Progress())
        ticked = False
        for record in records:
            try:
                ticked = self._run(runner, record) or ticked
            except Rejected as r:
                await self.reject(record, r.reason)
            except Exception as e:  # the runtime's boundary: the input is set aside, never lost
                log.exception("partition %d offset %d", p, record.offset)
                await self.reject(record, f"处理失败：{type(e).__name__}: {e}")
        state.since_snapshot += len(records)
        state.offset = records[-1].offset
        if self.runners.get(p) is not runner:  # handed over meanwhile: the new owner is redelivered the rest
            await self.flush_outbox()
            return
        if ticked or state.since_snapshot >= SNAPSHOT_EVERY or time.monotonic() - state.saved_at >= SNAPSHOT_SECONDS:
            await self.checkpoint(tp, runner, state)
        else:
            await self.flush_outbox()

    async def wall_clock(self) -> None:
        """Deadlines on the wall clock, for every partition this worker owns — also those
        with no new event, so that a restarted worker fires what it missed, once."""
        app = self.app
        if app.rebalancing or app.in_recovery:
            return
        now = datetime.now(self.config.tz)
        for tp in app.consumer.assignment():
            if tp.topic == EVENTS:
                self.runner_for(tp.partition).tick(now)
        await self.flush_outbox()


def build_app(config: Config, broker: str, partitions: int, *, event_time: bool, data_dir: str,
              app_id: str = "shian") -> Any:
    """The worker's Faust app: batches of ``events`` into a :class:`PartitionWorker`, its
    snapshots in the table ``shian-engines``, the wall clock every second unless on event time."""
    app = faust_app(broker, partitions, data_dir, app_id)
    events = app.topic(EVENTS, key_serializer="raw", value_serializer="raw", partitions=partitions)
    table = app.Table("shian-engines", default=None, partitions=partitions, key_type=bytes, value_type=bytes)
    worker = PartitionWorker(app, config, partitions, event_time=event_time, snapshots=Snapshots(table))

    @app.on_partitions_revoked.connect
    async def hand_over(sender: Any, revoked: Any, **_: Any) -> None:
        await worker.hand_over(revoked)

    install(app, EVENTS, worker.on_batch)
    app.topics.add(events)

    if not event_time:
        @app.timer(interval=1.0)
        async def wall_clock() -> None:
            await worker.wall_clock()

    return app


def run_worker(config: Config, broker: str, partitions: int, *, event_time: bool, data_dir: str,
               loglevel: str = "warning") -> None:
    import faust

    app = build_app(config, broker, partitions, event_time=event_time, data_dir=data_dir)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
