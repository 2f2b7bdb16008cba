"""The dashboard: server-rendered Chinese pages for the town and county offices, on the same
aiohttp app as the API (``shian.office.api`` calls :func:`add_routes`).

Pages: the notice list (``/``: filters and pages of 50 in the query string, asked of the
runtime so the list is cut where the notices are stored; ``/?state=closed`` is the 已办结
view), one notice (``/notices/<id>``: its wording, recipients, deliveries and 签收 / 办结), the
figure pages, which open on the latest month with data, 拒收记录 (``/rejects``: the input
that was not taken, with where, field and reason) and 渠道测试 (``/drill``: the fire drill of
``shian notify test``, a test message over every channel of a department or of all, each
channel's answer shown; only the county office, or anyone without tokens). Errors (no such page, a method a page does
not take, a failure) are Chinese pages too (:meth:`Dashboard.error_page`). Every department is
shown by its name. The pages read what the runtime recorded — notices, acks, deliveries, the
rules' figures and deadlines — and work out nothing a rule decides.

Why server-rendered, no script: the pages must work on an office desk machine without
internet (no CDN, fonts or scripts from elsewhere) and in any browser the office has; charts
are inline SVG drawn here.

Who may see and act: with tokens configured, every page needs a login (:func:`login_required`,
one middleware for all pages; the login page, ``/static/`` and the API's own paths excepted):
staff log in with their department's token (a session cookie, HttpOnly and SameSite=Strict;
the token itself is never stored) and may 签收 / 办结 only notices addressed to their
department. Failed logins count against the client address like failed API tokens (the
app's :class:`~shian.office.access.FailureLimiter`: 429 once out of failures). With no token
at all (``settings.open_access``: a single desk machine on loopback) nobody logs in and the
form asks which recipient department acts. Every form carries the session's CSRF token,
checked on POST; sessions live in memory (a restart means logging in again).
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import hmac
import ipaddress
import math
import re
import secrets
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import urlsplit

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, TemplateError, select_autoescape

from shian.notifiers import channels as channel_registry
from shian.notifiers.drill import Drilled, drill, lines as drill_lines
from shian.notifiers.message import Outcome as SendOutcome
from shian.notifiers.render import CHANNEL_NAMES, Renderer, Wording, cn_date, cn_datetime, cn_month, pct, rule_name, spec_of
from shian.office import figures, reject_list
from shian.office.access import FailureLimiter
from shian.office.figures import DELIVERY_STATUS, LEVEL_NAMES, program_name
from shian.office.notice_list import (PAGE_SIZE, STATES, Filters, Tally, base_query, last_page, months_between,
                                      page_links, read_filters, rule_ids, tally, with_state)
from shian.office.receipts import Receipts
from shian.rules.notice import Notice

HERE = Path(__file__).resolve().parent
COOKIE = "shian_session"
SESSION_IDLE = 12 * 3600        # seconds a session lives without use
MAX_SESSIONS = 2000             # oldest sessions are dropped beyond this
ACTIONS = ("签收", "办结")

SEVERITIES = (("critical", "紧急"), ("warning", "警示"), ("info", "提示"))
NAV = (("/", "首页"), ("/?state=closed", "已办结"), ("/reports", "月报报送"), ("/rates", "合格率"),
       ("/pace", "抽检进度"), ("/frequency", "检查频次"), ("/calendar", "期限与节前检查"), ("/rejects", "拒收记录"))
DRILL_NAV = ("/drill", "渠道测试")     # in the menu only for who may run the drill
ALL_DEPTS = "all"
STATUS_TEXT = {"on_time": "按时", "late": "逾期", "missing": "未报", "pending": "未到期"}
CAMPAIGN_TEXT = {"done": "已检查", "missed": "未检查", "open": "待检查", "upcoming": "未开始"}
APP_KEY = web.AppKey("shian.dashboard", object)
ERROR_TITLES = {400: "请求有误", 403: "无权操作", 404: "未找到", 405: "不支持的操作", 413: "请求太大", 500: "服务器出错"}
REQUEST_KEY: Any = (web.RequestKey("shian.dashboard.session", tuple) if hasattr(web, "RequestKey")
                    else "shian.dashboard.session")

T = TypeVar("T")
_NOTICE_ID = re.compile(r"[0-9a-f]{16}")
_MONTH = re.compile(r"\d{4}-\d{2}")
_YEAR = re.compile(r"\d{4}")

# Paths open without a login: the login itself, static files, and the API's paths (the API
# checks its own tokens; /health and /metrics are open by design, see shian.office.api).
OPEN_PATHS = frozenset({"/login", "/logout", "/api", "/health", "/metrics"})
OPEN_PREFIXES = ("/static/", "/api/")

_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


@dataclass
class _Session:
    csrf: str
    dept: str | None = None
    seen: float = field(default_factory=time.monotonic)
    flash: tuple[str, str] | None = None      # (kind, text), shown once


class Dashboard:
    def __init__(self, service: Any, settings: Any, limiter: FailureLimiter | None = None, *,
                 renderer: Renderer | None = None, reads: ThreadPoolExecutor | None = None) -> None:
        """``limiter``: counts failed logins (the app's, shared with the API); ``renderer``: how
        the notice page words a notice (default: as the runtime's delivery settings word its
        messages, made when first needed); ``reads``: the office's reader thread (one worker:
        the list's and a notice's reads of the runtime run there, one at a time, off the event
        loop; default: one of the board's own)."""
        self.service, self.settings = service, settings
        self.reads = reads if reads is not None else reader_thread()
        self.limiter = limiter if limiter is not None else FailureLimiter()  # the app's, shared with the API
        self.config = service.config
        self.sessions: OrderedDict[str, _Session] = OrderedDict()
        self._receipts = Receipts(self.config.tz)
        self._renderer = renderer
        self._drilling = asyncio.Lock()
        self.env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                               autoescape=select_autoescape(("html",), default=True),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(cn_date=cn_date, cn_datetime=cn_datetime, cn_month=cn_month, pct=pct,
                                dept_name=self.dept_name, program_name=program_name)

    # -- sessions -----------------------------------------------------------------------------

    def _session(self, request: web.Request) -> tuple[str, _Session, bool]:
        """The caller's session, or a fresh anonymous one (then the cookie must be set); the
        same one for the whole request."""
        if REQUEST_KEY in request:
            return request[REQUEST_KEY]
        now = time.monotonic()
        sid = request.cookies.get(COOKIE, "")
        s = self.sessions.get(sid) if sid else None
        if s is not None and now - s.seen < SESSION_IDLE:
            s.seen = now
            self.sessions.move_to_end(sid)
            found = (sid, s, False)
        else:
            if s is not None:
                del self.sessions[sid]
            found = self._new_session(None)
        request[REQUEST_KEY] = found
        return found

    def _new_session(self, dept: str | None) -> tuple[str, _Session, bool]:
        while len(self.sessions) >= MAX_SESSIONS:
            # anonymous sessions go first, so a flood of page views cannot log staff out
            victim = next((k for k, v in self.sessions.items() if v.dept is None), None)
            if victim is None:
                self.sessions.popitem(last=False)
            else:
                del self.sessions[victim]
        sid = secrets.token_urlsafe(32)
        s = _Session(csrf=secrets.token_urlsafe(32), dept=dept)
        self.sessions[sid] = s
        return sid, s, True

    def signed_in(self, request: web.Request) -> bool:
        """The request's session is a logged-in department's, and not idle too long (no new
        session is made for asking)."""
        sid = request.cookies.get(COOKIE, "")
        s = self.sessions.get(sid) if sid else None
        return s is not None and s.dept is not None and time.monotonic() - s.seen < SESSION_IDLE

    @staticmethod
    def _set_cookie(resp: web.StreamResponse, sid: str) -> None:
        resp.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/")

    async def _checked_post(self, request: web.Request) -> tuple[str, _Session, bool, Mapping[str, str]]:
        """The form of a POST whose CSRF token matches the session's (else 403)."""
        sid, s, fresh = self._session(request)
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.host:
            raise self._refuse(request, s, 403, "请求来源不是本系统页面，已拒绝。")
        form = await request.post()
        token = str(form.get("csrf", ""))
        if fresh or not token or not hmac.compare_digest(token.encode(), s.csrf.encode()):
            raise self._refuse(request, s, 403, "表单已过期或来源不明（缺少有效的校验码），请刷新页面后重试。",
                               sid if fresh else None)
        return sid, s, fresh, {k: str(v) for k, v in form.items()}

    # -- rendering ----------------------------------------------------------------------------

    def dept_name(self, dept: str | None) -> str:
        d = self.config.departments.get(dept or "")
        return d.name if d is not None else (dept or "")

    def may_drill(self, dept: str | None) -> bool:
        """Who may run the channel drill: anyone at the desk machine without tokens, else only
        the county office's login."""
        return self.settings.open_access or (dept is not None and dept == self.config.county.office)

    def _nav(self, dept: str | None) -> tuple[tuple[str, str], ...]:
        return (*NAV, DRILL_NAV) if self.may_drill(dept) else NAV

    async def _render(self, request: web.Request, template: str, title: str, *, status: int = 200,
                      active: str | None = None, **ctx: Any) -> web.Response:
        """The page of ``template``. The figures and rows are worked out before, on the event
        loop (where the runtime's state may be read); the template is filled in a thread, so
        that a large page (a year's board) does not hold up the requests meanwhile: the
        interpreter switches between the two every few milliseconds."""
        sid, s, fresh = self._session(request)
        flash, s.flash = s.flash, None
        page = await asyncio.to_thread(
            self._fill, template,
            title=title, county_name=self.config.county.name or "本县", nav=self._nav(s.dept),
            active=active if active is not None else request.path, dept=s.dept,
            dept_name=self.dept_name(s.dept), open_access=self.settings.open_access, csrf=s.csrf,
            now=self.service.now(), message=flash[1] if flash else None,
            message_kind=flash[0] if flash else None, **ctx)
        resp = web.Response(text=page, content_type="text/html", charset="utf-8", status=status)
        _secure(resp)
        if fresh:
            self._set_cookie(resp, sid)
        return resp

    def _fill(self, template: str, **ctx: Any) -> str:
        """``template`` filled in (compiled first if it is the first time: off the loop too)."""
        return self.env.get_template(template).render(**ctx)

    def _refuse(self, request: web.Request, s: _Session, status: int, reason: str,
                sid: str | None = None) -> web.HTTPException:
        """An HTML error page as an exception (aiohttp sends it as the response)."""
        titles = {403: "无权操作", 404: "未找到", 400: "请求有误"}
        page = self.env.get_template("error.html").render(
            title=titles.get(status, "出错了"), county_name=self.config.county.name or "本县", nav=self._nav(s.dept),
            active="", dept=s.dept, dept_name=self.dept_name(s.dept), open_access=self.settings.open_access,
            csrf=s.csrf, now=self.service.now(), reason=reason, back="/")
        exc_cls = {403: web.HTTPForbidden, 404: web.HTTPNotFound}.get(status, web.HTTPBadRequest)
        exc = exc_cls(text=page, content_type="text/html")
        _secure(exc)
        if sid:
            self._set_cookie(exc, sid)
        return exc

    # -- pages --------------------------------------------------------------------------------

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the office's reader thread (the runtime's reads of notices, acks and
        rejects: a slow one does not hold up the events coming in meanwhile)."""
        return await asyncio.get_running_loop().run_in_executor(self.reads, functools.partial(fn, *args))

    async def index(self, request: web.Request) -> web.Response:
        """The notices, filtered and paged where they are stored (query parameters: township,
        rule, severity, state, month, dept, page); 待办 by default, 已办结 with who closed them."""
        _, s, _ = self._session(request)
        listed = await self._read(self._listed, read_filters(request.query, self.config, s.dept), s.dept)
        f, rows = listed.filters, listed.rows
        title = {"pending": "首页 · 待办通知", "closed": "已办结通知"}.get(f.state, f"首页 · {STATES[f.state]}通知")
        first = (f.page - 1) * PAGE_SIZE
        return await self._render(request, "index.html", title, active="/?state=closed" if f.state == "closed" else "/",
                            severities=SEVERITIES, states=STATES, f=f, rows=rows, counts=listed.counts,
                            total=listed.total, shown=(first + 1, first + len(rows)),
                            pages=page_links(f, last_page(listed.total)), back=f.href(), choices=listed.choices)

    def _listed(self, f: Filters, dept: str | None) -> Listed:
        """What the list shows under ``f`` (on the reader thread): the counts by state and
        severity, the page (the last one when ``f`` asks for one beyond) and its rows."""
        receipts = self._receipts.follow(self.service)
        base = base_query(f, self.config.tz)
        counts = tally(self.service, base, receipts)
        matching = counts.count(f.state, f.severity)   # what the page would count again
        f = dataclasses.replace(f, page=min(f.page, last_page(matching)))
        query = with_state(dataclasses.replace(base, severity=f.severity), f.state, receipts)
        total, notices = self.service.notice_page(query, (f.page - 1) * PAGE_SIZE, PAGE_SIZE, total=matching)
        quiet = self.service.silenced_ids() if notices else set()
        rows = [self._row(n, receipts, dept, quiet) for n in notices]
        return Listed(f, counts, total, rows, self._choices(f))

    def _choices(self, f: Filters) -> dict[str, Any]:
        """The filter form's options (names shown, ids sent): the months from the first
        notice's to the last one's, and the month asked for if it is not among them."""
        months = months_between(self.service.notice_span(), self.config.tz)
        if f.month and f.month not in months:
            months = sorted([*months, f.month], reverse=True)
        return {"townships": list(self.config.townships), "rules": [(r, rule_name(r)) for r in rule_ids()],
                "months": months, "depts": [(d, dep.name) for d, dep in self.config.departments.items()]}

    def _row(self, n: Notice, receipts: Receipts, dept: str | None, quiet: set[str]) -> dict[str, Any]:
        """One notice as the list shows it: names, not ids, of its departments."""
        acked_by = receipts.departments(n)
        closings = [{"by": self.dept_name(a["by"]), "at": a["at"], "note": a["note"]}
                    for a in sorted(receipts.acks(n), key=lambda a: a["at"]) if a["action"] == "办结"]
        return n.to_json() | {
            "kind": spec_of(n.rule, n.severity).document, "rule_name": rule_name(n.rule),
            "severity_name": figures.SEVERITY_NAMES.get(n.severity, n.severity),
            "recipient_names": [self.dept_name(d) for d in n.recipients],
            "recipient_pairs": [(d, self.dept_name(d)) for d in n.recipients],
            "acked": bool(acked_by), "acked_by": [self.dept_name(d) for d in acked_by],
            "acked_by_me": dept in acked_by, "silenced": n.id in quiet, "closed": bool(closings),
            "closings": closings,
            "can_act": not closings and (self.settings.open_access or (dept is not None and dept in n.recipients)),
        }

    async def notice_page(self, request: web.Request) -> web.Response:
        """One notice: its facts as its messages word them, its recipients, its delivery per
        department and channel (the outbox's rows) and its 签收 / 办结 (the journal's acks)."""
        _, s, _ = self._session(request)
        nid = request.match_info["notice_id"]
        shown = await self._read(self._notice_shown, nid, s.dept) if len(nid) <= 64 else None
        if shown is None:
            raise self._refuse(request, s, 404, f"没有编号为 {nid[:64]} 的通知。")
        n = shown.notice
        resolution = next(iter(self.service.figures("resolution", n)), None)   # 签收 / 办结 against the deadline
        escalation = self.service.notice(figures.follow_up_id("notice.unresolved", n)) if resolution else None
        return await self._render(request, "notice.html", "通知详情", active="", n=shown.row, wording=self._wording(n),
                            level_name=LEVEL_NAMES.get(n.level, n.level), related=shown.related,
                            history=shown.history, recipients=shown.recipients, deliveries=shown.deliveries,
                            back=f"/notices/{n.id}", resolution=resolution, escalation=escalation,
                            resolution_text=figures.RESOLUTION_STATUS)

    def _notice_shown(self, nid: str, dept: str | None) -> NoticeShown | None:
        """What a notice's page shows of the runtime's records (on the reader thread); None:
        no such notice."""
        n = self.service.notice(nid)
        if n is None:
            return None
        receipts = self._receipts.follow(self.service)
        related = n.facts.get("notice_id")
        related = self.service.notice(related) if isinstance(related, str) and len(related) <= 64 else None
        history = [{"at": a["at"], "by": self.dept_name(a["by"]), "action": a["action"], "note": a["note"]}
                   for a in sorted(receipts.acks(n), key=lambda a: a["at"])]
        recipients = [{"name": self.dept_name(d), "receipt": receipts.of(n, d)} for d in n.recipients]
        deliveries = [{"dept": self.dept_name(d.dept), "channel": CHANNEL_NAMES.get(d.channel, d.channel),
                       "state": d.state, "state_name": DELIVERY_STATUS.get(d.state, d.state), "attempts": d.attempts,
                       "last_error": d.last_error, "sent_at": d.sent_at, "next_at": d.next_at}
                      for d in self.service.deliveries_of(n.id)]
        return NoticeShown(n, self._row(n, receipts, dept, self.service.silenced_ids()), related, history,
                           recipients, deliveries)

    def _wording(self, n: Notice) -> Wording:
        """The notice's lead, facts and action as its messages have them; a notice the
        templates cannot word (one of a newer version, say) shows its facts as stored."""
        if self._renderer is None:
            self._renderer = Renderer(self.service.delivery)
        try:
            return self._renderer.wording(n)
        except (TemplateError, LookupError, TypeError, ValueError):
            return Wording(n.title, tuple((str(k), str(v)) for k, v in n.facts.items()), "")

    async def act(self, request: web.Request) -> web.Response:
        """签收 / 办结 from the form of the list or a notice's page: only by a recipient department."""
        _, s, _, form = await self._checked_post(request)
        notice_id, action = form.get("notice_id", ""), form.get("action", "签收")
        if action not in ACTIONS:
            raise self._refuse(request, s, 400, f"未知的操作“{action}”。")
        if self.settings.open_access:
            if not _loopback(request.remote):
                raise self._refuse(request, s, 403, "本机模式只接受本机的操作；请配置部门令牌后在其他电脑上使用。")
            dept = form.get("dept") or None
            if dept is None:
                raise self._refuse(request, s, 403, "请选择由哪个部门签收或办结。")
        else:
            dept = s.dept
            if dept is None:
                raise self._refuse(request, s, 403, "请先登录本部门账号再签收或办结通知。")
        notice = self.service.notice(notice_id)
        if notice is None:
            raise self._refuse(request, s, 404, f"没有编号为 {notice_id} 的通知。")
        if dept not in notice.recipients:
            raise self._refuse(request, s, 403, f"{self.dept_name(dept)}不是这条通知的接收部门，不能{action}。")
        note = form.get("note", "").strip()[:200] or None
        outcome = self.service.ack(notice_id, dept, action, note)
        if outcome.status == "rejected":
            raise self._refuse(request, s, 403, f"未能{action}：{outcome.reason}")
        s.flash = ("ok", f"{self.dept_name(dept)}已{action}：{notice.title or notice_id}")
        raise web.HTTPSeeOther(_local(form.get("back", "/")))

    # -- the channel drill --------------------------------------------------------------------

    def _drill_allowed(self, request: web.Request, s: _Session) -> None:
        """Raises the refusal (403) unless this caller may run the drill."""
        if not self.may_drill(s.dept):
            who = self.dept_name(s.dept) or "未登录的用户"
            raise self._refuse(request, s, 403, f"只有{self.dept_name(self.config.county.office)}可以测试通知渠道"
                                                f"（当前登录：{who}）。")
        if self.settings.open_access and not _loopback(request.remote):
            raise self._refuse(request, s, 403, "本机模式只接受本机的操作；请配置部门令牌后在其他电脑上使用。")

    async def _drill_page(self, request: web.Request, chosen: str, results: list[Drilled] | None = None,
                    total: str | None = None) -> web.Response:
        depts = [(d, dep.name) for d, dep in self.config.departments.items()]
        rows = [drill_row(self.config, r) for r in results] if results is not None else None
        return await self._render(request, "drill.html", "通知渠道测试", depts=depts, chosen=chosen, rows=rows,
                            total=total, all_depts=ALL_DEPTS)

    async def drill_form(self, request: web.Request) -> web.Response:
        """渠道测试: the form choosing the department(s) to send a test message to."""
        _, s, _ = self._session(request)
        self._drill_allowed(request, s)
        return await self._drill_page(request, ALL_DEPTS)

    async def drill_run(self, request: web.Request) -> web.Response:
        """Sends the drill's test message over every channel of the chosen department (or of
        all) with the runtime's delivery settings, and shows each channel's answer."""
        _, s, _, form = await self._checked_post(request)
        self._drill_allowed(request, s)
        chosen = form.get("dept", ALL_DEPTS) or ALL_DEPTS
        if chosen != ALL_DEPTS and chosen not in self.config.departments:
            raise self._refuse(request, s, 400, f"未知的部门“{chosen[:64]}”。")
        depts = list(self.config.departments) if chosen == ALL_DEPTS else [chosen]
        settings = self.service.delivery
        now = self.service.now().replace(microsecond=0)
        async with self._drilling:               # one drill at a time: each sends real messages
            channels = channel_registry.build(settings)
            try:
                results = await drill(settings, channels, depts, now)
            finally:
                for channel in channels.values():
                    await channel.close()
        return await self._drill_page(request, chosen, results, drill_lines(settings, results, now)[-1])

    async def login_page(self, request: web.Request) -> web.Response:
        return await self._render(request, "login.html", "登录")

    async def login(self, request: web.Request) -> web.Response:
        sid, s, _, form = await self._checked_post(request)
        if self.settings.open_access:
            raise web.HTTPSeeOther("/")
        if wait := self.limiter.retry_after(request.remote):    # before the token is looked at
            s.flash = ("error", f"登录失败次数过多，请 {wait} 秒后再试。")
            resp = await self._render(request, "login.html", "登录", status=429)
            resp.headers["Retry-After"] = str(wait)
            return resp
        dept = self.settings.department_for(form.get("token", "").strip())
        if dept is None:
            self.limiter.failed(request.remote)
            s.flash = ("error", "令牌不正确，请核对后重试。")
            return await self._render(request, "login.html", "登录", status=403)
        self.sessions.pop(sid, None)                         # a new session id after login
        new_sid, new, _ = self._new_session(dept)
        new.flash = ("ok", f"已登录：{self.dept_name(dept)}")
        resp = web.HTTPSeeOther("/")
        self._set_cookie(resp, new_sid)
        raise resp

    async def logout(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            sid, _, _, _ = await self._checked_post(request)
        else:
            # a cross-site GET carries no SameSite=Strict cookie, so this is only ever the user
            sid = request.cookies.get(COOKIE, "")
        self.sessions.pop(sid, None)
        resp = web.HTTPSeeOther("/")
        resp.del_cookie(COOKIE, path="/")
        raise resp

    # -- figure pages -------------------------------------------------------------------------
    # The figures are the runtime's (``service.figures``: the tallies the rules decide on),
    # cheap to ask, so they are asked on the event loop, between events.

    def _township_filter(self, request: web.Request) -> str | None:
        t = request.query.get("township") or None
        return t if t in self.config.townships else None

    async def reports(self, request: web.Request) -> web.Response:
        """The board of the ``months`` (6 or 12) up to ``month``: by default the latest month
        in which anyone reported, not an empty current month."""
        now = self.service.now()
        count = 12 if request.query.get("months") == "12" else 6
        recent = last_months(now.date(), 14)
        end = request.query.get("month") or ""
        if end not in recent:
            end = figures.latest_report_month(self.service.figures("reports", recent)) or recent[-1]
        months = last_months(date(int(end[:4]), int(end[5:]), 1), count)
        town = self._township_filter(request)
        rows = [r for r in self.service.figures("reports", months) if town is None or r.township == town]
        tally = {st: sum(1 for r in rows if r.cells[months[-1]].status == st) for st in STATUS_TEXT}
        return await self._render(request, "reports.html", "月报报送", rows=rows, months=months, status_text=STATUS_TEXT,
                            township=town, townships=list(self.config.townships), count=count, month=end,
                            month_choices=recent[::-1], due_day=self.config.params("report.reminder").due_day,
                            tally=tally)

    async def rates(self, request: web.Request) -> web.Response:
        """One month's or year's pass rates: by default the latest month with samples the rule
        has judged, not an empty month just closed."""
        now = self.service.now()
        recent = last_months(now.date(), 12)
        kept = self.service.figures("pass_rate", None)
        months = sorted(set(recent) | {r.period for r in kept if r.total}, reverse=True)
        years = sorted({m[:4] for m in months if m[:4] <= str(now.year)} | {str(now.year)}, reverse=True)
        period = request.query.get("period") or ""
        if period not in years and period not in months:
            period = figures.latest_rate_period(kept, recent[-2]) or recent[-2]
        town = self._township_filter(request)
        rows = [r for r in self.service.figures("pass_rate", period) if town is None or r.township == town]
        return await self._render(request, "rates.html", "抽检合格率", rows=rows, charts=rate_charts(rows), period=period,
                            choices=[*years, *months], township=town, townships=list(self.config.townships))

    async def pace(self, request: web.Request) -> web.Response:
        """A year's sampling against its target, up to today or the year's end: by default this
        year, or last year when nothing has been sampled this year yet."""
        now = self.service.now()
        years = [str(now.year), str(now.year - 1)]
        year = request.query.get("year") or ""
        if year not in years:
            year = next((y for y in years if any(r.batches for r in self.service.figures("pace", y))), years[0])
        today = figures.as_of(year, now, self.config.tz)
        rows = self.service.figures("pace", year)
        days = (date(today.year + 1, 1, 1) - date(today.year, 1, 1)).days
        share = today.timetuple().tm_yday / days
        items = [{"label": r.township, "value": (r.batches / r.yearly_target) if r.yearly_target else None,
                  "below": r.behind,
                  "text": f"{r.batches}/{r.yearly_target} 批次" if r.yearly_target else "未设人口",
                  "attrs": {"township": r.township, "batches": str(r.batches), "target": str(r.yearly_target),
                            "behind": "true" if r.behind else "false"}} for r in rows]
        hi = max([1.0] + [i["value"] for i in items if i["value"] is not None])
        svg = bar_chart(items, target=share, target_label=f"按进度应完成 {share * 100:.1f}%", lo=0.0,
                        hi=min(1.5, math.ceil(hi * 10) / 10), width=900)
        return await self._render(request, "pace.html", "抽检进度", rows=rows, svg=svg, today=today, year=year, years=years,
                            per_thousand=figures.BATCHES_PER_THOUSAND, share=share)

    async def frequency(self, request: web.Request) -> web.Response:
        """检查频次: the register's entities per township × risk level against the quota of the
        year's latest check date passed — what inspection.frequency_due decides on
        (``figures("frequency")``); this year by default, or last year."""
        now = self.service.now()
        years = [str(now.year), str(now.year - 1)]
        year = request.query.get("year") or ""
        if year not in years:
            year = years[0]
        town = self._township_filter(request)
        rows = [r for r in self.service.figures("frequency", year) if town is None or r.township == town]
        p = self.config.params("inspection.frequency_due")
        return await self._render(request, "frequency.html", "检查频次", rows=rows, year=year, years=years, township=town,
                            townships=list(self.config.townships), groups=figures.frequency_by_township(rows),
                            total=figures.frequency_total(rows), schedule=figures.frequency_schedule(self.config, int(year)),
                            checked=rows[0].check_date if rows else None, per_year=p.per_year, enabled=p.enabled)

    async def calendar(self, request: web.Request) -> web.Response:
        now = self.service.now()
        missing: dict[str, list[Any]] = {}
        upcoming = [self._deadline(at, label, missing) for at, label in self.service.upcoming(20)]
        before = self.config.params("campaign.reminder").remind_days_before
        window = self.config.params("campaign.missed").window_days
        found = [c for y in (now.year, now.year + 1) for c in self.service.figures("campaigns", str(y))]
        towns = list(self.config.townships)
        holidays: dict[tuple[int, str], dict[str, Any]] = {}
        for c in sorted(found, key=lambda c: (c.date, towns.index(c.township))):
            h = holidays.setdefault((c.date.year, c.holiday), {
                "holiday": c.holiday, "year": c.date.year, "date": c.date,
                "remind": c.date - timedelta(days=before), "window_start": c.window_start, "townships": []})
            h["townships"].append(c)
        return await self._render(request, "calendar.html", "期限与节前检查", upcoming=upcoming,
                            campaigns=list(holidays.values()), townships=towns, window=window, before=before,
                            campaign_status=CAMPAIGN_TEXT)

    def _deadline(self, at: Any, label: str, missing: dict[str, list[Any]]) -> dict[str, Any]:
        """A deadline of the runtime (``rule word…``) as the 期限 page lists it: the township, and
        its object — the notice waiting for 签收 (linked), the month's reports still missing
        (from the figures), or the entity, sample, holiday or month it names."""
        rule, *words = label.split()
        notice = next((n for w in words if _NOTICE_ID.fullmatch(w) and (n := self.service.notice(w))), None)
        township = next((w for w in words if w in self.config.townships), notice.township if notice else None)
        rest = [w for w in words if w != township and not (notice and w == notice.id)]
        month = next((w for w in rest if _MONTH.fullmatch(w)), None)
        detail = " ".join(cn_month(w) if _MONTH.fullmatch(w) else f"{w}年" if _YEAR.fullmatch(w) else w
                          for w in sorted(rest, key=lambda w: not _YEAR.fullmatch(w)))
        if rule.startswith("report.") and month is not None:
            if month not in missing:
                missing[month] = [r for r in self.service.figures("reports", [month])
                                  if r.cells[month].submitted_at is None]
            detail = f"{cn_month(month)}月报：" + missing_text(
                [r for r in missing[month] if township is None or r.township == township])
        return {"at": at, "rule": rule, "rule_name": rule_name(rule), "township": township, "notice": notice,
                "detail": detail}

    # -- rejects and errors -------------------------------------------------------------------

    async def rejects(self, request: web.Request) -> web.Response:
        """拒收记录: the input that was not taken, newest first, 50 to a page, each once (query
        parameters: source — a text the source contains —, since — a date or time —, page);
        the same content as ``GET /api/rejects``."""
        f, total, found = await self._read(self._rejects_shown, reject_list.read_filters(request.query, self.config.tz))
        last = reject_list.last_page(total)
        first = (f.page - 1) * reject_list.PAGE_SIZE
        return await self._render(request, "rejects.html", "拒收记录", f=f, rows=[reject_list.row(r) for r in found],
                            total=total, shown=(first + 1, first + len(found)), pages=page_links(f, last),
                            drop_dir=getattr(self.settings, "drop_dir", None))

    def _rejects_shown(self, f: reject_list.RejectFilters) -> tuple[reject_list.RejectFilters, int, list[Any]]:
        """The rejects of page ``f`` (the last one when ``f`` asks for one beyond), and how many
        match (on the reader thread)."""
        total, found = self.service.reject_page(f.source, f.since, (f.page - 1) * reject_list.PAGE_SIZE,
                                                reject_list.PAGE_SIZE)
        last = reject_list.last_page(total)
        if f.page > last:
            f = dataclasses.replace(f, page=last)
            total, found = self.service.reject_page(f.source, f.since, (last - 1) * reject_list.PAGE_SIZE,
                                                    reject_list.PAGE_SIZE)
        return f, total, found

    def error_page(self, request: web.Request, status: int, reason: str) -> web.Response:
        """A Chinese page for an error outside the pages' own refusals (no such page, a method
        a page does not take, a failure), with the menu; the caller's session is shown but
        none is made for it."""
        sid = request.cookies.get(COOKIE, "")
        s = self.sessions.get(sid) if sid else None
        page = self.env.get_template("error.html").render(
            title=ERROR_TITLES.get(status, "出错了"), county_name=self.config.county.name or "本县",
            nav=self._nav(s.dept if s else None),
            active="", dept=s.dept if s else None, dept_name=self.dept_name(s.dept if s else None),
            open_access=self.settings.open_access, csrf=s.csrf if s else "", now=self.service.now(),
            reason=reason, back="/")
        resp = web.Response(text=page, content_type="text/html", charset="utf-8", status=status)
        _secure(resp)
        return resp


@dataclass(frozen=True)
class Listed:
    """The notice list as read for one request: the filters (the page cut to the last one),
    the counts by state and severity, how many match, the page's rows, the filter choices."""
    filters: Filters
    counts: Tally
    total: int
    rows: list[dict[str, Any]]
    choices: dict[str, Any]


@dataclass(frozen=True)
class NoticeShown:
    """What a notice's page shows of the runtime's records: the notice and its row, the notice
    it follows up, its 签收 / 办结 history, its recipients' receipts and its deliveries."""
    notice: Notice
    row: dict[str, Any]
    related: Notice | None
    history: list[dict[str, Any]]
    recipients: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]


def reader_thread() -> ThreadPoolExecutor:
    """The office's reader: one thread, so its reads come one at a time on its connections."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="shian-office-reads")


@dataclass(frozen=True)
class DrillRow:
    """One channel of one department in the drill, as the page shows it."""
    dept: str
    dept_name: str
    channel: str          # the channel's full label, or 无 when the department has none
    state: str            # 已送达 / 部分送达 / 未送达 / 没有通知渠道
    ok: bool
    reply: str            # the far side's answer (or why nothing was sent); empty when delivered


def drill_row(config: Any, r: Drilled) -> DrillRow:
    """The page's words for one drill result: the channel's answer as it came."""
    name = config.departments[r.dept].name
    if r.channel is None:
        return DrillRow(r.dept, name, "无", "没有通知渠道", False, r.result.error or "")
    label = CHANNEL_NAMES.get(r.channel, r.channel)
    if r.ok:
        return DrillRow(r.dept, name, label, "已送达", True, "")
    state = "部分送达" if r.result.outcome is SendOutcome.DELIVERED else "未送达"
    return DrillRow(r.dept, name, label, state, False, r.result.error or "（对方没有说明原因）")


def missing_text(rows: list[Any]) -> str:
    """Who has not reported (board rows), in a few words."""
    if not rows:
        return "均已报送"
    names = "、".join(f"{r.township}{r.reporter}" for r in rows[:3])
    return f"{names}等 {len(rows)} 个单位未报" if len(rows) > 3 else f"{names}未报"


def rate_charts(rows: list[Any]) -> list[dict[str, Any]]:
    """One bar chart per program: each township's rate against the program's target."""
    charts = []
    for program in dict.fromkeys(r.program for r in rows):
        mine = [r for r in rows if r.program == program]
        items = [{"label": r.township, "value": r.rate, "below": r.below,
                  "text": f"{r.rate * 100:.1f}%（{r.qualified}/{r.total}）" if r.total else "无样品",
                  "attrs": {"township": r.township, "program": r.program,
                            "rate": f"{r.rate * 100:.1f}" if r.rate is not None else "",
                            "below": "true" if r.below else "false"}} for r in mine]
        target = mine[0].target
        charts.append({"program": program, "name": program_name(program), "target": target,
                       "svg": bar_chart(items, target=target, target_label=f"目标 {target * 100:g}%",
                                        lo=rate_floor([r.rate for r in mine if r.rate is not None] + [target]))})
    return charts


# -- helpers ------------------------------------------------------------------------------------


def last_months(today: date, count: int) -> list[str]:
    """``count`` months ending with the month of ``today``, oldest first (YYYY-MM)."""
    y, m = today.year, today.month
    out = []
    for _ in range(count):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


def rate_floor(values: list[float]) -> float:
    """Where a pass-rate axis starts: rates cluster near 100%, so a 0–100% axis would hide
    the gap to a 98% target; the axis is labelled, so the cut is visible."""
    low = min(values, default=1.0)
    for floor in (0.8, 0.5):
        if low >= floor + 0.02:
            return floor
    return 0.0


def bar_chart(items: list[dict[str, Any]], *, target: float | None = None, target_label: str = "",
              lo: float = 0.0, hi: float = 1.0, width: int = 640) -> dict[str, Any]:
    """Geometry of a horizontal bar chart (values are fractions; the axis in per cent), drawn
    as inline SVG by the ``bar_chart`` macro: the server draws, the page needs no script."""
    label_w, text_w, row_h, top, bottom = 70, 150, 28, 30, 28
    plot_w = width - label_w - text_w
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return round(label_w + plot_w * (min(max(v, lo), hi) - lo) / span, 1)

    bars = []
    for i, it in enumerate(items):
        y = top + i * row_h
        v = it.get("value")
        bars.append({**it, "y": y, "x": label_w, "w": 0 if v is None else max(1.0, x(v) - label_w),
                     "h": row_h - 8, "ty": y + row_h / 2 + 1, "tx": (x(v) if v is not None else label_w) + 6,
                     "cls": "bar-below" if it.get("below") else "bar-ok"})
    step = 0.05 if span <= 0.25 else (0.1 if span <= 0.6 else 0.2)
    ticks, k = [], 0
    while lo + k * step <= hi + 1e-9:
        v = lo + k * step
        ticks.append({"x": x(v), "label": f"{v * 100:.0f}%"})
        k += 1
    height = top + len(items) * row_h + bottom
    return {"width": width, "height": height, "bars": bars, "ticks": ticks, "top": top - 6,
            "axis_y": top + len(items) * row_h, "label_w": label_w,
            "target": None if target is None else {"x": x(target), "label": target_label},
            "lo": lo}


def _secure(resp: web.StreamResponse) -> None:
    resp.headers["Content-Security-Policy"] = _CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"


def _local(path: str) -> str:
    """Only a path on this site is a place to go back to (no open redirect)."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False


@web.middleware
async def login_required(request: web.Request, handler: Any) -> web.StreamResponse:
    """With tokens configured, every page but the open ones (:data:`OPEN_PATHS`,
    :data:`OPEN_PREFIXES`) needs a logged-in department: a page is sent to the login, a form
    posted without a login is refused (403). Without tokens (loopback only) all is open."""
    board: Dashboard = request.app[APP_KEY]  # type: ignore[assignment]
    path = request.path
    if board.settings.open_access or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) \
            or board.signed_in(request):
        return await handler(request)
    if request.method in ("GET", "HEAD"):
        raise web.HTTPSeeOther("/login")
    _, s, _ = board._session(request)
    raise board._refuse(request, s, 403, "请先登录本部门账号。")


def add_routes(app: web.Application, service: Any, settings: Any, limiter: FailureLimiter,
               reads: ThreadPoolExecutor | None = None) -> Dashboard:
    """Adds the dashboard's pages, forms and static files to ``app``, and the login
    requirement of its pages (:func:`login_required`, last of the app's middlewares);
    ``limiter`` counts failed logins (shared with the API's failed tokens); ``reads``: the
    office's reader thread (shared with the API's)."""
    board = Dashboard(service, settings, limiter, reads=reads)
    app[APP_KEY] = board
    app.middlewares.append(login_required)
    app.router.add_get("/", board.index)
    app.router.add_get("/notices/{notice_id}", board.notice_page)
    app.router.add_get("/reports", board.reports)
    app.router.add_get("/rates", board.rates)
    app.router.add_get("/pace", board.pace)
    app.router.add_get("/frequency", board.frequency)
    app.router.add_get("/calendar", board.calendar)
    app.router.add_get("/rejects", board.rejects)
    app.router.add_get("/login", board.login_page)
    app.router.add_post("/login", board.login)
    app.router.add_get("/logout", board.logout)
    app.router.add_post("/logout", board.logout)
    app.router.add_post("/board/ack", board.act)
    app.router.add_get("/drill", board.drill_form)
    app.router.add_post("/drill", board.drill_run)
    app.router.add_static("/static/", HERE / "static", append_version=False)
    return board
