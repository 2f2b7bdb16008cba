"""The ``notifiers:`` section of the config (§2), checked up front into frozen objects.

The rules never read it; the delivery side does. A bad section is refused at start like the
rest of the config: one sentence per problem with the file, the key path, the line and the fix.
Secrets (SMTP password, DingTalk signing secret, webhook tokens) are never in the file, only the
names of the environment variables that hold them, and are never logged.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, Mapping

from pydantic import ConfigDict, Field, create_model, field_validator

from shian.notifiers import channels as registry
from shian.notifiers.channels.spec import ChannelSpec
from shian.rules.config import Config, ConfigError, Strict, check_section
from shian.rules.params import Hours
from shian.rules.problems import shown
from shian.rules.families import RULES
from shian.rules.timeutil import parse_time


DAY_SECONDS = 86_400  # every wait and retry interval is at most a day
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?")


class _Strict(Strict):
    model_config = ConfigDict(**Strict.model_config, populate_by_name=True)


def _hhmm(v: Any) -> str:
    """``HH:MM``. YAML 1.1 reads an unquoted 17:30 as the base-60 integer 1050: read it back."""
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 24 * 60:
        v = f"{v // 60:02d}:{v % 60:02d}"
    if not isinstance(v, str) or not _HHMM.fullmatch(v):
        raise ValueError(f"应为 HH:MM 格式的时刻（00:00–23:59），实为 {shown(v)}；写成带引号的 '08:30'")
    return v


# notifiers.catch_up_after: how old a notice may be when the outbox receives it and still go out
# on its own; older ones go into one catch-up summary per office (notifiers/catchup.py).
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(min|m|分钟|h|小时|d|天)\s*")
_UNITS = {"min": 60, "m": 60, "分钟": 60, "h": 3600, "小时": 3600, "d": DAY_SECONDS, "天": DAY_SECONDS}
CATCH_UP_RANGE = (timedelta(hours=1), timedelta(days=30))


def duration(v: Any) -> timedelta:
    """A length of time written with its unit: ``90m`` / ``90分钟``, ``12h`` / ``12小时``,
    ``1d`` / ``1天``, within :data:`CATCH_UP_RANGE`. Raises ValueError in words."""
    m = _DURATION.fullmatch(v) if isinstance(v, str) else None
    if m is None:
        raise ValueError(f"应为带单位的时长，实为 {shown(v)}；写成 1d（天）、12h（小时）或 90m（分钟），"
                         "不写此键即为 1d，写 null 则不汇总")
    length = timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    low, high = CATCH_UP_RANGE
    if not low <= length <= high:
        raise ValueError(f"时长 {v.strip()} 超出范围：应在 1h（1 小时）到 30d（30 天）之间")
    return length


class WorkingHours(_Strict):
    start: str = "08:30"
    end: str = "17:30"

    _check = field_validator("start", "end", mode="before")(lambda cls, v: _hhmm(v))


class Digest(_Strict):
    at: str = "17:30"

    _check = field_validator("at", mode="before")(lambda cls, v: _hhmm(v))


class Retry(_Strict):
    first_seconds: float = Field(30.0, gt=0, le=DAY_SECONDS, allow_inf_nan=False)
    max_seconds: float = Field(3600.0, gt=0, le=DAY_SECONDS, allow_inf_nan=False)
    give_up_hours: Hours = 24.0


class SilenceSpec(_Strict):
    rule: str | None = None
    township: str | None = None
    start: str
    end: str
    comment: str = ""

    _text = field_validator("start", "end", mode="before")(
        lambda cls, v: v.isoformat() if hasattr(v, "isoformat") else v)


class _Section(_Strict):
    """The section's own keys; each channel's section (``smtp``, ``file``) is added by
    :func:`_section_model`."""
    outbox: str = "shian-outbox.sqlite"
    templates: str | None = None
    group_wait_seconds: float = Field(30.0, ge=0, le=DAY_SECONDS, allow_inf_nan=False)
    catch_up_after: str | None = "1d"
    quiet_hours: bool = True
    working_hours: WorkingHours = WorkingHours()
    digest: Digest | None = Digest()
    retry: Retry = Retry()
    robot_per_minute: int = Field(20, ge=1, le=1000)
    silences: list[SilenceSpec] = []
    resolved_messages: bool = False  # a notice's 办结 is told to its other recipients (办结通报)

    @field_validator("catch_up_after", mode="before")
    @classmethod
    def _catch_up(cls, v: Any) -> Any:
        if v is not None:
            duration(v)
        return v


@dataclass(frozen=True)
class Silence:
    """Mutes one rule and/or one township for notices whose ``at`` is in [start, end)."""
    rule: str | None
    township: str | None
    start: datetime
    end: datetime
    comment: str = ""

    def mutes(self, rule: str, township: str, at: datetime) -> bool:
        """Whether a notice of ``rule`` in ``township`` with this ``at`` is muted."""
        return ((self.rule is None or self.rule == rule)
                and (self.township is None or self.township == township)
                and self.start <= at < self.end)


@dataclass(frozen=True)
class Settings:
    """What delivery needs: resolved paths (relative to the config file), typed options."""
    config: Config
    outbox: Path
    templates: Path | None
    sections: Mapping[str, Any]  # channel name → its settled notifiers section (absent: not given)
    routes: Mapping[str, tuple[str, ...]]  # department id → the channels it receives on
    group_wait_seconds: float
    catch_up_after: timedelta | None  # None: no catch-up summary
    quiet_hours: bool
    work_start: time
    work_end: time
    digest_at: time | None
    retry: Retry
    robot_per_minute: int
    silences: tuple[Silence, ...]
    resolved_messages: bool = False

    def channels_of(self, dept_id: str) -> tuple[str, ...]:
        """The channels this department receives on, in the registry's order: email when
        SMTP is set and it has addresses, its robots, and the development file outbox for
        everyone when set (see :mod:`shian.notifiers.channels`)."""
        return self.routes[dept_id]

    def section(self, channel: str) -> Any:
        """The channel's ``notifiers:`` section, checked and with paths resolved; None when
        it is not given (or the channel takes none)."""
        return self.sections.get(channel)


@functools.cache
def _section_model(channels: tuple[ChannelSpec, ...]) -> type[_Section]:
    """The ``notifiers:`` model: the section's own keys and each channel's section."""
    fields: dict[str, Any] = {c.section: (c.section_model | None, None)
                              for c in channels if c.section is not None}
    return create_model("Notifiers", __base__=_Section, **fields)


def parse(config: Config, *, env: Mapping[str, str] | None = None) -> Settings:
    """Checks ``config.notifiers`` and the departments' channels; raises ConfigError."""
    env = os.environ if env is None else env
    contacts = registry.contact_problems(config, env)
    try:
        section = check_section(config, "notifiers", _section_model(registry.CHANNELS))
    except ConfigError as err:
        raise ConfigError(err.problems + contacts) from None
    raw, problems, path = section.raw, section.problems, section.path

    sections: dict[str, Any] = {}
    for c in registry.CHANNELS:
        given = getattr(raw, c.section) if c.section is not None else None
        if given is not None:
            sections[c.name] = c.settle(given, section, env)
    problems.items.extend(contacts)
    silences = []
    for i, s in enumerate(raw.silences):
        keys = ("notifiers", "silences", i)
        if s.rule is not None and s.rule not in RULES:
            problems.add(keys + ("rule",), f"未知的规则 id“{s.rule}”", f"可用的规则：{', '.join(RULES)}")
        if s.township is not None and s.township not in config.townships:
            problems.add(keys + ("township",), f"未配置的乡镇“{s.township}”", "使用 townships 下的乡镇名")
        if s.rule is None and s.township is None:
            problems.add(keys, "静默须指定 rule 或 township（或两者）", "否则会屏蔽全部通知")
        try:
            start, end = parse_time(s.start, config.tz), parse_time(s.end, config.tz)
        except ValueError:
            problems.add(keys, "start / end 不是有效的时间", "写成 2026-05-01T00:00 这样的格式")
            continue
        if end <= start:
            problems.add(keys + ("end",), "end 应晚于 start", "调整静默时段")
        silences.append(Silence(s.rule, s.township, start, end, s.comment))
    if time.fromisoformat(raw.working_hours.end) <= time.fromisoformat(raw.working_hours.start):
        problems.add(("notifiers", "working_hours"), "end 应晚于 start", "例如 start: '08:30', end: '17:30'")
    if raw.templates is not None and not path(raw.templates).is_dir():
        problems.add(("notifiers", "templates"), f"模板目录 {raw.templates} 不存在", "写上存在的目录，或删除该键使用内置模板")
    if problems.items:
        raise ConfigError(problems.items)
    return Settings(
        config=config,
        outbox=path(raw.outbox),
        templates=path(raw.templates) if raw.templates else None,
        sections=sections,
        routes=registry.routes(config, sections),
        group_wait_seconds=raw.group_wait_seconds,
        catch_up_after=duration(raw.catch_up_after) if raw.catch_up_after is not None else None,
        quiet_hours=raw.quiet_hours,
        work_start=time.fromisoformat(raw.working_hours.start),
        work_end=time.fromisoformat(raw.working_hours.end),
        digest_at=time.fromisoformat(raw.digest.at) if raw.digest else None,
        retry=raw.retry,
        robot_per_minute=raw.robot_per_minute,
        silences=tuple(silences),
        resolved_messages=raw.resolved_messages,
    )
