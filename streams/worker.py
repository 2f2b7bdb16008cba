"""``shian worker``: the rules on Kafka, one engine per ``events`` partition (faust-streaming).

Each partition's engine owns that partition's townships (:mod:`shian.streams.partitioned`).
Faust runs the consumer group, the table ``shian-engines`` (changelog topic
``shian-shian-engines-changelog``, partition p holding the state of ``events`` partition p) and
its recovery; the records of ``events`` reach the engines in fetched batches
(:mod:`shian.streams.faust_batch`), not one by one through an agent.

State: every 10,000 events or 5 seconds of a partition (and at every clock tick) the worker
checkpoints it into the table: a *delta* — the records the engine ran since the previous
checkpoint, with the clock each ran at — or, every 100,000 entries, a full snapshot of the
engine (:mod:`shian.streams.snapshots`: chunks under Kafka's message size, two slots, the head
naming the pieces and their SHA-256 written last, so a worker killed in the middle leaves the
previous state intact). A restarted worker loads the full snapshot and runs the deltas again
with their notices dropped. Order of the writes: the notices raised so far are sent, then the
snapshot, then — in the background, while the next batches run — the producer is flushed
and the partition's offset committed, so neither the snapshot nor the committed offset runs
ahead of what was published. A worker that crashes, or a new one on an empty data folder,
recovers the table from its changelog and is redelivered the events after the last
checkpoint. Those may raise notices again — with the same ids (at-least-once; a notice's id
identifies it) — never different ones. Saved state this version cannot read stops the worker
(:class:`~shian.rules.engine.SnapshotError`) instead of starting afresh.

A clean stop (SIGTERM) ends the batch under way, takes a full snapshot of every partition
and commits its offset before Faust stops the consumer: the next owner is redelivered nothing.

Clocks: with ``--event-time`` each partition follows the stamps and ticks ``shian ingest``
sends (replay's clock); otherwise the wall clock drives the deadlines, checked every second,
and a restarted worker fires the deadlines it missed, once (they are in the snapshot).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shian.notifiers.routing import recipients
from shian.rules.config import Config
from shian.rules.engine import Engine, SnapshotError
from shian.rules.events import REGISTER, Event, Rejected, Validator
from shian.rules.notice import Notice
from shian.rules.records import Record

from .faust_batch import BatchApp, install
from .kafka import CLOCK_HEADER, EVENTS, NOTICES, REJECTS, TICK_HEADER, ClockDecoder, bootstrap
from .partitioned import PartitionRunner
from .snapshots import (CHUNK, EVENT, LIVE, TICK, Entry, Snapshots, decode_delta, encode_delta, from_instant,
                        instant)

log = logging.getLogger("shian.worker")
SNAPSHOT_EVERY = 10_000
SNAPSHOT_SECONDS = 5.0
FULL_EVERY = 100_000  # entries in deltas after a full snapshot before the next full one
MAX_DELTAS = 32       # deltas after a full snapshot, at most
SESSION_TIMEOUT = 10.0  # a killed worker's partitions move to the others after this long


def faust_app(broker: str, partitions: int, data_dir: str, app_id: str) -> Any:
    """The Faust app: consumer group, in-memory table store recovered from its changelog,
    commits and heartbeats tuned for quick hand-overs (see the module docstring)."""
    return BatchApp(
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


@dataclass
class Partition:
    """One ``events`` partition this worker owns: its engine, the input it ran since the last
    checkpoint (the next delta), and where its saved state stands."""
    tp: Any
    runner: PartitionRunner
    journal: list[Entry] = field(default_factory=list)
    since_snapshot: int = 0      # records since the last checkpoint
    offset: int | None = None    # the last offset run
    saved_at: float = field(default_factory=time.monotonic)
    has_full: bool = False       # a full snapshot is saved (deltas can follow it)
    since_full: int = 0          # entries in the deltas after it
    deltas: int = 0
    received: int = 0            # records handed to this worker, for its stop report


class PartitionWorker:
    """The engines of the partitions this worker owns, fed batch by batch; what they raise is
    published to ``notices`` before each checkpoint, input they refuse to ``rejects``.

    A checkpoint sends the notices and the snapshot (a delta, or a full one every
    ``FULL_EVERY`` entries), then — in the background, while the next batches run — flushes
    the producer and commits the offset."""

    def __init__(self, app: Any, config: Config, partitions: int, *, event_time: bool,
                 snapshots: Snapshots) -> None:
        self.app, self.config, self.partitions, self.event_time = app, config, partitions, event_time
        self.snapshots = snapshots
        self.validator = Validator(config.known())
        self.clock_of = ClockDecoder(config.tz)
        self.parts: dict[int, Partition] = {}
        self.outbox: list[Notice] = []
        self.busy = asyncio.Lock()   # held while a batch runs: a stop waits for it
        self.stopping = False
        self._to_commit: dict[Any, int] = {}
        self._committer: asyncio.Future | None = None

    def part_for(self, tp: Any) -> Partition:
        part = self.parts.get(tp.partition)
        if part is None:
            part = self.parts[tp.partition] = self._restore(tp)
        return part

    def _restore(self, tp: Any) -> Partition:
        """A partition's engine from its saved state (full snapshot, then the deltas run again
        with their notices dropped: those were published before the delta was saved)."""
        p = tp.partition
        try:
            saved = self.snapshots.load(p)
            if saved is None:
                return Partition(tp, PartitionRunner(self.config, p, self.partitions, self.outbox.append))
            engine = Engine.restore(saved.base, self.config, recipients, self.outbox.append)
            runner = PartitionRunner(self.config, p, self.partitions, self.outbox.append, engine=engine)
            entries = [e for i, d in enumerate(saved.deltas, 1) for e in decode_delta(d, f"分区 {p} 第 {i} 个")]
        except SnapshotError as e:
            log.critical("分区 %d 的已保存状态无法恢复，工作进程退出（不会从头重算而重复发出通知）：%s", p, e)
            raise
        published = len(self.outbox)
        for kind, clock, value in entries:
            self._rerun(runner, kind, clock, value)
        del self.outbox[published:]
        log.info("partition %d: state restored (%d bytes, %d deltas of %d entries run again)",
                 p, len(saved.base), len(saved.deltas), len(entries))
        return Partition(tp, runner, has_full=True, since_full=len(entries), deltas=len(saved.deltas))

    def _rerun(self, runner: PartitionRunner, kind: str, clock: bytes | int | None, value: bytes) -> None:
        """One saved entry run again as it ran the first time (a refusal then is one now)."""
        try:
            at = self.clock_of(clock) if isinstance(clock, bytes) else None if clock is None else from_instant(clock, self.config.tz)
            apply(runner, kind, at, None if kind == TICK else self.validator.from_json(value))
        except Rejected:
            pass
        except Exception:  # the runtime's boundary, as on_batch: what failed then fails again
            log.debug("an entry failed again while its delta was run", exc_info=True)

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

    async def checkpoint(self, part: Partition, *, full: bool = False) -> None:
        """Notices out, then the snapshot, then (in the background) flush and commit: neither
        the snapshot nor the committed offset runs ahead of what was published."""
        await self.flush_outbox()
        self._save(part, full)
        part.since_snapshot, part.saved_at = 0, time.monotonic()
        if part.offset is not None:
            self._commit_soon(part.tp, part.offset + 1)

    def _save(self, part: Partition, full: bool) -> None:
        p = part.tp.partition
        if full or not part.has_full or part.since_full + len(part.journal) >= FULL_EVERY or part.deltas >= MAX_DELTAS:
            self.snapshots.save(p, part.runner.engine.snapshot())
            part.has_full, part.since_full, part.deltas = True, 0, 0
        elif part.journal:
            part.deltas = self.snapshots.save_delta(p, encode_delta(part.journal))
            part.since_full += len(part.journal)
        part.journal = []

    def _commit_soon(self, tp: Any, offset: int) -> None:
        """Commit ``offset`` of ``tp`` in the background, after what was sent so far: one task
        commits the latest offsets of every partition, round after round, so that a slow
        commit never holds up the batches (a failure is raised here, one checkpoint late)."""
        self._to_commit[tp] = offset
        task = self._committer
        if task is None or task.done():
            if task is not None:
                task.result()
            self._committer = asyncio.ensure_future(self._commit_rounds())

    async def _commit_rounds(self) -> None:
        while self._to_commit:
            offsets, self._to_commit = self._to_commit, {}
            # Faust's commit flushes the producer first (and logs a commit it could not make).
            await self.app.consumer._commit_offsets(offsets)

    async def settle(self) -> None:
        """Wait until every offset registered so far is committed."""
        task = self._committer
        if task is not None:
            await task
            if self._committer is task:
                self._committer = None

    async def hand_over(self, revoked: Any) -> None:
        """A partition that moves to another worker is that worker's: a last snapshot and
        commit here, so that it starts where this one stopped (if that fails, it is only
        redelivered more events: at least once)."""
        for tp in revoked:
            if tp.topic != EVENTS:
                continue
            part = self.parts.pop(tp.partition, None)
            try:
                if part is not None and (part.since_snapshot or part.journal):
                    await self.checkpoint(part)
                await self.settle()
            except Exception:  # the runtime's boundary: the next owner is redelivered the rest
                log.warning("partition %d: no hand-over snapshot", tp.partition, exc_info=True)

    async def stop(self) -> None:
        """A clean stop (SIGTERM): the batch under way ends, then every partition gets a full
        snapshot and its offset committed, so the next owner is redelivered nothing."""
        self.stopping = True
        async with self.busy:
            try:
                for part in list(self.parts.values()):
                    if part.since_snapshot or part.journal or part.deltas:
                        await self.checkpoint(part, full=True)
                await self.settle()
                await self.app.producer.flush()
            except Exception:  # the runtime's boundary: Faust still stops; the next owner is redelivered more
                log.exception("no clean-stop checkpoint")
                return
        log.info("stopped cleanly: %s", ", ".join(
            f"partition {p}: {part.received} records received, offset {part.offset} committed"
            for p, part in sorted(self.parts.items())) or "no partition")

    def _run(self, part: Partition, record: Any) -> bool:
        """One record into its partition's engine, journaled for the next delta; True for a
        clock tick. Raises Rejected (and ValueError for an unreadable clock)."""
        tick = stamp = None
        for key, value in record.headers or ():
            if key == CLOCK_HEADER:
                stamp = value
            elif key == TICK_HEADER:
                tick = value
        if tick is not None:
            entry: Entry = (TICK, record.value, b"")
            at: datetime | None = self.clock_of(record.value)
            ev = None
        else:
            ev = self.validator.from_json(record.value)
            if self.event_time and stamp:
                entry, at = (EVENT, stamp, record.value), self.clock_of(stamp)
            elif self.event_time and ev.type == REGISTER:  # sent before the clock started: no stamp
                entry, at = (EVENT, None, record.value), None
            else:
                at = datetime.now(self.config.tz)
                entry = (LIVE, instant(at), record.value)
        part.journal.append(entry)
        apply(part.runner, entry[0], at, ev)
        return ev is None

    async def on_batch(self, tp: Any, records: list[Any]) -> None:
        """One fetched batch of one ``events`` partition, in offset order (see BatchConsumer)."""
        if self.stopping:  # not run, not committed: the next owner gets it
            return
        async with self.busy:
            part = self.part_for(tp)
            ticked = False
            for record in records:
                try:
                    ticked = self._run(part, record) or ticked
                except Rejected as r:
                    await self.reject(record, r.reason)
                except Exception as e:  # the runtime's boundary: the input is set aside, never lost
                    log.exception("partition %d offset %d", tp.partition, record.offset)
                    await self.reject(record, f"处理失败：{type(e).__name__}: {e}")
            part.since_snapshot += len(records)
            part.received += len(records)
            part.offset = records[-1].offset
            if self.parts.get(tp.partition) is not part:  # handed over meanwhile: the new owner is redelivered the rest
                await self.flush_outbox()
                return
            if ticked or part.since_snapshot >= SNAPSHOT_EVERY or time.monotonic() - part.saved_at >= SNAPSHOT_SECONDS:
                await self.checkpoint(part)
            else:
                await self.flush_outbox()

    async def wall_clock(self) -> None:
        """Deadlines on the wall clock, for every partition this worker owns — also those
        with no new event, so that a restarted worker fires what it missed, once."""
        app = self.app
        if app.rebalancing or app.in_recovery or self.stopping:
            return
        now = datetime.now(self.config.tz)
        async with self.busy:
            for tp in app.consumer.assignment():
                if tp.topic == EVENTS:
                    part = self.part_for(tp)
                    part.journal.append((TICK, instant(now), b""))
                    part.runner.tick(now)
                    if time.monotonic() - part.saved_at >= SNAPSHOT_SECONDS:  # an idle partition's clock too
                        await self.checkpoint(part)
            await self.flush_outbox()


def apply(runner: PartitionRunner, kind: str, clock: datetime | None, ev: Event | None) -> None:
    """An entry into the engine: a tick, an event at its stamp, or one at the wall clock."""
    if kind == TICK:
        runner.tick(clock)  # type: ignore[arg-type]
    elif kind == EVENT:
        runner.event(ev, clock)  # type: ignore[arg-type]
    else:
        runner.live_event(ev, clock)  # type: ignore[arg-type]


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

    install(app, EVENTS, worker.on_batch, worker.stop)
    app.topics.add(events)

    if not event_time:
        @app.timer(interval=1.0)
        async def wall_clock() -> None:
            await worker.wall_clock()

    return app


def faust_worker(app: Any, loglevel: str = "warning") -> Any:
    """The Faust worker that runs ``app`` (SIGTERM / SIGINT stop it cleanly)."""
    import faust

    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    # No terminal spinner: it sets the root logger to DEBUG so that it spins for every record,
    # which made every library's debug call (one per notice sent) build a log record.
    worker.spinner = None
    return worker


def run_worker(config: Config, broker: str, partitions: int, *, event_time: bool, data_dir: str,
               loglevel: str = "warning") -> None:
    app = build_app(config, broker, partitions, event_time=event_time, data_dir=data_dir)
    faust_worker(app, loglevel).execute_from_commandline()
