"""The one interface every rule family implements, and the one it is given (:class:`Context`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Mapping, Protocol, runtime_checkable

from ..measures import Measures, entity_key
from ..params import RuleSpec

__all__ = ["Family", "drop_oldest", "entity_key"]

if TYPE_CHECKING:
    from ..calendar import Calendar
    from ..events import SamplingResult
    from ..notice import Notice
    from ..verdict import Verdict


@dataclass(frozen=True, slots=True)
class Offices:
    """The offices a rule addresses by name rather than by routing: the township's own office,
    the county office, and the county's escalation departments (``county.escalation``)."""

    town: str
    county: str
    escalation: tuple[str, ...]


@runtime_checkable
class Context(Protocol):
    """All a rule family may use of the engine that runs it. The engine implements it; a
    family reaches nothing else (no config, no clock, no other family)."""

    @property
    def tz(self) -> tzinfo:
        """The configured timezone: day, month and holiday boundaries."""

    @property
    def calendar(self) -> Calendar:
        """The official working days (config ``calendar:``, library, statutory fallback): the
        one calendar every working-day count uses. Read it when counting; do not keep it."""

    @property
    def townships(self) -> tuple[str, ...]:
        """The townships this engine owns (all, or a Kafka partition's share), in config order."""

    @property
    def dedup_days(self) -> int:
        """How long accepted events are remembered, so that state for late arrivals is kept as long."""

    @property
    def measures(self) -> Measures:
        """The tallies the engine keeps of accepted events (reports submitted, samples of a
        month, disposals, joint inspections), which the office's figures are made of too."""

    def params(self, rule_id: str) -> Any:
        """The rule's parameters (its ``RuleParams`` subclass, defaults merged with ``rules:``)."""

    def offices(self, township: str) -> Offices:
        """The township's office, the county office and the escalation departments."""

    def reporters(self, township: str) -> tuple[str, ...]:
        """Who owes ``township`` a monthly report."""

    def verdict(self, sample: SamplingResult) -> Verdict:
        """The sample's verdict, judged once per event however many families ask."""

    def schedule(self, at: datetime, fire: Callable[[datetime, Any], None], arg: Any = None) -> None:
        """Call ``fire(at, arg)`` when the clock reaches ``at``."""

    def emit(self, rule: str, township: str, key_tail: str, at: datetime, title: str, facts: dict[str, Any], *,
             route: str | None = None, event_ids: Iterable[str] = (), due: datetime | None = None,
             level: str | None = None, severity: str | None = None,
             recipients: tuple[str, ...] | None = None) -> Notice | None:
        """Raise a notice of ``rule`` keyed ``rule|township|key_tail`` (None when the rule is
        switched off); level and severity default to the rule's spec, recipients to routing."""


class Family:
    """A group of rules sharing state. The engine calls ``start`` once, at the clock start,
    then the handlers for the event types they name; timers call back what they scheduled."""

    name: ClassVar[str]
    RULES: ClassVar[tuple[RuleSpec, ...]]
    #: the rule its deadlines (timers) are of, when it has several rules and the timer's
    #: arguments do not name one (the office's 期限 page shows the rule's name); a mapping
    #: when its timers are of several rules: the handler's name → the rule
    DEADLINE_RULE: ClassVar[str | Mapping[str, str] | None] = None

    def __init__(self, ctx: Context) -> None:
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
