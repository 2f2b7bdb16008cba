"""The email channel against a real SMTP server (aiosmtpd) on 127.0.0.1."""
from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import time

import pytest
from aiosmtpd.smtp import AuthResult

from channel_support import SmtpRecorder, free_port, make_message, make_settings, self_signed_cert, server_tls, smtp_server
from shian.notifiers.channels.email import EmailChannel
from shian.notifiers.channels.exchange import Exchange, payload
from shian.notifiers.message import Outcome
from shian.rules.config import Department

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

ADDRESSES = ["zhang@hh.example", "li@hh.example"]
DEPT = Department(name="红河镇食安办", contacts={"email": ADDRESSES})
SENDER = "西平县食安办 <fso@xp.example>"


def channel(port: int, **smtp) -> EmailChannel:
    return EmailChannel(make_settings(smtp={"host": "127.0.0.1", "port": port, "security": "none",
                                            "from": SENDER, "timeout_seconds": 5.0, **smtp}))


def send_all(ch: EmailChannel, *sends, pause: float = 0.0):
    async def go():
        out = []
        try:
            for dept_id, dept, msg in sends:
                out.append(await ch.send(dept_id, dept, msg))
                await asyncio.sleep(pause)
        finally:
            await ch.close()
        return out
    return asyncio.run(go())


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


def test_chinese_subject_sender_parts_and_shian_headers_arrive_decoded():
    rec = SmtpRecorder()
    with smtp_server(rec) as srv:
        [result] = send_all(channel(srv.port), ("hh-fso", DEPT, make_message()))
    assert result.outcome is Outcome.DELIVERED, result
    [(_, mail_from, rcpt, raw)] = rec.messages
    assert mail_from == "fso@xp.example" and rcpt == ADDRESSES
    assert all(b < 128 for b in raw), "7-bit clean so a server without SMTPUTF8/8BITMIME accepts it"
    m = parsed(raw)
    assert m["Subject"] == "【食安预警】红河镇 蔬菜农残抽检不合格"
    assert m["From"].addresses[0].display_name == "西平县食安办"
    assert m["From"].addresses[0].addr_spec == "fso@xp.example"
    assert [a.addr_spec for a in m["To"].addresses] == ADDRESSES
    assert m.get_content_type() == "multipart/alternative"
    assert m.get_body(("plain",)).get_content().startswith("红河镇新寨村送检的青菜农残超标。")
    assert "<b>青菜</b>" in m.get_body(("html",)).get_content()
    assert m["X-Shian-Ref"] == "n-20260501-0007" and m["X-Shian-Notice-Ids"] == "N-0007"
    assert m["Message-ID"] == "<n-20260501-0007.hh-fso.email@shian>"


def test_message_id_is_stable_for_a_redelivery_and_differs_per_department():
    rec = SmtpRecorder()
    other = Department(name="板桥镇食安办", contacts={"email": ["wang@bq.example"]})
    msg = make_message()
    with smtp_server(rec) as srv:
        results = send_all(channel(srv.port), ("hh-fso", DEPT, msg), ("hh-fso", DEPT, msg), ("bq-fso", other, msg))
    assert all(r.outcome is Outcome.DELIVERED for r in results)
    ids = [parsed(raw)["Message-ID"] for *_, raw in rec.messages]
    assert ids[0] == ids[1] != ids[2]


def test_cr_lf_in_subject_or_headers_cannot_inject_a_header_or_recipient():
    rec = SmtpRecorder()
    msg = make_message(subject="抽检不合格\r\nBcc: evil@attacker.example\nX-Injected: 1",
                       headers=(("X-Shian-Ref", "r1\r\nBcc: evil2@attacker.example"),
                                ("Bcc", "evil3@attacker.example"), ("X-Bad\nName", "v")))
    with smtp_server(rec) as srv:
        [result] = send_all(channel(srv.port), ("hh-fso", DEPT, msg))
    assert result.outcome is Outcome.DELIVERED, result
    [(_, _, rcpt, raw)] = rec.messages
    m = parsed(raw)
    assert rcpt == ADDRESSES
    assert m["Bcc"] is None and m["X-Injected"] is None
    assert "\n" not in m["Subject"] and m["Subject"].startswith("抽检不合格 Bcc:")
    assert m.get_all("X-Shian-Ref") == ["r1 Bcc: evil2@attacker.example"]


@pytest.mark.parametrize("rcpt_replies, data_reply, outcome, error_has", [
    ({"zhang@": "451 4.3.0 try later", "li@": "451 4.3.0 try later"}, None, Outcome.RETRY, "451"),
    ({"zhang@": "550 5.1.1 no such user", "li@": "550 5.1.1 no such user"}, None, Outcome.FAILED, "550"),
    ({"zhang@": "550 5.1.1 no such user", "li@": "452 4.2.2 mailbox full"}, None, Outcome.RETRY, "452"),
    ({"zhang@": "550 5.1.1 no such user"}, None, Outcome.DELIVERED, "zhang@hh.example"),
    ({}, "554 5.7.1 rejected as spam", Outcome.FAILED, "554"),
    ({}, "452 4.3.1 insufficient storage", Outcome.RETRY, "452"),
    ({}, "553 5.1.3 bad address syntax", Outcome.FAILED, "553"),
])
def test_smtp_replies_map_to_retry_failed_or_partly_delivered(rcpt_replies, data_reply, outcome, error_has):
    rec = SmtpRecorder()
    rec.rcpt_replies, rec.data_reply = rcpt_replies, data_reply
    with smtp_server(rec) as srv:
        [result] = send_all(channel(srv.port), ("hh-fso", DEPT, make_message()))
    assert result.outcome is outcome, result
    assert error_has in result.error
    if outcome is Outcome.DELIVERED:
        assert [r for *_, r, _ in rec.messages] == [["li@hh.example"]]


def test_server_down_is_retry():
    [result] = send_all(channel(free_port()), ("hh-fso", DEPT, make_message()))
    assert result.outcome is Outcome.RETRY and "127.0.0.1" in result.error


def test_department_without_addresses_is_failed():
    [result] = send_all(channel(free_port()), ("x", Department(name="无邮箱"), make_message()))
    assert result.outcome is Outcome.FAILED


def test_unsendable_address_is_failed_and_the_next_message_still_goes():
    rec = SmtpRecorder()
    with smtp_server(rec) as srv:
        bad, ok = send_all(channel(srv.port), ("x", Department(name="x", contacts={"email": ["张三@hh.example"]}), make_message()),
                           ("hh-fso", DEPT, make_message()))
    assert bad.outcome is Outcome.FAILED and "张三@hh.example" in bad.error
    assert ok.outcome is Outcome.DELIVERED and len(rec.messages) == 1


def test_many_sends_share_one_connection():
    rec = SmtpRecorder()
    with smtp_server(rec) as srv:
        ch = channel(srv.port)
        msgs = [("hh-fso", DEPT, make_message(ref=f"n-{i}")) for i in range(5)]
        results = send_all(ch, *msgs)
    assert all(r.outcome is Outcome.DELIVERED for r in results)
    assert len(rec.messages) == 5 and rec.connections == 1 and ch.connections == 1


@pytest.mark.parametrize("connections,at_once", [(1, 1), (3, 3), (3, 2), (8, 12)])
def test_a_pool_of_connections_carries_concurrent_sends_each_once(connections, at_once):
    """``smtp.connections: k``: sends made side by side use at most k connections, each opened
    once and reused, and every message arrives once (the SIZE given matches what was sent)."""
    rec = SmtpRecorder()
    with smtp_server(rec) as srv:
        ch = channel(srv.port, connections=connections)

        async def go():
            try:
                out = []
                for r in range(3):
                    out += await asyncio.gather(*(ch.send("hh-fso", DEPT, make_message(ref=f"n-{r}-{i}"))
                                                  for i in range(at_once)))
                return out
            finally:
                await ch.close()
        results = asyncio.run(go())
    assert ch.concurrency == connections
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * (3 * at_once)
    ids = [parsed(raw)["Message-ID"] for *_, raw in rec.messages]
    assert len(ids) == len(set(ids)) == 3 * at_once
    assert ch.connections == rec.connections == min(connections, at_once)


def test_a_pool_used_from_one_event_loop_then_another_still_sends():
    """Each asyncio.run of its own (as a dispatcher stepped from synchronous code): the pool of
    two connections, all busy in the first, still hands out connections in the second."""
    rec = SmtpRecorder()
    with smtp_server(rec) as srv:
        ch = channel(srv.port, connections=2)

        async def burst(tag):
            return await asyncio.gather(*(ch.send("hh-fso", DEPT, make_message(ref=f"{tag}-{i}")) for i in range(3)))
        first, second = asyncio.run(burst("a")), asyncio.run(burst("b"))
        asyncio.run(ch.close())
    assert [r.outcome for r in first + second] == [Outcome.DELIVERED] * 6, first + second
    assert len(rec.messages) == 6


class Stalling(SmtpRecorder):
    """Answers the greeting and EHLO, then never answers the n-th MAIL (the others as usual)."""

    def __init__(self, stall_on: int) -> None:
        super().__init__()
        self.stall_on, self.mails = stall_on, 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mails += 1
        if self.mails == self.stall_on:
            await asyncio.sleep(30)
        return await super().handle_MAIL(server, session, envelope, address, mail_options)


def test_a_server_that_stops_answering_is_retry_after_the_timeout_and_the_next_message_reconnects():
    """timeout_seconds bounds a message's whole exchange: a reply that never comes is RETRY
    (超时) within about that time, the connection is dropped, and the next message goes on a
    new one."""
    rec = Stalling(stall_on=2)
    with smtp_server(rec) as srv:
        ch = channel(srv.port, timeout_seconds=0.5)
        t0 = time.monotonic()
        results = send_all(ch, *[("hh-fso", DEPT, make_message(ref=f"n-{i}")) for i in range(3)])
        took = time.monotonic() - t0
    assert [r.outcome for r in results] == [Outcome.DELIVERED, Outcome.RETRY, Outcome.DELIVERED], results
    assert "超时" in results[1].error and took < 5
    assert len(rec.messages) == 2 and ch.connections == 2


@pytest.mark.parametrize("how", ["closed after each message", "421 on the next MAIL"])
def test_reconnects_when_the_server_closed_the_connection(how):
    rec = SmtpRecorder()
    if how == "closed after each message":
        rec.drop_after_data = True
    else:
        rec.close_on_second_mail = True
    with smtp_server(rec) as srv:
        ch = channel(srv.port)
        results = send_all(ch, *[("hh-fso", DEPT, make_message(ref=f"n-{i}")) for i in range(3)], pause=0.1)
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 3, results
    assert len(rec.messages) == 3 and rec.connections == 3 and ch.connections == 3


def test_starttls_with_the_servers_self_signed_cert_trusted(cert):
    rec = SmtpRecorder()
    with smtp_server(rec, tls_context=server_tls(*cert), require_starttls=True) as srv:
        [ok] = send_all(channel(srv.port, security="starttls", tls_ca_file=str(cert[0])),
                        ("hh-fso", DEPT, make_message()))
        [untrusted] = send_all(channel(srv.port, security="starttls"), ("hh-fso", DEPT, make_message()))
    assert ok.outcome is Outcome.DELIVERED, ok
    assert untrusted.outcome is Outcome.RETRY and "certificate" in untrusted.error.lower()
    assert len(rec.messages) == 1


def test_implicit_tls(cert):
    rec = SmtpRecorder()
    with smtp_server(rec, ssl_context=server_tls(*cert)) as srv:
        [result] = send_all(channel(srv.port, security="tls", tls_ca_file=str(cert[0])),
                            ("hh-fso", DEPT, make_message()))
    assert result.outcome is Outcome.DELIVERED, result
    assert len(rec.messages) == 1


def test_login_with_the_password_from_the_environment_and_wrong_password_failed_without_leaking(monkeypatch):
    def authenticator(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"fso", b"s3cret-Pw"), handled=False)

    rec = SmtpRecorder()
    with smtp_server(rec, authenticator=authenticator, auth_required=True, auth_require_tls=False) as srv:
        monkeypatch.setenv("TEST_SMTP_PW", "s3cret-Pw")
        [ok] = send_all(channel(srv.port, username="fso", password_env="TEST_SMTP_PW"),
                        ("hh-fso", DEPT, make_message()))
        monkeypatch.setenv("TEST_SMTP_PW", "wrong-Pw-123")
        [bad] = send_all(channel(srv.port, username="fso", password_env="TEST_SMTP_PW"),
                         ("hh-fso", DEPT, make_message()))
    assert ok.outcome is Outcome.DELIVERED, ok
    assert bad.outcome is Outcome.FAILED and "535" in bad.error
    for leak in ("wrong-Pw-123", base64.b64encode(b"wrong-Pw-123").decode(),
                 base64.b64encode(b"\0fso\0wrong-Pw-123").decode()):
        assert leak not in bad.error
    assert len(rec.messages) == 1


@pytest.mark.parametrize("raw", [b"a\r\nb\r\n", b"a\nb", b"a\rb\r\n", b".lead\r\nx\r\n..two\r\n", b"x\n.y\r.z", b"", b"\r\n.\r\n"])
def test_the_data_is_sent_as_aiosmtplib_sends_it(raw):
    """CRLF line ends, leading periods doubled, the closing line: the bytes aiosmtplib's DATA writes."""
    from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

    assert payload(raw) == PERIOD_REGEX.sub(b"..", normalize_message_line_endings(raw)) + b".\r\n"


def test_replies_are_read_whole_however_they_arrive():
    """A reply split across reads, or of several lines, is one reply (code, lines joined by LF)."""
    ex = Exchange.__new__(Exchange)
    ex._buffer = bytearray(b"250-first\r\n250-")
    assert ex._reply() is None
    ex._buffer += b"second\r\n250 third\r\n354 go"
    assert ex._reply() == (250, "first\nsecond\nthird") and bytes(ex._buffer) == b"354 go"


@pytest.mark.parametrize("raw", [b"250 OK\r\n", b"250 \t OK \r\n", b"250\r\n", b"354 go\n", b" 25 odd\r\n",
                                 b"25x bad\r\n", b"250 two\r\n250 replies\r\n", b"550 \xe6\x8b\x92\xff\r\n"])
def test_a_single_line_reply_reads_as_the_general_reading_reads_it(raw):
    """The one-line fast path gives the code, text, rest of the buffer and errors the line-by-line reading gives."""
    def read(data: bytes) -> tuple[object, bytes, list[str]]:
        ex = Exchange.__new__(Exchange)
        failed: list[BaseException] = []
        ex._fail = failed.append
        ex._buffer = bytearray(data)
        return ex._reply(), bytes(ex._buffer), [str(e) for e in failed]

    fast = read(raw)
    general = read(raw + b"X")  # a byte after the reply: the fast path does not apply
    assert fast[0] == general[0] and fast[1] + b"X" == general[1] and fast[2] == general[2]


def test_a_message_to_several_mailboxes_goes_in_one_transaction_and_the_connection_is_reused():
    """MAIL, a RCPT per mailbox, DATA: each message arrives once with all its recipients, on one connection."""
    rec = SmtpRecorder()
    with smtp_server(rec) as srv:
        ch = channel(srv.port)
        results = send_all(ch, *[("hh-fso", DEPT, make_message(ref=f"n-{i}")) for i in range(5)])
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 5
    assert [rcpt for *_, rcpt, _ in rec.messages] == [ADDRESSES] * 5 and rec.connections == 1 == ch.connections
