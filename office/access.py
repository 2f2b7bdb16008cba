"""Who may do what over HTTP, decided in one place, and how often an address may fail to
authenticate.

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
made for every input path alike. These decisions are pure functions (no I/O, no clock);
:class:`FailureLimiter` keeps its counts in memory, on a clock it is given.
"""
from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from shian.office.settings import FailureLimit


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


# -- failed authentications ----------------------------------------------------------------

def address_key(remote: str | None) -> str:
    """The client an address stands for: an IPv4 address itself, an IPv6 address its /64
    (one household or office holds a whole /64)."""
    if not remote:
        return "-"
    try:
        ip = ipaddress.ip_address(remote.split("%")[0])
    except ValueError:
        return remote
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class FailureLimiter:
    """Failed authentications per client address, as a token bucket: ``limit.burst`` failures
    in a row, then ``limit.per_minute``. An address out of failures is refused (429) before its token is
    even looked at — otherwise a guess could still be told right from wrong — until one
    failure has grown back. Only failures count: an address that authenticates is never
    slowed. At most ``limit.addresses`` are remembered (the least recently failing forgotten
    first), so memory stays bounded whatever the number of addresses."""

    def __init__(self, limit: FailureLimit = FailureLimit(), clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.rate, self.addresses = float(limit.burst), limit.per_minute / 60.0, limit.addresses
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (left, when)

    def _left(self, key: str, now: float) -> float:
        left, when = self._buckets.get(key, (self.burst, now))
        return min(self.burst, left + (now - when) * self.rate)

    def retry_after(self, remote: str | None) -> int:
        """Whole seconds until ``remote`` may try again (0: it may now)."""
        left = self._left(address_key(remote), self.clock())
        return 0 if left >= 1.0 else max(1, math.ceil((1.0 - left) / self.rate))

    def failed(self, remote: str | None) -> None:
        """One failed authentication from ``remote``."""
        key, now = address_key(remote), self.clock()
        left = max(0.0, self._left(key, now) - 1.0)
        self._buckets[key] = (left, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.addresses:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
