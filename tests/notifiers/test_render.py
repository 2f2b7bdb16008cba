"""Rendering notices into Chinese 预警 / 催报 / 督办 messages (CONTRACT.md §3–§4, the
notifiers' Renderer): golden files for every rule, and the behaviour an office relies on.

The notices come from running the rules on one April of 红河镇 and 板桥镇 (the base config of
conftest), so their facts are exactly what the rule families emit. ``delivery.failed`` is made
by the delivery side and is written by hand. ``SHIAN_UPDATE_GOLDEN=1`` rewrites the goldens.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from conftest import config_dict, nid, t, write_events
from shian.notifiers.render import KINDS, Renderer, group_ref
from shian.notifiers.settings import parse as parse_settings
from shian.rules.config import parse
from shian.rules.families import RULES
from shian.streams.replay import Replay

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("SHIAN_UPDATE_GOLDEN") == "1"
RULE_OVERRIDES = {"sample.unqualified": {"disposal_days": 15}, "notice.unacknowledged": {"enabled": True}}


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
             "incident": "reported_at", "disposal": "disposed_at", "banquet": "registered_at"}[ev["type"]]
    return t(ev.get(field) or ev["sampled_at"])


_UNDELIVERED = nid("sample.unqualified|红河镇|XP-NJ-2026-0317")
DELIVERY_FAILED = {  # as notifiers.dispatch.failure_notice makes it
    "id": nid(f"delivery.failed|红河镇|{_UNDELIVERED}|hh-agri|email"),
    "rule": "delivery.failed", "severity": "warning", "level": "county", "township": "红河镇",
    "recipients": ["county-fso"],
    "title": "通知未能送达红河镇农技中心（邮件）：【预警】红河镇王建军蔬菜批发部韭菜抽检不合格，请于2026年4月18日前完成核查处置",
    "at": "2026-04-04T10:00:00+08:00", "due": None, "event_ids": [],
    "key": f"delivery.failed|红河镇|{_UNDELIVERED}|hh-agri|email",
    "facts": {"notice_id": _UNDELIVERED, "dept": "hh-agri", "dept_name": "红河镇农技中心", "channel": "email",
              "error": "550 5.1.1 <nongji@honghe.example>: Recipient address rejected: User unknown",
              "rule": "sample.unqualified"},
}


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[dict[str, Any]]]:
    """The base config (unacknowledged escalation on) and April's notices from the rules."""
    config = parse(config_dict(RULE_OVERRIDES), path="<test>")
    path = write_events(tmp_path_factory.mktemp("render") / "events.jsonl", sorted(EVENTS, key=_event_time))
    notices: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    Replay(config, lambda n: notices.append(n.to_json()), lambda r: rejects.append(r.to_json()), until=t("2026-05-01T00:00:00")).run([str(path)])
    assert not rejects, rejects
    return config, notices


@pytest.fixture(scope="module")
def renderer(month: tuple[Any, list[dict[str, Any]]]) -> Renderer:
    return Renderer(parse_settings(month[0], env={}))


@pytest.fixture(scope="module")
def by_rule(month: tuple[Any, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The first notice of every rule, plus delivery.failed."""
    out: dict[str, dict[str, Any]] = {}
    for n in month[1]:
        out.setdefault(n["rule"], n)
    out["delivery.failed"] = DELIVERY_FAILED
    return out


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with SHIAN_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} differs; SHIAN_UPDATE_GOLDEN=1 rewrites it"


def _sections(m: Any) -> str:
    return (f"== subject\n{m.subject}\n== headers\n"
            + "".join(f"{k}: {v}\n" for k, v in m.headers)
            + f"== severity\n{m.severity}\n== text\n{m.text}== markdown\n{m.markdown}")


def test_every_rule_has_a_kind_and_a_notice_in_the_month(by_rule: dict[str, dict[str, Any]]) -> None:
    assert set(RULES) | {"delivery.failed"} == set(KINDS)
    assert set(by_rule) == set(KINDS)


@pytest.mark.parametrize("rule", sorted(set(RULES) | {"delivery.failed"}))
def test_golden_notice(rule: str, renderer: Renderer, by_rule: dict[str, dict[str, Any]]) -> None:
    n = by_rule[rule]
    m = renderer.notice(n, n["recipients"][0])
    _golden(f"{rule}.txt", _sections(m))
    _golden(f"{rule}.html", m.html)


def test_golden_group_and_digest(renderer: Renderer, month: tuple[Any, list[dict[str, Any]]]) -> None:
    notices = month[1]
    unqualified = [n for n in notices if n["rule"] == "sample.unqualified"]
    g = renderer.group(unqualified, "hh-agri")
    _golden("group.txt", _sections(g))
    _golden("group.html", g.html)
    d = renderer.digest("hh-fso", date(2026, 4, 21),
                        [n for n in notices if n["at"].startswith("2026-04-21") and "hh-fso" in n["recipients"]],
                        [n for n in notices if n["due"] and n["due"] > "2026-04-22" and "hh-fso" in n["recipients"]])
    _golden("digest.txt", _sections(d))
    _golden("digest.html", d.html)


# Behaviour


def test_recipient_office_and_notice_id_in_every_format(renderer: Renderer, by_rule: dict[str, dict[str, Any]]) -> None:
    n = by_rule["sample.unqualified"]
    assert n["recipients"] == ["hh-agri", "hh-fso"]
    m = renderer.notice(n, "hh-agri")
    for body in (m.text, m.html, m.markdown):
        assert "红河镇农技中心：" in body
        assert f"通知编号：{n['id']}" in body
        assert f"shian ack {n['id']} --by hh-agri" in body
        assert "王建军蔬菜批发部" in body
    assert n["id"] in m.subject and m.subject.startswith("【预警通知】红河镇 ")
    assert (m.ref, m.notice_ids, m.dept, m.severity) == (n["id"], (n["id"],), "hh-agri", "warning")
    assert dict(m.headers) == {"X-Shian-Ref": n["id"], "X-Shian-Notice-Ids": n["id"], "X-Shian-Rule": "sample.unqualified"}


def test_issuer_is_town_office_for_town_level_and_county_office_for_county_level(
        renderer: Renderer, by_rule: dict[str, dict[str, Any]]) -> None:
    town = renderer.notice(by_rule["sample.unqualified"], "hh-agri")
    county = renderer.notice(by_rule["sample.banned_substance"], "hh-vet")
    assert by_rule["sample.unqualified"]["level"] == "town" and by_rule["sample.banned_substance"]["level"] == "county"
    assert "\n红河镇食安办\n2026年4月3日\n" in town.text and "\n县食安办\n" not in town.text
    assert '<p class="sign">红河镇食安办<br>2026年4月3日</p>' in town.html
    assert "红河镇食安办　2026年4月3日" in town.markdown
    assert "\n县食安办\n2026年4月9日\n" in county.text
    assert '<p class="sign">县食安办<br>2026年4月9日</p>' in county.html


def test_due_dates_and_rates_are_written_the_chinese_way(renderer: Renderer, by_rule: dict[str, dict[str, Any]]) -> None:
    unq = renderer.notice(by_rule["sample.unqualified"], "hh-fso").text
    assert "请于2026年4月18日前完成核查处置" in unq
    remind = renderer.notice(by_rule["report.reminder"], "hh-fso")
    assert "请通知新寨村于2026年4月25日前报送2026年4月食品安全工作月报" in remind.text
    assert remind.subject.startswith("【催报通知】")
    rate = renderer.notice(by_rule["sample.pass_rate_low"], "county-fso")
    assert by_rule["sample.pass_rate_low"]["facts"]["rate"] == pytest.approx(18 / 20)
    for body in (rate.text, rate.html, rate.markdown):
        assert "合格率：90.0%" in body or "<th>合格率</th><td>90.0%</td>" in body
        assert "97.0%" in body


def test_critical_notices_are_marked_urgent(renderer: Renderer, by_rule: dict[str, dict[str, Any]]) -> None:
    m = renderer.notice(by_rule["incident.reported"], "county-fso")
    assert m.severity == "critical" and m.subject.startswith("【紧急】【预警通知】红河镇 ")
    assert renderer.notice(by_rule["report.escalation"], "county-fso").subject.startswith("【督办通知】")


def test_html_escapes_event_text_and_keeps_chinese(renderer: Renderer, by_rule: dict[str, dict[str, Any]]) -> None:
    n = json.loads(json.dumps(by_rule["sample.unqualified"]))
    n["facts"]["entity"] = '<script>alert("x")</script>超市'
    m = renderer.notice(n, "hh-fso")
    assert "<script>" not in m.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;超市" in m.html
    assert "红河镇食安办" in m.html and "&#" not in m.html.replace("&#34;", "")
    assert '<script>alert("x")</script>超市' in m.text


def test_subject_cannot_carry_a_header_injection(renderer: Renderer, by_rule: dict[str, dict[str, Any]]) -> None:
    n = json.loads(json.dumps(by_rule["sample.unqualified"]))
    n["facts"]["entity"] = "好又多超市\r\nBcc: x@evil.example\u2028\x00"
    m = renderer.notice(n, "hh-fso")
    assert not re.search(r"[\x00-\x1f\x7f\u2028\u2029]", m.subject)
    assert "好又多超市 Bcc: x@evil.example" in m.subject
    assert not any(line.startswith("Bcc:") for line in m.text.splitlines())
    for _, value in m.headers:
        assert "\n" not in value and "\r" not in value


def test_group_lists_every_notice_under_one_ref(renderer: Renderer, month: tuple[Any, list[dict[str, Any]]],
                                                by_rule: dict[str, dict[str, Any]]) -> None:
    unq = [n for n in month[1] if n["rule"] == "sample.unqualified"]
    assert len(unq) == 2
    ids = [n["id"] for n in unq]
    g = renderer.group(list(reversed(unq)), "hh-agri")
    assert g.ref == group_ref(ids) == "g" + __import__("hashlib").sha256(",".join(sorted(ids)).encode()).hexdigest()[:15]
    assert g.notice_ids == tuple(reversed(ids))
    assert dict(g.headers)["X-Shian-Notice-Ids"] == ",".join(reversed(ids))
    assert dict(g.headers)["X-Shian-Rule"] == "sample.unqualified"
    assert g.ref in g.subject and "（共2条）" in g.subject
    for body in (g.text, g.html, g.markdown):
        for n in unq:
            assert n["id"] in body and n["facts"]["food"] in body
    one = by_rule["sample.unqualified"]
    assert renderer.group([one], "hh-agri") == renderer.notice(one, "hh-agri")
    with pytest.raises(ValueError):
        renderer.group([one, by_rule["report.overdue"]], "hh-fso")


def test_digest_lists_the_days_notices_and_open_deadlines(renderer: Renderer, by_rule: dict[str, dict[str, Any]]) -> None:
    today = [by_rule["report.overdue"], by_rule["banquet.late_registration"]]
    pending = [by_rule["sample.unqualified"]]
    d = renderer.digest("hh-fso", date(2026, 4, 10), today, pending)
    assert d.ref == "digest-hh-fso-2026-04-10" and d.severity == "info"
    assert d.notice_ids == tuple(n["id"] for n in today + pending)
    assert dict(d.headers)["X-Shian-Ref"] == d.ref
    for body in (d.text, d.html, d.markdown):
        assert "红河镇食安办" in body and "2026年4月10日" in body
        for n in today + pending:
            assert n["id"] in body
        assert "2026年4月18日" in body
    assert "还剩8天" in d.text
    empty = renderer.digest("hh-fso", date(2026, 4, 10), [], [])
    assert "无。" in empty.text and empty.notice_ids == ()


def test_output_depends_only_on_the_notice(renderer: Renderer, by_rule: dict[str, dict[str, Any]]) -> None:
    n = by_rule["entity.repeat_offender"]
    assert renderer.notice(n, "county-fso") == renderer.notice(json.loads(json.dumps(n)), "county-fso")


def test_override_folder_replaces_one_template(tmp_path: Path, month: tuple[Any, list[dict[str, Any]]],
                                               by_rule: dict[str, dict[str, Any]]) -> None:
    (tmp_path / "reports.txt").write_text(
        '{% set label = "月报催收" %}{% set detail = f.reporter %}{% set lead %}本镇专用措辞。{% endset %}'
        '{% set facts %}村：{{ f.reporter }}{% endset %}{% set action %}打电话催。{% endset %}', encoding="utf-8")
    settings = dataclasses.replace(parse_settings(month[0], env={}), templates=tmp_path)
    custom = Renderer(settings)
    m = custom.notice(by_rule["report.overdue"], "hh-fso")
    assert "本镇专用措辞。" in m.text and "打电话催。" in m.markdown and "<th>村</th><td>新寨村</td>" in m.html
    assert "【催报通知】红河镇 月报催收：新寨村" in m.subject
    assert custom.notice(by_rule["sample.unqualified"], "hh-fso") == Renderer(parse_settings(month[0], env={})).notice(
        by_rule["sample.unqualified"], "hh-fso")


def test_unknown_rule_still_renders(renderer: Renderer, by_rule: dict[str, dict[str, Any]]) -> None:
    n = dict(by_rule["report.overdue"], rule="report.new_kind", title="【提醒】新规则的通知")
    m = renderer.notice(n, "hh-fso")
    assert "新规则的通知" in m.subject and "新寨村" in m.text
