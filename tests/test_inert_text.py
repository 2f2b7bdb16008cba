"""Event text is inert wherever it is shown or sent: one table of hostile payloads, through every
template, every channel of the registry, the dashboard's pages and the report and ledger files.

For each payload, every non-empty text field of a notice of each rule (its facts at any depth,
its title and its township) holds that payload; the notices are rendered one by one, as a group
and as a digest, handed to each channel, listed on the pages and written to the exports. The
same notices with their own text are the control: escaping may change how event text looks,
never the markup, the lines or the headers around it, and the text stays visible.
"""
from __future__ import annotations

import asyncio
import dataclasses
import email.message
import email.policy
import re
import unicodedata
from collections import Counter
from datetime import date, datetime, timedelta
from fractions import Fraction
from functools import lru_cache
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import openpyxl
import pytest
from aiohttp.test_utils import make_mocked_request
from jinja2 import BaseLoader, Environment

from conftest import TZ, config_dict
from notice_month import april, first_of_each_rule
from shian.notifiers.channels import CHANNELS
from shian.notifiers.channels.email import as_bytes, build_message
from shian.notifiers.channels.robot import Robot
from shian.notifiers.message import Message
from shian.notifiers.outbox import Delivery, NoticeQuery
from shian.notifiers.render import PACKAGED, Renderer, in_code, md_lines, md_text
from shian.notifiers.settings import parse as parse_settings
from shian.office.dashboard import HERE as OFFICE_HERE, Dashboard
from shian.office.ledger import write_ledger
from shian.office.report import write_report
from shian.rules.config import parse as parse_config
from shian.rules.measures import (BoardRow, CampaignRow, Cell, DisposalRow, FrequencyRow, HealthRow, PaceRow, RateRow,
                                  ResolutionRow)
from shian.rules.notice import Notice

PAYLOADS = {
    "script": "<script>alert(1)</script>",
    "img": "<img src=x onerror=alert(1)>",
    "link": "[点此签收](http://evil.example/x)",
    "at_all": "@all",
    "mention": "<@U123>",
    "hyperlink": '=HYPERLINK("http://evil.example")',
    "plus": "+1+1",
    "list": "- 1. 假条目",
    "jinja_expr": "{{ 7*7 }}",
    "jinja_stmt": "{% for x in y %}",
    "bcc": "\r\nBcc: victim@example.com",
    "heading": "\n# 标题",
    "encoded_word": "=?utf-8?q?=0D=0ABcc:_victim@example.com?=",
    "tab_formula": "\t=1+1",
    "bell": "\x07@SUM(A1)",
}
CASES = pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))

# What must never appear in a card or a page, whatever the payload (compared lower-cased).
NEVER = ("<script", "<img", "](http", "http://evil", "@all", "<@u123>")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
NOW = datetime(2026, 5, 10, 10, 0, tzinfo=TZ)
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")   # what a spreadsheet reads as a formula (OWASP)
MAIL_HEADERS = {"From", "To", "Subject", "Date", "Message-ID", "X-Shian-Ref", "X-Shian-Notice-Ids", "X-Shian-Rule",
                "MIME-Version", "Content-Type"}
SENDER = "食安预警 <shian@localhost>"
ADDRESSES = ["hh-fso@honghe.example"]
WEBHOOK = "https://robot.example/send?key=0123456789"


def visible(text: str) -> str:
    """Text as a reader sees it: control characters are spaces, runs of blanks one space."""
    return " ".join(CONTROL.sub(" ", text).split())


def taint(value: Any, payload: str) -> Any:
    """``value`` with every non-empty string in it replaced by ``payload``; numbers, dates and
    flags (which choose a template's branches) kept."""
    if isinstance(value, str):
        return payload if value else value
    if isinstance(value, dict):
        return {k: taint(v, payload) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(taint(v, payload) for v in value)
    return value


def hostile(n: Notice, payload: str) -> Notice:
    return dataclasses.replace(n, title=payload, township=payload, facts=taint(n.facts, payload))


# -- rendering every template ------------------------------------------------------------------

class Recording(BaseLoader):
    """The renderer's loader, noting each template it is asked for."""

    def __init__(self, inner: BaseLoader) -> None:
        self.inner, self.names = inner, set()

    def get_source(self, environment: Environment, template: str) -> Any:
        self.names.add(template)
        return self.inner.get_source(environment, template)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Notice]]:
    return april(tmp_path_factory.mktemp("inert"))


@pytest.fixture(scope="module")
def renderer(month: tuple[Any, list[Notice]]) -> Renderer:
    r = Renderer(parse_settings(month[0], env={}))
    r.env.loader = r.md_env.loader = Recording(r.env.loader)
    return r


@pytest.fixture(scope="module")
def messages(month: tuple[Any, list[Notice]], renderer: Renderer) -> Callable[[str | None], list[tuple[str, Message]]]:
    """``messages(payload)``: (what, message) for a notice of every rule, a group and a digest,
    their text fields holding ``payload`` (None: their own text)."""
    by_rule = first_of_each_rule(month[1])

    @lru_cache(maxsize=None)
    def render(payload: str | None) -> list[tuple[str, Message]]:
        def made(n: Notice) -> Notice:
            return n if payload is None else hostile(n, payload)

        out = [(rule, renderer.notice(made(n), n.recipients[0])) for rule, n in sorted(by_rule.items())]
        newer = dataclasses.replace(by_rule["report.overdue"], rule="report.new_kind")  # the generic template
        out.append(("unknown rule", renderer.notice(made(newer), "hh-fso")))
        unqualified = [made(n) for n in month[1] if n.rule == "sample.unqualified"]
        out.append(("group", renderer.group(unqualified, "hh-agri")))
        everything = [made(n) for n in by_rule.values()]
        out.append(("digest", renderer.digest("hh-fso", date(2026, 4, 21), everything,
                                              [n for n in everything if n.due])))
        # the summary's month sections come from the period fact, kept like a date (it picks the section)
        late = [dataclasses.replace(made(n), facts={**made(n).facts, "period": n.facts["period"]})
                if "period" in n.facts else made(n) for n in by_rule.values() if n.severity != "critical"]
        out.append(("catch-up", renderer.catch_up(late, "hh-fso")))
        out.append(("late critical", renderer.catch_up([made(by_rule["sample.banned_substance"])], "hh-fso")))
        return out

    return render


def pairs(messages: Callable[[str | None], list[tuple[str, Message]]], payload: str):
    """(what, control, hostile) for every rendered message."""
    return [(what, mine, theirs) for (what, mine), (_, theirs) in zip(messages(None), messages(payload))]


_BLOCK = re.compile(r"(?:[ \t]*(?:>|(?:#{1,6}|[-+*]|\d{1,9}[.)])(?=[ \t]|$)))*")
_SETEXT = re.compile(r"[ \t]*(?:=+|-+)[ \t]*$")
_INLINE = re.compile(r"[\\`*_~|\[\]()<>&#@]|://|(?i:www\.)")


def skeleton(card: str) -> list[tuple[str, list[str]]]:
    """A card's markup: per line, its block markers (heading, quote, list items, a heading
    underline) and the markup characters in it, in order."""
    return [("=" if _SETEXT.match(line) else _BLOCK.match(line).group(), _INLINE.findall(line))
            for line in card.splitlines()]


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", visible(text))


@CASES
def test_markdown_cards_print_event_text_as_text(payload: str, messages) -> None:
    """Robot cards: event text adds no link, mention, tag, heading, list or line, and shows."""
    for what, mine, theirs in pairs(messages, payload):
        card = theirs.markdown
        assert not [s for s in NEVER if s in card.lower()], (what, card)
        assert skeleton(card) == skeleton(mine.markdown), (what, card)
        if what != "catch-up":  # the summary's card counts by month and rule: no event text in it
            assert nfkc(payload) in nfkc(card), (what, card)
        assert card.count("49") <= mine.markdown.count("49"), (what, card)


class Tags(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, ...]] = []
        self.text: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, *sorted(name for name, _ in attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.tags.append(("/" + tag,))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@CASES
def test_html_bodies_escape_event_text(payload: str, messages) -> None:
    """E-mail HTML: the same elements and attributes as with ordinary text; the payload is text."""
    for what, mine, theirs in pairs(messages, payload):
        page, control = Tags(theirs.html), Tags(mine.html)
        assert page.tags == control.tags, what
        assert visible(payload) in visible("".join(page.text)), what
        assert "<script" not in theirs.html.lower() and "<img" not in theirs.html.lower(), what
        assert theirs.html.count("49") <= mine.html.count("49"), what


@CASES
def test_plain_text_and_subject_keep_event_text_on_its_line(payload: str, messages) -> None:
    """Plain text: the payload shows as written, on the lines it belongs to; subjects are one line."""
    for what, mine, theirs in pairs(messages, payload):
        assert len(theirs.text.splitlines()) == len(mine.text.splitlines()), what
        assert visible(payload) in visible(theirs.text), what
        assert not any(line.startswith(("Bcc:", "# ")) for line in theirs.text.splitlines()), what
        assert not CONTROL.search(theirs.subject), what
        if what not in ("digest", "catch-up"):
            assert visible(payload) in theirs.subject, what


def test_every_template_is_rendered(messages, renderer: Renderer) -> None:
    """The cases above reach every packaged template: a new one is covered, or this fails."""
    messages(PAYLOADS["script"])
    assert {p.name for p in PACKAGED.iterdir() if p.is_file()} - renderer.env.loader.names == set()


@pytest.mark.parametrize("text, alone, in_line", [
    ("- 假条目", "－ 假条目", "- 假条目"),
    ("1. 假条目", "1． 假条目", "1. 假条目"),
    ("+1+1", "＋1+1", "+1+1"),
    ("===", "＝==", "==="),
    ("1.5 公斤", "1.5 公斤", "1.5 公斤"),
    ("[点此签收](http://evil.example/x)", "［点此签收］（http：//evil.example/x）",
     "［点此签收］（http：//evil.example/x）"),
    ("<@U123> @all", "＜＠U123＞ ＠all", "＜＠U123＞ ＠all"),
    ("**粗** _斜_ `码` # 题 > 引 | ~ \\ &lt;", "＊＊粗＊＊ ＿斜＿ ｀码｀ ＃ 题 ＞ 引 ｜ ～ ＼ ＆lt;",
     "＊＊粗＊＊ ＿斜＿ ｀码｀ ＃ 题 ＞ 引 ｜ ～ ＼ ＆lt;"),
    ("www.evil.example", "www．evil.example", "www．evil.example"),
    ("甲\n# 乙\u2028- 丙", "甲 ＃ 乙 - 丙", "甲 ＃ 乙 - 丙"),
    ("\ue001- 假", "－ 假", "- 假"),
])
def test_markdown_escape_cases(text: str, alone: str, in_line: str) -> None:
    """md_text: markup characters full-width; a list marker only where the value begins a line
    (alone, or after the template's own "- "), not inside one; printing twice changes nothing."""
    assert md_lines(md_text(text)) == alone
    assert md_lines("- " + md_text(text)) == "- " + alone
    assert md_lines("- 检查结论：" + md_text(text)) == "- 检查结论：" + in_line
    assert md_lines(md_text(md_lines(md_text(text)))) == alone


def test_code_spans_keep_the_command_and_cannot_be_closed() -> None:
    """in_code: an ack command stays copyable; a backtick, tag or mention in it is defused."""
    assert in_code("shian ack 8601f249ce79decb --by hh_agri --action 办结") == \
        "shian ack 8601f249ce79decb --by hh_agri --action 办结"
    assert in_code("x`<@U123>\n@all&") == "xˋ＜＠U123＞ ＠all＆"
    assert md_lines(md_text(in_code("`<@U1>"))) == "ˋ＜＠U1＞"


# -- every channel -----------------------------------------------------------------------------

@dataclasses.dataclass
class Wire:
    """What a channel sends for one message: a MIME message and / or a robot's card (and the
    DingTalk card's title, shown as plain text in the conversation list)."""
    mime: bytes | None = None
    card: str | None = None
    title: str | None = None


async def _email(channel: Any, message: Message, folder: Path) -> Wire:
    return Wire(mime=as_bytes(build_message(SENDER, "hh-fso", ADDRESSES, message)))


async def _robot(channel: Any, message: Message, folder: Path) -> Wire:
    """Every part the robot would send (one, unless the card is over its limit), joined."""
    robot = Robot(webhook=WEBHOOK)
    cards, titles = [], []
    for part in channel.parts(robot, message):
        _, body, _ = channel.request(WEBHOOK, robot, message, part)
        card = body["markdown"]
        cards.append(card.get("content") or card["text"])
        titles.append(card.get("title"))
    return Wire(card="\n\n".join(cards), title=titles[0])


# What splitting a card into parts adds: each part's numbered first line, the 未完 lines.
PART_LINES = re.compile(r".*（\d+/\d+(，接上条，编号 [^）]+)?）|……未完，接下条（\d+/\d+）|……（本条未完，接下条）")


async def _file(channel: Any, message: Message, folder: Path) -> Wire:
    result = await channel.send("hh-fso", channel_config(folder).departments["hh-fso"], message)
    assert result.outcome.value == "delivered", result
    out = folder / "hh-fso"
    return Wire(mime=(out / f"{message.ref}.eml").read_bytes(), card=(out / f"{message.ref}.md").read_text("utf-8"))


# How to see what each channel of the registry sends; a new channel must say how.
WIRES: dict[str, Callable[[Any, Message, Path], Any]] = {
    "email": _email, "wecom": _robot, "dingtalk": _robot, "file": _file}


@lru_cache(maxsize=None)
def channel_config(folder: Path) -> Any:
    return parse_config(config_dict(config_overrides={
        "departments": {"hh-fso": {"name": "红河镇食安办", "email": ADDRESSES,
                                   "wecom": {"webhook": WEBHOOK}, "dingtalk": {"webhook": WEBHOOK}}},
        "notifiers": {"smtp": {"host": "127.0.0.1", "port": 2525, "from": SENDER}, "file": {"dir": str(folder)}},
    }), path=str(folder / "county.yaml"))


def sent_by_every_channel(messages: list[tuple[str, Message]], folder: Path) -> dict[tuple[str, str], Wire]:
    """(channel, what) → what the channel sends for that message."""
    settings = parse_settings(channel_config(folder), env={})

    async def run() -> dict[tuple[str, str], Wire]:
        out = {}
        for spec in CHANNELS:
            channel = spec.make(settings)
            try:
                for what, message in messages:
                    out[spec.name, what] = await WIRES[spec.name](channel, message, folder)
            finally:
                await channel.close()
        return out

    return asyncio.run(run())


def headers(mime: bytes) -> email.message.EmailMessage:
    """A sent message's headers as a mail reader parses them (the bodies are base64 parts)."""
    return BytesParser(policy=email.policy.default).parsebytes(mime, headersonly=True)


@pytest.fixture(scope="module")
def control_headers(messages, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], list[str]]:
    """The header names each mail channel sends for the messages with their own text."""
    sent = sent_by_every_channel(messages(None), tmp_path_factory.mktemp("control"))
    return {key: headers(wire.mime).keys() for key, wire in sent.items() if wire.mime is not None}


def test_every_channel_of_the_registry_is_checked() -> None:
    """Each channel in CHANNELS has a way to see what it sends, so the case below covers it."""
    assert {c.name for c in CHANNELS} == set(WIRES)


def squeezed(text: str) -> str:
    return re.sub(r"[\s\u200b]", "", text)


@CASES
def test_every_channel_sends_the_escaped_text_and_only_its_own_headers(payload: str, messages, control_headers,
                                                                       tmp_path: Path) -> None:
    """Mail: exactly the headers of the same message with ordinary text (no Bcc), a one-line
    subject that reads as rendered (an encoded word in the text stays text). Robots: the card as
    rendered (or its cut), nothing of NEVER in it; DingTalk's title the one-line subject."""
    rendered = dict(messages(payload))
    for (name, what), wire in sent_by_every_channel(messages(payload), tmp_path).items():
        message = rendered[what]
        if wire.mime is not None:
            got = headers(wire.mime)
            assert got.keys() == control_headers[name, what] and set(got.keys()) <= MAIL_HEADERS, (name, what)
            assert (got["From"], got["To"]) == (SENDER, ", ".join(ADDRESSES)), (name, what)
            assert not CONTROL.search(str(got["Subject"])), (name, what, got["Subject"])
            assert squeezed(str(got["Subject"])) == squeezed(message.subject), (name, what)
        if wire.card is not None:
            own = set(message.markdown.splitlines())
            assert all(PART_LINES.fullmatch(ln) for ln in wire.card.splitlines() if ln not in own), (name, what)
            assert not [s for s in NEVER if s in wire.card.lower()], (name, what)
        if wire.title is not None:
            assert wire.title.split("（1/")[0] == message.subject and not CONTROL.search(wire.title), (name, what)


# -- the office: pages and exports -------------------------------------------------------------

def figures(payload: str, township: str) -> dict[str, Callable[[Any], list[Any]]]:
    """One row of each figure, its text from events holding ``payload`` (a campaign's township
    is the config's: the page looks it up there)."""
    at = datetime(2026, 4, 8, 9, 0, tzinfo=TZ)

    def months(period: Any) -> list[str]:
        return list(period) if isinstance(period, (list, tuple)) else [str(period)]

    return {
        "pass_rate": lambda p: [RateRow(payload, payload, str(p), 19, 20, 0.95, 0.98, True)],
        "pace": lambda p: [PaceRow(payload, 30000, 31, 120, Fraction(427, 10), 0.73, True)],
        "reports": lambda p: [BoardRow(payload, payload, {m: Cell("late", at) for m in months(p)})],
        "health": lambda p: [HealthRow(payload, str(p), 2, 27, 28, 27 / 28, 0.95, False, (payload,))],
        "campaigns": lambda p: [CampaignRow(township, payload, date(2026, 5, 1), 1, True, "done", date(2026, 4, 24))],
        "disposals": lambda p: [DisposalRow(payload, payload, payload, payload, payload, payload, at,
                                            at + timedelta(days=15), True, payload, None, (payload,), "overdue",
                                            "8601f249ce79decb")],
        "frequency": lambda p: [FrequencyRow(payload, 2026, "D", date(2026, 4, 1), Fraction(1, 4), 4, 1, 1, 0, 1, 4, 0,
                                             (payload,))],
        "resolution": lambda n: [ResolutionRow(n.id, at, payload, 10, at + timedelta(days=14), date(2026, 4, 21), True,
                                               at + timedelta(days=20), payload, "closed_late")],
    }


class Office:
    """What the dashboard, the report and the ledger read of a runtime, holding the hostile
    notices, their acks (notes holding the payload), their deliveries (the payload as the
    last error) and figures."""

    def __init__(self, config: Any, notices: list[Notice], payload: str) -> None:
        self.config, self.listed, self.payload = config, notices, payload
        self.delivery = parse_settings(config, env={})
        self._acks = [{"type": "ack", "id": f"a{i}", "township": payload, "notice_id": n.id, "by": n.recipients[0],
                       "action": "签收", "acked_at": "2026-04-30T09:00:00", "note": payload}
                      for i, n in enumerate(notices)]
        self._figures = figures(payload, next(iter(config.townships)))

    def now(self) -> datetime:
        return NOW

    def acks_after(self, seq: int) -> tuple[int, list[dict[str, Any]]]:
        return len(self._acks), self._acks[seq:]

    def silenced_ids(self) -> set[str]:
        return set()

    def notice(self, notice_id: str) -> Notice | None:
        return next((n for n in self.listed if n.id == notice_id), None)

    def _matching(self, q: NoticeQuery) -> list[Notice]:
        """The notices ``q`` names by department, ids and the fields a notice has (the pages
        here ask for no month)."""
        return [n for n in self.listed
                if (q.ids is None or n.id in q.ids) and n.id not in q.exclude
                and (q.dept is None or q.dept in n.recipients)
                and all(getattr(q, f) in (None, getattr(n, f)) for f in ("township", "rule", "severity"))]

    def notice_page(self, q: NoticeQuery, offset: int = 0, limit: int = 50, *,
                    total: int | None = None) -> tuple[int, list[Notice]]:
        found = self._matching(q)
        return len(found), found[offset:offset + limit]

    def notice_counts(self, q: NoticeQuery) -> dict[str, int]:
        return dict(Counter(n.severity for n in self._matching(q)))

    def notice_tally(self, q: NoticeQuery, acked: Any, closed: Any) -> dict[str, tuple[int, int, int]]:
        found = self._matching(q)
        return {s: (sum(n.severity == s for n in found), sum(n.severity == s and n.id in acked for n in found),
                    sum(n.severity == s and n.id in closed for n in found)) for s in {n.severity for n in found}}

    def notice_span(self) -> tuple[datetime, datetime] | None:
        ats = [n.at for n in self.listed]
        return (min(ats), max(ats)) if ats else None

    def deliveries_of(self, notice_id: str) -> list[Delivery]:
        n = self.notice(notice_id)
        return [Delivery(1, notice_id, n.recipients[0], "email", "notice", "failed", 3, None, NOW, self.payload,
                         n.rule, n.township, None, None, 1)] if n else []

    def upcoming(self, count: int = 20) -> list[tuple[datetime, str]]:
        return [(NOW + timedelta(days=1), f"report.reminder {self.payload}")]

    def figures(self, kind: str, period: Any, now: datetime | None = None) -> list[Any]:
        return self._figures[kind](period)


def office_of(month: tuple[Any, list[Notice]], payload: str) -> Office:
    return Office(month[0], [hostile(n, payload) for n in first_of_each_rule(month[1]).values()], payload)


def assert_inert_page(page: str, payload: str, where: str) -> None:
    tags = Tags(page)
    assert not [t for t in tags.tags if t[0] in ("script", "img", "iframe", "object")], where
    assert not [t for t in tags.tags if any(a.startswith("on") for a in t[1:])], where
    assert "<script" not in page.lower() and "<img" not in page.lower() and "evil.example\"" not in page, where
    assert visible(payload) in visible("".join(tags.text)), where


def test_every_html_template_is_autoescaped(month: tuple[Any, list[Notice]], renderer: Renderer) -> None:
    """Every dashboard page and every e-mail HTML template escapes what it prints; no markdown or
    plain-text template is HTML-escaped (the cards have their own escaping)."""
    def escapes(env: Environment, name: str) -> bool:
        return bool(env.autoescape(name) if callable(env.autoescape) else env.autoescape)

    board = Dashboard(Office(month[0], [], "x"), SimpleNamespace(open_access=True))
    pages = [p.name for p in (OFFICE_HERE / "templates").iterdir() if p.is_file()]
    assert pages and all(escapes(board.env, name) for name in pages)
    for p in PACKAGED.iterdir():
        assert escapes(renderer.env, p.name) == escapes(renderer.md_env, p.name) == (p.suffix == ".html"), p.name


@CASES
def test_dashboard_pages_show_event_text_as_text(payload: str, month: tuple[Any, list[Notice]],
                                                renderer: Renderer) -> None:
    """Each page lists the hostile notices and figures as text, and each notice's own page shows
    its facts, delivery error and notes as text: no element or handler from them."""
    board = Dashboard(office_of(month, payload), SimpleNamespace(open_access=True), renderer=renderer)
    pages = [("/?scope=all", board.index, {}), ("/reports", board.reports, {}), ("/rates", board.rates, {}),
             ("/pace", board.pace, {}), ("/frequency", board.frequency, {}), ("/calendar", board.calendar, {})]
    pages += [(f"/notices/{n.id}", board.notice_page, {"notice_id": n.id})    # facts, deliveries, acks
              for n in board.service.listed]

    async def visit() -> list[Any]:
        return [await page(make_mocked_request("GET", path, match_info=match)) for path, page, match in pages]

    for (path, _, _), response in zip(pages, asyncio.run(visit())):
        assert response.status == 200, path
        assert_inert_page(response.text, payload, path)


def written_cells(path: Path) -> list[Any]:
    wb = openpyxl.load_workbook(path)
    cells = [cell for ws in wb for row in ws.iter_rows() for cell in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"], path.name
    return cells


def as_text_cell(payload: str) -> str:
    """The payload as a cell shows it: control characters a sheet cannot hold as spaces, and a
    leading ' when a spreadsheet would read it as a formula."""
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", " ", payload)
    return visible(("'" if text.startswith(FORMULA_LEADS) else "") + text)


@CASES
def test_report_and_ledger_cells_are_text_never_formulas(payload: str, month: tuple[Any, list[Notice]],
                                                         tmp_path: Path) -> None:
    """shian report and shian ledger: no formula cell, no text cell starting like one, the payload
    kept visibly, numbers still numbers; the report's HTML shows the payload as text."""
    office = office_of(month, payload)
    xlsx, page = write_report(office.config, office, office.listed, "2026-04", tmp_path / "report", now=NOW)
    ledger = write_ledger(office.config, office.listed, office.acks_after(0)[1], tmp_path / "ledger.xlsx")
    cells = {path: written_cells(path) for path in (xlsx, ledger)}
    for path, written in cells.items():
        texts = [c.value for c in written if isinstance(c.value, str)]
        assert not [t for t in texts if t.startswith(FORMULA_LEADS)], path.name
        assert as_text_cell(payload) in {visible(t) for t in texts}, path.name
    assert {19, 20, 27, 28} <= {c.value for c in cells[xlsx] if c.data_type == "n"}
    assert_inert_page(page.read_text(encoding="utf-8"), payload, page.name)
