"""What the two chat-group robots share: one HTTP session, a per-webhook rate limit, redaction
of the access key carried in the webhook address, and the answer mapping up to the errcode.

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
from typing import TYPE_CHECKING, Annotated, Any, Callable, ClassVar, Mapping
from urllib.parse import parse_qsl, urlsplit

from pydantic import AfterValidator

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
    access token) in an environment variable; DingTalk's signing secret only by variable."""
    webhook: Annotated[str, AfterValidator(webhook_url)] | None = None
    webhook_env: str | None = None
    secret_env: str | None = None


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


def truncate_utf8(text: str, limit: int, tail: str) -> str:
    """``text`` within ``limit`` UTF-8 bytes; when cut, at a line end if one is near, never
    inside a character, and followed by ``tail`` (which keeps the reference to the notices)."""
    if len(text.encode()) <= limit:
        return text
    tail_b = tail.encode()[:limit]
    tail = tail_b.decode(errors="ignore")
    room = limit - len(tail.encode())
    head = text.encode()[:room].decode(errors="ignore")
    cut = head.rfind("\n")
    if cut >= len(head) // 2:
        head = head[:cut]
    return head + tail


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


class RobotChannel:
    """A chat robot channel; subclasses give the request and read the errcode, and ``spec``
    (their module's ChannelSpec) reads the department's robot and names the channel."""
    spec: ClassVar[ChannelSpec]
    max_bytes = 4096

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

    def request(self, url: str, robot: Robot, message: Message) -> tuple[dict[str, str], dict[str, Any], list[str]]:
        """Extra query parameters, the JSON body and further secrets to redact."""
        raise NotImplementedError

    def answer(self, errcode: int, errmsg: str) -> Result:
        raise NotImplementedError

    def content(self, message: Message) -> str:
        """The markdown within the robot's size limit, the notice reference kept at the end."""
        ids = [message.ref, *message.notice_ids]
        lines = [ln for ln in message.markdown.rstrip().splitlines() if ln.strip()]
        last = lines[-1] if lines and any(i and i in lines[-1] for i in ids) else f"> 编号：{message.ref}"
        return truncate_utf8(message.markdown, self.max_bytes, f"\n\n……（内容过长，已截断）\n{last}")

    async def send(self, dept_id: str, dept: Department, message: Message) -> Result:
        robot: Robot | None = self.spec.contact_of(dept)
        if robot is None:
            return Result(Outcome.FAILED, f"部门 {dept_id} 没有配置{self.label}")
        url = webhook_of(robot)
        if not url:
            return Result(Outcome.FAILED, f"{self.label}的 Webhook 地址未设置（环境变量 {robot.webhook_env}）")
        secrets = url_secrets(url)
        try:
            params, body, more = self.request(url, robot, message)
        except LookupError as e:
            return Result(Outcome.FAILED, str(e))
        secrets += more
        wait = self.limit.take(url)
        if wait is not None:
            return Result(Outcome.RETRY, f"群机器人每分钟最多 {self.limit.per_minute} 条，稍后重发", retry_after=wait)
        result = await self._post(url, params, body)
        return Result(result.outcome, redact(result.error, secrets), result.retry_after)

    async def _post(self, url: str, params: dict[str, str], body: dict[str, Any]) -> Result:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(url, params=params or None, json=body) as resp:
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
