"""What a generated input is made of, and what the oracle is told about each part.

A :class:`Row` is one event as generated: good by construction (``ACCEPT``), an exact re-send
of an earlier good row (``DUPLICATE``), or bad by construction (``REJECT``) with the category
of its fault (``why``). ``line`` is where the path under test reports it (a JSON Lines line
number, ``抽检!3-4`` for the rows of a sample in a sheet), filled in when the input is
assembled; ``None`` means "covered by any reject of the input" (the rows of a file that cannot
be read at all).

A :class:`Case` is one input to one path: the rows, the bytes or files to feed, and a label
that names the hostile construction it came from (``random`` for the mixed ones).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

ACCEPT, DUPLICATE, REJECT = "accept", "duplicate", "reject"

TZ = ZoneInfo("Asia/Shanghai")
#: Good event times are instants in [WINDOW_START, WINDOW_END): replay's clock never jumps
#: more than ``max_jump_days`` (60) between them, whatever the order.
WINDOW_START = datetime(2026, 3, 5, tzinfo=TZ)
WINDOW_END = datetime(2026, 4, 25, tzinfo=TZ)
#: Acks in event-time runs come at ACK_TIME: after every notice a good row can raise.
ACK_TIME = datetime(2026, 4, 28, tzinfo=TZ)
#: The wall clock of the service paths: every good time is behind it (late arrivals).
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=TZ)
#: Times this far ahead are more than max_jump_days past any clock, and a day past NOW.
JUMP_FROM = datetime(2026, 8, 1, tzinfo=TZ)


@dataclass
class Row:
    id: str
    expect: str
    why: str = ""
    obj: Any = None                 # the event object (None: the line is not built from one)
    text: str | bytes | None = None  # the JSON line as written, when not the object's JSON
    line: str | None = None
    note: str = ""                  # what was done to it, for the failure report

    @property
    def good(self) -> bool:
        return self.expect == ACCEPT


@dataclass
class Case:
    path: str
    label: str
    rows: list[Row] = field(default_factory=list)
    data: Any = None                # what the path is fed (bytes, files, a request …)
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        good = sum(r.good for r in self.rows)
        return f"{self.path}:{self.label} ({len(self.rows)} rows, {good} good)"
