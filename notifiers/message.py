"""What travels from rendering to a channel, and what a channel answers.

A channel's ``send`` never raises for a delivery problem: it answers DELIVERED, RETRY (try
again later: SMTP 4xx, connection refused, HTTP 5xx, rate limit) or FAILED (for good: SMTP 5xx,
bad address, a webhook that refuses the request), with the error in words — Alertmanager's
"retry?" plus the error.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from shian.rules.config import Department


# The bodies a message can carry; a channel's spec says which it sends (e-mail: text and
# HTML; the robots: markdown or text), and a message rendered for it carries only those ("").
BODIES = frozenset({"text", "html", "markdown"})


@dataclass(frozen=True)
class Message:
    """One message to one department: one notice, a group of notices of one rule and township,
    or a daily digest. ``ref`` identifies the delivery (same ref → same message, so a
    redelivery is recognisable): email ``Message-ID`` and a header, and the robots' text.
    ``text_breaks`` / ``markdown_breaks``: where in ``text`` / ``markdown`` a notice of a group
    or digest begins (offsets), the places a chat robot with a size limit may split it."""
    ref: str
    notice_ids: tuple[str, ...]
    dept: str
    severity: str
    subject: str
    text: str
    html: str
    markdown: str
    headers: tuple[tuple[str, str], ...] = field(default=())
    text_breaks: tuple[int, ...] = field(default=())
    markdown_breaks: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:  # read back from JSON (the outbox), lists become tuples again
        for name in ("text_breaks", "markdown_breaks"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    error: str = ""
    retry_after: float | None = None  # seconds, when the far side (or a rate limit) says when

    @property
    def retry(self) -> bool:
        return self.outcome is Outcome.RETRY


DELIVERED = Result(Outcome.DELIVERED)


class Channel(Protocol):
    """One delivery channel. ``name`` is what the outbox records (email, wecom, dingtalk, file).
    ``dept`` is the department as configured: the channel reads its own contact from it through
    its ChannelSpec (:mod:`shian.notifiers.channels`). A channel that takes several sends at
    once says how many as ``concurrency`` (the e-mail channel: ``smtp.connections``); the
    dispatcher hands one without it one send at a time."""
    name: str

    async def send(self, dept_id: str, dept: Department, message: Message) -> Result: ...

    async def close(self) -> None: ...
