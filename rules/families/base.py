"""The one interface every rule family implements."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from ..measures import entity_key
from ..params import RuleSpec

__all__ = ["Family", "drop_oldest", "entity_key"]

if TYPE_CHECKING:
    from ..engine import Engine


class Family:
    """A group of rules sharing state. The engine calls ``start`` once, at the clock start,
    then the handlers for the event types they name; timers call back what they scheduled."""

    name: ClassVar[str]
    RULES: ClassVar[tuple[RuleSpec, ...]]

    def __init__(self, ctx: "Engine") -> None:
        self.ctx = ctx

    def handlers(self) -> dict[str, Callable[[Any, datetime], None]]:
        return {}

    def start(self, now: datetime) -> None:
        """Schedule the first occurrence at or after ``now`` of each recurring deadline."""

    def forget(self, horizon: datetime) -> None:
        """Drop what is older than ``horizon`` (the clock minus ``dedup_days``); called daily."""


def drop_oldest(times: dict[Any, datetime], horizon: datetime) -> None:
    """Forget entries older than ``horizon`` from a dict kept in (roughly) time order.

    Dicts keep insertion order and the clock only moves forward, so the expired entries are at
    the front; a late arrival out of order is forgotten a little later, never early."""
    while times:
        key = next(iter(times))
        if times[key] >= horizon:
            return
        del times[key]
