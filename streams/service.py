"""``shian run``: the embedded default — one process, no Kafka, state on local disk.

Events come in by HTTP (``shian.office.api``), from a watched drop folder and from
``--backfill`` files; the rules run in one engine that owns every township; notices go to the
delivery outbox (:mod:`shian.notifiers`), which the same process sends from.

Durability (SQLite, :mod:`shian.streams.store`): an event is run, then its journal row is
committed, then its notices are added to the outbox; the sender hears "accepted" only after
the commit. The engine is snapshotted into the store every ``snapshot_every`` events (but
pickling the state takes at most :data:`SNAPSHOT_SHARE` of the time: a large state is
snapshotted less often, so that its pickling does not stall every request) and at a clean
stop. After a crash — even SIGKILL — the engine is the snapshot plus the journal rows after
it, run again at the clocks they were run at: their notices come again with the same ids and
the outbox ignores those it already has; then the clock moves to the wall clock and
the deadlines missed while the process was down fire, once. So no accepted event is lost and
no notice is sent twice outside the outbox's documented window.

Clocks: ``--backfill`` files run first on event time (replay's clock: the latest event time);
then the wall clock drives the deadlines, checked every second. A live event more than a day
ahead of the wall clock is rejected as a probable typo.
"""
from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import shutil
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from shian.notifiers.routing import recipients
from shian.notifiers.settings import Settings as DeliverySettings
from shian.rules.config import Config
from shian.rules.engine import Engine, SnapshotError, Status
from shian.rules.events import Rejected, Validator
from shian.rules.notice import Notice
from shian.rules.records import ACCEPTED, DUPLICATE, REJECTED, Outcome, Record, Reject

from .base import CHUNK, STOPPING, STORAGE_ERRORS, Policy, RuntimeBase, Storage, release_freed_memory, storage_error
from .partitioned import PartitionRunner
from .rejectbook import book, book_path, write_book
from .sources import INPUT_SUFFIXES, is_tabular, read_path
from .store import Store

log = logging.getLogger("shian.service")
DONE_DIR, BAD_DIR = "已处理", "无法读取"
FAILED = "处理失败（{kind}），已记入日志：此事件未被接受，请联系管理员"
NOT_JOURNALLED = "事件日志暂时无法写入（{error}）：此事件未被接受，请稍后重发"
# At most this share of the wall clock goes to snapshots: after one that took d seconds the
# next waits 1/SNAPSHOT_SHARE × d (a 0.4 s pickling of a large state: 100 s, not every
# ``snapshot_every`` events at 200 a second), so their stalls hold up well under 1% of the
# requests: at 1% the requests held up by them were the ingest p99 itself, which then grew
# with the state (90 ms after 30 minutes of the soak).
SNAPSHOT_SHARE = 0.004
# While the outbox cannot be written, the notices waiting for it are tried again at most this
# often (at the wall clock's next tick, or the next event after it), not at every event: each
# try writes all that wait, so with the outbox's disk full a post of 25 events took about a
# second once 2,000 notices waited. They wait in order; the journal has their events.
OUTBOX_RETRY_SECONDS = 1.0
# While the office's threads run Python (a page read or filled in), the event loop waits for
# the interpreter each time it wants it back (after each socket or disk wait): at most the
# interpreter's switch interval, 5 ms by default, several times per request. 1 ms keeps what
# a request waits so small beside its own work; the threads lose nothing that matters.
SWITCH_SECONDS = 0.001


def settle_heap() -> None:
    """Collects the garbage cycles there are, then moves every object left to the collector's
    permanent generation (``gc.freeze``), out of the way of its later full collections.

    The rules' state is a large, long-lived heap of small containers (timers, tallies, ids)
    that the collector would otherwise walk through in each full collection — some 200 ms on
    the event loop for a county-year, every few seconds to minutes, each one stalling every
    request in flight. Done at the start and at each snapshot (a pause already, at most
    :data:`SNAPSHOT_SHARE` of the time), so a collection walks only what came since. What is
    frozen is still freed when nothing refers to it; only a cycle among frozen objects is never
    collected: an engine and its families are one, so replacing the engine (a rebuild after a
    journal failure) unfreezes everything first; what else is frozen in passing (a request
    under way at a snapshot) is freed by its references, as aiohttp's objects are."""
    gc.collect()
    gc.freeze()


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
            log.warning("事件日志第 %d 行按现在的配置不再接受，已跳过：%s", row.seq, r.reason)
            continue
        if row.mode == "event":
            runner.engine.admit(ev)
        else:
            runner.live_event(ev, row.clock)
        n += 1
    return runner, n


class Service(RuntimeBase):
    """The embedded runtime: one engine owning every township, on the wall clock.

    It never lets one input, a failing rule or a failing database poison what comes after:
    each line gets its own outcome; an event the engine ran but the journal did not take is
    refused and the engine is rebuilt from the journal (snapshot and rows after it) before the
    next event, so it never remembers an event that is not journalled; notices the outbox
    cannot take wait in memory and are offered again at each event and tick (no snapshot is
    saved meanwhile, so a restart raises them again)."""

    def __init__(self, config: Config, storage: Storage, delivery: DeliverySettings, *,
                 now: Callable[[], datetime] | None = None, reader: bool = False) -> None:
        """``reader``: for an offline reader of the office's data (``shian report`` / ``ledger``,
        possibly beside a running ``shian run``): an unreadable snapshot means the whole journal,
        and closing saves no snapshot."""
        super().__init__(config, storage, delivery, now=now)
        self._raised: list[Notice] = []
        self._backfilling = False
        self._since_snapshot = 0
        self._snapshot_cost, self._snapshot_at = 0.0, time.monotonic()   # the last one's seconds, and when
        self._outbox_retry_at = 0.0   # while the outbox fails: the time.monotonic() of the next try
        self._reader = reader
        self._stale = False  # the engine ran an event the journal did not take: rebuild before going on
        self._unmovable: set[tuple[str, float]] = set()  # drop-folder files that could not be moved aside
        self.runner, n = recovered(config, self.store, self._raised.append, fallback=reader)
        settle_heap()
        added = self._deliver()
        if n:
            log.info("已恢复：重新运行快照之后的 %d 个事件，发件箱新增 %d 条通知", n, added)

    # -- input ---------------------------------------------------------------------------

    def accept_records(self, records: Iterable[Record], *, mode: str = "live",
                       policy: Policy | None = None) -> list[Outcome]:
        """Records of a file or an upload (JSON Lines, CSV, XLSX), each on its own; an event
        ``policy`` refuses is rejected with its reason."""
        return [self._accept(rec, mode, policy) for rec in records]

    def _accept(self, rec: Record, mode: str, policy: Policy | None = None) -> Outcome:
        if not self._engine_ready():
            return self.reject(rec, NOT_JOURNALLED.format(error=self.journal_error))
        try:
            if rec.reason is not None:
                raise Rejected(rec.reason)
            ev, obj = self._decode(rec)
            if policy is not None and (why := policy(ev)) is not None:
                raise Rejected(why)
            now = self.wall_clock()
            status = self.runner.engine.admit(ev) if mode == "event" else self.runner.live_event(ev, now)
        except Rejected as r:
            self._deliver()  # deadlines the clock passed before the event was refused
            return self.reject(self._shown(rec), r.reason)
        except Exception as e:  # the runtime's boundary: a rule that fails sets its event aside
            log.exception("%s 第 %s 行已拒收：规则处理时出错", rec.source, rec.line)
            self._deliver()  # what fired before the failure stands
            return self.reject(rec, FAILED.format(kind=type(e).__name__))
        if status != Status.ACCEPTED:
            self.metrics.duplicates += 1
            self._deliver()  # deadlines the clock passed on the way
            return Outcome(DUPLICATE, rec.line, getattr(ev, "id", None))
        clock = (self.runner.engine.clock or ev.time) if mode == "event" else now  # a register row may come first
        try:
            with self.store.transaction() as c:
                self.store.append(c, obj, ev, mode, clock, rec.source)
        except Exception as e:  # the runtime's boundary: run by the engine, not journalled
            return self._not_journalled(rec, e)
        self.health.ok("journal")
        self.metrics.events[ev.type] += 1
        self._deliver()
        self._since_snapshot += 1
        if self._since_snapshot >= self.storage.snapshot_every and \
                time.monotonic() - self._snapshot_at >= self._snapshot_cost / SNAPSHOT_SHARE:
            self.snapshot()
        return Outcome(ACCEPTED, rec.line, ev.id)

    def _not_journalled(self, rec: Record, e: Exception) -> Outcome:
        """The engine ran ``rec`` but its journal row failed: its notices are dropped, the
        engine is marked for a rebuild from the journal, and the event is refused."""
        self._raised.clear()  # this event's, and deadlines the rebuild fires again
        self._stale = True
        if isinstance(e, STORAGE_ERRORS):
            self.journal_failed(e)
            return self.reject(rec, NOT_JOURNALLED.format(error=storage_error(e)))
        log.exception("%s 第 %s 行未能写入事件日志", rec.source, rec.line)
        return self.reject(rec, FAILED.format(kind=type(e).__name__))

    def _engine_ready(self) -> bool:
        """After an event the journal did not take: the engine rebuilt from the journal, once
        a test write shows the journal can be written again. False while it cannot."""
        if not self._stale:
            return True
        try:
            self.store.probe(self.now())
            runner, n = recovered(self.config, self.store, self._raised.append)
        except (*STORAGE_ERRORS, SnapshotError) as e:
            self.journal_failed(e)
            return False
        self.runner, self._stale = runner, False
        gc.unfreeze()   # the engine replaced is frozen, and a cycle (its families refer to it): let it go
        settle_heap()
        self.health.ok("journal")
        log.info("已按事件日志重建规则状态（快照之后 %d 行）", n)
        self._deliver()
        return True

    def _decode(self, rec: Record) -> tuple[Any, dict[str, Any]]:
        """The validated event and its JSON object; raises Rejected (a line that is not
        UTF-8 says so, with where)."""
        if rec.obj is not None:
            return self.validator.from_object(rec.obj), rec.obj
        raw = rec.raw
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise Rejected(f"第 {rec.line} 行不是 UTF-8 编码（第 {e.start + 1} 个字节 0x{raw[e.start]:02X} 起，"
                               "可能是 GBK）：此行未接受，请以 UTF-8 重发") from None
        return self.validator.from_json(raw), json.loads(raw)

    @staticmethod
    def _shown(rec: Record) -> Record:
        """``rec`` as its reject shows it: bytes that are not UTF-8 as ``\\xNN`` (never U+FFFD)."""
        if isinstance(rec.raw, bytes):
            try:
                rec.raw.decode("utf-8")
            except UnicodeDecodeError:
                return Record(rec.source, rec.line, rec.raw.decode("utf-8", "backslashreplace"), rec.obj, rec.reason)
        return rec

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
        if not self._engine_ready():
            return 0
        if self.runner.engine.clock is None:
            self.runner.engine.begin(self.wall_clock())
        else:
            self.runner.tick(self.wall_clock())
        self.metrics.last_tick = time.time()
        return self._deliver()

    def wall_clock(self) -> datetime:
        """The wall clock as the rules run on it: in whole seconds, as every time they write
        is. The notices and deadlines of one second then share their time (one entry of the
        engine's deadlines for all of them, :mod:`shian.rules.timers`), and an ack written
        with the second of its notice is not earlier than it."""
        return self.now().replace(microsecond=0)

    def _deliver(self) -> int:
        """Notices raised so far into the outbox, in one transaction (known ids are ignored
        there). While the outbox cannot be written they all wait here, in order, for the next try
        (at most every :data:`OUTBOX_RETRY_SECONDS`)."""
        if not self._raised:
            self.health.ok("outbox")
            return 0
        if time.monotonic() < self._outbox_retry_at:
            return 0  # it failed a moment ago: they wait for the next try
        try:
            kept = self.dispatcher.submit_all(self._raised, whole_batch=self._backfilling)
        except STORAGE_ERRORS as e:
            self._outbox_retry_at = time.monotonic() + OUTBOX_RETRY_SECONDS
            if self.health.fail("outbox", f"写入失败（{storage_error(e)}）"):
                log.error("发件箱 %s 无法写入：%s", self.outbox.path, storage_error(e))
            return 0
        added = 0
        for n, new in zip(self._raised, kept):
            if new:
                added += 1
                self.metrics.notices[n.rule] += 1
        self._raised.clear()
        self.health.ok("outbox")
        return added

    def upcoming(self, count: int = 20) -> list[tuple[datetime, str]]:
        """The next deadlines of the live state as its timers stand (:meth:`Engine.pending`:
        read in place, no copy of the state — a page over a year of data stays cheap); before
        the clock has started, those a start would set (on a copy, which is small then)."""
        if self.runner.engine.clock is not None:
            return self.runner.engine.pending(count)
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
        """The engine saved with the journal row it covers — not while the engine is ahead of
        the journal or notices wait for the outbox (the journal rows raise them again)."""
        if self._stale or self._raised:
            return
        began = time.monotonic()
        try:
            self.store.save_snapshot(self.store.last_seq(), self.runner.engine.snapshot())
        except STORAGE_ERRORS as e:
            self.journal_failed(e)
            return
        finally:
            settle_heap()
            release_freed_memory()
            self._snapshot_at = time.monotonic()
            self._snapshot_cost = self._snapshot_at - began
        self._since_snapshot = 0

    def problems(self) -> dict[str, str]:
        failing = super().problems()
        if "outbox" in failing:
            failing["outbox"] += f"，{len(self._raised)} 条通知等待写入"
        return failing

    # -- the drop folder ----------------------------------------------------------------------

    async def scan_drop_folder(self) -> int:
        """Files dropped into ``drop_dir`` are read and moved to 已处理/, or to 无法读取/ when
        no line of them was taken; a file with rejected lines gets its 拒收 list beside it
        (``<file>.拒收.xlsx``, :mod:`.rejectbook`). A file that fails is set aside all the same
        (its reason among the rejects) and the others go on; a file stays only when the service
        stops half-way through it (it is read again at the next start: its taken lines are then
        duplicates). Returns the files done."""
        folder = self.storage.drop_dir
        if folder is None:
            return 0
        folder.mkdir(parents=True, exist_ok=True)
        done = 0
        for path in self._dropped(folder):
            if self.stopping:
                break
            pairs, whole = await self._import(path)
            if not whole:  # stopping half-way through it
                break
            tally = Counter(o.status for _, o in pairs)
            target = DONE_DIR if tally[ACCEPTED] or tally[DUPLICATE] else BAD_DIR
            moved = self._move_aside(path, target)
            rejects = [self._shown(rec).reject(o.reason) for rec, o in pairs if o.status == REJECTED]
            book = await self._reject_book(moved, rejects, is_tabular(path)) if moved and rejects else None
            log.info("投放文件夹：%s 已读完：接受 %d 条，重复 %d 条，拒收 %d 条；%s%s", path.name, tally[ACCEPTED],
                     tally[DUPLICATE], tally[REJECTED], f"已移到 {target}/{moved.name}" if moved else "未能移走",
                     f"，拒收明细见 {target}/{book.name}" if book else "")
            done += 1
        return done

    async def _reject_book(self, moved: Path, rejects: list[Reject], tabular: bool) -> Path | None:
        """The 拒收 list of a file moved to ``moved``, written beside it off the event loop;
        None when it cannot be written (logged: the rejects are kept in the store all the same)."""
        path = book_path(moved)
        try:
            return await asyncio.to_thread(write_book, path, book(rejects, tabular=tabular))
        except (OSError, ValueError) as e:
            log.error("投放文件夹：拒收明细 %s 无法写入（%s: %s）；拒收记录仍可在“拒收记录”页面查看", path.name,
                      type(e).__name__, e)
            return None

    def _dropped(self, folder: Path) -> list[Path]:
        """The files ready to import: an input suffix, not hidden or a lock file, not written to
        in the last second, and not one that could not be moved aside before."""
        ready = []
        for p in sorted(folder.iterdir()):
            try:
                if not p.is_file() or p.suffix.lower() not in INPUT_SUFFIXES or p.name.startswith((".", "~$")):
                    continue
                mtime = p.stat().st_mtime
            except OSError:  # gone meanwhile, or a name the file system refuses
                continue
            if time.time() - mtime >= 1.0 and (p.name, mtime) not in self._unmovable:
                ready.append(p)
        return ready

    async def _import(self, path: Path) -> tuple[list[tuple[Record, Outcome]], bool]:
        """One dropped file, read off the event loop a chunk at a time and accepted: each
        record with its outcome, and whether it was read to its end (False: the service began
        to stop). A file that cannot be read (at all, or from some line on) gives a reject with
        the reason, after the lines read before it."""
        pairs: list[tuple[Record, Outcome]] = []
        lines = read_path(path)
        try:
            while not self.stopping:
                chunk, failure = await asyncio.to_thread(_take, lines, CHUNK)
                pairs += zip(chunk, await self.accept_chunks(chunk))
                if failure is not None:
                    log.error("投放文件夹：%s 无法读取", path.name, exc_info=failure)
                    where = f"已处理 {len(pairs)} 行，其后" if pairs else ""
                    reason = f"{where}无法读取文件（{type(failure).__name__}：{failure}）"
                    whole_file = Record(str(path), None, "")
                    pairs.append((whole_file, self.reject(whole_file, reason)))
                if failure is not None or not chunk:
                    return pairs, not any(o.reason == STOPPING for _, o in pairs)
        finally:
            lines.close()  # read_path is a generator: its file is closed now
        return pairs, False

    def _move_aside(self, path: Path, target: str) -> Path | None:
        """Into ``target``/ with the time in front; a name too long for that keeps only its
        time and suffix. Returns where it went; a file that cannot be moved at all is skipped
        from now on (logged) and None returned."""
        stamp = self.now().strftime("%Y%m%d-%H%M%S")
        folder = path.parent / target
        try:
            folder.mkdir(exist_ok=True)
            moved = folder / f"{stamp}-{path.name}"
            try:
                shutil.move(str(path), moved)
            except OSError:
                moved = folder / f"{stamp}-{os.getpid()}-{time.monotonic_ns()}{path.suffix}"
                shutil.move(str(path), moved)
            return moved
        except OSError as e:
            log.error("投放文件夹：%s 无法移到 %s/，在重启前不再读取（%s）", path.name, target, e)
            try:
                self._unmovable.add((path.name, path.stat().st_mtime))
            except OSError:
                pass
            return None

    # -- running ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """The clock (every second), the drop folder (every 2 s) and delivery, until ``stop``;
        then delivery gets :data:`~shian.streams.base.STOP_GRACE` to finish its step."""
        self._stop = stop
        switch = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_SECONDS)
        sender = asyncio.create_task(self.deliver(stop, poll_seconds=1.0))
        n = 0
        try:
            while not stop.is_set():
                self._step()
                if n % 2 == 0:
                    try:
                        await self.scan_drop_folder()
                    except Exception:  # the runtime's boundary (the folder itself unreadable): next time again
                        log.exception("投放文件夹 %s 无法读取，稍后重试", self.storage.drop_dir)
                n += 1
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self.stop_delivery(sender)
            sys.setswitchinterval(switch)

    def _step(self) -> None:
        """One second of the clock; a failure marks the clock failing (``/health``) until a
        tick succeeds. A failing journal is tested again meanwhile."""
        try:
            self.tick()
        except Exception as e:  # the runtime's boundary: log and keep the service up
            if self.health.fail("clock", f"运行出错（{type(e).__name__}），已记入日志"):
                log.exception("规则时钟运行出错，下一秒重试")
        else:
            self.health.ok("clock")
        if "journal" in self.health.failing and not self._stale:
            try:
                self.store.probe(self.now())
            except STORAGE_ERRORS as e:
                self.journal_failed(e)
            else:
                self.health.ok("journal")

    async def close(self) -> None:
        if not self._reader:
            self.snapshot()
        await super().close()


def _take(records: Iterator[Record], n: int) -> tuple[list[Record], Exception | None]:
    """Up to ``n`` records, and what stopped the reading of the file (None: nothing)."""
    out: list[Record] = []
    try:
        for record in records:
            out.append(record)
            if len(out) == n:
                break
    except Exception as e:  # the drop folder's boundary: the file's reason goes to its rejects
        return out, e
    return out, None
