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
from shian.notifiers import render
from shian.notifiers.render import (NOTIFIER_RULES, PACKAGED, Renderer, elapsed, group_ref, hours_cn, placed, spec_of,
                                    untagged)
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


PUBLIC_URL = "https://shian.xiping.gov.cn"


@pytest.fixture(scope="module")
def renderer(month: tuple[Any, list[Notice]]) -> Renderer:
    """The April config with the office's pages at PUBLIC_URL (the messages link to them)."""
    return Renderer(parse_settings(dataclasses.replace(month[0], service={"public_url": PUBLIC_URL + "/"}), env={}))


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


# Other recipients' copies of the same notices: a county 督办 to the town office it is addressed
# to, and the town office's 抄送 of a town-level 预警 addressed to the routed department.
VIEWS = [("sample.banned_substance", "hh-fso"), ("sample.unqualified", "hh-fso")]


@pytest.mark.parametrize("rule, dept", VIEWS)
def test_golden_copy_of_another_recipient(rule: str, dept: str, renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    m = renderer.notice(by_rule[rule], dept)
    _golden(f"{rule}@{dept}.txt", _sections(m))
    _golden(f"{rule}@{dept}.html", m.html)


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


# (rule, recipient) → who signs that recipient's copy, whether it is a 抄送 and its 主送 / 抄送 lines.
ADDRESSING = [
    # town level, routed: from the system to the responsible department, the town office in copy
    ("sample.unqualified", "hh-agri", "西平县食品安全预警系统", False, "红河镇农技中心", "红河镇食安办"),
    ("sample.unqualified", "hh-fso", "西平县食品安全预警系统", True, "红河镇农技中心", "红河镇食安办"),
    # town level, asking the town office to chase a village or a business: from the system
    ("report.reminder", "hh-fso", "西平县食品安全预警系统", False, None, None),
    ("inspection.license_missing", "hh-fso", "西平县食品安全预警系统", False, None, None),
    # a town-level 督办 is the county's
    ("inspection.rectification_overdue", "hh-fso", "县食安办", False, None, None),
    # county level: the county office to the town and the routed department; its own copy from the system
    ("sample.banned_substance", "hh-fso", "县食安办", False, "红河镇畜牧站、红河镇食安办", "县食安办"),
    ("sample.banned_substance", "hh-vet", "县食安办", False, "红河镇畜牧站、红河镇食安办", "县食安办"),
    ("sample.banned_substance", "county-fso", "西平县食品安全预警系统", True, "红河镇畜牧站、红河镇食安办", "县食安办"),
    ("incident.late_report", "hh-fso", "县食安办", False, "红河镇食安办", "县食安办"),
    ("source.silent", "bq-fso", "县食安办", False, "板桥镇食安办", "县食安办"),
    # the county office the only recipient: from the system
    ("sample.lab_late", "county-fso", "西平县食品安全预警系统", False, None, None),
    ("delivery.failed", "county-fso", "西平县食品安全预警系统", False, None, None),
    ("notice.resolved", "hh-fso", "西平县食品安全预警系统", False, None, None),
]


@pytest.mark.parametrize("rule, dept, signer, copy, main, copies", ADDRESSING)
def test_who_signs_each_copy_and_to_whom_it_is_addressed(rule: str, dept: str, signer: str, copy: bool,
                                                         main: str | None, copies: str | None,
                                                         renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    """落款, 主送 and 抄送 as an office writes them, in the text, the card and the HTML alike."""
    n = by_rule[rule]
    m = renderer.notice(n, dept)
    name = renderer.dept_name(dept)
    date_line = f"{n.at.year}年{n.at.month}月{n.at.day}日"
    assert f"\n\n{signer}\n{date_line}\n" in m.text and f"{signer}　{date_line}" in m.markdown
    assert f'<p class="sign">{signer}<br>{date_line}</p>' in m.html
    assert m.text.count(f"\n{name}：\n") == 1 and f"**{name}：**" in m.markdown
    assert ("【抄送】" in m.subject) is copy and ("现抄送你单位" in m.text) is copy and ("【抄送】" in m.markdown) is copy
    assert ("以你单位名义" in m.text) is (copy and signer != "县食安办" and dept == "county-fso")
    if main is None:
        assert "主送：" not in m.text and "抄送：" not in m.text
    else:
        assert f"\n主送：{main}\n" in m.text and f"主送：{main}；抄送：{copies}" in m.markdown
        assert f"\n抄送：{copies}\n" in m.text


def test_no_copy_names_its_recipient_as_its_issuer(renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    """Every recipient of every rule's notice: the copy is never signed with the recipient's name."""
    for rule, n in by_rule.items():
        for dept in n.recipients:
            m, name = renderer.notice(n, dept), renderer.dept_name(dept)
            date_line = f"{n.at.year}年{n.at.month}月{n.at.day}日"
            assert f"\n{name}\n{date_line}\n" not in m.text, (rule, dept)
            assert f"{name}　{date_line}" not in m.markdown and f'"sign">{name}<br>' not in m.html, (rule, dept)


def test_only_an_office_orders_a_follow_up(renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    """现予督办 when the county office issues a 督办; what the system itself sends only informs."""
    assert "现予督办" in renderer.notice(by_rule["sample.banned_substance"], "hh-fso").text
    failed = renderer.notice(by_rule["delivery.failed"], "county-fso")
    assert "现予督办" not in failed.text and "现将有关情况通知如下" in failed.text


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
    m = renderer.notice(by_rule["incident.reported"], "hh-fso")
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


def test_wording_made_once_per_notice_is_each_recipients_own(month: tuple[Any, list[Notice]]) -> None:
    """One renderer making a notice's messages for each of its recipients in turn (the
    wording reused) gives each recipient the message a fresh renderer gives it."""
    notices = [n for n in month[1] if len(n.recipients) > 1][:20]
    assert notices, "April has no notice with several recipients"
    settings = parse_settings(month[0], env={})
    shared = Renderer(settings)
    for n in notices:
        for dept in n.recipients:
            assert shared.notice(n, dept) == Renderer(settings).notice(n, dept), (n.rule, dept)


@pytest.mark.parametrize("kept, weight", [(8, 10**9), (10**6, 8_000)], ids=["by count", "by weight"])
def test_the_wordings_kept_are_the_latest_and_never_more_than_their_bound(
        kept: int, weight: int, month: tuple[Any, list[Notice]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its bound (a count, and a weight: a repeat offender's notice lists every sample of
    its year, so it grows with the history) the wording cache lets its oldest entries go, one at
    a time (never emptied and built up again), its weight is what it holds, and a notice whose
    wording was let go is written as before."""
    monkeypatch.setattr(render, "_WORDINGS_KEPT", kept)
    monkeypatch.setattr(render, "_WORDINGS_WEIGHT", weight)
    settings = parse_settings(month[0], env={})
    shared = Renderer(settings)
    notices = month[1][:60]
    sizes = []
    for n in notices:
        shared.notice(n, n.recipients[0])
        sizes.append(len(shared._wordings))
        held = [w for _, _, w in shared._wordings.values()]
        assert len(held) <= kept and sum(held) <= weight and shared._wordings_weight == sum(held)
    assert 1 < max(sizes) and len(set(sizes[-10:])) <= 3 and min(sizes[-10:]) > 1
    assert [k[0] for k in shared._wordings] == [n.id for n in notices[-len(shared._wordings):]]
    assert shared.notice(notices[0], notices[0].recipients[0]) == Renderer(settings).notice(
        notices[0], notices[0].recipients[0])


def test_a_wordings_weight_grows_with_the_samples_its_notice_lists(month: tuple[Any, list[Notice]]) -> None:
    """The weight of a repeat offender's wording grows with the samples it lists (what held
    hundreds of MB when only the number of wordings was bounded)."""
    first = next(n for n in month[1] if n.rule == "entity.repeat_offender")
    ids = [f"S-{i:06d}" for i in range(200)]
    longer = dataclasses.replace(first, event_ids=tuple(ids), facts={**first.facts, "sample_ids": ids})
    shared = Renderer(parse_settings(month[0], env={}))
    weights = []
    for n in (first, longer):
        shared.notice(n, n.recipients[0])
        weights.append(next(w for (nid, *_), (_, _, w) in shared._wordings.items() if nid == n.id))
    assert weights[1] > weights[0] + 200 * 20


def test_a_template_naming_the_recipient_is_worded_per_recipient(tmp_path: Path, month: tuple[Any, list[Notice]],
                                                                 by_rule: dict[str, Notice]) -> None:
    """An office's template that prints ``c.recipient`` gets each recipient's name, not the
    first recipient's wording reused."""
    (tmp_path / "samples.txt").write_text(
        '{% set lead %}请{{ c.recipient }}处理。{% endset %}{% set facts %}样品：{{ f.sample_id }}{% endset %}',
        encoding="utf-8")
    custom = Renderer(dataclasses.replace(parse_settings(month[0], env={}), templates=tmp_path))
    n = by_rule["sample.unqualified"]
    first, second = (custom.notice(n, d) for d in ("hh-fso", "county-fso"))
    assert "请红河镇食安办处理。" in first.text and "请红河镇食安办处理。" not in second.text
    assert f"请{custom.dept_name('county-fso')}处理。" in second.text


@pytest.mark.parametrize("bodies", [{"text", "html"}, {"text", "markdown"}, {"markdown"}])
def test_a_channel_gets_only_the_bodies_it_sends(renderer: Renderer, by_rule: dict[str, Notice], bodies) -> None:
    """Rendering for a channel that sends some bodies: those exactly as in the full message,
    the others empty (not rendered)."""
    n = by_rule["sample.unqualified"]
    full = renderer.notice(n, "hh-fso")
    some = renderer.notice(n, "hh-fso", bodies=bodies)
    assert some.subject == full.subject and some.headers == full.headers and some.ref == full.ref
    for body in ("text", "html", "markdown"):
        assert getattr(some, body) == (getattr(full, body) if body in bodies else "")
    assert some.markdown_breaks == (full.markdown_breaks if "markdown" in bodies else ())


def test_unknown_rule_still_renders(renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    n = dataclasses.replace(by_rule["report.overdue"], rule="report.new_kind", title="【提醒】新规则的通知")
    m = renderer.notice(n, "hh-fso")
    assert "新规则的通知" in m.subject and "新寨村" in m.text


# The kind, the links, the wording of times and places


TAG = re.compile(r"【([^】]+)】")


def _every_copy(renderer: Renderer, by_rule: dict[str, Notice]):
    for rule, n in sorted(by_rule.items()):
        for dept in n.recipients:
            yield rule, n, dept, renderer.notice(n, dept)


def test_every_message_names_the_kind_of_its_rules_spec_and_no_other(
        renderer: Renderer, by_rule: dict[str, Notice], month: tuple[Any, list[Notice]]) -> None:
    """Subject, text, card and HTML of every recipient's copy (and groups, digests): the kind is
    the spec's document and no bracketed tag names another kind (a title's 【催办】 or 【预警】)."""
    for rule, n, dept, m in _every_copy(renderer, by_rule):
        spec = spec_of(rule)
        for body in (m.subject, m.text, m.markdown, m.html):
            assert spec.document in body, (rule, dept)
            assert set(TAG.findall(body)) <= {spec.document, "紧急", "抄送"}, (rule, dept, TAG.findall(body))
    notices = month[1]
    g = renderer.group([x for x in notices if x.rule == "sample.unqualified"], "hh-fso")
    d = renderer.digest("hh-fso", date(2026, 4, 21), [x for x in notices if "hh-fso" in x.recipients], [])
    kinds = {spec_of(x.rule).document for x in notices}
    for body in (g.subject, g.text, g.markdown, g.html, d.text, d.markdown, d.html):
        assert set(TAG.findall(body)) <= kinds | {"紧急", "抄送", "食品安全日报"}, TAG.findall(body)


def test_every_message_links_to_the_notice_page_besides_the_command_line(
        renderer: Renderer, by_rule: dict[str, Notice], month: tuple[Any, list[Notice]]) -> None:
    """With service.public_url: each copy (each format) carries <public_url>/notices/<id> — the
    closing word the closed notice's page — and still the command line; groups and digests per notice."""
    for rule, n, dept, m in _every_copy(renderer, by_rule):
        target = n.facts["notice_id"] if rule == "notice.resolved" else n.id
        page = f"{PUBLIC_URL}/notices/{target}"
        assert page in m.text and f"]({page})" in m.markdown and f'href="{page}"' in m.html, (rule, dept)
        assert rule == "notice.resolved" or f"shian ack {n.id} --by {dept}" in m.text
    unq = [x for x in month[1] if x.rule == "sample.unqualified"]
    g = renderer.group(unq, "hh-agri")
    d = renderer.digest("hh-fso", date(2026, 4, 21), [by_rule["report.overdue"]], unq)
    for x in unq:
        for body in (g.text, g.markdown, g.html, d.text, d.markdown, d.html):
            assert f"{PUBLIC_URL}/notices/{x.id}" in body


def test_without_public_url_messages_carry_the_command_line_only(month: tuple[Any, list[Notice]],
                                                                  by_rule: dict[str, Notice]) -> None:
    """No service.public_url: no link is made up; the command lines remain."""
    plain = Renderer(parse_settings(month[0], env={}))
    m = plain.notice(by_rule["sample.unqualified"], "hh-agri")
    assert "/notices/" not in m.text + m.markdown + m.html and "http" not in m.text + m.markdown
    assert "签收：shian ack 8601f249ce79decb --by hh-agri" in m.text


@pytest.mark.parametrize("hours, written", [
    (2, "2小时"), (2.0, "2小时"), (1.5, "1小时30分"), (0.75, "45分钟"), (12.17, "约12小时10分"),
    (24, "24小时"), (72, "72小时"), (0.001, "不到1分钟"), (0, "0分钟"), ("x", "x"),
])
def test_hours_are_written_as_an_office_writes_a_time_span(hours: Any, written: str) -> None:
    """Hours in a message are 小时 and 分, 约 when a rounded figure is all there is."""
    assert hours_cn(hours) == written


@pytest.mark.parametrize("start, end, fallback, written", [
    ("2026-04-18T19:30:00+08:00", "2026-04-19T07:40:00+08:00", 12.17, "12小时10分"),
    ("2026-04-18T19:30:00+08:00", "2026-04-18T19:30:00+08:00", 0, "0分钟"),
    ("2026-04-18T19:30:00+08:00", "2026-04-18T21:30:40+08:00", 2.01, "约2小时1分"),
    (None, "2026-04-19T07:40:00+08:00", 12.17, "约12小时10分"),
])
def test_elapsed_time_is_exact_to_the_minute_from_the_two_times(start: Any, end: Any, fallback: Any,
                                                                 written: str) -> None:
    """From occurred_at to reported_at, not from the rounded delay_hours, when both are known."""
    assert elapsed(start, end, fallback) == written


@pytest.mark.parametrize("entity, places, written", [
    ("镇卫生院", ("盆尧镇",), "盆尧镇卫生院"),
    ("镇中心学校", ("红河镇",), "红河镇中心学校"),
    ("镇东村", ("红河镇",), "红河镇镇东村"),       # a village named 镇东村 keeps its name
    ("乡卫生院", ("石桥乡",), "石桥乡卫生院"),
    ("村卫生室", ("红河镇", "坝心村"), "红河镇坝心村卫生室"),
    ("坝心村张记豆腐坊", ("红河镇", "坝心村"), "红河镇坝心村张记豆腐坊"),
    ("红河镇中心学校食堂", ("红河镇", "红河村"), "红河镇中心学校食堂"),
    ("刘记鲜肉店", ("红河镇", "红河村"), "红河镇红河村刘记鲜肉店"),
    ("新寨村", ("红河镇",), "红河镇新寨村"),
    ("", ("红河镇",), "红河镇"),
])
def test_places_are_joined_without_doubling_a_level(entity: str, places: tuple[str, ...], written: str) -> None:
    """盆尧镇 + 镇卫生院 is 盆尧镇卫生院; a place the name already carries is not repeated."""
    assert placed(entity, *places) == written


def test_messages_write_times_and_places_as_an_office_does(renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    """No 12.17小时 and no 红河镇镇卫生院 in any format of the late report and the report notices."""
    late = renderer.notice(by_rule["incident.late_report"], "hh-fso")
    for body in (late.subject, late.text, late.markdown, late.html):
        assert "12.17" not in body and "发生后12小时10分" in body
    report = by_rule["report.escalation"]
    clinic = dataclasses.replace(report, facts={**report.facts, "reporter": "镇卫生院"})
    m = renderer.notice(clinic, "hh-fso")
    for body in (m.text, m.markdown, m.html):
        assert "镇镇" not in body and "红河镇卫生院" in body


def test_a_notice_titles_own_tag_never_names_its_kind(renderer: Renderer, by_rule: dict[str, Notice]) -> None:
    """The unacknowledged notice quotes the original by its spec's kind and its title without 【预警】."""
    m = renderer.notice(by_rule["notice.unacknowledged"], "hh-fso")
    assert "原通知：预警通知“红河镇王建军蔬菜批发部韭菜抽检不合格" in m.text and "【预警】" not in m.text
    assert untagged("【紧急】【督办】红河镇 事件") == "红河镇 事件" and untagged("无标记") == "无标记"


def test_fields_read_as_attributes_like_a_dict_read_by_jinja2() -> None:
    """A notice's fields printed as ``f.name``: the key; a missing one undefined; ``f.items`` the method."""
    from jinja2 import Environment

    from shian.notifiers.render import Fields

    env = Environment()
    source = "{{ f.village }}|{{ f.missing }}|{{ f.items is callable }}|{{ f.get('village') }}"
    data = {"village": "红河村"}
    assert env.from_string(source).render(f=Fields(data)) == env.from_string(source).render(f=data) == "红河村||True|红河村"
    with pytest.raises(AttributeError):
        Fields(data).missing


def test_load_templates_compiles_every_packaged_template(month: tuple[Any, list[Notice]], by_rule: dict[str, Notice]) -> None:
    """load_templates leaves nothing to compile on first use, and messages are the same after it."""
    settings = parse_settings(month[0], env={})
    cold, warm = Renderer(settings), Renderer(settings)
    loaded = warm.load_templates()
    names = sorted(p.name for p in PACKAGED.iterdir() if p.suffix in (".txt", ".html", ".md"))
    assert loaded == len(names)
    compiled = {t.name for t in warm.env.cache.values()} | {t.name for t in warm.md_env.cache.values()}
    assert compiled == set(names)
    for notice in by_rule.values():
        dept = notice.recipients[0]
        assert warm.notice(notice, dept) == cold.notice(notice, dept)


@pytest.mark.parametrize("count, listed, note", [
    (2, 2, False),     # all listed: no note
    (10, 10, False),
    (11, 10, True),    # the latest ten of eleven: said so
    (720, 10, True),
])
def test_a_repeat_offender_says_when_it_lists_only_its_latest_samples(
        renderer: Renderer, by_rule: dict[str, Notice], count: int, listed: int, note: bool) -> None:
    """The 不合格样品编号 line says （最近N批次） when the notice lists fewer samples than it counts."""
    first = by_rule["entity.repeat_offender"]
    ids = [f"S-{i:06d}" for i in range(count)][-listed:]
    n = dataclasses.replace(first, facts={**first.facts, "count": count, "sample_ids": ids})
    text = renderer.notice(n, n.recipients[0]).text
    assert f"不合格样品编号：{'、'.join(ids)}" in text
    assert ("（最近10批次）" in text) is note and f"共{count}批次" in text
