"""Input as it arrives, and what became of it: one ``Record`` per line or row, one ``Reject``
for input that was not taken, one ``Outcome`` per line handed to a runtime.

Every input path — replay, ingest, the embedded service, its drop folder, the HTTP upload, the
Kafka worker and notifier — reads into these and writes rejects through :meth:`Record.reject`
(the one place a reject record is built), so a reject looks the same wherever it was made:
``{"source", "line", "raw", "reason"}``. Plain values, no I/O.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .events import reject_field
from .timeutil import fmt

WHOLE_FILE = "整个文件"

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"


class UnreadableInput(ValueError):
    """A JSON document that cannot be read at all (the reason in Chinese): the caller refuses
    the whole body rather than one line of it."""


def as_text(raw: Any) -> str:
    """The input as text for a reject: bytes decoded (bad bytes shown as U+FFFD, the line end
    dropped), a parsed value as its JSON; always encodable as UTF-8 (a lone surrogate is shown
    as ``\\udxxx``)."""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace").rstrip("\r\n")
    return storable(raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False))


def storable(text: str) -> str:
    """``text`` encodable as UTF-8 (SQLite, files): a lone surrogate (from a file name, a
    decoded cell, an escape) is kept visible as ``\\udxxx`` instead of failing the write."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


@dataclass(slots=True)
class Reject:
    """Input that was not taken, with the reason in Chinese; ``at``: when a runtime refused
    it (kept with the service's rejects; not part of the §5 reject record)."""

    source: str
    line: Any
    raw: str
    reason: str
    at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "raw": self.raw, "reason": self.reason}

    @property
    def place(self) -> str:
        """Where it was, for people: its line or sheet and rows (``抽检!3-5``), or 整个文件."""
        text = "" if self.line is None else str(self.line)
        return WHOLE_FILE if text in ("", "0") else text

    @property
    def field(self) -> str:
        """The field its reason names (:func:`~shian.rules.events.reject_field`), or ""."""
        return reject_field(self.reason)


@dataclass(slots=True)
class Record:
    """One line of JSON Lines (``raw``, bytes or text, not yet parsed), one spreadsheet row
    already mapped to an event object (``obj``), or input that could not be read (``reason``)."""

    source: str
    line: Any
    raw: bytes | str
    obj: dict[str, Any] | None = None
    reason: str | None = None

    def reject(self, reason: str | None = None) -> Reject:
        """This record refused, for ``reason`` (default: why it could not be read). Its text is
        the input as it came (the line, the row's cells), else the event object as JSON."""
        raw = self.raw if self.raw or self.obj is None else self.obj
        return Reject(self.source, self.line, as_text(raw), reason or self.reason or "无法读取该行")

    @property
    def payload(self) -> Any:
        """What the validator reads: the mapped object, else the raw line."""
        return self.obj if self.obj is not None else self.raw


def ack_event(notice_id: str, township: str, dept: str, action: str, at: datetime,
              note: str | None = None) -> dict[str, Any]:
    """The ``ack`` event (§1) of 签收 / 办结 of a notice by a department at ``at`` (whole
    seconds), with the id every path gives it: ``ack|close-<notice>-<dept>-<YYYYmmddHHMMSS>``."""
    at = at.replace(microsecond=0)
    obj = {"type": "ack", "id": f"{'close' if action == '办结' else 'ack'}-{notice_id}-{dept}-{at:%Y%m%d%H%M%S}",
           "township": township, "notice_id": notice_id, "by": dept, "action": action, "acked_at": fmt(at)}
    if note:
        obj["note"] = note
    return obj


@dataclass(slots=True)
class Outcome:
    """What happened to one line handed to a runtime: accepted, duplicate or rejected."""

    status: str
    line: Any = None
    id: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.line is not None:
            out["line"] = self.line
        if self.id is not None:
            out["id"] = self.id
        if self.reason is not None:
            out["reason"] = self.reason
        return out
