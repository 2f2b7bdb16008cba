"""``shian silence add | list | expire``: keep notices recorded but unsent for a while."""
from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from .common import checked_config, time_arg


def register(sub: Any) -> None:
    si = sub.add_parser("silence", help="静默：在一段时间内不发送某条规则和/或某个乡镇的通知（仍然记录）")
    ss = si.add_subparsers(dest="silence_command", required=True)
    sa = ss.add_parser("add", help="新增静默")
    sa.add_argument("--config", required=True, metavar="FILE")
    sa.add_argument("--rule", metavar="RULE_ID")
    sa.add_argument("--township", metavar="NAME")
    sa.add_argument("--start", metavar="DATETIME", help="开始时间（缺省为现在）")
    sa.add_argument("--end", required=True, metavar="DATETIME", help="结束时间（不含）")
    sa.add_argument("--comment", default="", metavar="TEXT")
    sa.add_argument("--by", default="", metavar="WHO")
    sa.set_defaults(func=cmd_add)
    sl = ss.add_parser("list", help="列出生效中和将要生效的静默（过期的自动不再列出）")
    sl.add_argument("--config", required=True, metavar="FILE")
    sl.set_defaults(func=cmd_list)
    se = ss.add_parser("expire", help="提前结束一条静默")
    se.add_argument("silence_id", type=int, metavar="ID")
    se.add_argument("--config", required=True, metavar="FILE")
    se.set_defaults(func=cmd_expire)


def _open(args: argparse.Namespace) -> tuple[Any, Any, Any, datetime]:
    from shian.notifiers.outbox import Outbox

    checked = checked_config(args.config, delivery=True)
    config, settings = checked.config, checked.delivery
    return config, settings, Outbox(settings.outbox, settings), datetime.now(config.tz)


def _what(s: Any) -> str:
    return f"{s.rule or '全部规则'} / {s.township or '全部乡镇'}"


def cmd_add(args: argparse.Namespace) -> int:
    import sys

    from shian.notifiers.silences import check
    from shian.rules.timeutil import fmt

    config, _, outbox, now = _open(args)
    with outbox:
        start = time_arg(args.start, config, "--start") or now
        end = time_arg(args.end, config, "--end")
        problems = check(config, args.rule, args.township, start, end)
        if problems:
            for p in problems:
                print(p, file=sys.stderr)
            return 2
        sid = outbox.add_silence(args.rule, args.township, start, end, args.comment, args.by, now=now)
    print(f"已新增静默 #{sid}：{args.rule or '全部规则'} / {args.township or '全部乡镇'}，{fmt(start)} 至 {fmt(end)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from shian.rules.timeutil import fmt

    _, settings, outbox, now = _open(args)
    with outbox:
        rows = outbox.silences(now)
    for s in settings.silences:
        if s.end > now:
            print(f"  （配置）{_what(s)}  {fmt(s.start)} 至 {fmt(s.end)}  {s.comment}")
    for s in rows:
        state = "生效中" if s.start <= now else "未开始"
        print(f"  #{s.id} {state} {_what(s)}  {fmt(s.start)} 至 {fmt(s.end)}  {s.comment}" + (f"（{s.by}）" if s.by else ""))
    if not rows and not any(s.end > now for s in settings.silences):
        print("没有生效中或将要生效的静默")
    return 0


def cmd_expire(args: argparse.Namespace) -> int:
    import sys

    _, _, outbox, now = _open(args)
    with outbox:
        ended = outbox.expire_silence(args.silence_id, now)
    if not ended:
        print(f"没有生效中的静默 #{args.silence_id}", file=sys.stderr)
        return 2
    print(f"静默 #{args.silence_id} 已结束")
    return 0
