"""Errors a person sees in a browser are Chinese pages with the menu (no such address, a method
a page does not take, a failure); the API's stay JSON for programs; the pages' own refusals
pass as they are."""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from api_support import running
from office_support import county, make_service  # noqa: F401  (a fixture)

NOW = datetime(2026, 4, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
PROGRAM = {"Accept": "*/*"}

CASES = [
    # (method, path, headers, status, content type, words the answer must hold)
    ("GET", "/foo", PROGRAM, 404, "text/html", "没有这个页面：/foo"),
    ("PUT", "/", PROGRAM, 405, "text/html", "这个页面不支持此操作（PUT）"),
    ("GET", "/api/nope", PROGRAM, 404, "application/json", '"code": "not_found"'),
    ("GET", "/api/nope", BROWSER, 404, "text/html", "没有这个页面：/api/nope"),
    ("PUT", "/api/notices", PROGRAM, 405, "application/json", '"code": "method_not_allowed"'),
    ("GET", "/notices/ffffffffffffffff", PROGRAM, 404, "text/html", "没有编号为 ffffffffffffffff 的通知"),
]


def _serve(make_service: Any, requests: list[tuple[str, str, dict[str, str]]], break_rejects: bool = False
           ) -> list[tuple[int, str, str, dict[str, str]]]:
    svc = make_service(county(), now=lambda: NOW)
    if break_rejects:
        def broken(*args: Any, **kw: Any) -> Any:
            raise RuntimeError("injected")
        svc.reject_page = broken  # type: ignore[method-assign]

    async def scenario() -> list[tuple[int, str, str, dict[str, str]]]:
        out = []
        async with running(svc, svc.storage) as base, aiohttp.ClientSession() as s:
            for method, path, headers in requests:
                async with s.request(method, base + path, headers=headers) as r:
                    out.append((r.status, r.content_type, await r.text(), dict(r.headers)))
        return out

    return asyncio.run(scenario())


@pytest.mark.parametrize("method, path, headers, status, ctype, words", CASES,
                         ids=[f"{c[0]} {c[1]} {'browser' if c[2] is BROWSER else 'program'}" for c in CASES])
def test_an_error_is_a_chinese_page_for_a_person_and_json_for_the_api(make_service, method, path, headers, status,
                                                                     ctype, words):
    """Outside /api (or for a browser anywhere) a router error is a Chinese page with the menu;
    inside /api, for a program, it is the API's JSON error."""
    [(got, content_type, text, answer_headers)] = _serve(make_service, [(method, path, headers)])
    assert (got, content_type) == (status, ctype), text[:300]
    assert words in text, text[:600]
    assert "Not Found" not in text and "Method Not Allowed" not in text
    if ctype == "text/html":
        assert '<a href="/rejects">拒收记录</a>' in text and "<title>" in text
        assert answer_headers.get("Content-Security-Policy"), "the pages' headers"
    if status == 405:
        assert answer_headers.get("Allow"), "405 names the methods it takes"


def test_a_failure_is_a_chinese_500_page_for_a_person_and_json_for_the_api(make_service):
    """A page whose runtime call fails answers a 500 page in Chinese (logged, no traceback
    shown); the API's own route answers the JSON 500."""
    page, api = _serve(make_service, [("GET", "/rejects", BROWSER), ("GET", "/api/rejects", PROGRAM)],
                       break_rejects=True)
    assert (page[0], page[1]) == (500, "text/html") and "服务器内部出错，已记入日志" in page[2]
    assert "Traceback" not in page[2] and "injected" not in page[2]
    assert (api[0], api[1]) == (500, "application/json") and '"code": "internal_error"' in api[2]
