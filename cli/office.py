"""The office's offline outputs: ``report`` (monthly compliance report) and ``ledger`` (台账),
from what ``shian run`` keeps."""
from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from shian.rules.config import Config

from .common import Checked, checked_config, time_arg


def register(sub: Any) -> None:
    rp = sub.add_parser("report", help="月度合规报告（XLSX 每表一页 + 带图表的 HTML），数据取自 shian run 保存的事件")
    rp.add_argument("--month", required=True, metavar="YYYY-MM")
    rp.add_argument("--config", required=True, metavar="FILE")
    rp.add_argument("--out", default=".", metavar="DIR", help="输出目录（缺省为当前目录）")
    rp.set_defaults(func=cmd_report)

    lg = sub.add_parser("ledger", help="导出通知台账（XLSX）：每条通知的接收部门、签收 / 办结时间和意见")
    lg.add_argument("--config", required=True, metavar="FILE")
    lg.add_argument("--out", metavar="FILE", help="输出文件（缺省按县名命名，写在当前目录）")
    lg.add_argument("--since", metavar="DATETIME", help="只导出此时刻及以后的通知")
    lg.add_argument("--until", metavar="DATETIME", help="只导出此时刻以前的通知")
    lg.set_defaults(func=cmd_ledger)


def offline_config(path: str) -> Checked:
    """The config with the sections ``shian run`` uses, checked as it checks them, except that
    the tokens are not read (the report and the ledger serve nobody)."""
    return checked_config(path, delivery=True, service=True, offline=True)


def offline_runtime(checked: Checked) -> Any:
    """What ``shian run`` keeps, as the service recovers it (its snapshot and journal, its
    outbox), for the office's report and ledger; nothing is sent and no snapshot written."""
    from shian.streams.service import Service

    config, settings, delivery = checked.config, checked.service, checked.delivery
    if not settings.events_db.exists():
        print(f"还没有保存的事件（{settings.events_db}）：请先运行 shian run", file=sys.stderr)
        raise SystemExit(2)
    return Service(config, settings, delivery, reader=True)


def cmd_report(args: argparse.Namespace) -> int:
    from shian.office.report import report_main

    checked = offline_config(args.config)
    config = checked.config
    runtime = offline_runtime(checked)
    try:
        paths = report_main(config, runtime, args.month, args.out)
    except ValueError as e:
        print(f"--month：{e}", file=sys.stderr)
        return 2
    finally:
        asyncio.run(runtime.close())
    for p in paths:
        print(p)
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    from shian.office.ledger import ledger_main

    checked = offline_config(args.config)
    config = checked.config
    since = time_arg(args.since, config, "--since")
    until = time_arg(args.until, config, "--until")
    runtime = offline_runtime(checked)
    try:
        print(ledger_main(config, runtime, args.out, since=since, until=until))
    finally:
        asyncio.run(runtime.close())
    return 0
