"""Notices (§4): what a rule says, to whom, when; identified by a hash of its key."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Mapping

from .timeutil import fmt, parse_time

_text = json.encoder.encode_basestring  # (C) a JSON string as json.dumps(..., ensure_ascii=False) writes it
_value = json.JSONEncoder(ensure_ascii=False).encode
#: the standard library's C encoder with json.dumps's settings, made once (``encode`` makes one per
#: call); without the circular check, which the facts of a rule never need (a cycle is a RecursionError)
_facts = (json.encoder.c_make_encoder(None, json.JSONEncoder().default, _text, None, ": ", ", ", False, False, True)
          if json.encoder.c_make_encoder is not None else None)


def _object(value: dict[str, Any]) -> str:
    return "".join(_facts(value, 0)) if _facts is not None else _value(value)

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
PROGRAM_NAMES = {"food_sampling": "食品安全抽检", "agri_monitoring": "食用农产品监测", "rapid_test": "快检"}


def notice_key(rule: str, township: str, *tail: str) -> str:
    """The key that identifies a notice (§4): ``rule|township|tail…``, e.g.
    ``report.overdue|红河镇|新寨村|2026-04``. Every notice's key is made here."""
    return "|".join((rule, township, *tail))


def notice_id(key: str) -> str:
    """First 16 hex digits of SHA-256 of the key: anyone can recompute it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def _texts(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(map(_text, items)) + "]"


@dataclass(slots=True)
class Notice:
    id: str
    rule: str
    severity: str
    level: str
    township: str
    recipients: tuple[str, ...]
    title: str
    at: datetime
    due: datetime | None
    event_ids: tuple[str, ...]
    key: str
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "severity": self.severity,
            "level": self.level,
            "township": self.township,
            "recipients": list(self.recipients),
            "title": self.title,
            "at": fmt(self.at),
            "due": fmt(self.due) if self.due is not None else None,
            "event_ids": list(self.event_ids),
            "key": self.key,
            "facts": self.facts,
        }

    def to_json_line(self) -> str:
        """``json.dumps(self.to_json(), ensure_ascii=False)``, the same text (the §4 line of
        ``replay --out``), without building the dict and walking it: the fields are known."""
        try:
            return "".join((
                '{"id": ', _text(self.id), ', "rule": ', _text(self.rule), ', "severity": ', _text(self.severity),
                ', "level": ', _text(self.level), ', "township": ', _text(self.township),
                ', "recipients": ', _texts(self.recipients), ', "title": ', _text(self.title),
                ', "at": ', _text(fmt(self.at)), ', "due": ', "null" if self.due is None else _text(fmt(self.due)),
                ', "event_ids": ', _texts(self.event_ids), ', "key": ', _text(self.key),
                ', "facts": ', _object(self.facts), "}",
            ))
        except (TypeError, ValueError, RecursionError):  # not made by a rule: the general encoder says what
            return _value(self.to_json())

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], tz: tzinfo) -> "Notice":
        """A notice from its §4 JSON (as :meth:`to_json` wrote it, e.g. read back from the
        outbox or the ``notices`` topic). Raises KeyError, TypeError or ValueError when it is
        not one."""
        recipients = obj["recipients"]
        if not isinstance(recipients, (list, tuple)) or not all(isinstance(d, str) for d in recipients):
            raise TypeError("recipients 应为部门 id 列表")
        return cls(
            id=str(obj["id"]), rule=str(obj["rule"]), severity=str(obj["severity"]), level=str(obj["level"]),
            township=str(obj["township"]), recipients=tuple(recipients), title=str(obj.get("title") or ""),
            at=parse_time(obj["at"], tz), due=parse_time(obj["due"], tz) if obj.get("due") else None,
            event_ids=tuple(obj.get("event_ids") or ()), key=str(obj["key"]), facts=dict(obj.get("facts") or {}))
