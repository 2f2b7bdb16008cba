"""``shian run --broker kafka://…``: the office's screen on a Kafka deployment.

The rules run in the workers, not here. This process follows ``notices`` (every partition,
no consumer group: it shows all of them) into its outbox — recorded only, not delivered,
since ``shian notify`` delivers (``--deliver`` makes this process deliver instead) — and
``events`` into its journal, for the pages and reports (ticks and records that are not valid
events are skipped, repeats of an event id ignored). Events and acks posted to its API are
validated like ``ingest`` and published to ``events`` (the workers judge duplicates and
deadlines); the answer "accepted" means published.
"""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any

from shian.rules.engine import Engine
from shian.rules.events import Rejected

from .kafka import CLOCK_HEADER, EVENTS, NOTICES, TICK_HEADER, bootstrap
from .partitioned import check_live_time, partition_of
from shian.notifiers.routing import recipients

from .service import Outcome, Service

log = logging.getLogger("shian.office.kafka")


class KafkaOffice(Service):
    def __init__(self, *args: Any, broker: str, deliver: bool = False, **kw: Any) -> None:
        self.broker = bootstrap(broker)
        self.deliver = deliver
        self._producer: Any = None
        self._partitions = 0
        super().__init__(*args, **kw)

    def _recover(self, seq: int) -> None:
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

    def accept_object(self, obj: Any, source: str, line: Any = None, *, mode: str = "live") -> Outcome:
        try:
            ev, obj = self._decode(obj)
            check_live_time(ev, self.now())
        except Rejected as r:
            return self._reject(source, line, obj, r.reason)
        if self._producer is None:
            return self._reject(source, line, obj, "尚未连接 Kafka，请稍后重发")
        self._producer.send(EVENTS, key=ev.township.encode(), value=json.dumps(obj, ensure_ascii=False).encode(),
                            partition=partition_of(ev.township, self._partitions))
        self._producer.flush(timeout=10)
        self.metrics.events[ev.type] += 1
        return Outcome("accepted", line, ev.id)

    def tick(self) -> int:
        import time

        self.metrics.last_tick = time.time()
        return 0

    def snapshot(self) -> None:
        """No engine here."""

    def upcoming(self, count: int = 20) -> list[tuple[datetime, str]]:
        """The calendar's deadlines (reports, campaigns, pass rates) from a fresh engine: the
        entity deadlines live in the workers."""
        return Engine(self.config, recipients, lambda n: None).upcoming(self.now(), count)

    def _follow(self, consumer: Any, stop: asyncio.Event) -> None:
        """Blocking loop in a thread: notices into the outbox, events into the journal."""
        while not stop.is_set():
            batch = consumer.poll(timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    try:
                        if tp.topic == NOTICES:
                            self._loop.call_soon_threadsafe(self._take_notice, r.value)
                        else:
                            headers = dict(r.headers or ())
                            if TICK_HEADER not in headers:
                                self._loop.call_soon_threadsafe(self._take_event, r.value, headers.get(CLOCK_HEADER))
                    except RuntimeError:
                        return

    def _take_notice(self, value: bytes) -> None:
        try:
            notice = json.loads(value)
            if self.outbox.add(notice, self.now(), deliver=self.deliver):
                self.metrics.notices[notice["rule"]] += 1
        except (ValueError, KeyError, TypeError) as e:
            log.error("a record on %s is not a notice: %s", NOTICES, e)

    def _take_event(self, value: bytes, clock: bytes | None) -> None:
        try:
            obj = json.loads(value)
            ev = self.validator.from_object(obj)
        except (ValueError, Rejected):
            return
        if self.store.has(ev):
            return
        self._tally(ev)
        now = self.now()
        with self.store.transaction() as c:
            self.store.append(c, obj, ev, "kafka", now, f"{EVENTS}")

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
                self.tick()
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
