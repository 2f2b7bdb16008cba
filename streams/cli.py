"""The ``shian`` command line (§5)."""
from __future__ import annotations

import argparse
import contextlib
import sys
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Sequence

from shian.rules.config import Config, ConfigError, load
from shian.rules.timeutil import fmt, parse_time


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shian", description="食安：食品安全合规预警")
    sub = p.add_subparsers(dest="command", required=True)

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

    t = sub.add_parser("topics", help="在 Kafka 上创建 events / notices / rejects 主题")
    t.add_argument("--config", required=True, metavar="FILE")
    t.add_argument("--broker", required=True, metavar="kafka://HOST:PORT")
    t.add_argument("--partitions", type=int, default=4, metavar="N", help="events 与 notices 的分区数")

    i = sub.add_parser("ingest", help="校验事件文件并发布到 Kafka 的 events 主题")
    i.add_argument("events", nargs="+", metavar="FILES")
    i.add_argument("--config", required=True, metavar="FILE")
    i.add_argument("--broker", required=True, metavar="kafka://HOST:PORT")
    i.add_argument("--event-time", action="store_true", help="按事件时间：给每条记录盖上重放时钟，并向各分区发送时钟信号")
    i.add_argument("--until", metavar="DATETIME", help="按事件时间处理到此时刻（隐含 --event-time）")
    i.add_argument("--rejects", metavar="FILE", help="拒收记录另写入此文件（JSON Lines）")
    i.add_argument("--no-progress", action="store_true")

    w = sub.add_parser("worker", help="在 Kafka 上运行规则（faust-streaming 工作进程）")
    w.add_argument("--config", required=True, metavar="FILE")
    w.add_argument("--broker", required=True, metavar="kafka://HOST:PORT")
    w.add_argument("--event-time", action="store_true", help="跟随 shian ingest --event-time 的时钟，而不是墙上时钟")
    w.add_argument("--data-dir", default="shian-data", metavar="DIR", help="工作进程的数据目录")
    w.add_argument("--loglevel", default="warning")

    ru = sub.add_parser("run", help="内嵌服务：一个进程，不需要 Kafka；接收事件（HTTP、投放文件夹），按墙上时钟运行规则并投递通知")
    ru.add_argument("--config", required=True, metavar="FILE")
    ru.add_argument("--backfill", nargs="+", metavar="FILES", help="先按事件时间补录这些文件，再切换到墙上时钟")
    ru.add_argument("--broker", metavar="kafka://HOST:PORT",
                    help="Kafka 部署：本进程不运行规则，只展示 notices / events 并把收到的事件发布到 Kafka")
    ru.add_argument("--deliver", action="store_true", help="（仅 --broker）由本进程投递通知，而不是 shian notify")
    ru.add_argument("--loglevel", default="info")

    rp = sub.add_parser("report", help="月度合规报告（XLSX 每表一页 + 带图表的 HTML），数据取自 shian run 保存的事件")
    rp.add_argument("--month", required=True, metavar="YYYY-MM")
    rp.add_argument("--config", required=True, metavar="FILE")
    rp.add_argument("--out", default=".", metavar="DIR", help="输出目录（缺省为当前目录）")

    lg = sub.add_parser("ledger", help="导出通知台账（XLSX）：每条通知的接收部门、签收 / 办结时间和意见")
    lg.add_argument("--config", required=True, metavar="FILE")
    lg.add_argument("--out", metavar="FILE", help="输出文件（缺省按县名命名，写在当前目录）")
    lg.add_argument("--since", metavar="DATETIME", help="只导出此时刻及以后的通知")
    lg.add_argument("--until", metavar="DATETIME", help="只导出此时刻以前的通知")

    n = sub.add_parser("notify", help="在 Kafka 上投递通知：消费 notices 主题，经发件箱发往各部门")
    n.add_argument("--config", required=True, metavar="FILE")
    n.add_argument("--broker", required=True, metavar="kafka://HOST:PORT")
    n.add_argument("--group", default="shian-notify", metavar="NAME", help="消费组名（同组的多个进程分担投递）")
    n.add_argument("--loglevel", default="warning")

    a = sub.add_parser("ack", help="签收 / 办结一条通知：生成 ack 事件（追加到事件文件，或发布到 Kafka）")
    a.add_argument("notice_id", metavar="NOTICE_ID", help="通知编号（id）")
    a.add_argument("--by", required=True, metavar="DEPT", help="签收部门 id（须是该通知的接收部门）")
    a.add_argument("--action", default="签收", choices=("签收", "办结"))
    a.add_argument("--note", metavar="TEXT", help="反馈意见，如处置情况")
    a.add_argument("--config", required=True, metavar="FILE")
    a.add_argument("--at", metavar="DATETIME", help="签收时间（缺省为当前时间）")
    a.add_argument("--township", metavar="NAME", help="通知所属乡镇（缺省从发件箱或 --notices 文件中查）")
    a.add_argument("--notices", metavar="FILE", help="到此通知文件（replay --out 的输出）中查找通知")
    where = a.add_mutually_exclusive_group()
    where.add_argument("--out", metavar="FILE", help="把 ack 事件追加到此事件文件（JSON Lines，供 replay）")
    where.add_argument("--broker", metavar="kafka://HOST:PORT", help="把 ack 事件发布到 Kafka 的 events 主题")
    where.add_argument("--service", metavar="URL", help="交给正在运行的 shian run（如 http://127.0.0.1:8080）")
    a.add_argument("--token-env", default="SHIAN_TOKEN", metavar="VAR",
                   help="（--service）存放本部门令牌的环境变量，缺省 SHIAN_TOKEN；服务未配置令牌时可不设")

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
    sl = ss.add_parser("list", help="列出生效中和将要生效的静默（过期的自动不再列出）")
    sl.add_argument("--config", required=True, metavar="FILE")
    se = ss.add_parser("expire", help="提前结束一条静默")
    se.add_argument("silence_id", type=int, metavar="ID")
    se.add_argument("--config", required=True, metavar="FILE")

    c = sub.add_parser("check-config", help="检查配置文件并列出生效的规则、阈值和即将到来的期限")
    c.add_argument("--config", required=True, metavar="FILE")
    c.add_argument("--now", metavar="DATETIME", help="从此时刻起列出期限（缺省为当前时间）")
    c.add_argument("--deadlines", type=int, default=12, metavar="N", help="列出多少个即将到来的期限")
    return p


def _checked(what: str, parse: Any, *args: Any, **kw: Any) -> Any:
    """``parse(*args)``, or every problem it found and exit 2: a refused config never starts."""
    try:
        return parse(*args, **kw)
    except ConfigError as e:
        print(f"{what}有误：", *e.problems, sep="\n  ", file=sys.stderr)
        raise SystemExit(2) from None


def _load(path: str) -> Config:
    return _checked("配置", load, path)


def _settings(config: Config) -> Any:
    """The ``notifiers:`` section, checked like the rest of the config."""
    from shian.notifiers.settings import parse

    return _checked("投递配置（notifiers）", parse, config)


def _service(config: Config, env: Any = None) -> Any:
    """The ``service:`` section, checked like the rest of the config."""
    from shian.office.settings import parse

    return _checked("服务配置（service）", parse, config, env=env)


def _time_arg(text: str | None, config: Config, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text, config.tz)
    except ValueError as e:
        print(f"{flag}：{e}", file=sys.stderr)
        raise SystemExit(2) from None


def _inputs(args: argparse.Namespace) -> tuple[Config, datetime | None]:
    """The config, ``--until`` and the event files of a command that reads events."""
    config = _load(args.config)
    until = _time_arg(args.until, config, "--until")
    missing = [p for p in args.events if not Path(p).is_file()]
    if missing:
        print(f"找不到事件文件：{', '.join(missing)}", file=sys.stderr)
        raise SystemExit(2)
    return config, until


@contextlib.contextmanager
def _open_out(path: str | None, default: Any) -> Iterator[Any]:
    if path is None:
        yield default
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        yield f


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


def print_table(notices: Sequence[dict[str, Any]], stream: Any) -> None:
    """Notices as an office would scan them: time, severity, township, title, recipients."""
    sev = {"critical": "紧急", "warning": "警示", "info": "提示"}
    cols = [("时间", 16), ("级别", 4), ("层级", 4), ("乡镇", 8), ("标题", 64), ("接收部门", 30)]
    stream.write("  ".join(_cut(name, w) for name, w in cols).rstrip() + "\n")
    for n in notices:
        row = [n["at"][:16].replace("T", " "), sev[n["severity"]], "县级" if n["level"] == "county" else "镇级",
               n["township"], n["title"], ",".join(n["recipients"])]
        stream.write("  ".join(_cut(v, w) for v, (_, w) in zip(row, cols)).rstrip() + "\n")


def cmd_replay(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from shian.streams.replay import Replay, jsonl_writer

    config, until = _inputs(args)
    settings = _settings(config) if args.deliver else None
    shown: list[dict[str, Any]] = []
    produced: list[dict[str, Any]] = []
    total = sum(Path(p).stat().st_size for p in args.events)
    bar = tqdm(total=total, unit="B", unit_scale=True, desc="replay", file=sys.stderr,
               disable=args.no_progress or not sys.stderr.isatty() or total < 1 << 20)
    with _open_out(args.out, sys.stdout) as out, _open_out(args.rejects, sys.stderr) as rej:
        write_notice, write_reject = jsonl_writer(out), jsonl_writer(rej)

        def on_notice(n: Any) -> None:
            obj = n.to_json()
            write_notice(obj)
            if args.table:
                shown.append(obj)
            if settings is not None:
                produced.append(obj)

        replay = Replay(config, on_notice, write_reject, until=until, progress=bar.update)
        summary = replay.run(args.events)
    bar.close()
    if args.table:
        print_table(shown, sys.stdout)
    for line in summary.lines():
        print(line, file=sys.stderr)
    if settings is not None:
        deliver(settings, produced)
    return 0


def deliver(settings: Any, notices: list[dict[str, Any]]) -> None:
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


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    config = _load(args.config)
    delivery = _settings(config)
    settings = _service(config)
    if args.backfill:
        missing = [p for p in args.backfill if not Path(p).is_file()]
        if missing:
            print(f"找不到补录文件：{', '.join(missing)}", file=sys.stderr)
            return 2
    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aiohttp.access", "kafka", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from shian.office.api import ServeRefused, check_listen, serve

    try:
        check_listen(settings)
    except ServeRefused as e:
        print(e, file=sys.stderr)
        return 2

    async def main() -> None:
        if args.broker:
            from shian.streams.office_kafka import KafkaOffice

            service: Any = KafkaOffice(config, settings, delivery, broker=args.broker, deliver=args.deliver)
        else:
            from shian.streams.service import Service

            service = Service(config, settings, delivery)
            if args.backfill:
                tally = service.backfill(args.backfill)
                print(f"补录：接受 {tally['accepted']}，重复 {tally['duplicate']}，拒收 {tally['rejected']}；"
                      f"时钟已切换到当前时间", file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def listening(urls: list[str]) -> None:
            print(f"shian 已启动：仪表盘 {urls[0]}/ ，接口 {urls[0]}/api/ （说明 {urls[0]}/api/openapi.yaml）；"
                  "按 Ctrl-C 停止", file=sys.stderr)
            where = [f"发件箱 {delivery.outbox}"]
            if delivery.file_dir is not None:
                where.append(f"文件发件箱 {delivery.file_dir}")
            if delivery.smtp is not None:
                where.append(f"邮件服务器 {delivery.smtp.host}:{delivery.smtp.port}")
            print("通知去向：" + "；".join(where), file=sys.stderr)
            if settings.drop_dir is not None:
                print(f"投放文件夹：{settings.drop_dir}（放入 JSON Lines / CSV / XLSX 文件即导入）", file=sys.stderr)

        await serve(service, settings, stop, on_listening=listening)
        print("shian 已停止", file=sys.stderr)

    try:
        asyncio.run(main())
    except ServeRefused as e:
        print(e, file=sys.stderr)
        return 2
    return 0


def _office_data(config: Config) -> tuple[Any, Any]:
    """The store and outbox ``shian run`` keeps (read by report and ledger)."""
    from shian.notifiers.outbox import Outbox
    from shian.streams.store import Store

    settings = _service(config, env={k: "-" * 8 for k in _token_envs(config)})
    delivery = _settings(config)
    if not settings.events_db.exists():
        print(f"还没有保存的事件（{settings.events_db}）：请先运行 shian run", file=sys.stderr)
        raise SystemExit(2)
    return Store(settings.events_db, config.tz), Outbox(delivery.outbox)


def _rebuilt_engine(config: Config, store: Any) -> Any:
    """The engine ``shian run`` would restart with — its snapshot, then the journal after it
    (as ``Service._recover``) — for the figures of ``shian report``; notices are dropped. An
    unreadable snapshot means the whole journal instead."""
    from shian.notifiers.routing import recipients
    from shian.rules.engine import Engine, SnapshotError
    from shian.rules.events import Rejected, Validator
    from shian.streams.partitioned import PartitionRunner

    snap, engine = store.load_snapshot(), None
    with contextlib.suppress(SnapshotError):
        engine = Engine.restore(snap[1], config, recipients, lambda n: None) if snap else None
    runner = PartitionRunner(config, 0, 1, lambda n: None, engine=engine)
    validator = Validator(config.known())
    for row in store.after(snap[0] if snap and engine else 0):
        with contextlib.suppress(Rejected):  # a row this config no longer accepts is left out
            ev = validator.from_object(row.obj)
            if row.mode == "event":
                runner.engine.admit(ev)
            else:
                runner.live_event(ev, row.clock)
    return runner.engine


def _token_envs(config: Config) -> list[str]:
    """Token variables named in the service section (report and ledger need no tokens)."""
    service = config.service or {}
    specs = list((service.get("feeds") or {}).values()) + list((service.get("tokens") or {}).values())
    return [s["token_env"] for s in specs if isinstance(s, dict) and s.get("token_env")]


def cmd_report(args: argparse.Namespace) -> int:
    from shian.office.report import report_main

    config = _load(args.config)
    store, outbox = _office_data(config)
    engine = _rebuilt_engine(config, store)
    try:
        paths = report_main(config, engine, outbox, args.month, args.out)
    except ValueError as e:
        print(f"--month：{e}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    from shian.office.ledger import ledger_main

    config = _load(args.config)
    since = _time_arg(args.since, config, "--since")
    until = _time_arg(args.until, config, "--until")
    store, outbox = _office_data(config)
    print(ledger_main(config, store, outbox, args.out, since=since, until=until))
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from shian.streams.notify import run_notify

    config = _load(args.config)
    settings = _settings(config)
    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run_notify(settings, args.broker, args.group))
    return 0


def _find_notice(args: argparse.Namespace, config: Config) -> dict[str, Any] | None:
    """The notice by id (or key): in the outbox of the config, else in ``--notices``."""
    import json

    from shian.notifiers.settings import parse

    try:
        outbox_path = parse(config, env={}).outbox if config.notifiers else None
    except ConfigError:
        outbox_path = None
    if outbox_path is not None and outbox_path.exists():
        from shian.notifiers.outbox import Outbox

        with Outbox(outbox_path) as outbox:
            found = outbox.notice(args.notice_id)
        if found is not None:
            return found
    if args.notices:
        with open(args.notices, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    n = json.loads(line)
                    if args.notice_id in (n.get("id"), n.get("key")):
                        return n
    return None


def cmd_ack(args: argparse.Namespace) -> int:
    import json

    config = _load(args.config)
    if args.service:
        return _ack_by_service(args)
    at = _time_arg(args.at, config, "--at") or datetime.now(config.tz).replace(microsecond=0)
    if args.by not in config.departments:
        print(f"--by：未知的部门 id“{args.by}”；可用：{', '.join(config.departments)}", file=sys.stderr)
        return 2
    notice = _find_notice(args, config)
    township = args.township or (notice or {}).get("township")
    if township is None:
        print(f"找不到通知 {args.notice_id}：请用 --township 指明乡镇，或用 --notices 给出通知文件", file=sys.stderr)
        return 2
    if township not in config.townships:
        print(f"--township：未配置的乡镇“{township}”", file=sys.stderr)
        return 2
    if notice is not None and args.by not in notice.get("recipients", ()):
        print(f"部门 {args.by} 不是通知 {args.notice_id} 的接收部门（{', '.join(notice['recipients'])}），不能签收",
              file=sys.stderr)
        return 2
    nid = notice["id"] if notice is not None else args.notice_id
    kind = "close" if args.action == "办结" else "ack"
    event = {"type": "ack", "id": f"{kind}-{nid}-{args.by}-{at.strftime('%Y%m%d%H%M%S')}", "township": township,
             "notice_id": nid, "by": args.by, "action": args.action, "acked_at": fmt(at)}
    if args.note:
        event["note"] = args.note
    line = json.dumps(event, ensure_ascii=False)
    if args.out:
        with open(args.out, "a", encoding="utf-8", newline="\n") as f:
            f.write(line + "\n")
        print(f"已追加到 {args.out}：{line}", file=sys.stderr)
    elif args.broker:
        from kafka import KafkaProducer

        from shian.streams.kafka import EVENTS, bootstrap, event_partitions
        from shian.streams.partitioned import partition_of

        producer = KafkaProducer(bootstrap_servers=bootstrap(args.broker), acks="all")
        producer.send(EVENTS, key=township.encode(), value=line.encode(),
                      partition=partition_of(township, event_partitions(args.broker)))
        producer.flush()
        producer.close()
        print(f"已发布到 events：{line}", file=sys.stderr)
    else:
        print(line)
    return 0


def _ack_by_service(args: argparse.Namespace) -> int:
    """``shian ack --service URL``: the running ``shian run`` checks the recipient and records
    the ack at its own clock (``POST /api/notices/{id}/ack``)."""
    import json
    import os
    import urllib.error
    import urllib.request
    from urllib.parse import quote

    body = {"action": args.action, "by": args.by}
    if args.note:
        body["note"] = args.note
    headers = {"Content-Type": "application/json"}
    token = os.environ.get(args.token_env)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    url = f"{args.service.rstrip('/')}/api/notices/{quote(args.notice_id)}/ack"
    req = urllib.request.Request(url, data=json.dumps(body, ensure_ascii=False).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            answer = json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            reason = json.loads(e.read()).get("error", "")
        except ValueError:
            reason = ""
        print(f"shian run 拒绝了（HTTP {e.code}）：{reason or e.reason}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"无法连接 {args.service}：{e}", file=sys.stderr)
        return 2
    print(f"已{args.action}：{args.notice_id}（{answer.get('status', '')}）", file=sys.stderr)
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    from shian.notifiers.outbox import Outbox
    from shian.notifiers.silences import check

    config = _load(args.config)
    settings = _settings(config)
    now = datetime.now(config.tz)
    with Outbox(settings.outbox, settings) as outbox:
        if args.silence_command == "add":
            start = _time_arg(args.start, config, "--start") or now
            end = _time_arg(args.end, config, "--end")
            problems = check(config, args.rule, args.township, start, end)
            if problems:
                for p in problems:
                    print(p, file=sys.stderr)
                return 2
            sid = outbox.add_silence(args.rule, args.township, start, end, args.comment, args.by, now=now)
            print(f"已新增静默 #{sid}：{args.rule or '全部规则'} / {args.township or '全部乡镇'}，{fmt(start)} 至 {fmt(end)}")
        elif args.silence_command == "list":
            rows = outbox.silences(now)
            for s in settings.silences:
                if s.end > now:
                    print(f"  （配置）{s.rule or '全部规则'} / {s.township or '全部乡镇'}  {fmt(s.start)} 至 {fmt(s.end)}  {s.comment}")
            for s in rows:
                state = "生效中" if s.start <= now else "未开始"
                print(f"  #{s.id} {state} {s.rule or '全部规则'} / {s.township or '全部乡镇'}  "
                      f"{fmt(s.start)} 至 {fmt(s.end)}  {s.comment}" + (f"（{s.by}）" if s.by else ""))
            if not rows and not any(s.end > now for s in settings.silences):
                print("没有生效中或将要生效的静默")
        else:
            if not outbox.expire_silence(args.silence_id, now):
                print(f"没有生效中的静默 #{args.silence_id}", file=sys.stderr)
                return 2
            print(f"静默 #{args.silence_id} 已结束")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from shian.rules.engine import Engine
    from shian.notifiers.routing import recipients

    config = _load(args.config)
    now = _time_arg(args.now, config, "--now") or datetime.now(config.tz)
    print(f"配置 {args.config} 有效。")
    print(f"时区 {config.tz.key}；县 {config.county.name or '（未命名）'}，县食安办 {config.county.office}"
          + (f"，升级对象 {', '.join(config.county.escalation)}" if config.county.escalation else ""))
    print(f"max_jump_days {config.max_jump_days}，dedup_days {config.dedup_days}")
    settings = _settings(config)
    print("\n部门（投递渠道）：")
    for dept_id, d in config.departments.items():
        channels = settings.channels_of(dept_id)
        print(f"  {dept_id:<14} {d.name}" + (f"  <{', '.join(d.email)}>" if d.email else "")
              + f"  [{', '.join(channels) if channels else '无渠道：通知只记录，不发送'}]")
    print(f"\n投递：发件箱 {settings.outbox}；分组等待 {settings.group_wait_seconds:g} 秒；"
          + (f"非紧急通知在工作日 {settings.work_start:%H:%M}–{settings.work_end:%H:%M} 发送" if settings.quiet_hours
             else "不设免打扰时段")
          + (f"；每日汇总 {settings.digest_at:%H:%M}" if settings.digest_at else "；无每日汇总"))
    service = _service(config)
    print(f"内嵌服务（shian run）：监听 {service.host}:{service.port}；数据 {service.data_dir}"
          + (f"；投放文件夹 {service.drop_dir}" if service.drop_dir else "")
          + (f"；数据来源 {', '.join(service.feed_names)}" if service.feed_names else "")
          + ("；未配置令牌（仅限本机访问）" if service.open_access else ""))
    print("\n乡镇：")
    for name, t in config.townships.items():
        pop = f"人口 {t.population}，" if t.population is not None else ""
        print(f"  {name}：{pop}食安办 {t.office}")
        print(f"    报送单位：{', '.join(t.reporters) or '（无）'}")
        if t.routing:
            print(f"    分派：{', '.join(f'{k}→{v}' for k, v in t.routing.items())}")
    print("\n规则：")
    from shian.rules.families import RULES

    for rule_id, spec in RULES.items():
        p = config.rules[rule_id]
        params = {k: v for k, v in p.model_dump().items() if k != "enabled"}
        state = "启用" if p.enabled else "停用"
        shown = "，".join(f"{k}={v}" for k, v in params.items())
        print(f"  {rule_id:<34} {state}  {spec.level}/{spec.severity}  {spec.summary}" + (f"  [{shown}]" if shown else ""))
    print(f"\n自 {fmt(now)} 起即将到来的期限：")
    engine = Engine(config, recipients, lambda n: None)
    for at, label in engine.upcoming(now, args.deadlines):
        print(f"  {fmt(at)}  {label}")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from shian.streams.kafka import create_topics

    _load(args.config)
    created = create_topics(args.broker, args.partitions)
    print(f"已创建主题：{', '.join(created)}" if created else "主题均已存在")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from kafka import KafkaProducer
    from tqdm import tqdm

    from shian.streams.kafka import Ingest, bootstrap, event_partitions, read_records
    from shian.streams.replay import jsonl_writer

    config, until = _inputs(args)
    partitions = event_partitions(args.broker)
    producer = KafkaProducer(bootstrap_servers=bootstrap(args.broker), linger_ms=20, acks="all")
    with _open_out(args.rejects, None) as rej:
        ingest = Ingest(config, producer, partitions, event_time=args.event_time or until is not None,
                        until=until, on_reject=jsonl_writer(rej) if rej is not None else None)
        for path in args.events:
            records = read_records(path)
            for rec in tqdm(records, desc=Path(path).name, unit="条", file=sys.stderr,
                            disable=args.no_progress or not sys.stderr.isatty()):
                ingest.add(rec)
        summary = ingest.finish()
    producer.close()
    for line in summary.lines():
        print(line, file=sys.stderr)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from shian.streams.kafka import event_partitions
    from shian.streams.worker import run_worker

    config = _load(args.config)
    run_worker(config, args.broker, event_partitions(args.broker), event_time=args.event_time,
               data_dir=args.data_dir, loglevel=args.loglevel)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {
        "replay": cmd_replay, "check-config": cmd_check_config, "topics": cmd_topics,
        "ingest": cmd_ingest, "worker": cmd_worker, "notify": cmd_notify, "ack": cmd_ack, "run": cmd_run,
        "report": cmd_report, "ledger": cmd_ledger,
        "silence": cmd_silence,
    }[args.command]
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
