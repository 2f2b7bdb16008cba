"""Catch-up: what is sent when the clock has jumped (a late start, a downtime, a backfill).

Every notice is still recorded with its own ``at`` (the notices output does not change); these
decisions are about delivery only, and they are pure: the outbox and the dispatcher store and
act on them.

- **Held reminders.** A reminder (the rules of :data:`DEADLINES`) whose action date has passed
  when it would be sent is not sent: its rows are ``held``, the reason in words in the
  delivery record (:func:`hold_reason`). The action date is the date the reminder asks for
  (``于…前``); it has passed at the instant the reminder's own overdue notice fires — 00:00
  after the report's ``due_date`` (``period`` and ``report.reminder``'s ``due_day`` when the
  notice lacks the fact), 00:00 of the holiday for a campaign.
- **Inhibition** (as Alertmanager's inhibit rules: a source matcher, a target matcher and the
  labels that must be equal): a stored notice of a source rule holds every notice of the
  target rule with the same labels, even one that is already due (:data:`INHIBITIONS`).
- **Summary.** A notice that reaches the outbox more than ``catch_up_after`` after its ``at``
  (:func:`shian.notifiers.timing.is_late`) goes, with every other late one for the same
  department and channel, into one 补发汇总 message (grouped there by month and rule), unless
  it is critical: a critical notice always goes on its own. An escalation of a late notice
  (:data:`ESCALATIONS`) joins that summary while it waits, however fresh it is itself.
- **Periods.** A group of notices of one rule and township never mixes months:
  :func:`period_of` is part of its key.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Callable, Iterable, Literal, Sequence

from shian.rules.config import Config
from shian.rules.families import RULES
from shian.rules.measures import report_due
from shian.rules.notice import Notice, notice_id, notice_key
from shian.rules.timeutil import local_midnight

from . import timing

_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class Inhibition:
    """A stored notice of one of ``sources`` inhibits the ``target`` notices whose ``equal``
    labels are its own (``township`` is the notice's; any other label is one of its facts)."""
    target: str
    sources: tuple[str, ...]
    equal: tuple[str, ...]


INHIBITIONS: tuple[Inhibition, ...] = (
    Inhibition("report.reminder", ("report.overdue", "report.escalation"), ("township", "reporter", "period")),
    Inhibition("campaign.reminder", ("campaign.missed",), ("township", "holiday", "date")),
)


@dataclass(frozen=True)
class Escalation:
    """``rule`` escalates another notice: the one named by its fact ``fact``, or the notice of
    rule ``of`` whose key (§4) has the same township and the facts ``equal`` as its tail."""
    rule: str
    fact: str | None = None
    of: str | None = None
    equal: tuple[str, ...] = ()


ESCALATIONS: dict[str, Escalation] = {e.rule: e for e in (
    Escalation("report.escalation", of="report.overdue", equal=("reporter", "period")),
    Escalation("notice.unacknowledged", fact="notice_id"),
    Escalation("notice.unresolved", fact="notice_id"),
)}


@dataclass(frozen=True)
class Deadline:
    """A reminder's action date (``asked``: the date it asks for) and the instant it has passed."""
    asked: date
    passes: datetime


def _iso_date(value: object) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def _report_deadline(n: Notice, config: Config) -> Deadline | None:
    """``于<due_date>前报送``: passed at 00:00 after it, when ``report.overdue`` fires."""
    asked = _iso_date(n.facts.get("due_date"))
    if asked is not None:
        return Deadline(asked, local_midnight(asked + timedelta(days=1), config.tz))
    period = str(n.facts.get("period", ""))
    if not _PERIOD.fullmatch(period):
        return None
    passes = report_due(period, config.params("report.reminder").due_day, config.tz)
    return Deadline(passes.date() - timedelta(days=1), passes)


def _campaign_deadline(n: Notice, config: Config) -> Deadline | None:
    """``请于<date>前组织…检查``: passed at 00:00 of the holiday, when ``campaign.missed`` fires."""
    asked = _iso_date(n.facts.get("date"))
    return Deadline(asked, local_midnight(asked, config.tz)) if asked is not None else None


DEADLINES: dict[str, Callable[[Notice, Config], Deadline | None]] = {
    "report.reminder": _report_deadline,
    "campaign.reminder": _campaign_deadline,
}


def _cn_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _name(rule: str) -> str:
    spec = RULES.get(rule)
    return spec.summary if spec is not None and spec.summary else rule


def labels(n: Notice, names: Iterable[str]) -> tuple[object, ...]:
    return tuple(n.township if name == "township" else n.facts.get(name) for name in names)


def inhibitor(target: Notice, stored: Iterable[Notice]) -> Notice | None:
    """The first stored notice that inhibits ``target`` (None: nothing does). A target missing
    one of the labels is never inhibited: it cannot be told apart."""
    for rule in INHIBITIONS:
        if rule.target != target.rule:
            continue
        want = labels(target, rule.equal)
        if None in want:
            continue
        for n in stored:
            if n.rule in rule.sources and n.id != target.id and labels(n, rule.equal) == want:
                return n
    return None


def sources_of(rule: str) -> tuple[str, ...]:
    """The rules whose notices may inhibit a notice of ``rule``."""
    return tuple(s for i in INHIBITIONS if i.target == rule for s in i.sources)


def hold_reason(n: Notice, now: datetime, config: Config, stored: Iterable[Notice]) -> str | None:
    """Why ``n`` is not sent at ``now`` (None: it is sent), in words for the delivery record."""
    by = inhibitor(n, stored)
    if by is not None:
        return f"不发送：已被“{_name(by.rule)}”通知（通知编号 {by.id}）取代"
    deadline = DEADLINES[n.rule](n, config) if n.rule in DEADLINES else None
    if deadline is not None and now >= deadline.passes:
        local = now.astimezone(config.tz)
        return (f"不发送：提醒要求于{_cn_date(deadline.asked)}前办理，"
                f"发送时（{_cn_date(local.date())} {local:%H:%M}）该日期已过")
    return None


def holds(notices: Sequence[Notice], now: datetime, config: Config,
          stored: Callable[[tuple[str, ...], str], list[Notice]]) -> dict[str, str]:
    """The notices of a batch about to go out that are held, with the reasons; ``stored(rules,
    township)`` reads the stored notices of those rules in that township."""
    seen: dict[tuple[tuple[str, ...], str], list[Notice]] = {}
    out: dict[str, str] = {}
    for n in notices:
        if n.rule not in DEADLINES and not sources_of(n.rule):
            continue
        key = (sources_of(n.rule), n.township)
        if key not in seen:
            seen[key] = stored(*key) if key[0] else []
        reason = hold_reason(n, now, config, seen[key])
        if reason is not None:
            out[n.id] = reason
    return out


def escalated_ids(n: Notice) -> tuple[str, ...]:
    """The ids of the notices ``n`` escalates (empty: it escalates none)."""
    e = ESCALATIONS.get(n.rule)
    if e is None:
        return ()
    if e.fact is not None:
        named = n.facts.get(e.fact)
        return (str(named),) if named else ()
    tail = labels(n, e.equal)
    if None in tail or e.of is None:
        return ()
    return (notice_id(notice_key(e.of, n.township, *map(str, tail))),)


def period_of(n: Notice, tz: tzinfo) -> str:
    """The month a notice is about, ``YYYY-MM``: its ``period`` fact (report and pass-rate
    rules), else the local month of its ``at``."""
    period = n.facts.get("period")
    if isinstance(period, str) and _PERIOD.fullmatch(period):
        return period
    return n.at.astimezone(tz).strftime("%Y-%m")


Route = Literal["alone", "group", "summary", "follow"]


def route(n: Notice, received: datetime, settings: timing.TimingSettings, *, follows_late: bool) -> Route:
    """How a notice the outbox receives at ``received`` goes out: ``alone`` (a late critical
    notice), ``summary`` (late: into its department's catch-up summary), ``follow`` (an
    escalation of a late notice: into the summary if one waits, else as ``group``), or
    ``group`` (with the notices of its rule, township and period arriving within the group
    wait)."""
    late = timing.is_late(n.at, received, settings)
    if n.severity == "critical":
        return "alone" if late else "group"
    if late:
        return "summary"
    return "follow" if follows_late and settings.catch_up_after is not None else "group"


def sections(notices: Iterable[Notice], tz: tzinfo) -> list[tuple[str, list[tuple[str, list[Notice]]]]]:
    """A summary's notices by month (oldest first), then rule (in order of first appearance),
    each in order of ``at``."""
    months: dict[str, dict[str, list[Notice]]] = {}
    for n in sorted(notices, key=lambda n: (n.at, n.id)):
        months.setdefault(period_of(n, tz), {}).setdefault(n.rule, []).append(n)
    return [(p, list(months[p].items())) for p in sorted(months)]
