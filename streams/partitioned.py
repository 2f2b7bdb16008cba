"""Running the rules split by township over partitions, judged exactly as replay judges.

Kafka-free on purpose: ``shian ingest`` and ``shian worker`` wrap these two pieces, and the
tests check them against replay without a broker.

Event-time semantics (used for tests and backfills):

- ``Stamper`` runs replay's gate — validation, ``max_jump_days``, ``--until``, duplicates —
  over the input in order and stamps every event it passes with replay's clock at that point
  (the latest accepted event time so far, this event included). A register row (``entity``)
  never moves the clock; one that comes before the clock has started carries no stamp, and
  the partition keeps it until the start tick, as replay does.
- Every partition first gets a *start tick* with the first accepted event's time, and at the
  end an *until tick* with ``--until`` (when given).
- ``PartitionRunner`` owns the townships of one partition: it starts its clock at the start
  tick, moves it to each event's stamp before the event (firing the deadlines the global clock
  has passed, even when other townships moved it), then runs the event; a late arrival is
  judged at the stamp, as replay judges it at its clock.

So each partition fires the same deadlines at the same ``at`` as replay, and the union of
the partitions' notices equals replay's notices (their order across partitions aside).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from shian.notifiers.routing import recipients
from shian.rules.config import Config
from shian.rules.engine import Engine, Status
from shian.rules.events import REGISTER, Event, Rejected
from shian.rules.notice import Notice
from shian.rules.timeutil import fmt

LIVE_JUMP = timedelta(days=1)


def partition_of(township: str, partitions: int) -> int:
    """Kafka's default partitioner (murmur2 of the key), so keyed records and owners agree."""
    return (murmur2(township.encode("utf-8")) & 0x7FFFFFFF) % partitions


def murmur2(data: bytes) -> int:
    """MurmurHash2 as Kafka's Java client computes it for keys (seed 0x9747b28c); written out
    here so that this module needs no Kafka client (a test holds it to kafka-python's)."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail = data[length - length % 4:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h = ((h ^ tail[0]) * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    return h ^ (h >> 15)


def townships_of(config: Config, partition: int, partitions: int) -> list[str]:
    return [t for t in config.townships if partition_of(t, partitions) == partition]


@dataclass(frozen=True)
class Stamped:
    event: Event
    clock: datetime | None  # None: a register row before the clock started


class Stamper:
    """Replay's gate without the rules: what replay would accept, and its clock then."""

    def __init__(self, config: Config, until: datetime | None = None) -> None:
        self.until = until
        self._gate = Engine(config, recipients, lambda n: None, families=(), durable=True, measures=False)
        self.start: datetime | None = None

    def stamp(self, ev: Event) -> Stamped | str:
        """The stamped event, or ``Status.DUPLICATE`` / ``Status.SKIPPED``; raises Rejected."""
        status = self._gate.admit(ev, self.until)
        if status != Status.ACCEPTED:
            return status
        if self.start is None:
            self.start = self._gate.clock
        return Stamped(ev, self._gate.clock)


class PartitionRunner:
    """One partition's engine: its townships, its timers, its share of the notices."""

    def __init__(
        self,
        config: Config,
        partition: int,
        partitions: int,
        sink: Callable[[Notice], None],
        engine: Engine | None = None,
    ) -> None:
        self.partition = partition
        self.engine = engine or Engine(
            config, recipients, sink, townships=townships_of(config, partition, partitions), durable=True
        )

    def tick(self, at: datetime) -> None:
        """A clock tick: the start tick begins the clock, later ones move it."""
        engine = self.engine
        if engine.clock is None:
            engine.begin(at)
        elif at > engine.clock:
            engine.advance(at)

    def event(self, ev: Event, stamp: datetime | None) -> str:
        """Run one event at its stamp (event time); a register row without one (it came
        before the clock started) at whatever the clock is."""
        if stamp is not None:
            self.tick(stamp)
        return self.engine.admit(ev)

    def live_event(self, ev: Event, now: datetime) -> str:
        """Run one event on the wall clock: a time more than a day ahead is a probable typo."""
        check_live_time(ev, now)
        self.tick(now)
        return self.engine.admit(ev)


def check_live_time(ev: Event, now: datetime) -> None:
    """The live form of ``max_jump_days``; register rows are not held against it (§6)."""
    if ev.type != REGISTER and ev.time - now > LIVE_JUMP:
        raise Rejected(f"事件时间 {fmt(ev.time)} 比当前时间 {fmt(now)} 超前一天以上，可能是日期填错")


def run_partitioned(
    config: Config,
    events: list[Any],
    partitions: int,
    until: datetime | None = None,
) -> tuple[list[Notice], list[tuple[Any, str]]]:
    """The whole event-time pipeline in one process (events are validated ``Event`` objects):
    stamp, split by partition, run each partition. Returns notices and (event, reason) rejects."""
    stamper = Stamper(config, until)
    routed: list[list[Stamped]] = [[] for _ in range(partitions)]
    rejects: list[tuple[Any, str]] = []
    for ev in events:
        try:
            out = stamper.stamp(ev)
        except Rejected as r:
            rejects.append((ev, r.reason))
            continue
        if isinstance(out, Stamped):
            routed[partition_of(ev.township, partitions)].append(out)
    notices: list[Notice] = []
    for p in range(partitions):
        runner = PartitionRunner(config, p, partitions, notices.append)
        if stamper.start is None:
            continue
        runner.tick(stamper.start)
        for item in routed[p]:
            try:
                runner.event(item.event, item.clock)
            except Rejected as r:
                rejects.append((item.event, r.reason))
        if until is not None:
            runner.tick(until)
    return notices, rejects
