"""DingTalk (钉钉) custom robot: a markdown message (or, with ``msgtype: text``, the plain text)
POSTed to ``…/robot/send?access_token=…``, signed when the robot has a signing secret
(``secret_env``).

Size: the robot's documentation gives no figure; its answer to a longer request is errcode
460101 "message too long, exceed 20000 bytes" (also worded "body 大小不合法…请保持大小在
20000bytes 以内"), so the whole request body, sent as UTF-8 JSON, is kept within 20,000 bytes
(:data:`BODY_LIMIT`) and a longer message goes as numbered parts.

Answers come as HTTP 200 with an errcode:

=======================================================  =========
0                                                        DELIVERED
130101 (sending too fast), 410100 (rate limited)         RETRY, retry_after 60 s
-1 (system busy)                                         RETRY
310000 (sign / keyword / IP check), 300001 (token), …    FAILED
=======================================================  =========

Config: ``departments.<id>.dingtalk: {webhook: …}`` or ``{webhook_env: VAR}``, and
``secret_env: VAR`` when the robot signs (加签).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from shian.notifiers.channels.email import clean
from shian.notifiers.channels.parts import Size
from shian.notifiers.channels.robot import ROBOT, Part, Robot, RobotChannel, check_robot
from shian.notifiers.channels.spec import ChannelSpec, Label, secret
from shian.notifiers.message import Message, Outcome, Result
from shian.rules.config import Problems

if TYPE_CHECKING:
    from shian.notifiers.settings import Settings

RETRY_LATER = {130101: 60.0, 410100: 60.0, -1: None}
HINTS = {310000: "（加签、关键词或 IP 校验未通过）", 300001: "（access_token 无效）", 460101: "（消息过长）"}
BODY_LIMIT = 20_000  # bytes of the request body (see the module)


def json_size(text: str) -> int:
    """Bytes ``text`` takes inside a UTF-8 JSON string (escapes counted)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2


def sign(secret_value: str, timestamp_ms: int) -> str:
    """base64(HMAC-SHA256(key=secret, msg="{timestamp}\\n{secret}")); the caller URL-encodes it."""
    digest = hmac.new(secret_value.encode(), f"{timestamp_ms}\n{secret_value}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check(robot: Robot | None, keys: tuple[str, ...], problems: Problems, env: Mapping[str, str]) -> None:
    check_robot(robot, keys, problems, env)
    if robot is not None and robot.secret_env and robot.secret_env not in env:
        problems.add(keys + ("secret_env",), f"环境变量 {robot.secret_env} 未设置", "启动前设置该环境变量（加签密钥 SEC…）")


class DingtalkChannel(RobotChannel):

    def __init__(self, settings: Settings, *, now: Callable[[], float] = time.monotonic,
                 timeout: float = 10.0, wall: Callable[[], float] = time.time) -> None:
        super().__init__(settings, now=now, timeout=timeout)
        self._wall = wall

    @staticmethod
    def _body(robot: Robot, title: str, content: str) -> dict[str, Any]:
        if robot.msgtype == "text":
            return {"msgtype": "text", "text": {"content": content}}
        return {"msgtype": "markdown", "markdown": {"title": title, "text": content}}

    def budget(self, robot: Robot, message: Message) -> tuple[int, Size]:
        """The body's limit less everything but the text (with the longest title a part gets)."""
        frame = self._body(robot, self._title(message, Part("", 99, 99)), "")
        return BODY_LIMIT - len(json.dumps(frame, ensure_ascii=False).encode("utf-8")), json_size

    @staticmethod
    def _title(message: Message, part: Part) -> str:
        """What the conversation list shows: the subject, with the part's number."""
        title = clean(message.subject) or "食安预警"
        return title + (f"（{part.index}/{part.count}）" if part.count > 1 else "")

    def request(self, url: str, robot: Robot, message: Message,
                part: Part | None = None) -> tuple[dict[str, str], dict[str, Any], list[str]]:
        part = self.first(robot, message, part)
        body = self._body(robot, self._title(message, part), part.content)
        if not robot.secret_env:
            return {}, body, []
        key = secret(robot.secret_env)
        if not key:
            raise LookupError(f"{self.label}的加签密钥未设置（环境变量 {robot.secret_env}）")
        ts = int(self._wall() * 1000)
        signature = sign(key, ts)
        return {"timestamp": str(ts), "sign": signature}, body, [key, signature]

    def answer(self, errcode: int, errmsg: str) -> Result:
        if errcode in RETRY_LATER:
            return Result(Outcome.RETRY, f"{self.label}暂时拒绝：errcode {errcode} {errmsg}",
                          retry_after=RETRY_LATER[errcode])
        return Result(Outcome.FAILED, f"{self.label}拒绝：errcode {errcode} {errmsg}{HINTS.get(errcode, '')}")


SPEC = ChannelSpec(
    name="dingtalk",
    label=Label(short="钉钉", full="钉钉群机器人"),
    make=DingtalkChannel,
    contact=ROBOT,
    check_contact=check,
    bodies=frozenset({"text", "markdown"}),
)
DingtalkChannel.spec = SPEC
