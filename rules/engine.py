"""The clock, the deadlines and the dispatch of events to the rule families.

One engine serves every runtime: replay drives it with event time, the embedded service and
the Kafka worker with their own clocks. It knows no rule: the families in
:mod:`shian.rules.families` do, and they reach the engine only through the
:class:`~shian.rules.families.base.Context` it implements (``params``, ``emit``, ``schedule``,
``verdict``, ``measures``, ``offices``, ``reporters``, ``tz``, ``townships``, ``dedup_days``).

State kept, and for how long (all bounded):
- event ids with a content fingerprint, for ``dedup_days`` of event time;
- register rows' ids (``entity`` events) with the fingerprints of their versions and the latest
  ``registered_at``, for ``dedup_days`` of clock time from the last version accepted (from the
  clock start for rows that came before it); rows accepted before the clock starts wait for it;
- the measures' tallies, fed with every accepted event, which the families decide on and
  :meth:`Engine.figures` answers from (see :mod:`shian.rules.measures`);
- per rule family, what its rules need (see each family's docstring).
"""
from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

from .calendar import Calendar
from .config import Config
from .events import REGISTER, Event, Rejected, SamplingResult, fingerprint, stable_fingerprint, stable_key
from .families import FAMILIES, RULES, Family
from .families.base import Context, Offices
from .idmemory import DictIds, IdMemory
from .measures import Measures
from .notice import Notice, notice_id, notice_key
from .timers import Timers
from .timeutil import fmt
from .verdict import Judge, Verdict, substance_pattern

SNAPSHOT_MAGIC = b"shian-engine/6\n"  # bump when the state's layout changes (/6: the acks' notices packed)
# Earlier formats this version still reads (their state converts on load); a build that
# reads only earlier ones refuses a newer snapshot with its clear message instead of failing on it later.
READABLE_MAGICS = (SNAPSHOT_MAGIC, b"shian-engine/5\n", b"shian-engine/4\n", b"shian-engine/3\n")
#: The process-local id hashes and fingerprints are kept to 60 bits: an int below 2**60 is 32
#: bytes in memory, one of 64 bits 48 (replay keeps its ids in a plain dict, :class:`DictIds`:
#: about 115 bytes an id instead of 145). The chance that two of a million ids collide stays
#: below one in a million. (Durable engines keep their 64-bit stable hashes, in the arrays of
#: :class:`IdMemory`, about 20 bytes an id: snapshots.)
ID_BITS = (1 << 60) - 1
DUPLICATE_ID = "编号重复但内容不同（duplicate id with different content; the first is kept）"


class SnapshotError(Exception):
    """Saved state this version cannot read."""


Router = Callable[[Config, str, str, "str | None"], tuple[str, ...]]


class Status:
    """What became of an event (plain strings: they are counted per event)."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"


@dataclass(slots=True)
class RegisterId:
    """What the engine remembers of one register row id: the fingerprints of its accepted
    versions, the latest ``registered_at`` among them, and the day (ordinal of the clock's
    date) it is forgotten on — None until the clock starts."""

    fingerprints: tuple[int, ...]
    latest: datetime
    forget_on: int | None


class Engine:
    def __init__(
        self,
        config: Config,
        route: Router,
        sink: Callable[[Notice], None],
        *,
        townships: Iterable[str] | None = None,
        families: Iterable[type[Family]] = FAMILIES,
        durable: bool = False,
        measures: bool = True,
    ) -> None:
        """``townships``: the ones this engine owns (a Kafka partition's share; default all).
        ``families=()`` gives the bare gate — clock, jump check, duplicates — that ``ingest``
        stamps records with; it still keeps the measures (the figures of the Kafka office)
        unless ``measures=False``, for a gate that only stamps (the families decide on the
        measures, so they need them). ``durable``: event ids are hashed stably, so that a
        snapshot can be restored in another process (replay uses the faster process-local hash)."""
        self.config = config
        self.tz = config.tz
        wanted = set(config.townships if townships is None else townships)
        self.townships = tuple(t for t in config.townships if t in wanted)
        self._route = route
        self._sink = sink
        self._durable = durable
        self.clock: datetime | None = None
        self._timers = Timers()
        self._jump = timedelta(days=config.max_jump_days)
        self._dedup_days = config.dedup_days
        # accepted event ids (not register rows): key → fingerprint; compact where they last
        self._ids: IdMemory | DictIds = IdMemory() if durable else DictIds()
        self._purged_through = -1
        self._registers: dict[int, RegisterId] = {}
        self._register_expiry: dict[int, list[int]] = {}
        self._before_start: list[tuple[int, Event]] = []  # register rows waiting for the clock
        self._verdict_for: tuple[SamplingResult, Verdict] | None = None
        self._judge = Judge(substance_pattern(config.rules["sample.banned_substance"]))
        self.measures = Measures(config) if measures else None
        self.families = [cls(self) for cls in families]
        if self.families and self.measures is None:
            raise ValueError("rule families decide on the measures: measures=False is for the bare gate only")
        self._wire()

    def _wire(self) -> None:
        tallies = self.measures.handlers(self.verdict, self.config) if self.measures is not None else {}
        after = {t: h for t, h in tallies.items() if t in Measures.AFTER_FAMILIES}
        self._handlers: dict[str, list[Callable[[Any, datetime], None]]] = {
            event_type: [handler] for event_type, handler in tallies.items() if event_type not in after}
        self._notice_hooks = [f.on_notice for f in self.families if hasattr(f, "on_notice")]
        # The router is a pure function of the (never mutated) config: its answer per
        # (level, township, route key) is computed once.
        self._routes: dict[tuple[str, str, str | None], tuple[str, ...]] = {}
        for fam in self.families:
            for event_type, handler in fam.handlers().items():
                self._handlers.setdefault(event_type, []).append(handler)
        for event_type, handler in after.items():  # what a family refuses (raises Rejected) is not tallied
            self._handlers.setdefault(event_type, []).append(handler)

    # -- the Context families use (rules/families/base.py) ----------------------
    @property
    def dedup_days(self) -> int:
        return self._dedup_days

    @property
    def calendar(self) -> Calendar:
        """The config's (not part of a snapshot: a restored engine counts with its new config)."""
        return self.config.calendar

    def params(self, rule_id: str) -> Any:
        return self.config.rules[rule_id]

    def offices(self, township: str) -> Offices:
        county = self.config.county
        return Offices(self.config.townships[township].office, county.office, tuple(county.escalation))

    def reporters(self, township: str) -> tuple[str, ...]:
        return tuple(self.config.townships[township].reporters)

    def schedule(self, at: datetime, fire: Callable[[datetime, Any], None], arg: Any = None) -> None:
        self._timers.add(at, fire, arg)

    def verdict(self, sample: SamplingResult) -> Verdict:
        """The sample's verdict, judged once per event however many families ask."""
        memo = self._verdict_for
        if memo is not None and memo[0] is sample:
            return memo[1]
        v = self._judge(sample)
        self._verdict_for = (sample, v)
        return v

    def emit(
        self,
        rule: str,
        township: str,
        key_tail: str,
        at: datetime,
        title: str,
        facts: dict[str, Any],
        *,
        route: str | None = None,
        event_ids: Iterable[str] = (),
        due: datetime | None = None,
        level: str | None = None,
        severity: str | None = None,
        recipients: tuple[str, ...] | None = None,
    ) -> Notice | None:
        if not self.config.rules[rule].enabled:
            return None
        spec = RULES[rule]
        level = level or spec.level
        key = notice_key(rule, township, key_tail)
        if not recipients:
            recipients = self._routes.get(where := (level, township, route))
            if recipients is None:
                recipients = self._routes[where] = self._route(self.config, level, township, route)
        notice = Notice(
            id=notice_id(key),
            rule=rule,
            severity=severity or spec.severity,
            level=level,
            township=township,
            recipients=recipients,
            title=title,
            at=at,
            due=due,
            event_ids=tuple(event_ids),
            key=key,
            facts=facts,
        )
        for hook in self._notice_hooks:
            hook(notice)
        self._sink(notice)
        return notice

    # -- the API runtimes use -------------------------------------------------
    def admit(self, ev: Event, until: datetime | None = None) -> str:
        """Take one validated event: reject, skip, drop as duplicate, or run the rules on it."""
        etype = ev.type
        if etype == REGISTER:
            return self._admit_register(ev, until)
        t = ev.time
        clock = self.clock
        if clock is not None and t - clock > self._jump:
            raise Rejected(
                f"事件时间 {fmt(t)} 比当前时钟 {fmt(clock)} 超前 {self.config.max_jump_days} 天以上，"
                "可能是年份填错"
            )
        if until is not None and t > until:
            return Status.SKIPPED
        if self._durable:
            key, fp = stable_key(ev), stable_fingerprint(ev)
        else:  # _identity(ev) inlined (fingerprint(ev) is hash(ev)): this runs for every event
            key, fp = hash((etype, ev.township, ev.id)) & ID_BITS, hash(ev) & ID_BITS
        ids = self._ids
        prev = ids.get(key)
        if prev is not None:
            if prev == fp:
                return Status.DUPLICATE
            raise Rejected(DUPLICATE_ID)
        timers = self._timers
        if clock is None:
            self.begin(t)
        elif t > clock:
            if (timers and timers.first() <= t) or t.toordinal() > self._purged_through:
                self.advance(t)
            else:
                self.clock = t
        now = self.clock
        for handler in self._handlers.get(etype, ()):
            handler(ev, now)
        ids.add(key, fp, t.toordinal() + self._dedup_days)
        if timers and timers.first() <= now:  # a deadline the event set at the clock's time
            self.advance(now)
        return Status.ACCEPTED

    def _identity(self, ev: Event) -> tuple[int, int]:
        if self._durable:
            return stable_key(ev), stable_fingerprint(ev)
        return hash((ev.type, ev.township, ev.id)) & ID_BITS, fingerprint(ev) & ID_BITS

    def _admit_register(self, ev: Event, until: datetime | None) -> str:
        """A register row (§6): never starts or moves the clock, not held against
        ``max_jump_days``; taken at the clock's time (before the clock starts: kept until it
        does). The same id with other content is a new version if its ``registered_at`` is
        later than every version accepted, else rejected like any other type."""
        if until is not None and ev.time > until:
            return Status.SKIPPED
        key, fp = self._identity(ev)
        seen = self._registers.get(key)
        if seen is not None:
            if fp in seen.fingerprints:
                return Status.DUPLICATE
            if ev.time <= seen.latest:
                raise Rejected(f"{DUPLICATE_ID}：台账的新版本（重新评定）须晚于已收到版本的登记日期 {fmt(seen.latest)}")
        now = self.clock
        if now is None:
            self._before_start.append((key, ev))
        else:
            for handler in self._handlers.get(REGISTER, ()):
                handler(ev, now)
        forget_on = None if now is None else now.toordinal() + self._dedup_days
        self._registers[key] = RegisterId((seen.fingerprints if seen else ()) + (fp,), ev.time, forget_on)
        if forget_on is not None:
            self._register_expiry.setdefault(forget_on, []).append(key)
        return Status.ACCEPTED

    def begin(self, start: datetime) -> None:
        """Start the clock: recurring deadlines from ``start`` on (one at ``start`` fires);
        register rows that came before it are taken now, and remembered from now on."""
        self.clock = start
        for fam in self.families:
            fam.start(start)
        waiting, self._before_start = self._before_start, []
        forget_on = start.toordinal() + self._dedup_days
        for key, ev in waiting:
            for handler in self._handlers.get(REGISTER, ()):
                handler(ev, start)
            seen = self._registers.get(key)
            if seen is not None and seen.forget_on is None:
                seen.forget_on = forget_on
                self._register_expiry.setdefault(forget_on, []).append(key)
        self.advance(start)

    def advance(self, to: datetime) -> None:
        """Move the clock to ``to``, firing every deadline at or before it, in time order."""
        self._timers.fire_through(to, self._set_clock)
        if self.clock is None or to > self.clock:
            self.clock = to
        self._forget_old_ids()

    def _set_clock(self, at: datetime) -> None:
        self.clock = at

    def finish(self, until: datetime | None) -> None:
        """End of input: ``--until`` advances the clock; without it, nothing more fires."""
        if until is not None and self.clock is not None and until > self.clock:
            self.advance(until)

    def __getstate__(self) -> dict[str, Any]:
        """A snapshot holds the state, not the wiring: config, router, sink and hooks are given
        anew (so a snapshot does not depend on how the config's classes are laid out)."""
        if not self._durable:
            raise ValueError("only a durable engine (stable id hashes) can be snapshotted")
        state = self.__dict__.copy()
        for wiring in ("config", "_route", "_sink", "_notice_hooks", "_handlers", "_verdict_for", "_routes"):
            state.pop(wiring)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A snapshot's state; one written before :class:`IdMemory` (``_seen``, ``_seen_expiry``)
        is converted, and one that kept its deadlines in a heap of (time, sequence, fire, arg)."""
        if isinstance(state.get("_timers"), list):
            state["_timers"] = Timers.from_heap(state["_timers"])
            state.pop("_seq", None)
        if "_seen_expiry" in state:
            state["_ids"] = IdMemory.from_dicts(state.pop("_seen"), state.pop("_seen_expiry"))
        self.__dict__.update(state)

    @classmethod
    def restore(cls, blob: bytes, config: Config, route: Router, sink: Callable[[Notice], None]) -> "Engine":
        """An engine from :meth:`snapshot`, wired to this process's router and sink.

        SnapshotError when the blob is not a snapshot in a format this version reads: the caller must
        stop rather than start afresh and fire everything again."""
        magic = next((m for m in READABLE_MAGICS if blob.startswith(m)), None)
        if magic is None:
            head = blob[:len(SNAPSHOT_MAGIC)].split(b"\n")[0].decode("ascii", "replace")
            known = "”或“".join(m.decode().strip() for m in READABLE_MAGICS)
            raise SnapshotError(f"状态快照格式为“{head}”，本版本只能读取“{known}”")
        digest, _, payload = blob[len(magic):].partition(b"\n")
        if digest != b"sha256:" + hashlib.sha256(payload).hexdigest().encode():
            raise SnapshotError("状态快照已损坏（校验和不符）：不能据此启动，以免重复或漏发通知；"
                                "请从备份恢复，或删除快照后从事件日志重建")
        try:
            engine: Engine = pickle.loads(payload)
        except Exception as e:  # any unpickling failure means the same: unreadable state
            raise SnapshotError(f"状态快照无法读取：{type(e).__name__}: {e}") from e
        engine.config = config
        engine._route, engine._sink, engine._verdict_for = route, sink, None
        engine._wire()
        return engine

    def snapshot(self) -> bytes:
        """The state as bytes: the format line, the SHA-256 of the payload (a flipped bit in a
        pickle often still loads, as other state), the pickled state."""
        payload = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        return SNAPSHOT_MAGIC + b"sha256:" + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload

    def figures(self, kind: str, period: Any, now: datetime) -> list[Any]:
        """The office's figures (kinds and periods: :data:`shian.rules.measures.FIGURE_KINDS`)
        as seen at ``now``, from the tallies the rules decide on."""
        if self.measures is None:
            raise ValueError("this engine keeps no measures (measures=False)")
        return self.measures.figures(self.config, kind, period, now)

    def upcoming(self, now: datetime, count: int) -> list[tuple[datetime, str]]:
        """The next ``count`` deadlines from ``now`` on a fresh engine (for ``check-config``).

        Consumes the engine: its timers fire with no events, and no acknowledgement deadlines
        are derived from what they raise."""
        self._notice_hooks = []
        if self.clock is None:
            self.clock = now
            for fam in self.families:
                fam.start(now)
        out: list[tuple[datetime, str]] = []
        while self._timers and len(out) < count:
            at, fire, arg = self._timers.pop()
            out.append((at, timer_label(fire, arg)))
            self.clock = at
            fire(at, arg)
        return out

    def pending(self, count: int) -> list[tuple[datetime, str]]:
        """The ``count`` soonest deadlines as the timers stand, worded as :meth:`upcoming`
        words them; nothing fires and the engine is untouched (the live 期限 page: no copy of
        the state). A deadline that only a firing would set (next month's, say) is not among them."""
        return [(at, timer_label(fire, arg)) for at, fire, arg in self._timers.soonest(count)]

    def _forget_old_ids(self) -> None:
        today = self.clock.toordinal()  # type: ignore[union-attr]
        if today <= self._purged_through:
            return
        self._ids.forget_before(today)
        for day in [d for d in self._register_expiry if d < today]:
            for key in self._register_expiry.pop(day):
                seen = self._registers.get(key)
                if seen is not None and seen.forget_on == day:  # not refreshed by a later version
                    del self._registers[key]
        self._purged_through = today
        horizon = self.clock - timedelta(days=self._dedup_days)  # type: ignore[operator]
        if self.measures is not None:
            self.measures.forget(horizon, self.clock)  # type: ignore[arg-type]
        for fam in self.families:
            fam.forget(horizon)


def timer_label(fire: Callable[[datetime, Any], None], arg: Any) -> str:
    """A deadline in words: its rule, then its object (:func:`timer_words`)."""
    words = timer_words(arg)
    owner = getattr(fire, "__self__", None)
    if not words or words[0] not in RULES:
        rules, named = getattr(owner, "RULES", ()), getattr(owner, "DEADLINE_RULE", None)
        if isinstance(named, Mapping):
            named = named.get(getattr(fire, "__name__", ""))
        words.insert(0, rules[0].id if len(rules) == 1 else named or getattr(owner, "name", "?"))
    return " ".join(words)


def timer_words(arg: Any) -> list[str]:
    """What a deadline is about, as words of its label: the timer's text and number arguments,
    and of a record it carries — an event (its township and entity or reporter), the facts of
    one (the entity), a notice's summary (its township and id) — so that no two deadlines of
    different objects read alike."""
    words: list[str] = []
    for a in arg if isinstance(arg, tuple) else (arg,):
        if isinstance(a, (str, int)) and not isinstance(a, bool):
            words.append(str(a))
        elif isinstance(a, dict):
            words.append(str(a.get("entity") or ""))
        elif a is not None and not isinstance(a, tuple):
            words.append(str(getattr(a, "township", "") or ""))
            named = getattr(a, "entity", None) or getattr(a, "reporter", None)
            words.append(str(named or (getattr(a, "id", "") if hasattr(a, "title") else "")))
    return [w for w in dict.fromkeys(words) if w]


def _as_context(engine: Engine) -> Context:
    """Type checkers hold the engine to the families' :class:`Context` here."""
    return engine
