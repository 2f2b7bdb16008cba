"""A Faust transport whose consumer hands each fetched batch of ``events`` to one handler.

Faust's consumer loop costs about 180 µs per record on a small machine (for every record it
awaits ``wait_first`` — two tasks — then decodes it into an Event and queues it for the
agent's stream), which capped a worker at about 5,400 records/s before any rule ran. This
consumer keeps everything else of Faust — the group and its assignor, the tables and their
changelog recovery, commits, rebalances — and changes only the loop that drains fetched
records: records of the ``events`` topic go to ``app.shian_on_batch(tp, records)`` as one
list per partition (raw aiokafka records, in offset order); records of every other topic (the
tables' changelogs during recovery, Faust's own) take Faust's usual per-message path.

:class:`BatchApp` runs a hook before Faust's own stop (which stops the fetcher first): the
worker finishes its batch there, snapshots and commits while the consumer still can.

It also lowers aiokafka's ``fetch_max_wait_ms`` from the 1,500 Faust hard-codes to
``FETCH_MAX_WAIT_MS``: one fetch waits on every partition it holds, so an idle one (the
assignor's) made each event wait up to 1.5 s before it was seen.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import faust
from faust.transport.drivers import aiokafka as driver

FETCH_MAX_WAIT_MS = 50


class _Thread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by aiokafka when it starts
        return consumer


class BatchConsumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _Thread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - run by Faust
        on_batch = self.app.shian_on_batch  # type: ignore[attr-defined]
        batch_topic = self.app.shian_batch_topic  # type: ignore[attr-defined]
        callback = self.callback
        read_offset = self._read_offset
        to_message = self._to_message
        stopped, fetcher_stopped = self._stopped.is_set, fetcher._stopped.is_set
        try:
            while not (stopped() or fetcher_stopped()):
                records, active = await self._wait_next_records(1.0)
                await asyncio.sleep(0)
                if not records or self.should_stop:
                    continue
                if not self.flow_active:
                    await self.perform_seek()
                    continue
                generation = self.app.consumer_generation_id
                for tp, batch in records.items():
                    if active is not None and tp not in active and tp not in self._buffered_partitions:
                        continue
                    # as Faust: a record below the read offset (set by a seek) was seen already
                    last = read_offset[tp]
                    if last is not None:
                        batch = [r for r in batch if r.offset >= last]
                    if not batch:
                        continue
                    if tp.topic == batch_topic:
                        await on_batch(tp, batch)
                        read_offset[tp] = batch[-1].offset + 1
                    else:
                        for record in batch:
                            await callback(to_message(tp, record))
                            read_offset[tp] = record.offset
                    if self.app.consumer_generation_id != generation or not self.flow_active:
                        break
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise


class BatchTransport(driver.Transport):
    Consumer = BatchConsumer


class BatchApp(faust.App):
    """A Faust app that awaits ``shian_before_stop`` (when set) before its own stop."""

    shian_before_stop: Callable[[], Awaitable[None]] | None = None

    async def on_stop(self) -> None:
        if self.shian_before_stop is not None:
            await self.shian_before_stop()
        await super().on_stop()


def install(app: BatchApp, topic: str, on_batch: Any, before_stop: Callable[[], Awaitable[None]] | None = None) -> None:
    """Make ``app`` (not yet started) consume ``topic`` in batches through ``on_batch``, and
    await ``before_stop`` when it stops."""
    app.shian_batch_topic = topic
    app.shian_on_batch = on_batch
    app.shian_before_stop = before_stop
    app._transport = BatchTransport(app.conf.broker_consumer, app, loop=app.loop)
