"""The 拒收记录 page's filters and rows, and the JSON of ``GET /api/rejects``: what was not
taken, with the same content in both — source, where (line or sheet and row), the field the
reason names, the reason and the input as it came.

Rejects are kept once per input by the runtime (a file read again does not add its rejects
again), newest first; the filters are a text the source contains and a time they were refused
at or after, asked of the runtime so the list is cut where the rejects are stored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any, Mapping
from urllib.parse import urlencode

from shian.rules.records import Reject
from shian.rules.timeutil import fmt, parse_time

PAGE_SIZE = 50
MAX_SOURCE = 200   # characters of a source filter kept
SHOWN_RAW = 300    # characters of an input shown in the list (the API gives it whole)


@dataclass(frozen=True)
class RejectFilters:
    """What the page shows: rejects whose source contains ``source``, refused at or after
    ``since`` (as typed: a date or a time), page ``page``; ``problem`` says why ``since`` was
    not understood (then it filters nothing)."""
    source: str | None = None
    since_text: str = ""
    since: datetime | None = None
    page: int = 1
    problem: str | None = None

    def href(self, **change: Any) -> str:
        f = replace(self, **change)
        params = [(k, v) for k, v in (("source", f.source or ""), ("since", f.since_text)) if v]
        if f.page > 1:
            params.append(("page", str(f.page)))
        return "/rejects?" + urlencode(params) if params else "/rejects"

    @property
    def narrowed(self) -> bool:
        return bool(self.source or self.since_text)


def read_filters(query: Mapping[str, str], tz: tzinfo) -> RejectFilters:
    source = (query.get("source") or "").strip()[:MAX_SOURCE] or None
    since_text = (query.get("since") or "").strip()[:40]
    since, problem = None, None
    if since_text:
        try:
            since = parse_time(since_text, tz)
        except ValueError as e:
            problem = f"起始时间“{since_text}”无法识别（{e}）：请写成 2026-04-01 或 2026-04-01T08:00"
    try:
        page = max(1, int(query.get("page", "1")))
    except ValueError:
        page = 1
    return RejectFilters(source, since_text, since, page, problem)


def last_page(total: int) -> int:
    return max(1, math.ceil(total / PAGE_SIZE))


def row(r: Reject) -> dict[str, Any]:
    """One reject as the page lists it."""
    cut = len(r.raw) > SHOWN_RAW
    return {"at": r.at, "source": r.source, "where": r.place, "field": r.field,
            "reason": r.reason, "raw": r.raw[:SHOWN_RAW] + ("…" if cut else ""),
            "raw_note": f"（共 {len(r.raw):,} 个字符）" if cut else ""}


def to_json(r: Reject) -> dict[str, Any]:
    """One reject as ``GET /api/rejects`` answers it."""
    return {"source": r.source, "line": None if r.line is None else str(r.line), "raw": r.raw, "reason": r.reason,
            "field": r.field, "at": fmt(r.at) if r.at is not None else None}
