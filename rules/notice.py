"""Notices (§4): what a rule says, to whom, when; identified by a hash of its key."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .timeutil import fmt

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
PROGRAM_NAMES = {"food_sampling": "食品安全抽检", "agri_monitoring": "食用农产品监测", "rapid_test": "快检"}


def notice_key(rule: str, township: str, *tail: str) -> str:
    """The key that identifies a notice (§4): ``rule|township|tail…``, e.g.
    ``report.overdue|红河镇|新寨村|2026-04``. Every notice's key is made here."""
    return "|".join((rule, township, *tail))


def notice_id(key: str) -> str:
    """First 16 hex digits of SHA-256 of the key: anyone can recompute it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


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
