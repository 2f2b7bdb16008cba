"""DingTalk (钉钉) custom robot: a markdown message POSTed to ``…/robot/send?access_token=…``,
signed when the robot has a signing secret (``secret_env``).

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
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from shian.notifiers.channels.email import clean
from shian.notifiers.channels.robot import ROBOT, Robot, RobotChannel, check_robot
from shian.notifiers.channels.spec import ChannelSpec, Label, secret
from shian.notifiers.message import Message, Outcome, Result
from shian.rules.config import Problems

if TYPE_CHECKING:
    from shian.notifiers.settings import Settings

RETRY_LATER = {130101: 60.0, 410100: 60.0, -1: None}
HINTS = {310000: "（加签、关键词或 IP 校验未通过）", 300001: "（access_token 无效）"}


def sign(secret_value: str, timestamp_ms: int) -> str:
    """base64(HMAC-SHA256(key=secret, msg="{timestamp}\\n{secret}")); the caller URL-encodes it."""
    digest = hmac.new(secret_value.encode(), f"{timestamp_ms}\n{secret_value}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check(robot: Robot | None, keys: tuple[str, ...], problems: Problems, env: Mapping[str, str]) -> None:
    check_robot(robot, keys, problems, env)
    if robot is not None and robot.secret_env and robot.secret_env not in env:
        problems.add(keys + ("secret_env",), f"环境变量 {robot.secret_env} 未设置", "启动前设置该环境变量（加签密钥 SEC…）")


class DingtalkChannel(RobotChannel):
    max_bytes = 20000

    def __init__(self, settings: Settings, *, now: Callable[[], float] = time.monotonic,
                 timeout: float = 10.0, wall: Callable[[], float] = time.time) -> None:
        super().__init__(settings, now=now, timeout=timeout)
        self._wall = wall

    def request(self, url: str, robot: Robot, message: Message) -> tuple[dict[str, str], dict[str, Any], list[str]]:
        body = {"msgtype": "markdown",
                "markdown": {"title": clean(message.subject) or "食安预警", "text": self.content(message)}}
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
)
DingtalkChannel.spec = SPEC
