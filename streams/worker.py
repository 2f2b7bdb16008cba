"""``shian worker``: the rules on Kafka, one engine per ``events`` partition (faust-streaming).

Each partition's engine owns that partition's townships (:mod:`shian.streams.partitioned`).
Its state is snapshotted into the Faust table ``shian-engines`` (changelog topic
``shian-shian-engines-changelog``, same partition as the events it follows), split into chunks
under Kafka's message size, every 10,000 events or 5 seconds (and at every clock tick). Two
slots take turns, and the head key naming the complete one is written last, so a worker
killed in the middle of a snapshot leaves the previous one intact. Events are acknowledged by hand, only once a
snapshot that includes them has been written, so the committed offset never runs ahead of
the state: a worker that crashes, or a new one on an empty data folder, recovers the table
from its changelog and is redelivered the events after the snapshot. Those may raise notices
again — with the same ids (at-least-once; a notice's id identifies it) — never different ones.

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
from shian.rules.engine import Engine
from shian.rules.events import Rejected, Validator
from shian.rules.notice import Notice
from shian.rules.timeutil import parse_time

from .kafka import CLOCK_HEADER, EVENTS, NOTICES, REJECTS, TICK_HEADER, bootstrap
from .partitioned import PartitionRunner

log = logging.getLogger("shian.worker")
CHUNK = 512 * 1024
SNAPSHOT_EVERY = 10_000
SNAPSHOT_SECONDS = 5.0


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
    )
    events = app.topic(EVENTS, key_serializer="raw", value_serializer="raw", partitions=partitions)
    notices = app.topic(NOTICES, key_serializer="raw", value_serializer="raw", partitions=partitions)
    rejects = app.topic(REJECTS, key_serializer="raw", value_serializer="raw", partitions=1)
    table = app.Table("shian-engines", default=None, partitions=partitions, key_type=bytes, value_type=bytes)
    validator = Validator(config.known())
    runners: dict[int, PartitionRunner] = {}
    pending: dict[int, list[Any]] = {}
    outbox: list[Notice] = []

    def runner_for(p: int) -> PartitionRunner:
        runner = runners.get(p)
        if runner is None:
            engine = None
            head = table.get(f"engine-{p}".encode())
            if head:
                slot, chunks = head.decode().split(":")
                blob = b"".join(table[f"engine-{p}-{slot}-{i}".encode()] for i in range(int(chunks)))
                engine = Engine.restore(blob, config, recipients, outbox.append)
                log.info("partition %d: state restored (%d bytes)", p, len(blob))
            runner = runners[p] = PartitionRunner(config, p, partitions, outbox.append, engine=engine)
        return runner

    def save(p: int) -> None:
        """Write the snapshot's chunks into the slot the head does not name, then move the
        head: a worker killed half-way through leaves the previous snapshot whole."""
        blob = runners[p].engine.snapshot()
        chunks = [blob[i:i + CHUNK] for i in range(0, len(blob), CHUNK)] or [b""]
        head = table.get(f"engine-{p}".encode())
        slot = "b" if head and head.startswith(b"a:") else "a"
        for i, chunk in enumerate(chunks):
            table[f"engine-{p}-{slot}-{i}".encode()] = chunk
        table[f"engine-{p}".encode()] = f"{slot}:{len(chunks)}".encode()

    async def reject(event: Any, reason: str) -> None:
        msg = event.message
        record = {"source": f"{EVENTS}/{msg.partition}", "line": msg.offset,
                  "raw": event.value.decode("utf-8", "replace"), "reason": reason}
        await rejects.send(key=b"worker", value=json.dumps(record, ensure_ascii=False).encode())

    async def flush_outbox() -> None:
        for n in outbox:
            await notices.send(key=n.key.encode(), value=json.dumps(n.to_json(), ensure_ascii=False).encode())
        outbox.clear()

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        """A partition that moves to another worker is that worker's; its state follows in
        the table, and what was not acknowledged here is redelivered there."""
        for tp in revoked:
            if tp.topic == EVENTS:
                runners.pop(tp.partition, None)
                pending.pop(tp.partition, None)

    @app.agent(events)
    async def process(stream: Any) -> None:
        last_save: dict[int, float] = {}
        async for event in stream.noack().events():
            msg = event.message
            p = msg.partition
            runner = runner_for(p)
            headers = {k: v for k, v in (msg.headers or [])}
            tick = headers.get(TICK_HEADER)
            try:
                if tick is not None:
                    runner.tick(parse_time(event.value.decode(), config.tz))
                else:
                    ev = validator.from_json(event.value)
                    stamp = headers.get(CLOCK_HEADER)
                    if event_time and stamp:
                        runner.event(ev, parse_time(stamp.decode(), config.tz))
                    else:
                        runner.live_event(ev, datetime.now(config.tz))
            except Rejected as r:
                await reject(event, r.reason)
            except Exception as e:  # the runtime's boundary: the input is set aside, never lost
                log.exception("partition %d offset %d", p, msg.offset)
                await reject(event, f"处理失败：{type(e).__name__}: {e}")
            await flush_outbox()
            batch = pending.setdefault(p, [])
            batch.append(event)
            now = time.monotonic()
            if tick is not None or len(batch) >= SNAPSHOT_EVERY or now - last_save.get(p, 0) >= SNAPSHOT_SECONDS:
                save(p)
                last_save[p] = now
                for done in batch:
                    await stream.ack(done)
                batch.clear()

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
