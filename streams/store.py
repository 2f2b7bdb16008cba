"""The embedded service's event journal (SQLite): every accepted event, in the order it was
run, with the clock it was run at; the rejects; and the latest engine snapshot.

Why a journal: an event is acknowledged to its sender only after its row is committed, so an
accepted event is never lost; after a crash the engine is the last snapshot plus the journal
rows after it, run again at their recorded clocks — the same notices with the same ids (the
outbox ignores those it has), then the deadlines missed while it was down. It is also the
history the dashboard, the monthly report and the ledger read.

Rejects are kept once per input: a line rejected again (a restart's backfill reading the same
file, the same bad file dropped twice) is recognised by the hash of its source, line and text
(:func:`reject_digest`) and not added again; the first rejection's time and reason stay.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

from shian.rules.records import Reject, storable
from shian.rules.timeutil import fmt, parse_time

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    township TEXT NOT NULL,
    time TEXT NOT NULL,        -- the event's own time (contract format)
    mode TEXT NOT NULL,        -- 'event' (backfill, event time) or 'live' (wall clock)
    clock TEXT NOT NULL,       -- the clock it was run at
    source TEXT NOT NULL,
    json TEXT NOT NULL         -- the event as accepted (JSON object)
);
CREATE INDEX IF NOT EXISTS events_type ON events(type, township);
CREATE INDEX IF NOT EXISTS events_type_seq ON events(type, seq);  -- a reader's new acks (events_after)
CREATE TABLE IF NOT EXISTS rejects (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    source TEXT NOT NULL,
    line TEXT,
    raw TEXT NOT NULL,
    reason TEXT NOT NULL,
    digest TEXT,               -- the input rejected: hash of (source, line, raw) — kept once
    ts REAL                    -- ``at`` as Unix time (the since filter)
);
CREATE TABLE IF NOT EXISTS probe (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    at TEXT NOT NULL           -- the last write test (health: can the journal be written?)
);
CREATE TABLE IF NOT EXISTS snapshot (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    seq INTEGER NOT NULL,      -- the last journal row the snapshot covers
    blob BLOB NOT NULL
);
"""


REJECT_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS rejects_digest ON rejects(digest)"
MAX_RAW = 1 << 20  # characters of a reject's input kept (a longer line is cut, saying so)


def _cut(raw: str) -> str:
    if len(raw) <= MAX_RAW:
        return raw
    return f"{raw[:MAX_RAW]}…（共 {len(raw):,} 个字符，只保留前 {MAX_RAW:,} 个）"


def reject_digest(source: str, line: str | None, raw: str, reason: str) -> str:
    """What makes two rejects the same input: source, line and text as stored; a reject of a
    whole file (no text) by its reason instead, so that another fault of the same file counts."""
    what = raw if raw else f"\0{reason}"
    return hashlib.sha256(json.dumps([source, line, what], ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Row:
    seq: int
    mode: str
    clock: datetime
    obj: dict[str, Any]


class Store:
    def __init__(self, path: str | Path, tz: Any) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tz = tz
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL with WAL: a COMMIT is in the WAL file (the OS's cache) before the sender is
        # answered, so a committed event survives the process being killed at any point; only a
        # power loss or OS crash can lose the last commits (FULL would fsync on each: ~ms per line).
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._upgrade_rejects()
        self.db.execute(REJECT_INDEX)

    def _upgrade_rejects(self) -> None:
        """A journal written before rejects were kept once: each old reject gets its digest and
        time, and a repeated one (every restart's backfill added its bad lines again) is dropped."""
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(rejects)")}
        if "digest" in columns:
            return
        with self.transaction() as c:
            c.execute("ALTER TABLE rejects ADD COLUMN digest TEXT")
            c.execute("ALTER TABLE rejects ADD COLUMN ts REAL")
            seen: set[str] = set()
            for seq, at, source, line, raw, reason in c.execute(
                    "SELECT seq, at, source, line, raw, reason FROM rejects ORDER BY seq").fetchall():
                digest = reject_digest(source, line, raw, reason)
                if digest in seen:
                    c.execute("DELETE FROM rejects WHERE seq = ?", (seq,))
                    continue
                seen.add(digest)
                c.execute("UPDATE rejects SET digest = ?, ts = ? WHERE seq = ?",
                          (digest, parse_time(at, self.tz).timestamp(), seq))

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction. A failed write or COMMIT (disk full, I/O error) is rolled
        back before the error goes on, so the next transaction starts clean."""
        c = self.db.cursor()
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
            c.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                try:
                    c.execute("ROLLBACK")
                except sqlite3.Error:  # SQLite may have rolled back itself; the first error is the one to raise
                    pass
            raise

    def append(self, c: sqlite3.Cursor, obj: dict[str, Any], ev: Any, mode: str, clock: datetime,
               source: str) -> int:
        c.execute("INSERT INTO events (id, type, township, time, mode, clock, source, json)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  (ev.id, ev.type, ev.township, fmt(ev.time), mode, fmt(clock), storable(source),
                   json.dumps(obj, ensure_ascii=False)))
        return c.lastrowid  # type: ignore[return-value]

    def add_reject(self, reject: Reject, at: datetime) -> bool:
        """Keeps ``reject``, refused at ``at``; False when the same input was kept before."""
        source, raw, reason = storable(reject.source), storable(_cut(reject.raw)), storable(reject.reason)
        line = None if reject.line is None else storable(str(reject.line))
        with self.transaction() as c:
            c.execute("INSERT OR IGNORE INTO rejects (at, source, line, raw, reason, digest, ts)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (fmt(at), source, line, raw, reason, reject_digest(source, line, raw, reason), at.timestamp()))
            return c.rowcount == 1

    def probe(self, at: datetime) -> None:
        """A small write, committed: raises (sqlite3.Error, OSError) while the journal cannot be
        written (disk full, read-only, locked)."""
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO probe (one, at) VALUES (1, ?)", (fmt(at),))

    def after(self, seq: int) -> Iterator[Row]:
        """The journal rows after ``seq``, in order (to run them again after a restart)."""
        for s, mode, clock, text in self.db.execute(
                "SELECT seq, mode, clock, json FROM events WHERE seq > ? ORDER BY seq", (seq,)):
            yield Row(s, mode, parse_time(clock, self.tz), json.loads(text))

    def has(self, ev: Any) -> bool:
        """Whether the journal holds this event (same type, township and id)."""
        return self.db.execute("SELECT 1 FROM events WHERE type = ? AND township = ? AND id = ?",
                               (ev.type, ev.township, ev.id)).fetchone() is not None

    def last_seq(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]

    def save_snapshot(self, seq: int, blob: bytes) -> None:
        """The engine's state, written through SQLite's incremental blob I/O: bound as a
        parameter, a copy of it would stay with the cached statement until its next run (the
        size of the whole state, held for nothing between two snapshots)."""
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO snapshot (one, seq, blob) VALUES (1, ?, zeroblob(?))", (seq, len(blob)))
            if blob:
                with self.db.blobopen("snapshot", "blob", 1) as out:
                    out.write(blob)

    def load_snapshot(self) -> tuple[int, bytes] | None:
        r = self.db.execute("SELECT seq, blob FROM snapshot WHERE one = 1").fetchone()
        return (r[0], bytes(r[1])) if r else None

    # -- reading, for pages, reports and the API -------------------------------------------

    def events(self, types: Iterable[str] | None = None, township: str | None = None) -> list[dict[str, Any]]:
        """Accepted events (JSON objects as sent), in journal order."""
        sql, args = "SELECT json FROM events WHERE 1", []
        if types is not None:
            types = list(types)
            sql += f" AND type IN ({','.join('?' * len(types))})"
            args += types
        if township is not None:
            sql += " AND township = ?"
            args.append(township)
        return [json.loads(r[0]) for r in self.db.execute(sql + " ORDER BY seq", args)]

    def events_after(self, seq: int, types: Iterable[str]) -> tuple[int, list[dict[str, Any]]]:
        """The events of these types after journal row ``seq``, and the last row read: the
        journal only grows, so a reader can keep what it has and ask for the rest."""
        types = list(types)
        rows = self.db.execute(f"SELECT seq, json FROM events WHERE seq > ? AND type IN ({','.join('?' * len(types))})"
                               " ORDER BY seq", (seq, *types)).fetchall()
        last = max(seq, self.last_seq()) if not rows else max(rows[-1][0], self.last_seq())
        return last, [json.loads(r[1]) for r in rows]

    def rejects(self, limit: int = 100, *, source: str | None = None, since: datetime | None = None,
                offset: int = 0) -> list[Reject]:
        """The latest rejects, newest first (``line`` as text, as stored): those whose source
        contains ``source``, refused at or after ``since``; ``limit`` of them from ``offset``."""
        where, args = _reject_filter(source, since)
        rows = self.db.execute(f"SELECT at, source, line, raw, reason FROM rejects{where} ORDER BY seq DESC"
                               " LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
        return [Reject(s, ln, r, why, parse_time(a, self.tz)) for a, s, ln, r, why in rows]

    def reject_count(self, *, source: str | None = None, since: datetime | None = None) -> int:
        """How many rejects :meth:`rejects` would find without a limit."""
        where, args = _reject_filter(source, since)
        return self.db.execute(f"SELECT COUNT(*) FROM rejects{where}", args).fetchone()[0]

    def counts(self) -> dict[str, Any]:
        by_type = dict(self.db.execute("SELECT type, COUNT(*) FROM events GROUP BY type").fetchall())
        rejected = self.db.execute("SELECT COUNT(*) FROM rejects").fetchone()[0]
        return {"events": sum(by_type.values()), "by_type": by_type, "rejects": rejected}


def _reject_filter(source: str | None, since: datetime | None) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause of a rejects query: source containing ``source`` (as text, no
    wildcards), refused at or after ``since``."""
    terms, args = [], []
    if source:
        terms.append("instr(source, ?) > 0")
        args.append(storable(source))
    if since is not None:
        terms.append("ts >= ?")
        args.append(since.timestamp())
    return (" WHERE " + " AND ".join(terms) if terms else ""), tuple(args)
