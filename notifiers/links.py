"""Where a notice can be read and handled on the office's pages, for the messages to point at.

``service.public_url`` (checked with the rest of ``service:`` by :mod:`shian.office.settings`,
which uses :func:`url_problem`) is the address the departments open the dashboard at, e.g.
``https://shian.xiping.gov.cn``; a notice's page is ``<public_url>/notices/<id>``. Without it
the messages carry the command line only. The address goes into markdown links as it is, so it
may hold none of the characters that would end a link or a line.
"""
from __future__ import annotations

import re
from typing import Any, Mapping
from urllib.parse import urlsplit

_UNSAFE = re.compile(r"[\s()<>\[\]\"'`\\{}|^]")


def url_problem(value: Any) -> str | None:
    """Why ``value`` is not a usable public address (None: it is one): an ``http://`` or
    ``https://`` address of a host, with an optional path, and nothing else."""
    if not isinstance(value, str) or not value:
        return "应为以 http:// 或 https:// 开头的网址"
    if _UNSAFE.search(value):
        return "网址中不能有空格、引号或括号等字符"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 — raises on a port that is not a number
    except ValueError:
        return "不是有效的网址"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "应为以 http:// 或 https:// 开头、带主机名的网址"
    if parts.query or parts.fragment or parts.username or parts.password:
        return "网址不能带 ? 查询参数、# 锚点或用户名密码"
    return None


def public_url(service: Mapping[str, Any]) -> str | None:
    """The configured address without its trailing ``/`` (None: not set, or not usable)."""
    value = service.get("public_url") if isinstance(service, Mapping) else None
    if value is None or url_problem(value) is not None:
        return None
    return str(value).rstrip("/")


def notice_page(base: str | None, notice_id: str) -> str | None:
    """The page of one notice on the office's pages (None without a public address)."""
    return f"{base}/notices/{notice_id}" if base else None
