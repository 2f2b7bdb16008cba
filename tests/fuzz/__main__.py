"""``python -m tests.fuzz``: N inputs per path, a table of what went wrong, exit 1 if anything did.

    python -m tests.fuzz --n 10000 --jobs 2            # what ``make fuzz`` runs
    python -m tests.fuzz --fast                         # the size of tests/test_fuzz_fast.py
    python -m tests.fuzz --n 200 --paths csv,xlsx      # a few paths, fewer inputs
    python -m tests.fuzz --show 5 --paths http --only 17   # one input, its failures in full
"""
from __future__ import annotations

import argparse
import sys
import time

from .paths import TARGETS
from .runner import FAST_SIZES, details, run_path, table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="inputs per path (the hostile ones first)")
    p.add_argument("--seed", type=int, default=20260501)
    p.add_argument("--jobs", type=int, default=1, help="worker processes per path")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds one input may take")
    p.add_argument("--paths", default=",".join(TARGETS), help=f"comma-separated, of {', '.join(TARGETS)}")
    p.add_argument("--show", type=int, default=8, help="failures listed per path and kind")
    p.add_argument("--only", type=int, help="run this one input number only, in this process")
    p.add_argument("--fast", action="store_true", help="the fast test's sizes, without the hostile inputs that take seconds")
    args = p.parse_args(argv)
    paths = [x.strip() for x in args.paths.split(",") if x.strip()]
    unknown = [x for x in paths if x not in TARGETS]
    if unknown:
        p.error(f"unknown path(s): {', '.join(unknown)}")
    if args.only is not None:
        return _one(paths, args.seed, args.only)
    started = time.perf_counter()
    tallies = []
    for path in paths:
        n = FAST_SIZES[path] if args.fast else args.n
        tallies.append(run_path(path, n, args.seed, jobs=args.jobs, timeout=args.timeout, light=args.fast))
        print(f"{path}: {tallies[-1].tried} inputs in {tallies[-1].seconds:.1f} s", file=sys.stderr, flush=True)
    print(table(tallies))
    print(f"\n{sum(t.tried for t in tallies)} inputs, seed {args.seed}, {time.perf_counter() - started:.0f} s")
    listing = details(tallies, args.show)
    if listing:
        print("\nfailures (first of each kind per path):\n" + listing)
    return 0 if all(t.clean for t in tallies) else 1


def _one(paths: list[str], seed: int, index: int) -> int:
    import tempfile
    from pathlib import Path

    for path in paths:
        with tempfile.TemporaryDirectory() as tmp:
            target = TARGETS[path](Path(tmp))
            try:
                case = target.case(seed, index)
                failures = target.check(case)
            finally:
                target.close()
        print(case.describe())
        for f in failures:
            print(" ", f.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
