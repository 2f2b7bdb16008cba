"""``shian notify``: delivery on Kafka — a consumer group on ``notices`` feeding the outbox.

Each notice is delivered by one process of the group: records are stored in the process's
outbox (one SQLite transaction each) and the offsets committed after each stored batch; the
dispatcher sends from the outbox (:mod:`shian.notifiers.dispatch`). A process that dies
between storing a batch and committing it leaves those records to be read again — by itself
after a restart (the outbox ignores a notice id it has, so nothing is sent twice), or by
another member after a rebalance, which then delivers them too: with several ``notify``
processes that is a second window for a repeated message, as small as one batch, and the
message carries the same notice id. A record that is not a notice goes to ``rejects``.
"""
from __future__ import annotations

import asyncio
import json
import logging
import signal
from datetime import tzinfo

from shian.notifiers.delivery import open_dispatcher, state_line
from shian.notifiers.settings import Settings
from shian.rules.notice import Notice
from shian.rules.records import Record

from .kafka import NOTICES, REJECTS, bootstrap

log = logging.getLogger("shian.notify")
REQUIRED = ("id", "rule", "severity", "level", "township", "recipients", "at", "key")


def read_notice(value: bytes | None, tz: tzinfo) -> Notice | str:
    """The §4 notice a record holds, or why it is not one this process can deliver."""
    try:
        obj = json.loads(value or b"")
    except RecursionError:
        return "JSON 嵌套过深"
    except (ValueError, TypeError) as e:
        return f"不是有效的 JSON：{e}"
    if not isinstance(obj, dict):
        return "不是 JSON 对象"
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        return f"缺少字段：{', '.join(missing)}"
    try:
        return Notice.from_json(obj, tz)
    except TypeError as e:
        return str(e)
    except (ValueError, KeyError) as e:
        return f"字段无法读取：{e}"


async def run_notify(settings: Settings, broker: str, group: str, stop: asyncio.Event | None = None) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    dispatcher = open_dispatcher(settings)
    consumer = AIOKafkaConsumer(NOTICES, bootstrap_servers=bootstrap(broker), group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                fetch_max_wait_ms=100, session_timeout_ms=10_000, heartbeat_interval_ms=3_000)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(broker), acks="all")
    await consumer.start()
    await producer.start()
    sender = asyncio.create_task(dispatcher.run(stop, poll_seconds=0.5))
    log.info("notify started; %s", state_line(dispatcher.outbox))
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            for tp, records in batch.items():
                for r in records:
                    notice = read_notice(r.value, settings.config.tz)
                    problem = notice if isinstance(notice, str) else None
                    if problem is None:
                        try:
                            dispatcher.submit(notice)
                        except (KeyError, TypeError, ValueError) as e:
                            problem = f"无法存入发件箱：{type(e).__name__}: {e}"
                    if problem is not None:
                        log.error("notices/%d offset %d set aside: %s", tp.partition, r.offset, problem)
                        reject = Record(f"{NOTICES}/{tp.partition}", r.offset, r.value or b"").reject(problem)
                        await producer.send_and_wait(REJECTS, json.dumps(reject.to_json(), ensure_ascii=False).encode(),
                                                     key=b"notify")
            if batch:
                await consumer.commit()
    finally:
        stop.set()
        await sender
        await dispatcher.close()
        await consumer.stop()
        await producer.stop()
        log.info("notify stopped; %s", state_line(dispatcher.outbox))
