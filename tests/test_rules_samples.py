"""Sample rules (§3, §6 Samples): unqualified, banned substance, disposal overdue, repeat
offenders, pass rates."""
from __future__ import annotations

from typing import Any

import pytest

from conftest import check, of

HH, BQ = "红河镇", "板桥镇"


def sample(sid: str, at: str = "2026-04-10T10:00:00", *, items: list[dict[str, Any]] | None = None,
           township: str = HH, entity: str = "张三蔬菜店", category: str = "蔬菜", **kw: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "type": "sampling_result", "id": sid, "township": township, "sampled_at": at,
        "entity": entity, "category": category,
        "items": items if items is not None else [{"item": "毒死蜱", "value": 0.01, "limit": 0.02}],
    }
    ev.update(kw)
    return ev


def bad(sid: str, at: str = "2026-04-10T10:00:00", **kw: Any) -> dict[str, Any]:
    """An unqualified sample (value > limit)."""
    return sample(sid, at, items=[{"item": "毒死蜱", "value": 0.05, "limit": 0.02, "unit": "mg/kg"}], **kw)


def good(sid: str, at: str = "2026-04-10T10:00:00", **kw: Any) -> dict[str, Any]:
    return sample(sid, at, **kw)


def disposal(did: str, sample_id: str, at: str, township: str = HH) -> dict[str, Any]:
    return {"type": "disposal", "id": did, "sample_id": sample_id, "township": township,
            "disposed_at": at, "measures": ["下架"]}


def sample_rules(notices: list[dict[str, Any]]) -> list[str]:
    return sorted(n["rule"] for n in notices if n["rule"] in ("sample.unqualified", "sample.banned_substance"))


# --------------------------------------------------------------------------- unqualified / banned

VERDICT_CASES = [
    # (test id, items, extra sample fields, expected sample rules)
    ("value>limit is unqualified", [{"item": "毒死蜱", "value": 0.03, "limit": 0.02}], {}, ["sample.unqualified"]),
    ("value==limit is qualified", [{"item": "毒死蜱", "value": 0.02, "limit": 0.02}], {}, []),
    ("value<limit is qualified", [{"item": "毒死蜱", "value": 0.019, "limit": 0.02}], {}, []),
    ("null value", [{"item": "毒死蜱", "value": None, "limit": 0.02}], {}, []),
    ("null limit", [{"item": "毒死蜱", "value": 5, "limit": None}], {}, []),
    ("未检出", [{"item": "毒死蜱", "value": "未检出", "limit": 0.02}], {}, []),
    ("ND", [{"item": "毒死蜱", "value": "ND", "limit": 0.02}], {}, []),
    ("阴性", [{"item": "有机磷", "value": "阴性", "limit": None}], {}, []),
    ("阳性", [{"item": "有机磷", "value": "阳性", "limit": None}], {}, ["sample.unqualified"]),
    ("<0.01 below limit", [{"item": "毒死蜱", "value": "<0.01", "limit": 0.02}], {}, []),
    ("<x is taken as 0 even when x > limit", [{"item": "毒死蜱", "value": "<0.05", "limit": 0.02}], {}, []),
    ("item result 不合格", [{"item": "毒死蜱", "value": 0.01, "limit": 0.02, "result": "不合格"}], {}, ["sample.unqualified"]),
    ("value>limit beats result 合格", [{"item": "毒死蜱", "value": 0.03, "limit": 0.02, "result": "合格"}], {}, ["sample.unqualified"]),
    ("阴性 with result 不合格: any 不合格 wins", [{"item": "有机磷", "value": "阴性", "result": "不合格"}], {}, ["sample.unqualified"]),
    ("阳性 with result 合格: any 不合格 wins", [{"item": "有机磷", "value": "阳性", "result": "合格"}], {}, ["sample.unqualified"]),
    ("one bad item among good", [{"item": "a", "value": 0.01, "limit": 0.02}, {"item": "b", "value": 3, "limit": 2}], {}, ["sample.unqualified"]),
    ("empty items, no conclusion", [], {}, []),
    ("conclusion 合格 wins over items", [{"item": "毒死蜱", "value": 0.03, "limit": 0.02}], {"conclusion": "合格"}, []),
    ("conclusion 不合格 wins over items", [{"item": "毒死蜱", "value": 0.01, "limit": 0.02}], {"conclusion": "不合格"}, ["sample.unqualified"]),
    ("conclusion 不合格 with empty items", [], {"conclusion": "不合格"}, ["sample.unqualified"]),
    # banned substances
    ("banned value>0", [{"item": "克伦特罗", "value": 0.1, "limit": 0}], {}, ["sample.banned_substance"]),
    ("banned name contained in item", [{"item": "盐酸克伦特罗", "value": 0.1, "limit": None}], {}, ["sample.banned_substance"]),
    ("banned 莱克多巴胺 contained", [{"item": "莱克多巴胺(ractopamine)", "value": 0.3}], {}, ["sample.banned_substance"]),
    ("banned value>0 whatever result", [{"item": "氯霉素", "value": 0.1, "limit": 0.3, "result": "合格"}], {}, ["sample.banned_substance"]),
    ("banned value>0 whatever conclusion", [{"item": "孔雀石绿", "value": 0.5}], {"conclusion": "合格"}, ["sample.banned_substance"]),
    ("banned result 不合格 without value", [{"item": "瘦肉精", "value": None, "result": "不合格"}], {}, ["sample.banned_substance"]),
    ("banned 阳性", [{"item": "瘦肉精", "value": "阳性"}], {}, ["sample.banned_substance"]),
    ("banned value 0 is no hit", [{"item": "克伦特罗", "value": 0, "limit": 0}], {}, []),
    ("banned 未检出 is no hit", [{"item": "克伦特罗", "value": "未检出", "limit": 0}], {}, []),
    ("banned <x is taken as 0", [{"item": "克伦特罗", "value": "<0.5"}], {}, []),
    ("banned hit plus other bad item fires banned only",
     [{"item": "克伦特罗", "value": 0.2}, {"item": "铅", "value": 1, "limit": 0.2}], {}, ["sample.banned_substance"]),
]


@pytest.mark.parametrize("items, extra, expected", [c[1:] for c in VERDICT_CASES], ids=[c[0] for c in VERDICT_CASES])
def test_sample_verdict_table(replay, items, extra, expected):
    """§1 sampling_result conclusion, §3 banned vs unqualified, §6 Samples / text values."""
    notices, rejects, _ = replay([sample("S1", items=items, category="畜禽肉", **extra)])
    assert rejects == []
    assert sample_rules(notices) == expected


@pytest.mark.parametrize("first_bad", [True, False])
def test_each_sample_is_judged_on_its_own_items(replay, first_bad):
    """A sample's verdict never leaks into the next sample's (alternating good/bad streams)."""
    mk = [bad, good] if first_bad else [good, bad]
    events = [mk[i % 2](f"S{i}", f"2026-04-{i + 1:02d}T10:00:00", entity=f"单位{i}") for i in range(6)]
    notices, _, _ = replay(events)
    expected = [f"sample.unqualified|红河镇|S{i}" for i in range(6) if (i % 2 == 0) == first_bad]
    assert [n["key"] for n in of(notices, "sample.unqualified")] == expected


def test_unqualified_notice_fields_and_due(replay):
    """sample.unqualified: town/warning, at = event time (reported_at), due = +90 local days, routed."""
    ev = bad("S1", "2026-04-03T08:00:00", reported_at="2026-04-10T10:30:00", entity="李四菜摊", food="韭菜")
    notices, rejects, _ = replay([ev])
    assert rejects == []
    [n] = of(notices, "sample.unqualified")
    check(n, rule="sample.unqualified", township=HH, level="town", severity="warning",
          recipients={"hh-agri", "hh-fso"}, at="2026-04-10T10:30:00+08:00", due="2026-07-09T10:30:00+08:00",
          key="sample.unqualified|红河镇|S1", facts={"entity": "李四菜摊"})


def test_unqualified_event_time_falls_back_to_sampled_at(replay):
    notices, _, _ = replay([bad("S1", "2026-01-15T09:00:00")])
    [n] = of(notices, "sample.unqualified")
    check(n, at="2026-01-15T09:00:00+08:00", due="2026-04-15T09:00:00+08:00")


def test_due_uses_local_days_and_disposal_days_override(replay):
    notices, _, _ = replay([bad("S1", "2026-02-20T10:00:00")], rules={"sample.unqualified": {"disposal_days": 10}})
    [n] = of(notices, "sample.unqualified")
    check(n, due="2026-03-02T10:00:00+08:00")


def test_banned_notice_fields(replay):
    """sample.banned_substance: county/critical; recipients county office + routed dept + town office."""
    ev = sample("S9", "2026-04-10T10:00:00", items=[{"item": "克伦特罗", "value": 0.8, "limit": 0}],
                category="畜禽肉", entity="王五肉铺")
    notices, _, _ = replay([ev])
    [n] = of(notices, "sample.banned_substance")
    check(n, rule="sample.banned_substance", township=HH, level="county", severity="critical",
          recipients={"county-fso", "hh-vet", "hh-fso"}, at="2026-04-10T10:00:00+08:00",
          due="2026-07-09T10:00:00+08:00", key="sample.banned_substance|红河镇|S9", facts={"entity": "王五肉铺"})
    assert of(notices, "sample.unqualified") == []


@pytest.mark.parametrize("township, category, level_rule, expected", [
    (HH, "蔬菜", "sample.unqualified", {"hh-agri", "hh-fso"}),
    (HH, "畜禽肉", "sample.unqualified", {"hh-vet", "hh-fso"}),
    (HH, "水果", "sample.unqualified", {"hh-fso"}),
    (HH, "蔬菜类", "sample.unqualified", {"hh-fso"}),  # routing keys match exactly
    (BQ, "蔬菜", "sample.unqualified", {"bq-fso"}),
    (HH, "水果", "sample.banned_substance", {"county-fso", "hh-fso"}),
    (BQ, "畜禽肉", "sample.banned_substance", {"county-fso", "bq-fso"}),
])
def test_routing_by_category(replay, township, category, level_rule, expected):
    item = {"item": "氯霉素", "value": 0.4} if level_rule == "sample.banned_substance" else {"item": "铅", "value": 1, "limit": 0.2}
    notices, _, _ = replay([sample("S1", items=[item], township=township, category=category)])
    [n] = of(notices, level_rule)
    check(n, township=township, recipients=expected)


def test_extra_substances_adds_to_defaults(replay):
    items_sudan = [{"item": "苏丹红Ⅰ", "value": 0.2, "limit": None}]
    items_clen = [{"item": "克伦特罗", "value": 0.2, "limit": None}]
    rules = {"sample.banned_substance": {"extra_substances": ["苏丹红"]}}
    notices, _, _ = replay([sample("S1", items=items_sudan), sample("S2", items=items_clen)], rules=rules)
    assert sorted(n["key"] for n in of(notices, "sample.banned_substance")) == [
        "sample.banned_substance|红河镇|S1", "sample.banned_substance|红河镇|S2"]
    notices, _, _ = replay([sample("S1", items=items_sudan)])
    assert sample_rules(notices) == []  # not banned by default, and no limit given


def test_substances_replace_the_default_list(replay):
    rules = {"sample.banned_substance": {"substances": ["苏丹红"]}}
    events = [
        sample("S1", items=[{"item": "苏丹红Ⅳ", "value": 0.2}]),
        sample("S2", items=[{"item": "克伦特罗", "value": 0.2}]),               # no longer banned, no limit
        sample("S3", items=[{"item": "克伦特罗", "value": 0.2, "limit": 0}]),   # plain value > limit
    ]
    notices, _, _ = replay(events, rules=rules)
    assert [n["key"] for n in of(notices, "sample.banned_substance")] == ["sample.banned_substance|红河镇|S1"]
    assert [n["key"] for n in of(notices, "sample.unqualified")] == ["sample.unqualified|红河镇|S3"]


def test_extra_substances_add_to_replaced_list(replay):
    rules = {"sample.banned_substance": {"substances": ["苏丹红"], "extra_substances": ["罗丹明B"]}}
    events = [
        sample("S1", items=[{"item": "苏丹红Ⅳ", "value": 0.2}]),
        sample("S2", items=[{"item": "罗丹明B", "value": 0.2}]),
        sample("S3", items=[{"item": "克伦特罗", "value": 0.2}]),
    ]
    notices, _, _ = replay(events, rules=rules)
    assert sorted(n["key"] for n in of(notices, "sample.banned_substance")) == [
        "sample.banned_substance|红河镇|S1", "sample.banned_substance|红河镇|S2"]


def test_rapid_test_fires_unqualified(replay):
    ev = sample("R1", items=[{"item": "有机磷和氨基甲酸酯类农药", "value": "阳性"}], program="rapid_test")
    notices, _, _ = replay([ev])
    [n] = of(notices, "sample.unqualified")
    check(n, level="town", severity="warning", recipients={"hh-agri", "hh-fso"})


def test_rapid_test_banned_hit_raises_banned(replay):
    ev = sample("R1", items=[{"item": "瘦肉精", "value": "阳性"}], program="rapid_test", category="畜禽肉")
    notices, _, _ = replay([ev])
    assert sample_rules(notices) == ["sample.banned_substance"]


def test_rapid_tests_do_not_count_as_repeat_offences(replay):
    events = [
        bad("R1", "2026-04-01T10:00:00", program="rapid_test", entity_id="E1"),
        bad("R2", "2026-04-02T10:00:00", program="rapid_test", entity_id="E1"),
        bad("S3", "2026-04-03T10:00:00", entity_id="E1"),
    ]
    notices, _, _ = replay(events)
    assert len(of(notices, "sample.unqualified")) == 3
    assert of(notices, "entity.repeat_offender") == []


def test_rapid_tests_do_not_count_for_pass_rates(replay):
    rapid = [bad(f"R{i}", f"2026-04-{i + 1:02d}T10:00:00", program="rapid_test") for i in range(25)]
    lab = [good(f"S{i}", f"2026-04-{i + 1:02d}T11:00:00") for i in range(18)] + [bad("SX", "2026-04-29T10:00:00")]
    notices, _, _ = replay(rapid + lab, until="2026-05-01T00:00:00")
    assert of(notices, "sample.pass_rate_low") == []  # 19 counted samples < min_samples 20; rapid ones excluded


# --------------------------------------------------------------------------- disposal overdue

def test_disposal_overdue_fires_at_due(replay):
    notices, _, _ = replay([bad("S1", "2026-01-10T10:00:00", entity="张三蔬菜店")], until="2026-04-10T10:00:00")
    [n] = of(notices, "sample.disposal_overdue")
    check(n, rule="sample.disposal_overdue", township=HH, level="county", severity="warning",
          recipients={"county-fso", "hh-agri", "hh-fso"}, at="2026-04-10T10:00:00+08:00", due=None,
          key="sample.disposal_overdue|红河镇|S1", facts={"sample_id": "S1", "entity": "张三蔬菜店"})


def test_disposal_overdue_not_before_due(replay):
    notices, _, _ = replay([bad("S1", "2026-01-10T10:00:00")], until="2026-04-10T09:59:59")
    assert of(notices, "sample.disposal_overdue") == []


@pytest.mark.parametrize("disposed_at, fires", [
    ("2026-01-20T09:00:00", False),
    ("2026-04-10T09:59:59", False),
    ("2026-04-10T10:00:00", True),   # at exactly due: late, the deadline fires first
    ("2026-04-11T08:00:00", True),
])
def test_disposal_before_due_prevents_overdue(replay, disposed_at, fires):
    notices, rejects, _ = replay([bad("S1", "2026-01-10T10:00:00"), disposal("D1", "S1", disposed_at)],
                                 until="2026-04-20T00:00:00", config_overrides={"max_jump_days": 120})
    assert rejects == []
    assert len(of(notices, "sample.disposal_overdue")) == int(fires)


def test_disposal_in_another_township_does_not_count(replay):
    notices, _, _ = replay([bad("S1", "2026-01-10T10:00:00"), disposal("D1", "S1", "2026-01-20T09:00:00", township=BQ)],
                           until="2026-04-20T00:00:00")
    assert len(of(notices, "sample.disposal_overdue")) == 1


def test_disposal_arriving_before_its_sample_counts(replay):
    events = [disposal("D1", "S1", "2026-01-10T09:00:00"), bad("S1", "2026-01-10T10:00:00")]
    notices, rejects, _ = replay(events, until="2026-04-20T00:00:00")
    assert rejects == []
    assert len(of(notices, "sample.unqualified")) == 1
    assert of(notices, "sample.disposal_overdue") == []


def test_banned_sample_gets_disposal_overdue_with_unqualified_disposal_days(replay):
    ev = sample("S1", "2026-03-01T10:00:00", items=[{"item": "氯霉素", "value": 1.0}], category="水产品")
    notices, _, _ = replay([ev], rules={"sample.unqualified": {"disposal_days": 10}}, until="2026-04-01T00:00:00")
    [b] = of(notices, "sample.banned_substance")
    check(b, due="2026-03-11T10:00:00+08:00")
    [n] = of(notices, "sample.disposal_overdue")
    check(n, at="2026-03-11T10:00:00+08:00", due=None, recipients={"county-fso", "hh-fso"})


def test_late_sample_with_due_behind_clock_gets_no_disposal_overdue(replay):
    events = [good("G1", "2026-05-01T08:00:00", township=BQ), bad("S1", "2026-01-10T10:00:00")]
    notices, rejects, _ = replay(events, until="2026-06-01T00:00:00")
    assert rejects == []
    [u] = of(notices, "sample.unqualified")
    check(u, at="2026-05-01T08:00:00+08:00", due="2026-04-10T10:00:00+08:00")  # late arrival: clock time
    assert of(notices, "sample.disposal_overdue") == []


def test_late_sample_with_due_ahead_still_gets_disposal_overdue(replay):
    events = [good("G1", "2026-02-01T08:00:00", township=BQ), bad("S1", "2026-01-10T10:00:00")]
    notices, _, _ = replay(events, until="2026-04-10T10:00:00")
    [n] = of(notices, "sample.disposal_overdue")
    check(n, at="2026-04-10T10:00:00+08:00")


@pytest.mark.parametrize("clock, until, fires", [
    ("2026-04-10T10:00:01", "2026-06-01T00:00:00", False),  # due a second behind the clock: none
    ("2026-04-10T10:00:00", "2026-06-01T00:00:00", True),   # due at the clock is not behind it
    ("2026-04-10T10:00:00", None, True),                    # ... and fires with nothing after it
    ("2026-04-10T09:59:59", "2026-06-01T00:00:00", True),
])
def test_late_sample_due_at_the_clock_still_gets_disposal_overdue(replay, clock, until, fires):
    """§6: only a due already behind the clock when the sample arrives gets no disposal_overdue."""
    events = [good("G1", clock, township=BQ), bad("S1", "2026-01-10T10:00:00")]  # due 2026-04-10T10:00
    notices, rejects, _ = replay(events, until=until)
    assert rejects == []
    found = of(notices, "sample.disposal_overdue")
    assert len(found) == int(fires)
    if fires:
        check(found[0], at="2026-04-10T10:00:00+08:00")


def test_qualified_sample_has_no_disposal_deadline(replay):
    notices, _, _ = replay([good("S1", "2026-01-10T10:00:00")], until="2026-05-01T00:00:00")
    assert of(notices, "sample.disposal_overdue") == []


# --------------------------------------------------------------------------- repeat offender

def test_second_unqualified_sample_fires_repeat(replay):
    events = [bad("S1", "2026-03-01T10:00:00", entity_id="91X"), good("S2", "2026-03-05T10:00:00", entity_id="91X"),
              bad("S3", "2026-04-10T10:00:00", entity_id="91X", entity="张三蔬菜店(新址)"),
              bad("S4", "2026-04-12T10:00:00", entity_id="91X")]
    notices, _, _ = replay(events)
    r = of(notices, "entity.repeat_offender")
    assert [n["key"] for n in r] == ["entity.repeat_offender|红河镇|S3", "entity.repeat_offender|红河镇|S4"]
    check(r[0], level="county", severity="critical", township=HH, recipients={"county-fso", "hh-agri", "hh-fso"},
          at="2026-04-10T10:00:00+08:00", facts={"count": 2, "entity": "张三蔬菜店(新址)"})
    check(r[1], facts={"count": 3, "entity": "张三蔬菜店"})


@pytest.mark.parametrize("failures, listed", [
    (2, ["S01", "S02"]),
    (10, [f"S{i:02d}" for i in range(1, 11)]),       # ten: all of them
    (11, [f"S{i:02d}" for i in range(2, 12)]),       # eleven: the latest ten
    (25, [f"S{i:02d}" for i in range(16, 26)]),
])
def test_repeat_lists_the_latest_ten_samples_and_counts_them_all(replay, failures, listed):
    """A notice lists at most the latest ten samples of its window (its message does not grow
    with an entity's year of failures); ``count`` and ``event_ids`` still cover them all."""
    events = [bad(f"S{i:02d}", f"2026-03-{i:02d}T10:00:00", entity_id="91X") for i in range(1, failures + 1)]
    notices, _, _ = replay(events)
    last = of(notices, "entity.repeat_offender")[-1]
    assert last["facts"]["sample_ids"] == listed and last["facts"]["count"] == failures
    assert last["event_ids"] == [f"S{i:02d}" for i in range(1, failures + 1)]


@pytest.mark.parametrize("first_at, fires", [
    ("2025-04-10T10:00:00", True),    # exactly 365 days: included
    ("2025-04-10T09:59:59", False),   # just outside
    ("2025-04-09T10:00:00", False),   # 366 days
])
def test_repeat_window_edges(replay, first_at, fires):
    events = [bad("S1", first_at, entity_id="91X"), bad("S2", "2026-04-10T10:00:00", entity_id="91X")]
    notices, rejects, _ = replay(events, config_overrides={"max_jump_days": 400})
    assert rejects == []
    r = of(notices, "entity.repeat_offender")
    assert len(r) == int(fires)
    if fires:
        check(r[0], facts={"count": 2})


def test_repeat_duplicates_not_counted_twice(replay):
    s1 = bad("S1", "2026-03-01T10:00:00", entity_id="91X")
    events = [s1, dict(s1), bad("S2", "2026-04-10T10:00:00", entity_id="91X")]
    notices, rejects, summary = replay(events)
    assert rejects == [] and summary.duplicates == 1
    [r] = of(notices, "entity.repeat_offender")
    check(r, facts={"count": 2})


def test_repeat_window_days_override(replay):
    events = [bad("S1", "2026-03-01T10:00:00", entity_id="91X"), bad("S2", "2026-04-10T10:00:00", entity_id="91X")]
    notices, _, _ = replay(events, rules={"entity.repeat_offender": {"window_days": 30}})
    assert of(notices, "entity.repeat_offender") == []


@pytest.mark.parametrize("first, second, fires", [
    ({"entity_id": "91X"}, {"entity_id": "91X", "entity": "别名"}, True),           # same id, other name
    ({}, {}, True),                                                                  # same name, no ids
    ({"entity_id": "91X"}, {}, False),                                              # with id vs without
    ({"entity_id": "91X"}, {"entity_id": "91Y"}, False),                            # same name, different ids
    ({"entity_id": "91X"}, {"entity_id": "91X", "township": BQ}, False),            # other township
    ({}, {"entity": "李四菜摊"}, False),
])
def test_repeat_entity_identity(replay, first, second, fires):
    events = [bad("S1", "2026-04-01T10:00:00", **first), bad("S2", "2026-04-05T10:00:00", **second)]
    notices, rejects, _ = replay(events)
    assert rejects == []
    assert len(of(notices, "entity.repeat_offender")) == int(fires)


def test_banned_samples_count_as_unqualified_for_repeat(replay):
    events = [sample("S1", "2026-04-01T10:00:00", items=[{"item": "克伦特罗", "value": 0.3}], conclusion="合格",
                     entity_id="91X", category="畜禽肉"),
              sample("S2", "2026-04-05T10:00:00", items=[{"item": "克伦特罗", "value": 0.3}], entity_id="91X",
                     category="畜禽肉")]
    notices, _, _ = replay(events)
    [r] = of(notices, "entity.repeat_offender")
    check(r, key="entity.repeat_offender|红河镇|S2", recipients={"county-fso", "hh-vet", "hh-fso"}, facts={"count": 2})
    assert len(of(notices, "sample.banned_substance")) == 2


def test_repeat_late_arrival_uses_its_event_time_window(replay):
    """Window by the late sample's own event time; the notice carries the clock's time."""
    events = [bad("S1", "2025-04-15T10:00:00", entity_id="91X"),
              good("G1", "2026-04-20T10:00:00", township=BQ),
              bad("S2", "2026-04-10T10:00:00", entity_id="91X")]
    notices, rejects, _ = replay(events, config_overrides={"max_jump_days": 400})
    assert rejects == []
    [r] = of(notices, "entity.repeat_offender")
    check(r, at="2026-04-20T10:00:00+08:00", key="entity.repeat_offender|红河镇|S2", facts={"count": 2})


def test_repeat_late_sample_earlier_than_window_end_does_not_count_later_one(replay):
    """§6: window is [t − window_days, t]; a sample later than t is not in t's window."""
    events = [bad("S2", "2026-04-10T10:00:00", entity_id="91X"), bad("S1", "2026-04-01T10:00:00", entity_id="91X")]
    notices, _, _ = replay(events)
    assert of(notices, "entity.repeat_offender") == []


# --------------------------------------------------------------------------- pass rate

def month_samples(n_total: int, n_bad: int, *, month: str = "2026-04", township: str = HH,
                  program: str | None = None, prefix: str = "P") -> list[dict[str, Any]]:
    evs = []
    for i in range(n_total):
        at = f"{month}-{i % 28 + 1:02d}T{8 + i // 28:02d}:{i % 60:02d}:00"
        extra = {"program": program} if program else {}
        mk = bad if i >= n_total - n_bad else good
        evs.append(mk(f"{prefix}{i:03d}", at, township=township, entity=f"单位{i}", **extra))
    evs.sort(key=lambda e: e["sampled_at"])
    return evs


def test_pass_rate_fires_at_first_of_month(replay):
    notices, _, _ = replay(month_samples(20, 1), until="2026-05-01T00:00:00")
    [n] = of(notices, "sample.pass_rate_low")
    check(n, rule="sample.pass_rate_low", township=HH, level="town", severity="warning", recipients={"hh-fso"},
          at="2026-05-01T00:00:00+08:00", key="sample.pass_rate_low|红河镇|food_sampling|2026-04",
          facts={"program": "food_sampling", "period": "2026-04", "rate": 0.95, "target": 0.98, "samples": 20})


def test_pass_rate_not_before_first_of_month(replay):
    notices, _, _ = replay(month_samples(20, 1), until="2026-04-30T23:59:59")
    assert of(notices, "sample.pass_rate_low") == []


@pytest.mark.parametrize("n_total, n_bad, fires", [(20, 1, True), (19, 1, False), (20, 0, False)])
def test_pass_rate_min_samples(replay, n_total, n_bad, fires):
    notices, _, _ = replay(month_samples(n_total, n_bad), until="2026-05-01T00:00:00")
    assert len(of(notices, "sample.pass_rate_low")) == int(fires)


def test_pass_rate_min_samples_override(replay):
    notices, _, _ = replay(month_samples(5, 1), rules={"sample.pass_rate_low": {"min_samples": 5}},
                           until="2026-05-01T00:00:00")
    [n] = of(notices, "sample.pass_rate_low")
    check(n, facts={"samples": 5, "rate": 0.8}, level="county", recipients={"county-fso", "hh-fso"})


@pytest.mark.parametrize("n_bad, level, recipients", [
    (7, "town", {"hh-fso"}),                   # 93/100 = 0.93 = 0.98 − 0.05: not below the margin
    (8, "county", {"county-fso", "hh-fso"}),   # 92/100
    (2, None, None),                           # 98/100 = target: not below
    (3, "town", {"hh-fso"}),
])
def test_pass_rate_county_margin_exact(replay, n_bad, level, recipients):
    notices, _, _ = replay(month_samples(100, n_bad), until="2026-05-01T00:00:00")
    found = of(notices, "sample.pass_rate_low")
    if level is None:
        assert found == []
        return
    [n] = found
    check(n, level=level, recipients=recipients, severity="warning",
          facts={"samples": 100, "rate": (100 - n_bad) / 100, "target": 0.98})


def test_pass_rate_duplicates_not_counted(replay):
    evs = month_samples(19, 1)
    evs.append(dict(evs[0]))
    notices, _, summary = replay(evs, until="2026-05-01T00:00:00")
    assert summary.duplicates == 1
    assert of(notices, "sample.pass_rate_low") == []  # 19 distinct samples < min_samples


def test_pass_rate_at_target_is_not_below(replay):
    notices, _, _ = replay(month_samples(20, 1), rules={"sample.pass_rate_low": {"targets": {"food_sampling": 0.95}}},
                           until="2026-05-01T00:00:00")
    assert of(notices, "sample.pass_rate_low") == []


def test_pass_rate_rate_has_four_decimals(replay):
    notices, _, _ = replay(month_samples(21, 1), until="2026-05-01T00:00:00")
    [n] = of(notices, "sample.pass_rate_low")
    assert isinstance(n["facts"]["rate"], (int, float))
    assert abs(n["facts"]["rate"] - 20 / 21) <= 0.00005
    check(n, facts={"samples": 21})


def test_pass_rate_per_program_and_township(replay):
    events = (month_samples(20, 1, program="agri_monitoring", prefix="A")
              + month_samples(10, 1, prefix="F")
              + month_samples(20, 0, township=BQ, prefix="B"))
    notices, _, _ = replay(sorted(events, key=lambda e: e["sampled_at"]), until="2026-05-01T00:00:00")
    [n] = of(notices, "sample.pass_rate_low")
    check(n, township=HH, level="town", key="sample.pass_rate_low|红河镇|agri_monitoring|2026-04",
          facts={"program": "agri_monitoring", "target": 0.97, "rate": 0.95, "samples": 20, "period": "2026-04"})


def test_pass_rate_counts_banned_sample_as_unqualified(replay):
    evs = month_samples(20, 0)
    evs[-1] = sample(evs[-1]["id"], evs[-1]["sampled_at"], items=[{"item": "氯霉素", "value": 0.2}], conclusion="合格")
    notices, _, _ = replay(evs, until="2026-05-01T00:00:00")
    [n] = of(notices, "sample.pass_rate_low")
    check(n, facts={"rate": 0.95, "samples": 20})


def test_pass_rate_month_by_event_time_reported_at(replay):
    evs = month_samples(19, 1)
    evs.insert(0, good("X1", "2026-03-28T10:00:00", reported_at="2026-04-01T09:00:00"))
    notices, _, _ = replay(evs, until="2026-05-01T00:00:00")
    [n] = of(notices, "sample.pass_rate_low")
    check(n, facts={"samples": 20, "period": "2026-04"})


def test_pass_rate_late_sample_for_open_month_counts(replay):
    evs = month_samples(19, 1) + [good("G1", "2026-04-29T10:00:00", township=BQ), good("L1", "2026-04-02T10:00:00")]
    notices, _, _ = replay(evs, until="2026-05-01T00:00:00")
    [n] = of(notices, "sample.pass_rate_low")
    check(n, facts={"samples": 20})


@pytest.mark.parametrize("n_total, n_bad", [(20, 0), (19, 1)])
def test_pass_rate_late_sample_for_closed_month_ignored(replay, n_total, n_bad):
    evs = month_samples(n_total, n_bad) + [good("G1", "2026-05-02T10:00:00", township=BQ),
                                           bad("L1", "2026-04-15T10:00:00", entity="迟到单位")]
    notices, rejects, _ = replay(evs, until="2026-06-01T00:00:00")
    assert rejects == []
    assert of(notices, "sample.pass_rate_low", HH) == []


def test_pass_rate_grace_days(replay):
    evs = month_samples(19, 1) + [good("G1", "2026-05-03T10:00:00", township=BQ), good("L1", "2026-04-20T10:00:00")]
    notices, _, _ = replay(evs, rules={"sample.pass_rate_low": {"grace_days": 5}}, until="2026-05-06T00:00:00")
    [n] = of(notices, "sample.pass_rate_low", HH)
    check(n, at="2026-05-06T00:00:00+08:00", key="sample.pass_rate_low|红河镇|food_sampling|2026-04",
          facts={"samples": 20, "period": "2026-04"})
    # without grace the rule ran on 05-01 over 19 samples: nothing, and the late one is ignored
    notices, _, _ = replay(evs, until="2026-05-06T00:00:00")
    assert of(notices, "sample.pass_rate_low", HH) == []


def test_pass_rate_grace_days_not_yet_run(replay):
    notices, _, _ = replay(month_samples(20, 1), rules={"sample.pass_rate_low": {"grace_days": 5}},
                           until="2026-05-05T23:59:59")
    assert of(notices, "sample.pass_rate_low") == []


def _overdue_after(events: list[dict[str, Any]], restore: Any = None) -> list[dict[str, Any]]:
    """The disposal_overdue notices of ``events`` once their deadline passed, the engine
    passed through ``restore`` (a snapshot, say) before the clock reaches it."""
    from datetime import datetime

    from conftest import TZ, config_dict
    from shian.notifiers.routing import recipients
    from shian.rules.config import parse
    from shian.rules.engine import Engine
    from shian.rules.events import Validator

    config = parse(config_dict(None, None), path="<test>")
    raised: list[Any] = []
    engine = Engine(config, recipients, raised.append, durable=True)
    validator = Validator(config.known())
    for ev in events:
        engine.admit(validator.from_object(ev))
    if restore is not None:
        engine = restore(engine, config, recipients, raised.append)
    engine.advance(datetime(2026, 5, 1, tzinfo=TZ))
    return [n.to_json() for n in raised if n.rule == "sample.disposal_overdue"]


def test_disposal_deadline_survives_a_snapshot_with_the_same_notice():
    """A disposal deadline kept compact still raises, after a snapshot and restore, the notice
    the engine raises without one: the same facts, key for key in the same order."""
    from shian.rules.engine import Engine

    events = [bad("S1", "2026-01-10T10:00:00", entity="张三蔬菜店", food="韭菜", village="东村", entity_id="E9"),
              bad("S2", "2026-01-11T10:00:00", entity="张三蔬菜店", food="韭菜")]
    plain = _overdue_after(events)
    restored = _overdue_after(events, lambda e, c, r, s: Engine.restore(e.snapshot(), c, r, s))
    assert [list(n["facts"]) for n in plain] == [["entity", "sample_id", "category", "program", "entity_id", "food",
                                                  "village", "due_days"],
                                                 ["entity", "sample_id", "category", "program", "food", "due_days"]]
    assert restored == plain


def test_disposal_deadline_of_an_earlier_snapshot_still_fires():
    """A deadline written by an earlier version (township, id, category and the facts as a
    dict) fires the same notice as one kept compact."""
    from shian.rules.families.samples import pending_facts
    from shian.rules.timers import Timers

    def as_before(engine: Any, config: Any, route: Any, sink: Any) -> Any:
        timers = Timers()
        for at, fire, arg in engine._timers.entries():
            was = getattr(fire, "__name__", "") == "_overdue"
            timers.add(at, fire, (arg[0], arg[1], arg[2], pending_facts(arg)) if was else arg)
        engine._timers = timers
        return engine

    events = [bad("S1", "2026-01-10T10:00:00", food="韭菜", village="东村")]
    assert _overdue_after(events, as_before) == _overdue_after(events)
    assert len(_overdue_after(events)) == 1
