"""Runs N inputs per path in worker processes, each input under a timeout, and tallies.

A worker (a spawned process, one path) builds its target once, then takes input numbers from
the parent and answers each with the failures the oracle found. The parent gives each input
``timeout`` seconds from when it is made (of the worker's CPU time, see :meth:`_Worker.hung`;
making a hostile input can take seconds itself and is not counted): a worker that does not
answer in time is killed (the input is a hang) and a fresh one takes the next inputs; a worker that dies (a crash of the interpreter, the memory
limit) is a crash of that input. Inputs are numbered, so the i-th input of a seed is the same
on every run and in every worker.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

from .known import known_reason
from .oracle import KINDS, Failure

MEMORY_LIMIT = 3 << 30  # bytes of address space per worker: a memory bomb fails, it does not swap
#: inputs per path of the fast size (``make test``; the hostile inputs that take seconds left out)
FAST_SIZES = {"jsonl": 200, "csv": 200, "xlsx": 120, "http": 150, "drop": 100, "config": 200}


@dataclass
class Tally:
    path: str
    tried: int = 0
    rows: int = 0
    counts: Counter = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    slowest: tuple[float, str] = (0.0, "")

    def add(self, failures: list[Failure]) -> None:
        for f in failures:
            self.counts[f.kind] += 1
        self.failures += failures

    @property
    def clean(self) -> bool:
        return not any(self.counts[k] for k in KINDS)


def _worker(path: str, seed: int, light: bool, conn: Connection) -> None:  # runs in the child
    import logging

    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass
    logging.disable(logging.CRITICAL)  # the boundaries log what they catch; the oracle reports it
    from .paths import TARGETS

    with tempfile.TemporaryDirectory(prefix=f"shian-fuzz-{path}-", dir=_scratch()) as tmp:
        target = TARGETS[path](Path(tmp))
        target.light = light
        conn.send(("ready", None))
        try:
            while True:
                index = conn.recv()
                if index is None:
                    break
                started = time.perf_counter()
                try:
                    case = target.case(seed, index)
                    conn.send(("label", case.label))  # the clock starts: making the input is not timed
                    started = time.perf_counter()
                    failures = target.check(case)
                    answer = (case.label, len(case.rows), failures)
                except Exception as e:  # the fuzz's own failure: reported, never hidden
                    answer = (f"#{index}", 0, [Failure(path, "crash", f"#{index}", "", "fuzz harness: "
                                                       + "".join(traceback.format_exception_only(e)).strip()[:300])])
                conn.send(("done", (index, time.perf_counter() - started, *answer)))
        finally:
            target.close()


def _scratch() -> str | None:
    """A RAM-backed folder when there is one (the service journal syncs every commit)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


class _Worker:
    def __init__(self, ctx: mp.context.BaseContext, path: str, seed: int, light: bool) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(path, seed, light, child), daemon=True)
        self.proc.start()
        child.close()
        self.index: int | None = None
        self.label = ""
        self.since = 0.0
        self.cpu_since: float | None = None
        if not self.conn.poll(120):
            raise RuntimeError(f"the {path} fuzz worker did not start")
        kind, _ = self.conn.recv()
        assert kind == "ready"

    def give(self, index: int) -> None:
        self.index, self.label, self.since = index, f"#{index}", time.perf_counter()
        self.cpu_since = self.cpu()
        self.conn.send(index)

    def made(self, label: str) -> None:
        """The worker has made its input (named ``label``): the input's time starts now."""
        self.label, self.since, self.cpu_since = label, time.perf_counter(), self.cpu()

    def cpu(self) -> float | None:
        """The worker's CPU seconds so far (Linux: /proc), or None where that is not known."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def hung(self, timeout: float) -> bool:
        """More than ``timeout`` seconds on one input: of CPU time where it can be measured (a
        machine shared with other work stretches the wall clock), and in any case more than
        six times that of wall-clock time (an input that waits for ever)."""
        wall = time.perf_counter() - self.since
        if wall <= timeout:
            return False
        now, then = self.cpu(), self.cpu_since
        return now is None or then is None or now - then > timeout or wall > 6 * timeout

    def stop(self) -> None:
        try:
            self.conn.send(None)
            self.proc.join(10)
        except (OSError, EOFError):
            pass
        self.kill()

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


def run_path(path: str, n: int, seed: int, *, jobs: int = 1, timeout: float = 10.0,
             light: bool = False) -> Tally:  # long: the scheduling loop
    """``n`` inputs of ``path`` (numbers 0..n-1) over ``jobs`` workers; ``light``: without the
    hostile inputs that take seconds."""
    ctx = mp.get_context("spawn")
    tally = Tally(path)
    started = time.perf_counter()
    todo = list(range(n))
    todo.reverse()
    workers = [_Worker(ctx, path, seed, light) for _ in range(max(1, min(jobs, n)))]
    try:
        for w in workers:
            if todo:
                w.give(todo.pop())
        while any(w.index is not None for w in workers):
            busy = [w for w in workers if w.index is not None]
            ready = wait([w.conn for w in busy], timeout=0.2)
            for w in busy:
                if w.conn in ready:
                    try:
                        kind, answer = w.conn.recv()
                    except (EOFError, OSError):
                        _lost_worker(tally, w, path, "the worker process died")
                        workers[workers.index(w)] = w = _Worker(ctx, path, seed, light)
                    else:
                        if kind == "label":
                            w.made(answer)
                            continue
                        index, seconds, label, rows, failures = answer
                        tally.tried += 1
                        tally.rows += rows
                        tally.add(failures)
                        tally.slowest = max(tally.slowest, (seconds, label))
                        w.index = None
                elif w.hung(timeout):
                    _lost_worker(tally, w, path, f"no answer within {timeout:g} s", hang=True)
                    workers[workers.index(w)] = w = _Worker(ctx, path, seed, light)
                if w.index is None and todo:
                    w.give(todo.pop())
    finally:
        for w in workers:
            w.stop()
    tally.seconds = time.perf_counter() - started
    return tally


def _lost_worker(tally: Tally, w: _Worker, path: str, what: str, *, hang: bool = False) -> None:
    w.kill()
    tally.tried += 1
    tally.add([Failure(path, "hang" if hang else "crash", w.label, "", f"input #{w.index}: {what}")])
    w.index = None


# -- the table ------------------------------------------------------------------------------

COLUMNS = ("crash", "hang", "wrong_accept", "wrong_reject", "lost", "wrong_reason")
HEADERS = ("path", "tried", "rows", "crashes", "hangs", "wrong accepts", "wrong rejects", "good rows lost",
           "wrong reasons", "seconds", "slowest input")


def table(tallies: list[Tally]) -> str:
    lines = [HEADERS]
    for t in tallies:
        lines.append((t.path, str(t.tried), str(t.rows), *(str(t.counts[k]) for k in COLUMNS), f"{t.seconds:.1f}",
                      f"{t.slowest[0]:.2f}s {t.slowest[1]}"))
    widths = [max(len(row[i]) for row in lines) for i in range(len(HEADERS))]
    out = ["  ".join(cell.ljust(w) if i in (0, 10) else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
           for row in lines]
    return "\n".join(out)


def details(tallies: list[Tally], per_kind: int = 8) -> str:
    """The first failures of each path and kind, the known ones marked with their reason."""
    out = []
    for t in tallies:
        shown: Counter = Counter()
        for f in t.failures:
            if shown[f.kind] >= per_kind:
                continue
            shown[f.kind] += 1
            reason = known_reason(f)
            out.append(f.line() + (f"  [known: {reason}]" if reason else ""))
    return "\n".join(out)
