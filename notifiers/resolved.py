"""办结通报: when a notice is closed (办结), its other recipients hear who closed it and what was
written (opt-in: ``notifiers.resolved_messages: true``).

Acks are events of the runtime's journal, not rows of the outbox: the runtime answers
``acks_after(seq)`` (the ack events journalled after row ``seq``, and the last row read), the
same question the office's pages ask. :class:`ClosingWords` is a watcher of the dispatcher
(:meth:`~shian.notifiers.dispatch.Dispatcher.watch`, wired by the command line): at each step
it reads the acks journalled since it last looked and, for a 办结 of a notice the outbox holds,
adds that notice's closing word to the outbox — a ``notice.resolved`` notice (工作提示, from the
system) to every recipient but the one that closed it, delivered like any other (quiet hours,
grouping, retries, the digest). Its key, ``notice.resolved|township|<notice id>``, makes it one
per notice: a second 办结 (another recipient's) or acks read again after a restart add nothing.

Where the watcher has read to is kept in the outbox (mark ``resolved_acks``); the first time it
runs — the option just switched on — it starts at the journal's end, so notices closed before
then get no closing word.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable, Mapping

from shian.rules.config import Config
from shian.rules.families import RULES
from shian.rules.notice import Notice, notice_id, notice_key
from shian.rules.params import RuleSpec
from shian.rules.timeutil import fmt, parse_time

from .outbox import Outbox

log = logging.getLogger("shian.notifiers.resolved")

RESOLVED = RuleSpec("notice.resolved", "town", "info", summary="办结通报", kind="工作提示", template="resolved")
MARK = "resolved_acks"
AcksAfter = Callable[[int], "tuple[int, list[dict[str, Any]]]"]


def closing_notice(config: Config, notice: Notice, ack: Mapping[str, Any]) -> Notice | None:
    """The 办结通报 of ``notice`` for ``ack`` (an ack event, §1), addressed to every recipient but
    the one that closed it; None for a 签收, for a notice no one else received, or for a closing
    word itself."""
    if (ack.get("action") or "签收") != "办结" or notice.rule == RESOLVED.id:
        return None
    closer = str(ack.get("by") or "")
    others = tuple(r for r in dict.fromkeys(notice.recipients) if r != closer)
    if not others or closer not in notice.recipients:
        return None
    closed_at = parse_time(str(ack["acked_at"]), config.tz).replace(microsecond=0)
    dept = config.departments.get(closer)
    closer_name = dept.name if dept is not None else closer
    spec = RULES.get(notice.rule)
    key = notice_key(RESOLVED.id, notice.township, notice.id)
    facts: dict[str, Any] = {
        "notice_id": notice.id, "notice_rule": notice.rule, "notice_title": notice.title,
        "notice_at": fmt(notice.at), "closed_by": closer, "closed_by_name": closer_name, "closed_at": fmt(closed_at),
    }
    if ack.get("note"):
        facts["note"] = str(ack["note"])
    return Notice(
        id=notice_id(key), rule=RESOLVED.id, severity=RESOLVED.severity, level=notice.level,
        township=notice.township, recipients=others,
        title=f"{closer_name}已办结通知 {notice.id}（{spec.summary if spec else notice.rule}）",
        at=closed_at, due=None, event_ids=(str(ack["id"]),) if ack.get("id") else (), key=key, facts=facts)


class ClosingWords:
    """The dispatcher's watcher that turns 办结 acks into closing words (see the module)."""

    def __init__(self, config: Config, outbox: Outbox, acks_after: AcksAfter) -> None:
        self.config = config
        self.outbox = outbox
        self.acks_after = acks_after

    def __call__(self, now: datetime) -> int:
        """Reads the acks journalled since the last call; returns how many closing words it added."""
        seen = self.outbox.mark(MARK)
        if seen is None:
            end, _ = self.acks_after(0)
            self.outbox.set_mark(MARK, str(end))
            return 0
        end, acks = self.acks_after(int(seen))
        added = 0
        for ack in acks:
            word = self._closing(ack)
            if word is not None and self.outbox.add(word, now):
                added += 1
        if end != int(seen):
            self.outbox.set_mark(MARK, str(end))
        return added

    def _closing(self, ack: Mapping[str, Any]) -> Notice | None:
        named = str(ack.get("notice_id") or "")
        notice = self.outbox.notice(named) or self.outbox.notice(notice_id(named))  # by id, or by its key
        if notice is None:
            return None
        try:
            return closing_notice(self.config, notice, ack)
        except (KeyError, ValueError) as e:  # a journalled ack was validated; this one is not usable
            log.error("ack %s of notice %s gives no closing word: %s", ack.get("id"), named, e)
            return None
