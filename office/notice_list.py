"""The dashboard's notice list: its filters (from the query string), how they are asked of the
runtime — a :class:`~shian.notifiers.outbox.NoticeQuery`, filtered and paged where the notices
are stored — and the links that keep the filters from page to page.

A notice's state is its recipients' 签收 / 办结, which the journal holds (the acks), not the
outbox: 未签收 (nobody signed for it), 已签收 (signed for, not closed), 已办结 (some recipient
closed it); 待办 is the first two. The state becomes ids the query keeps or leaves out.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Mapping
from urllib.parse import urlencode

from shian.notifiers.outbox import NoticeQuery
from shian.notifiers.render import NOTIFIER_RULES
from shian.rules.config import Config
from shian.rules.families import RULES
from shian.rules.measures import period_bounds

from .receipts import Receipts

PAGE_SIZE = 50
#: state → its name in the filter (the default first)
STATES = {"pending": "待办（未办结）", "open": "未签收", "acked": "已签收", "closed": "已办结", "all": "全部"}
SEVERITY_ORDER = ("critical", "warning", "info")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class Filters:
    """What the list shows: None is no filter. ``everyone``: a logged-in department asked
    for every department's notices rather than its own (``scope=all``)."""
    township: str | None = None
    rule: str | None = None
    severity: str | None = None
    state: str = "pending"
    month: str | None = None
    dept: str | None = None
    everyone: bool = False
    page: int = 1

    def params(self, **change: Any) -> list[tuple[str, str]]:
        """The query string of these filters with ``change`` applied (defaults left out)."""
        f = dataclasses.replace(self, **change)
        out = [(name, value) for name in ("township", "rule", "severity") if (value := getattr(f, name))]
        if f.state != "pending":
            out.append(("state", f.state))
        out += [(name, value) for name in ("month", "dept") if (value := getattr(f, name))]
        if f.everyone and f.dept is None:
            out.append(("scope", "all"))
        if f.page > 1:
            out.append(("page", str(f.page)))
        return out

    def href(self, **change: Any) -> str:
        query = urlencode(self.params(**change))
        return "/?" + query if query else "/"

    @property
    def narrowed(self) -> bool:
        """Whether any filter but the department's own scope is set."""
        return any((self.township, self.rule, self.severity, self.month, self.state != "pending"))


def rule_ids() -> list[str]:
    """Every rule a notice can come from: the families', then the notifiers' own."""
    return list(dict.fromkeys([*RULES, *NOTIFIER_RULES]))


def read_filters(query: Mapping[str, str], config: Config, mine: str | None) -> Filters:
    """The filters of a query string; a value this county does not know filters nothing.
    ``mine``: the logged-in department, whose notices are listed unless the query names
    another department, or all of them (``dept`` empty or ``scope=all``)."""
    def known(name: str, values: Any) -> str | None:
        value = query.get(name) or None
        return value if value in values else None

    month = query.get("month") or None
    try:
        page = max(1, int(query.get("page", "1")))
    except ValueError:
        page = 1
    if "dept" in query or query.get("scope") == "all":
        dept, everyone = known("dept", config.departments), True
    else:
        dept, everyone = mine, False
    return Filters(township=known("township", config.townships), rule=known("rule", rule_ids()),
                   severity=known("severity", SEVERITY_ORDER), state=known("state", STATES) or "pending",
                   month=month if month and _MONTH.fullmatch(month) else None, dept=dept,
                   everyone=everyone and mine is not None, page=page)


def base_query(f: Filters, tz: tzinfo) -> NoticeQuery:
    """The query of every filter but state and severity (the counts are by those)."""
    since, until = period_bounds(f.month, tz) if f.month else (None, None)
    return NoticeQuery(township=f.township, rule=f.rule, dept=f.dept, since=since, until=until)


def with_state(q: NoticeQuery, state: str, receipts: Receipts) -> NoticeQuery:
    """``q`` narrowed to notices in ``state``, the most urgent first (紧急, then the newest);
    已办结 listed by when they were closed, the latest first."""
    acked, closed = receipts.acked_ids(), receipts.closed_ids()
    if state == "open":
        return dataclasses.replace(q, exclude=tuple(acked), order="severity")
    if state == "acked":
        return dataclasses.replace(q, ids=tuple(acked), exclude=closed, order="severity")
    if state == "closed":
        return dataclasses.replace(q, ids=closed, order="ids")
    if state == "pending":
        return dataclasses.replace(q, exclude=closed, order="severity")
    return dataclasses.replace(q, order="severity")


@dataclass(frozen=True)
class Tally:
    """How many notices each state and severity hold, under the other filters."""
    counts: Mapping[str, Mapping[str, int]]     # state → severity → count

    def count(self, state: str, severity: str | None = None) -> int:
        by = self.counts.get(state, {})
        return by.get(severity, 0) if severity is not None else sum(by.values())


def tally(runtime: Any, q: NoticeQuery, receipts: Receipts) -> Tally:
    """One count asked of the runtime (by severity: all, signed for, closed) makes the rest:
    closing a notice signs for it, so the closed are among the signed for."""
    counts = runtime.notice_tally(q, tuple(receipts.acked_ids()), receipts.closed_ids())
    every = {s: c[0] for s, c in counts.items()}
    acked = {s: c[1] for s, c in counts.items()}
    closed = {s: c[2] for s, c in counts.items()}
    sev = list(dict.fromkeys([*SEVERITY_ORDER, *every]))
    return Tally({
        "all": {s: every.get(s, 0) for s in sev},
        "open": {s: every.get(s, 0) - acked.get(s, 0) for s in sev},
        "acked": {s: acked.get(s, 0) - closed.get(s, 0) for s in sev},
        "closed": {s: closed.get(s, 0) for s in sev},
        "pending": {s: every.get(s, 0) - closed.get(s, 0) for s in sev},
    })


def last_page(total: int, size: int = PAGE_SIZE) -> int:
    return max(1, math.ceil(total / size))


def page_links(f: Filters, last: int) -> list[dict[str, Any]]:
    """The pager: first, previous, a window of pages around this one, next, last; every link
    keeps the filters. ``href`` None: not a link (this page, or a gap)."""
    p = f.page
    shown = sorted({1, last, *range(max(1, p - 2), min(last, p + 2) + 1)})
    links: list[dict[str, Any]] = [{"label": "上一页", "href": f.href(page=p - 1) if p > 1 else None, "rel": "prev"}]
    for i, n in enumerate(shown):
        if i and n - shown[i - 1] > 1:
            links.append({"label": "…", "href": None, "rel": "gap"})
        links.append({"label": str(n), "href": None if n == p else f.href(page=n), "rel": "page",
                      "current": n == p})
    links.append({"label": "下一页", "href": f.href(page=p + 1) if p < last else None, "rel": "next"})
    return links


def months_between(span: tuple[datetime, datetime] | None, tz: tzinfo) -> list[str]:
    """The months (YYYY-MM) from the first notice's to the last one's, the latest first."""
    if span is None:
        return []
    lo, hi = (t.astimezone(tz) for t in span)
    y, m, out = hi.year, hi.month, []
    while (y, m) >= (lo.year, lo.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out
