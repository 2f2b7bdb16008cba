"""Silences (静默): notices that are recorded but never sent.

A silence names a rule, a township or both, and an interval [start, end); it mutes every
notice of that rule and township whose ``at`` lies in the interval. Silences come from the
config (``notifiers.silences``) and from the command line at run time; the latter are kept in
the outbox database (:meth:`Outbox.add_silence`, :meth:`Outbox.silences`,
:meth:`Outbox.expire_silence`), so they survive restarts, and drop out of the list once their
end has passed. A muted notice is stored with its deliveries in state ``silenced``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from shian.rules.config import Config
from shian.rules.families import RULES
from shian.rules.notice import Notice

from .settings import Silence

#: Rules raised by the delivery side itself; they can be silenced too.
DELIVERY_RULES = ("delivery.failed",)


@dataclass(frozen=True)
class StoredSilence(Silence):
    """A silence added at run time: its id in the outbox, who added it and when."""
    id: int = 0
    by: str = ""
    created: datetime | None = None


def muting(notice: Notice, silences: Iterable[Silence]) -> Silence | None:
    """The first silence that mutes ``notice``, if any."""
    return next((s for s in silences if s.mutes(notice.rule, notice.township, notice.at)), None)


def check(config: Config, rule: str | None, township: str | None,
          start: datetime, end: datetime) -> list[str]:
    """What is wrong with a silence about to be added (empty when it is fine), in words."""
    problems = []
    if rule is None and township is None:
        problems.append("静默须指定规则或乡镇（或两者），否则会屏蔽全部通知")
    if rule is not None and rule not in RULES and rule not in DELIVERY_RULES:
        problems.append(f"未知的规则 id“{rule}”；可用的规则：{', '.join((*RULES, *DELIVERY_RULES))}")
    if township is not None and township not in config.townships:
        problems.append(f"未配置的乡镇“{township}”；可用的乡镇：{', '.join(config.townships)}")
    if end <= start:
        problems.append("结束时间应晚于开始时间")
    return problems
