"""The ``notifiers:`` section of the config (§2), checked up front into frozen objects.

The rules never read it; the delivery side does. A bad section is refused at start like the
rest of the config: one sentence per problem with the file, the key path, the line and the fix.
Secrets (SMTP password, DingTalk signing secret, webhook tokens) are never in the file, only the
names of the environment variables that hold them, and are never logged.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import ConfigDict, Field, field_validator

from shian.rules.config import Config, ConfigError, Robot, Strict, check_section
from shian.rules.families import RULES
from shian.rules.timeutil import parse_time


class _Strict(Strict):
    model_config = ConfigDict(**Strict.model_config, populate_by_name=True)  # smtp's ``from`` is an alias


class Smtp(_Strict):
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    sender: str = Field(alias="from")
    timeout_seconds: float = Field(30.0, gt=0)
    tls_ca_file: str | None = None  # extra CA bundle to trust (a self-signed server); verification stays on


class FileOutbox(_Strict):
    dir: str


def _hhmm(v: Any) -> str:
    """``HH:MM``. YAML 1.1 reads an unquoted 17:30 as the base-60 integer 1050: read it back."""
    if isinstance(v, int) and not isinstance(v, bool):
        v = f"{v // 60:02d}:{v % 60:02d}"
    if not isinstance(v, str):
        raise ValueError("应为 HH:MM 格式的时刻")
    time.fromisoformat(v)
    return v


class WorkingHours(_Strict):
    start: str = "08:30"
    end: str = "17:30"

    _check = field_validator("start", "end", mode="before")(lambda cls, v: _hhmm(v))


class Digest(_Strict):
    at: str = "17:30"

    _check = field_validator("at", mode="before")(lambda cls, v: _hhmm(v))


class Retry(_Strict):
    first_seconds: float = Field(30.0, gt=0)
    max_seconds: float = Field(3600.0, gt=0)
    give_up_hours: float = Field(24.0, gt=0)


class SilenceSpec(_Strict):
    rule: str | None = None
    township: str | None = None
    start: str
    end: str
    comment: str = ""

    _text = field_validator("start", "end", mode="before")(
        lambda cls, v: v.isoformat() if hasattr(v, "isoformat") else v)


class _Section(_Strict):
    outbox: str = "shian-outbox.sqlite"
    templates: str | None = None
    smtp: Smtp | None = None
    file: FileOutbox | None = None
    group_wait_seconds: float = Field(30.0, ge=0)
    quiet_hours: bool = True
    working_hours: WorkingHours = WorkingHours()
    digest: Digest | None = Digest()
    retry: Retry = Retry()
    robot_per_minute: int = Field(20, ge=1)
    silences: list[SilenceSpec] = []


@dataclass(frozen=True)
class Silence:
    """Mutes one rule and/or one township for notices whose ``at`` is in [start, end)."""
    rule: str | None
    township: str | None
    start: datetime
    end: datetime
    comment: str = ""

    def mutes(self, notice: Mapping[str, Any], at: datetime) -> bool:
        return ((self.rule is None or self.rule == notice["rule"])
                and (self.township is None or self.township == notice["township"])
                and self.start <= at < self.end)


@dataclass(frozen=True)
class Settings:
    """What delivery needs: resolved paths (relative to the config file), typed options."""
    config: Config
    outbox: Path
    templates: Path | None
    smtp: Smtp | None
    file_dir: Path | None
    group_wait_seconds: float
    quiet_hours: bool
    work_start: time
    work_end: time
    digest_at: time | None
    retry: Retry
    robot_per_minute: int
    silences: tuple[Silence, ...]

    def channels_of(self, dept_id: str) -> tuple[str, ...]:
        """The channels this department receives on: email when SMTP is set and it has
        addresses, its robots, and the development file outbox for everyone when set."""
        d = self.config.departments[dept_id]
        out = []
        if self.smtp is not None and d.email:
            out.append("email")
        if d.wecom is not None:
            out.append("wecom")
        if d.dingtalk is not None:
            out.append("dingtalk")
        if self.file_dir is not None:
            out.append("file")
        return tuple(out)


def secret(name: str | None) -> str | None:
    """The value of an environment variable named in the config (never logged)."""
    return os.environ.get(name) if name else None


def webhook_of(robot: Robot) -> str | None:
    return robot.webhook or secret(robot.webhook_env)


def parse(config: Config, *, env: Mapping[str, str] | None = None) -> Settings:
    """Checks ``config.notifiers`` and the departments' channels; raises ConfigError."""
    env = os.environ if env is None else env
    section = check_section(config, "notifiers", _Section)
    raw, problems, path = section.raw, section.problems, section.path

    if raw.smtp is not None:
        if raw.smtp.username and not raw.smtp.password_env:
            problems.add(("notifiers", "smtp", "password_env"), "设置了 username 却没有给出密码所在的环境变量",
                         "写上环境变量名，如 password_env: SHIAN_SMTP_PASSWORD")
        elif raw.smtp.password_env and raw.smtp.password_env not in env:
            problems.add(("notifiers", "smtp", "password_env"), f"环境变量 {raw.smtp.password_env} 未设置",
                         "启动前设置该环境变量（密码不写进配置文件）")
    if raw.smtp is not None and raw.smtp.tls_ca_file and not path(raw.smtp.tls_ca_file).is_file():
        problems.add(("notifiers", "smtp", "tls_ca_file"), f"证书文件 {raw.smtp.tls_ca_file} 不存在",
                     "写上邮件服务器证书（或其 CA 证书）的 PEM 文件路径，或删除该键")
    for dept_id, d in config.departments.items():
        for kind in ("wecom", "dingtalk"):
            robot: Robot | None = getattr(d, kind)
            if robot is None:
                continue
            keys = ("departments", dept_id, kind)
            if bool(robot.webhook) == bool(robot.webhook_env):
                problems.add(keys, "应当且只能给出 webhook 或 webhook_env 之一", "写上机器人的 Webhook 地址或存放它的环境变量名")
            elif robot.webhook_env and robot.webhook_env not in env:
                problems.add(keys + ("webhook_env",), f"环境变量 {robot.webhook_env} 未设置", "启动前设置该环境变量")
            elif robot.webhook and not robot.webhook.startswith(("http://", "https://")):
                problems.add(keys + ("webhook",), "Webhook 地址应以 https:// 开头", "从群机器人设置中复制完整地址")
            if kind == "wecom" and robot.secret_env:
                problems.add(keys + ("secret_env",), "企业微信群机器人没有签名密钥", "删除该键")
            if kind == "dingtalk" and robot.secret_env and robot.secret_env not in env:
                problems.add(keys + ("secret_env",), f"环境变量 {robot.secret_env} 未设置", "启动前设置该环境变量（加签密钥 SEC…）")
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
        smtp=(raw.smtp.model_copy(update={"tls_ca_file": str(path(raw.smtp.tls_ca_file))})
              if raw.smtp is not None and raw.smtp.tls_ca_file else raw.smtp),
        file_dir=path(raw.file.dir) if raw.file else None,
        group_wait_seconds=raw.group_wait_seconds,
        quiet_hours=raw.quiet_hours,
        work_start=time.fromisoformat(raw.working_hours.start),
        work_end=time.fromisoformat(raw.working_hours.end),
        digest_at=time.fromisoformat(raw.digest.at) if raw.digest else None,
        retry=raw.retry,
        robot_per_minute=raw.robot_per_minute,
        silences=tuple(silences),
    )
