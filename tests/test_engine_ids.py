"""What the engine remembers of each accepted event id (a key and a content fingerprint) is kept
small: process-local hashes of at most 60 bits, so that each is one 32-byte int."""
from __future__ import annotations

import json

import pytest

from conftest import config_dict
from shian.rules.config import parse
from shian.rules.engine import ID_BITS, Engine, Status
from shian.rules.events import Rejected, Validator


def sample(i: int) -> str:
    return json.dumps({"type": "sampling_result", "id": f"DC{i:06d}", "township": "红河镇",
                       "sampled_at": f"2026-03-{1 + i % 28:02d}T09:{i % 60:02d}:00", "entity": "张三蔬菜店",
                       "category": "蔬菜", "items": [{"item": "铅", "value": 0.01 * i, "limit": 0.2}]},
                      ensure_ascii=False)


def test_remembered_ids_are_60_bit_ints_and_still_tell_duplicates_apart() -> None:
    """Keys and fingerprints fit 60 bits; a resend is a duplicate, changed content is refused."""
    config = parse(config_dict())
    engine, validator = Engine(config, lambda *a: (), lambda n: None), Validator(config.known())
    events = [validator.from_json(sample(i)) for i in range(200)]
    for ev in sorted(events, key=lambda e: e.time):
        assert engine.admit(ev) == Status.ACCEPTED
    assert len(engine._ids) == 200
    assert all(0 <= k <= ID_BITS and 0 <= v <= ID_BITS for k, v, _ in engine._ids.entries())
    assert engine.admit(validator.from_json(sample(7))) == Status.DUPLICATE
    changed = json.loads(sample(7))
    changed["entity"] = "李四蔬菜店"
    with pytest.raises(Rejected, match="编号重复但内容不同"):
        engine.admit(validator.from_json(json.dumps(changed, ensure_ascii=False)))


def test_a_snapshot_with_the_old_id_dicts_still_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine snapshot that kept ids as ``_seen``/``_seen_expiry`` dicts restores with the same ids."""
    config = parse(config_dict())
    engine, validator = Engine(config, lambda *a: (), lambda n: None, durable=True), Validator(config.known())
    for ev in sorted((validator.from_json(sample(i)) for i in range(50)), key=lambda e: e.time):
        assert engine.admit(ev) == Status.ACCEPTED
    new_getstate = Engine.__getstate__

    def old_getstate(self: Engine) -> dict:
        state = new_getstate(self)
        ids = state.pop("_ids")
        state["_seen"] = {k: f for k, f, _ in ids.entries()}
        state["_seen_expiry"] = {}
        for k, _, d in ids.entries():
            state["_seen_expiry"].setdefault(d, []).append(k)
        return state

    monkeypatch.setattr(Engine, "__getstate__", old_getstate)
    blob = engine.snapshot()
    monkeypatch.undo()
    restored = Engine.restore(blob, config, lambda *a: (), lambda n: None)
    assert restored._ids.entries() == engine._ids.entries() and len(restored._ids) == 50
    assert restored.admit(validator.from_json(sample(7))) == Status.DUPLICATE
    changed = json.loads(sample(7))
    changed["entity"] = "李四蔬菜店"
    with pytest.raises(Rejected, match="编号重复但内容不同"):
        restored.admit(validator.from_json(json.dumps(changed, ensure_ascii=False)))
    restored.advance(restored.clock.replace(year=restored.clock.year + 2))  # past dedup_days: forgotten
    assert len(restored._ids) == 0 and restored.admit(validator.from_json(sample(7))) == Status.ACCEPTED
