"""What the two chat-group robots share: one HTTP session, a per-webhook rate limit, redaction
of the access key carried in the webhook address, a message too long for the robot sent as
numbered parts (:mod:`.parts`), and the answer mapping up to the errcode.

A message of several parts is delivered when its last part is: a part refused for now (RETRY)
is sent again by the next attempt, which resumes at that part (the parts already delivered are
remembered by the channel, for the process's life); a rate limit full halfway holds the rest
back the same way. Each part takes its own place in the rate limit.

HTTP level (the errcode in a 200 answer is the subclass's to map):

=====================================================  =========
connection refused / reset / timeout                   RETRY
HTTP 5xx, HTTP 429                                     RETRY
other HTTP 4xx, an invalid webhook address             FAILED
200 whose body is not the robot's JSON                 RETRY
own rate limit full (robot_per_minute per 60 s)        RETRY, retry_after = until a slot frees
=====================================================  =========

Config: a department's robot, ``departments.<id>.wecom`` / ``.dingtalk`` (:class:`Robot`).
"""
from __future__ import annotations

import asyncio
import collections
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Callable, ClassVar, Literal, Mapping
from urllib.parse import parse_qsl, urlsplit

from pydantic import AfterValidator

from shian.notifiers.channels.parts import Size, split, utf8
from shian.notifiers.channels.spec import ChannelSpec, secret, strict
from shian.notifiers.message import DELIVERED, Message, Outcome, Result
from shian.rules.config import Department, Problems, Strict

if TYPE_CHECKING:
    import aiohttp

    from shian.notifiers.settings import Settings

WINDOW = 60.0


WEBHOOK_FORM = "应以 https://（或 http://）开头并含主机名，如 https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"


def is_webhook(url: str) -> bool:
    """An http(s) address with a host (a port, if any, a number)."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def webhook_url(value: str) -> str:
    """A webhook written in the file; the address is never repeated in the message (it holds the
    robot's access key)."""
    if not is_webhook(value):
        raise ValueError(f"不是有效的 Webhook 地址：{WEBHOOK_FORM}；从群机器人设置中复制完整地址")
    return value


class Robot(Strict):
    """A chat group robot: its webhook address, given in the file or (because it carries an
    access token) in an environment variable; DingTalk's signing secret only by variable.
    ``msgtype``: ``markdown`` (the card, default) or ``text`` (plain text, for groups whose
    members read them where markdown is not shown, such as WeChat)."""
    webhook: Annotated[str, AfterValidator(webhook_url)] | None = None
    webhook_env: str | None = None
    secret_env: str | None = None
    msgtype: Literal["markdown", "text"] = "markdown"


ROBOT = strict(Robot | None)


def webhook_of(robot: Robot) -> str | None:
    return robot.webhook or secret(robot.webhook_env)


def check_robot(robot: Robot | None, keys: tuple[str, ...], problems: Problems, env: Mapping[str, str]) -> None:
    """One webhook, given once: in the file (an http(s) address) or by a variable that is set."""
    if robot is None:
        return
    if bool(robot.webhook) == bool(robot.webhook_env):
        problems.add(keys, "应当且只能给出 webhook 或 webhook_env 之一", "写上机器人的 Webhook 地址或存放它的环境变量名")
    elif robot.webhook_env and robot.webhook_env not in env:
        problems.add(keys + ("webhook_env",), f"环境变量 {robot.webhook_env} 未设置", "启动前设置该环境变量")
    elif robot.webhook_env and not is_webhook(env[robot.webhook_env]):
        problems.add(keys + ("webhook_env",), f"环境变量 {robot.webhook_env} 的值不是有效的 Webhook 地址",
                     f"{WEBHOOK_FORM}，从群机器人设置中复制完整地址")
_QUERY_SECRET = re.compile(r"(?i)\b(key|access_token|sign|secret)=[^&\s'\"\])>,;]*")


class RateLimit:
    """At most ``per_minute`` sends per key in any 60 s: the robots allow about 20 a minute
    and answer more with an error, so the surplus is held back here without a request."""

    def __init__(self, per_minute: int, now: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.now = now
        self._sent: dict[str, collections.deque[float]] = {}

    def take(self, key: str) -> float | None:
        """Records a send and answers None, or answers the seconds until a slot frees."""
        t = self.now()
        sent = self._sent.setdefault(key, collections.deque())
        while sent and sent[0] <= t - WINDOW:
            sent.popleft()
        if len(sent) >= self.per_minute:
            return max(sent[0] + WINDOW - t, 0.0)
        sent.append(t)
        return None


def redact(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return _QUERY_SECRET.sub(lambda m: m.group(1) + "=***", text)


def url_secrets(url: str) -> list[str]:
    """Every query value of a webhook address: the key / access token it carries."""
    try:
        return [v for _, v in parse_qsl(urlsplit(url).query) if len(v) >= 4]
    except ValueError:
        return []


@dataclass(frozen=True)
class Part:
    """One request's worth of a message: its text and its place among the parts (from 1)."""
    content: str
    index: int = 1
    count: int = 1


class RobotChannel:
    """A chat robot channel; subclasses give the request, their size limits and read the
    errcode, and ``spec`` (their module's ChannelSpec) reads the department's robot and names
    the channel."""
    spec: ClassVar[ChannelSpec]
    limits: ClassVar[Mapping[str, int]] = {"markdown": 4096, "text": 2048}  # by msgtype, UTF-8 bytes
    remembered = 1000  # messages part-way delivered, at most

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        return self.spec.label.full

    def __init__(self, settings: Settings, *, now: Callable[[], float] = time.monotonic,
                 timeout: float = 10.0) -> None:
        import aiohttp  # here, not at the top: loading the config must not pay for the HTTP library

        self.limit = RateLimit(settings.robot_per_minute, now)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._delivered: dict[tuple[str, str], int] = {}  # (webhook, ref) → parts delivered so far

    def request(self, url: str, robot: Robot, message: Message,
                part: Part | None = None) -> tuple[dict[str, str], dict[str, Any], list[str]]:
        """Extra query parameters, the JSON body and further secrets to redact, for one part of
        the message (None: the first, or the whole message when it fits)."""
        raise NotImplementedError

    def answer(self, errcode: int, errmsg: str) -> Result:
        raise NotImplementedError

    def budget(self, robot: Robot, message: Message) -> tuple[int, Size]:
        """How much of the message's text one request may carry, and how it is measured."""
        return self.limits[robot.msgtype], utf8

    def parts(self, robot: Robot, message: Message) -> list[Part]:
        """The message as this robot sends it: its markdown (or text), split when too long."""
        if robot.msgtype == "markdown":
            text, breaks = message.markdown, message.markdown_breaks
        else:
            text, breaks = message.text, message.text_breaks
        limit, size = self.budget(robot, message)
        pieces = split(text.rstrip("\n"), breaks, limit, size=size, ref=message.ref)
        return [Part(p, k, len(pieces)) for k, p in enumerate(pieces, 1)]

    def first(self, robot: Robot, message: Message, part: Part | None) -> Part:
        return part if part is not None else self.parts(robot, message)[0]

    async def send(self, dept_id: str, dept: Department, message: Message) -> Result:
        robot: Robot | None = self.spec.contact_of(dept)
        if robot is None:
            return Result(Outcome.FAILED, f"部门 {dept_id} 没有配置{self.label}")
        url = webhook_of(robot)
        if not url:
            return Result(Outcome.FAILED, f"{self.label}的 Webhook 地址未设置（环境变量 {robot.webhook_env}）")
        parts, key = self.parts(robot, message), (url, message.ref)
        for part in parts[self._delivered.get(key, 0):]:
            result = await self._send_part(url, robot, message, part)
            if result.outcome is not Outcome.DELIVERED:
                if result.outcome is Outcome.FAILED:
                    self._delivered.pop(key, None)
                return result
            self._delivered.pop(key, None)
            self._delivered[key] = part.index
            while len(self._delivered) > self.remembered:
                self._delivered.pop(next(iter(self._delivered)))
        self._delivered.pop(key, None)
        return DELIVERED

    async def _send_part(self, url: str, robot: Robot, message: Message, part: Part) -> Result:
        """One request; its error names the part when there are several."""
        where = f"（第 {part.index}/{part.count} 部分，前 {part.index - 1} 部分已送达）" if part.count > 1 else ""
        secrets = url_secrets(url)
        try:
            params, body, more = self.request(url, robot, message, part)
        except LookupError as e:
            return Result(Outcome.FAILED, str(e))
        wait = self.limit.take(url)
        if wait is not None:
            return Result(Outcome.RETRY, f"群机器人每分钟最多 {self.limit.per_minute} 条，稍后重发{where}", retry_after=wait)
        result = await self._post(url, params, body)
        error = result.error + where if result.error else ""
        return Result(result.outcome, redact(error, secrets + more), result.retry_after)

    async def _post(self, url: str, params: dict[str, str], body: dict[str, Any]) -> Result:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")  # the size the limits are counted in
            async with self._session.post(url, params=params or None, data=data,
                                          headers={"Content-Type": "application/json; charset=utf-8"}) as resp:
                status, text = resp.status, await resp.text(errors="replace")
                retry_after = resp.headers.get("Retry-After", "")
        except aiohttp.InvalidURL:
            return Result(Outcome.FAILED, f"{self.label}的 Webhook 地址无效")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            what = "超时" if isinstance(e, asyncio.TimeoutError) else f"连接失败：{type(e).__name__} {e}"
            return Result(Outcome.RETRY, f"{self.label}{what}")
        if status >= 500 or status == 429:
            return Result(Outcome.RETRY, f"{self.label}答复 HTTP {status}",
                          retry_after=float(retry_after) if retry_after.isdigit() else None)
        if status >= 400:
            return Result(Outcome.FAILED, f"{self.label}拒绝请求：HTTP {status} {text[:200]}")
        try:
            data = json.loads(text)
            errcode = int(data.get("errcode"))
        except (ValueError, TypeError, AttributeError):
            return Result(Outcome.RETRY, f"{self.label}的答复无法识别：HTTP {status} {text[:200]}")
        if errcode == 0:
            return DELIVERED
        return self.answer(errcode, str(data.get("errmsg", ""))[:300])

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
