"""The HTTP API of ``shian run`` (aiohttp): events in, notices with their 签收/办结, silences,
health and Prometheus metrics. ``openapi.yaml`` next to this file describes every route and
is served at ``/api/openapi.yaml``; the tests hold the running server to it.

Who may do what (tokens from the ``service:`` section, given as ``Authorization: Bearer …``
or ``X-Shian-Token``; compared in constant time by :class:`ServiceSettings`, never logged):

- ``POST /api/events``: any feed token or department token; an ``ack`` line only with the
  token of the department its ``by`` names (:func:`shian.office.access.may_post`, checked by
  the runtime on each line: a refused line is rejected with its reason, the others go on).
- reading notices and silences: any department token (a feed only posts events).
- 签收 / 办结: a department token, in its own name, only on notices the department is a
  recipient of.
- silences: the county office (``county.office``) for anything; a town office
  (``townships.<name>.office``) only for its own township; other departments not at all.
- ``/health``, ``/metrics`` and ``/api/openapi.yaml``: no token (no personal data: counts,
  event types, rule ids and delivery states).

A request with a missing or wrong token counts against its client address
(:class:`~shian.office.access.FailureLimiter`, ``service.auth_failures``); an address out of
failures is answered 429 with ``Retry-After`` before its token is looked at. With no token
configured at all (``open_access``) everything is allowed, and :func:`check_listen` (and so
:func:`listen`) then refuses any address but loopback. Errors under ``/api`` are JSON: a
Chinese ``error`` and an English, stable ``code``.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import BodyPartReader
from aiohttp.web_protocol import RequestPayloadError

from shian.notifiers.outbox import STATES, NoticeQuery
from shian.notifiers.silences import DELIVERY_RULES, check as check_silence
from shian.office.access import Caller, FailureLimiter, acting_for, may_post
from shian.office.notice_list import with_state
from shian.office.receipts import Receipt, Receipts
from shian.office.runtime import Runtime
from shian.office.settings import ServiceSettings, is_loopback
from shian.rules.events import ACTIONS, EVENT_TYPES
from shian.rules.families import RULES
from shian.rules.records import Outcome, UnreadableInput
from shian.rules.timeutil import fmt, parse_time

log = logging.getLogger("shian.office.api")

MAX_BODY = 50 * 1024 * 1024   # one request body (an upload of several files counts as one)
MAX_FILES = 100               # files of one multipart upload
MAX_NAME = 150                # bytes (UTF-8) of an upload's file name, as it is kept
SHUTDOWN_SECONDS = 3.0        # what open requests get at a stop (shian run stops within 10 s)
DEFAULT_LIMIT, MAX_LIMIT = 500, 5000
SEVERITIES = ("info", "warning", "critical")
NOTICE_STATES = ("open", "acked", "closed")
JSON_TYPES = ("application/json",)
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/json-lines")
CSV_TYPES = ("text/csv",)

SERVICE = web.AppKey("shian.service", Runtime)
SETTINGS = web.AppKey("shian.settings", ServiceSettings)
LIMITER = web.AppKey("shian.failures", FailureLimiter)  # failed authentications (API and login) per address
# the office's reader thread: reads of notices, acks and rejects run there, one at a time, off
# the event loop (the runtime reads on connections of that thread's own: shian.office.runtime)
READS = web.AppKey("shian.reads", ThreadPoolExecutor)
# Request key: who called (for the access log; never the token). RequestKey: aiohttp ≥ 3.11.
CALLER: Any = web.RequestKey("shian.caller", str) if hasattr(web, "RequestKey") else "shian.caller"


class ApiError(Exception):
    """An error answer: HTTP status, stable English ``code``, Chinese message."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class ServeRefused(RuntimeError):
    """The pages will not be served (message in Chinese, for the CLI to print)."""


# -- who is calling ------------------------------------------------------------------------

def request_token(request: web.Request) -> str | None:
    """The token of a request: ``Authorization: Bearer …`` or ``X-Shian-Token``."""
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("X-Shian-Token", "").strip() or None


def identify(request: web.Request, settings: ServiceSettings) -> Caller | None:
    """The caller a request's token names (None: no valid token). Open access ignores tokens."""
    if settings.open_access:
        return Caller(open_access=True)
    token = request_token(request)
    if (feed := settings.feed_for(token)) is not None:
        return Caller(feed=feed)
    if (dept := settings.department_for(token)) is not None:
        return Caller(dept=dept)
    return None


def _caller(request: web.Request, *, feeds: bool = False) -> Caller:
    """The caller of a request that needs a token; 401 without a valid one (a failure of its
    address), 429 while its address is out of failures, 403 for a feed where a department is needed."""
    settings, limiter = request.app[SETTINGS], request.app[LIMITER]
    if not settings.open_access and (wait := limiter.retry_after(request.remote)):
        raise too_many_failures(wait)
    caller = identify(request, settings)
    if caller is None:
        limiter.failed(request.remote)
        if request_token(request) is None:
            raise ApiError(401, "token_missing", "缺少令牌：请在请求头 Authorization: Bearer <令牌> 或 X-Shian-Token 中给出")
        raise ApiError(401, "token_invalid", "令牌无效：请核对来源或部门的令牌")
    request[CALLER] = caller.label
    if caller.feed is not None and not feeds:
        raise ApiError(403, "department_required", "数据来源的令牌只能报送事件；此操作需要部门令牌")
    return caller


def too_many_failures(wait: int) -> ApiError:
    return ApiError(429, "too_many_failures", f"令牌错误或缺少令牌的请求过多：请 {wait} 秒后再试", retry_after=wait)


# -- errors ---------------------------------------------------------------------------------

_HTTP_ERRORS = {
    404: ("not_found", "没有这个地址"),
    405: ("method_not_allowed", "此地址不支持该请求方法"),
    413: ("body_too_large", "请求体太大，请分批报送"),
}


def _ours(path: str) -> bool:
    return path == "/api" or path.startswith("/api/") or path in ("/health", "/metrics")


def _error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="shian"'} if status == 401 else None
    if status == 429:
        headers = {"Retry-After": str(extra["retry_after"])}
    return _json({"error": message, "code": code, **extra}, status=status, headers=headers)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def _dumps(data: Any) -> str:
    """JSON with Chinese as is; text holding a lone surrogate (echoed input) as ``\\udxxx``
    escapes instead, so that every answer can be sent as UTF-8."""
    text = json.dumps(data, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(data)
    return text


@web.middleware
async def _errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    """API errors as JSON; an unexpected failure is logged and answered 500, never a traceback.
    Outside the API (the pages), and for a browser anywhere, an error of the router or a
    failure is a Chinese HTML page (:func:`_error_page`); the pages' own refusals pass as they are."""
    try:
        return await handler(request)
    except ApiError as e:
        return _error(e.status, e.code, e.message, **e.extra)
    except (HttpProcessingError, RequestPayloadError) as e:  # a body that breaks HTTP itself (a bad gzip, chunking)
        if not _ours(request.path):
            raise
        cause = e.__cause__ if isinstance(e, RequestPayloadError) and e.__cause__ is not None else e
        response = _error(400, "bad_request", f"请求体无法读取（{type(cause).__name__}）：请检查 Content-Encoding 与请求体的编码")
        response.force_close()  # the rest of the body cannot be read either: this connection ends here
        return response
    except web.HTTPException as e:
        if e.status < 400 or e.content_type == "text/html":  # a redirect, or a page's own refusal
            raise
        if _wants_page(request):
            return _error_page(request, e.status, e.headers.get("Allow"))
        if not _ours(request.path):
            raise
        code, message = _HTTP_ERRORS.get(e.status, ("http_error", e.reason))
        if e.status == 413:
            limit = request.app.get(MAX_BODY_KEY, MAX_BODY)
            response = _error(e.status, code, f"请求体太大：上限 {limit / (1024 * 1024):g} MB，请分批报送")
            response.force_close()  # the rest of the body is not read: this connection ends here
            return response
        response = _error(e.status, code, message)
        if "Allow" in e.headers:  # a 405 names the methods the address takes
            response.headers["Allow"] = e.headers["Allow"]
        return response
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("请求 %s %s 处理失败", request.method, request.path)
        if _wants_page(request):
            return _error_page(request, 500)
        return _error(500, "internal_error", "服务器内部错误，已记入日志")


def _wants_page(request: web.Request) -> bool:
    """An error answered as an HTML page: any path but the API's, or a browser (Accept: text/html)."""
    return not _ours(request.path) or "text/html" in request.headers.get("Accept", "")


_PAGE_REASONS = {
    404: "没有这个页面：{path}。请检查地址，或从上方的菜单进入。",
    405: "这个页面不支持此操作（{method}）。请使用页面上的链接和按钮。",
    413: "提交的内容太大。请分成几次提交。",
    500: "服务器内部出错，已记入日志。请稍后再试；一直出错请联系管理员。",
}


def _error_page(request: web.Request, status: int, allow: str | None = None) -> web.StreamResponse:
    """The Chinese error page of ``status`` (the dashboard's look when it is there)."""
    from shian.office import dashboard

    reason = _PAGE_REASONS.get(status, "请求无法处理（HTTP {status}）。").format(
        path=request.path[:200], method=request.method[:20], status=status)
    board = request.app.get(dashboard.APP_KEY)
    try:
        response = board.error_page(request, status, reason) if board is not None else None
    except Exception:  # the page itself failed (the runtime is what is broken): plain words then
        log.exception("错误页面无法生成")
        response = None
    if response is None:
        response = web.Response(text=f"{dashboard.ERROR_TITLES.get(status, '出错了')}：{reason}", status=status,
                                content_type="text/plain", charset="utf-8")
    if allow:
        response.headers["Allow"] = allow
    if status == 413:
        response.force_close()
    return response


class AccessLogger(AbstractAccessLogger):
    """Method, path (no query string), status, time and who — never headers or tokens."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, elapsed: float) -> None:
        self.logger.info('%s "%s %s" %d %.3fs %s', request.remote, request.method, request.path,
                         response.status, elapsed, request.get(CALLER, "-"))

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


# -- events in ------------------------------------------------------------------------------

async def post_events(request: web.Request) -> web.Response:
    caller = _caller(request, feeds=True)
    runtime = request.app[SERVICE]
    source = f"api:{caller.label}"
    policy = functools.partial(may_post, caller)  # an ack only in the name of the caller's department
    ctype = request.content_type
    limit = request.app[MAX_BODY_KEY]
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    try:
        if ctype == "multipart/form-data":
            outcomes: list[Outcome] = []
            for name, data in await _uploads(request, limit):
                outcomes += await runtime.accept_upload(data, name, source, policy)
        elif ctype in JSON_TYPES + JSONL_TYPES + CSV_TYPES:
            body = await request.read()
            if not body.strip():
                raise ApiError(400, "empty_body", "请求体为空：没有任何事件")
            outcomes = await runtime.accept_file(body, _body_name(request, ctype), source, policy)
        else:
            raise ApiError(415, "unsupported_media_type",
                           f"不支持的内容类型“{ctype}”：请用 application/json、application/x-ndjson、text/csv 或 multipart/form-data")
    except UnreadableInput as e:
        raise ApiError(400, "invalid_json", str(e)) from None
    tally = {s: sum(o.status == s for o in outcomes) for s in ("accepted", "duplicate", "rejected")}
    return _json({"accepted": tally["accepted"], "duplicates": tally["duplicate"], "rejected": tally["rejected"],
                  "results": [o.to_json() for o in outcomes]})


async def _uploads(request: web.Request, limit: int) -> list[tuple[str, bytes]]:
    """The file parts of a multipart body (name, content), read as they came (a part's own
    Content-Encoding is not undone: its content is then rejected as unreadable). Fields
    without a file name are skipped. A body that is not well-formed multipart is a 400."""
    files: list[tuple[str, bytes]] = []
    total = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "invalid_multipart", "不支持嵌套的 multipart 分段：请把每个文件作为一个文件字段上传")
            data = bytearray()
            while chunk := await part.read_chunk():
                total += len(chunk)
                if total > limit:
                    raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=total)
                data += chunk
            if not part.filename:  # a text field, or a file field left empty
                continue
            if len(files) == MAX_FILES:
                raise ApiError(400, "too_many_files", f"一次最多上传 {MAX_FILES} 个文件：请分批上传")
            files.append((upload_name(part.filename), bytes(data)))
    except HttpProcessingError:
        raise ApiError(400, "invalid_multipart", "multipart/form-data 某个分段的头部无法读取（字段名或文件名中有换行、"
                       "空字符等控制字符，或头部过长）：请改正文件名后重新上传") from None
    except (ValueError, RuntimeError) as e:  # aiohttp's words for a body that is not multipart as declared
        raise ApiError(400, "invalid_multipart",
                       f"multipart/form-data 请求体格式错误（{_multipart_problem(e)}）：请用浏览器或 curl -F 上传文件") from None
    if not files:
        raise ApiError(400, "no_file", "表单中没有文件：请用文件字段（如 file）上传 CSV、XLSX 或 JSON Lines 文件")
    return files


def _multipart_problem(e: Exception) -> str:
    text = str(e)
    if "boundary missed" in text:
        return "Content-Type 缺少 boundary 参数"
    if "boundary" in text:
        return "分隔符 boundary 与请求体不符"
    return type(e).__name__


def upload_name(name: str) -> str:
    """A file name as a client sent it, made safe to keep and to show: no folders, no control
    characters, at most :data:`MAX_NAME` bytes (the suffix kept, which says how it is read)."""
    name = "".join(ch for ch in name.replace("\\", "/").rsplit("/", 1)[-1] if ch.isprintable()).strip()
    if len(name.encode("utf-8")) <= MAX_NAME:
        return name or "upload"
    suffix = Path(name).suffix if len(Path(name).suffix) <= 10 else ""
    stem = name[:len(name) - len(suffix)].encode("utf-8")[:MAX_NAME - len(suffix.encode("utf-8"))]
    return stem.decode("utf-8", "ignore") + suffix


def _body_name(request: web.Request, ctype: str) -> str:
    """A request body read as a file of this name: JSON (one object or an array), JSON Lines,
    or CSV (``?filename=`` can name the event type, e.g. 抽检结果.csv)."""
    if ctype in JSON_TYPES:
        return "body.json"
    if ctype in JSONL_TYPES:
        return "body.jsonl"
    name = upload_name(request.query.get("filename", "") or "body.csv")
    return name if name.lower().endswith(".csv") else upload_name(f"{name}.csv")


# -- notices and acks ------------------------------------------------------------------------

ACKS = web.AppKey("shian.acks", Receipts)
MAX_BODY_KEY = web.AppKey("shian.max_body", int)


def recipient_state(dept: str, receipt: Receipt, names: dict[str, Any]) -> dict[str, Any]:
    dep = names.get(dept)
    return {"dept": dept, "name": dep.name if dep is not None else dept, "state": receipt.state,
            "acked_at": fmt(receipt.acked_at) if receipt.acked_at else None,
            "closed_at": fmt(receipt.closed_at) if receipt.closed_at else None,
            "note": receipt.notes[-1][1] if receipt.notes else None}


def _state(states: list[dict[str, Any]]) -> str:
    """A notice is closed once any recipient closed it (办结), acked once any signed for it."""
    kinds = {s["state"] for s in states}
    return "closed" if "closed" in kinds else "acked" if "acked" in kinds else "open"


def _time_param(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name, "").strip()
    if not text:
        return None
    try:
        return parse_time(text, request.app[SERVICE].config.tz)
    except ValueError as e:
        raise ApiError(400, "bad_parameter", f"参数 {name}：{e}") from None


def _choice(request: web.Request, name: str, allowed: Iterable[str]) -> str | None:
    value = request.query.get(name, "").strip() or None
    allowed = tuple(allowed)
    if value is not None and value not in allowed:
        raise ApiError(400, "bad_parameter", f"参数 {name}：“{value}”不在可选值之内（{', '.join(allowed)}）")
    return value


async def list_notices(request: web.Request) -> web.Response:
    _caller(request)
    service = request.app[SERVICE]
    config = service.config
    township = _choice(request, "township", config.townships)
    dept = _choice(request, "dept", config.departments)
    severity = _choice(request, "severity", SEVERITIES)
    state = _choice(request, "state", NOTICE_STATES)
    rule = request.query.get("rule", "").strip() or None
    since, until = _time_param(request, "since"), _time_param(request, "until")
    try:
        limit = int(request.query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        limit = -1
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "bad_parameter", f"参数 limit 应为 1 到 {MAX_LIMIT} 之间的整数")
    query = NoticeQuery(township=township, rule=rule, severity=severity, dept=dept, since=since, until=until)
    return _json(await _read(request, _listed, request.app, query, state, limit))


def _listed(app: web.Application, query: NoticeQuery, state: str | None, limit: int) -> dict[str, Any]:
    """``GET /api/notices``' answer (on the office's reader thread): filtered, newest first and
    cut to ``limit`` where the notices are stored (the state as ids kept or left out): a year
    of notices is not read to answer for a few."""
    service, index = app[SERVICE], app[ACKS].follow(app[SERVICE])
    config = service.config
    if state:
        query = dataclasses.replace(with_state(query, state, index), order="newest")
    total, found = service.notice_page(query, 0, limit)
    out = []
    quiet = service.silenced_ids() if found else set()
    for n in found:
        acks = [{**a, "at": fmt(a["at"])} for a in index.acks(n)]
        states = [recipient_state(d, index.of(n, d), config.departments) for d in dict.fromkeys(n.recipients)]
        deliveries = [{"dept": d.dept, "channel": d.channel, "state": d.state, "attempts": d.attempts,
                       "sent_at": fmt(d.sent_at) if d.sent_at else None, "last_error": d.last_error}
                      for d in service.deliveries_of(n.id)]
        out.append({**n.to_json(), "state": _state(states), "silenced": n.id in quiet,
                    "recipient_states": states, "acks": acks, "deliveries": deliveries})
    return {"total": total, "notices": out}


async def _read(request: web.Request, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on the office's reader thread (:data:`READS`)."""
    return await asyncio.get_running_loop().run_in_executor(request.app[READS], functools.partial(fn, *args))


async def list_rejects(request: web.Request) -> web.Response:
    """The rejects kept (each input once), newest first: those whose source contains
    ``source``, refused at or after ``since``; ``limit`` of them (``total`` counts them all)."""
    from shian.office import reject_list

    _caller(request)
    service = request.app[SERVICE]
    source = request.query.get("source", "").strip() or None
    since = _time_param(request, "since")
    try:
        limit = int(request.query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        limit = -1
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "bad_parameter", f"参数 limit 应为 1 到 {MAX_LIMIT} 之间的整数")
    total, found = await _read(request, service.reject_page, source, since, 0, limit)
    return _json({"total": total, "rejects": [reject_list.to_json(r) for r in found]})


async def _body_object(request: web.Request) -> dict[str, Any]:
    body = await request.read()
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ApiError(400, "invalid_json", "请求体不是合法的 JSON 对象") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "请求体应是一个 JSON 对象 {…}")
    return data


def _text_field(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, "bad_field", f"字段 {name} 应是字符串")
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, "bad_field", f"字段 {name} 含有无效的字符（孤立的 UTF-16 代理项，如 \\ud800）") from None
    return (value.strip() or None) if isinstance(value, str) else None


async def ack_notice(request: web.Request) -> web.Response:
    caller = _caller(request)
    service = request.app[SERVICE]
    body = await _body_object(request)
    action = _text_field(body, "action") or "签收"
    if action not in ACTIONS:
        raise ApiError(400, "bad_field", f"action 应为 {' 或 '.join(ACTIONS)}")
    note, by = _text_field(body, "note"), _text_field(body, "by")
    notice_id = request.match_info["id"]
    notice = service.notice(notice_id)
    if notice is None:
        raise ApiError(404, "notice_not_found", f"没有编号为 {notice_id} 的通知")
    if caller.dept is not None:
        by = by or caller.dept
        if (why := acting_for(caller, by)) is not None:
            raise ApiError(403, "not_your_department", why)
    elif by is None:
        raise ApiError(400, "bad_field", "未配置令牌时须在 by 中写明签收部门 id")
    if by not in notice.recipients:
        raise ApiError(403, "not_a_recipient",
                       f"部门 {by} 不是该通知的接收部门（{', '.join(notice.recipients)}），不能签收或办结")
    outcome = service.ack(notice_id, by, action, note)
    if outcome.status == "rejected":
        raise ApiError(409, "ack_rejected", f"签收未被接受：{outcome.reason}")
    index = await _read(request, request.app[ACKS].follow, service)
    return _json({"status": outcome.status, "id": outcome.id, "notice_id": notice_id, "by": by, "action": action,
                  "recipient_state": recipient_state(by, index.of(notice, by), service.config.departments)})


# -- silences -----------------------------------------------------------------------------

def _own_townships(service: Runtime, dept: str) -> set[str]:
    return {name for name, t in service.config.townships.items() if t.office == dept}


def _may_silence(service: Runtime, caller: Caller, township: str | None) -> None:
    """County office: anything; a town office: its own township only; others: nothing."""
    if caller.open_access or caller.dept == service.config.county.office:
        return
    own = _own_townships(service, caller.dept or "")
    if not own:
        raise ApiError(403, "silence_forbidden", "只有县食安办和乡镇食安办可以设置静默")
    if township not in own:
        raise ApiError(403, "not_your_township", f"乡镇食安办只能为本乡镇（{', '.join(sorted(own))}）设置或取消静默")


def _silence_json(s: Any, now: datetime, source: str) -> dict[str, Any]:
    return {"id": getattr(s, "id", None), "source": source, "rule": s.rule, "township": s.township,
            "start": fmt(s.start), "end": fmt(s.end), "comment": s.comment, "by": getattr(s, "by", ""),
            "created": fmt(s.created) if getattr(s, "created", None) else None, "active": s.start <= now < s.end}


async def list_silences(request: web.Request) -> web.Response:
    _caller(request)
    service = request.app[SERVICE]
    now = service.now()
    configured = [_silence_json(s, now, "config") for s in service.configured_silences() if s.end > now]
    stored = [_silence_json(s, now, "runtime") for s in service.silences(now)]
    return _json({"silences": configured + stored})


async def add_silence(request: web.Request) -> web.Response:
    caller = _caller(request)
    service = request.app[SERVICE]
    body = await _body_object(request)
    rule, township, comment = _text_field(body, "rule"), _text_field(body, "township"), _text_field(body, "comment")
    now = service.now()
    times = {}
    for name in ("start", "end"):
        text = _text_field(body, name)
        if text is None:
            if name == "end":
                raise ApiError(400, "bad_field", "缺少结束时间 end")
            times[name] = now
            continue
        try:
            times[name] = parse_time(text, service.config.tz)
        except ValueError as e:
            raise ApiError(400, "bad_field", f"{name}：{e}") from None
    _may_silence(service, caller, township)
    problems = check_silence(service.config, rule, township, times["start"], times["end"])
    if problems:
        raise ApiError(400, "invalid_silence", "；".join(problems), problems=problems)
    silence = service.add_silence(rule, township, times["start"], times["end"], comment or "", caller.dept or "")
    return _json(_silence_json(silence, now, "runtime"), status=201)


async def delete_silence(request: web.Request) -> web.Response:
    caller = _caller(request)
    service = request.app[SERVICE]
    now = service.now()
    sid = int(request.match_info["id"])
    silence = next((s for s in service.silences(now) if s.id == sid), None)
    if silence is None:
        raise ApiError(404, "silence_not_found", f"没有生效中或将要生效的静默 #{sid}")
    _may_silence(service, caller, silence.township)
    ended = service.expire_silence(sid)
    if ended is None:
        raise ApiError(404, "silence_not_found", f"没有生效中或将要生效的静默 #{sid}")
    return _json(_silence_json(ended, service.now(), "runtime"))


# -- health, metrics, the spec ------------------------------------------------------------

PART_NAMES = {"journal": "事件日志", "outbox": "发件箱", "delivery": "通知投递", "clock": "规则时钟", "database": "数据库"}


async def health(request: web.Request) -> web.Response:
    """200 while every part works; 503 naming the failing parts (the journal or the outbox
    cannot be read or written, delivery or the clock raising) with their reasons in Chinese."""
    service = request.app[SERVICE]
    clock = service.clock()
    failing = service.problems()
    try:
        counts = service.counts()
    except Exception as e:  # the database is what a monitor wants to hear about
        log.exception("health check failed")
        return _unhealthy({**failing, "database": f"数据库不可读（{type(e).__name__}）"})
    if failing:
        return _unhealthy(failing)
    return _json({"status": "ok", "now": fmt(service.now()), "clock": fmt(clock) if clock else None,
                  "events": counts["events"], "rejects": counts["rejects"], "outbox": counts["outbox"]})


def _unhealthy(failing: dict[str, str]) -> web.Response:
    reason = "；".join(f"{PART_NAMES.get(part, part)}：{why}" for part, why in failing.items())
    return _json({"status": "error", "error": reason, "code": "unhealthy", "failing": failing}, status=503)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and math.isfinite(x) else repr(float(x))


def prometheus_text(service: Runtime) -> str:
    """Prometheus text format 0.0.4. Counters count since the process started."""
    m = service.metrics
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}")

    states = service.counts()["outbox"]
    now = service.now()
    oldest = service.next_delivery()  # later than now: nothing is due, no lag
    types = list(dict.fromkeys([*EVENT_TYPES, *m.events]))
    rules = list(dict.fromkeys([*RULES, *DELIVERY_RULES, *m.notices]))
    family("shian_events_accepted_total", "counter", "Events accepted, by type.",
           (({"type": t}, m.events.get(t, 0)) for t in types))
    family("shian_events_rejected_total", "counter", "Input lines rejected (with a reason).", [({}, m.rejects)])
    family("shian_events_duplicate_total", "counter", "Events received again and dropped.", [({}, m.duplicates)])
    family("shian_notices_total", "counter", "Notices raised by the rules and new to the outbox, by rule.",
           (({"rule": r}, m.notices.get(r, 0)) for r in rules))
    family("shian_deliveries", "gauge", "Delivery rows in the outbox, by state.",
           (({"state": s}, states.get(s, 0)) for s in STATES))
    family("shian_delivery_failures_total", "counter", "Deliveries that failed for good.",
           [({}, states.get("failed", 0))])
    family("shian_delivery_lag_seconds", "gauge", "Age of the oldest due pending delivery (0 when none).",
           [({}, max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0)])
    family("shian_clock_lag_seconds", "gauge", "Seconds since the rule clock last ticked (since start if never).",
           [({}, round(max(0.0, time.time() - (m.last_tick or m.started)), 3))])
    family("shian_start_time_seconds", "gauge", "When the process started (Unix time).", [({}, round(m.started, 3))])
    return "\n".join(lines) + "\n"


async def metrics(request: web.Request) -> web.Response:
    body = prometheus_text(request.app[SERVICE]).encode()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def openapi_text() -> str:
    return resources.files("shian.office").joinpath("openapi.yaml").read_text(encoding="utf-8")


async def openapi(request: web.Request) -> web.Response:
    return web.Response(text=openapi_text(), content_type="application/yaml", charset="utf-8")


# -- the app and the server ----------------------------------------------------------------

def make_app(runtime: Runtime, settings: ServiceSettings, *, max_body: int = MAX_BODY) -> web.Application:
    """The API and the dashboard pages on ``runtime``."""
    from shian.office import dashboard

    app = web.Application(client_max_size=max_body, middlewares=[_errors])
    app[SERVICE], app[SETTINGS], app[ACKS] = runtime, settings, Receipts(runtime.config.tz)
    app[LIMITER] = FailureLimiter(settings.auth_failures)
    app[MAX_BODY_KEY] = max_body
    app[READS] = dashboard.reader_thread()
    app.on_cleanup.append(_stop_reads)
    r = app.router
    r.add_post("/api/events", post_events)
    r.add_get("/api/notices", list_notices, allow_head=False)
    r.add_post("/api/notices/{id}/ack", ack_notice)
    r.add_get("/api/rejects", list_rejects, allow_head=False)
    r.add_get("/api/silences", list_silences, allow_head=False)
    r.add_post("/api/silences", add_silence)
    r.add_delete(r"/api/silences/{id:\d+}", delete_silence)
    r.add_get("/api/openapi.yaml", openapi, allow_head=False)
    r.add_get("/health", health, allow_head=False)
    r.add_get("/metrics", metrics, allow_head=False)
    dashboard.add_routes(app, runtime, settings, app[LIMITER], app[READS])
    return app


async def _stop_reads(app: web.Application) -> None:
    """At the app's cleanup: the read under way finishes (off the loop), no other starts."""
    await asyncio.get_running_loop().run_in_executor(None, app[READS].shutdown)


def check_listen(settings: ServiceSettings) -> None:
    """Without any token the service is a single-user desk tool: loopback only."""
    if settings.open_access and not is_loopback(settings.host):
        raise ServeRefused(
            f"未配置任何令牌（service.feeds / service.tokens），只能监听本机地址，不能监听 {settings.host}："
            f"请为数据来源和部门配置令牌，或把 service.listen 改为 127.0.0.1:{settings.port}")


async def listen(app: web.Application, settings: ServiceSettings) -> tuple[web.AppRunner, list[str]]:
    """The app bound to ``settings.host:port`` (open requests get :data:`SHUTDOWN_SECONDS` at
    cleanup: a batch being accepted answers its remaining lines 服务正在停止 at once); returns the
    runner, for the caller to clean up, and the bound addresses (``http://host:port``).
    Raises :class:`ServeRefused` when the address is refused or taken."""
    check_listen(settings)
    runner = web.AppRunner(app, access_log_class=AccessLogger, handle_signals=False,
                            shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    site = web.TCPSite(runner, settings.host.strip("[]"), settings.port)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise ServeRefused(f"无法监听 {settings.host}:{settings.port}：{e.strerror or e}") from None
    return runner, [_url(a) for a in runner.addresses]


def _url(address: Any) -> str:
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
