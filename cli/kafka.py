"""The Kafka deployment's commands: ``topics``, ``ingest``, ``worker``, ``notify``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import drill
from .common import LOG_LEVELS, checked_config, event_inputs, load_config, open_out, setup_logging


def register(sub: Any) -> None:
    t = sub.add_parser("topics", help="在 Kafka 上创建 events / notices / rejects 主题")
    t.add_argument("--config", required=True, metavar="FILE")
    t.add_argument("--broker", required=True, metavar="kafka://HOST:PORT")
    t.add_argument("--partitions", type=int, default=4, metavar="N", help="events 与 notices 的分区数")
    t.set_defaults(func=cmd_topics)

    i = sub.add_parser("ingest", help="校验事件文件并发布到 Kafka 的 events 主题")
    i.add_argument("events", nargs="+", metavar="FILES")
    i.add_argument("--config", required=True, metavar="FILE")
    i.add_argument("--broker", required=True, metavar="kafka://HOST:PORT")
    i.add_argument("--event-time", action="store_true", help="按事件时间：给每条记录盖上重放时钟，并向各分区发送时钟信号")
    i.add_argument("--until", metavar="DATETIME", help="按事件时间处理到此时刻（隐含 --event-time）")
    i.add_argument("--rejects", metavar="FILE", help="拒收记录另写入此文件（JSON Lines）")
    i.add_argument("--no-progress", action="store_true")
    i.set_defaults(func=cmd_ingest)

    w = sub.add_parser("worker", help="在 Kafka 上运行规则（faust-streaming 工作进程）")
    w.add_argument("--config", required=True, metavar="FILE")
    w.add_argument("--broker", required=True, metavar="kafka://HOST:PORT")
    w.add_argument("--event-time", action="store_true", help="跟随 shian ingest --event-time 的时钟，而不是墙上时钟")
    w.add_argument("--data-dir", default="shian-data", metavar="DIR", help="工作进程的数据目录")
    w.add_argument("--loglevel", default="warning", choices=LOG_LEVELS, help="日志级别")
    w.set_defaults(func=cmd_worker)

    n = sub.add_parser("notify", help="在 Kafka 上投递通知：消费 notices 主题，经发件箱发往各部门；"
                                      "notify test：演练，向各部门的每个通知渠道发测试消息")
    n.add_argument("--config", metavar="FILE", help="（投递时必填）")
    n.add_argument("--broker", metavar="kafka://HOST:PORT", help="（投递时必填）")
    n.add_argument("--group", default="shian-notify", metavar="NAME", help="消费组名（同组的多个进程分担投递）")
    n.add_argument("--loglevel", default="warning", choices=LOG_LEVELS, help="日志级别")
    n.set_defaults(func=cmd_notify)
    drill.register(n)


def cmd_topics(args: argparse.Namespace) -> int:
    from shian.streams.kafka import BrokerUnreachable, create_topics

    load_config(args.config)
    try:
        created = create_topics(args.broker, args.partitions)
    except BrokerUnreachable as e:
        print(f"shian topics：{e}", file=sys.stderr)
        return 2
    print(f"已创建主题：{', '.join(created)}" if created else "主题均已存在")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from kafka import KafkaProducer
    from tqdm import tqdm

    from shian.streams.kafka import PRODUCER_SETTINGS, BrokerUnreachable, Ingest, bootstrap, event_partitions
    from shian.streams.replay import jsonl_writer
    from shian.streams.sources import read_path

    checked, until = event_inputs(args)
    config = checked.config
    try:
        partitions = event_partitions(args.broker)
    except BrokerUnreachable as e:
        print(f"shian ingest：{e}；没有发送任何事件", file=sys.stderr)
        return 2
    producer = KafkaProducer(bootstrap_servers=bootstrap(args.broker), **PRODUCER_SETTINGS)
    with open_out(args.rejects, None, "--rejects") as rej:
        write = jsonl_writer(rej) if rej is not None else None
        ingest = Ingest(config, producer, partitions, event_time=args.event_time or until is not None,
                        until=until, on_reject=(lambda r: write(r.to_json())) if write is not None else None)
        for path in args.events:
            for rec in tqdm(read_path(path), desc=Path(path).name, unit="条", file=sys.stderr,
                            disable=args.no_progress or not sys.stderr.isatty()):
                ingest.add(rec)
        summary = ingest.finish()
    producer.close()
    for line in summary.lines():
        print(line, file=sys.stderr)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from shian.streams.base import fix_malloc_thresholds
    from shian.streams.kafka import event_partitions
    from shian.streams.worker import run_worker

    config = load_config(args.config)
    fix_malloc_thresholds()   # a long-running process, as ``shian run``
    # A worker started with (or before) its broker waits for it instead of failing.
    partitions = event_partitions(args.broker, wait=None, log=lambda line: print(line, file=sys.stderr, flush=True))
    run_worker(config, args.broker, partitions, event_time=args.event_time,
               data_dir=args.data_dir, loglevel=args.loglevel)
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    import asyncio

    from shian.streams.notify import run_notify

    missing = [flag for flag, value in (("--config", args.config), ("--broker", args.broker)) if not value]
    if missing:
        print(f"shian notify：缺少 {' 和 '.join(missing)}（演练各通知渠道请用 shian notify test --config FILE）",
              file=sys.stderr)
        return 2
    checked = checked_config(args.config, delivery=True)
    settings = checked.delivery
    setup_logging(args.loglevel, checked.config.tz)
    if settings.resolved_messages:
        print("notifiers.resolved_messages：办结通报由读取签收记录的 shian run 发出（内嵌服务，或 --broker 加 --deliver），"
              "shian notify 不发", file=sys.stderr)
    asyncio.run(run_notify(settings, args.broker, args.group))
    return 0
