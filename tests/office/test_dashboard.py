"""The dashboard pages over plain HTTP (no browser): headings, no external URLs, and who may
签收 / 办结 — a department that is not a recipient and a form without its CSRF token are
refused and nothing is recorded. The server is the real app (``make_app``) on 127.0.0.1."""
from __future__ import annotations

import asyncio
import http.client
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlencode

import pytest
from aiohttp import web

import known_county as kc
from office_support import county, make_service  # noqa: F401  (a fixture)

TOKENS = {"hh-fso": "hh-fso-token-0123", "hh-vet": "hh-vet-token-0123", "bq-fso": "bq-fso-token-0123"}
PAGES = {"/": "待办通知", "/reports": "月报报送", "/rates": "抽检合格率", "/pace": "抽检进度",
         "/calendar": "期限与节前检查", "/login": "登录"}


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


@pytest.fixture
def token_site(make_service):
    with serve_known(make_service, token_county()) as site:
        yield site


def test_pages_answer_in_chinese(open_site: Served) -> None:
    c = Client(open_site.port)
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


def test_no_external_urls_in_pages(open_site: Served) -> None:
    c = Client(open_site.port)
    for path in [*PAGES, "/rates?period=2026", "/reports?" + urlencode({"months": 12, "township": "红河镇"})]:
        html = c.get(path).text
        refs = re.findall(r'\b(?:src|href|action)\s*=\s*["\']([^"\']*)["\']', html)
        assert refs, path
        external = [u for u in refs if re.match(r"(?i)(https?:)?//", u.strip())]
        assert external == [], (path, external)
        assert not re.search(r"(?i)@import|url\(\s*['\"]?(https?:)?//", html), path
    css = c.get("/static/dashboard.css").text
    assert not re.search(r"(?i)@import|url\(\s*['\"]?(https?:)?//", css)


def test_figure_pages_show_the_known_answers(open_site: Served) -> None:
    c = Client(open_site.port)
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


def test_text_from_events_is_escaped(open_site: Served) -> None:
    html = Client(open_site.port).get("/").text
    assert "<script" not in html.lower()
    assert "=cmd|&#39; /C calc&#39;!A0" in html           # the fixture's formula-like entity, as text


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
    html = c.get("/").text
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
    assert notice_row(c.get("/").text, kc.HH_NOTICE) == ""     # closed: no longer open


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
    row = notice_row(c.get("/?scope=all").text, kc.HH_NOTICE)
    assert row and 'action="/board/ack"' not in row              # listed, but no form for bq-fso
    refused = c.post("/board/ack", {"csrf": c.csrf(), "notice_id": kc.HH_NOTICE, "action": "签收",
                                    "dept": "hh-vet"})           # a chosen dept is ignored with tokens
    assert refused.status == 403 and "板桥镇食安办不是这条通知的接收部门" in refused.text
    assert len(token_site.acks()) == before


def test_recipient_acknowledges_and_sees_it_marked(token_site: Served) -> None:
    c = Client(token_site.port)
    c.login("hh-fso")
    row = notice_row(c.get("/").text, kc.HH_NOTICE)
    assert 'data-acked="true"' in row            # hh-vet acked it in the fixture
    assert 'data-action="签收"' in row and 'data-action="办结"' in row    # hh-fso has not yet
    r = c.post("/board/ack", {"csrf": c.csrf(), "notice_id": kc.HH_NOTICE, "action": "签收", "back": "//evil"})
    assert r.status == 303 and r.headers["Location"] == "/"
    last = token_site.acks()[-1]
    assert (last["notice_id"], last["by"], last["action"]) == (kc.HH_NOTICE, "hh-fso", "签收")
    home = c.get("/").text
    assert "红河镇食安办已签收" in home
    row = notice_row(home, kc.HH_NOTICE)
    assert 'data-action="签收"' not in row and 'data-action="办结"' in row and "红河镇食安办" in row
