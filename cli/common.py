"""What the commands share: loading and checking the config and its sections, time
arguments, output files."""
from __future__ import annotations

import contextlib
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from shian.rules.config import Config, ConfigError, load


def checked(what: str, parse: Any, *args: Any, **kw: Any) -> Any:
    """``parse(*args)``, or every problem it found and exit 2: a refused config never starts."""
    try:
        return parse(*args, **kw)
    except ConfigError as e:
        print(f"{what}有误：", *e.problems, sep="\n  ", file=sys.stderr)
        raise SystemExit(2) from None


def load_config(path: str) -> Config:
    from shian.notifiers.channels import check_contacts

    config = checked("配置", load, path)
    checked("配置", check_contacts, config)  # the departments' contacts belong to the channels
    return config


def delivery_settings(config: Config) -> Any:
    """The ``notifiers:`` section, checked like the rest of the config."""
    from shian.notifiers.settings import parse

    return checked("投递配置（notifiers）", parse, config)


def service_settings(config: Config, env: Any = None, *, offline: bool = False) -> Any:
    """The ``service:`` section, checked like the rest of the config (``offline``: without
    its tokens, for the commands that serve nobody)."""
    from shian.office.settings import parse

    return checked("服务配置（service）", parse, config, env=env, offline=offline)


def time_arg(text: str | None, config: Config, flag: str) -> datetime | None:
    if text is None:
        return None
    from shian.rules.timeutil import parse_time

    try:
        return parse_time(text, config.tz)
    except ValueError as e:
        print(f"{flag}：{e}", file=sys.stderr)
        raise SystemExit(2) from None


def event_inputs(args: Any) -> tuple[Config, datetime | None]:
    """The config, ``--until`` and the event files of a command that reads events."""
    config = load_config(args.config)
    until = time_arg(args.until, config, "--until")
    missing = [p for p in args.events if not Path(p).is_file()]
    if missing:
        print(f"找不到事件文件：{', '.join(missing)}", file=sys.stderr)
        raise SystemExit(2)
    return config, until


@contextlib.contextmanager
def open_out(path: str | None, default: Any) -> Iterator[Any]:
    if path is None:
        yield default
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        yield f


def setup_logging(level: str) -> None:
    import logging

    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aiohttp.access", "kafka", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
