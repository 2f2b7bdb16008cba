"""``shian run``: the embedded default — one process, no Kafka, state on local disk.

Events come in by HTTP (``shian.office.api``), from a watched drop folder and from
``--backfill`` files; the rules run in one engine that owns every township; notices go to the
delivery outbox (:mod:`shian.notifiers`), which the same process sends from.

Durability (SQLite, :mod:`shian.streams.store`): an event is run, then its journal row is
committed, then its notices are added to the outbox; the sender hears "accepted" only after
the commit. The engine is snapshotted into the store every ``snapshot_every`` events and at a
clean stop. After a crash — even SIGKILL — the engine is the snapshot plus the journal rows
after it, run again at the clocks they were run at: their notices come again with the same
ids and the outbox ignores those it already has; then the clock moves to the wall clock and
the deadlines missed while the process was down fire, once. So no accepted event is lost and
no notice is sent twice outside the outbox's documented window.

Clocks: ``--backfill`` files run first on event time (replay's clock: the latest event time);
then the wall clock drives the deadlines, checked every second. A live event more than a day
ahead of the wall clock is rejected as a probable typo.
"""
from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable

from shian.notifiers.delivery import open_dispatcher
from shian.notifiers.routing import recipients
from shian.notifiers.settings import Settings as DeliverySettings
from shian.office.settings import ServiceSettings
from shian.rules.config import Config
from shian.rules.engine import Engine, Status
from shian.rules.events import Rejected, Validator
from shian.rules.notice import Notice
from shian.rules.timeutil import fmt

from .kafka import Record, read_records
from .partitioned import PartitionRunner
from .replay import TABULAR_SUFFIXES
from .store import Store

log = logging.getLogger("shian.service")
DROP_SUFFIXES = (".jsonl", ".json", ".ndjson", *TABULAR_SUFFIXES)
DONE_DIR, BAD_DIR = "已处理", "无法读取"


@dataclass
class Outcome:
    """What happened to one posted line: accepted, duplicate or rejected (with the reason)."""
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


@dataclass
class Metrics:
    events: Counter = field(default_factory=Counter)      # accepted, by type
    duplicates: int = 0
    rejects: int = 0
    notices: Counter = field(default_factory=Counter)     # by rule
    started: float = field(default_factory=time.time)
    last_tick: float = 0.0


class Service:
    def __init__(self, config: Config, settings: ServiceSettings, delivery: DeliverySettings, *,
                 now: Callable[[], datetime] | None = None) -> None:
        self.config, self.settings, self.delivery = config, settings, delivery
        self.now = now or (lambda: datetime.now(config.tz))
        self.store = Store(settings.events_db, config.tz)
        self.dispatcher = open_dispatcher(delivery, now=self.now)
        self.outbox = self.dispatcher.outbox
        self.validator = Validator(config.known())
        self.metrics = Metrics()
        self._raised: list[Notice] = []
        self._backfilling = False
        self._since_snapshot = 0
        snap = self.store.load_snapshot()
        engine = None
        if snap is not None:
            engine = Engine.restore(snap[1], config, recipients, self._raised.append)
        self.runner = PartitionRunner(config, 0, 1, self._raised.append, engine=engine)
        self._recover(snap[0] if snap else 0)

    # -- recovery ----------------------------------------------------------------------------

    def _recover(self, seq: int) -> None:
        """The journal after the snapshot, run again at its clocks (same notices, same ids)."""
        n = 0
        for row in self.store.after(seq):
            ev = self.validator.from_object(row.obj)
            if row.mode == "event":
                self.runner.engine.admit(ev)
            else:
                self.runner.live_event(ev, row.clock)
            n += 1
        added = self._deliver()
        if n:
            log.info("recovered: %d journal events after the snapshot, %d notices new to the outbox", n, added)

    # -- input ---------------------------------------------------------------------------

    def accept_object(self, obj: Any, source: str, line: Any = None, *, mode: str = "live") -> Outcome:
        """One event as a JSON value (already parsed) or text."""
        try:
            ev, obj = self._decode(obj)
            now = self.now()
            status = self.runner.engine.admit(ev) if mode == "event" else self.runner.live_event(ev, now)
        except Rejected as r:
            return self._reject(source, line, obj, r.reason)
        if status != Status.ACCEPTED:
            self.metrics.duplicates += 1
            self._deliver()  # deadlines the clock passed on the way
            return Outcome("duplicate", line, getattr(ev, "id", None))
        clock = self.runner.engine.clock if mode == "event" else now
        with self.store.transaction() as c:
            self.store.append(c, obj, ev, mode, clock, source)
        self.metrics.events[ev.type] += 1
        self._deliver()
        self._since_snapshot += 1
        if self._since_snapshot >= self.settings.snapshot_every:
            self.snapshot()
        return Outcome("accepted", line, ev.id)

    def _decode(self, obj: Any) -> tuple[Any, dict[str, Any]]:
        """The validated event and its JSON object, from text or an already parsed value;
        raises Rejected."""
        if isinstance(obj, (str, bytes)):
            ev = self.validator.from_json(obj)
            return ev, json.loads(obj)
        return self.validator.from_object(obj), obj

    def accept_records(self, records: Iterable[Record], *, mode: str = "live") -> list[Outcome]:
        """Records of a file or an upload (JSON Lines, CSV, XLSX), each on its own."""
        out = []
        for rec in records:
            if rec.reason is not None:
                out.append(self._reject(rec.source, rec.line, rec.raw, rec.reason))
            else:
                out.append(self.accept_object(rec.obj if rec.obj is not None else rec.raw, rec.source, rec.line,
                                              mode=mode))
        return out

    def backfill(self, paths: list[str]) -> Counter:
        """``--backfill``: files on event time (as replay), then the clock to the wall clock."""
        tally: Counter = Counter()
        self._backfilling = True
        try:
            for path in paths:
                for o in self.accept_records(read_records(path), mode="event"):
                    tally[o.status] += 1
            self.tick()
        finally:
            self._backfilling = False
        self.snapshot()
        return tally

    def ack(self, notice_id: str, dept: str, action: str = "签收", note: str | None = None) -> Outcome:
        """签收 / 办结 of a notice by one of its recipients, as an ``ack`` event."""
        notice = self.outbox.notice(notice_id)
        if notice is None:
            return Outcome("rejected", reason=f"没有编号为 {notice_id} 的通知")
        if dept not in notice["recipients"]:
            return Outcome("rejected", reason=f"部门 {dept} 不是该通知的接收部门")
        now = self.now().replace(microsecond=0)
        obj = {"type": "ack", "id": f"{'close' if action == '办结' else 'ack'}-{notice_id}-{dept}-{now:%Y%m%d%H%M%S}",
               "township": notice["township"], "notice_id": notice_id, "by": dept, "action": action,
               "acked_at": fmt(now)}
        if note:
            obj["note"] = note
        return self.accept_object(obj, f"ack:{dept}")

    def _reject(self, source: str, line: Any, raw: Any, reason: str) -> Outcome:
        text = raw if isinstance(raw, str) else (raw.decode("utf-8", "replace") if isinstance(raw, bytes)
                                                else json.dumps(raw, ensure_ascii=False))
        self._deliver()  # deadlines the clock passed before the event was refused
        self.store.add_reject(source, line, text, reason, self.now())
        self.metrics.rejects += 1
        return Outcome("rejected", line, reason=reason)

    # -- clock, notices, snapshots ------------------------------------------------------------

    def tick(self) -> int:
        """The wall clock: fire the deadlines it has passed; returns the notices raised."""
        if self.runner.engine.clock is None:
            self.runner.engine.begin(self.now())
        else:
            self.runner.tick(self.now())
        self.metrics.last_tick = time.time()
        return self._deliver()

    def _deliver(self) -> int:
        """Notices raised so far into the outbox (known ids are ignored there)."""
        added = 0
        for n in self._raised:
            if self.dispatcher.submit(n.to_json(), whole_batch=self._backfilling):
                added += 1
                self.metrics.notices[n.rule] += 1
        self._raised.clear()
        return added

    def upcoming(self, count: int = 20) -> list[tuple[datetime, str]]:
        """The next deadlines of the live state (on a copy: the engine itself is untouched)."""
        copy = Engine.restore(self.runner.engine.snapshot(), self.config, recipients, lambda n: None)
        return copy.upcoming(self.now(), count)

    def figures(self, kind: str, period: Any, now: datetime | None = None) -> list[Any]:
        """The office's figures from the engine's tallies (:meth:`Engine.figures`), as seen
        at ``now`` (default: this service's clock)."""
        return self.runner.engine.figures(kind, period, now or self.now())

    def snapshot(self) -> None:
        self.store.save_snapshot(self.store.last_seq(), self.runner.engine.snapshot())
        self._since_snapshot = 0

    # -- the drop folder ----------------------------------------------------------------------

    def scan_drop_folder(self) -> int:
        """Files dropped into ``drop_dir`` are read, then moved to 已处理/ (or 无法读取/)."""
        folder = self.settings.drop_dir
        if folder is None:
            return 0
        folder.mkdir(parents=True, exist_ok=True)
        done = 0
        for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in DROP_SUFFIXES
                           and not p.name.startswith((".", "~$"))):
            if time.time() - path.stat().st_mtime < 1.0:
                continue  # still being written
            target = DONE_DIR
            try:
                outcomes = self.accept_records(read_records(str(path)))
                log.info("drop folder: %s: %s", path.name, dict(Counter(o.status for o in outcomes)))
            except (OSError, ValueError) as e:
                self._reject(str(path), None, "", f"无法读取文件：{e}")
                target = BAD_DIR
            stamp = self.now().strftime("%Y%m%d-%H%M%S")
            (folder / target).mkdir(exist_ok=True)
            shutil.move(str(path), folder / target / f"{stamp}-{path.name}")
            done += 1
        return done

    # -- running ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """The clock (every second), the drop folder (every 2 s) and delivery, until ``stop``."""
        sender = asyncio.create_task(self.dispatcher.run(stop, poll_seconds=1.0))
        n = 0
        try:
            while not stop.is_set():
                try:
                    self.tick()
                    if n % 2 == 0:
                        self.scan_drop_folder()
                except Exception:  # the runtime's boundary: log and keep the service up
                    log.exception("service step failed")
                n += 1
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
        finally:
            await sender

    async def close(self) -> None:
        self.snapshot()
        await self.dispatcher.close()
        self.outbox.close()
        self.store.close()

