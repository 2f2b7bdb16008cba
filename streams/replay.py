"""``shian replay``: files in, notices and rejects out, on event time.

A thin adapter: it reads lines and rows, hands them to the validator and the engine, and
writes what comes out. No rule logic lives here.
"""
from __future__ import annotations

import gc
import json
import logging
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from shian.notifiers.routing import recipients
from shian.rules.config import Config
from shian.rules.engine import Engine, Status
from shian.rules.events import Rejected, Validator
from shian.rules.notice import Notice
from shian.rules.records import Record, Reject

from .sources import empty_file, is_tabular, jsonl_lines, read_path

log = logging.getLogger("shian.replay")

PROGRESS_EVERY = 0x1000  # records between two progress reports


@dataclass
class Summary:
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    notices: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        out = [
            f"读入 {self.read} 条，接受 {self.accepted}，重复 {self.duplicates}，拒收 {self.rejected}，"
            f"超出 --until 未处理 {self.skipped}",
            f"通知 {sum(self.notices.values())} 条" + ("：" if self.notices else ""),
        ]
        out += [f"  {rule:<34} {n}" for rule, n in sorted(self.notices.items())]
        return out


class Replay:
    """Runs the engine over files; ``on_notice`` and ``on_reject`` receive what comes out."""

    def __init__(
        self,
        config: Config,
        on_notice: Callable[[Notice], None],
        on_reject: Callable[[Reject], None],
        until: datetime | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.summary = Summary()
        self._tally = dict.fromkeys((Status.ACCEPTED, Status.DUPLICATE, Status.SKIPPED), 0)
        self.until = until
        self._on_reject = on_reject
        self._progress = progress
        self.validator = Validator(config.known())

        def sink(n: Notice) -> None:
            self.summary.notices[n.rule] += 1
            on_notice(n)

        self.engine = Engine(config, recipients, sink)

    def run(self, paths: list[str]) -> Summary:
        with few_full_collections():
            for path in paths:
                self._file(path)
            self.engine.finish(self.until)
        s, tally = self.summary, self._tally
        s.accepted, s.duplicates, s.skipped = tally[Status.ACCEPTED], tally[Status.DUPLICATE], tally[Status.SKIPPED]
        return self.summary

    def _file(self, path: str) -> None:
        """Every record of one file through the validator and the engine."""
        if is_tabular(path):
            reported = self._records(read_path(path))
        else:
            with open(path, "rb") as f:
                read, reported = self._lines(str(path), f)
            if not read:
                self._records(iter((empty_file(str(path)),)))
        if self._progress is not None:
            self._progress(max(0, Path(path).stat().st_size - reported))

    def _lines(self, source: str, f: IO[bytes]) -> tuple[int, int]:
        """The lines of a JSON Lines file (the hot loop: a :class:`Record` only for a line
        refused); returns the lines read and the bytes reported to ``progress``."""
        from_json, admit, until, tally = self.validator.from_json, self.engine.admit, self.until, self._tally
        progress = self._progress
        read = reported = done = 0
        for number, line in jsonl_lines(f):
            read += 1
            try:
                tally[admit(from_json(line), until)] += 1
            except Rejected as r:
                self._reject(Record(source, number, line), r.reason)
            except Exception as e:  # the runtime's boundary: a rule that fails sets its line aside
                self._failed(Record(source, number, line), e)
            if progress is not None:
                done += len(line)
                if not read % PROGRESS_EVERY:
                    progress(done)
                    reported, done = reported + done, 0
        self.summary.read += read
        return read, reported

    def _records(self, records: Iterator[Record]) -> int:
        """Records read already (a spreadsheet's events and refused rows, or an empty file's
        reject); returns the bytes reported to ``progress``."""
        from_json, from_object = self.validator.from_json, self.validator.from_object
        admit, until, tally, progress = self.engine.admit, self.until, self._tally, self._progress
        read = reported = done = 0
        for rec in records:
            read += 1
            try:
                if rec.reason is not None:
                    raise Rejected(rec.reason)
                tally[admit(from_json(rec.raw) if rec.obj is None else from_object(rec.obj), until)] += 1
            except Rejected as r:
                self._reject(rec, r.reason)
            except Exception as e:  # the runtime's boundary: a rule that fails sets its line aside
                self._failed(rec, e)
            if progress is not None:
                done += len(rec.raw)
                if not read % PROGRESS_EVERY:
                    progress(done)
                    reported, done = reported + done, 0
        self.summary.read += read
        return reported

    def _failed(self, rec: Record, e: Exception) -> None:
        log.exception("%s line %s set aside: a rule failed on it", rec.source, rec.line)
        self._reject(rec, f"处理失败（{type(e).__name__}: {e}）：此行未被接受")

    def _reject(self, rec: Record, reason: str) -> None:
        self.summary.rejected += 1
        self._on_reject(rec.reject(reason))


#: young collections between two full ones while a replay runs (the interpreter's default is 10)
FULL_COLLECTION_EVERY = 1000


@contextmanager
def few_full_collections() -> Iterator[None]:
    """While a replay runs, the cyclic garbage collector's full collections (which walk every
    object of the engine's state, and the state only grows over a replay) are put off; young
    ones still collect the few cycles a line leaves (a refused line's exception and frames)."""
    young, middle, full = gc.get_threshold()
    gc.set_threshold(young, middle, max(full, FULL_COLLECTION_EVERY))
    try:
        yield
    finally:
        gc.set_threshold(young, middle, full)


def jsonl_writer(stream: IO[str]) -> Callable[[Any], None]:
    """One JSON line per object, exactly as ``json.dumps(obj, ensure_ascii=False)`` writes it
    (one encoder for the whole stream instead of one per line)."""
    encode, put = json.JSONEncoder(ensure_ascii=False).encode, stream.write

    def write(obj: Any) -> None:
        put(encode(obj) + "\n")

    return write


def notice_writer(stream: IO[str]) -> Callable[[Notice], None]:
    """One §4 JSON line per notice, the same text as ``jsonl_writer`` writes of ``to_json()``."""
    put = stream.write

    def write(notice: Notice) -> None:
        put(notice.to_json_line() + "\n")

    return write
