"""The durable delivery outbox: one SQLite file (WAL) at ``notifiers.outbox``.

Every accepted notice is stored, with one delivery row per (notice id, recipient department,
channel), in one transaction, before anything is sent: once :meth:`Outbox.add` has returned,
a crash or restart cannot lose the notice. A notice whose id is already stored (a redelivered
notice: same key, same id) is ignored. A recipient department without any channel gets no
delivery row; the notice is still stored (the dashboard and the digest read it).

Delivery rows move ``pending → sending → sent`` (many batches claimed, ``sending``, in one
synced transaction, each outcome committed as it comes without a sync of its own, see
:meth:`Outbox.claim` and :meth:`Outbox.finish`); on a temporary failure back to ``pending``
with a later ``next_at``; ``failed`` for good; ``silenced`` when a silence mutes the notice
(never sent); ``held`` when a reminder's date has passed or its own overdue notice superseded
it (never sent; ``last_error`` says why, :mod:`shian.notifiers.catchup`). Rows are sent in
batches: the rows of one message — a single notice, a group of notices of one rule, township
and period for one department and channel, a catch-up summary of the late notices for one
department and channel, or a daily digest. A batch is rendered once, when it first goes out;
its message (and ``ref``) is stored, so a retry sends the very same message, and no notice
joins a batch after that.

Schema (times are Unix seconds, REAL; the notice itself is kept as its §4 JSON):

- ``notices(id, rule, severity, level, township, at, due, received, silenced, json)``
- ``recipients(notice_id, dept)``
- ``batches(id, kind, dept, channel, rule, township, opened, due, ref, message, period)`` —
  ``kind`` is ``notice``, ``catch_up`` (a summary, without rule and township; or a late
  critical notice alone) or ``digest``; (rule, township, period, dept, channel) is the group
  key, ``period`` the month the notices are about (:func:`~shian.notifiers.catchup.period_of`);
  ``due`` is when the group flushes; ``message`` is the rendered :class:`Message` as JSON.
- ``deliveries(id, notice_id, dept, channel, kind, batch_id, rule, township, state, attempts,
  next_at, first_attempt_at, last_error, sent_at, ref)``, unique (notice_id, dept, channel);
  a digest's row has no notice id.
- ``digests(dept, day, channel, delivery_id, created)`` — one per department, day and channel
  (``delivery_id`` NULL: nothing to report that day), so a restart never sends it again.
- ``silences(id, rule, township, start_at, end_at, comment, by, created)`` — run-time silences.
- ``meta(key, value)`` — ``schema`` version (a file of version 1, without ``held`` rows,
  summaries and periods, is converted when it is opened); ``started``, the first time the
  outbox accepted a notice or a dispatcher started on it.

One dispatcher per outbox file: :meth:`recover`, run at its start, treats every row left in
``sending`` as not sent.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone, tzinfo
from pathlib import Path
from typing import Any, Collection, Iterable, Iterator, Mapping, Sequence

from shian.rules.notice import Notice

from . import catchup, timing
from .message import Message
from .settings import Settings, Silence
from .silences import StoredSilence, muting

log = logging.getLogger("shian.notifiers.outbox")

SCHEMA_VERSION = "2"
#: The office's list picks its indexes by SQLite's statistics of the notices: without them a
#: department's list joined and sorted every notice of that department (80 ms at 72,000) where
#: it can walk the order's index and stop after its page (0.1 ms). They are gathered when the
#: outbox opens and each time the notices have doubled since (from this many): a full
#: ``ANALYZE`` of the notices and recipients, 0.45 s at 72,000 notices from a cold disk, so a
#: few such pauses over the outbox's life (sampling with ``analysis_limit`` is cheaper, but its
#: estimates led the planner to the slow plan).
STATS_MIN_ROWS = 256
STATES = ("pending", "sending", "sent", "failed", "silenced", "held")

#: how urgent a notice's severity is (0 first): the order of the office's list, and the key of
#: the index that pages it (so a page reads 50 index entries, not a sort of every notice)
URGENCY = "CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 WHEN 'info' THEN 2 ELSE 3 END"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notices (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    level TEXT NOT NULL,
    township TEXT NOT NULL,
    at REAL NOT NULL,
    due REAL,
    received REAL NOT NULL,
    silenced INTEGER NOT NULL DEFAULT 0,
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_at ON notices (at);
CREATE INDEX IF NOT EXISTS notices_due ON notices (due) WHERE due IS NOT NULL;
CREATE INDEX IF NOT EXISTS notices_rule ON notices (rule, township);
-- the office's list: its order (scanned backwards: most urgent, newest, last stored first),
-- and its counts by severity (with the ids, for the signed-for and closed ones)
CREATE INDEX IF NOT EXISTS notices_urgency ON notices (({URGENCY}) DESC, at);
CREATE INDEX IF NOT EXISTS notices_severity ON notices (severity, id);
CREATE INDEX IF NOT EXISTS notices_silenced ON notices (id) WHERE silenced = 1;
CREATE TABLE IF NOT EXISTS recipients (
    notice_id TEXT NOT NULL REFERENCES notices (id),
    dept TEXT NOT NULL,
    PRIMARY KEY (dept, notice_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('notice', 'catch_up', 'digest')),
    dept TEXT NOT NULL,
    channel TEXT NOT NULL,
    rule TEXT,
    township TEXT,
    opened REAL NOT NULL,
    due REAL NOT NULL,
    ref TEXT,
    message TEXT,
    period TEXT
);
CREATE INDEX IF NOT EXISTS batches_open ON batches (dept, channel, rule, township) WHERE message IS NULL;
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    notice_id TEXT REFERENCES notices (id),
    dept TEXT NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('notice', 'digest')),
    batch_id INTEGER REFERENCES batches (id),
    rule TEXT,
    township TEXT,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'silenced', 'held')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL,
    first_attempt_at REAL,
    last_error TEXT NOT NULL DEFAULT '',
    sent_at REAL,
    ref TEXT,
    UNIQUE (notice_id, dept, channel)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_at);
CREATE INDEX IF NOT EXISTS deliveries_batch ON deliveries (batch_id);
CREATE TABLE IF NOT EXISTS digests (
    dept TEXT NOT NULL,
    day TEXT NOT NULL,
    channel TEXT NOT NULL,
    delivery_id INTEGER REFERENCES deliveries (id),
    created REAL NOT NULL,
    PRIMARY KEY (dept, day, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY,
    rule TEXT,
    township TEXT,
    start_at REAL NOT NULL,
    end_at REAL NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    by TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Delivery:
    """One delivery row: a notice (or a digest) to one department over one channel."""
    id: int
    notice_id: str | None
    dept: str
    channel: str
    kind: str
    state: str
    attempts: int
    next_at: datetime | None
    first_attempt_at: datetime | None
    last_error: str
    rule: str | None
    township: str | None
    sent_at: datetime | None
    ref: str | None
    batch_id: int | None


#: the orders of :class:`NoticeQuery`: newest first, by severity (critical first, each newest
#: first; the ``notices_urgency`` index), or as ``ids`` lists them
ORDER = {
    "newest": "n.at DESC, n.rowid DESC",
    "severity": f"{URGENCY.replace('severity', 'n.severity')}, n.at DESC, n.rowid DESC",
    "ids": "j.key",
}


@dataclass(frozen=True)
class NoticeQuery:
    """Which stored notices a reader (the dashboard) asks for, and in which order: each field
    given narrows the list. ``ids`` keeps only those notices, ``exclude`` leaves those out;
    both are how a reader that knows the 签收 / 办结 (the journal's acks, not this file) asks
    for notices by their state. ``order``: ``newest`` first (``at``, then arrival),
    ``severity`` (critical first, each newest first) or ``ids`` (as listed there)."""
    township: str | None = None
    rule: str | None = None
    severity: str | None = None
    dept: str | None = None                 # addressed to this department
    since: datetime | None = None           # at >= since
    until: datetime | None = None           # at < until
    ids: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    order: str = "newest"


@dataclass(frozen=True, slots=True)
class DueBatch:
    """A batch with rows due (:meth:`Outbox.due_ids`): its id, channel and how many of its rows
    are due (about as many notices), nothing read yet."""
    id: int
    channel: str
    rows: int


@dataclass(frozen=True)
class Batch:
    """The rows that go out as one message, with what is needed to send them."""
    id: int
    kind: str
    dept: str
    channel: str
    rule: str | None
    township: str | None
    message: Message | None
    notices: tuple[Notice, ...]
    delivery_ids: tuple[int, ...]
    attempts: int
    first_attempt_at: datetime | None


def _ts(dt: datetime) -> float:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: the outbox needs aware times")
    return dt.timestamp()


_MESSAGE_FIELDS = tuple(f.name for f in dataclasses.fields(Message))


def message_json(m: Message) -> str:
    """The message as JSON, field by field (``dataclasses.asdict`` copies every value deeply)."""
    return json.dumps({name: getattr(m, name) for name in _MESSAGE_FIELDS}, ensure_ascii=False)


def message_of(text: str) -> Message:
    d = json.loads(text)
    d["notice_ids"] = tuple(d["notice_ids"])
    d["headers"] = tuple(tuple(h) for h in d.get("headers", ()))
    return Message(**d)


class Outbox:
    """The outbox file. ``settings`` is needed to accept notices (channels, timing, silences);
    reading (dashboard, ledger, silences on the command line) works without it."""

    def __init__(self, path: str | Path, settings: Settings | None = None, *,
                 tz: tzinfo | None = None) -> None:
        self.path = Path(path)
        self.settings = settings
        self.tz = tz or (settings.config.tz if settings is not None else timezone.utc)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self._durable = True
        self.db.execute("PRAGMA foreign_keys=ON")
        with self._tx() as c:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    c.execute(stmt)
            c.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
        self._migrate()
        self._notices = self.db.execute("SELECT COUNT(*) FROM notices").fetchone()[0]
        self._stats_at = self._analyzed_rows()
        self._keep_stats()

    def _analyzed_rows(self) -> int:
        """How many notices the statistics counted (0: none yet)."""
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
            return 0
        row = self.db.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = 'notices' LIMIT 1").fetchone()
        return int(row[0].split()[0]) if row else 0

    def _keep_stats(self) -> None:
        """The statistics gathered again once the notices doubled since they were (see
        :data:`STATS_MIN_ROWS`); a failure only costs the list its speed, so it is logged."""
        if self._notices < max(STATS_MIN_ROWS, 2 * self._stats_at):
            return
        try:
            self.db.execute("ANALYZE notices")
            self.db.execute("ANALYZE recipients")
        except sqlite3.Error as e:
            log.warning("发件箱 %s 的统计信息未能更新（只影响列表的速度）：%s", self.path, e)
        self._stats_at = self._notices

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, *, durable: bool = True) -> Iterator[sqlite3.Cursor]:
        """One write transaction, taken at once (IMMEDIATE) so that it never fails half-way
        on a lock; committed on success, rolled back on any exception. ``durable`` False: the
        commit is not synced to the disk (WAL, ``synchronous=NORMAL``): it survives the process
        dying, and reaches the disk with the next durable commit (which syncs the log with every
        frame before it) or checkpoint; a power failure before that can undo it."""
        if durable != self._durable:
            self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._durable = durable
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db.cursor()
            self.db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk does): then ROLLBACK would
            # raise "no transaction is active" over the error that matters.
            if self.db.in_transaction:
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    def _write(self, sql: str, args: Sequence[Any]) -> None:
        """One statement as a transaction of its own (SQLite's autocommit: all of it or none),
        committed without a sync of its own (see :meth:`_tx`)."""
        if self._durable:
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._durable = False
        self.db.execute(sql, args)

    def _dt(self, x: float | None) -> datetime | None:
        return None if x is None else datetime.fromtimestamp(x, self.tz)

    # -- accepting notices ---------------------------------------------------------------

    def add(self, notice: Notice, now: datetime, *, deliver: bool = True) -> bool:
        """Stores a notice and its delivery rows in one transaction; False if its id is known.
        ``deliver=False`` keeps the notice and its recipients only (a process that shows
        notices while another one delivers them)."""
        with self._tx() as c:
            new = self._add(c, notice, now, deliver)
        self._notices += new
        self._keep_stats()
        return new

    def add_all(self, notices: Sequence[Notice], now: datetime, *, deliver: bool = True) -> list[bool]:
        """:meth:`add` for several notices (those one event raised) in one transaction, one
        sync: each stored as :meth:`add` stores it, in order, or — should the transaction fail
        — none of them. Whether each was new, in order."""
        with self._tx() as c:
            silences = self._stored_silences(c)
            new = [self._add(c, n, now, deliver, silences) for n in notices]
        self._notices += sum(new)
        self._keep_stats()
        return new

    def add_many(self, notices: Iterable[Notice], now: datetime, *, chunk: int = 500) -> int:
        """:meth:`add` for many notices, ``chunk`` of them per transaction (one fsync each, not
        one per notice); returns how many were new. Each notice is stored exactly as :meth:`add`
        stores it, in order; a failure rolls back only the chunk it happened in."""
        new, todo = 0, list(notices)
        for i in range(0, len(todo), max(1, chunk)):
            new += sum(self.add_all(todo[i:i + chunk], now))
        return new

    def _add(self, c: sqlite3.Cursor, notice: Notice, now: datetime, deliver: bool = True,
             stored_silences: Sequence[Silence] | None = None) -> bool:
        """Stores one notice in the open transaction ``c``; ``stored_silences``: the run-time
        silences (:meth:`_stored_silences`), read once for many notices (else read here)."""
        s = self.settings
        if s is None:
            raise RuntimeError("Outbox opened without settings cannot accept notices")
        stored = self._silences_at(c, notice.at) if stored_silences is None else stored_silences
        muted = muting(notice, (*s.silences, *stored))
        c.execute(
            "INSERT OR IGNORE INTO notices (id, rule, severity, level, township, at, due, received, silenced, json)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (notice.id, notice.rule, notice.severity, notice.level, notice.township,
             _ts(notice.at), _ts(notice.due) if notice.due else None, _ts(now), int(muted is not None),
             json.dumps(notice.to_json(), ensure_ascii=False)))
        if c.rowcount == 0:
            return False
        self._mark_started(c, now)
        if muted is not None:
            log.info("notice %s (%s, %s) silenced", notice.id, notice.rule, notice.township)
        own_due = timing.flush_time(now, notice.severity, s)
        how = catchup.route(notice, now, s, follows_late=self._any_late(c, catchup.escalated_ids(notice)))
        for dept in dict.fromkeys(notice.recipients):
            if dept not in s.config.departments:
                log.error("notice %s: unknown department %s, not delivered", notice.id, dept)
                continue
            c.execute("INSERT OR IGNORE INTO recipients (notice_id, dept) VALUES (?, ?)", (notice.id, dept))
            for channel in s.channels_of(dept) if deliver else ():
                batch_id, next_at = (None, None) if muted else self._join(c, notice, dept, channel, now, own_due, how)
                c.execute(
                    "INSERT OR IGNORE INTO deliveries (notice_id, dept, channel, kind, batch_id, rule, township,"
                    " state, next_at) VALUES (?, ?, ?, 'notice', ?, ?, ?, ?, ?)",
                    (notice.id, dept, channel, batch_id, notice.rule, notice.township,
                     "silenced" if muted else "pending", next_at))
        return True

    def _join(self, c: sqlite3.Cursor, notice: Notice, dept: str, channel: str,
              now: datetime, own_due: datetime, how: catchup.Route = "group") -> tuple[int, float]:
        """The batch a new delivery row goes into (``how``: :func:`catchup.route`): the
        department's catch-up summary not yet sent, for a late notice (or an escalation of one,
        if such a summary waits); else the open group of its rule, township and period, if one
        is still waiting (it then flushes at the earlier of the two due times); else a new one."""
        row = None
        period = catchup.period_of(notice, self.tz)
        if how in ("summary", "follow"):
            row = c.execute(
                "SELECT id, due FROM batches WHERE kind = 'catch_up' AND rule IS NULL AND dept = ? AND channel = ?"
                " AND message IS NULL ORDER BY id DESC LIMIT 1", (dept, channel)).fetchone()
        if row is None and how in ("group", "follow") and self.settings is not None \
                and self.settings.group_wait_seconds > 0:
            row = c.execute(
                "SELECT id, due FROM batches WHERE kind = 'notice' AND dept = ? AND channel = ? AND rule = ?"
                " AND township = ? AND period = ? AND message IS NULL AND due > ? ORDER BY id DESC LIMIT 1",
                (dept, channel, notice.rule, notice.township, period, _ts(now))).fetchone()
        if row is None:  # a summary has no rule, township nor period; a late notice alone no period
            summary, grouped = how == "summary", how in ("group", "follow")
            c.execute(
                "INSERT INTO batches (kind, dept, channel, rule, township, period, opened, due)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ("notice" if grouped else "catch_up", dept, channel, None if summary else notice.rule,
                 None if summary else notice.township, period if grouped else None, _ts(now), _ts(own_due)))
            return c.lastrowid, _ts(own_due)
        due = min(row["due"], _ts(own_due))
        if due < row["due"]:
            c.execute("UPDATE batches SET due = ? WHERE id = ?", (due, row["id"]))
            c.execute("UPDATE deliveries SET next_at = ? WHERE batch_id = ? AND state = 'pending'", (due, row["id"]))
        return row["id"], due

    def _any_late(self, c: sqlite3.Cursor, ids: Sequence[str]) -> bool:
        """Whether one of the stored notices ``ids`` was late (so it went into a summary)."""
        s = self.settings
        if not ids or s is None or s.catch_up_after is None:
            return False
        marks = ",".join("?" * len(ids))
        return any(
            r["severity"] != "critical" and timing.is_late(self._dt(r["at"]), self._dt(r["received"]), s)
            for r in c.execute(f"SELECT severity, at, received FROM notices WHERE id IN ({marks})", tuple(ids)))

    @staticmethod
    def _mark_started(c: sqlite3.Cursor, now: datetime) -> None:
        c.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('started', ?)", (repr(_ts(now)),))

    def started(self) -> datetime | None:
        """When this outbox first accepted a notice or saw a dispatcher start (digests of
        earlier days are never made)."""
        r = self.db.execute("SELECT value FROM meta WHERE key = 'started'").fetchone()
        return self._dt(float(r[0])) if r else None

    def mark(self, key: str) -> str | None:
        """A reader's place kept with the outbox (``meta``), e.g. how far the acks were read."""
        r = self.db.execute("SELECT value FROM meta WHERE key = ?", (f"mark:{key}",)).fetchone()
        return r[0] if r else None

    def set_mark(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (f"mark:{key}", value))

    def _migrate(self) -> None:
        """A file of schema version 1 gets ``batches`` and ``deliveries`` with the checks and
        the column of version 2 (SQLite cannot change a CHECK in place: each table is copied
        into a new one, as SQLite documents it, foreign keys off meanwhile), in one transaction."""
        if self._schema() == SCHEMA_VERSION:
            return
        self.db.execute("PRAGMA foreign_keys=OFF")
        try:
            with self._tx() as c:
                version = self._schema()
                if version == SCHEMA_VERSION:
                    return
                if version != "1":
                    raise RuntimeError(f"发件箱 {self.path} 的格式版本为 {version}，本程序只认得 1 和 {SCHEMA_VERSION}")
                for table in ("batches", "deliveries"):
                    old = [r[1] for r in c.execute(f"PRAGMA table_info({table})")]
                    ddl = next(s for s in _SCHEMA.split(";") if f"EXISTS {table} (" in s)
                    c.execute(ddl.replace(f"IF NOT EXISTS {table} (", f"{table}_v2 ("))
                    c.execute(f"INSERT INTO {table}_v2 ({', '.join(old)}) SELECT {', '.join(old)} FROM {table}")
                    c.execute(f"DROP TABLE {table}")
                    c.execute(f"ALTER TABLE {table}_v2 RENAME TO {table}")
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                if c.execute("PRAGMA foreign_key_check").fetchall():
                    raise RuntimeError(f"发件箱 {self.path} 转换后外键不一致，已撤销转换")
                c.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (SCHEMA_VERSION,))
            log.warning("outbox %s converted from schema 1 to %s", self.path, SCHEMA_VERSION)
        finally:
            self.db.execute("PRAGMA foreign_keys=ON")

    def _schema(self) -> str:
        return str(self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0])

    # -- sending -------------------------------------------------------------------------

    def recover(self, now: datetime) -> int:
        """At a dispatcher's start: rows left in ``sending`` (the process stopped while a
        channel had the message) are due again now. Returns how many."""
        with self._tx() as c:
            c.execute("UPDATE deliveries SET state = 'pending', next_at = ? WHERE state = 'sending'", (_ts(now),))
            n = c.rowcount
            self._mark_started(c, now)
        if n:
            log.warning("%d deliveries were in flight when the outbox was last closed; sending them again", n)
        return n

    def due(self, now: datetime, limit: int | None = None, *, channels: Collection[str] | None = None,
            after: Collection[int] = ()) -> list[Batch]:
        """The batches with rows pending and due at ``now``, the earliest first: at most
        ``limit`` of them (all: None), only of ``channels`` if given, none of the ids in
        ``after`` (the batches a caller already had: the next page)."""
        return self.batches([d.id for d in self.due_ids(now, limit, channels=channels, after=after)])

    def due_ids(self, now: datetime, limit: int | None = None, *, channels: Collection[str] | None = None,
                after: Collection[int] = ()) -> list[DueBatch]:
        """What :meth:`due` returns, as ids and channels only (no notice read): a sender reads
        the batches themselves (:meth:`batches`) a few at a time, just before it renders them."""
        sql = ("SELECT batch_id, channel, COUNT(*) FROM deliveries WHERE state = 'pending' AND next_at <= ?"
               " AND batch_id IS NOT NULL")
        args: list[Any] = [_ts(now)]
        if channels is not None:
            sql += " AND channel IN (SELECT value FROM json_each(?))"
            args.append(json.dumps(sorted(channels)))
        if after:
            sql += " AND batch_id NOT IN (SELECT value FROM json_each(?))"
            args.append(json.dumps(sorted(after)))
        sql += " GROUP BY batch_id ORDER BY MIN(next_at), batch_id"  # a batch's rows share its channel
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(0, limit))
        return [DueBatch(r[0], r[1], r[2]) for r in self.db.execute(sql, args)]

    def due_channels(self, now: datetime) -> set[str]:
        """The channels of the rows pending and due at ``now``."""
        return {r[0] for r in self.db.execute(
            "SELECT DISTINCT channel FROM deliveries WHERE state = 'pending' AND next_at <= ? AND batch_id IS NOT NULL",
            (_ts(now),))}

    def _batch(self, batch_id: int) -> Batch | None:
        found = self.batches([batch_id])
        return found[0] if found else None

    def batches(self, ids: Sequence[int], chunk: int = 500) -> list[Batch]:
        """The batches ``ids`` with their pending rows and notices, in that order (one without
        pending rows left out), read in two queries per ``chunk`` of them."""
        out: list[Batch] = []
        for i in range(0, len(ids), chunk):
            part = json.dumps(list(ids[i:i + chunk]))
            heads = {r["id"]: r for r in self.db.execute(
                "SELECT * FROM batches WHERE id IN (SELECT value FROM json_each(?))", (part,))}
            rows: dict[int, list[sqlite3.Row]] = {}
            for r in self.db.execute(
                    "SELECT d.batch_id, d.id, d.attempts, d.first_attempt_at, n.json FROM deliveries d"
                    " LEFT JOIN notices n ON n.id = d.notice_id"
                    " WHERE d.batch_id IN (SELECT value FROM json_each(?)) AND d.state = 'pending'"
                    " ORDER BY d.batch_id, n.at, n.rowid, d.id", (part,)):
                rows.setdefault(r["batch_id"], []).append(r)
            for batch_id in ids[i:i + chunk]:
                b, mine = heads.get(batch_id), rows.get(batch_id)
                if b is not None and mine:
                    out.append(self._batch_of(b, mine))
        return out

    def _batch_of(self, b: sqlite3.Row, rows: list[sqlite3.Row]) -> Batch:
        return Batch(
            id=b["id"], kind=b["kind"], dept=b["dept"], channel=b["channel"], rule=b["rule"],
            township=b["township"], message=message_of(b["message"]) if b["message"] else None,
            notices=tuple(self._notice(r["json"]) for r in rows if r["json"] is not None),
            delivery_ids=tuple(r["id"] for r in rows),
            attempts=max(r["attempts"] for r in rows),
            first_attempt_at=self._dt(min((r["first_attempt_at"] for r in rows if r["first_attempt_at"] is not None),
                                          default=None)))

    def mute(self, batch_id: int, notice_ids: Iterable[str]) -> None:
        """Rows of a batch not yet rendered whose notices a silence added since mutes."""
        ids = list(notice_ids)
        with self._tx() as c:
            for nid in ids:
                c.execute("UPDATE deliveries SET state = 'silenced', batch_id = NULL"
                          " WHERE batch_id = ? AND notice_id = ? AND state = 'pending'", (batch_id, nid))
                c.execute("UPDATE notices SET silenced = 1 WHERE id = ?", (nid,))

    def hold(self, batch_id: int, reasons: Mapping[str, str]) -> None:
        """Rows of a batch whose notices are not to be sent (:func:`catchup.holds`): ``held``,
        out of the batch, the reason kept as the row's ``last_error``."""
        with self._tx() as c:
            self._hold(c, [(batch_id, reasons)])

    @staticmethod
    def _hold(c: sqlite3.Cursor, holds: Sequence[tuple[int, Mapping[str, str]]]) -> None:
        c.executemany("UPDATE deliveries SET state = 'held', batch_id = NULL, next_at = NULL, last_error = ?"
                      " WHERE batch_id = ? AND notice_id = ? AND state = 'pending'",
                      [(reason, batch_id, nid) for batch_id, reasons in holds for nid, reason in reasons.items()])

    def start(self, batch: Batch, now: datetime, message: Message | None = None) -> Batch:
        """:meth:`claim` of one batch."""
        return self.claim([(batch, message)], now)[0]

    def claim(self, items: Sequence[tuple[Batch, Message | None]], now: datetime,
              holds: Sequence[tuple[int, Mapping[str, str]]] = (), *, unchanged: bool = False) -> list[Batch]:
        """Marks the rows of every batch given ``sending``, in one durable transaction committed
        before any channel is called; a batch going out for the first time gets its rendered
        message (given beside it) stored with it. ``holds``: (batch id, reasons) of notices
        held (:meth:`hold`) meanwhile, written in the same transaction. ``unchanged``: a batch
        with a pending row that is not among its ``delivery_ids`` (a notice joined it since it
        was read) is left as it is, pending, and not returned. Returns the batches claimed, as
        they now are."""
        out, stored, claimed = [], [], []
        first = _ts(now)
        with self._tx() as c:
            self._hold(c, holds)
            joined = self._joined_since(c, [batch for batch, _ in items]) if unchanged else set()
            for batch, message in items:
                if batch.id in joined:
                    continue
                if message is not None:
                    stored.append((message.ref, message_json(message), batch.id))
                sent = message or batch.message
                ref = sent.ref if sent is not None else \
                    c.execute("SELECT ref FROM batches WHERE id = ?", (batch.id,)).fetchone()["ref"]
                claimed.append((first, ref, batch.id))
                out.append(dataclasses.replace(batch, message=sent, attempts=batch.attempts + 1,
                                               first_attempt_at=batch.first_attempt_at or now))
            c.executemany("UPDATE batches SET ref = ?, message = ? WHERE id = ? AND message IS NULL", stored)
            c.executemany(
                "UPDATE deliveries SET state = 'sending', attempts = attempts + 1,"
                " first_attempt_at = COALESCE(first_attempt_at, ?), ref = ? WHERE batch_id = ? AND state = 'pending'",
                claimed)
        return out

    @staticmethod
    def _joined_since(c: sqlite3.Cursor, batches: Sequence[Batch]) -> set[int]:
        """The ids of ``batches`` that have a pending row not there when they were read (one
        query for them all)."""
        read = {b.id: set(b.delivery_ids) for b in batches}
        rows = c.execute("SELECT batch_id, id FROM deliveries WHERE batch_id IN (SELECT value FROM json_each(?))"
                         " AND state = 'pending'", (json.dumps(list(read)),))
        return {batch_id for batch_id, delivery_id in rows if delivery_id not in read[batch_id]}

    def release(self, batch_ids: Iterable[int]) -> None:
        """Rows claimed (:meth:`claim`) whose batch was never handed to its channel (the
        dispatcher stopped first): ``pending`` again, the attempt not counted."""
        with self._tx() as c:
            for batch_id in batch_ids:
                c.execute("UPDATE deliveries SET state = 'pending', attempts = MAX(0, attempts - 1)"
                          " WHERE batch_id = ? AND state = 'sending'", (batch_id,))

    def finish(self, batch_id: int, nxt: timing.Next, now: datetime, error: str = "",
               raise_notices: Sequence[Notice] = (), *, attempted: bool = True) -> None:
        """Records the outcome for all the batch's rows at once, and (in the same transaction)
        adds the notices it raises (``delivery.failed``). ``attempted`` False: the batch did
        not reach :meth:`claim` (rendering failed), count the attempt here. Committed without
        a sync of its own unless it raises notices (accepted means kept): it survives the
        process dying, and reaches the disk with the next claim (see :meth:`_tx`)."""
        if nxt.state == "sent" and attempted and not raise_notices:  # the common case: one statement
            self._write("UPDATE deliveries SET state = 'sent', sent_at = ?, last_error = ''"
                        " WHERE batch_id = ? AND state IN ('sending', 'pending')", (_ts(now), batch_id))
            return
        with self._tx(durable=bool(raise_notices)) as c:
            if not attempted:
                c.execute("UPDATE deliveries SET attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, ?)"
                          " WHERE batch_id = ? AND state = 'pending'", (_ts(now), batch_id))
            if nxt.state == "sent":
                c.execute("UPDATE deliveries SET state = 'sent', sent_at = ?, last_error = ''"
                          " WHERE batch_id = ? AND state IN ('sending', 'pending')", (_ts(now), batch_id))
            elif nxt.state == "pending":
                assert nxt.next_at is not None
                c.execute("UPDATE deliveries SET state = 'pending', next_at = ?, last_error = ?"
                          " WHERE batch_id = ? AND state IN ('sending', 'pending')", (_ts(nxt.next_at), error, batch_id))
            else:
                c.execute("UPDATE deliveries SET state = 'failed', next_at = NULL, last_error = ?"
                          " WHERE batch_id = ? AND state IN ('sending', 'pending')", (error, batch_id))
            for n in raise_notices:
                self._add(c, n, now)

    # -- digests -------------------------------------------------------------------------

    def digest_channels(self, dept: str, day: date) -> set[str]:
        """The channels on which ``dept``'s digest of ``day`` is already recorded (or skipped)."""
        return {r[0] for r in self.db.execute(
            "SELECT channel FROM digests WHERE dept = ? AND day = ?", (dept, day.isoformat()))}

    def add_digest(self, dept: str, day: date, channels: Iterable[str], message: Message | None,
                   now: datetime) -> None:
        """Records the digest of ``day`` for ``dept`` on ``channels``, as a delivery due now;
        ``message`` None records that there was nothing to report."""
        with self._tx() as c:
            for channel in channels:
                delivery_id = None
                if message is not None:
                    c.execute("INSERT INTO batches (kind, dept, channel, opened, due, ref, message)"
                              " VALUES ('digest', ?, ?, ?, ?, ?, ?)",
                              (dept, channel, _ts(now), _ts(now), message.ref, message_json(message)))
                    c.execute("INSERT INTO deliveries (dept, channel, kind, batch_id, state, next_at, ref)"
                              " VALUES (?, ?, 'digest', ?, 'pending', ?, ?)",
                              (dept, channel, c.lastrowid, _ts(now), message.ref))
                    delivery_id = c.lastrowid
                c.execute("INSERT OR IGNORE INTO digests (dept, day, channel, delivery_id, created) VALUES (?, ?, ?, ?, ?)",
                          (dept, day.isoformat(), channel, delivery_id, _ts(now)))
                if c.rowcount == 0 and delivery_id is not None:
                    raise sqlite3.IntegrityError(f"digest {dept} {day} {channel} already recorded")

    # -- reading -------------------------------------------------------------------------

    def _notice(self, text: str) -> Notice:
        return Notice.from_json(json.loads(text), self.tz)

    def notice(self, notice_id: str) -> Notice | None:
        r = self.db.execute("SELECT json FROM notices WHERE id = ?", (notice_id,)).fetchone()
        return self._notice(r[0]) if r else None

    def notices(self, since: datetime | None = None, until: datetime | None = None, dept: str | None = None,
                *, include_silenced: bool = True) -> list[Notice]:
        """Stored notices with ``at`` in [since, until), addressed to ``dept`` if given,
        in order of ``at`` (then arrival)."""
        sql, args = "SELECT n.json FROM notices n", []
        if dept is not None:
            sql += " JOIN recipients r ON r.notice_id = n.id AND r.dept = ?"
            args.append(dept)
        where = []
        if since is not None:
            where.append("n.at >= ?")
            args.append(_ts(since))
        if until is not None:
            where.append("n.at < ?")
            args.append(_ts(until))
        if not include_silenced:
            where.append("n.silenced = 0")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [self._notice(r[0]) for r in self.db.execute(sql + " ORDER BY n.at, n.rowid", args)]

    def _matching(self, q: NoticeQuery) -> tuple[str, list[Any]]:
        """``FROM … WHERE …`` of the notices ``q`` asks for, and its arguments."""
        sql, args, where = "FROM notices n", [], []
        if q.ids is not None:
            sql += " JOIN json_each(?) j ON j.value = n.id"
            args.append(json.dumps(list(dict.fromkeys(q.ids))))
        if q.dept is not None:
            sql += " JOIN recipients r ON r.notice_id = n.id AND r.dept = ?"
            args.append(q.dept)
        for column, value in (("township", q.township), ("rule", q.rule), ("severity", q.severity)):
            if value is not None:
                where.append(f"n.{column} = ?")
                args.append(value)
        if q.since is not None:
            where.append("n.at >= ?")
            args.append(_ts(q.since))
        if q.until is not None:
            where.append("n.at < ?")
            args.append(_ts(q.until))
        if q.exclude:
            where.append("n.id NOT IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(list(q.exclude)))
        return sql + (" WHERE " + " AND ".join(where) if where else ""), args

    def notice_page(self, q: NoticeQuery, offset: int = 0, limit: int = 50, *,
                    total: int | None = None) -> tuple[int, list[Notice]]:
        """How many stored notices ``q`` matches (``total`` when given: not counted again),
        and ``limit`` of them from ``offset`` on (in ``q.order``)."""
        frm, args = self._matching(q)
        if total is None:
            total = self.db.execute(f"SELECT COUNT(*) {frm}", args).fetchone()[0]
        order = ORDER.get(q.order)
        if order is None or (q.order == "ids" and q.ids is None):
            raise ValueError(f"notice order {q.order!r} needs a known order (and ids to order by)")
        rows = self.db.execute(f"SELECT n.json {frm} ORDER BY {order} LIMIT ? OFFSET ?",
                               [*args, max(0, limit), max(0, offset)]).fetchall()
        return total, [self._notice(r[0]) for r in rows]

    def notice_counts(self, q: NoticeQuery) -> dict[str, int]:
        """How many stored notices ``q`` matches, by severity (those with none left out)."""
        frm, args = self._matching(q)
        return dict(self.db.execute(f"SELECT n.severity, COUNT(*) {frm} GROUP BY n.severity", args).fetchall())

    def notice_span(self) -> tuple[datetime, datetime] | None:
        """The earliest and the latest ``at`` of the stored notices (None: none stored)."""
        lo, hi = self.db.execute("SELECT MIN(at), MAX(at) FROM notices").fetchone()
        return None if lo is None else (self._dt(lo), self._dt(hi))  # type: ignore[return-value]

    def next_due(self) -> datetime | None:
        """When the earliest waiting delivery is due (None: nothing waits)."""
        t = self.db.execute("SELECT MIN(next_at) FROM deliveries WHERE state = 'pending'").fetchone()[0]
        return self._dt(t)

    def notices_of(self, rules: Sequence[str], township: str) -> list[Notice]:
        """The stored notices of ``rules`` in ``township``, in order of ``at``."""
        marks = ",".join("?" * len(rules))
        return [self._notice(r[0]) for r in self.db.execute(
            f"SELECT json FROM notices WHERE rule IN ({marks}) AND township = ? ORDER BY at, rowid",
            (*rules, township))]

    def silenced_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM notices WHERE silenced = 1")}

    def open_deadlines(self, dept: str, after: datetime) -> list[Notice]:
        """``dept``'s notices (not silenced) whose ``due`` is later than ``after``, soonest first."""
        return [self._notice(r[0]) for r in self.db.execute(
            "SELECT n.json FROM notices n JOIN recipients r ON r.notice_id = n.id AND r.dept = ?"
            " WHERE n.due > ? AND n.silenced = 0 ORDER BY n.due, n.rowid", (dept, _ts(after)))]

    def is_silenced(self, notice_id: str) -> bool:
        r = self.db.execute("SELECT silenced FROM notices WHERE id = ?", (notice_id,)).fetchone()
        return bool(r and r[0])

    def deliveries_of(self, notice_id: str) -> list[Delivery]:
        return [self._delivery(r) for r in self.db.execute(
            "SELECT * FROM deliveries WHERE notice_id = ? ORDER BY id", (notice_id,))]

    def deliveries(self, state: str | None = None, kind: str | None = None) -> list[Delivery]:
        sql, args = "SELECT * FROM deliveries WHERE 1", []
        if state is not None:
            sql += " AND state = ?"
            args.append(state)
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        return [self._delivery(r) for r in self.db.execute(sql + " ORDER BY id", args)]

    def state_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        counts.update({r[0]: r[1] for r in self.db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state")})
        return counts

    def _delivery(self, r: sqlite3.Row) -> Delivery:
        return Delivery(
            id=r["id"], notice_id=r["notice_id"], dept=r["dept"], channel=r["channel"], kind=r["kind"],
            state=r["state"], attempts=r["attempts"], next_at=self._dt(r["next_at"]),
            first_attempt_at=self._dt(r["first_attempt_at"]), last_error=r["last_error"], rule=r["rule"],
            township=r["township"], sent_at=self._dt(r["sent_at"]), ref=r["ref"], batch_id=r["batch_id"])

    # -- silences ------------------------------------------------------------------------

    def add_silence(self, rule: str | None, township: str | None, start: datetime, end: datetime,
                    comment: str = "", by: str = "", *, now: datetime | None = None) -> int:
        """Stores a run-time silence (checked by the caller, see :func:`silences.check`)."""
        if rule is None and township is None:
            raise ValueError("a silence names a rule, a township or both")
        if end <= start:
            raise ValueError("a silence ends after it starts")
        created = now or datetime.now(self.tz)
        with self._tx() as c:
            c.execute("INSERT INTO silences (rule, township, start_at, end_at, comment, by, created)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (rule, township, _ts(start), _ts(end), comment, by, _ts(created)))
            return c.lastrowid

    def silences(self, now: datetime) -> list[StoredSilence]:
        """Run-time silences that have not ended at ``now`` (active and future ones)."""
        return [self._silence(r) for r in self.db.execute(
            "SELECT * FROM silences WHERE end_at > ? ORDER BY start_at, id", (_ts(now),))]

    def expire_silence(self, silence_id: int, now: datetime | None = None) -> bool:
        """Ends a silence now (a future one never starts); False if it had already ended."""
        t = _ts(now or datetime.now(self.tz))
        with self._tx() as c:
            c.execute("UPDATE silences SET start_at = MIN(start_at, ?), end_at = ? WHERE id = ? AND end_at > ?",
                      (t, t, silence_id, t))
            return c.rowcount > 0

    def _stored_silences(self, c: Any) -> list[Silence]:
        """Every run-time silence, ended or not (:func:`muting` checks each one's interval)."""
        return [self._silence(r) for r in c.execute("SELECT * FROM silences ORDER BY id")]

    def _silences_at(self, c: Any, at: datetime) -> list[Silence]:
        return [self._silence(r) for r in c.execute(
            "SELECT * FROM silences WHERE start_at <= ? AND ? < end_at", (_ts(at), _ts(at)))]

    def every_silence(self) -> list[Silence]:
        """Configured and run-time silences, ended or not (:func:`silences.muting` checks each
        one's interval against a notice's ``at``): read once for many notices."""
        extra = self.settings.silences if self.settings is not None else ()
        return [*extra, *self._stored_silences(self.db)]

    def _silence(self, r: sqlite3.Row) -> StoredSilence:
        return StoredSilence(rule=r["rule"], township=r["township"], start=self._dt(r["start_at"]),
                             end=self._dt(r["end_at"]), comment=r["comment"], id=r["id"], by=r["by"],
                             created=self._dt(r["created"]))

