"""``shian replay``: event files through the rules on event time; notices and rejects out."""
from __future__ import annotations

import argparse
import sys
import unicodedata
from pathlib import Path
from typing import Any, Sequence

from shian.rules.notice import Notice

from .common import event_inputs, open_out


def register(sub: Any) -> None:
    r = sub.add_parser("replay", help="按事件时间重放事件文件（JSON Lines / CSV / XLSX），输出通知")
    r.add_argument("events", nargs="+", metavar="EVENTS", help="事件文件，按给出的顺序读取")
    r.add_argument("--config", required=True, metavar="FILE")
    r.add_argument("--until", metavar="DATETIME", help="处理到此时刻为止，并把时钟推进到此时刻")
    r.add_argument("--out", metavar="FILE", help="通知输出文件（JSON Lines）；缺省为标准输出")
    r.add_argument("--rejects", metavar="FILE", help="拒收记录输出文件（JSON Lines）；缺省为标准错误")
    r.add_argument("--table", action="store_true", help="结束时在标准输出打印通知一览表")
    r.add_argument("--no-progress", action="store_true", help="不显示进度条")
    r.add_argument("--deliver", action="store_true",
                   help="把通知交给投递（notifiers：邮件、企业微信、钉钉、文件发件箱），发完或只剩等待中的再退出")
    r.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from shian.streams.replay import Replay, jsonl_writer, notice_writer

    checked, until = event_inputs(args, delivery=args.deliver)
    config, settings = checked.config, checked.delivery
    shown: list[Notice] = []
    produced: list[Notice] = []
    total = sum(Path(p).stat().st_size for p in args.events)
    bar = tqdm(total=total, unit="B", unit_scale=True, desc="replay", file=sys.stderr,
               disable=args.no_progress or not sys.stderr.isatty() or total < 1 << 20)
    with open_out(args.out, sys.stdout, "--out") as out, open_out(args.rejects, sys.stderr, "--rejects") as rej:
        write_notice, write_reject = notice_writer(out), jsonl_writer(rej)

        def on_notice(n: Notice) -> None:
            write_notice(n)
            if args.table:
                shown.append(n)
            if settings is not None:
                produced.append(n)

        replay = Replay(config, on_notice, lambda r: write_reject(r.to_json()), until=until, progress=bar.update)
        summary = replay.run(args.events)
    bar.close()
    if args.table:
        print_table(shown, sys.stdout)
    for line in summary.lines():
        print(line, file=sys.stderr)
    if settings is not None:
        deliver(settings, produced)
    return 0


def deliver(settings: Any, notices: list[Notice]) -> None:
    """``replay --deliver``: the notices into the outbox, then what is due now (and within a
    group's wait) goes out; what waits for working hours stays for the next run."""
    import asyncio

    from shian.notifiers.delivery import deliver_due, open_dispatcher, state_line

    async def go() -> int:
        dispatcher = open_dispatcher(settings)
        try:
            new = sum(dispatcher.submit(n, whole_batch=True) for n in notices)
            print(f"投递：{new} 条新通知进入发件箱（{len(notices) - new} 条此前已收）", file=sys.stderr)
            return await deliver_due(dispatcher, within=1.0)
        finally:
            await dispatcher.close()
            print(state_line(dispatcher.outbox), file=sys.stderr)

    sent = asyncio.run(go())
    print(f"投递：本次发出 {sent} 封（条）消息", file=sys.stderr)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cut(text: str, width: int) -> str:
    out, used = [], 0
    for ch in text:
        w = _width(ch)
        if used + w > width:
            out.append("…")
            used += 1
            break
        out.append(ch)
        used += w
    return "".join(out) + " " * max(0, width - used)


def print_table(notices: Sequence[Notice], stream: Any) -> None:
    """Notices as an office would scan them: time, severity, township, title, recipients."""
    sev = {"critical": "紧急", "warning": "警示", "info": "提示"}
    cols = [("时间", 16), ("级别", 4), ("层级", 4), ("乡镇", 8), ("标题", 64), ("接收部门", 30)]
    stream.write("  ".join(_cut(name, w) for name, w in cols).rstrip() + "\n")
    for n in notices:
        row = [f"{n.at:%Y-%m-%d %H:%M}", sev[n.severity], "县级" if n.level == "county" else "镇级",
               n.township, n.title, ",".join(n.recipients)]
        stream.write("  ".join(_cut(v, w) for v, (_, w) in zip(row, cols)).rstrip() + "\n")
