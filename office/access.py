"""Who may do what over HTTP, decided in one place.

Callers (the token of a request names one; :func:`shian.office.api.identify`):

- a **feed** (``service.feeds``: a lab, a village's reporting desk) posts events, never a
  签收 / 办结: an ``ack`` line in its upload is rejected, the other lines are accepted;
- a **department** (``service.tokens``) posts events, reads notices and signs for (签收) or
  closes (办结) notices in its own name only — an ``ack`` whose ``by`` names another
  department is rejected. The county office (``county.office``) is a department like the
  others here: it may silence any township (``shian.office.api``), but a 签收 is the receiving
  department's own word that it has the notice, so nobody signs in another's name;
- with no token configured at all (**open access**: a single desk machine, loopback only) the
  person at the machine acts for any department, as the drop folder and ``shian ack`` do —
  those are the machine's own inputs and carry no caller.

Whether the department is among the notice's recipients is the rules' check (CONTRACT §1),
made for every input path alike. These functions are pure: no I/O, no clock of their own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Caller:
    feed: str | None = None
    dept: str | None = None
    open_access: bool = False

    @property
    def label(self) -> str:
        return f"feed:{self.feed}" if self.feed else f"dept:{self.dept}" if self.dept else "open"


def acting_for(caller: Caller, dept: str) -> str | None:
    """Why ``caller`` may not 签收 / 办结 in the name of department ``dept`` (None: it may)."""
    if caller.open_access or caller.dept == dept:
        return None
    if caller.feed is not None:
        return f"数据来源“{caller.feed}”的令牌不能签收或办结通知：请用接收部门自己的令牌"
    return f"令牌属于部门 {caller.dept}，不能以部门 {dept} 的名义签收或办结"


def may_post(caller: Caller, event: Any) -> str | None:
    """Why ``caller`` may not post ``event`` (a validated event; None: it may): an ``ack``
    must come with the token of the department it names in ``by``; other events from anyone
    the API let in."""
    if getattr(event, "type", None) != "ack":
        return None
    why = acting_for(caller, event.by)
    return None if why is None else f"字段 by（签收部门）为“{event.by}”：{why}；此行未接受"
