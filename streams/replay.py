"""``shian replay``: files in, notices and rejects out, on event time.

A thin adapter: it reads lines and rows, hands them to the validator and the engine, and
writes what comes out. No rule logic lives here.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Callable

from shian.notifiers.routing import recipients
from shian.rules.config import Config
from shian.rules.engine import Engine, Status
from shian.rules.events import Rejected, Validator
from shian.rules.notice import Notice

TABULAR_SUFFIXES = (".csv", ".xlsx", ".xlsm")


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


def _reject_record(source: str, line: Any, raw: str, reason: str) -> dict[str, Any]:
    return {"source": source, "line": line, "raw": raw, "reason": reason}


class Replay:
    """Runs the engine over files; ``on_notice`` and ``on_reject`` receive what comes out."""

    def __init__(
        self,
        config: Config,
        on_notice: Callable[[Notice], None],
        on_reject: Callable[[dict[str, Any]], None],
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
        for path in paths:
            if Path(path).suffix.lower() in TABULAR_SUFFIXES:
                self._tabular(path)
            else:
                self._jsonl(path)
        self.engine.finish(self.until)
        s, tally = self.summary, self._tally
        s.accepted, s.duplicates, s.skipped = tally[Status.ACCEPTED], tally[Status.DUPLICATE], tally[Status.SKIPPED]
        return self.summary

    def _reject(self, source: str, line: Any, raw: str, reason: str) -> None:
        self.summary.rejected += 1
        self._on_reject(_reject_record(source, line, raw, reason))

    def _admit(self, ev: Any) -> None:
        self._tally[self.engine.admit(ev, self.until)] += 1

    def _jsonl(self, path: str) -> None:
        from_json, admit, until, tally = self.validator.from_json, self.engine.admit, self.until, self._tally
        progress = self._progress
        done = read = 0
        with open(path, "rb") as f:
            for number, line in enumerate(f, 1):
                done += len(line)
                if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]
                if not line or line.isspace():
                    continue
                read += 1
                try:
                    tally[admit(from_json(line), until)] += 1
                except Rejected as r:
                    self._reject(path, number, line.decode("utf-8", "replace").rstrip("\r\n"), r.reason)
                if progress is not None and not number & 0xFFF:
                    progress(done)
                    done = 0
        self.summary.read += read
        if read == 0:
            self.summary.read += 1
            self._reject(path, 0, "", "文件为空：没有任何事件行")
        if progress is not None:
            progress(done)

    def _tabular(self, path: str) -> None:
        from .sources import read_tabular

        for rec in read_tabular(path):
            self.summary.read += 1
            try:
                if rec.obj is None:
                    raise Rejected(rec.reason or "无法读取该行")
                self._admit(self.validator.from_object(rec.obj))
            except Rejected as r:
                self._reject(rec.source, rec.line, rec.raw, r.reason)
        if self._progress is not None:
            self._progress(Path(path).stat().st_size)


def jsonl_writer(stream: IO[str]) -> Callable[[Any], None]:
    def write(obj: Any) -> None:
        stream.write(json.dumps(obj, ensure_ascii=False) + "\n")

    return write
