"""One row shape for every benchmark's targets, so that ``make bench`` prints one table.

Each benchmark (``replay_bench.py``, ``notify_bench.py``, ``kafka_bench.py``, ``load_test.py``)
takes ``--json PATH`` and writes its target rows there with :func:`write_rows`; ``bench/run.py``
runs them in turn and prints :func:`table` over all their rows.

A row: what is measured, the result, the floor it is compared with (or empty), the ratio
(result's cost over the floor's, or empty), the target as written in the issue, and whether it
was met (``None``: a figure reported without a target).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable


@dataclass(frozen=True)
class Target:
    bench: str
    measure: str
    result: str
    floor: str = ""
    ratio: str = ""
    target: str = ""
    met: bool | None = None


def write_rows(path: Path | str | None, rows: Iterable[Target]) -> None:
    """Write the rows as JSON (nothing when ``path`` is None)."""
    if path is None:
        return
    Path(path).write_text(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2) + "\n",
                          encoding="utf-8")


def read_rows(path: Path | str) -> list[Target]:
    return [Target(**r) for r in json.loads(Path(path).read_text(encoding="utf-8"))]


def met_text(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "NO")


def table(rows: Iterable[Target], markdown: bool = False) -> list[str]:
    """The rows as aligned text columns, or as a Markdown table for the README."""
    head = ("benchmark", "measure", "result", "floor", "ratio", "target", "met")
    body = [(r.bench, r.measure, r.result, r.floor, r.ratio, r.target, met_text(r.met)) for r in rows]
    if markdown:
        return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                *("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body)]
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in (head, *body)]
