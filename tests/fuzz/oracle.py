"""The oracle: what a path did with an input, judged against what each row was built to be.

A path reports a :class:`Seen`: the ids it accepted (and, for the service, the ids its journal
holds), the ids it dropped as duplicates, and its rejects by where they point (line, or file
and line). :func:`judge` pairs them with the rows:

- a good row must be accepted (and be in the journal where there is one), else it is a wrong
  reject (a reject points at it) or lost (nothing does);
- a bad row must be rejected where it stands, else it is a wrong accept;
- a re-sent row must be dropped as a duplicate, not rejected and not accepted twice;
- rows of a file that cannot be read (``line`` None) must not be accepted, and some reject
  that no other row claims must stand for them; any other unclaimed reject is a wrong reject;
- a reject reason must be Chinese and, for a bad row, name its fault (``REASON_WORDS``);
- a crash is an exception out of the path, a 500 answer, or a reject the runtime's boundary
  wrote for an exception (``处理失败``).
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .events import REASON_WORDS
from .model import ACCEPT, DUPLICATE, Case, Row

KINDS = ("crash", "hang", "wrong_accept", "wrong_reject", "lost", "wrong_reason")
CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH = re.compile(r"(?<![\w“\"'])[A-Za-z]{3,}(?: [A-Za-z]{2,}){2,}")  # three English words in a row (outside （…）)
CRASH_REASON = "处理失败"
EXTRA_WORDS = {"header": "表头", "bool": "是/否", "cut": "未读取|无法读取|上限|损坏|不是有效|解压后|编码|为空",
               "file": "未读取|无法读取|上限|损坏|不是有效|解压后|编码|为空|表头|不支持|请求体|表单|不是合法|嵌套|太大|内容类型"}
FILE_LINE = ""


@dataclass
class Seen:
    accepted: Counter = field(default_factory=Counter)     # id -> times accepted
    duplicates: Counter | None = field(default_factory=Counter)  # None: the path does not tell
    rejects: list[tuple[str, str]] = field(default_factory=list)  # (where, reason)
    journal: Counter | None = None                          # id -> rows in the journal
    crashes: list[str] = field(default_factory=list)
    refused: str | None = None      # the whole input refused when it should have been read (why)
    halted: bool = False            # the path gave no answer per row (it crashed)


@dataclass(frozen=True)
class Failure:
    path: str
    kind: str
    label: str
    why: str
    detail: str

    def line(self) -> str:
        return f"{self.kind:<12} {self.path}:{self.label} [{self.why or '-'}] {self.detail}"[:600]


def where(line: object) -> str:
    """A reject's ``line`` as the rows carry it: text, file-level rejects as ``""``; a file name
    that is not UTF-8 as the store keeps it (its undecodable bytes written ``\\udcff``)."""
    return FILE_LINE if line in (None, "", 0, "0") else str(line).encode("utf-8", "backslashreplace").decode("utf-8")


def words_for(why: str) -> str | None:
    return REASON_WORDS.get(why) or EXTRA_WORDS.get(why)


def judge(case: Case, seen: Seen) -> list[Failure]:
    return _Judge(case, seen).run()


class _Judge:
    """One input's rows against what the path did, rule by rule (see the module's docstring)."""

    def __init__(self, case: Case, seen: Seen) -> None:
        self.case, self.seen = case, seen
        self.out: list[Failure] = []
        self.pool: dict[str, list[str]] = defaultdict(list)  # rejects by where they point, not yet claimed
        for at, reason in seen.rejects:
            self.pool[where(at)].append(reason)
        self.accepted = Counter(seen.accepted)                # acceptances not yet claimed

    def fail(self, kind: str, row: Row | None, detail: str) -> None:
        self.out.append(Failure(self.case.path, kind, self.case.label, row.why if row is not None else "", detail))

    def run(self) -> list[Failure]:
        for crash in self.seen.crashes:
            self.fail("crash", None, crash)
        if self.seen.halted:
            return self.out
        if self.seen.refused is not None:
            good = [r for r in self.case.rows if r.expect == ACCEPT]
            for row in good or [None]:  # type: ignore[list-item]
                self.fail("wrong_reject", row, f"{row.id if row else ''}: the input was refused: {self.seen.refused}")
            return self.out
        for row in self.case.rows:
            if row.line is not None:
                {ACCEPT: self.good, DUPLICATE: self.resent}.get(row.expect, self.bad)(row)
        self.unreadable([r for r in self.case.rows if r.line is None])
        for eid, n in self.accepted.items():
            if n > 0:
                self.fail("wrong_accept", None, f"accepted {eid} that no row expects accepted ({n}x)")
        self.reasons()
        return self.out

    def take(self, row: Row) -> str | None:
        reasons = self.pool.get(where(row.line) if row.line else "")
        return reasons.pop(0) if reasons else None

    def took(self, eid: str) -> bool:
        if self.accepted[eid] > 0:
            self.accepted[eid] -= 1
            return True
        return False

    def good(self, row: Row) -> None:
        if self.took(row.id):
            if self.seen.journal is not None and self.seen.journal[row.id] < 1:
                self.fail("lost", row, f"{row.id} answered accepted but not in the journal")
        elif (reason := self.take(row)) is not None:
            if not reason.startswith(CRASH_REASON):  # a crash, counted as one below
                self.fail("wrong_reject", row, f"{row.id} line {row.line}: {reason} | {_show(row)}")
        else:
            self.fail("lost", row, f"{row.id} line {row.line}: neither accepted nor rejected | {_show(row)}")

    def resent(self, row: Row) -> None:
        dropped = self.seen.duplicates
        if dropped is not None and dropped[row.id] > 0:
            dropped[row.id] -= 1
        elif (reason := self.take(row)) is not None:
            self.fail("wrong_reject", row, f"re-sent {row.id} line {row.line}: {reason}")
        elif self.took(row.id):
            self.fail("wrong_accept", row, f"re-sent {row.id} accepted twice")
        elif dropped is not None:
            self.fail("lost", row, f"re-sent {row.id} line {row.line}: neither duplicate nor rejected")

    def bad(self, row: Row) -> None:
        reason = self.take(row)
        if reason is None:
            self.took(row.id)
            self.fail("wrong_accept", row, f"{row.id} line {row.line} not rejected ({row.note}) | {_show(row)}")
            return
        words = words_for(row.why)
        if not reason.startswith(CRASH_REASON) and words and not re.search(words, reason):
            self.fail("wrong_reason", row, f"{row.id} [{row.note}] rejected for: {reason}")

    def unreadable(self, covered: list[Row]) -> None:
        """Rows no reader can reach: none accepted, and the rejects left over say why. Without
        such rows, a reject left over is one no row expects."""
        left = [(at, reason) for at, reasons in self.pool.items() for reason in reasons]
        for row in covered:
            if self.took(row.id):
                self.fail("wrong_accept", row, f"{row.id} accepted from a file that is {row.why} ({row.note})")
        if covered and not left:
            self.fail("wrong_accept", covered[0], f"no reject for {len(covered)} unreadable rows ({covered[0].note})")
        elif covered:
            words = words_for(covered[0].why)
            if words and not any(re.search(words, reason) for _, reason in left):
                self.fail("wrong_reason", covered[0], f"no reject says why ({covered[0].why}): {left[0][1]}")
        else:
            for at, reason in left:
                if not reason.startswith(CRASH_REASON):
                    self.fail("wrong_reject", None, f"unexpected reject at {at!r}: {reason}")

    def reasons(self) -> None:
        """Every reject: not an exception set aside, and in Chinese (English in （…） aside)."""
        for at, reason in self.seen.rejects:
            if reason.startswith(CRASH_REASON):
                self.fail("crash", None, f"boundary caught an exception at line {at!r}: {reason}")
            elif not CJK.search(reason) or ENGLISH.search(re.sub(r"（[^（）]*）", "", reason)):
                self.fail("wrong_reason", None, f"reason not in Chinese at {at!r}: {reason}")


def _show(row: Row) -> str:
    text = row.text if row.text is not None else row.obj
    return repr(text)[:300]
