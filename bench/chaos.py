#!/usr/bin/env python3
"""Fault injection with real parts: ``make chaos`` (a script, not part of ``make test``).

    python bench/chaos.py [--quick] [--only 1,2,…] [--out DIR] [--keep]

Every scenario runs real processes and servers on 127.0.0.1 — ``shian run``, ``shian worker``,
``shian ingest`` and ``shian notify`` as subprocesses, an Apache Kafka broker
(``scripts/kafka_broker.py``, KRaft), an SMTP server (aiosmtpd) and WeCom / DingTalk robot
servers (aiohttp) — and breaks one of them:

1. the SMTP server goes down for a while, then comes back;
2. the robots answer HTTP 5xx, 429 and HTTP 200 with ``errcode`` 45009 (WeCom) / 130101
   (DingTalk) for a while, then OK;
3. the Kafka broker is stopped and restarted while ``shian ingest`` and a worker run;
4. the Kafka worker is SIGKILLed three times during a 100,000-event run (restarted each time);
5. ``shian run`` is SIGKILLed three times while 100,000 events are posted over HTTP;
6. the disk fills up under the outbox (6a) and under the journal (6b): a 2 MB tmpfs, grown to
   64 MB afterwards (skipped without the right to mount);
7. the saved state is damaged: the snapshot of ``shian run`` (7a) and a worker's snapshot on
   the changelog (7b), truncated or bit-flipped.

Expected notices are worked out independently: from the events the suite builds (each
不合格 sample is one ``sample.unqualified`` notice, its id the hash of its key, §4), or from
an in-process replay of the same file (the Kafka scenarios). Delivered is what the SMTP /
robot servers accepted, or the ``notices`` topic read from the start. A repeat is documented
when it is one of: the outbox's window (a message in flight when ``shian run`` was killed; one
per SMTP channel and kill — README "Delivery semantics"), or a notice on the ``notices`` topic
redelivered with the same id and content after a worker crash (README "Delivery on
``notices`` is at least once"; CONTRACT §4: a redelivered event yields the same id). Anything
else is a duplicate.

Prints one table (and writes ``<out>/chaos.json``); exits 1 when any notice was lost, any
duplicate was undocumented or any check of a scenario failed, else 0.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos_parts import ROOT, Abort, Row, say  # noqa: E402

SCENARIOS: dict[str, tuple[str, str]] = {  # key -> (module, function)
    "1": ("chaos_service", "smtp_down"),
    "2": ("chaos_service", "robots_refusing"),
    "3": ("chaos_kafka", "broker_restart"),
    "4": ("chaos_kafka", "worker_killed"),
    "5": ("chaos_service", "run_killed"),
    "6a": ("chaos_service", "disk_full_outbox"),
    "6b": ("chaos_service", "disk_full_journal"),
    "7a": ("chaos_service", "corrupt_run_snapshot"),
    "7b": ("chaos_kafka", "corrupt_worker_snapshot"),
}
HEAD = ("scenario", "events sent", "notices expected", "delivered", "duplicates", "documented redeliveries",
        "lost", "time", "result")


def scenario(key: str) -> Callable[[Path, bool], Row]:
    import importlib

    module, name = SCENARIOS[key]
    return getattr(importlib.import_module(module), name)


def run_one(key: str, work: Path, quick: bool) -> Row:
    say(f"scenario {key}")
    t0 = time.monotonic()
    try:
        row = scenario(key)(work, quick)
    except Abort as e:
        row = e.args[1] if len(e.args) > 1 else Row(f"{key}. (stopped: {e})")
    except Exception as e:  # the suite's boundary: a scenario that breaks is a failed row, not a lost table
        traceback.print_exc()
        row = Row(f"{key}. (the scenario itself failed)")
        row.check("ran to the end", False, f"{type(e).__name__}: {e}")
    row.seconds = time.monotonic() - t0
    say(f"scenario {key}: {row.verdict()} ({row.seconds:.0f} s)")
    return row


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    for r in rows:
        cells = (r.scenario, r.events, r.expected, r.delivered, r.duplicates, r.redeliveries, r.lost,
                 f"{r.seconds:.0f} s", r.verdict())
        if r.skipped:
            cells = (r.scenario, "", "", "", "", "", "", f"{r.seconds:.0f} s", r.verdict())
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs (10,000 events instead of 100,000)")
    ap.add_argument("--only", default="", help="comma-separated scenario keys, e.g. 1,3,6a")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--keep", action="store_true", help="keep the working folders (logs, databases)")
    args = ap.parse_args(argv)
    keys = [k.strip() for k in args.only.split(",") if k.strip()] or list(SCENARIOS)
    unknown = [k for k in keys if k not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    root = Path(tempfile.mkdtemp(prefix="shian-chaos-"))
    t0 = time.monotonic()
    rows = []
    for key in keys:
        work = root / key
        work.mkdir()
        rows.append(run_one(key, work, args.quick))
    total = time.monotonic() - t0
    text = table(rows)
    print(text)
    print(f"\n{'quick' if args.quick else 'full'} run, {len(rows)} scenarios in {total / 60:.1f} min")
    for r in rows:
        for note in r.notes:
            print(f"- {r.scenario.split('.')[0]}: {note}")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"quick": args.quick, "seconds": round(total, 1), "table": text,
              "rows": [{**r.__dict__, "verdict": r.verdict()} for r in rows]}
    (args.out / "chaos.json").write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    if args.keep:
        print(f"working folders kept in {root}", file=sys.stderr)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if any(r.failed for r in rows if not r.skipped) else 0


if __name__ == "__main__":
    raise SystemExit(main())
