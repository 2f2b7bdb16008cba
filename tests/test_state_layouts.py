"""Engine snapshots written before the rule state was compacted (the acks' kept notices, the
repeat offenders' history, the unqualified samples of the disposal tally) still load, and an
engine restored from one raises exactly the notices and figures of an engine that never stopped.

Each blob in ``snapshots/`` was written by the code of its time running this module
(``python tests/test_state_layouts.py BLOB``, before the change it is named for):
``engine-before-compact-state.bin`` before the first compaction, ``engine-before-packed-notices.bin``
before the acks' notices were packed (id, time and title in one bytes object) and the repeat
offenders' times kept as numbers."""
from __future__ import annotations

import json
import sys
from array import array
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shian.notifiers.routing import recipients
from shian.rules.config import load
from shian.rules.engine import Engine
from shian.rules.families.offenders import SWEEP_DAYS
from shian.rules.events import Validator
from shian.rules.notice import Notice, notice_id
from shian.rules.timeutil import parse_time, wall_micros

HERE = Path(__file__).resolve().parent
CONFIG = load(HERE.parent / "examples" / "county.yaml")
BLOBS = [HERE / "snapshots" / name for name in ("engine-before-compact-state.bin", "engine-before-packed-notices.bin")]
TOWN = "红河镇"


def sample(i: int, day: str, bad: bool) -> dict[str, Any]:
    return {"type": "sampling_result", "id": f"S{i}", "program": "food_sampling", "township": TOWN,
            "entity": "老王蔬菜店", "category": "蔬菜", "food": "韭菜", "sampled_at": f"{day}T08:00:00",
            "reported_at": f"{day}T09:00:00",
            "items": [{"item": "腐霉利", "value": 0.5 if bad else 0.05, "limit": 0.2, "unit": "mg/kg"}]}


def ack(i: int, named: str, at: str, action: str = "签收") -> dict[str, Any]:
    return {"type": "ack", "id": f"A{i}", "township": TOWN, "notice_id": named, "by": "hh-fso",
            "action": action, "acked_at": at}


FIRST = notice_id(f"sample.unqualified|{TOWN}|S1")
BEFORE = [sample(1, "2026-04-01", True), sample(2, "2026-04-01", False), sample(3, "2026-04-02", True),
          ack(1, FIRST, "2026-04-02T10:00:00"), sample(4, "2026-04-02", True),
          ack(2, notice_id(f"sample.unqualified|{TOWN}|S4"), "2026-04-02T11:00:00", "办结")]
AFTER = [sample(5, "2026-04-03", True), ack(3, notice_id(f"sample.unqualified|{TOWN}|S3"), "2026-04-03T10:00:00"),
         sample(6, "2026-04-20", True)]
UNTIL = parse_time("2026-05-20T00:00:00", CONFIG.tz)


def engine(sink: list[Notice]) -> Engine:
    return Engine(CONFIG, recipients, sink.append, durable=True)


def feed(e: Engine, events: list[dict[str, Any]]) -> None:
    validate = Validator(CONFIG.known()).from_json
    for obj in events:
        e.admit(validate(json.dumps(obj, ensure_ascii=False)))


def figures(e: Engine) -> list[Any]:
    return e.figures("disposals", "2026-04", UNTIL)


@pytest.mark.parametrize("blob", BLOBS, ids=lambda p: p.stem)
def test_a_snapshot_of_an_earlier_layout_restores_to_the_same_notices_and_figures(blob: Path) -> None:
    """Old snapshots load (conversion on load) and the restored engine behaves as one that never stopped."""
    through: list[Notice] = []
    whole = engine(through)
    feed(whole, BEFORE)
    cut = len(through)
    feed(whole, AFTER)
    whole.advance(UNTIL)

    restored_out: list[Notice] = []
    restored = Engine.restore(blob.read_bytes(), CONFIG, recipients, restored_out.append)
    assert restored.pending(50) == engine_pending(BEFORE)
    feed(restored, AFTER)
    restored.advance(UNTIL)
    assert [n.to_json_line() for n in restored_out] == [n.to_json_line() for n in through[cut:]]
    assert {n.rule for n in restored_out} >= {"entity.repeat_offender", "notice.unacknowledged",
                                               "notice.unresolved", "sample.disposal_overdue"}
    assert figures(restored) == figures(whole)


def test_a_snapshot_of_the_new_layout_round_trips() -> None:
    """The compacted state pickles and loads back to the same deadlines and the same notices after."""
    first: list[Notice] = []
    e = engine(first)
    feed(e, BEFORE)
    again: list[Notice] = []
    restored = Engine.restore(e.snapshot(), CONFIG, recipients, again.append)
    assert restored.pending(50) == e.pending(50)
    cut = len(first)
    for target in (e, restored):
        feed(target, AFTER)
        target.advance(UNTIL)
    assert [n.to_json_line() for n in again] == [n.to_json_line() for n in first[cut:]]
    assert figures(restored) == figures(e)


def engine_pending(events: list[dict[str, Any]]) -> list[tuple[datetime, str]]:
    e = engine([])
    feed(e, events)
    return e.pending(50)


if __name__ == "__main__":  # writes a blob with the code at hand (done once, before a change)
    out: list[Notice] = []
    e = engine(out)
    feed(e, BEFORE)
    Path(sys.argv[1]).write_bytes(e.snapshot())
    print(len(out), "notices;", len(e._timers), "deadlines; wrote", sys.argv[1])


def test_repeat_offenders_forget_an_entity_whose_samples_no_window_can_reach() -> None:
    """Bounded state: an entity's history goes once window_days + dedup_days (and at most SWEEP_DAYS more) have passed, not before."""
    e = engine([])
    feed(e, BEFORE[:1])
    offenders = next(f for f in e.families if f.name == "offenders")
    keep = offenders.window + CONFIG.dedup_days
    first = parse_time("2026-04-01T09:00:00", CONFIG.tz)
    e.advance(first + timedelta(days=keep - 1))
    assert list(offenders.bad.values()) == [(array("q", [wall_micros(first)]), ["S1"])]
    e.advance(first + timedelta(days=keep + 2 + SWEEP_DAYS))
    assert offenders.bad == {}
