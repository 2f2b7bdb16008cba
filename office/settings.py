"""The ``service:`` section of the config: where ``shian run`` listens and keeps its data,
the drop folder, who may do what (feed and department tokens) and how many failed
authentications an address may make (``auth_failures``).

Checked up front like the rest of the config. Tokens are given in the file (``token``, for a
demo) or, better, by the name of an environment variable (``token_env``); they are compared
in constant time and never logged. The offline commands (``shian report``, ``shian ledger``)
read the section without its tokens (``parse(..., offline=True)``): they serve nobody.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from pydantic import Field

from shian.notifiers.links import url_problem
from shian.rules.config import Config, ConfigError, Problems, Strict, check_section
from shian.rules.params import MAX_COUNT

_LISTEN = re.compile(r"(?P<host>.+):(?P<port>[0-9]{1,5})")
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
LISTEN_EXAMPLE = "例如 127.0.0.1:8080（只在本机）或 0.0.0.0:8080（局域网，须配置令牌）"


class TokenSpec(Strict):
    token: str | None = None
    token_env: str | None = None


class Feed(TokenSpec):
    name: str


class _AuthFailures(Strict):
    """Failed authentications (a missing or wrong token, a failed login) per client address: a
    token bucket of ``burst`` that refills ``per_minute``; ``addresses`` bounds the memory."""
    burst: int = Field(20, ge=1, le=10_000)
    per_minute: int = Field(10, ge=1, le=10_000)
    addresses: int = Field(10_000, ge=100, le=1_000_000)


@dataclass(frozen=True)
class FailureLimit:
    burst: int = 20            # failed authentications an address may make in a row
    per_minute: int = 10       # and then this many a minute
    addresses: int = 10_000    # addresses remembered at most (the least recently failing forgotten first)


class _Section(Strict):
    listen: str = "127.0.0.1:8080"  # host:port; port 0 lets the system pick a free one (tests)
    data_dir: str = "shian-data"
    drop_dir: str | None = None
    snapshot_every: int = Field(10_000, ge=1, le=MAX_COUNT)  # a snapshot pickles the whole state: not too often
    feeds: dict[str, Feed] = {}
    tokens: dict[str, TokenSpec] = {}
    auth_failures: _AuthFailures = _AuthFailures()
    public_url: str | None = None  # where the departments open these pages; the messages link to it


@dataclass(frozen=True)
class ServiceSettings:
    config: Config
    host: str
    port: int
    data_dir: Path
    drop_dir: Path | None
    snapshot_every: int
    public_url: str | None                  # e.g. https://shian.example.gov.cn, without a trailing /
    feed_names: Mapping[str, str]           # feed id → name
    _feed_tokens: Mapping[str, str]         # feed id → token
    _dept_tokens: Mapping[str, str]         # department id → token
    auth_failures: FailureLimit = FailureLimit()

    def __repr__(self) -> str:  # never print tokens
        return f"ServiceSettings(listen={self.host}:{self.port}, data_dir={self.data_dir})"

    @property
    def events_db(self) -> Path:
        return self.data_dir / "events.sqlite"

    def feed_for(self, token: str | None) -> str | None:
        """The feed a token belongs to (None: no feed)."""
        return _match(token, self._feed_tokens)

    def department_for(self, token: str | None) -> str | None:
        """The department a token belongs to (None: no department)."""
        return _match(token, self._dept_tokens)

    @property
    def open_access(self) -> bool:
        """No token configured at all: a single-user desk machine (listen must be loopback)."""
        return not self._feed_tokens and not self._dept_tokens


def _match(token: str | None, table: Mapping[str, str]) -> str | None:
    if not token:
        return None
    found = None
    for who, value in table.items():
        if hmac.compare_digest(token.encode(), value.encode()):
            found = who
    return found


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ``::1``, with or without brackets)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _valid_host(host: str) -> bool:
    """An IP address (IPv6 with or without brackets) or a host name."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return _HOSTNAME.fullmatch(host) is not None


def _listen(listen: str, complain: Callable[[str, str], None]) -> tuple[str, int]:
    """``host:port`` with a valid host and a port 0–65535 (0: any free port), or a problem."""
    m = _LISTEN.fullmatch(listen.strip())
    if m is None:
        complain(f"“{listen}”不是 主机:端口", LISTEN_EXAMPLE)
        return "", -1
    host, port = m["host"], int(m["port"])
    if not _valid_host(host):
        complain(f"“{host}”不是有效的主机名或 IP 地址", LISTEN_EXAMPLE)
    if port > 65535:
        complain(f"端口 {port} 超出范围：应为 0–65535", LISTEN_EXAMPLE)
    return host, port


def _listen_problems(problems: Problems, listen: str | None) -> Callable[[str, str], None]:
    """Where a problem of the listen address goes: ``service.listen`` of the file, or the
    ``--listen`` option that overrides it."""
    if listen is None:
        return lambda what, fix: problems.add(("service", "listen"), what, fix)
    return lambda what, fix: problems.items.append(f"--listen：{what}；{fix}")


def parse(config: Config, *, env: Mapping[str, str] | None = None, listen: str | None = None,
          offline: bool = False) -> ServiceSettings:
    """The section checked (ConfigError: every problem). ``listen``: ``shian run --listen``,
    in place of ``service.listen`` and checked alike. Without any token configured the address
    must be a loopback one (a single-user desk machine). ``offline``: for a command that serves
    nobody (report, ledger): its tokens are neither read nor checked, and the settings hold none."""
    env = os.environ if env is None else env
    section = check_section(config, "service", _Section)
    raw, problems, path = section.raw, section.problems, section.path

    complain = _listen_problems(problems, listen)
    host, port = _listen(raw.listen if listen is None else listen, complain)
    if host and not raw.feeds and not raw.tokens and not is_loopback(host):
        complain(f"未配置任何令牌（service.feeds / service.tokens），只能监听本机地址，不能监听 {host}",
                 f"为数据来源和部门配置令牌，或改为 127.0.0.1:{port if 0 <= port <= 65535 else 8080}")
    if raw.public_url is not None and (why := url_problem(raw.public_url)) is not None:
        problems.add(("service", "public_url"), f"“{raw.public_url}”{why}",
                     "写上各部门打开本系统页面的地址，如 https://shian.example.gov.cn")
    feed_tokens, dept_tokens = ({}, {}) if offline else _tokens(config, raw, problems, env)
    if problems.items:
        raise ConfigError(problems.items)
    limit = raw.auth_failures
    return ServiceSettings(config=config, host=host, port=port, data_dir=path(raw.data_dir),
                           drop_dir=path(raw.drop_dir) if raw.drop_dir else None,
                           snapshot_every=raw.snapshot_every, feed_names={k: f.name for k, f in raw.feeds.items()},
                           public_url=raw.public_url.rstrip("/") if raw.public_url else None,
                           _feed_tokens=feed_tokens, _dept_tokens=dept_tokens,
                           auth_failures=FailureLimit(limit.burst, limit.per_minute, limit.addresses))


def _tokens(config: Config, raw: _Section, problems: Problems, env: Mapping[str, str]
            ) -> tuple[dict[str, str], dict[str, str]]:
    """The feeds' and the departments' tokens (feed or department id → token), each checked."""

    def token_of(keys: tuple[Any, ...], spec: TokenSpec) -> str | None:
        if bool(spec.token) == bool(spec.token_env):
            problems.add(keys, "应当且只能给出 token 或 token_env 之一", "写上存放令牌的环境变量名，如 token_env: SHIAN_TOKEN_HH")
            return None
        if spec.token_env:
            value = env.get(spec.token_env)
            if not value:
                problems.add(keys + ("token_env",), f"环境变量 {spec.token_env} 未设置", "启动前设置该环境变量")
            return value
        if spec.token is not None and len(spec.token) < 8:
            problems.add(keys + ("token",), "令牌太短", "至少 8 个字符，最好用随机生成的长字符串")
        return spec.token

    feed_tokens: dict[str, str] = {}
    dept_tokens: dict[str, str] = {}
    for feed_id, f in raw.feeds.items():
        if (tok := token_of(("service", "feeds", feed_id), f)) is not None:
            feed_tokens[feed_id] = tok
    for dept_id, spec in raw.tokens.items():
        if dept_id not in config.departments:
            problems.add(("service", "tokens", dept_id), f"未知的部门 id“{dept_id}”", "使用 departments 下的部门 id")
        if (tok := token_of(("service", "tokens", dept_id), spec)) is not None:
            dept_tokens[dept_id] = tok
    values = list(feed_tokens.values()) + list(dept_tokens.values())
    if len(set(values)) != len(values):
        problems.add(("service",), "不同的来源或部门用了相同的令牌", "每个来源、每个部门各用一个令牌")
    return feed_tokens, dept_tokens
