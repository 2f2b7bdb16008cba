"""A fire drill (``shian notify test``): a test message over every channel a department receives
on, so an office learns that an address or a robot does not work before a real notice depends
on it.

The message is sent straight through the channels — no notice, nothing in the outbox, no
retry — and each channel's answer is reported as it came: delivered, or the far side's own
refusal (the SMTP reply code and text, the robot's errcode and errmsg), in the channel's words.
A department that receives on no channel at all fails the drill too: its notices would reach
it only on the dashboard.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping

from .channels import FULL_LABELS
from .message import Channel, Outcome, Result
from .render import Renderer
from .settings import Settings

_URL = re.compile(r"\w+://\S+")


@dataclass(frozen=True)
class Drilled:
    """One channel of one department in the drill (``channel`` None: it has none)."""
    dept: str
    channel: str | None
    result: Result

    @property
    def ok(self) -> bool:
        """Delivered to every address: a message delivered with some recipients refused is a failure."""
        return self.channel is not None and self.result.outcome is Outcome.DELIVERED and not self.result.error


NO_CHANNEL = Result(Outcome.FAILED, "没有可用的通知渠道（没有邮箱地址或未设 notifiers.smtp，也没有群机器人）：通知只能在仪表盘上看到")


async def drill(settings: Settings, channels: Mapping[str, Channel], depts: Iterable[str],
                now: datetime) -> list[Drilled]:
    """Sends the drill's message to each department over each of its channels, one at a time."""
    renderer = Renderer(settings)
    out: list[Drilled] = []
    for dept_id in depts:
        names = [c for c in settings.channels_of(dept_id) if c in channels]
        if not names:
            out.append(Drilled(dept_id, None, NO_CHANNEL))
        for name in names:
            message = renderer.drill(dept_id, name, now)
            try:
                result = await channels[name].send(dept_id, settings.config.departments[dept_id], message)
            except Exception as e:  # the drill's boundary: whatever a channel does is its answer
                result = Result(Outcome.FAILED, _URL.sub("<URL>", f"程序错误：{type(e).__name__}: {e}"))
            out.append(Drilled(dept_id, name, result))
    return out


def lines(settings: Settings, results: list[Drilled], now: datetime) -> list[str]:
    """The drill's report, one line per department and per channel, and a total."""
    out = [f"通知渠道测试（{now:%Y-%m-%d %H:%M}）："]
    seen: set[str] = set()
    for r in results:
        if r.dept not in seen:
            seen.add(r.dept)
            d = settings.config.departments[r.dept]
            out.append(f"{d.name}（{r.dept}）")
        if r.channel is None:
            out.append(f"  失败：{r.result.error}")
            continue
        label = FULL_LABELS.get(r.channel, r.channel)
        if r.ok:
            out.append(f"  {label}：已送达")
        elif r.result.outcome is Outcome.DELIVERED:
            out.append(f"  {label}：部分送达——{r.result.error}")
        else:
            out.append(f"  {label}：未送达——{r.result.error or '（对方没有说明原因）'}")
    sent = [r for r in results if r.channel is not None]
    ok = sum(r.ok for r in sent)
    total = f"合计：{len(seen)} 个部门、{len(sent)} 个渠道；送达 {ok}，未送达 {len(sent) - ok}"
    bare = len(results) - len(sent)
    out.append(total + (f"；没有通知渠道的部门 {bare}" if bare else ""))
    return out
