"""A small known-answer data set for the example county (examples/county.yaml), April 2026.

Shared by the figures, report, ledger and dashboard tests, so each of them checks the same
answers. Fill a Service with :func:`fill` (event time, as a backfill) and give it
``now=lambda: NOW`` so the deadlines up to NOW (overdue reports, the pass-rate judgement of
April, 劳动节, the disposal deadline) have fired.

What is in it (all of it in 2026-04 unless said):

- 红河镇 food_sampling: 20 samples, 19 qualified (95.0%, below 98%); the unqualified one is
  ``HH-SP-2604-08`` of an entity named like a spreadsheet formula (:data:`FORMULA_ENTITY`),
  without a disposal (overdue: due 04-23 with the example's 15 disposal days). One more
  sample taken 04-29 but reported 05-03 counts in May. 10 agri_monitoring samples, all
  qualified; 5 rapid tests, which count nowhere.
- 板桥镇 food_sampling: 20 of 20; agri_monitoring: 9 of 10 (90.0%, below 97%): the
  unqualified one, ``BQ-NJ-2604-05``, says 结论 合格 but has a 克伦特罗 hit, so the verdict is
  不合格; it has a disposal on 04-20.
- Monthly reports for 2026-04: 红河镇 红河村 late (04-27), 新寨村 missing, 坝心村 on the due
  day (on time), 镇卫生院 and 中心学校 on time; 板桥镇 all on time; other townships none.
  For 2026-05 only 红河镇 镇卫生院 has reported (on time; the month is not yet due).
- Inspections: a 节前联合检查 in 红河镇 on 04-28 (before 劳动节), none in 板桥镇; health
  certificates 红河镇 27/28 (96.4%), 板桥镇 22/24 (91.7%, below 95%).
- Acks: on the two sample notices (one with a note that looks like a formula).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from shian.rules.config import Config, load
from shian.rules.notice import notice_id

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "county.yaml"
TZ = timezone(timedelta(hours=8))
NOW = datetime(2026, 5, 10, 10, 0, tzinfo=TZ)
MONTH = "2026-04"
MONTHS = ["2026-04", "2026-05"]

FORMULA_ENTITY = "=cmd|' /C calc'!A0"
FORMULA_NOTE = "=1+1 已控制同批次产品"

HH_UNQUALIFIED = "HH-SP-2604-08"
BQ_UNQUALIFIED = "BQ-NJ-2604-05"
HH_NOTICE = notice_id(f"sample.unqualified|红河镇|{HH_UNQUALIFIED}")
BQ_NOTICE = notice_id(f"sample.banned_substance|板桥镇|{BQ_UNQUALIFIED}")

EXPECTED_HONGHE_FOOD = (19, 20)
EXPECTED_HONGHE_FOOD_RATE = "95.0%"
EXPECTED_HONGHE_FOOD_MAY = (1, 1)
EXPECTED_BANQIAO_FOOD = (20, 20)
EXPECTED_BANQIAO_AGRI = (9, 10)
EXPECTED_BANQIAO_AGRI_RATE = "90.0%"
EXPECTED_HONGHE_AGRI = (10, 10)
#: (township, program) → below target in 2026-04
EXPECTED_BELOW = {("红河镇", "food_sampling"): True, ("红河镇", "agri_monitoring"): False,
                  ("板桥镇", "food_sampling"): False, ("板桥镇", "agri_monitoring"): True}

#: (township, reporter) → status for 2026-04 at NOW
EXPECTED_REPORTS = {
    ("红河镇", "红河村"): "late", ("红河镇", "新寨村"): "missing", ("红河镇", "坝心村"): "on_time",
    ("红河镇", "镇卫生院"): "on_time", ("红河镇", "中心学校"): "on_time",
    ("板桥镇", "板桥村"): "on_time", ("板桥镇", "石桥村"): "on_time", ("板桥镇", "东庄村"): "on_time",
    ("板桥镇", "镇卫生院"): "on_time", ("出山镇", "出山村"): "missing",
}
#: (township, reporter) → status for 2026-05 at NOW
EXPECTED_REPORTS_MAY = {("红河镇", "镇卫生院"): "on_time", ("红河镇", "红河村"): "pending"}
EXPECTED_HONGHE_LATE_SUBMITTED = "2026-04-27T10:00:00+08:00"

#: township → (batches in 2026 up to NOW, yearly target); rapid tests do not count
EXPECTED_PACE = {"红河镇": (31, 120), "板桥镇": (30, 168), "出山镇": (0, 224)}
#: 2026-05-10 is day 130 of 365: 红河镇 target to date 120 × 130 / 365
EXPECTED_HONGHE_TARGET_TO_DATE = "42.7"

#: township → (staff with health certificate, staff) in 2026-04 inspections
EXPECTED_HEALTH = {"红河镇": (27, 28), "板桥镇": (22, 24)}
EXPECTED_HEALTH_BELOW = {"红河镇": False, "板桥镇": True}

#: (township, holiday) → 节前联合检查 done in 2026
EXPECTED_CAMPAIGNS = {("红河镇", "劳动节"): True, ("板桥镇", "劳动节"): False}

#: sample id → disposal status at NOW
EXPECTED_DISPOSALS = {HH_UNQUALIFIED: "overdue", BQ_UNQUALIFIED: "disposed"}


def _item(value: float, limit: float, name: str = "毒死蜱", unit: str = "mg/kg") -> dict[str, Any]:
    return {"item": name, "value": value, "unit": unit, "limit": limit}


def _samples() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n in range(1, 21):
        s = {"type": "sampling_result", "id": f"HH-SP-2604-{n:02d}", "program": "food_sampling",
             "township": "红河镇", "village": "红河村", "sampled_at": f"2026-04-{n:02d}T09:00:00",
             "entity": f"红河镇食品店{n:02d}", "category": "蔬菜", "food": "韭菜",
             "items": [_item(0.01, 0.1)]}
        if s["id"] == HH_UNQUALIFIED:
            s.update(entity=FORMULA_ENTITY, category="畜禽肉", food="猪肉",
                     items=[_item(180, 100, "恩诺沙星", "μg/kg")])
        out.append(s)
    out.append({"type": "sampling_result", "id": "HH-SP-2604-21", "program": "food_sampling",
                "township": "红河镇", "sampled_at": "2026-04-29T09:00:00", "reported_at": "2026-05-03T09:00:00",
                "entity": "红河镇粮油店", "category": "粮食", "food": "大米", "items": [_item(0.01, 0.2, "镉")],
                "conclusion": "合格"})
    for n in range(1, 11):
        out.append({"type": "sampling_result", "id": f"HH-NJ-2604-{n:02d}", "program": "agri_monitoring",
                    "township": "红河镇", "sampled_at": f"2026-04-{n + 10:02d}T10:00:00",
                    "entity": f"红河蔬菜基地{n:02d}", "category": "蔬菜", "food": "芹菜",
                    "items": [_item(0.02, 0.05)]})
    for n in range(1, 6):
        out.append({"type": "sampling_result", "id": f"HH-KJ-2604-{n:02d}", "program": "rapid_test",
                    "township": "红河镇", "sampled_at": f"2026-04-{n + 2:02d}T11:00:00",
                    "entity": f"红河农贸市场摊位{n:02d}", "category": "蔬菜", "food": "菠菜",
                    "items": [{"item": "有机磷和氨基甲酸酯类农药", "value": "阴性", "result": "合格"}],
                    "conclusion": "合格"})
    for n in range(1, 21):
        out.append({"type": "sampling_result", "id": f"BQ-SP-2604-{n:02d}", "program": "food_sampling",
                    "township": "板桥镇", "sampled_at": f"2026-04-{n:02d}T14:00:00",
                    "entity": f"板桥超市{n:02d}", "category": "水果", "food": "苹果",
                    "items": [_item(0.01, 0.5, "多菌灵")], "conclusion": "合格"})
    for n in range(1, 11):
        s = {"type": "sampling_result", "id": f"BQ-NJ-2604-{n:02d}", "program": "agri_monitoring",
             "township": "板桥镇", "sampled_at": f"2026-04-{n + 3:02d}T15:00:00",
             "entity": f"板桥养殖场{n:02d}", "entity_id": f"92411721MA4BQ{n:04d}", "category": "畜禽肉",
             "food": "猪肉", "items": [_item(0, 0, "克伦特罗", "μg/kg")], "conclusion": "合格"}
        if s["id"] == BQ_UNQUALIFIED:
            s["items"] = [_item(0.8, 0, "克伦特罗", "μg/kg")]
        out.append(s)
    return out


def _inspections() -> list[dict[str, Any]]:
    def insp(i: str, tw: str, at: str, entity: str, kind: str, itype: str, **more: Any) -> dict[str, Any]:
        return {"type": "inspection", "id": i, "township": tw, "inspected_at": at, "entity": entity,
                "entity_type": kind, "inspection_type": itype, "outcome": "合格", **more}

    return [
        insp("HH-JC-2604-01", "红河镇", "2026-04-02T08:30:00", "红河镇中心学校食堂", "学校食堂", "日常检查",
             staff_total=8, staff_with_health_cert=8),
        insp("HH-JC-2604-02", "红河镇", "2026-04-15T10:00:00", "红河饭庄", "餐饮服务", "双随机",
             staff_total=20, staff_with_health_cert=19),
        insp("HH-JC-2604-03", "红河镇", "2026-04-28T09:00:00", "红河农贸市场", "集贸市场", "节前联合检查"),
        insp("BQ-JC-2604-01", "板桥镇", "2026-04-03T09:30:00", "惠民购物广场", "食品销售", "日常检查",
             staff_total=14, staff_with_health_cert=14),
        insp("BQ-JC-2604-02", "板桥镇", "2026-04-16T11:00:00", "老街饭店", "餐饮服务", "日常检查",
             staff_total=10, staff_with_health_cert=8),
    ]


def _reports() -> list[dict[str, Any]]:
    def rep(tw: str, reporter: str, period: str, at: str) -> dict[str, Any]:
        return {"type": "monthly_report", "id": f"{tw}-{reporter}-{period}", "township": tw,
                "reporter": reporter, "period": period, "submitted_at": at}

    return [
        rep("红河镇", "镇卫生院", "2026-04", "2026-04-20T09:00:00"),
        rep("红河镇", "中心学校", "2026-04", "2026-04-24T16:00:00"),
        rep("红河镇", "坝心村", "2026-04", "2026-04-25T18:00:00"),
        rep("红河镇", "红河村", "2026-04", "2026-04-27T10:00:00"),
        *(rep("板桥镇", r, "2026-04", "2026-04-22T15:00:00") for r in ("板桥村", "石桥村", "东庄村", "镇卫生院")),
        rep("红河镇", "镇卫生院", "2026-05", "2026-05-08T09:00:00"),
    ]


def _follow_up() -> list[dict[str, Any]]:
    return [
        {"type": "disposal", "id": "BQ-CZ-2604-01", "township": "板桥镇", "sample_id": BQ_UNQUALIFIED,
         "disposed_at": "2026-04-20T17:00:00", "measures": ["下架", "立案"]},
        {"type": "ack", "id": "ack-hh-vet-1", "township": "红河镇", "notice_id": HH_NOTICE, "by": "hh-vet",
         "action": "签收", "acked_at": "2026-04-08T16:00:00", "note": FORMULA_NOTE},
        {"type": "ack", "id": "ack-bq-vet-1", "township": "板桥镇", "notice_id": BQ_NOTICE, "by": "bq-vet",
         "action": "签收", "acked_at": "2026-04-09T09:00:00"},
        {"type": "ack", "id": "ack-bq-vet-2", "township": "板桥镇", "notice_id": BQ_NOTICE, "by": "bq-vet",
         "action": "办结", "acked_at": "2026-04-20T17:30:00", "note": "已下架并立案查处"},
    ]


_TIME_FIELDS = ("reported_at", "sampled_at", "inspected_at", "submitted_at", "disposed_at", "acked_at")


def _time(ev: dict[str, Any]) -> str:
    return next(ev[f] for f in _TIME_FIELDS if f in ev)


def events() -> list[dict[str, Any]]:
    """All fixture events, in event-time order (as a backfill would run them)."""
    return sorted([*_samples(), *_inspections(), *_reports(), *_follow_up()], key=_time)


def config() -> Config:
    """The example county's config as loaded from examples/county.yaml (for the figures; a
    Service built by the ``make_service`` fixture has the same townships and rules)."""
    return load(EXAMPLE)


def fill(svc: Any) -> None:
    """Accept every fixture event on event time, then let the service's clock (NOW) fire the
    deadlines up to it."""
    for ev in events():
        out = svc.accept_object(ev, "known_county", mode="event")
        if out.status != "accepted":
            raise AssertionError(f"fixture event {ev['id']} not accepted: {out.status} {out.reason}")
    svc.tick()
