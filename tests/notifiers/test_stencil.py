"""Layouts written from stencils (notifiers/stencil.py): the same messages as jinja2 writes,
for every rule, recipient and group; jinja2 again where a stencil could be wrong."""
from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from markupsafe import Markup

from notice_month import april, first_of_each_rule
from shian.notifiers import render
from shian.notifiers.render import Renderer
from shian.notifiers.settings import parse as parse_settings
from shian.notifiers.stencil import Stencil, escaped, skeleton, token
from shian.rules.notice import Notice

PUBLIC_URL = "https://shian.xiping.gov.cn"


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Notice]]:
    return april(tmp_path_factory.mktemp("stencil"))


def _settings(month: tuple[Any, list[Notice]], url: bool) -> Any:
    config = dataclasses.replace(month[0], service={"public_url": PUBLIC_URL + "/"}) if url else month[0]
    return parse_settings(config, env={})


def _jinja(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Renderer:
    """A renderer that writes every layout with jinja2 (no layout has stencils)."""
    plain = Renderer(settings)
    monkeypatch.setattr(plain, "_stenciled", lambda *a: None)
    return plain


@pytest.mark.parametrize("url", [True, False])
def test_every_notice_to_every_recipient_is_written_as_jinja2_writes_it(
        url: bool, month: tuple[Any, list[Notice]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A stencil's message equals jinja2's, byte for byte, for every rule, recipient and body."""
    settings = _settings(month, url)
    fast, slow = Renderer(settings), _jinja(settings, monkeypatch)
    notices = list(first_of_each_rule(month[1]).values()) + month[1][:150]
    for _ in (1, 2, 3):  # a shape's first sight is jinja2's, the second makes its stencil, the third fills it
        for n in notices:
            for dept in n.recipients:
                for bodies in ({"text", "html"}, {"markdown"}, render.BODIES):
                    assert fast.notice(n, dept, bodies=bodies) == slow.notice(n, dept, bodies=bodies), (n.rule, dept)
    assert len(fast._stencils) > render._STENCILS_CHECKED and fast._is_packaged("notice")


def test_groups_are_written_as_jinja2_writes_them(month: tuple[Any, list[Notice]],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Groups of 2 to 12 notices (numbered 一 … 十, then 11, 12), every recipient: as jinja2."""
    settings = _settings(month, True)
    fast, slow = Renderer(settings), _jinja(settings, monkeypatch)
    by_key: dict[tuple[str, str], list[Notice]] = {}
    for n in month[1]:
        by_key.setdefault((n.rule, n.township), []).append(n)
    groups = [ns for ns in by_key.values() if len(ns) > 1]
    assert any(len(ns) > 10 for ns in groups)
    for _ in (1, 2, 3):
        for ns in groups:
            for size in sorted({2, 3, min(12, len(ns)), len(ns)}):
                for dept in ns[0].recipients:
                    assert fast.group(ns[:size], dept) == slow.group(ns[:size], dept), (ns[0].rule, size, dept)


def test_a_layout_whose_stencil_differs_is_rendered_by_jinja2_from_then_on(
        month: tuple[Any, list[Notice]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A stencil that writes other bytes than jinja2 (here: ``mode`` tokenised, which the subject
    compares) is caught when made and ends the layout's stencils; messages stay right."""
    settings = _settings(month, True)
    slow = _jinja(settings, monkeypatch)
    monkeypatch.setattr(render, "_LITERAL", frozenset())
    fast = Renderer(settings)
    notices = month[1][:20]
    for _ in (1, 2, 3):
        for n in notices:
            assert fast.notice(n, n.recipients[0]) == slow.notice(n, n.recipients[0])
    assert not fast._is_packaged("notice") and not fast._stencils


def test_a_text_with_a_reserved_mark_is_rendered_by_jinja2(month: tuple[Any, list[Notice]],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """An entity named with a token's own character cannot fake a token: jinja2 writes it."""
    settings = _settings(month, True)
    fast, slow = Renderer(settings), _jinja(settings, monkeypatch)
    n = first_of_each_rule(month[1])["sample.unqualified"]
    odd = dataclasses.replace(n, title=n.title + token(0), facts={**n.facts, "entity": f"王{token(1)}记"})
    for _ in (1, 2, 3):
        for m in (n, odd):
            assert fast.notice(m, m.recipients[0]) == slow.notice(m, m.recipients[0])
    assert token(1) in fast.notice(odd, odd.recipients[0]).text


def test_an_office_layout_is_never_stenciled(month: tuple[Any, list[Notice]], tmp_path: Any) -> None:
    """An office's own notice layout may compare texts, which a stencil cannot: it is rendered each time."""
    (tmp_path / "ack.txt").write_text(
        '{% if item.rule == "sample.unqualified" %}　　不合格样品专用签收：{{ item.ack }}\n{% else %}　　签收：{{ item.ack }}\n{% endif %}',
        encoding="utf-8")
    custom = Renderer(dataclasses.replace(parse_settings(month[0], env={}), templates=tmp_path))
    by_rule = first_of_each_rule(month[1])
    a, b = by_rule["sample.unqualified"], by_rule["sample.banned_substance"]
    for _ in (1, 2, 3):
        assert "不合格样品专用签收" in custom.notice(a, a.recipients[0]).text
        assert "不合格样品专用签收" not in custom.notice(b, b.recipients[0]).text
    assert not custom._is_packaged("notice") and custom._is_packaged("group") and not custom._stencils


def test_a_shape_is_its_flags_numbers_lengths_and_empty_texts() -> None:
    """Texts differing only in content share a shape; an empty one, a flag or a length does not."""
    def key(ctx: dict[str, Any]) -> Any:
        sk = skeleton(ctx, literal=frozenset({"mode"}))
        assert sk is not None
        return sk.key
    base = {"mode": "notice", "item": {"name": "甲", "rows": [("a", "b")], "copy": False, "n": 2}}
    same = {"mode": "notice", "item": {"name": "乙乙", "rows": [("c", "d")], "copy": False, "n": 2}}
    assert key(base) == key(same)
    for other in ({**base, "mode": "group"}, {**base, "item": {**base["item"], "name": ""}},
                  {**base, "item": {**base["item"], "rows": []}}, {**base, "item": {**base["item"], "copy": True}},
                  {**base, "item": {**base["item"], "n": 3}}):
        assert key(other) != key(base)
    assert skeleton({"x": Markup("<b>")}) is None and skeleton({"x": object()}) is None
    assert skeleton({"x": "a" + token(3)}) is None


def test_a_stencil_escapes_where_the_layout_escaped() -> None:
    """A token the layout printed escaped is filled escaped, one printed as is, as is."""
    st = Stencil.of(f"<p>{token(0).replace('&', '&amp;')}</p><code>{token(1)}</code>{token(0)}")
    values = ["<a&b>", "x\"y'"]
    assert st.fill(values, escaped(values)) == "<p>&lt;a&amp;b&gt;</p><code>x\"y'</code><a&b>"
    assert escaped(["无需转义"]) == ["无需转义"]


def test_the_stencils_kept_stay_within_their_weight(month: tuple[Any, list[Notice]],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Many large digests (each its own shape) do not pile up: the stencils and shapes kept stay
    under :data:`render._STENCILS_WEIGHT` (2,048 of them held hundreds of MB in a long run),
    and what is written is still jinja2's."""
    monkeypatch.setattr(render, "_STENCILS_WEIGHT", 50_000)
    settings = _settings(month, True)
    fast, slow = Renderer(settings), _jinja(settings, monkeypatch)
    by_key: dict[tuple[str, str], list[Notice]] = {}
    for n in month[1]:
        by_key.setdefault((n.rule, n.township), []).append(n)
    notices = max(by_key.values(), key=len)
    assert len(notices) > 12
    most = kept = 0
    for _ in (1, 2):
        for size in range(2, len(notices) + 1):
            ns = notices[:size]
            assert fast.group(ns, ns[0].recipients[0]) == slow.group(ns, ns[0].recipients[0])
            held = sum(s.weight for s in fast._stencils.values()) + sum(len(k[2]) for k in fast._sighted)
            most, kept = max(most, held), max(kept, len(fast._stencils))
    assert kept and most < 50_000 + 30_000  # the budget, and at most the last one past it
