"""``shian run --broker kafka://…``: the office's screen on a Kafka deployment.

The rules run in the workers, not here. This runtime follows ``notices`` (every partition,
no consumer group: it shows all of them) into its outbox — recorded only, not delivered,
since ``shian notify`` delivers (``deliver=True`` makes this process deliver instead) — and
``events`` into its journal, for the pages and reports (ticks and records that are not valid
events are skipped, repeats of an event id ignored). Events and acks posted to it are
validated like ``ingest`` and published to ``events`` (the workers judge duplicates and
deadlines); the answer "accepted" means published.

Its clock is the workers' clock as the ``events`` topic shows it: the latest ``shian-clock``
stamp or tick of an event-time feed, or, once live events (no stamp) have been seen, the wall
clock the workers run on; None before anything was followed.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime
from typing import Any, Callable, Iterable

from shian.notifiers.routing import recipients
from shian.notifiers.settings import Settings as DeliverySettings
from shian.rules.config import Config
from shian.rules.engine import Engine
from shian.rules.events import REGISTER, Rejected
from shian.rules.notice import Notice
from shian.rules.records import ACCEPTED, Outcome, Record
from shian.rules.timeutil import parse_time

from .base import Policy, RuntimeBase, Storage
from .kafka import CLOCK_HEADER, EVENTS, NOTICES, TICK_HEADER, bootstrap
from .partitioned import check_live_time, partition_of

log = logging.getLogger("shian.follower")


class KafkaFollower(RuntimeBase):
    def __init__(self, config: Config, storage: Storage, delivery: DeliverySettings, *, broker: str,
                 deliver: bool = False, now: Callable[[], datetime] | None = None) -> None:
        super().__init__(config, storage, delivery, now=now)
        self.broker = bootstrap(broker)
        self.deliver = deliver
        self._producer: Any = None
        self._partitions = 0
        self._clock: datetime | None = None
        self._live = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._recover()

    def _recover(self) -> None:
        """No rules to run again (the workers own them); the figures' tallies are a bare
        engine's, fed with the journal and then with the events followed."""
        self._tallies = Engine(self.config, recipients, lambda n: None, families=())
        for row in self.store.after(0):
            try:
                self._tally(self.validator.from_object(row.obj))
            except Rejected:
                continue  # no longer valid under this config: left out, as the pages did before

    def _tally(self, ev: Any) -> None:
        try:
            self._tallies.admit(ev)
        except Rejected:
            log.warning("event %s left out of the figures: far ahead of the events followed so far", ev.id)

    def figures(self, kind: str, period: Any, now: datetime | None = None) -> list[Any]:
        return self._tallies.figures(kind, period, now or self.now())

    # -- input: published, not run -------------------------------------------------------

    def accept_records(self, records: Iterable[Record], *, mode: str = "live",
                       policy: Policy | None = None) -> list[Outcome]:
        return [self._publish(rec, policy) for rec in records]

    def _publish(self, rec: Record, policy: Policy | None = None) -> Outcome:
        try:
            if rec.reason is not None:
                raise Rejected(rec.reason)
            ev = self.validator.from_object(rec.obj) if rec.obj is not None else self.validator.from_json(rec.raw)
            obj = rec.obj if rec.obj is not None else json.loads(rec.raw)
            if policy is not None and (why := policy(ev)) is not None:
                raise Rejected(why)
            check_live_time(ev, self.now())
        except Rejected as r:
            return self.reject(rec, r.reason)
        except ValueError:
            return self.reject(rec, "不是有效的 JSON")
        if self._producer is None:
            return self.reject(rec, "尚未连接 Kafka，请稍后重发")
        self._producer.send(EVENTS, key=ev.township.encode(), value=json.dumps(obj, ensure_ascii=False).encode(),
                            partition=partition_of(ev.township, self._partitions))
        self._producer.flush(timeout=10)
        self.metrics.events[ev.type] += 1
        return Outcome(ACCEPTED, rec.line, ev.id)

    # -- what the office asks -------------------------------------------------------------------

    def clock(self) -> datetime | None:
        return self.now() if self._live else self._clock

    def upcoming(self, count: int = 20) -> list[tuple[datetime, str]]:
        """The calendar's deadlines (reports, campaigns, pass rates) from a fresh engine: the
        entity deadlines live in the workers."""
        return Engine(self.config, recipients, lambda n: None).upcoming(self.now(), count)

    # -- following ------------------------------------------------------------------------------

    def _follow(self, consumer: Any, stop: asyncio.Event) -> None:
        """Blocking loop in a thread: notices into the outbox, events into the journal."""
        loop = self._loop
        assert loop is not None
        while not stop.is_set():
            batch = consumer.poll(timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    try:
                        if tp.topic == NOTICES:
                            loop.call_soon_threadsafe(self._take_notice, r.value)
                        else:
                            loop.call_soon_threadsafe(self._take_event, r.value, dict(r.headers or ()))
                    except RuntimeError:
                        return

    def _take_notice(self, value: bytes) -> None:
        try:
            notice = Notice.from_json(json.loads(value), self.config.tz)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            log.error("a record on %s is not a notice: %s", NOTICES, type(e).__name__)
            return
        if self.outbox.add(notice, self.now(), deliver=self.deliver):
            self.metrics.notices[notice.rule] += 1

    def _take_event(self, value: bytes, headers: dict[str, bytes]) -> None:
        if TICK_HEADER in headers:
            self._see_clock(value)
            return
        try:
            ev = self.validator.from_json(value)
            obj = json.loads(value)
        except (ValueError, Rejected):
            self._see_clock(headers.get(CLOCK_HEADER))
            return
        if ev.type != REGISTER or CLOCK_HEADER in headers:  # a register row sent before the clock has none
            self._see_clock(headers.get(CLOCK_HEADER))
        if self.store.has(ev):
            return
        self._tally(ev)
        with self.store.transaction() as c:
            self.store.append(c, obj, ev, "kafka", self.now(), EVENTS)

    def _see_clock(self, stamp: bytes | None) -> None:
        """The workers' clock: an event-time stamp moves it forward; a live event (no stamp)
        means the workers run on the wall clock."""
        if stamp is None:
            self._live = True
            return
        try:
            at = parse_time(stamp.decode(), self.config.tz)
        except (UnicodeDecodeError, ValueError):
            return
        if self._clock is None or at > self._clock:
            self._clock = at

    async def run(self, stop: asyncio.Event) -> None:
        from kafka import KafkaConsumer, KafkaProducer

        from .kafka import event_partitions

        self._loop = asyncio.get_running_loop()
        self._partitions = await asyncio.to_thread(event_partitions, self.broker)
        self._producer = await asyncio.to_thread(KafkaProducer, bootstrap_servers=self.broker, acks="all",
                                                 linger_ms=5)
        consumer = await asyncio.to_thread(KafkaConsumer, NOTICES, EVENTS, bootstrap_servers=self.broker,
                                           group_id=None, auto_offset_reset="earliest", enable_auto_commit=False)
        follower = asyncio.create_task(asyncio.to_thread(self._follow, consumer, stop))
        sender = asyncio.create_task(self.dispatcher.run(stop, poll_seconds=1.0)) if self.deliver else None
        try:
            while not stop.is_set():
                self.metrics.last_tick = time.time()
                self._producer.flush(timeout=5)
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
        finally:
            stop.set()
            await follower
            if sender is not None:
                await sender
            consumer.close()
            self._producer.flush()
            self._producer.close()
