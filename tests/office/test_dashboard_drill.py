"""渠道测试 on the dashboard (``/drill``): the county office sends the fire drill's test message
over every channel and sees each channel's answer — 已送达, or the SMTP server's own refusal —;
a town office is refused (403), and so is a form without its CSRF token. A real SMTP server
(aiosmtpd) and the real app, both on 127.0.0.1."""
from __future__ import annotations

import contextlib
import re
import socket
from html import unescape
from typing import Any, Iterator

import pytest
from aiosmtpd.controller import Controller

from office_support import county, make_service  # noqa: F401  (a fixture)
from test_dashboard import TOKENS, Client, Served, serve_known

COUNTY_TOKEN = "county-fso-token-0123"
REFUSAL = "550 5.1.1 <shianban@honghe.xiping.example>: Recipient address rejected: User unknown"


class Recorder:
    """Keeps what it accepts; refuses at RCPT the addresses starting with a prefix of ``refuse``."""

    def __init__(self, refuse: dict[str, str] | None = None) -> None:
        self.refuse = refuse or {}
        self.rcpts: list[str] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        for prefix, reply in self.refuse.items():
            if address.startswith(prefix):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.rcpts.extend(envelope.rcpt_tos)
        return "250 Message accepted"


@contextlib.contextmanager
def smtp(handler: Recorder) -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def smtp_county(port: int) -> dict[str, Any]:
    """The example county sending e-mail to the local server, with tokens for the county office too."""
    tokens = {**TOKENS, "county-fso": COUNTY_TOKEN}
    return county(notifiers={"outbox": "outbox.sqlite", "quiet_hours": False, "group_wait_seconds": 0,
                             "digest": None,
                             "smtp": {"host": "127.0.0.1", "port": port, "security": "none",
                                      "from": "食安预警 <shian@xiping.example>"}},
                  service={"listen": "127.0.0.1:0", "data_dir": "data",
                           "tokens": {d: {"token": t} for d, t in tokens.items()}})


def county_login(c: Client) -> None:
    r = c.post("/login", {"csrf": c.csrf("/login"), "token": COUNTY_TOKEN})
    assert r.status == 303, r.text


def results(html: str) -> dict[str, tuple[str, str, str]]:
    """The drill's table: department id → (channel, result, reply)."""
    rows = re.findall(r'<tr class="drill-result [a-z]+" data-dept="([^"]+)">\s*<td class="dept">[^<]*</td>\s*'
                      r'<td class="channel">([^<]*)</td>\s*<td class="state">([^<]*)</td>\s*'
                      r'<td class="reply">([^<]*)</td>', html)
    return {d: (unescape(ch), st, unescape(reply)) for d, ch, st, reply in rows}


@pytest.fixture
def site(make_service, request: pytest.FixtureRequest):
    """The known county on tokens, e-mailing a local SMTP server refusing what the test's param says."""
    handler = Recorder(getattr(request, "param", None))
    with smtp(handler) as port, serve_known(make_service, smtp_county(port)) as served:
        served.smtp = handler
        yield served


def test_county_office_runs_the_drill_and_sees_delivered(site: Served) -> None:
    """The county office's 渠道测试 menu entry and form; one department: its e-mail 已送达, the mail sent."""
    c = Client(site.port)
    county_login(c)
    assert 'href="/drill"' in c.get("/").text
    page = c.get("/drill")
    assert page.status == 200 and "<h1>通知渠道测试</h1>" in page.text
    r = c.post("/drill", {"csrf": c.csrf("/drill"), "dept": "hh-fso"})
    assert r.status == 200, r.text
    assert results(r.text) == {"hh-fso": ("电子邮件", "已送达", "—")}
    assert site.smtp.rcpts == ["shianban@honghe.xiping.example"]
    assert "合计：1 个部门、1 个渠道；送达 1，未送达 0" in r.text


def test_all_departments_by_default(site: Served) -> None:
    """No department chosen: every department is tried, each with its e-mail."""
    c = Client(site.port)
    county_login(c)
    r = c.post("/drill", {"csrf": c.csrf("/drill")})
    found = results(r.text)
    assert r.status == 200 and set(found) == set(site.service.config.departments)
    assert all(v == ("电子邮件", "已送达", "—") for v in found.values()), found


@pytest.mark.parametrize("site", [{"shianban@honghe": REFUSAL}], indirect=True)
def test_a_refusing_server_shows_its_reply(site: Served) -> None:
    """The SMTP server refusing the address: 未送达 with the reply code and text as the server gave them."""
    c = Client(site.port)
    county_login(c)
    r = c.post("/drill", {"csrf": c.csrf("/drill"), "dept": "hh-fso"})
    channel, state, reply = results(r.text)["hh-fso"]
    assert (channel, state) == ("电子邮件", "未送达") and REFUSAL in reply, reply
    assert site.smtp.rcpts == []


def test_a_town_office_is_refused(site: Served) -> None:
    """A town office's login: no menu entry, and the page and the form answer 403 in Chinese; nothing sent."""
    c = Client(site.port)
    c.login("hh-fso")
    token = c.csrf("/")
    assert 'href="/drill"' not in c.get("/").text
    for r in (c.get("/drill"), c.post("/drill", {"csrf": token, "dept": "hh-fso"})):
        assert r.status == 403 and "只有县食安办可以测试通知渠道" in r.text, r.text[:300]
    assert site.smtp.rcpts == []


@pytest.mark.parametrize("form", [{}, {"csrf": "not-the-token"}], ids=["missing", "wrong"])
def test_a_form_without_its_csrf_token_is_refused(site: Served, form: dict[str, str]) -> None:
    """The county office's own session, but the form lacks its CSRF token: 403, nothing sent."""
    c = Client(site.port)
    county_login(c)
    r = c.post("/drill", {**form, "dept": "hh-fso"})
    assert r.status == 403 and "校验码" in r.text
    assert site.smtp.rcpts == []


def test_an_unknown_department_is_refused(site: Served) -> None:
    """A department id not in the config: 400 naming it, nothing sent."""
    c = Client(site.port)
    county_login(c)
    r = c.post("/drill", {"csrf": c.csrf("/drill"), "dept": "nowhere"})
    assert r.status == 400 and "未知的部门“nowhere”" in r.text
    assert site.smtp.rcpts == []


def test_without_tokens_anyone_at_the_desk_machine_may_run_it(make_service) -> None:
    """No tokens (open access, loopback): the menu shows 渠道测试 and the drill runs without a login."""
    config = smtp_county(1)
    config["service"] = {"listen": "127.0.0.1:0", "data_dir": "data"}
    handler = Recorder()
    with smtp(handler) as port:
        config["notifiers"]["smtp"]["port"] = port
        with serve_known(make_service, config) as served:
            c = Client(served.port)
            assert 'href="/drill"' in c.get("/").text
            r = c.post("/drill", {"csrf": c.csrf("/drill"), "dept": "county-fso"})
    assert r.status == 200 and results(r.text) == {"county-fso": ("电子邮件", "已送达", "—")}
    assert handler.rcpts == ["shianban@xiping.example"]
