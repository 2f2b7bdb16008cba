"""WeCom (企业微信) group robot: a markdown card (or, with ``msgtype: text``, the plain text)
POSTed to the webhook (``…/send?key=…``). The robot takes at most 4,096 bytes of markdown and
2,048 of text (UTF-8; errcode 40058 beyond): a longer message goes as numbered parts.

Answers come as HTTP 200 with an errcode:

=======================================================  =========
0                                                        DELIVERED
45009 (over the robot's limit of about 20 a minute)      RETRY, retry_after 60 s
-1 (system busy)                                         RETRY
93000 (invalid webhook key), 40008, any other            FAILED
=======================================================  =========

Config: ``departments.<id>.wecom: {webhook: …}`` or ``{webhook_env: VAR}`` (no signing secret).
"""
from __future__ import annotations

from typing import Any, Mapping

from shian.notifiers.channels.robot import ROBOT, Part, Robot, RobotChannel, check_robot
from shian.notifiers.channels.spec import ChannelSpec, Label
from shian.notifiers.message import Message, Outcome, Result
from shian.rules.config import Problems

RETRY_LATER = {45009: 60.0, -1: None}


def check(robot: Robot | None, keys: tuple[str, ...], problems: Problems, env: Mapping[str, str]) -> None:
    check_robot(robot, keys, problems, env)
    if robot is not None and robot.secret_env:
        problems.add(keys + ("secret_env",), "企业微信群机器人没有签名密钥", "删除该键")


class WecomChannel(RobotChannel):
    limits = {"markdown": 4096, "text": 2048}

    def request(self, url: str, robot: Robot, message: Message,
                part: Part | None = None) -> tuple[dict[str, str], dict[str, Any], list[str]]:
        content = self.first(robot, message, part).content
        return {}, {"msgtype": robot.msgtype, robot.msgtype: {"content": content}}, []

    def answer(self, errcode: int, errmsg: str) -> Result:
        if errcode in RETRY_LATER:
            return Result(Outcome.RETRY, f"{self.label}暂时拒绝：errcode {errcode} {errmsg}",
                          retry_after=RETRY_LATER[errcode])
        return Result(Outcome.FAILED, f"{self.label}拒绝：errcode {errcode} {errmsg}")


SPEC = ChannelSpec(
    name="wecom",
    label=Label(short="企业微信", full="企业微信群机器人"),
    make=WecomChannel,
    contact=ROBOT,
    check_contact=check,
    bodies=frozenset({"text", "markdown"}),
)
WecomChannel.spec = SPEC
