"""``make bench``: the replay, delivery, Kafka and service benchmarks in turn, one table.

Each benchmark runs as its own process with ``--json`` (and ``--quick`` when given here) and
writes its target rows (:class:`bench.targets.Target`); this script prints them as one table —
measure, result, floor, ratio, target, met — headed by the machine it ran on, and writes the
same table as Markdown for the README (``bench/out/bench.md``) and as JSON
(``bench/out/bench.json``). A benchmark that fails or writes no rows is a row saying so; the
exit status is 1 then, and 0 otherwise (a missed target is reported, not an error).

    python bench/run.py [--quick] [--only replay,delivery,kafka,service]
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(DIR))

from targets import Target, read_rows, table, write_rows  # noqa: E402


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    args: tuple[str, ...] = ()


BENCHES = (
    Bench("replay", "replay_bench.py"),
    Bench("delivery", "notify_bench.py"),
    Bench("kafka", "kafka_bench.py"),
    Bench("service", "load_test.py"),
)


def machine() -> str:
    """The machine in one line: CPU model and count, memory, OS, Python."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    cpus = os.cpu_count() or 0
    return (f"{cpus} cores{' (' + model + ')' if model else ''}{mem}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def run_bench(b: Bench, quick: bool, out: Path) -> tuple[list[Target], float]:
    """Runs one benchmark; its rows, or one row saying it failed."""
    path = out / f"bench-{b.name}.json"
    path.unlink(missing_ok=True)
    cmd = [sys.executable, str(DIR / b.script), "--json", str(path), *b.args, *(("--quick",) if quick else ())]
    print(f"== {b.name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.monotonic()
    rc = subprocess.call(cmd, cwd=DIR.parent)
    took = time.monotonic() - t0
    if rc == 0 and path.exists():
        return read_rows(path), took
    return [Target(b.name, "benchmark run", f"failed (exit {rc})", met=False)], took


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="each benchmark's quick size (a few minutes each)")
    ap.add_argument("--only", help="comma-separated benchmarks: " + ",".join(b.name for b in BENCHES))
    ap.add_argument("--out", type=Path, default=DIR / "out")
    args = ap.parse_args(argv)
    chosen = [b for b in BENCHES if not args.only or b.name in args.only.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[Target] = []
    took: dict[str, float] = {}
    failed = False
    for b in chosen:
        got, took[b.name] = run_bench(b, args.quick, args.out)
        failed |= any(r.measure == "benchmark run" for r in got)
        rows += got
    head = [f"machine: {machine()}", f"size: {'--quick' if args.quick else 'full'}; "
            + ", ".join(f"{n} {s / 60:.1f} min" for n, s in took.items())]
    print("\n" + "\n".join([*head, "", *table(rows)]))
    write_rows(args.out / "bench.json", rows)
    (args.out / "bench.md").write_text("\n".join([*head, "", *table(rows, markdown=True)]) + "\n", encoding="utf-8")
    missed = [r for r in rows if r.met is False]
    print(f"\ntargets met: {sum(r.met is True for r in rows)}, missed: {len(missed)}; table: {args.out / 'bench.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
