"""Email through one SMTP server (aiosmtplib), one connection kept open across sends.

Outcome of a send:

=====================================================  =========
connection refused / timeout / disconnected / TLS      RETRY
4xx reply (421, 450, 451, 452, 454 …)                  RETRY
5xx reply (550, 553, 554 …), auth failure (535)        FAILED
every recipient refused                                RETRY if any refusal is 4xx, else FAILED
some recipients refused, the others accepted           DELIVERED, error names the refused ones
=====================================================  =========

A partly refused message is DELIVERED because sending it again would reach the accepted
recipients twice; the error text keeps the refused addresses for the outbox record.

Config: a department's addresses, ``departments.<id>.email: [a@b, …]``, and the server,
``notifiers.smtp`` (:class:`Smtp`); without the server no e-mail is sent.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import random
import re
import sys
import time
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import default as DEFAULT_POLICY
from email.utils import formatdate, parseaddr
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Mapping, Sequence

from pydantic import AfterValidator, Field

from shian.notifiers.channels.exchange import Exchange, payload
from shian.notifiers.channels.spec import ChannelSpec, Label, SectionModel, secret, strict
from shian.notifiers.message import DELIVERED, Message, Outcome, Result
from shian.rules.config import Department, Section

if TYPE_CHECKING:
    import aiosmtplib

    from shian.notifiers.settings import Settings

DEFAULT_SENDER = "食安预警 <shian@localhost>"
_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"  # \w: letters of any script (an internationalised address, RFC 6531)
_DOMAIN_LABEL = r"(?!-)[\w-]{1,63}(?<!-)"  # \w: a Chinese domain name too
_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*")
_NAMED = re.compile(r"[^<>@]*<\s*(?P<address>[^<>\s]+)\s*>")


def address(value: str) -> str:
    """An e-mail address as the config gives it: ``local@domain``, or ``名称 <local@domain>``."""
    text = value.strip()
    named = _NAMED.fullmatch(text)
    bare = named["address"] if named else text
    if _ADDRESS.fullmatch(bare) is None:
        shown = value if len(value) <= 60 else value[:60] + "…"
        raise ValueError(f"“{shown}”不是有效的邮件地址：应为 用户名@域名（如 shianban@xiping.example），"
                         "或 名称 <用户名@域名>")
    return value


Address = Annotated[str, AfterValidator(address)]
ADDRESSES = strict(list[Address])

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_HEADER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
_RESERVED = {"from", "to", "cc", "bcc", "subject", "message-id", "date", "mime-version", "sender",
             "reply-to", "return-path", "content-type", "content-transfer-encoding"}
_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_COMMAND_UNSAFE = re.compile(rb"[\x00-\x1f\x7f]")  # what aiosmtplib refuses in a command's argument


class Smtp(SectionModel):
    """``notifiers.smtp``: the one server all e-mail goes through."""
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    sender: Address = Field(alias="from")
    timeout_seconds: float = Field(30.0, gt=0, le=3600, allow_inf_nan=False)  # connecting; each message's exchange
    tls_ca_file: str | None = None  # extra CA bundle to trust (a self-signed server); verification stays on
    connections: int = Field(1, ge=1, le=8)  # SMTP connections kept open to the server, one message on each at a time


def settle(smtp: Smtp, where: Section, env: Mapping[str, str]) -> Smtp:
    """The login's password is in a variable that is set; the CA file exists (path resolved)."""
    keys = ("notifiers", "smtp")
    if smtp.username and not smtp.password_env:
        where.problems.add(keys + ("password_env",), "设置了 username 却没有给出密码所在的环境变量",
                           "写上环境变量名，如 password_env: SHIAN_SMTP_PASSWORD")
    elif smtp.password_env and smtp.password_env not in env:
        where.problems.add(keys + ("password_env",), f"环境变量 {smtp.password_env} 未设置",
                           "启动前设置该环境变量（密码不写进配置文件）")
    if not smtp.tls_ca_file:
        return smtp
    if not where.path(smtp.tls_ca_file).is_file():
        where.problems.add(keys + ("tls_ca_file",), f"证书文件 {smtp.tls_ca_file} 不存在",
                           "写上邮件服务器证书（或其 CA 证书）的 PEM 文件路径，或删除该键")
    return smtp.model_copy(update={"tls_ca_file": str(where.path(smtp.tls_ca_file))})


def addresses_of(dept: Department) -> list[str]:
    """The department's addresses (``departments.<id>.email``), none when it gives none."""
    return SPEC.contact_of(dept) or []


def clean(value: str) -> str:
    """One header line: CR, LF and other control characters become a space, so a value can
    never start a header of its own (the renderer sanitises too; this does not trust it)."""
    return _CONTROL.sub(" ", value).strip()


def header(value: str) -> str:
    """A header's value: one line (:func:`clean`), and every ``=?`` broken by a zero-width
    space, so text that looks like an RFC 2047 encoded word (an entity named
    ``=?utf-8?q?=0D=0ABcc:…?=``) goes out as that text, never decoded by the reader into a
    line break or a header of its own."""
    return clean(value).replace("=?", "=\u200b?")


def message_id(ref: str, dept_id: str) -> str:
    """Same (ref, department) → same Message-ID, so a redelivery is recognisable."""
    def token(s: str) -> str:
        return _MSGID_UNSAFE.sub(lambda m: "=" + m.group().encode().hex().upper(), s)
    return f"<{token(ref)}.{token(dept_id)}.email@shian>"


def build_message(sender: str, dept_id: str, addresses: Sequence[str], message: Message) -> EmailMessage:
    """The RFC 5322 message for one department, 7-bit clean (encoded words, base64 parts) so
    that a server without SMTPUTF8 / 8BITMIME accepts it. Shared with the file outbox."""
    msg = EmailMessage()
    msg["From"] = header(sender)
    to = [a for a in (header(x) for x in addresses) if a]
    if to:
        msg["To"] = ", ".join(to)
    msg["Subject"] = header(message.subject)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = message_id(message.ref, dept_id)
    for name, value in message.headers:
        if _HEADER_NAME.match(name) and name.lower() not in _RESERVED:
            msg[name] = header(value)
    msg.set_content(message.text, charset="utf-8", cte="base64")
    msg.add_alternative(message.html, subtype="html", charset="utf-8", cte="base64")
    return msg


def as_bytes(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=SMTP_POLICY)


# -- the same bytes, cheaply ------------------------------------------------------------------
# The standard library parses and refolds every header of every message (about 3 ms a message,
# most of the sender's CPU). message_bytes writes what build_message + as_bytes write for the
# same message, byte for byte but the random boundary and the Subject
# (tests/notifiers/test_email_bytes.py compares the two): a header whose folding is trivial
# (printable ASCII, no space, short) is written as it is; a Subject with any other character
# is written as base64 encoded words directly (:func:`_encoded_subject`: the same text once
# decoded, and the one header that differs per message, so a cache would not help); any other
# header is folded by the standard library, once per distinct value (the sender, a
# department's addresses, the second's Date).
_PLAIN_VALUE = re.compile(r"[!-~]+")
_ASCII_TEXT = re.compile(r"[ -~]*")
_FOLDED: dict[tuple[str, str], bytes] = {}
_FOLDED_MAX = 4096
_BOUNDARY_WIDTH = len(repr(sys.maxsize - 1))
_B64_LINE = SMTP_POLICY.max_line_length // 4 * 3   # 57 bytes → 76 characters, as contentmanager does
# An encoded word =?utf-8?b?…?= is at most 75 characters (RFC 2047), a line at most 78: 42 bytes
# of text (56 of base64) fit after "Subject: " on the first line and after the space on the others.
_EW_BYTES = 42


def _folded(name: str, value: str) -> bytes:
    """``Name: value`` as the SMTP policy folds it (CRLF line ends)."""
    if "=?" not in value and len(name) + 2 + len(value) <= SMTP_POLICY.max_line_length \
            and _PLAIN_VALUE.fullmatch(value):
        return f"{name}: {value}\r\n".encode("ascii")
    key = (name, value)
    line = _FOLDED.get(key)
    if line is None:
        if len(_FOLDED) >= _FOLDED_MAX:
            _FOLDED.clear()
        stored = DEFAULT_POLICY.header_store_parse(name, value)
        line = _FOLDED[key] = SMTP_POLICY.fold_binary(*stored)
    return line


def _encoded_subject(value: str) -> bytes:
    """``Subject: value`` for a value (one line, :func:`header`) that is not plain ASCII text:
    base64 encoded words of at most :data:`_EW_BYTES` bytes of UTF-8 each, never splitting a
    character, one per line; a reader joins them back into the value (the space between two
    encoded words is not part of the text, RFC 2047 §6.2). Plain ASCII text is folded as the
    standard library folds it (:func:`_folded`)."""
    if _ASCII_TEXT.fullmatch(value):
        return _folded("Subject", value)
    data = value.encode("utf-8")
    words, start = [], 0
    while start < len(data):
        end = min(start + _EW_BYTES, len(data))
        while end < len(data) and 0x80 <= data[end] < 0xC0:  # not inside a character
            end -= 1
        words.append(b"=?utf-8?b?" + binascii.b2a_base64(data[start:end], newline=False) + b"?=")
        start = end
    return b"Subject: " + b"\r\n ".join(words) + b"\r\n"


def _base64_body(text: str) -> bytes:
    """A text part's body as ``set_content(…, cte="base64")`` encodes it and the generator writes
    it: lines of 76 characters (57 bytes), each ending in CRLF — the lines
    ``base64.encodebytes`` cuts, cut here from one encoding of the whole (57 bytes are 19 groups
    of 3: no line's encoding depends on the line before)."""
    assert _B64_LINE == 57
    data = text.encode("utf-8")
    if b"\r" in data:  # CR and CRLF line ends become LF, as splitlines() reads them
        data = b"\n".join(data.splitlines()) + b"\n"
    elif not data.endswith(b"\n"):
        data += b"\n"
    encoded = binascii.b2a_base64(data, newline=False)
    return b"".join([encoded[i:i + 76] + b"\r\n" for i in range(0, len(encoded), 76)])


_date_now: tuple[int, str] = (0, "")


def _date() -> str:
    """``formatdate(localtime=True)`` of now, made once a second (it writes whole seconds)."""
    global _date_now
    second = int(time.time())
    if _date_now[0] != second:
        _date_now = (second, formatdate(second, localtime=True))
    return _date_now[1]


_HEADS: dict[tuple[str, tuple[str, ...]], bytes] = {}


def _head(sender: str, addresses: Sequence[str]) -> bytes:
    """The From and To lines of a sender and a department's addresses (made once for each)."""
    key = (sender, tuple(addresses))
    head = _HEADS.get(key)
    if head is None:
        if len(_HEADS) >= _FOLDED_MAX:
            _HEADS.clear()
        to = [a for a in (header(x) for x in addresses) if a]
        head = _HEADS[key] = _folded("From", header(sender)) + (_folded("To", ", ".join(to)) if to else b"")
    return head


def make_boundary() -> str:
    """A part boundary as the standard library's generator makes one. Never found in a part:
    the parts are base64 (no line of it starts with ``-``)."""
    return "=" * 15 + f"{random.randrange(sys.maxsize):0{_BOUNDARY_WIDTH}d}" + "=="


def message_bytes(sender: str, dept_id: str, addresses: Sequence[str], message: Message,
                  *, date: str | None = None, boundary: str | None = None) -> bytes:
    """``as_bytes(build_message(sender, dept_id, addresses, message))``, without the email
    package's per-message header parsing (``date`` and ``boundary``: fixed, for a comparison);
    the Subject is written as :func:`_encoded_subject` writes it."""
    out = [_head(sender, addresses), _encoded_subject(header(message.subject)), _folded("Date", date or _date()),
           _folded("Message-ID", message_id(message.ref, dept_id))]
    seen = {"from", "to", "subject", "date", "message-id"}
    for name, value in message.headers:
        if _HEADER_NAME.match(name) and name.lower() not in _RESERVED:
            out.append(_folded(name, header(value)))
            seen.add(name.lower())
    if "mime-version" in seen or "content-type" in seen:  # never: both are reserved
        raise ValueError("message headers name MIME-Version or Content-Type")
    b = (boundary or make_boundary()).encode("ascii")
    out += [b"MIME-Version: 1.0\r\n", b'Content-Type: multipart/alternative;\r\n boundary="', b, b'"\r\n\r\n',
            b"--", b, b'\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
            _base64_body(message.text),
            b"\r\n--", b, b'\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n'
            b"MIME-Version: 1.0\r\n\r\n",
            _base64_body(message.html), b"\r\n--", b, b"--\r\n"]
    return b"".join(out)


def _reply(code: int, text: str) -> str:
    return f"{code} {clean(text)}".strip()


def _by_code(code: int, what: str) -> Result:
    if 400 <= code < 500:
        return Result(Outcome.RETRY, f"邮件服务器暂时拒绝{what}")
    return Result(Outcome.FAILED, f"邮件服务器拒绝{what}")


@dataclass(frozen=True)
class _Envelope:
    """A department's addresses as sent: its header addresses, and each mailbox with its RCPT
    command line (its argument checked as aiosmtplib checks it, once)."""
    dept: Department
    addresses: tuple[str, ...]
    mailboxes: tuple[str, ...]
    rcpt: tuple[bytes, ...]


class _Slot:
    """One connection of the pool: its client, None until opened (again)."""
    client: aiosmtplib.SMTP | None = None


class EmailChannel:
    """Sends over ``smtp.connections`` lazily opened SMTP connections (one by default), each
    reopened when the server has closed it; one message at a time on each. ``connections``
    counts the connections opened; ``concurrency`` tells the dispatcher how many sends it may
    have in flight. A message is one MAIL, RCPT per address and DATA, each written as the
    reply before it arrives (:class:`~.exchange.Exchange`), the addresses parsed once per
    department; aiosmtplib opens, secures, logs in, resets and closes the connections."""
    name = "email"

    def __init__(self, settings: Settings) -> None:
        smtp = settings.section(self.name)
        if smtp is None:
            raise ValueError("email channel needs notifiers.smtp")
        self._cfg: Smtp = smtp
        self._envelope_from = parseaddr(clean(self._cfg.sender))[1]
        self._slots: asyncio.LifoQueue[_Slot] | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._all = [_Slot() for _ in range(smtp.connections)]
        self._envelopes: dict[str, _Envelope] = {}
        self._mail_from = b""  # MAIL's argument, made with the first envelope
        self.concurrency = smtp.connections
        self.connections = 0

    def _where(self) -> str:
        return f"{self._cfg.host}:{self._cfg.port}"

    def _secrets(self) -> list[str]:
        pw = secret(self._cfg.password_env)
        if not pw:
            return []
        user = self._cfg.username or ""
        return [pw, base64.b64encode(pw.encode()).decode(),
                base64.b64encode(f"\0{user}\0{pw}".encode()).decode()]

    def _scrub(self, result: Result) -> Result:
        error = result.error
        for s in self._secrets():
            error = error.replace(s, "***")
        return result if error == result.error else Result(result.outcome, error, result.retry_after)

    def _envelope(self, dept_id: str, dept: Department) -> _Envelope:
        """The department's addresses, worked out once (raises ValueError on one that cannot be
        put on an SMTP command line)."""
        known = self._envelopes.get(dept_id)
        if known is not None and known.dept is dept:
            return known
        from aiosmtplib.email import quote_address

        addresses = tuple(addresses_of(dept))
        mailboxes = tuple(parseaddr(a)[1] or a for a in (clean(x) for x in addresses) if a)
        rcpt = tuple(b"RCPT TO:" + quote_address(m).encode("ascii") + b"\r\n" for m in mailboxes)
        self._mail_from = quote_address(self._envelope_from).encode("ascii")
        if any(_COMMAND_UNSAFE.search(x) for x in (*(r[:-2] for r in rcpt), self._mail_from)):
            raise ValueError("Command arg contains a prohibited control character")
        made = self._envelopes[dept_id] = _Envelope(dept, addresses, mailboxes, rcpt)
        return made

    async def send(self, dept_id: str, dept: Department, message: Message) -> Result:
        try:
            envelope = self._envelope(dept_id, dept)
        except (ValueError, UnicodeEncodeError) as e:
            return Result(Outcome.FAILED, f"邮件地址 {', '.join(addresses_of(dept))} 无法发送：{e}")
        if not envelope.mailboxes:
            return Result(Outcome.FAILED, f"部门 {dept_id} 没有配置邮箱地址")
        try:
            data = message_bytes(self._cfg.sender, dept_id, envelope.addresses, message)
        except (ValueError, TypeError) as e:
            return Result(Outcome.FAILED, f"无法生成邮件：{e}")
        slots = self._idle()
        slot = await slots.get()
        try:
            return self._scrub(await self._send(slot, envelope, data))
        finally:
            slots.put_nowait(slot)

    def _idle(self) -> asyncio.LifoQueue[_Slot]:
        """The idle connections, last returned first (an open one is reused before another is
        opened). On a new event loop (a dispatcher stepped by ``asyncio.run`` each time) the
        queue and the connections are new: both belong to the loop they were made on, which
        has ended (its connections are left to be collected, not closed on a closed loop)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            if self._slots_loop is not None:
                self._all = [_Slot() for _ in self._all]
            self._slots, self._slots_loop = asyncio.LifoQueue(), loop
            for slot in self._all:
                self._slots.put_nowait(slot)
        return self._slots

    async def _connect(self, slot: _Slot) -> aiosmtplib.SMTP:
        import aiosmtplib  # here, not at the top: loading the config must not pay for the SMTP library

        cfg = self._cfg
        client = aiosmtplib.SMTP(
            hostname=cfg.host, port=cfg.port, timeout=cfg.timeout_seconds,
            use_tls=cfg.security == "tls", start_tls=cfg.security == "starttls",
            validate_certs=True, cert_bundle=cfg.tls_ca_file)
        slot.client = client
        self.connections += 1
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
            if cfg.username:
                await client.login(cfg.username, secret(cfg.password_env) or "")
        except BaseException:
            self._drop(slot)
            raise
        return client

    @staticmethod
    def _drop(slot: _Slot) -> None:
        client, slot.client = slot.client, None
        if client is not None:
            client.close()

    async def _transaction(self, client: aiosmtplib.SMTP, envelope: _Envelope, data: bytes) -> dict[str, Any]:
        """MAIL, RCPT for each mailbox, DATA (:class:`~.exchange.Exchange`, under one timer for
        the whole exchange, ``timeout_seconds``); the recipients refused (all refused:
        SMTPRecipientsRefused), the envelope reset (RSET) after a refusal, as ``sendmail``."""
        import aiosmtplib

        mail = b"MAIL FROM:" + self._mail_from
        if client.supports_extension("size"):
            mail += b" SIZE=%d" % len(data)
        exchange = Exchange(client, mail + b"\r\n", envelope.mailboxes, envelope.rcpt, payload(data),
                            self._envelope_from)
        try:
            refused = await exchange.run(self._cfg.timeout_seconds)
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
            try:
                await client.rset()
            except (ConnectionError, aiosmtplib.SMTPResponseException):
                pass
            raise
        return {r.recipient: r for r in refused}

    async def _send(self, slot: _Slot, envelope: _Envelope, data: bytes) -> Result:
        import aiosmtplib

        for attempt in (1, 2):
            client = slot.client
            reused = client is not None and client.is_connected
            try:
                if client is None or not reused:
                    client = await self._connect(slot)
                refused = await self._transaction(client, envelope, data)
            except asyncio.CancelledError:
                self._drop(slot)
                raise
            except aiosmtplib.SMTPRecipientsRefused as e:
                codes = [r.code for r in e.recipients]
                detail = "；".join(f"{r.recipient}（{_reply(r.code, r.message)}）" for r in e.recipients)
                outcome = Outcome.RETRY if any(400 <= c < 500 for c in codes) else Outcome.FAILED
                return Result(outcome, f"全部收件人被拒绝：{detail}")
            except aiosmtplib.SMTPAuthenticationError as e:
                if 400 <= e.code < 500:
                    return Result(Outcome.RETRY, f"SMTP 登录暂时失败（{_reply(e.code, e.message)}）")
                return Result(Outcome.FAILED, f"SMTP 登录失败（{_reply(e.code, e.message)}），"
                                              f"请检查用户名和环境变量 {self._cfg.password_env} 中的密码")
            except aiosmtplib.SMTPResponseException as e:
                if e.code == 421:
                    self._drop(slot)
                    if reused and attempt == 1:
                        continue
                return _by_code(e.code, f"（{_reply(e.code, e.message)}）")
            except aiosmtplib.SMTPNotSupported as e:
                return Result(Outcome.FAILED, f"邮件服务器 {self._where()} 不支持所需功能：{e}")
            except (aiosmtplib.SMTPTimeoutError, TimeoutError) as e:
                self._drop(slot)
                return Result(Outcome.RETRY, f"邮件服务器 {self._where()} 超时：{clean(str(e)) or '无应答'}")
            except (aiosmtplib.SMTPException, OSError) as e:
                self._drop(slot)
                if reused and attempt == 1:
                    continue
                hint = "；服务器证书未通过校验，自签名证书可用 smtp.tls_ca_file 指定" if "CERTIFICATE_VERIFY_FAILED" in str(e) else ""
                return Result(Outcome.RETRY, f"无法连接邮件服务器 {self._where()}：{clean(str(e)) or type(e).__name__}{hint}")
            except ValueError as e:
                self._drop(slot)
                return Result(Outcome.FAILED, f"邮件地址 {', '.join(envelope.mailboxes)} 无法发送：{e}")
            if refused:
                detail = "；".join(f"{a}（{_reply(r.code, r.message)}）" for a, r in refused.items())
                return Result(Outcome.DELIVERED, f"部分收件人被拒绝（已投递给其余收件人）：{detail}")
            return DELIVERED
        return Result(Outcome.RETRY, f"邮件服务器 {self._where()} 反复断开连接")

    async def close(self) -> None:
        import aiosmtplib

        if self._slots_loop is not None and self._slots_loop is not asyncio.get_running_loop():
            self._all, self._slots, self._slots_loop = [_Slot() for _ in self._all], None, None
            return  # connections of a loop that has ended: nothing to say QUIT on
        for slot in self._all:
            client, slot.client = slot.client, None
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()


SPEC = ChannelSpec(
    name="email",
    label=Label(short="邮件", full="电子邮件"),
    make=EmailChannel,
    contact=ADDRESSES,
    section="smtp",
    section_model=Smtp,
    settle=settle,
    show=lambda addresses: f"<{', '.join(addresses)}>" if addresses else "",
    destination=lambda smtp: f"邮件服务器 {smtp.host}:{smtp.port}",
    bodies=frozenset({"text", "html"}),
)
