"""``shian ack``: 签收 / 办结 of a notice, as an ``ack`` event appended to an events file,
published to Kafka, or handed to a running ``shian run``."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from shian.rules.config import Config, ConfigError
from shian.rules.notice import Notice

from .common import load_config, open_out, time_arg


def register(sub: Any) -> None:
    a = sub.add_parser("ack", help="签收 / 办结一条通知：交给正在运行的 shian run（--service），追加到事件文件（--out），或发布到 Kafka（--broker）")
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
    a.set_defaults(func=cmd_ack)


def find_notice(args: argparse.Namespace, config: Config) -> Notice | None:
    """The notice by id (or key): in the outbox of the config, else in ``--notices``.
    ValueError (its text for the user) when a line of that file is not JSON or the line with
    the id is not a whole §4 notice."""
    from shian.notifiers.settings import parse

    try:
        outbox_path = parse(config, env={}).outbox if config.notifiers else None
    except ConfigError:
        outbox_path = None
    if outbox_path is not None and outbox_path.exists():
        from shian.notifiers.outbox import Outbox

        with Outbox(outbox_path, tz=config.tz) as outbox:
            found = outbox.notice(args.notice_id)
        if found is not None:
            return found
    if args.notices:
        with open(args.notices, encoding="utf-8") as f:
            for no, line in enumerate(f, 1):
                if line.strip():
                    try:
                        n = json.loads(line)
                        if args.notice_id in (n.get("id"), n.get("key")):
                            return Notice.from_json(n, config.tz)
                    except (KeyError, TypeError, ValueError, AttributeError) as e:
                        raise ValueError(f"--notices：{args.notices} 第 {no} 行不是完整的通知（{type(e).__name__}: {e}）"
                                         "；应为 replay --out 写出的通知") from None
    return None


def ack_event(args: argparse.Namespace, config: Config) -> dict[str, Any] | str:
    """The ack event for the arguments, or why there is none (exit 2)."""
    from shian.rules.records import ack_event

    at = time_arg(args.at, config, "--at") or datetime.now(config.tz).replace(microsecond=0)
    if args.by not in config.departments:
        return f"--by：未知的部门 id“{args.by}”；可用：{', '.join(config.departments)}"
    try:
        notice = find_notice(args, config)
    except ValueError as e:
        return str(e)
    township = args.township or (notice.township if notice is not None else None)
    if township is None:
        return f"找不到通知 {args.notice_id}：请用 --township 指明乡镇，或用 --notices 给出通知文件"
    if township not in config.townships:
        return f"--township：未配置的乡镇“{township}”"
    if notice is not None and args.by not in notice.recipients:
        return f"部门 {args.by} 不是通知 {args.notice_id} 的接收部门（{', '.join(notice.recipients)}），不能签收"
    nid = notice.id if notice is not None else args.notice_id
    return ack_event(nid, township, args.by, args.action, at, args.note)


NO_TARGET = ("shian ack：请指明把签收 / 办结交给谁：正在运行的 shian run 用 --service http://127.0.0.1:8080；"
             "事件文件（供 shian replay）用 --out 文件名；Kafka 部署用 --broker kafka://主机:端口")


def cmd_ack(args: argparse.Namespace) -> int:
    if not (args.out or args.broker or args.service):
        print(NO_TARGET, file=sys.stderr)
        return 2
    config = load_config(args.config)
    if args.service:
        return _ack_by_service(args, config)
    event = ack_event(args, config)
    if isinstance(event, str):
        print(event, file=sys.stderr)
        return 2
    line = json.dumps(event, ensure_ascii=False)
    if args.out:
        with open_out(args.out, None, "--out", mode="a") as f:
            f.write(line + "\n")
        print(f"已追加到 {args.out}：{line}", file=sys.stderr)
    else:
        from shian.streams.kafka import BrokerUnreachable

        try:
            _publish(args.broker, event["township"], line)
        except BrokerUnreachable as e:
            print(f"shian ack：{e}；签收没有发布", file=sys.stderr)
            return 2
        print(f"已发布到 events：{line}", file=sys.stderr)
    return 0


def _publish(broker: str, township: str, line: str) -> None:
    from kafka import KafkaProducer

    from shian.streams.kafka import EVENTS, bootstrap, event_partitions
    from shian.streams.partitioned import partition_of

    partitions = event_partitions(broker)
    producer = KafkaProducer(bootstrap_servers=bootstrap(broker), acks="all")
    producer.send(EVENTS, key=township.encode(), value=line.encode(),
                  partition=partition_of(township, partitions))
    producer.flush()
    producer.close()


def _ack_by_service(args: argparse.Namespace, config: Config) -> int:
    """``shian ack --service URL``: the running ``shian run`` checks the recipient and records
    the ack at its own clock (``POST /api/notices/{id}/ack``); its answer in words."""
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
        except (ValueError, AttributeError):
            reason = ""
        print(f"拒收：{reason or '服务没有说明原因'}（HTTP {e.code}）", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"无法连接 {args.service}（{type(e).__name__}: {e}）：shian run 是否在运行？地址应如 http://127.0.0.1:8080",
              file=sys.stderr)
        return 2
    print(service_result(answer, args.action, args.notice_id, config))
    return 0


def service_result(answer: dict[str, Any], action: str, notice_id: str, config: Config) -> str:
    """The service's answer to a 签收 / 办结, as one sentence: 已签收 / 已办结, or that the same
    act was recorded before."""
    by = answer.get("by", "")
    dept = config.departments[by].name if by in config.departments else by
    done = f"通知 {answer.get('notice_id', notice_id)}，{dept}"
    if answer.get("status") == "duplicate":
        return f"已{action}（此前已记录过同一{action}，未重复记录）：{done}"
    return f"已{action}：{done}"
