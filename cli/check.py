"""``shian check-config``: the config checked and shown as shian will use it."""
from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from typing import Any

from .common import checked_config, time_arg


def register(sub: Any) -> None:
    c = sub.add_parser("check-config", help="检查配置文件并列出生效的规则、阈值和即将到来的期限")
    c.add_argument("--config", required=True, metavar="FILE")
    c.add_argument("--now", metavar="DATETIME", help="从此时刻起列出期限（缺省为当前时间）")
    c.add_argument("--deadlines", type=int, default=12, metavar="N", help="列出多少个即将到来的期限")
    c.set_defaults(func=cmd_check_config)


def cmd_check_config(args: argparse.Namespace) -> int:
    from shian.rules.timeutil import fmt

    checked = checked_config(args.config, delivery=True, service=True)
    config = checked.config
    now = time_arg(args.now, config, "--now") or datetime.now(config.tz)
    print(f"配置 {args.config} 有效。")
    print(f"时区 {config.tz.key}；县 {config.county.name or '（未命名）'}，县食安办 {config.county.office}"
          + (f"，升级对象 {', '.join(config.county.escalation)}" if config.county.escalation else ""))
    print(f"max_jump_days {config.max_jump_days}，dedup_days {config.dedup_days}")
    _delivery(config, checked.delivery)
    _service(checked.service)
    _townships(config)
    _rules(config)
    _calendar(config, now)
    print(f"\n自 {fmt(now)} 起即将到来的期限：")
    _deadlines(config, now, args.deadlines)
    return 0


def _delivery(config: Any, settings: Any) -> None:
    from shian.notifiers.channels import shown

    print("\n部门（投递渠道）：")
    for dept_id, d in config.departments.items():
        channels = settings.channels_of(dept_id)
        print(f"  {dept_id:<14} {d.name}" + shown(d)
              + f"  [{', '.join(channels) if channels else '无渠道：通知只记录，不发送'}]")
    print(f"\n投递：发件箱 {settings.outbox}；分组等待 {settings.group_wait_seconds:g} 秒；"
          + (f"非紧急通知在工作日 {settings.work_start:%H:%M}–{settings.work_end:%H:%M} 发送" if settings.quiet_hours
             else "不设免打扰时段")
          + (f"；每日汇总 {settings.digest_at:%H:%M}" if settings.digest_at else "；无每日汇总"))


def _service(service: Any) -> None:
    print(f"内嵌服务（shian run）：监听 {service.host}:{service.port}；数据 {service.data_dir}"
          + (f"；投放文件夹 {service.drop_dir}" if service.drop_dir else "")
          + (f"；数据来源 {', '.join(service.feed_names)}" if service.feed_names else "")
          + ("；未配置令牌（仅限本机访问）" if service.open_access else ""))
    taken = listen_problem(service.host, service.port)
    if taken:
        print(f"警告：现在无法监听 {service.host}:{service.port}（{taken}）：shian run 将无法启动；"
              "若它已在运行，可忽略此警告，否则请换一个端口（service.listen 或 shian run --listen）", file=sys.stderr)


def listen_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on now (taken, not an address of this machine, a
    privileged port), or None. Port 0 (any free port) always can."""
    import errno
    import socket

    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        return "找不到这个主机名"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            words = {errno.EADDRINUSE: "端口已被占用", errno.EADDRNOTAVAIL: "不是本机的地址",
                     errno.EACCES: "没有权限使用 1024 以下的端口"}
            return words.get(e.errno or 0, e.strerror or str(e))
    return None


def _townships(config: Any) -> None:
    print("\n乡镇：")
    for name, t in config.townships.items():
        pop = f"人口 {t.population}，" if t.population is not None else ""
        print(f"  {name}：{pop}食安办 {t.office}")
        print(f"    报送单位：{', '.join(t.reporters) or '（无）'}")
        if t.routing:
            print(f"    分派：{', '.join(f'{k}→{v}' for k, v in t.routing.items())}")


def _rules(config: Any) -> None:
    from shian.rules.families import RULES

    print("\n规则：")
    for rule_id, spec in RULES.items():
        p = config.rules[rule_id]
        params = {k: v for k, v in p.model_dump().items() if k != "enabled"}
        state = "启用" if p.enabled else "停用"
        shown = "，".join(f"{k}={v}" for k, v in params.items())
        print(f"  {rule_id:<34} {state}  {spec.level}/{spec.severity}  {spec.summary}" + (f"  [{shown}]" if shown else ""))


def _calendar(config: Any, now: datetime) -> None:
    """Where each year's working days come from; a warning, and the days it will use around
    the next holiday, for a year neither the library nor ``calendar:`` covers (§5)."""
    from datetime import timedelta

    from shian.rules.calendar import SOURCE_NAMES, next_statutory_holiday

    calendar, today = config.calendar, now.astimezone(config.tz).date()
    years = (today.year, today.year + 1)
    print("\n工作日历：" + "；".join(f"{y} 年按 {SOURCE_NAMES[calendar.source(y)]}" for y in years))
    uncovered = [y for y in years if calendar.source(y) == "statutory"]
    for y in uncovered:
        print(f"警告：{y} 年的节假日安排既不在 chinese-calendar 中，也未在配置文件 calendar: 中列出："
              f"该年工作日按周一至周五减法定节假日计算，不推测调休。国务院公布安排后，"
              f"请把该年的放假日期写入 calendar.holidays、调休上班日期写入 calendar.workdays。")
    if not uncovered:
        return
    holiday = next_statutory_holiday(today if uncovered[0] == today.year else date(uncovered[0], 1, 1))
    if holiday is None:  # beyond the lunar and solar-term tables
        return
    name, days = holiday
    span = f"{days[0]}" if len(days) == 1 else f"{days[0]} 至 {days[-1]}"
    print(f"  下一个节假日{name}（{span}）前后将使用的工作日：")
    for i in range(-3, (days[-1] - days[0]).days + 4):
        d = days[0] + timedelta(days=i)
        print(f"    {d}  周{'一二三四五六日'[d.weekday()]}  {'上班' if calendar.is_working_day(d) else '休息'}")


def _deadlines(config: Any, now: datetime, count: int) -> None:
    from shian.notifiers.routing import recipients
    from shian.rules.engine import Engine
    from shian.rules.timeutil import fmt

    engine = Engine(config, recipients, lambda n: None)
    for at, label in engine.upcoming(now, count):
        print(f"  {fmt(at)}  {label}")
