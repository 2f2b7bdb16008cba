"""What the commands share: loading and checking the config and the sections a command needs
(every problem of all of them at once), time arguments, output files, logging."""
from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Iterator, Mapping

from shian.rules.config import Config, ConfigError, load


@dataclass(frozen=True)
class Checked:
    """A config as a command uses it: the config, and the sections it asked for (None when not)."""
    config: Config
    delivery: Any = None   # shian.notifiers.settings.Settings
    service: Any = None    # shian.office.settings.ServiceSettings


def checked_config(path: str, *, delivery: bool = False, service: bool = False,
                   service_env: Mapping[str, str] | None = None, listen: str | None = None,
                   offline: bool = False) -> Checked:
    """The config at ``path`` with the departments' contacts and, when asked, its
    ``notifiers:`` (``delivery``) and ``service:`` sections (``service_env``: the environment
    its tokens are read from, default the process's; ``listen``: ``--listen`` in place of
    ``service.listen``; ``offline``: the tokens are not read, for the commands that serve
    nobody). Every problem of all of them is reported in one run and the command
    exits 2 — ``check-config``, ``run``, ``replay --deliver``, ``notify`` and the rest say the
    same. When the config itself is refused, the sections are still checked as far as it could
    be read (:attr:`ConfigError.partial`), unless what they refer to is broken."""
    from shian.notifiers.channels import contact_problems
    from shian.notifiers.settings import parse as parse_delivery
    from shian.office.settings import parse as parse_service

    try:
        config: Config | None = load(path)
        problems: list[str] = []
    except ConfigError as e:
        config, problems = e.partial, list(e.problems)
    parts: dict[str, Any] = {}
    if config is not None:
        if not delivery:  # the delivery section checks the contacts itself, with its environment
            problems += contact_problems(config)
        sections = {"delivery": (delivery, lambda c: parse_delivery(c)),
                    "service": (service, lambda c: parse_service(c, env=service_env, listen=listen,
                                                                              offline=offline))}
        for name, (wanted, parse) in sections.items():
            if not wanted:
                continue
            try:
                parts[name] = parse(config)
            except ConfigError as e:
                problems += e.problems
    if problems:
        print("配置有误：", *dict.fromkeys(problems), sep="\n  ", file=sys.stderr)
        raise SystemExit(2)
    assert config is not None
    return Checked(config, **parts)


def load_config(path: str) -> Config:
    """The config and its departments' contacts, checked (exit 2 with every problem)."""
    return checked_config(path).config


def time_arg(text: str | None, config: Config, flag: str) -> datetime | None:
    if text is None:
        return None
    from shian.rules.timeutil import parse_time

    try:
        return parse_time(text, config.tz)
    except ValueError as e:
        print(f"{flag}：{e}", file=sys.stderr)
        raise SystemExit(2) from None


def event_inputs(args: Any, *, delivery: bool = False) -> tuple[Checked, datetime | None]:
    """The config (with ``notifiers:`` when ``delivery``), ``--until`` and the event files of a
    command that reads events."""
    checked = checked_config(args.config, delivery=delivery)
    until = time_arg(args.until, checked.config, "--until")
    missing = [p for p in args.events if not Path(p).is_file()]
    if missing:
        print(f"找不到事件文件：{', '.join(missing)}", file=sys.stderr)
        raise SystemExit(2)
    return checked, until


@contextlib.contextmanager
def open_out(path: str | None, default: Any, option: str, mode: str = "w") -> Iterator[Any]:
    """The output file ``option`` names (its folder made), opened with ``mode`` ("a" appends),
    or ``default`` when none is named; one that cannot be written (a folder, no permission, a
    full disk) stops the command before anything is written, with the reason in Chinese."""
    if path is None:
        yield default
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        f = open(path, mode, encoding="utf-8", newline="\n")
    except OSError as e:
        print(f"{option} 指定的输出文件“{path}”无法写入：{out_words(e)}", file=sys.stderr)
        raise SystemExit(2) from None
    with f:
        yield f


def out_words(e: OSError) -> str:
    """Why an output file cannot be opened, in words an office reads."""
    if isinstance(e, IsADirectoryError):
        return "这是一个文件夹，请给出文件名（例如 通知.jsonl）"
    if isinstance(e, PermissionError):
        return "没有写入权限"
    return e.strerror or type(e).__name__


LEVEL_NAMES = {"DEBUG": "调试", "INFO": "信息", "WARNING": "警告", "ERROR": "错误", "CRITICAL": "严重"}
LOG_LEVELS = ("debug", "info", "warning", "error")


class LocalFormatter(logging.Formatter):
    """Log lines stamped in the county's time zone (not the machine's, often UTC), with the
    level in Chinese: ``2026-04-20 14:02:00 信息 shian.service: …``."""

    def __init__(self, tz: tzinfo) -> None:
        super().__init__("%(asctime)s %(levelword)s %(name)s: %(message)s")
        self.tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, self.tz).strftime(datefmt or "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        record.levelword = LEVEL_NAMES.get(record.levelname, record.levelname)
        return super().format(record)


def setup_logging(level: str, tz: tzinfo) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(LocalFormatter(tz))
    logging.basicConfig(level=level.upper(), handlers=[handler])  # no-op when logging is set up already
    for noisy in ("aiohttp.access", "kafka", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
