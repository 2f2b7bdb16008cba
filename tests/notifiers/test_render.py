"""Rendering notices into Chinese 预警 / 催报 / 督办 messages (CONTRACT.md §3–§4, the
notifiers' Renderer): golden files for every rule, and the behaviour an office relies on.

The notices come from running the rules on one April of 红河镇 and 板桥镇 (``notice_month``),
so their facts are exactly what the rule families emit. ``delivery.failed`` is made by the
delivery side and is written by hand. ``SHIAN_UPDATE_GOLDEN=1`` rewrites the goldens.
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

from notice_month import april, first_of_each_rule
from shian.notifiers.render import NOTIFIER_RULES, PACKAGED, Renderer, group_ref, spec_of
from shian.notifiers.settings import parse as parse_settings
from shian.rules.families import RULES
from shian.rules.notice import Notice
from shian.rules.params import DOCUMENTS

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("SHIAN_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Notice]]:
    """The base config (unacknowledged escalation on) and April's notices from the rules."""
    return april(tmp_path_factory.mktemp("render"))


@pytest.fixture(scope="module")
def renderer(month: tuple[Any, list[Notice]]) -> Renderer:
    return Renderer(parse_settings(month[0], env={}))


@pytest.fixture(scope="module")
def by_rule(month: tuple[Any, list[Notice]]) -> dict[str, Notice]:
    """The first notice of every rule, plus delivery.failed."""
    return first_of_each_rule(month[1])


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


EVERY_RULE = {**RULES, **NOTIFIER_RULES}


def test_every_rule_has_a_spec_with_kind_name_and_template_and_a_notice_in_the_month(
        by_rule: dict[str, Notice]) -> None:
    """The families' rules and delivery.failed each have a spec (kind, name, packaged template)."""
    assert "delivery.failed" in EVERY_RULE and set(by_rule) == set(EVERY_RULE)
    for rule, spec in EVERY_RULE.items():
        assert spec_of(rule) is spec and spec.document in DOCUMENTS.values() and spec.summary, rule
        assert (PACKAGED / f"{spec.template}.txt").is_file(), rule


@pytest.mark.parametrize("rule", sorted(EVERY_RULE))
def test_golden_notice(rule: str, renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    n = by_rule[rule]
    m = renderer.notice(n, n.recipients[0])
    _golden(f"{rule}.txt", _sections(m))
    _golden(f"{rule}.html", m.html)


def test_golden_group_and_digest(renderer: Renderer, month: tuple[Any, list[Notice]]) -> None:
    notices = month[1]
    unqualified = [n for n in notices if n.rule == "sample.unqualified"]
    g = renderer.group(unqualified, "hh-agri")
    _golden("group.txt", _sections(g))
    _golden("group.html", g.html)
    d = renderer.digest("hh-fso", date(2026, 4, 21),
                        [n for n in notices if n.at.date() == date(2026, 4, 21) and "hh-fso" in n.recipients],
                        [n for n in notices if n.due and n.due.date() >= date(2026, 4, 22) and "hh-fso" in n.recipients])
    _golden("digest.txt", _sections(d))
    _golden("digest.html", d.html)


# Behaviour


def test_recipient_office_and_notice_id_in_every_format(renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    n = by_rule["sample.unqualified"]
    assert n.recipients == ("hh-agri", "hh-fso")
    m = renderer.notice(n, "hh-agri")
    for body in (m.text, m.html, m.markdown):
        assert "红河镇农技中心：" in body
        assert f"通知编号：{n.id}" in body
        assert f"shian ack {n.id} --by hh-agri" in body
        assert "王建军蔬菜批发部" in body
    assert n.id in m.subject and m.subject.startswith("【预警通知】红河镇 ")
    assert (m.ref, m.notice_ids, m.dept, m.severity) == (n.id, (n.id,), "hh-agri", "warning")
    assert dict(m.headers) == {"X-Shian-Ref": n.id, "X-Shian-Notice-Ids": n.id, "X-Shian-Rule": "sample.unqualified"}


def test_issuer_is_town_office_for_town_level_and_county_office_for_county_level(
        renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    town = renderer.notice(by_rule["sample.unqualified"], "hh-agri")
    county = renderer.notice(by_rule["sample.banned_substance"], "hh-vet")
    assert by_rule["sample.unqualified"].level == "town" and by_rule["sample.banned_substance"].level == "county"
    assert "\n红河镇食安办\n2026年4月3日\n" in town.text and "\n县食安办\n" not in town.text
    assert '<p class="sign">红河镇食安办<br>2026年4月3日</p>' in town.html
    assert "红河镇食安办　2026年4月3日" in town.markdown
    assert "\n县食安办\n2026年4月9日\n" in county.text
    assert '<p class="sign">县食安办<br>2026年4月9日</p>' in county.html


def test_due_dates_and_rates_are_written_the_chinese_way(renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    unq = renderer.notice(by_rule["sample.unqualified"], "hh-fso").text
    assert "请于2026年4月18日前完成核查处置" in unq
    remind = renderer.notice(by_rule["report.reminder"], "hh-fso")
    assert "请通知新寨村于2026年4月25日前报送2026年4月食品安全工作月报" in remind.text
    assert remind.subject.startswith("【催报通知】")
    rate = renderer.notice(by_rule["sample.pass_rate_low"], "county-fso")
    assert by_rule["sample.pass_rate_low"].facts["rate"] == pytest.approx(18 / 20)
    for body in (rate.text, rate.html, rate.markdown):
        assert "合格率：90.0%" in body or "<th>合格率</th><td>90.0%</td>" in body
        assert "97.0%" in body


def test_critical_notices_are_marked_urgent(renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    m = renderer.notice(by_rule["incident.reported"], "county-fso")
    assert m.severity == "critical" and m.subject.startswith("【紧急】【预警通知】红河镇 ")
    assert renderer.notice(by_rule["report.escalation"], "county-fso").subject.startswith("【督办通知】")


def test_html_escapes_event_text_and_keeps_chinese(renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    plain = by_rule["sample.unqualified"]
    n = dataclasses.replace(plain, facts={**plain.facts, "entity": '<script>alert("x")</script>超市'})
    m = renderer.notice(n, "hh-fso")
    assert "<script>" not in m.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;超市" in m.html
    assert "红河镇食安办" in m.html and "&#" not in m.html.replace("&#34;", "")
    assert '<script>alert("x")</script>超市' in m.text


def test_subject_cannot_carry_a_header_injection(renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    plain = by_rule["sample.unqualified"]
    n = dataclasses.replace(plain, facts={**plain.facts, "entity": "好又多超市\r\nBcc: x@evil.example\u2028\x00"})
    m = renderer.notice(n, "hh-fso")
    assert not re.search(r"[\x00-\x1f\x7f\u2028\u2029]", m.subject)
    assert "好又多超市 Bcc: x@evil.example" in m.subject
    assert not any(line.startswith("Bcc:") for line in m.text.splitlines())
    for _, value in m.headers:
        assert "\n" not in value and "\r" not in value


def test_group_lists_every_notice_under_one_ref(renderer: Renderer, month: tuple[Any, list[Notice]],
                                                by_rule: dict[str, Notice]) -> None:
    unq = [n for n in month[1] if n.rule == "sample.unqualified"]
    assert len(unq) == 2
    ids = [n.id for n in unq]
    g = renderer.group(list(reversed(unq)), "hh-agri")
    assert g.ref == group_ref(ids) == "g" + __import__("hashlib").sha256(",".join(sorted(ids)).encode()).hexdigest()[:15]
    assert g.notice_ids == tuple(reversed(ids))
    assert dict(g.headers)["X-Shian-Notice-Ids"] == ",".join(reversed(ids))
    assert dict(g.headers)["X-Shian-Rule"] == "sample.unqualified"
    assert g.ref in g.subject and "（共2条）" in g.subject
    for body in (g.text, g.html, g.markdown):
        for n in unq:
            assert n.id in body and n.facts["food"] in body
    one = by_rule["sample.unqualified"]
    assert renderer.group([one], "hh-agri") == renderer.notice(one, "hh-agri")
    with pytest.raises(ValueError):
        renderer.group([one, by_rule["report.overdue"]], "hh-fso")


def test_digest_lists_the_days_notices_and_open_deadlines(renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    today = [by_rule["report.overdue"], by_rule["banquet.late_registration"]]
    pending = [by_rule["sample.unqualified"]]
    d = renderer.digest("hh-fso", date(2026, 4, 10), today, pending)
    assert d.ref == "digest-hh-fso-2026-04-10" and d.severity == "info"
    assert d.notice_ids == tuple(n.id for n in today + pending)
    assert dict(d.headers)["X-Shian-Ref"] == d.ref
    for body in (d.text, d.html, d.markdown):
        assert "红河镇食安办" in body and "2026年4月10日" in body
        for n in today + pending:
            assert n.id in body
        assert "2026年4月18日" in body
    assert "还剩8天" in d.text
    empty = renderer.digest("hh-fso", date(2026, 4, 10), [], [])
    assert "无。" in empty.text and empty.notice_ids == ()


def test_output_depends_only_on_the_notice(renderer: Renderer, month: tuple[Any, list[Notice]],
                                          by_rule: dict[str, Notice]) -> None:
    """The rules' notice and the same notice read back from its JSON (outbox, Kafka) render alike."""
    n = by_rule["entity.repeat_offender"]
    again = Notice.from_json(json.loads(json.dumps(n.to_json())), month[0].tz)
    assert renderer.notice(n, "county-fso") == renderer.notice(again, "county-fso")


def test_override_folder_replaces_one_template(tmp_path: Path, month: tuple[Any, list[Notice]],
                                               by_rule: dict[str, Notice]) -> None:
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


def test_unknown_rule_still_renders(renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    n = dataclasses.replace(by_rule["report.overdue"], rule="report.new_kind", title="【提醒】新规则的通知")
    m = renderer.notice(n, "hh-fso")
    assert "新规则的通知" in m.subject and "新寨村" in m.text
