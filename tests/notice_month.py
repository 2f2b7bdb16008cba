"""One April of 红河镇 and 板桥镇 (the base config of conftest) through the rules: a notice of
every rule with exactly the facts the families emit, plus a ``delivery.failed`` notice and a
closing word (``notice.resolved``) written by hand as the delivery side makes them. Shared by
the renderer's golden tests and the test that every page and message names a rule alike."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import TZ, config_dict, nid, t, write_events
from shian.rules.config import Config, parse
from shian.rules.notice import Notice
from shian.streams.replay import Replay

RULE_OVERRIDES = {"sample.unqualified": {"disposal_days": 15}, "notice.unacknowledged": {"enabled": True},
                  "notice.unresolved": {"enabled": True}, "sample.lab_late": {"enabled": True},
                  "sample.rapid_unconfirmed": {"enabled": True},
                  "inspection.frequency_due": {"checks": {"04-27": 0.5, "12-01": 1.0}}}


def _sample(sid: str, at: str, entity: str, food: str, items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    ev = {"type": "sampling_result", "id": sid, "program": "agri_monitoring", "township": "红河镇",
          "village": "新寨村", "sampled_at": at, "reported_at": at, "entity": entity, "category": "蔬菜",
          "food": food, "items": items}
    ev.update(extra)
    return ev


def _qualified(i: int) -> dict[str, Any]:
    return _sample(f"HH-NJ-2026-{100 + i}", f"2026-04-{2 + i:02d}T15:00:00", f"新寨村蔬菜种植户{i}", "白菜",
                   [{"item": "毒死蜱", "value": "未检出", "unit": "mg/kg", "limit": 0.02}])


EVENTS: list[dict[str, Any]] = [
    {"type": "entity", "id": "HH-TZ-0007", "township": "红河镇", "entity": "红河镇中心学校食堂", "entity_type": "学校食堂",
     "risk_level": "D", "registered_at": "2023-09-01"},
    {"type": "entity", "id": "HH-TZ-0012", "township": "红河镇", "entity": "兴旺饭店", "entity_id": "92411721MA45D8JL6R",
     "entity_type": "餐饮服务", "risk_level": "C", "registered_at": "2022-05-10"},
    {"type": "entity", "id": "HH-TZ-0031", "township": "红河镇", "entity": "坝心村张记豆腐坊", "entity_type": "小作坊",
     "risk_level": "A", "registered_at": "2025-03-15"},
    {"type": "sampling_result", "id": "BQ-KJ-20260416-03", "program": "rapid_test", "township": "板桥镇",
     "village": "板桥村", "sampled_at": "2026-04-16T10:00:00", "entity": "板桥村李记肉铺", "category": "畜禽肉",
     "food": "猪肉", "items": [{"item": "克伦特罗（瘦肉精）", "value": "阳性"}]},
    {"type": "sampling_result", "id": "BQ-KJ-20260401-01", "program": "rapid_test", "township": "板桥镇",
     "village": "板桥村", "sampled_at": "2026-04-01T09:00:00", "entity": "板桥村农贸市场", "category": "蔬菜",
     "food": "菠菜", "items": [{"item": "有机磷和氨基甲酸酯类农药", "value": "阴性"}]},
    *[_qualified(i) for i in range(18)],
    _sample("XP-NJ-2026-0317", "2026-04-03T10:00:00", "王建军蔬菜批发部", "韭菜",
            [{"item": "腐霉利", "value": 0.86, "unit": "mg/kg", "limit": 0.2, "result": "不合格"}],
            entity_id="92411721MA44KQ9T1F"),
    {"type": "banquet", "id": "HH-YX-2026-011", "township": "红河镇", "village": "红河村", "host": "张玉山",
     "held_at": "2026-04-11T11:30:00", "registered_at": "2026-04-07T09:30:00", "guests": 160,
     "chef": "王留根", "chef_health_cert": True},
    {"type": "inspection", "id": "HH-JC-20260408-02", "township": "红河镇", "village": "坝心村",
     "inspected_at": "2026-04-08T10:15:00", "entity": "坝心村张记豆腐坊", "entity_type": "小作坊",
     "inspection_type": "日常检查", "license_valid": False,
     "findings": ["未取得食品小作坊登记证", "生产车间地面积水，防蝇设施缺失"], "outcome": "限期整改",
     "rectify_by": "2026-04-20"},
    {"type": "sampling_result", "id": "XP-JC-2026-0352", "program": "food_sampling", "township": "红河镇",
     "village": "红河村", "sampled_at": "2026-04-02", "reported_at": "2026-04-09T10:00:00", "entity": "刘记鲜肉店",
     "entity_id": "92411721MA47M6WE2U", "category": "畜禽肉", "food": "猪肝",
     "items": [{"item": "克伦特罗", "value": 1.2, "unit": "μg/kg", "limit": None, "result": "不合格"}]},
    {"type": "ack", "id": "HH-QS-2026-031", "township": "红河镇", "notice_id": nid("sample.unqualified|红河镇|XP-NJ-2026-0317"),
     "by": "hh-agri", "action": "签收", "acked_at": "2026-04-10T09:00:00", "note": "已安排核查"},
    {"type": "sampling_result", "id": "XP-JC-2026-0298", "program": "food_sampling", "township": "红河镇",
     "village": "新寨村", "sampled_at": "2026-03-10", "reported_at": "2026-04-14T10:00:00", "entity": "新寨村好又多超市",
     "category": "粮食", "food": "大米", "items": [{"item": "镉", "value": 0.05, "unit": "mg/kg", "limit": 0.2}]},
    {"type": "disposal", "id": "HH-CZ-2026-004", "township": "红河镇", "sample_id": "XP-JC-2026-0352",
     "disposed_at": "2026-04-12T16:00:00", "measures": ["下架", "立案"]},
    {"type": "inspection", "id": "HH-JC-20260415-03", "township": "红河镇", "village": "红河村",
     "inspected_at": "2026-04-15T11:00:00", "entity": "兴旺饭店", "entity_id": "92411721MA45D8JL6R",
     "entity_type": "餐饮服务", "inspection_type": "双随机", "license_valid": True, "staff_total": 10,
     "staff_with_health_cert": 8, "grade": "B", "findings": ["2名帮厨无健康证明", "留样记录不全"],
     "outcome": "限期整改", "rectify_by": "2026-04-29"},
    {"type": "incident", "id": "HH-SJ-2026-002", "township": "红河镇", "occurred_at": "2026-04-18T19:30:00",
     "reported_at": "2026-04-19T07:40:00", "kind": "食物中毒", "cases": 23, "deaths": 0, "grade": "Ⅳ"},
    {"type": "monthly_report", "id": "HH-YB-2026-04-01", "township": "红河镇", "reporter": "红河村",
     "period": "2026-04", "submitted_at": "2026-04-20T16:00:00"},
    {"type": "inspection", "id": "HH-JC-20260420-01", "township": "红河镇", "village": "红河村",
     "inspected_at": "2026-04-20T10:00:00", "entity": "红河镇中心学校食堂", "entity_type": "学校食堂",
     "inspection_type": "专项检查", "license_valid": True, "staff_total": 6, "staff_with_health_cert": 6,
     "findings": ["使用超过保质期的食品原料", "未落实食品留样"], "outcome": "责令停业"},
    {"type": "inspection", "id": "HH-JC-20260423-01", "township": "红河镇", "village": "红河村",
     "inspected_at": "2026-04-23T09:00:00", "entity": "红河农贸市场", "entity_type": "集贸市场",
     "inspection_type": "节前联合检查", "outcome": "合格"},
    _sample("XP-NJ-2026-0421", "2026-04-24T10:00:00", "王建军蔬菜批发部", "豇豆",
            [{"item": "灭蝇胺", "value": 0.9, "unit": "mg/kg", "limit": 0.5, "result": "不合格"}],
            entity_id="92411721MA44KQ9T1F"),
    {"type": "monthly_report", "id": "HH-YB-2026-04-03", "township": "红河镇", "reporter": "镇卫生院",
     "period": "2026-04", "submitted_at": "2026-04-27T10:00:00"},
    {"type": "inspection", "id": "HH-JC-20260428-01", "township": "红河镇", "village": "红河村",
     "inspected_at": "2026-04-28T10:00:00", "entity": "兴旺饭店", "entity_id": "92411721MA45D8JL6R",
     "entity_type": "餐饮服务", "inspection_type": "复查", "license_valid": True, "staff_total": 10,
     "staff_with_health_cert": 10, "outcome": "合格"},
    {"type": "banquet", "id": "HH-YX-2026-019", "township": "红河镇", "village": "坝心村", "host": "罗兴旺",
     "held_at": "2026-05-01T11:30:00", "registered_at": "2026-04-30T18:00:00", "guests": 90,
     "chef": "杨正贵", "chef_health_cert": False},
]

def _event_time(ev: dict[str, Any]) -> Any:
    field = {"sampling_result": "reported_at", "inspection": "inspected_at", "monthly_report": "submitted_at",
             "incident": "reported_at", "disposal": "disposed_at", "banquet": "registered_at",
             "ack": "acked_at", "entity": "registered_at"}[ev["type"]]
    return t(ev.get(field) or ev["sampled_at"])


_UNDELIVERED = nid("sample.unqualified|红河镇|XP-NJ-2026-0317")
DELIVERY_FAILED = Notice.from_json({  # as notifiers.dispatch.failure_notice makes it
    "id": nid(f"delivery.failed|红河镇|{_UNDELIVERED}|hh-agri|email"),
    "rule": "delivery.failed", "severity": "warning", "level": "county", "township": "红河镇",
    "recipients": ["county-fso"],
    "title": "通知未能送达红河镇农技中心（邮件）：【预警】红河镇王建军蔬菜批发部韭菜抽检不合格，请于2026年4月18日前完成核查处置",
    "at": "2026-04-04T10:00:00+08:00", "due": None, "event_ids": [],
    "key": f"delivery.failed|红河镇|{_UNDELIVERED}|hh-agri|email",
    "facts": {"notice_id": _UNDELIVERED, "dept": "hh-agri", "dept_name": "红河镇农技中心", "channel": "email",
              "error": "550 5.1.1 <nongji@honghe.example>: Recipient address rejected: User unknown",
              "rule": "sample.unqualified"},
}, TZ)


RESOLVED = Notice.from_json({  # as notifiers.resolved.closing_notice makes it for CLOSING_ACK
    "id": nid(f"notice.resolved|红河镇|{_UNDELIVERED}"),
    "rule": "notice.resolved", "severity": "info", "level": "town", "township": "红河镇",
    "recipients": ["hh-fso"],
    "title": f"红河镇农技中心已办结通知 {_UNDELIVERED}（样品抽检不合格）",
    "at": "2026-04-16T15:20:00+08:00", "due": None, "event_ids": ["close-hh-agri-0317"],
    "key": f"notice.resolved|红河镇|{_UNDELIVERED}",
    "facts": {"notice_id": _UNDELIVERED, "notice_rule": "sample.unqualified",
              "notice_title": "【预警】红河镇王建军蔬菜批发部韭菜抽检不合格，请于2026年4月18日前完成核查处置",
              "notice_at": "2026-04-03T10:00:00+08:00", "closed_by": "hh-agri", "closed_by_name": "红河镇农技中心",
              "closed_at": "2026-04-16T15:20:00+08:00", "note": "已下架韭菜12.5公斤并监督销毁，责令该批发部落实进货查验"},
}, TZ)
CLOSING_ACK = {"type": "ack", "id": "close-hh-agri-0317", "township": "红河镇", "notice_id": _UNDELIVERED,
               "by": "hh-agri", "action": "办结", "acked_at": "2026-04-16T15:20:00",
               "note": "已下架韭菜12.5公斤并监督销毁，责令该批发部落实进货查验"}


def april(folder: Path) -> tuple[Config, list[Notice]]:
    """The base config (unacknowledged escalation on) and April's notices from the rules."""
    config = parse(config_dict(RULE_OVERRIDES), path="<test>")
    path = write_events(folder / "events.jsonl", sorted(EVENTS, key=_event_time))
    notices: list[Notice] = []
    rejects: list[dict[str, Any]] = []
    Replay(config, notices.append, lambda r: rejects.append(r.to_json()), until=t("2026-05-01T00:00:00")).run([str(path)])
    assert not rejects, rejects
    return config, notices


def first_of_each_rule(notices: list[Notice]) -> dict[str, Notice]:
    """The first notice of every rule, plus delivery.failed and a closing word (notice.resolved)."""
    out: dict[str, Notice] = {}
    for n in notices:
        out.setdefault(n.rule, n)
    out["delivery.failed"] = DELIVERY_FAILED
    out["notice.resolved"] = RESOLVED
    return out
