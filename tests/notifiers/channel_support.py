"""Real local servers for the channel tests: a recording SMTP server (aiosmtpd in its own
thread), a programmable robot webhook (aiohttp in the test's loop), a self-signed certificate,
and builders for settings and messages. Everything listens on 127.0.0.1 and stops on exit."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

from aiohttp import web
from aiosmtpd.controller import Controller

from shian.notifiers.message import Message
from shian.notifiers.settings import Settings, parse as parse_settings
from shian.rules.config import parse as parse_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_settings(**notifiers: Any) -> Settings:
    config = parse_config({
        "county": {"name": "西平县", "office": "county-fso"},
        "departments": {"county-fso": {"name": "县食安办"}},
        "townships": {"红河镇": {"office": "county-fso"}},
        "notifiers": notifiers,
    })
    return parse_settings(config)


def make_message(**over: Any) -> Message:
    fields: dict[str, Any] = dict(
        ref="n-20260501-0007",
        notice_ids=("N-0007",),
        dept="hh-fso",
        severity="high",
        subject="【食安预警】红河镇 蔬菜农残抽检不合格",
        text="红河镇新寨村送检的青菜农残超标。\n请于 24 小时内处置。",
        html="<p>红河镇新寨村送检的<b>青菜</b>农残超标。</p>",
        markdown="### 食安预警\n红河镇新寨村送检的青菜农残超标。\n> 编号：n-20260501-0007",
        headers=(("X-Shian-Ref", "n-20260501-0007"), ("X-Shian-Notice-Ids", "N-0007")),
    )
    fields.update(over)
    return Message(**fields)


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """(cert, key) for 127.0.0.1, made with the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True)
    return cert, key


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


class SmtpRecorder:
    """aiosmtpd handler that keeps what it accepts and answers what the test programs:
    ``rcpt_replies`` by address prefix, ``data_reply`` for DATA, a connection closed after
    each message (``drop_after_data``) or a 421 on the second MAIL of a connection."""

    def __init__(self) -> None:
        self.messages: list[tuple[Any, str, list[str], bytes]] = []
        self.rcpt_replies: dict[str, str] = {}
        self.data_reply: str | None = None
        self.drop_after_data = False
        self.close_on_second_mail = False
        self._mails: dict[int, int] = {}

    @property
    def connections(self) -> int:
        return len({peer for peer, *_ in self.messages})

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        n = self._mails[id(session)] = self._mails.get(id(session), 0) + 1
        if self.close_on_second_mail and n > 1:
            asyncio.get_running_loop().call_later(0.01, server.transport.close)
            return "421 4.4.2 closing connection"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        for prefix, reply in self.rcpt_replies.items():
            if address.startswith(prefix):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.messages.append((session.peer, envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        if self.drop_after_data:
            asyncio.get_running_loop().call_later(0.01, server.transport.close)
        return "250 OK queued"


@contextlib.contextmanager
def smtp_server(handler: SmtpRecorder, **kwargs: Any) -> Iterator[Controller]:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def dingtalk_sign(secret: str, timestamp: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


WECOM_LIMITS = {"markdown": 4096, "text": 2048}  # bytes of content, UTF-8
DINGTALK_BODY = 20000  # bytes of the request body


class RobotServer:
    """Both robots' webhooks (``/wecom``, ``/dingtalk``) in the test's own loop. Checks the
    body shape, the size limits (WeCom's content per msgtype, DingTalk's whole body) and
    DingTalk's signature when ``secret`` is set, like the real services, then answers the next
    programmed reply: (HTTP status, JSON object or raw text). ``bodies`` keeps the raw bytes."""

    def __init__(self, secret: str | None = None, delay: float = 0.0) -> None:
        self.secret = secret
        self.delay = delay
        self.replies: list[tuple[int, Any]] = []
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.bodies: list[bytes] = []
        self.port = 0

    def url(self, path: str, **query: str) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return f"http://127.0.0.1:{self.port}/{path}" + (f"?{q}" if q else "")

    def _problem(self, path: str, body: Any, query: dict[str, str], size: int) -> tuple[int, str] | None:
        kind = body.get("msgtype") if isinstance(body, dict) else None
        if kind not in ("markdown", "text"):
            return 40008, "invalid message type"
        md = body.get(kind)
        if path == "/wecom":
            if set(body) != {"msgtype", kind} or not isinstance(md, dict) or set(md) != {"content"} \
                    or not isinstance(md["content"], str):
                return 40008, "invalid message"
            if len(md["content"].encode()) > WECOM_LIMITS[kind]:
                return 40058, f"{kind}.content exceed max length {WECOM_LIMITS[kind]}"
        else:
            keys = {"title", "text"} if kind == "markdown" else {"content"}
            if not isinstance(md, dict) or set(md) != keys or not all(isinstance(v, str) and v for v in md.values()):
                return 40035, f"缺少参数 {kind}"
            if size > DINGTALK_BODY:
                return 460101, "message too long, exceed 20000 bytes"
            if self.secret is not None:
                ts = query.get("timestamp", "")
                if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 3600_000 \
                        or query.get("sign") != dingtalk_sign(self.secret, ts):
                    return 310000, "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = None
        query = dict(request.query)
        self.requests.append((request.path, query, body))
        self.bodies.append(raw)
        problem = self._problem(request.path, body, query, len(raw))
        if problem:
            return web.json_response({"errcode": problem[0], "errmsg": problem[1]})
        if self.delay:
            await asyncio.sleep(self.delay)
        status, reply = self.replies.pop(0) if self.replies else (200, {"errcode": 0, "errmsg": "ok"})
        if isinstance(reply, str):
            return web.Response(status=status, text=reply)
        return web.json_response(reply, status=status)

    async def __aenter__(self) -> "RobotServer":
        app = web.Application()
        app.router.add_post("/wecom", self._handle)
        app.router.add_post("/dingtalk", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._runner.cleanup()
