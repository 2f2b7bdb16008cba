"""A small register (台账) in the example county, for the 检查频次 page and report sheet tests.

Quarterly checks 04-01 / 07-01 / 10-01 / 12-01 at 09:00 (examples/county.yaml), default
per_year A 1, B 2, C 3, D 4; seen at :data:`NOW`, 10 July 2026 (the 1 July check passed):

- 红河镇 E1 中心学校食堂 D (2020): one inspection (5 May) → 1 July needs 2: behind, as it was on
  1 April (needs 1, had 0); E2 红旗饭店 A (2020), inspected 10 March: needs 1, had 1;
  E3 新开超市 C, first registered 2026: not counted; E4 老街早点 B, closed (注销) in March:
  not counted (but in business on 1 December 2025);
- 板桥镇 E5 惠民购物广场 B (2021), inspected 1 March and 1 June: needs 1, had 2.

The 1 April notice of E1 (:data:`F1`) was signed for on 2 April by 红河镇食安办 and closed on
20 April, after its deadline (10 working days: 17 April inclusive), so notice.unresolved
followed it up.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from shian.rules.notice import notice_id

TZ = timezone(timedelta(hours=8))
NOW = datetime(2026, 7, 10, 10, 0, tzinfo=TZ)
HH, BQ = "红河镇", "板桥镇"


def reg(rid: str, township: str, name: str, eid: str, kind: str, risk: str, at: str, **kw: Any) -> dict[str, Any]:
    return {"type": "entity", "id": rid, "township": township, "entity": name, "entity_id": eid,
            "entity_type": kind, "risk_level": risk, "registered_at": at, **kw}


def insp(iid: str, township: str, name: str, eid: str, kind: str, at: str) -> dict[str, Any]:
    return {"type": "inspection", "id": iid, "township": township, "entity": name, "entity_id": eid,
            "entity_type": kind, "inspected_at": at, "inspection_type": "日常检查", "outcome": "合格"}


REGISTER = [
    reg("HH-TZ-1", HH, "中心学校食堂", "E1", "学校食堂", "D", "2020-03-01"),
    reg("HH-TZ-2", HH, "红旗饭店", "E2", "餐饮服务", "A", "2020-03-01"),
    reg("HH-TZ-3", HH, "新开超市", "E3", "食品销售", "C", "2026-02-01"),
    reg("HH-TZ-4", HH, "老街早点", "E4", "餐饮服务", "B", "2019-05-01"),
    reg("HH-TZ-4", HH, "老街早点", "E4", "餐饮服务", "B", "2026-03-15", status="注销"),
    reg("BQ-TZ-5", BQ, "惠民购物广场", "E5", "食品销售", "B", "2021-06-01"),
]
F1 = "inspection.frequency_due|红河镇|E1|2026-04-01"


def events() -> list[dict[str, Any]]:
    n1 = notice_id(F1)
    return [
        *REGISTER,
        insp("BQ-1", BQ, "惠民购物广场", "E5", "食品销售", "2026-03-01T10:00:00"),
        insp("HH-2", HH, "红旗饭店", "E2", "餐饮服务", "2026-03-10T10:00:00"),
        {"type": "monthly_report", "id": "R1", "township": HH, "reporter": "红河村", "period": "2026-03",
         "submitted_at": "2026-04-01T10:00:00"},
        {"type": "ack", "id": "A1", "township": HH, "notice_id": n1, "by": "hh-fso", "action": "签收",
         "acked_at": "2026-04-02T09:00:00"},
        {"type": "ack", "id": "A2", "township": HH, "notice_id": n1, "by": "hh-fso", "action": "办结",
         "acked_at": "2026-04-20T10:00:00", "note": "已补查"},
        insp("HH-1", HH, "中心学校食堂", "E1", "学校食堂", "2026-05-05T10:00:00"),
        insp("BQ-2", BQ, "惠民购物广场", "E5", "食品销售", "2026-06-01T10:00:00"),
    ]




def fill(svc: Any) -> None:
    """Every event on event time, then the service's clock (NOW) fires the checks up to it."""
    for ev in events():
        out = svc.accept_object(ev, "register_county", mode="event")
        if out.status != "accepted":
            raise AssertionError(f"fixture event {ev['id']} not accepted: {out.status} {out.reason}")
    svc.tick()
