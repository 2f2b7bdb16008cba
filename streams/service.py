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
from datetime import datetime
from typing import Any, Callable, Iterable

from shian.notifiers.routing import recipients
from shian.notifiers.settings import Settings as DeliverySettings
from shian.rules.config import Config
from shian.rules.engine import Engine, SnapshotError, Status
from shian.rules.events import Rejected, Validator
from shian.rules.notice import Notice
from shian.rules.records import ACCEPTED, DUPLICATE, Outcome, Record

from .base import RuntimeBase, Storage
from .partitioned import PartitionRunner
from .sources import INPUT_SUFFIXES, read_path
from .store import Store

log = logging.getLogger("shian.service")
DONE_DIR, BAD_DIR = "已处理", "无法读取"


def recovered(config: Config, store: Store, sink: Callable[[Notice], None], *,
              fallback: bool = False) -> tuple[PartitionRunner, int]:
    """The engine as a restart finds it, and how many journal rows were run again: the
    snapshot, then the journal after it at the clocks its rows were run at (same notices, same
    ids, to ``sink``). A row this config no longer accepts is left out. An unreadable snapshot
    raises :class:`SnapshotError` — or, with ``fallback`` (an offline reader such as
    ``shian report``), means the whole journal instead."""
    snap, engine = store.load_snapshot(), None
    if snap is not None:
        try:
            engine = Engine.restore(snap[1], config, recipients, sink)
        except SnapshotError:
            if not fallback:
                raise
    runner = PartitionRunner(config, 0, 1, sink, engine=engine)
    validator = Validator(config.known())
    n = 0
    for row in store.after(snap[0] if snap is not None and engine is not None else 0):
        try:
            ev = validator.from_object(row.obj)
        except Rejected as r:
            log.warning("journal row %d left out: %s", row.seq, r.reason)
            continue
        if row.mode == "event":
            runner.engine.admit(ev)
        else:
            runner.live_event(ev, row.clock)
        n += 1
    return runner, n


class Service(RuntimeBase):
    """The embedded runtime: one engine owning every township, on the wall clock."""

    def __init__(self, config: Config, storage: Storage, delivery: DeliverySettings, *,
                 now: Callable[[], datetime] | None = None, reader: bool = False) -> None:
        """``reader``: for an offline reader of the office's data (``shian report`` / ``ledger``,
        possibly beside a running ``shian run``): an unreadable snapshot means the whole journal,
        and closing saves no snapshot."""
        super().__init__(config, storage, delivery, now=now)
        self._raised: list[Notice] = []
        self._backfilling = False
        self._since_snapshot = 0
        self._reader = reader
        self.runner, n = recovered(config, self.store, self._raised.append, fallback=reader)
        added = self._deliver()
        if n:
            log.info("recovered: %d journal events after the snapshot, %d notices new to the outbox", n, added)

    # -- input ---------------------------------------------------------------------------

    def accept_records(self, records: Iterable[Record], *, mode: str = "live") -> list[Outcome]:
        """Records of a file or an upload (JSON Lines, CSV, XLSX), each on its own."""
        return [self._accept(rec, mode) for rec in records]

    def _accept(self, rec: Record, mode: str) -> Outcome:
        try:
            if rec.reason is not None:
                raise Rejected(rec.reason)
            ev, obj = self._decode(rec)
            now = self.now()
            status = self.runner.engine.admit(ev) if mode == "event" else self.runner.live_event(ev, now)
        except Rejected as r:
            self._deliver()  # deadlines the clock passed before the event was refused
            return self.reject(rec, r.reason)
        except Exception as e:  # the runtime's boundary: a rule that fails sets its event aside
            log.exception("event %s of %s set aside: a rule failed on it", rec.line, rec.source)
            self._deliver()  # what fired before the failure stands
            return self.reject(rec, f"处理失败（{type(e).__name__}），已记入日志：此事件未被接受，请联系管理员")
        if status != Status.ACCEPTED:
            self.metrics.duplicates += 1
            self._deliver()  # deadlines the clock passed on the way
            return Outcome(DUPLICATE, rec.line, getattr(ev, "id", None))
        clock = (self.runner.engine.clock or ev.time) if mode == "event" else now  # a register row may come first
        with self.store.transaction() as c:
            self.store.append(c, obj, ev, mode, clock, rec.source)
        self.metrics.events[ev.type] += 1
        self._deliver()
        self._since_snapshot += 1
        if self._since_snapshot >= self.storage.snapshot_every:
            self.snapshot()
        return Outcome(ACCEPTED, rec.line, ev.id)

    def _decode(self, rec: Record) -> tuple[Any, dict[str, Any]]:
        """The validated event and its JSON object; raises Rejected."""
        if rec.obj is None:
            ev = self.validator.from_json(rec.raw)
            return ev, json.loads(rec.raw)
        return self.validator.from_object(rec.obj), rec.obj

    def backfill(self, paths: list[str]) -> Counter:
        """``--backfill``: files on event time (as replay), then the clock to the wall clock."""
        tally: Counter = Counter()
        self._backfilling = True
        try:
            for path in paths:
                for o in self.accept_records(read_path(path), mode="event"):
                    tally[o.status] += 1
            self.tick()
        finally:
            self._backfilling = False
        self.snapshot()
        return tally

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
            if self.dispatcher.submit(n, whole_batch=self._backfilling):
                added += 1
                self.metrics.notices[n.rule] += 1
        self._raised.clear()
        return added

    def upcoming(self, count: int = 20) -> list[tuple[datetime, str]]:
        """The next deadlines of the live state (on a copy: the engine itself is untouched)."""
        copy = Engine.restore(self.runner.engine.snapshot(), self.config, recipients, lambda n: None)
        return copy.upcoming(self.now(), count)

    def clock(self) -> datetime | None:
        """The rules' clock (event time during a backfill, then the wall clock)."""
        return self.runner.engine.clock

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
        folder = self.storage.drop_dir
        if folder is None:
            return 0
        folder.mkdir(parents=True, exist_ok=True)
        done = 0
        for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES
                           and not p.name.startswith((".", "~$"))):
            if time.time() - path.stat().st_mtime < 1.0:
                continue  # still being written
            target = DONE_DIR
            try:
                outcomes = self.accept_records(read_path(path))
                log.info("drop folder: %s: %s", path.name, dict(Counter(o.status for o in outcomes)))
            except (OSError, ValueError) as e:
                self.reject(Record(str(path), None, ""), f"无法读取文件：{e}")
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
        if not self._reader:
            self.snapshot()
        await super().close()

