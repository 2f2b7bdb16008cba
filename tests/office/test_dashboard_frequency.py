"""The dashboard's 检查频次 page and the notice page's 办结期限, server-rendered over plain HTTP,
on the small register of ``register_county`` (its docstring tells the known answers)."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest

from office_support import service_in
from register_county import BQ, F1, HH, NOW, fill
from shian.rules.notice import notice_id
from test_dashboard import Client, Served

TOWNSHIPS = {"红河镇", "板桥镇", "出山镇", "盆尧镇", "权寨镇"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    def build() -> Any:
        svc = service_in(tmp_path_factory.mktemp("frequency"), now=lambda: NOW)
        fill(svc)
        return svc
    with Served(build) as s:
        yield s


def cells(html: str) -> dict[tuple[str, str], dict[str, int]]:
    """(township, level) → the row's data-* counts (the 合计 rows under level 合计)."""
    out = {}
    for m in re.finditer(r'<tr(?: class="total")? data-township="([^"]*)" data-level="([^"]+)"([^>]*)>', html):
        out[(m[1], m[2])] = {k: int(v) for k, v in re.findall(r'data-(\w+)="(\d+)"', m[3])}
    return out


def test_the_page_shows_the_quota_at_the_latest_check(site: Served) -> None:
    """Per township × risk level at the 1 July check: entities, quota, done, behind, the year's
    quota; 合计 per township and for the county; the closed entity and the new one left out."""
    r = Client(site.port).get("/frequency")
    assert r.status == 200 and re.search(r"<h1>[^<]*检查频次[^<]*</h1>", r.text)
    assert 'data-check-date="2026-07-01"' in r.text and "2026年7月1日核对日" in r.text
    got = cells(r.text)
    assert got[(HH, "D")] == {"entities": 1, "required": 2, "done": 1, "behind": 1, "yearly": 4}
    assert got[(HH, "A")] == {"entities": 1, "required": 1, "done": 1, "behind": 0, "yearly": 1}
    assert got[(HH, "B")]["entities"] == got[(HH, "C")]["entities"] == 0
    assert got[(BQ, "B")] == {"entities": 1, "required": 1, "done": 2, "behind": 0, "yearly": 2}
    assert got[(HH, "合计")] == {"entities": 2, "required": 3, "done": 2, "behind": 1, "yearly": 5}
    assert got[("", "合计")] == {"entities": 3, "required": 4, "done": 4, "behind": 1, "yearly": 7}
    assert "中心学校食堂" in re.search(r'data-township="红河镇" data-level="D".*?</tr>', r.text, re.S)[0]


def test_behind_cells_are_the_notices_of_the_check(site: Served) -> None:
    """The page's 未达标 per township × level is the count of the check's inspection.frequency_due notices."""
    got = cells(Client(site.port).get("/frequency").text)
    notices = [n for n in site.call(site.service.notices) if n.rule == "inspection.frequency_due"
               and n.facts["check_date"] == "2026-07-01"]
    raised: dict[tuple[str, str], int] = {}
    for n in notices:
        raised[(n.township, n.facts["risk_level"])] = raised.get((n.township, n.facts["risk_level"]), 0) + 1
    shown = {k: v["behind"] for k, v in got.items() if k[1] != "合计" and v["behind"]}
    assert shown == raised == {(HH, "D"): 1}


@pytest.mark.parametrize("query, year, check_date, townships", [
    ("?year=2025", "2025", "2025-12-01", TOWNSHIPS),     # last year: its last check
    ("?year=1999", "2026", "2026-07-01", TOWNSHIPS),     # not offered: this year
    ("?" + urlencode({"township": BQ}), "2026", "2026-07-01", {BQ}),
])
def test_year_and_township_selectors(site: Served, query: str, year: str, check_date: str, townships: set[str]) -> None:
    """The year selector offers this year and last; the township filter narrows the rows."""
    html = Client(site.port).get("/frequency" + query).text
    assert f'data-year="{year}" data-check-date="{check_date}"' in html
    assert f'<option value="{year}" selected>' in html and '<option value="2025"' in html
    assert {tw for tw, _ in cells(html) if tw} == townships


def test_last_year_counts_what_was_in_business_then(site: Served) -> None:
    """1 December 2025: E4 (closed only in March 2026) was in business and not inspected in 2025."""
    got = cells(Client(site.port).get("/frequency?year=2025").text)
    assert got[(HH, "B")] == {"entities": 1, "required": 2, "done": 0, "behind": 1, "yearly": 2}
    assert got[(HH, "C")]["entities"] == 0     # E3 was registered only in 2026


def test_every_page_links_to_it(site: Served) -> None:
    """The menu has 检查频次 on every page, marked current on its own."""
    c = Client(site.port)
    assert '<a href="/frequency">检查频次</a>' in c.get("/").text
    assert '<a href="/frequency" aria-current="page">检查频次</a>' in c.get("/frequency").text


def test_the_notice_page_shows_the_deadline_and_the_closing_against_it(site: Served) -> None:
    """签收 2 April: 10 working days (清明 4–6 April off) → 17 April inclusive; 办结 on 20 April is
    after it, and the notice.unresolved 督办 it raised is linked."""
    html = Client(site.port).get(f"/notices/{notice_id(F1)}").text
    m = re.search(r'<div id="resolution" data-status="([^"]+)" data-deadline="([^"]+)"', html)
    assert m and (m[1], m[2]) == ("closed_late", "2026-04-18T00:00:00+08:00")
    assert "10 个工作日，即 2026年4月17日（含）前办结" in html
    status = re.search(r'<dd id="resolution-status">.*?</dd>', html, re.S)[0]
    assert "逾期办结" in status and "2026年4月20日 10:00" in status and "晚于期限" in status
    unresolved = notice_id(f"notice.unresolved|红河镇|{notice_id(F1)}")
    assert f'href="/notices/{unresolved}" id="escalation"' in status


def test_no_deadline_shown_for_a_notice_nobody_signed_for(site: Served) -> None:
    """The 1 July notice was not signed for: no 办结期限 on its page."""
    html = Client(site.port).get(f"/notices/{notice_id('inspection.frequency_due|红河镇|E1|2026-07-01')}").text
    assert "通知详情" in html and 'id="resolution"' not in html
