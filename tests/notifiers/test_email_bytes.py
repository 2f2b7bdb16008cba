"""The e-mail channel's own serialiser writes, for every message, the bytes the standard
library writes (build_message + as_bytes), boundary and Date fixed, but for the Subject, which
it encodes itself: the same text once decoded, in lines a server takes; the file outbox and
the SMTP channel therefore send the same message."""
from __future__ import annotations

import base64
import email
import email.policy
import re
import time
from email.utils import formatdate

import pytest

from shian.notifiers.channels.email import _base64_body, _date, as_bytes, build_message, header, message_bytes
from shian.notifiers.message import Message

BOUNDARY = "===============0123456789012345678=="
DATE = "Wed, 02 Dec 2026 13:18:04 +0800"
LONG_IDS = ",".join(f"n{i:015x}" for i in range(12))

# (sender, addresses, subject, text, html, headers)
CASES = [
    ("西平县食安办 <fso@xp.example>", ["zhang@hh.example", "李四 <li@hh.example>"], "【预警】红河镇中心学校食堂 复查超期",
     "红河镇食安办：\n　　现将有关情况通知如下。\n", "<p>红河镇食安办：</p>\n", (("X-Shian-Ref", "n1"),)),
    ("shian@localhost", [], "plain ascii subject", "", "", ()),
    ("a <a@b.example>", ["x@y.example"], "【督办】" * 40, "第一行\r\n第二行\r第三行\n\n", "<p>&amp;</p>", ()),
    ("a@b.example", ["x@y.example"], "=?utf-8?q?=0D=0ABcc:evil@x?=", "x", "y", (("X-Shian-Notice-Ids", LONG_IDS),)),
    ("a@b.example", ["x@y.example"], "line\r\nBcc: evil@x.example", "x", "y",
     (("X-Shian-Rule", "inspections.overdue"), ("Bcc", "evil@x.example"), ("X-Bad Name", "v"),
      ("X-Long", "word " * 30), ("X-Cn", "红河镇\r\n食安办"))),
    ("a@b.example", [" ", "x@y.example", "\r\n"], "a  b   c", "行\u2028行", "<b>粗</b>" * 300, ()),
    ("a@b.example", ["x@y.example"], "x" * 90, "t" * 1000, "h", (("X-Shian-Ref", "r" * 66), ("X-Shian-Ref2", "r" * 67))),
]


@pytest.mark.parametrize("sender,addresses,subject,text,html,headers", CASES)
def test_same_bytes_as_the_standard_library(sender, addresses, subject, text, html, headers) -> None:
    """Headers, folding, encoded words and base64 bodies equal the email package's output."""
    m = Message(ref="n1|x", notice_ids=("n1",), dept="d1", severity="info", subject=subject, text=text,
                html=html, markdown="", headers=headers)
    reference = build_message(sender, "d1", addresses, m)
    reference.replace_header("Date", DATE)
    reference.set_boundary(BOUNDARY)
    ours = message_bytes(sender, "d1", addresses, m, date=DATE, boundary=BOUNDARY)
    theirs = as_bytes(reference)
    assert without_subject(ours) == without_subject(theirs)
    assert parsed(ours)["Subject"] == header(subject)
    assert all(len(line) <= 78 and line.isascii() for line in ours.split(b"\r\n"))


_SUBJECT = re.compile(rb"^Subject:.*?\r\n(?! )", re.MULTILINE | re.DOTALL)


def without_subject(raw: bytes) -> bytes:
    """The message with its Subject header (and the header's continuation lines) taken out."""
    out, n = _SUBJECT.subn(b"", raw, count=1)
    assert n == 1
    return out


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


@pytest.mark.parametrize("subject", [
    "【预警】红河镇中心学校食堂 复查超期", "a" + "食" * 100, "x 食 " * 40, "😀" * 30 + "é" * 20,
    "【督办】ABC  def　全角空格", "plain ascii subject with spaces " * 4, "", "=?utf-8?b?SGk=?= 你好",
])
def test_subject_decodes_to_its_text_in_short_lines(subject) -> None:
    """Our own encoded words: a reader gets back the subject exactly as sent (spaces and
    characters of four bytes too; the standard library's folding loses the space before an
    encoded word in some), no line over 78 characters, nothing but ASCII on the wire."""
    m = Message(ref="n3", notice_ids=("n3",), dept="d1", severity="info", subject=subject, text="t",
                html="h", markdown="")
    raw = message_bytes("a@b.example", "d1", ["x@y.example"], m, date=DATE, boundary=BOUNDARY)
    assert parsed(raw)["Subject"] == header(subject)
    assert all(len(line) <= 78 and line.isascii() for line in raw.split(b"\r\n"))


def test_repeated_values_come_out_the_same() -> None:
    """A header folded once and reused (the cache) is the same bytes the next time."""
    m = Message(ref="n2", notice_ids=("n2",), dept="d1", severity="info", subject="【预警】同一主题", text="t",
                html="h", markdown="")
    first = message_bytes("西平县 <a@b.example>", "d1", ["x@y.example"], m, date=DATE, boundary=BOUNDARY)
    assert message_bytes("西平县 <a@b.example>", "d1", ["x@y.example"], m, date=DATE, boundary=BOUNDARY) == first


@pytest.mark.parametrize("text", ["", "a", "a\n", "a\n\n", "a\r\nb", "a\rb\r", "\n", "食" * 100, "x" * 57, "x" * 56,
                                  "x\u2028y\x85z", "行\r\n" * 40])
def test_a_body_is_encoded_as_base64_encodebytes_encodes_its_lines(text) -> None:
    """One encoding cut into lines of 76 gives the lines of encodebytes (LF line ends, CRLF out)."""
    reference = base64.encodebytes(b"\n".join(text.encode("utf-8").splitlines()) + b"\n").replace(b"\n", b"\r\n")
    assert _base64_body(text) == reference


def test_the_date_is_the_standard_librarys_for_this_second() -> None:
    """The Date made once a second is formatdate's for the current second."""
    before = formatdate(int(time.time()), localtime=True)
    made = _date()
    assert made in (before, formatdate(int(time.time()), localtime=True))
