"""The compact id memory (rules/idmemory.py) answers exactly as a plain dict with per-id days
would: found until a ``forget_before`` a later day, through merges, compaction and pickling."""
from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shian.rules import idmemory
from shian.rules.idmemory import DictIds, IdMemory

KEYS = st.integers(0, 40) | st.integers(0, 2**64 - 1)
DAYS = st.integers(739_000, 739_005)
OPS = st.lists(st.one_of(
    st.tuples(st.just("add"), KEYS, st.integers(0, 2**64 - 1), DAYS),
    st.tuples(st.just("forget"), DAYS),
    st.tuples(st.just("get"), KEYS),
    st.tuples(st.just("pickle"),),
), max_size=300)


def run(ops: list[tuple], memory: IdMemory) -> IdMemory:
    model: dict[int, tuple[int, int]] = {}
    for op in ops:
        if op[0] == "add":
            _, key, fp, day = op
            if key not in model:  # the engine adds only ids it does not remember
                model[key] = (fp, day)
                memory.add(key, fp, day)
        elif op[0] == "forget":
            model = {k: v for k, v in model.items() if v[1] >= op[1]}
            memory.forget_before(op[1])
        elif op[0] == "get":
            assert memory.get(op[1]) == (model[op[1]][0] if op[1] in model else None)
        else:
            memory = pickle.loads(pickle.dumps(memory, protocol=pickle.HIGHEST_PROTOCOL))
        assert len(memory) == len(model)
    assert memory.entries() == sorted((k, f, d) for k, (f, d) in model.items())
    for key in model:
        assert memory.get(key) == model[key][0]
    return memory


@pytest.mark.parametrize("recent", [1, 3, 8])
@settings(max_examples=150, deadline=None)
@given(ops=OPS)
def test_answers_as_a_dict_through_merges_and_compaction(recent: int, ops: list[tuple]) -> None:
    """With a tiny dict part (merged every few adds) every lookup, length and item matches the model."""
    saved = idmemory.RECENT
    idmemory.RECENT = recent
    try:
        run(ops, IdMemory())
    finally:
        idmemory.RECENT = saved


@settings(max_examples=150, deadline=None)
@given(ops=OPS)
def test_the_plain_dict_form_answers_the_same(ops: list[tuple]) -> None:
    """DictIds (the in-process replay's) answers as the model too."""
    run([op for op in ops if op[0] != "pickle"], DictIds())


def test_expiry_boundary_and_an_id_added_after_its_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """An id is kept by forget_before(its day), gone at day+1; one added with a day already
    forgotten stays until the next forget_before, also after a merge into the arrays."""
    monkeypatch.setattr(idmemory, "RECENT", 2)
    m = IdMemory()
    m.add(1, 11, 100)
    m.add(2, 22, 101)
    m.add(3, 33, 102)  # merged: all three in the arrays
    m.forget_before(100)
    assert (m.get(1), m.get(2), m.get(3)) == (11, 22, 33)
    m.forget_before(101)
    assert (m.get(1), m.get(2), m.get(3), len(m)) == (None, 22, 33, 2)
    m.add(4, 44, 100)  # a late event: its day just forgotten, it is kept until the next forgetting
    m.add(5, 55, 200)
    m.add(6, 66, 200)  # a merge: 4 must stay found
    assert (m.get(4), m.get(5), m.get(6), len(m)) == (44, 55, 66, 5)
    m.add(1, 12, 300)  # id 1, forgotten, remembered again with other content
    assert m.get(1) == 12
    m.forget_before(101)
    assert (m.get(4), m.get(1), len(m)) == (None, 12, 5)
    m.forget_before(201)
    assert m.entries() == [(1, 12, 300)]


def test_compaction_drops_forgotten_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a quarter of the arrays' entries are forgotten they are filtered out (memory stays bounded)."""
    monkeypatch.setattr(idmemory, "RECENT", 10)
    m = IdMemory()
    for i in range(100):
        m.add(i * 7919 % 1000, i, 1000 + i // 10)
    m.forget_before(1003)
    assert len(m._keys) < 100 and len(m) == 70
    assert [k for k, _, _ in m.entries()] == sorted(i * 7919 % 1000 for i in range(30, 100))


def test_from_dicts_converts_the_old_engine_form() -> None:
    """The dicts older engine snapshots kept (key → fp, day → keys) become the same memory."""
    seen = {5: 50, 9: 90, 2: 20}
    expiry = {800: [9, 5], 801: [2], 799: [7]}  # 7 was forgotten from _seen already
    m = IdMemory.from_dicts(seen, expiry)
    assert m.entries() == [(2, 20, 801), (5, 50, 800), (9, 90, 800)]
    m.forget_before(801)
    assert (m.get(2), m.get(5), len(m)) == (20, None, 1)
