"""What every runtime behind the office's pages has in common: the event journal and rejects
(:class:`~shian.streams.store.Store`), the delivery outbox, the counters, and the answers the
office asks for (notices, 签收 / 办结, rejects, silences, counts).

The embedded service (:mod:`shian.streams.service`) and the Kafka follower
(:mod:`shian.streams.follower`) each build on it and add how events come in and where the
rules run; together they implement the office's ``Runtime`` interface
(:mod:`shian.office.runtime`) structurally — this package does not import the office.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import dataclasses
import logging
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

from shian.notifiers.delivery import open_dispatcher
from shian.notifiers.outbox import Delivery, NoticeQuery
from shian.notifiers.settings import Settings as DeliverySettings
from shian.notifiers.silences import StoredSilence
from shian.rules.config import Config
from shian.rules.events import Validator
from shian.rules.notice import Notice
from shian.rules.records import REJECTED, Outcome, Record, Reject, UnreadableInput, ack_event

from .noticeview import NoticeView, Reads
from .sources import JSONL_SUFFIXES, MAX_ROWS, read_bytes
from .store import Store

log = logging.getLogger("shian.runtime")
CHUNK = 200            # records accepted between two yields to the event loop, at most
SLICE = 0.05           # seconds of accepting between two yields to the event loop, about
MAX_LINES = MAX_ROWS   # lines of one JSON Lines body or upload (CSV / XLSX: rows, the same limit)
# A JSON body up to this size is parsed on the event loop (tens of microseconds for an event),
# not on a worker thread: the hand-off there and back would cost more than the parsing, and
# while the office's threads run Python (a page being read or filled in) each hand-off waits
# for the interpreter. Larger bodies, and files (CSV, XLSX, JSON Lines), are read on a thread.
INLINE_JSON = 64 * 1024
STOP_GRACE = 2.0       # seconds a delivery under way may take to finish at a stop, then it is cancelled
STOPPING = "服务正在停止：此行未处理（未记录），请稍后重发"
STORAGE_ERRORS = (sqlite3.Error, OSError)  # a database that cannot be read or written
# Who sent the input may post this event? The reason in Chinese why not, or None. Given with
# input from outside (the HTTP API: the caller's token); the machine's own input has none.
Policy = Callable[[Any], str | None]


class Storage(Protocol):
    """Where a runtime keeps its data (the ``service:`` section gives it)."""

    @property
    def events_db(self) -> Path: ...
    snapshot_every: int
    drop_dir: Path | None


@dataclass
class Metrics:
    events: Counter = field(default_factory=Counter)      # accepted, by type
    duplicates: int = 0
    rejects: int = 0
    notices: Counter = field(default_factory=Counter)     # by rule
    started: float = field(default_factory=time.time)
    last_tick: float = 0.0


@dataclass
class Health:
    """The parts of a runtime that fail now (``journal``, ``outbox``, ``delivery``, ``clock``),
    each with its reason in Chinese; a part is cleared by its next success."""

    failing: dict[str, str] = field(default_factory=dict)

    def fail(self, part: str, reason: str) -> bool:
        """Records the failure; True when the part was not failing before (log it then)."""
        new = part not in self.failing
        self.failing[part] = reason
        return new

    def ok(self, part: str) -> None:
        self.failing.pop(part, None)


def _libc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None (another C library, or none found)."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim") if name else None
    except (OSError, AttributeError):
        return None


_TRIM = _libc_trim()

# glibc's mallopt parameters, and the threshold kept: glibc's own starting value
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 128 * 1024


def fix_malloc_thresholds(threshold: int = MMAP_THRESHOLD) -> bool:
    """Keeps glibc's mmap threshold (and the heap's trim threshold) at ``threshold`` for the
    rest of the process; True when set, False under another C library.

    By default glibc raises its mmap threshold to the largest block ever freed (up to 32 MB):
    after one snapshot or one long digest, blocks of that size come from the heap instead of
    their own mappings, and each one freed leaves a hole among the long-lived state that the
    heap cannot give back. Fixed, a block above it that no free chunk of the heap fits is
    mapped alone and unmapped when freed.
    For a long-running process (``shian run``, the Kafka worker). On the soak's feed, run
    in-process for 120,000 events, the heap's free space stays under 1 MB (4.4 MB and growing
    without; 16 MB after 7 minutes of the soak against the server)."""
    if _TRIM is None:   # not glibc (its malloc_trim is the mark): another malloc, other parameters
        return False
    mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    return bool(mallopt(M_MMAP_THRESHOLD, threshold)) and bool(mallopt(M_TRIM_THRESHOLD, threshold))


def release_freed_memory() -> None:
    """Hands the memory freed since to the OS. A snapshot pickles the whole state into
    buffers of many MB that are freed at once; glibc keeps such memory for reuse (its mmap
    threshold grows with the largest freed block), so without this a long-running service's
    RSS climbs a step at each snapshot although nothing is kept."""
    if _TRIM is not None:
        _TRIM(0)


# SQLite's (and the OS's) words for the failures an office meets, in Chinese.
STORAGE_WORDS = (
    ("database or disk is full", "磁盘空间已满"),
    ("no space left", "磁盘空间已满"),
    ("disk i/o error", "磁盘读写出错"),
    ("readonly database", "数据库文件只读"),
    ("read-only file system", "数据库文件只读"),
    ("unable to open database", "无法打开数据库文件"),
    ("database is locked", "数据库被其他程序锁定"),
    ("malformed", "数据库文件已损坏"),
)


def storage_error(e: BaseException) -> str:
    """A database error in words: what it means for the office (when known), then its kind
    and SQLite's own message."""
    raw = f"{type(e).__name__}: {e}"
    low = raw.lower()
    words = next((zh for en, zh in STORAGE_WORDS if en in low), None)
    return f"{words}，{raw}" if words else raw


class RuntimeBase:
    """The journal, the outbox and the office's questions; subclasses say how events come in
    (``accept_records``, ``ack``), where the clock is (``clock``) and how they run (``run``)."""

    def __init__(self, config: Config, storage: Storage, delivery: DeliverySettings, *,
                 now: Callable[[], datetime] | None = None) -> None:
        self.config, self.storage, self.delivery = config, storage, delivery
        self.now = now or (lambda: datetime.now(config.tz))
        self.store = Store(storage.events_db, config.tz)
        self.dispatcher = open_dispatcher(delivery, now=self.now)
        self.outbox = self.dispatcher.outbox
        self.validator = Validator(config.known())
        self.metrics = Metrics()
        self.health = Health()
        self.journal_error = ""  # the latest failure to write the journal, in words
        self._stop: asyncio.Event | None = None  # set by ``run``: input then stops between chunks
        # the office's reads: on the thread that made the runtime, its journal and a view of the
        # outbox; on any other thread (the office's reader), connections of that thread's own
        self._owner = threading.get_ident()
        self._own_reads = Reads(self.store, NoticeView(self.outbox.path, config.tz))
        self._thread_reads = threading.local()
        self._opened: list[Reads] = []
        self._opening = threading.Lock()

    # -- input ---------------------------------------------------------------------------

    def accept_records(self, records: Iterable[Record], *, mode: str = "live",
                       policy: Policy | None = None) -> list[Outcome]:
        """Each record on its own; a valid event that ``policy`` refuses is rejected with its reason."""
        raise NotImplementedError

    def accept_object(self, obj: Any, source: str, line: Any = None, *, mode: str = "live") -> Outcome:
        """One event as a JSON value (already parsed) or text."""
        text = isinstance(obj, (str, bytes))
        [outcome] = self.accept_records([Record(source, line, obj if text else "", None if text else obj)], mode=mode)
        return outcome

    def ack(self, notice_id: str, dept: str, action: str = "签收", note: str | None = None) -> Outcome:
        """签收 / 办结 of a notice by one of its recipients, as an ``ack`` event at this clock."""
        notice = self.outbox.notice(notice_id)
        if notice is None:
            return Outcome(REJECTED, reason=f"没有编号为 {notice_id} 的通知")
        if dept not in notice.recipients:
            return Outcome(REJECTED, reason=f"部门 {dept} 不是该通知的接收部门")
        obj = ack_event(notice_id, notice.township, dept, action, self.now(), note)
        return self.accept_object(obj, f"ack:{dept}")

    @property
    def stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def accept_file(self, data: bytes, filename: str, source: str,
                          policy: Policy | None = None) -> list[Outcome]:
        """An upload or a request body, read like a file of that name (off the event loop, but
        a small JSON body: :data:`INLINE_JSON`),
        then accepted in chunks so that the clock, the sender and other requests keep running.
        Raises :class:`~shian.rules.records.UnreadableInput` for a JSON body that is not JSON,
        or JSON Lines of more than :data:`MAX_LINES` lines (refused before any is run); a file
        that fails to be read otherwise is one reject naming it. ``policy``: as for
        :meth:`accept_records`."""
        if Path(filename).suffix.lower() in JSONL_SUFFIXES and data.count(b"\n") >= MAX_LINES:
            raise UnreadableInput(f"一次最多报送 {MAX_LINES:,} 行：请分成几次报送")
        try:
            if Path(filename).suffix.lower() == ".json" and len(data) <= INLINE_JSON:
                records = read_bytes(data, filename, source)   # a few events: parsed at once, on the loop
            else:
                records = await asyncio.to_thread(read_bytes, data, filename, source)
        except UnreadableInput:
            raise
        except Exception as e:  # the runtime's boundary: the file goes to the rejects with its reason
            log.exception("读取 %s（来自 %s）失败", filename, source)
            records = [Record(f"{source}:{filename}", 0, "", reason=f"无法读取文件（{type(e).__name__}），已记入日志")]
        return await self.accept_chunks(records, policy=policy)

    async def accept_upload(self, data: bytes, filename: str, source: str,
                            policy: Policy | None = None) -> list[Outcome]:
        """One file of an upload of several: as :meth:`accept_file`, but a file that cannot be
        read at all is one reject naming it, so that the files with it still run."""
        try:
            return await self.accept_file(data, filename, source, policy)
        except UnreadableInput as e:
            return self.accept_records([Record(f"{source}:{filename}", 0, "", reason=f"文件“{filename}”：{e}")])

    async def accept_chunks(self, records: list[Record], *, mode: str = "live",
                            policy: Policy | None = None) -> list[Outcome]:
        """``records`` accepted a slice at a time, yielding to the event loop after each: a
        slice is sized to take about :data:`SLICE` seconds (at most :data:`CHUNK` records), so
        the clock, delivery, ``/health`` and other requests keep running however slow the disk.
        Once the runtime is stopping, the lines not yet run are answered :data:`STOPPING` (not
        kept among the rejects: they were not looked at)."""
        outcomes: list[Outcome] = []
        start, size = 0, 1
        while start < len(records):
            if self.stopping:
                outcomes += [Outcome(REJECTED, rec.line, reason=STOPPING) for rec in records[start:]]
                break
            began = time.monotonic()
            outcomes += self.accept_records(records[start:start + size], mode=mode, policy=policy)
            start += size
            size = max(1, min(CHUNK, int(size * SLICE / max(time.monotonic() - began, 1e-4))))
            await asyncio.sleep(0)
        return outcomes

    def reject(self, rec: Record, reason: str | None = None) -> Outcome:
        """``rec`` refused: kept in the store's rejects (the office sees them) and answered.
        A store that cannot keep it marks the journal failing; the answer is the same."""
        r = rec.reject(reason)
        try:
            self.store.add_reject(r, self.now())
        except STORAGE_ERRORS as e:
            self.journal_failed(e)
        else:
            self.health.ok("journal")
        self.metrics.rejects += 1
        return Outcome(REJECTED, rec.line, reason=r.reason)

    def journal_failed(self, e: BaseException) -> None:
        """The journal could not be written (or read): ``/health`` says so until it can."""
        if self.health.fail("journal", f"写入失败（{storage_error(e)}）"):
            log.error("事件日志 %s 无法写入：%s", self.store.path, storage_error(e))
        self.journal_error = storage_error(e)

    def problems(self) -> dict[str, str]:
        """The parts failing now (``journal``, ``outbox``, ``delivery``, ``clock``), each with
        its reason in Chinese; empty when healthy."""
        return dict(self.health.failing)

    # -- what the office reads ---------------------------------------------------------------
    # Any thread may ask these (the office reads on a thread of its own, off the event loop):
    # each thread reads on connections of its own (:meth:`_reads`).

    def _reads(self) -> Reads:
        """The calling thread's connections for reading (opened at its first read)."""
        if threading.get_ident() == self._owner:
            return self._own_reads
        reads = getattr(self._thread_reads, "reads", None)
        if reads is None:
            reads = self._thread_reads.reads = Reads.open(self.store.path, self.outbox.path, self.config.tz)
            with self._opening:
                self._opened.append(reads)
        return reads

    def notice(self, notice_id: str) -> Notice | None:
        return self._reads().notices.notice(notice_id)

    def notices(self, since: datetime | None = None, until: datetime | None = None,
                dept: str | None = None) -> list[Notice]:
        return self._reads().notices.notices(since, until, dept)

    def deliveries_of(self, notice_id: str) -> list[Delivery]:
        return self._reads().notices.deliveries_of(notice_id)

    def notice_page(self, query: NoticeQuery, offset: int = 0, limit: int = 50, *,
                    total: int | None = None) -> tuple[int, list[Notice]]:
        return self._reads().notices.notice_page(query, offset, limit, total=total)

    def notice_counts(self, query: NoticeQuery) -> dict[str, int]:
        return self._reads().notices.notice_counts(query)

    def notice_tally(self, query: NoticeQuery, acked: Sequence[str],
                     closed: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        return self._reads().notices.notice_tally(query, acked, closed)

    def notice_span(self) -> tuple[datetime, datetime] | None:
        return self._reads().notices.notice_span()

    def silenced_ids(self) -> set[str]:
        return self._reads().notices.silenced_ids()

    def acks_after(self, seq: int) -> tuple[int, list[dict[str, Any]]]:
        """The ack events journalled after row ``seq``, and the last row read."""
        return self._reads().store.events_after(seq, ("ack",))

    def rejects(self, limit: int = 100) -> list[Reject]:
        return self._reads().store.rejects(limit)

    def reject_page(self, source: str | None = None, since: datetime | None = None, offset: int = 0,
                    limit: int = 50) -> tuple[int, list[Reject]]:
        """How many rejects match (source containing ``source``, refused at or after
        ``since``), and ``limit`` of them from ``offset`` on, newest first."""
        store = self._reads().store
        return (store.reject_count(source=source, since=since),
                store.rejects(limit, source=source, since=since, offset=offset))

    def counts(self) -> dict[str, Any]:
        """Events and rejects kept, deliveries by state (raises when the databases fail)."""
        return {**self.store.counts(), "outbox": self.outbox.state_counts()}

    def next_delivery(self) -> datetime | None:
        return self.outbox.next_due()

    # -- silences ------------------------------------------------------------------------------

    def configured_silences(self) -> list[Any]:
        return list(self.delivery.silences)

    def silences(self, now: datetime) -> list[StoredSilence]:
        return self.outbox.silences(now)

    def add_silence(self, rule: str | None, township: str | None, start: datetime, end: datetime,
                    comment: str, by: str) -> StoredSilence:
        now = self.now()
        sid = self.outbox.add_silence(rule, township, start, end, comment, by, now=now)
        return next(s for s in self.outbox.silences(now) if s.id == sid)

    def expire_silence(self, silence_id: int) -> StoredSilence | None:
        """Ends an active or future silence now; returns it as ended (None: no such silence)."""
        now = self.now()
        silence = next((s for s in self.outbox.silences(now) if s.id == silence_id), None)
        if silence is None:
            return None
        self.outbox.expire_silence(silence_id, now)
        return dataclasses.replace(silence, start=min(silence.start, now), end=now)

    # -- lifecycle ---------------------------------------------------------------------------

    async def deliver(self, stop: asyncio.Event, poll_seconds: float = 1.0) -> None:
        """The dispatcher's steps until ``stop``: a step that raises is logged, marks delivery
        failing (``/health``) and is tried again after ``poll_seconds``."""
        while not stop.is_set():
            try:
                await self.dispatcher.step()
            except Exception as e:  # the runtime's boundary: delivery goes on at the next step
                if self.health.fail("delivery", f"投递出错（{type(e).__name__}: {e}），{poll_seconds:g} 秒后重试"):
                    log.exception("通知投递出错，每 %.1f 秒重试", poll_seconds)
            else:
                self.health.ok("delivery")
            try:
                await asyncio.wait_for(stop.wait(), poll_seconds)
            except asyncio.TimeoutError:
                pass

    @staticmethod
    async def stop_delivery(sender: asyncio.Task) -> None:
        """Waits :data:`STOP_GRACE` for the sender to finish its step (``stop`` is set), then
        cancels it: a message cut off stays ``sending`` and is retried after the restart."""
        try:
            await asyncio.wait_for(sender, STOP_GRACE)
        except asyncio.TimeoutError:
            log.warning("停止时投递 %.0f 秒内未完成，已中止；未发出的消息在下次启动时重发", STOP_GRACE)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.dispatcher.close(), STOP_GRACE)
        except asyncio.TimeoutError:
            log.warning("关闭投递渠道超过 %.0f 秒，未等其完成", STOP_GRACE)
        with self._opening:
            for reads in self._opened:
                reads.close()
            self._opened.clear()
        self._own_reads.notices.close()
        self.outbox.close()
        self.store.close()
