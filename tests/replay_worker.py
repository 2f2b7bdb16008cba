"""Replay in another process, for tests/test_properties.py: the same input under another hash
seed, and a snapshot taken in the test process resumed here.

One JSON request per line on standard input, one JSON answer per line on standard output;
the process ends at the end of its input (when the test process closes it or goes away).
Request: ``{"config": name in CONFIGS, "lines": [text…], "until": ISO time or null}``, plus
``"snapshot"`` (base64) and ``"first"`` (the number of the first line) to resume from a snapshot.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from event_strategies import CONFIGS, replay, resume  # noqa: E402


def answer(request: dict[str, Any]) -> dict[str, Any]:
    lines = request["lines"]
    until = datetime.fromisoformat(request["until"]) if request["until"] else None
    config = CONFIGS[request["config"]]
    if request.get("snapshot"):
        run = resume(base64.b64decode(request["snapshot"]), lines, request["first"], until, config)
    else:
        run = replay(lines, until, config)
    return dataclasses.asdict(run)


def main() -> None:
    for text in sys.stdin:
        sys.stdout.write(json.dumps(answer(json.loads(text))) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
