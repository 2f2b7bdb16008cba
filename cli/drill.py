"""``shian notify test``: the fire drill — a test message over every channel of the
departments (:mod:`shian.notifiers.drill`), each channel's answer printed; exit 1 if any failed."""
from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import Any

from .common import checked_config


def register(notify: Any) -> None:
    """``test`` under the ``notify`` command (its other use delivers on Kafka)."""
    sub = notify.add_subparsers(dest="notify_action", metavar="test")
    t = sub.add_parser("test", help="演练：向各部门配置的每个通知渠道发一条测试消息，逐个报告送达或对方的拒绝原因")
    t.add_argument("--config", required=True, metavar="FILE")
    t.add_argument("--dept", metavar="ID", action="append",
                   help="只测试这个部门（部门 id，可重复）；缺省测试全部部门")
    t.set_defaults(func=cmd_notify_test)


def cmd_notify_test(args: argparse.Namespace) -> int:
    from shian.notifiers.channels import build
    from shian.notifiers.drill import drill, lines

    checked = checked_config(args.config, delivery=True)
    config, settings = checked.config, checked.delivery
    unknown = [d for d in args.dept or () if d not in config.departments]
    if unknown:
        print(f"--dept：未知的部门 id“{'、'.join(unknown)}”；可用：{', '.join(config.departments)}", file=sys.stderr)
        return 2
    depts = list(dict.fromkeys(args.dept)) if args.dept else list(config.departments)
    now = datetime.now(config.tz).replace(microsecond=0)

    async def run() -> list[Any]:
        channels = build(settings)
        try:
            return await drill(settings, channels, depts, now)
        finally:
            for channel in channels.values():
                await channel.close()

    results = asyncio.run(run())
    print("\n".join(lines(settings, results, now)))
    return 0 if all(r.ok for r in results) else 1
