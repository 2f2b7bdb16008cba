"""Register rows (``entity`` events) in the embedded service: a backfill that starts with the
register, recovery from the journal, and live rows dated ahead of the wall clock."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from office_support import county, make_service  # noqa: F401  (a fixture)
from shian.rules.timeutil import fmt

TZ = ZoneInfo("Asia/Shanghai")


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def register(rid: str, at: str, risk: str = "D", **kw) -> dict:
    ev = {"type": "entity", "id": rid, "township": "红河镇", "entity": "阳光餐馆", "entity_id": "91YG",
          "entity_type": "餐饮服务", "risk_level": risk, "registered_at": at}
    ev.update(kw)
    return ev


def test_backfill_starting_with_the_register_then_recovery(make_service, tmp_path: Path):
    """The register before any other event is journalled, counted from the clock start, and
    a restarted service neither loses it nor raises its notice twice."""
    events = tmp_path / "backfill.jsonl"
    lines = [register("R1", "2019-03-01"),
             {"type": "inspection", "id": "I1", "inspected_at": "2026-06-20T10:00:00", "township": "红河镇",
              "entity": "阳光餐馆", "entity_id": "91YG", "entity_type": "餐饮服务", "inspection_type": "日常检查",
              "outcome": "合格"}]
    events.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in lines), encoding="utf-8")
    clock = Clock(datetime(2026, 7, 2, 12, 0, tzinfo=TZ))
    svc = make_service(now=clock)
    assert svc.backfill([str(events)])["accepted"] == 2
    [due] = [n for n in svc.outbox.notices() if n.rule == "inspection.frequency_due"]
    assert (fmt(due.at), due.facts["done"], due.facts["required"]) == ("2026-07-01T09:00:00+08:00", 1, 2)
    assert [e["id"] for e in svc.store.events()] == ["R1", "I1"]

    again = make_service(now=clock)  # no snapshot since: rebuilt from the journal
    again.tick()
    assert [n.rule for n in again.outbox.notices()].count("inspection.frequency_due") == 1
    assert again.accept_object(register("R1", "2019-03-01"), "test").status == "duplicate"


def test_live_register_row_dated_ahead_is_accepted(make_service):
    """Register rows are not held against the live one-day check (a grading may take effect later)."""
    svc = make_service(now=Clock(datetime(2026, 6, 2, 10, 0, tzinfo=TZ)))
    assert svc.accept_object(register("R1", "2026-09-01", "C"), "feed:register").status == "accepted"
    assert svc.accept_object(register("R1", "2026-08-01", "B"), "feed:register").status == "rejected"
