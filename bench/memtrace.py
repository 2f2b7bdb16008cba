#!/usr/bin/env python3
"""Runs a ``shian`` command in this process under :mod:`tracemalloc` and writes, every
``--every`` seconds, what the Python heap grew by since the first snapshot (taken after
``--after`` seconds, once the service has warmed up): the lines of code whose live blocks grew
most (with ``--frames`` above 1, their tracebacks too); or, with ``--frames 0`` (no
tracemalloc, full speed), the state of Python's small-object allocator (its arenas against
the bytes of live blocks: how much of what it holds is free space it cannot give back), of the
C library's heap and SQLite's memory beside it, and
what the process leaves as garbage cycles over one interval, by type (``DIR/cycles.txt``).
For finding what a long-running ``shian run`` keeps.

    python bench/memtrace.py --out DIR [--after 60] [--every 60] [--top 25] [--frames 1] -- run --config …

``bench/load_test.py --trace-memory DIR`` starts its server this way. Each report is
``DIR/memtrace-<seconds>.txt``; tracemalloc slows the process (latencies are not comparable).
"""
from __future__ import annotations

import argparse
import gc
import linecache
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

PYMALLOC = ("arenas allocated current", "bytes in allocated blocks", "bytes in available blocks",
            "bytes in unused pools", "Total")


def _filters() -> list[tracemalloc.Filter]:
    return [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, linecache.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]


def pymalloc_stats() -> dict[str, int]:
    """Python's small-object allocator in numbers (``sys._debugmallocstats``, which writes to
    the C-level stderr: caught in a file meanwhile): its arenas, the bytes of live blocks, of
    free blocks in used pools, and the total it holds from the system."""
    import tempfile

    with tempfile.TemporaryFile(mode="w+") as f:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read()
    out = {}
    for line in text.splitlines():
        name, _, value = line.lstrip("# ").partition("=")
        if name.strip() in PYMALLOC and name.strip() not in out:   # "Total" comes again for other parts
            out[name.strip()] = int(value.strip().replace(",", ""))
    return out


def c_heap() -> dict[str, int]:
    """Beside pymalloc: the C library's heap (glibc's ``mallinfo2``, every arena: bytes taken
    from the system, in use, free inside), SQLite's own memory in use, and the process's RSS
    (each 0 where the platform has no such call)."""
    import ctypes
    import ctypes.util

    out = {"RSS": int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")} \
        if os.path.exists("/proc/self/statm") else {}
    try:
        class MallInfo2(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = MallInfo2
        m = libc.mallinfo2()
        out.update({"malloc heap": m.arena, "malloc mmapped": m.hblkhd, "malloc in use": m.uordblks,
                    "malloc free": m.fordblks})
    except (OSError, AttributeError):
        pass
    name = ctypes.util.find_library("sqlite3")
    if name:
        lib = ctypes.CDLL(name)
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        out["sqlite in use"] = lib.sqlite3_memory_used()
    return out


def report(first: tracemalloc.Snapshot, now: tracemalloc.Snapshot, elapsed: float, top: int,
           frames: int) -> str:
    """The growth since ``first``: by line (the top ``top``), then (with more than one frame
    kept) the largest by traceback."""
    now, first = now.filter_traces(_filters()), first.filter_traces(_filters())
    total_now = sum(s.size for s in now.statistics("filename"))
    total_first = sum(s.size for s in first.statistics("filename"))
    out = [f"after {elapsed:.0f} s: traced {total_now / 1e6:.1f} MB, grown {(total_now - total_first) / 1e6:+.1f} MB "
           f"since the first snapshot", "", "by line:"]
    for s in now.compare_to(first, "lineno")[:top]:
        out.append(f"  {s.size_diff / 1e3:+10.1f} kB {s.count_diff:+8d} blocks  {s.traceback[0]}")
    if frames > 1:
        out += ["", "by traceback:"]
        for s in now.compare_to(first, "traceback")[:max(5, top // 3)]:
            out.append(f"  {s.size_diff / 1e3:+10.1f} kB {s.count_diff:+8d} blocks")
            out += [f"      {line}" for line in s.traceback.format(limit=frames, most_recent_first=True)]
    return "\n".join(out) + "\n"


def watch(out: Path, after: float, every: float, top: int, frames: int) -> None:
    """Every ``every`` seconds after ``after``: the heap's growth (with ``frames``), or else
    where pymalloc stands (tracemalloc replaces its hooks, so not both)."""
    t0 = time.monotonic()
    time.sleep(after)
    gc.collect()
    first = tracemalloc.take_snapshot() if frames else None
    stats = out / "pymalloc.txt"
    census = None
    if first is None:
        cycles(out / "cycles.txt", every)
        census = by_type()
    while True:
        elapsed = time.monotonic() - t0
        if first is None:
            with open(stats, "a", encoding="utf-8") as f:
                f.write(f"{elapsed:.0f} s: " + ", ".join(f"{k} {v:,}" for k, v in pymalloc_stats().items())
                        + f", frozen objects {gc.get_freeze_count():,}, "
                        + ", ".join(f"{k} {v:,}" for k, v in c_heap().items()) + "\n")
            (out / f"types-{elapsed:05.0f}.txt").write_text(type_growth(census, by_type()), encoding="utf-8")
        time.sleep(every)
        gc.collect()
        if first is not None:
            now = tracemalloc.take_snapshot()
            elapsed = time.monotonic() - t0
            (out / f"memtrace-{elapsed:05.0f}.txt").write_text(report(first, now, elapsed, top, frames),
                                                               encoding="utf-8")
            now.dump(str(out / f"snapshot-{elapsed:05.0f}.tracemalloc"))


def by_type() -> "collections.Counter[str]":
    """The objects the collector tracks, frozen ones too (``gc.freeze`` hides them from
    ``gc.get_objects``: unfrozen for the count, frozen again after), counted by type."""
    import collections

    gc.unfreeze()
    try:
        objects = gc.get_objects()
    finally:
        gc.freeze()
    counts = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)
    del objects
    return counts


def type_growth(first: "collections.Counter[str]", now: "collections.Counter[str]", top: int = 30) -> str:
    """Which types of tracked objects grew most in number since ``first``."""
    grown = sorted(((now[k] - first[k], k) for k in now.keys() | first.keys()), reverse=True)
    lines = [f"tracked objects: {sum(now.values()):,} ({sum(now.values()) - sum(first.values()):+,} since the first count)"]
    lines += [f"  {d:+9,d}  {now[k]:9,d}  {k}" for d, k in grown[:top] if d]
    return "\n".join(lines) + "\n"


def cycles(path: Path, seconds: float) -> None:
    """What the process leaves as garbage cycles (only the cyclic collector frees them) over
    ``seconds``: kept aside meanwhile (``gc.DEBUG_SAVEALL``), then counted by type."""
    import collections

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        time.sleep(seconds)
        gc.collect()
        kinds = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
        size = sum(sys.getsizeof(o) for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    lines = [f"garbage cycles left in {seconds:g} s: {sum(kinds.values()):,} objects, {size / 1e6:.1f} MB (shallow)"]
    lines += [f"  {n:8,d}  {kind}" for kind, n in kinds.most_common(30)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--after", type=float, default=60.0, help="seconds before the first snapshot")
    ap.add_argument("--every", type=float, default=60.0, help="seconds between two reports")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--frames", type=int, default=1,
                    help="frames kept per allocation (more: tracebacks in the report, and a much slower process); "
                         "0: no tracemalloc, pymalloc's numbers only (DIR/pymalloc.txt), at full speed")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then the shian command and its arguments")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    args.out.mkdir(parents=True, exist_ok=True)
    if args.frames:
        tracemalloc.start(args.frames)
    threading.Thread(target=watch, args=(args.out, args.after, args.every, args.top, args.frames), daemon=True).start()
    from shian.cli import main as shian_main

    sys.argv = ["shian", *command]
    code = shian_main(command)
    os._exit(code or 0)   # the watcher thread is a daemon: do not wait for it


if __name__ == "__main__":
    raise SystemExit(main())
