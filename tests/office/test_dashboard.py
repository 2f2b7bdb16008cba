"""The dashboard pages over plain HTTP (no browser): headings, no external URLs, and who may
签收 / 办结 — a department that is not a recipient and a form without its CSRF token are
refused and nothing is recorded. The server is the real app (``make_app``) on 127.0.0.1."""
from __future__ import annotations

import asyncio
import http.client
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape as html_escape
from html.parser import HTMLParser
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from aiohttp import web

import known_county as kc
from office_support import county, make_service, service_in  # noqa: F401  (a fixture)

TOKENS = {"hh-fso": "hh-fso-token-0123", "hh-vet": "hh-vet-token-0123", "bq-fso": "bq-fso-token-0123"}
PAGES = {"/": "待办通知", "/?state=closed": "已办结通知", f"/notices/{kc.HH_NOTICE}": "通知详情",
         "/reports": "月报报送", "/rates": "抽检合格率", "/pace": "抽检进度", "/calendar": "期限与节前检查",
         "/login": "登录"}
#: the list narrowed to the rule of the fixture's 红河镇 sample notice (the oldest notice: on
#: the last page of the unfiltered list)
HH_LIST = "/?rule=sample.unqualified"


def token_county() -> dict[str, Any]:
    """The example county with department tokens (so staff must log in)."""
    return county(service={"listen": "127.0.0.1:0", "data_dir": "data",
                           "tokens": {d: {"token": t} for d, t in TOKENS.items()}})


class Served:
    """The app on a free port of 127.0.0.1, in a thread with its own event loop. The service
    is built in that thread too: its SQLite connections belong to the thread that made them,
    so anything touching the service goes through :meth:`call`."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self.build = build
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(60)

    async def _start(self) -> None:
        from shian.office.api import make_app

        self.service = self.build()
        self.runner = web.AppRunner(make_app(self.service, self.service.storage))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{self.port}"

    async def _stop(self) -> None:
        await self.runner.cleanup()
        self.service.store.close()
        self.service.outbox.close()

    def __enter__(self) -> Served:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(120)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def acks(self) -> list[dict[str, Any]]:
        return self.call(lambda: self.service.store.events(["ack"]))


def serve_known(make_service: Callable[..., Any], config: dict[str, Any] | None = None) -> Served:
    """The known-answer county at its NOW (every fixture event accepted, deadlines fired)."""
    def build() -> Any:
        svc = make_service(config, now=lambda: kc.NOW)
        kc.fill(svc)
        return svc
    return Served(build)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    text: str


class Client:
    """Plain HTTP with a cookie jar of one site (enough for the session cookie)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.set_cookie: list[str] = []

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        hdrs = dict(headers or {})
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        for raw in resp.headers.get_all("Set-Cookie") or []:
            self.set_cookie.append(raw)
            name, _, rest = raw.partition("=")
            value = rest.split(";", 1)[0]
            if value and "max-age=0" not in raw.lower():
                self.cookies[name.strip()] = value.strip('"')
            else:
                self.cookies.pop(name.strip(), None)
        conn.close()
        return Reply(resp.status, resp.headers, text)

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, form: dict[str, str]) -> Reply:
        return self.request("POST", path, form)

    def csrf(self, path: str = "/") -> str:
        m = re.search(r'name="csrf" value="([^"]+)"', self.get(path).text)
        assert m, "the page has no CSRF token"
        return m.group(1)

    def login(self, dept: str) -> None:
        r = self.post("/login", {"csrf": self.csrf("/login"), "token": TOKENS[dept]})
        assert r.status == 303, r.text


def notice_row(html: str, notice_id: str) -> str:
    m = re.search(rf'<tr id="notice-{notice_id}".*?</tr>', html, re.S)
    return m.group(0) if m else ""


@pytest.fixture
def open_site(make_service):
    with serve_known(make_service) as site:
        yield site


@pytest.fixture(scope="module")
def known_site(tmp_path_factory: pytest.TempPathFactory):
    """The known-answer county at NOW, open access, shared by the tests that only read it."""
    def build() -> Any:
        svc = service_in(tmp_path_factory.mktemp("known"), now=lambda: kc.NOW)
        kc.fill(svc)
        return svc
    with Served(build) as site:
        yield site


@pytest.fixture
def token_site(make_service):
    with serve_known(make_service, token_county()) as site:
        yield site


def test_pages_answer_in_chinese(known_site: Served) -> None:
    c = Client(known_site.port)
    for path, heading in PAGES.items():
        r = c.get(path)
        assert r.status == 200, (path, r.text[:500])
        assert r.headers["Content-Type"].startswith("text/html"), path
        assert '<html lang="zh-CN">' in r.text, path
        assert re.search(rf"<h1>[^<]*{heading}[^<]*</h1>", r.text), (path, heading)
        assert "西平县" in r.text, path
        assert "default-src 'self'" in r.headers["Content-Security-Policy"], path
    css = c.get("/static/dashboard.css")
    assert css.status == 200 and '"Noto Sans CJK SC"' in css.text and "Microsoft YaHei" in css.text


def test_no_external_urls_in_pages(known_site: Served) -> None:
    c = Client(known_site.port)
    for path in [*PAGES, "/rates?period=2026", "/reports?" + urlencode({"months": 12, "township": "红河镇"})]:
        html = c.get(path).text
        refs = re.findall(r'\b(?:src|href|action)\s*=\s*["\']([^"\']*)["\']', html)
        assert refs, path
        external = [u for u in refs if re.match(r"(?i)(https?:)?//", u.strip())]
        assert external == [], (path, external)
        assert not re.search(r"(?i)@import|url\(\s*['\"]?(https?:)?//", html), path
    css = c.get("/static/dashboard.css").text
    assert not re.search(r"(?i)@import|url\(\s*['\"]?(https?:)?//", css)


def test_figure_pages_show_the_known_answers(known_site: Served) -> None:
    c = Client(known_site.port)
    rates = c.get("/rates").text
    row = re.search(r'<tr data-township="红河镇" data-program="food_sampling".*?</tr>', rates, re.S).group(0)
    assert 'data-rate="95.0"' in row and 'data-below="true"' in row
    assert "19/20" in row and "95.0%" in row and "未达标" in row and "食品安全抽检" in row
    assert "<svg" in rates and 'class="target"' in rates
    board = c.get("/reports").text
    assert re.search(r'data-reporter="红河村"\s+data-period="2026-04" data-status="late">逾期', board)
    assert re.search(r'data-reporter="新寨村"\s+data-period="2026-04" data-status="missing">未报', board)
    pace = c.get("/pace").text
    row = re.search(r'<tr data-township="红河镇".*?</tr>', pace, re.S).group(0)
    assert 'data-batches="31"' in row and 'data-target="120"' in row and kc.EXPECTED_HONGHE_TARGET_TO_DATE in row
    cal = c.get("/calendar").text
    assert re.search(r'data-township="红河镇" data-holiday="劳动节" data-status="done"', cal)
    assert re.search(r'data-township="板桥镇" data-holiday="劳动节" data-status="missed"', cal)
    for holiday in ("元旦", "春节", "劳动节", "国庆节"):
        assert f"2027年{holiday}" in cal


def test_text_from_events_is_escaped(known_site: Served) -> None:
    c = Client(known_site.port)
    for path in ("/?rule=sample.unqualified", f"/notices/{kc.HH_NOTICE}"):
        html = c.get(path).text
        assert "<script" not in html.lower(), path
        assert "=cmd|&#39; /C calc&#39;!A0" in html, path     # the fixture's formula-like entity, as text


def test_csrf_missing_or_wrong_is_refused(open_site: Served) -> None:
    c = Client(open_site.port)
    c.get("/")                                    # a session, but no token in the form
    before = len(open_site.acks())
    form = {"notice_id": kc.HH_NOTICE, "action": "签收", "dept": "hh-fso"}
    assert c.post("/board/ack", form).status == 403
    assert c.post("/board/ack", {**form, "csrf": "not-the-token"}).status == 403
    assert Client(open_site.port).post("/board/ack", {**form, "csrf": c.csrf()}).status == 403  # no cookie
    assert len(open_site.acks()) == before


def test_open_access_acts_for_the_chosen_recipient_only(open_site: Served) -> None:
    c = Client(open_site.port)
    html = c.get(HH_LIST).text
    row = notice_row(html, kc.HH_NOTICE)
    assert 'name="dept"' in row and 'value="hh-vet"' in row and "签收" in row
    before = len(open_site.acks())
    refused = c.post("/board/ack", {"csrf": c.csrf(), "notice_id": kc.HH_NOTICE, "action": "签收", "dept": "bq-fso"})
    assert refused.status == 403 and "不是这条通知的接收部门" in refused.text
    assert len(open_site.acks()) == before
    done = c.post("/board/ack", {"csrf": c.csrf(), "notice_id": kc.HH_NOTICE, "action": "办结", "dept": "hh-fso",
                                 "note": "已下架"})
    assert done.status == 303
    last = open_site.acks()[-1]
    assert (last["notice_id"], last["by"], last["action"], last["note"]) == (kc.HH_NOTICE, "hh-fso", "办结", "已下架")
    assert notice_row(c.get(HH_LIST).text, kc.HH_NOTICE) == ""     # closed: no longer open


def test_login_sets_a_strict_httponly_cookie_and_refuses_a_wrong_token(token_site: Served) -> None:
    c = Client(token_site.port)
    page = c.get("/login")
    assert 'type="password"' in page.text and '<label for="token">' in page.text
    cookie = c.set_cookie[-1].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    wrong = c.post("/login", {"csrf": c.csrf("/login"), "token": "not-a-token-at-all"})
    assert wrong.status == 403 and "令牌不正确" in wrong.text
    assert c.post("/login", {"token": TOKENS["hh-fso"]}).status == 403     # no CSRF token
    old = dict(c.cookies)
    c.login("hh-fso")
    assert c.cookies != old                                     # a new session id after login
    home = c.get("/").text
    assert 'id="dept-name">红河镇食安办<' in home
    c.post("/logout", {"csrf": c.csrf()})
    assert 'id="dept-name"' not in c.get("/").text


def test_department_that_is_not_a_recipient_is_refused(token_site: Served) -> None:
    c = Client(token_site.port)
    anonymous = c.get("/?scope=all").text
    assert 'action="/board/ack"' not in anonymous                # not logged in: no buttons
    before = len(token_site.acks())
    assert c.post("/board/ack", {"csrf": c.csrf("/login"), "notice_id": kc.HH_NOTICE, "action": "签收"}).status == 403
    c.login("bq-fso")
    row = notice_row(c.get("/?scope=all&rule=sample.unqualified").text, kc.HH_NOTICE)
    assert row and 'action="/board/ack"' not in row              # listed, but no form for bq-fso
    refused = c.post("/board/ack", {"csrf": c.csrf(), "notice_id": kc.HH_NOTICE, "action": "签收",
                                    "dept": "hh-vet"})           # a chosen dept is ignored with tokens
    assert refused.status == 403 and "板桥镇食安办不是这条通知的接收部门" in refused.text
    assert len(token_site.acks()) == before


def test_recipient_acknowledges_and_sees_it_marked(token_site: Served) -> None:
    c = Client(token_site.port)
    c.login("hh-fso")
    row = notice_row(c.get(HH_LIST).text, kc.HH_NOTICE)
    assert 'data-acked="true"' in row            # hh-vet acked it in the fixture
    assert 'data-action="签收"' in row and 'data-action="办结"' in row    # hh-fso has not yet
    r = c.post("/board/ack", {"csrf": c.csrf(), "notice_id": kc.HH_NOTICE, "action": "签收", "back": "//evil"})
    assert r.status == 303 and r.headers["Location"] == "/"
    last = token_site.acks()[-1]
    assert (last["notice_id"], last["by"], last["action"]) == (kc.HH_NOTICE, "hh-fso", "签收")
    home = c.get(HH_LIST).text
    assert "红河镇食安办已签收" in home
    row = notice_row(home, kc.HH_NOTICE)
    assert 'data-action="签收"' not in row and 'data-action="办结"' in row and "红河镇食安办" in row


# -- the notice list: filters, paging, states ------------------------------------------------

RANK = {"critical": 0, "warning": 1, "info": 2}
#: (query, the filters it means): unknown values filter nothing
LIST_CASES: list[tuple[dict[str, str], dict[str, str]]] = [
    ({}, {}),
    ({"township": "红河镇"}, {"township": "红河镇"}),
    ({"rule": "report.overdue"}, {"rule": "report.overdue"}),
    ({"severity": "critical", "state": "all"}, {"severity": "critical", "state": "all"}),
    ({"state": "open"}, {"state": "open"}),
    ({"state": "acked"}, {"state": "acked"}),
    ({"state": "closed"}, {"state": "closed"}),
    ({"state": "all", "month": "2026-04"}, {"state": "all", "month": "2026-04"}),
    ({"month": "2026-05", "dept": "hh-fso"}, {"month": "2026-05", "dept": "hh-fso"}),
    ({"month": "2025-01", "state": "all"}, {"month": "2025-01", "state": "all"}),        # before any notice
    ({"township": "板桥镇", "severity": "warning", "state": "all"},
     {"township": "板桥镇", "severity": "warning", "state": "all"}),
    ({"township": "不存在镇", "rule": "no.such", "severity": "x", "state": "x", "month": "2026-13", "dept": "x"}, {}),
]


def expected_ids(site: Served, means: dict[str, str]) -> list[str]:
    """The ids the list must show, in order, worked out here from every stored notice and
    every ack: 紧急 first then the newest; 已办结 by when closed, the latest first."""
    def work() -> tuple[list[Any], list[dict[str, Any]]]:
        return site.service.notices(), site.service.store.events(["ack"])

    notices, acks = site.call(work)
    tz = notices[0].at.tzinfo
    named = {a["notice_id"] for a in acks}
    closed_at: dict[str, str] = {}
    for a in acks:
        if a["action"] == "办结":
            closed_at[a["notice_id"]] = min(closed_at.get(a["notice_id"], a["acked_at"]), a["acked_at"])

    def state(n: Any) -> str:
        if n.id in closed_at or n.key in closed_at:
            return "closed"
        return "acked" if n.id in named or n.key in named else "open"

    want = means.get("state", "pending")
    chosen = [(i, n) for i, n in enumerate(notices)
              if all(means.get(f) in (None, getattr(n, f)) for f in ("township", "rule", "severity"))
              and means.get("month") in (None, f"{n.at.astimezone(tz):%Y-%m}")
              and means.get("dept") in (None, *n.recipients)
              and (want == "all" or state(n) == want or (want == "pending" and state(n) != "closed"))]
    if want == "closed":
        chosen.sort(key=lambda x: (closed_at.get(x[1].id) or closed_at[x[1].key], x[1].id), reverse=True)
    else:
        chosen.sort(key=lambda x: (RANK[x[1].severity], -x[1].at.timestamp(), -x[0]))
    return [n.id for _, n in chosen]


def listed(c: Client, path: str) -> tuple[list[str], list[str]]:
    """The notice ids on ``path`` and on every page after it (following 下一页), and the
    pages' paths."""
    ids, paths = [], []
    while path:
        html = c.get(path).text
        paths.append(path)
        ids += re.findall(r'<tr id="notice-(\w+)"', html)
        m = re.search(r'<a href="([^"]+)" data-rel="next"', html)
        path = m.group(1).replace("&amp;", "&") if m else ""
    return ids, paths


def card(html: str, attr: str, value: str) -> int:
    m = re.search(rf'<li class="count [^"]*" data-{attr}="{value}" data-count="(\d+)"', html)
    assert m, (attr, value)
    return int(m.group(1))


def test_filters_list_what_they_name_in_order_across_pages(known_site: Served) -> None:
    """Each filter (and their combinations) lists exactly the notices it names, urgent and
    newest first, page after page, and the form shows it chosen; unknown values filter
    nothing; the cards count each state and severity under the other filters."""
    c = Client(known_site.port)
    for query, means in LIST_CASES:
        path = "/?" + urlencode(query) if query else "/"
        ids, pages = listed(c, path)
        assert ids == expected_ids(known_site, means), query
        first = c.get(path).text
        assert re.search(rf'data-total="{len(ids)}" data-page="1"', first), query
        for name, value in means.items():                   # the form shows what is filtered
            assert re.search(rf'<select id="f-{name}" name="{name}">.*?<option value="{value}" selected>',
                             first, re.S), (query, name)
        for st in ("open", "acked", "closed"):
            assert card(first, "state", st) == len(expected_ids(known_site, {**means, "state": st})), (query, st)
        for sev in RANK:
            assert card(first, "severity", sev) == len(expected_ids(known_site, {**means, "severity": sev})), (query, sev)
        assert len(pages) == max(1, -(-len(ids) // 50)), query


#: (page asked, page shown) of the unfiltered list of every state (108 notices: 3 pages)
PAGING = [("1", 1), ("2", 2), ("3", 3), ("99", 3), ("0", 1), ("-2", 1), ("abc", 1)]


def test_pages_hold_fifty_and_every_page_link_keeps_the_filters(known_site: Served) -> None:
    """Pages of 50; a page beyond the last shows the last, a page that is not a number the
    first; every link of the pager carries the filters and no other page number."""
    c = Client(known_site.port)
    total = len(expected_ids(known_site, {"state": "all"}))
    assert total > 100                            # three pages: the cases below depend on it
    for asked, shown in PAGING:
        html = c.get("/?" + urlencode({"state": "all", "township": "", "page": asked})).text
        assert f'data-page="{shown}"' in html, asked
        rows = re.findall(r'<tr id="notice-', html)
        assert len(rows) == (50 if shown < 3 else total - 100), asked
        pager = re.search(r'<nav class="pager".*?</nav>', html, re.S).group(0)
        assert re.search(rf'<span aria-current="page" data-rel="page">{shown}</span>', pager), asked
        for href in re.findall(r'href="([^"]+)"', pager):
            q = parse_qs(urlsplit(href.replace("&amp;", "&")).query)
            assert q.pop("state") == ["all"] and q.pop("page", ["1"]) != [str(shown)] and q == {}, (asked, href)
        assert (' rel="prev"' in pager) == (shown > 1) and (' rel="next"' in pager) == (shown < 3), asked


def test_filters_survive_an_ack_and_the_home_page_stays_small(open_site: Served) -> None:
    """签收 from a filtered page returns to that page; the home page lists one page of 50 of
    the 100-odd notices, not all of them."""
    c = Client(open_site.port)
    home = c.get("/")
    assert len(re.findall(r'<tr id="notice-', home.text)) == 50 and len(home.text.encode()) < 150_000
    path = "/?" + urlencode({"township": "红河镇", "state": "open", "page": "1"})
    page = c.get(path).text
    nid = re.findall(r'<tr id="notice-(\w+)"', page)[0]
    back = re.search(rf'name="notice_id" value="{nid}">\s*<input type="hidden" name="back" value="([^"]+)"',
                     page).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(back).query) == {"township": ["红河镇"], "state": ["open"]}
    dept = re.search(rf'<select id="dept-{nid}" name="dept">\s*<option value="([^"]+)"', page).group(1)
    r = c.post("/board/ack", {"csrf": c.csrf(), "notice_id": nid, "action": "签收", "dept": dept, "back": back})
    assert r.status == 303 and r.headers["Location"] == back
    assert notice_row(c.get(back).text, nid) == ""              # signed for: no longer 未签收
    assert notice_row(c.get(back.replace("open", "acked")).text, nid) != ""


def test_closed_view_says_who_closed_what_when_with_the_note(open_site: Served) -> None:
    """已办结 lists closed notices, the latest closed first, each with the closing department's
    name, the time and the note."""
    c = Client(open_site.port)
    c.post("/board/ack", {"csrf": c.csrf(), "notice_id": kc.HH_NOTICE, "action": "办结", "dept": "hh-fso",
                          "note": "已下架，处罚决定书已送达"})
    html = c.get("/?state=closed").text
    assert re.findall(r'<tr id="notice-(\w+)"', html) == [kc.HH_NOTICE, kc.BQ_NOTICE]
    names = open_site.service.config.departments
    for nid, by, at, note in ((kc.HH_NOTICE, "hh-fso", "2026年5月10日 10:00", "已下架，处罚决定书已送达"),
                              (kc.BQ_NOTICE, "bq-vet", "2026年4月20日 17:30", "已下架并立案查处")):
        row = notice_row(html, nid)
        cells = {k: re.search(rf'<td class="closed-{k}">(.*?)</td>', row, re.S).group(1) for k in ("by", "at", "note")}
        assert cells == {"by": names[by].name, "at": at, "note": note}, nid
    assert 'aria-current="page">已办结<' in html


# -- the notice page ---------------------------------------------------------------------------

def test_notice_page_shows_facts_recipients_deliveries_and_history(open_site: Served) -> None:
    """A notice's page: its facts under Chinese labels, its recipients by name with their
    签收, each delivery row (channel, state, attempts, last error) and the 签收 / 办结 history."""
    svc = open_site.service

    def fail_once() -> Any:
        from shian.notifiers.timing import Next
        batch = next(b for b in svc.outbox.due(kc.NOW + timedelta(days=400)) if kc.HH_NOTICE in
                     {n.id for n in b.notices})
        svc.outbox.start(batch, kc.NOW)
        svc.outbox.finish(batch.id, Next("pending", kc.NOW + timedelta(minutes=5)), kc.NOW, "SMTP 550 邮箱不存在")
        return svc.notice(kc.HH_NOTICE), svc.deliveries_of(kc.HH_NOTICE), batch.dept

    notice, deliveries, failed_dept = open_site.call(fail_once)
    names = svc.config.departments
    html = Client(open_site.port).get(f"/notices/{kc.HH_NOTICE}").text
    facts = dict(re.findall(r'<tr><th scope="row">(.*?)</th><td>(.*?)</td></tr>',
                            re.search(r'<table id="facts".*?</table>', html, re.S).group(0)))
    assert facts["被抽样单位"] == "=cmd|&#39; /C calc&#39;!A0" and facts["样品编号"] == kc.HH_UNQUALIFIED
    assert facts["抽检类别"] == "食品安全抽检"
    recipients = re.findall(r'<tr data-status="(\w+)"><th scope="row">(.*?)</th>', html)
    assert recipients == [("acked" if d == "hh-vet" else "open", names[d].name) for d in notice.recipients]
    rows = re.findall(r'<tr data-state="(\w+)">\s*<th scope="row">(.*?)</th><td>(.*?)</td><td class="dl-\w+">(.*?)</td>'
                      r'\s*<td class="num">(\d+)</td>.*?<td class="error">(.*?)</td>', html, re.S)
    assert [(r[0], r[1], r[4]) for r in rows] == [(d.state, names[d.dept].name, str(d.attempts)) for d in deliveries]
    failed = [r for r in rows if r[1] == names[failed_dept].name]
    assert failed and all(r[3] == "待发送" and r[4] == "1" and r[5] == "SMTP 550 邮箱不存在" for r in failed)
    history = re.findall(r'<tr data-action="(.*?)"><td>(.*?)</td><th scope="row">(.*?)</th><td>.*?</td><td>(.*?)</td>',
                         html)
    assert history == [("签收", "2026年4月8日 16:00", names["hh-vet"].name, "=1+1 已控制同批次产品")]


def test_notice_page_links_the_notice_it_escalates_and_refuses_an_unknown_id(known_site: Served) -> None:
    """A 督办 of an unsigned notice links the notice it is about; an unknown id is a 404 in Chinese."""
    c = Client(known_site.port)
    unack = next(n for n in known_site.call(known_site.service.notices) if n.rule == "notice.unacknowledged")
    html = c.get(f"/notices/{unack.id}").text
    assert f'<a href="/notices/{unack.facts["notice_id"]}" id="related">' in html
    for bad in ("0123456789abcdef", "x" * 300, "%3Cscript%3E"):
        r = c.get(f"/notices/{bad}")
        assert r.status == 404 and "没有编号为" in r.text and "<script" not in r.text, bad


class TextOnly(HTMLParser):
    """The text a reader sees (no attribute values)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def test_pages_name_departments_never_by_their_ids(known_site: Served) -> None:
    """No department id is shown as text on the list (every state), the notice pages or the 期限
    page: names everywhere (ids only in form values)."""
    c = Client(known_site.port)
    ids = set(known_site.service.config.departments)
    some = expected_ids(known_site, {"state": "all"})[::20]
    for path in ["/", "/?state=all", "/?state=all&page=3", "/?state=closed", "/calendar", "/?scope=all",
                 *(f"/notices/{nid}" for nid in some)]:
        page = TextOnly()
        page.feed(c.get(path).text)
        words = set(re.findall(r"[a-z][a-z0-9-]*", " ".join(page.parts)))
        assert words & ids == set(), path


# -- figure pages and the 期限 page, months after the data ---------------------------------------

LATE = datetime(2026, 12, 2, 12, 0, tzinfo=kc.TZ)
#: (path, what it shows) at the fixture's NOW (10 May) and months later (2 December): the
#: figure pages open on the latest month with data, not on an empty current month; a month
#: asked for is shown
OPENING_NOW = [("/rates", 'id="period" data-period="2026-04"'),        # April judged; May still open
               ("/reports", 'id="tally" data-period="2026-05"'),
               ("/pace", 'data-year="2026"')]
OPENING_LATE = [("/rates", 'id="period" data-period="2026-05"'),       # the latest judged month with samples
                ("/rates?period=2026-04", 'id="period" data-period="2026-04"'),
                ("/reports", 'id="tally" data-period="2026-05"'),      # 镇卫生院's May report
                ("/reports?month=2026-04", 'id="tally" data-period="2026-04"'),
                ("/reports?month=2030-01", 'id="tally" data-period="2026-05"'),
                ("/pace", 'data-year="2026"'), ("/pace?year=2025", 'data-year="2025"')]


def test_figure_pages_open_on_the_month_the_rules_judged(known_site: Served) -> None:
    """On the fixture's NOW: 合格率 on April (judged), not the open May; 月报报送 up to May."""
    c = Client(known_site.port)
    for path, shown in OPENING_NOW:
        assert shown in c.get(path).text, path


def test_months_after_the_data_pages_open_on_the_latest_month_with_data(make_service) -> None:
    """Started months after its data (as the demo is), 合格率 and 月报报送 open on the last
    month with data, showing that month's figures, and the 期限 page names what each deadline
    is about."""
    def build() -> Any:
        svc = make_service(None, now=lambda: LATE)
        kc.fill(svc)
        return svc

    with Served(build) as site:
        c = Client(site.port)
        for path, shown in OPENING_LATE:
            assert shown in c.get(path).text, path
        board = c.get("/reports").text
        assert re.search(r'data-reporter="新寨村"\s+data-period="2026-04" data-status="missing">未报', board)
        assert "19/20" in c.get("/rates?period=2026-04").text
        deadlines_name_their_objects(site, c.get("/calendar").text)


def deadlines_name_their_objects(site: Served, html: str) -> None:
    """Every row of 即将到期的期限 names its object, no two rows alike; a 督办 deadline links the
    notice waiting for 签收."""
    table = re.search(r'<table id="upcoming">.*?</table>', html, re.S).group(0)
    rows = re.findall(r'<tr data-rule="([\w.]+)"><td>(.*?)</td><td>.*?</td><td>(.*?)</td>\s*<td class="object">(.*?)</td>',
                      table, re.S)
    assert len(rows) == 20
    assert len(set(rows)) == len(rows)
    assert all(obj.strip() and obj.strip() != "—" for *_, obj in rows)
    linked = [re.search(r'href="/notices/(\w+)">(.*?)</a>', obj) for rule, *_, obj in rows
              if rule == "notice.unacknowledged"]
    assert linked and all(m for m in linked)
    for m in linked:
        n = site.call(site.service.notice, m.group(1))
        assert n is not None and html_escape(n.title) == m.group(2)
