"""``shian run``: the office's process — a runtime (embedded, or following Kafka), delivery
and the office's HTTP pages, composed here; this module owns the lifecycle (start, serve,
signals, stop)."""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any, Callable

from .common import LOG_LEVELS, checked_config, setup_logging


def register(sub: Any) -> None:
    ru = sub.add_parser("run", help="内嵌服务：一个进程，不需要 Kafka；接收事件（HTTP、投放文件夹），按墙上时钟运行规则并投递通知")
    ru.add_argument("--config", required=True, metavar="FILE")
    ru.add_argument("--backfill", nargs="+", metavar="FILES", help="先按事件时间补录这些文件，再切换到墙上时钟")
    ru.add_argument("--broker", metavar="kafka://HOST:PORT",
                    help="Kafka 部署：本进程不运行规则，只展示 notices / events 并把收到的事件发布到 Kafka")
    ru.add_argument("--deliver", action="store_true", help="（仅 --broker）由本进程投递通知，而不是 shian notify")
    ru.add_argument("--listen", metavar="HOST:PORT",
                    help="监听地址，代替配置中的 service.listen（如 127.0.0.1:8081；未配置令牌时只能是本机地址）")
    ru.add_argument("--loglevel", default="info", choices=LOG_LEVELS, help="日志级别（缺省 info）")
    ru.set_defaults(func=cmd_run)


async def serve(runtime: Any, settings: Any, stop: asyncio.Event, *,
                on_listening: Callable[[list[str]], None] | None = None) -> None:
    """The office's pages on ``settings.host:port`` and ``runtime.run`` until ``stop``; then
    the server stops (open requests finish) and the runtime is closed — also when starting
    failed. ``on_listening`` gets the bound addresses (``http://host:port``)."""
    from shian.office.api import listen, make_app

    try:
        runner, urls = await listen(make_app(runtime, settings), settings)
        try:
            if on_listening is not None:
                on_listening(urls)
            await runtime.run(stop)
        finally:
            await runner.cleanup()
    finally:
        await runtime.close()


def build_runtime(args: argparse.Namespace, config: Any, settings: Any, delivery: Any) -> Any:
    """The embedded service (after its backfill), or the follower of a Kafka deployment."""
    if args.broker:
        from shian.streams.follower import KafkaFollower

        return watch_closings(KafkaFollower(config, settings, delivery, broker=args.broker, deliver=args.deliver),
                              delivery)
    from shian.streams.service import Service

    service = watch_closings(Service(config, settings, delivery), delivery)
    if args.backfill:
        tally = service.backfill(args.backfill)
        print(f"补录：接受 {tally['accepted']}，重复 {tally['duplicate']}，拒收 {tally['rejected']}；"
              f"时钟已切换到当前时间", file=sys.stderr)
    return service


def watch_closings(runtime: Any, delivery: Any) -> Any:
    """With ``notifiers.resolved_messages``, the runtime's dispatcher reads the 办结 acks the
    runtime journals and sends their closing words (:mod:`shian.notifiers.resolved`)."""
    if delivery.resolved_messages:
        from shian.notifiers.resolved import ClosingWords

        runtime.dispatcher.watch(ClosingWords(runtime.config, runtime.outbox, runtime.acks_after))
    return runtime


def _announce(settings: Any, delivery: Any) -> Callable[[list[str]], None]:
    from shian.notifiers.channels import destinations

    def listening(urls: list[str]) -> None:
        print(f"shian 已启动：仪表盘 {urls[0]}/ ，接口 {urls[0]}/api/ （说明 {urls[0]}/api/openapi.yaml）；"
              "按 Ctrl-C 停止", file=sys.stderr)
        where = [f"发件箱 {delivery.outbox}", *destinations(delivery)]
        print("通知去向：" + "；".join(where), file=sys.stderr)
        if settings.drop_dir is not None:
            print(f"投放文件夹：{settings.drop_dir}（放入 JSON Lines / CSV / XLSX 文件即导入）", file=sys.stderr)

    return listening


def cmd_run(args: argparse.Namespace) -> int:
    import sqlite3

    from shian.office.api import ServeRefused
    from shian.rules.engine import SnapshotError
    from shian.streams.base import fix_malloc_thresholds

    checked = checked_config(args.config, delivery=True, service=True, listen=args.listen)
    config, delivery, settings = checked.config, checked.delivery, checked.service
    if args.backfill:
        missing = [p for p in args.backfill if not Path(p).is_file()]
        if missing:
            print(f"找不到补录文件：{', '.join(missing)}", file=sys.stderr)
            return 2
    setup_logging(args.loglevel, config.tz)
    fix_malloc_thresholds()   # a process that runs for months: no heap holes from its large blocks

    async def main() -> None:
        runtime = build_runtime(args, config, settings, delivery)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(runtime, settings, stop, on_listening=_announce(settings, delivery))
        print("shian 已停止", file=sys.stderr)

    try:
        asyncio.run(main())
    except ServeRefused as e:
        print(e, file=sys.stderr)
        return 2
    except SnapshotError as e:
        print(f"无法恢复保存的规则状态（{settings.events_db}）：{e}。若刚升级了 shian，请按 README“State and its "
              f"bounds”一节删除旧快照后再启动（事件日志会重新运行，已发出的通知不会重发）", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as e:
        print(f"无法打开数据目录 {settings.data_dir} 或发件箱 {delivery.outbox}（{type(e).__name__}: {e}）："
              "请检查路径是否存在、可写（service.data_dir、notifiers.outbox）", file=sys.stderr)
        return 2
    return 0
