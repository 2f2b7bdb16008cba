"""The office's reads of the stored notices and of the journal, on connections of their own.

The dashboard's list asks for filtered pages and counts of a year of notices. A runtime
answers them on a connection per thread (:class:`Reads`): the office runs its reads on a
thread of its own, so that a slow page never holds up the event loop that takes events
(SQLite lets go of the interpreter while it works; with WAL, readers and the writer never
wait for each other). And two things make those reads cheap (:class:`NoticeView`):

- a page is ordered on the sort keys alone (row ids and the order's columns) and only the
  JSON of its own rows is read — ordering the matching notices whole reads and carries the
  JSON of every one of them through the sort;
- the count panel is one query: by severity, how many notices match, how many of them some
  recipient signed for, how many were closed (:meth:`NoticeView.notice_tally`).

The view is the outbox's reader (:class:`~shian.notifiers.outbox.Outbox`, its filters and its
JSON of a notice) with these queries in place of its own; it writes nothing.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any, Sequence

from shian.notifiers.outbox import ORDER, NoticeQuery, Outbox
from shian.rules.notice import Notice

from .store import Store


class NoticeView(Outbox):
    """The stored notices, read on a connection of this view's own (any one thread at a time)."""

    def __init__(self, path: str | Path, tz: tzinfo) -> None:
        """A connection to the outbox file at ``path`` (not :class:`Outbox`'s: that one sets
        the file up, which is the sender's to do), usable from the thread that reads."""
        self.path, self.settings, self.tz = Path(path), None, tz
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0, check_same_thread=False)
        self.db.row_factory = sqlite3.Row

    def notice_page(self, q: NoticeQuery, offset: int = 0, limit: int = 50, *,
                    total: int | None = None) -> tuple[int, list[Notice]]:
        """How many stored notices ``q`` matches (``total`` when given: not counted again),
        and ``limit`` of them from ``offset`` on (in ``q.order``): the row ids ordered first,
        then the JSON of those rows only."""
        order = ORDER.get(q.order)
        if order is None or (q.order == "ids" and q.ids is None):
            raise ValueError(f"notice order {q.order!r} needs a known order (and ids to order by)")
        frm, args = self._matching(q)
        if total is None:
            total = sum(self.notice_counts(q).values())
        rowids = [r[0] for r in self.db.execute(f"SELECT n.rowid {frm} ORDER BY {order} LIMIT ? OFFSET ?",
                                                [*args, max(0, limit), max(0, offset)])]
        return total, self._by_rowid(rowids)

    def _by_rowid(self, rowids: Sequence[int]) -> list[Notice]:
        if not rowids:
            return []
        found = dict(self.db.execute(f"SELECT rowid, json FROM notices WHERE rowid IN ({','.join('?' * len(rowids))})",
                                     rowids).fetchall())
        return [self._notice(found[r]) for r in rowids]

    def notice_counts(self, q: NoticeQuery) -> dict[str, int]:
        """How many stored notices ``q`` matches, by severity (grouped: SQLite counts a join
        of ids this way fast, where a bare ``COUNT(*)`` may run it the slow way round)."""
        frm, args = self._matching(q)
        return dict(self.db.execute(f"SELECT n.severity, COUNT(*) {frm} GROUP BY n.severity", args).fetchall())

    def notice_tally(self, q: NoticeQuery, acked: Sequence[str], closed: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        """By severity, in one query: how many stored notices ``q`` matches, how many of them
        are among ``acked``, how many among ``closed``."""
        frm, args = self._matching(q)
        rows = self.db.execute(
            "SELECT n.severity, COUNT(*), COALESCE(SUM(n.id IN (SELECT value FROM json_each(?))), 0),"
            f" COALESCE(SUM(n.id IN (SELECT value FROM json_each(?))), 0) {frm} GROUP BY n.severity",
            [json.dumps(list(acked)), json.dumps(list(closed)), *args]).fetchall()
        return {severity: (every, signed, done) for severity, every, signed, done in rows}

    def close(self) -> None:
        self.db.close()


@dataclass
class Reads:
    """One thread's connections for the office's reads: the journal and the notices."""
    store: Store
    notices: NoticeView

    @classmethod
    def open(cls, store_path: Path, outbox_path: Path, tz: Any) -> "Reads":
        return cls(Store(store_path, tz), NoticeView(outbox_path, tz))

    def close(self) -> None:
        self.notices.close()
        self.store.close()
