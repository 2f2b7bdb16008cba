"""What the engine says a deadline is about (``Engine.upcoming``, the office's 期限 page): the
object of each timer — the entity to re-inspect, the sample to dispose of, the notice waiting
for 签收 — so that deadlines of different objects never read alike."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import TZ
from shian.notifiers.routing import recipients
from shian.rules.config import load
from shian.rules.engine import Engine
from shian.rules.events import Validator
from shian.rules.notice import Notice

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "county.yaml"
NOW = datetime(2026, 4, 10, 12, 0, tzinfo=TZ)


def inspection(i: str, entity: str, **more: Any) -> dict[str, Any]:
    return {"type": "inspection", "id": i, "township": "红河镇", "inspected_at": "2026-04-10T10:00:00",
            "entity": entity, "entity_type": "餐饮服务", "inspection_type": "日常检查", "outcome": "合格", **more}


def sample(i: str, entity: str) -> dict[str, Any]:
    return {"type": "sampling_result", "id": i, "program": "food_sampling", "township": "红河镇",
            "sampled_at": "2026-04-10T09:00:00", "entity": entity, "category": "蔬菜", "food": "韭菜",
            "items": [{"item": "毒死蜱", "value": 0.5, "unit": "mg/kg", "limit": 0.1}]}


#: (events, rule of the deadline, the words after the rule's id in each of its labels)
CASES = [
    ([inspection("I1", "阳光餐馆", outcome="限期整改", rectify_by="2026-04-20"),
      inspection("I2", "红河饭庄", outcome="限期整改", rectify_by="2026-04-20")],
     "inspection.rectification_overdue", [["红河镇", "阳光餐馆"], ["红河镇", "红河饭庄"]]),
    ([sample("S1", "张记菜店"), sample("S2", "李记菜店")],
     "sample.disposal_overdue", [["红河镇", "S1", "蔬菜", "张记菜店"], ["红河镇", "S2", "蔬菜", "李记菜店"]]),
]


@pytest.mark.parametrize("events, rule, words", CASES, ids=[c[1] for c in CASES])
def test_deadlines_name_their_entity_or_sample(events: list[dict[str, Any]], rule: str,
                                                words: list[list[str]]) -> None:
    """A re-inspection or disposal deadline carries its rule's id (not its family's) and the
    entity (and sample) it is about, one label per object."""
    config = load(EXAMPLE)
    engine = Engine(config, recipients, lambda n: None)
    validator = Validator(config.known())
    for ev in events:
        engine.admit(validator.from_object(ev))
    labels = [label.split() for _, label in engine.upcoming(NOW, 60)]
    assert [w[1:] for w in labels if w[0] == rule] == words


def test_a_notice_waiting_for_its_ack_is_named_by_its_id() -> None:
    """Each notice raised has its own 签收 deadline, labelled with its township and id."""
    config = load(EXAMPLE)
    raised: list[Notice] = []
    engine = Engine(config, recipients, raised.append)
    validator = Validator(config.known())
    for i, entity in enumerate(("阳光餐馆", "红河饭庄")):
        engine.admit(validator.from_object(inspection(f"L{i}", entity, license_valid=False)))
    expected = sorted(f"notice.unacknowledged 红河镇 {n.id}" for n in raised)
    assert len(expected) == 2
    labels = [label for _, label in engine.upcoming(NOW, 60) if label.startswith("notice.unacknowledged")]
    assert sorted(labels)[:2] == expected


@pytest.mark.parametrize("events, rule, words", CASES, ids=[c[1] for c in CASES])
def test_pending_deadlines_are_read_in_place_worded_as_upcoming(events: list[dict[str, Any]], rule: str,
                                                                 words: list[list[str]]) -> None:
    """The live 期限 page's ``pending``: the soonest timers as they stand, worded as
    ``upcoming`` words them, and the engine untouched (its snapshot the same after)."""
    config = load(EXAMPLE)
    engine = Engine(config, recipients, lambda n: None, durable=True)
    validator = Validator(config.known())
    for ev in events:
        engine.admit(validator.from_object(ev))
    before = engine.snapshot()
    pending = engine.pending(60)
    assert engine.snapshot() == before
    assert [at for at, _ in pending] == sorted(at for at, _ in pending)
    assert [w[1:] for w in (label.split() for _, label in pending) if w[0] == rule] == words
    copy = Engine.restore(before, config, recipients, lambda n: None)
    upcoming = copy.upcoming(NOW, len(pending))
    assert set(pending) & set(upcoming)
    assert [p for p in pending if p[0] <= upcoming[-1][0]] == [u for u in upcoming if u in set(pending)]
