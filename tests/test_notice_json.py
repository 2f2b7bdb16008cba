"""A notice crosses the outbox, the ``notices`` topic and ``--notices`` files as its §4 JSON and
comes back as a Notice: Notice.from_json inverts to_json, and a record on ``notices`` that is
not a notice is refused with the reason ``shian notify`` writes to ``rejects``."""
from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from shian.rules.notice import Notice
from shian.streams.notify import read_notice

TZ = ZoneInfo("Asia/Shanghai")
NOTICE = Notice(id="0123456789abcdef", rule="sample.unqualified", severity="warning", level="town",
                township="红河镇", recipients=("hh-agri", "hh-fso"), title="抽检不合格",
                at=datetime(2026, 4, 3, 10, 0, tzinfo=TZ), due=datetime(2026, 4, 18, 10, 0, tzinfo=TZ),
                event_ids=("S-1",), key="sample.unqualified|红河镇|S-1", facts={"entity": "某超市", "rate": 0.9})
WHOLE = NOTICE.to_json()


def test_from_json_gives_back_the_notice_and_the_same_json() -> None:
    """Reading a notice's JSON back (outbox, Kafka) loses nothing, offsets included."""
    again = Notice.from_json(json.loads(json.dumps(WHOLE, ensure_ascii=False)), TZ)
    assert again == NOTICE and again.to_json() == WHOLE


def test_a_notice_record_is_read_into_a_notice() -> None:
    """read_notice turns a §4 record into the Notice the dispatcher takes."""
    assert read_notice(json.dumps(WHOLE).encode(), TZ) == NOTICE


@pytest.mark.parametrize("value, reason", [
    (b"{not json", "不是有效的 JSON"),
    (None, "不是有效的 JSON"),
    (b"[1, 2]", "不是 JSON 对象"),
    (json.dumps({"id": "x"}).encode(), "缺少字段：rule, severity, level, township, recipients, at, key"),
    (json.dumps({**WHOLE, "recipients": "hh-fso"}).encode(), "recipients 应为部门 id 列表"),
    (json.dumps({**WHOLE, "recipients": ["hh-fso", 3]}).encode(), "recipients 应为部门 id 列表"),
    (json.dumps({**WHOLE, "at": "四月三日"}).encode(), "字段无法读取"),
], ids=["not JSON", "no value", "not an object", "fields missing", "recipients a string",
        "recipients not all ids", "time unreadable"])
def test_a_record_that_is_not_a_notice_is_refused_with_its_reason(value: bytes | None, reason: str) -> None:
    """Each way a record on notices can fail is named in Chinese for the rejects topic."""
    got = read_notice(value, TZ)
    assert isinstance(got, str) and got.startswith(reason), got


@pytest.mark.parametrize("changes", [
    {},
    {"due": None, "recipients": (), "event_ids": ()},
    {"title": 'a "quoted"\ttitle\n\u2028 \x00 ✓', "facts": {"nested": {"list": [1, 2.5, None, True, "中"]}, "n": -0.0}},
    {"facts": {3: "int key", None: "null key", 1.5: "float key", "inf": float("inf"), "nan": float("nan")}},
    {"at": datetime(2026, 4, 3, 10, 0, 0, 999_999, tzinfo=ZoneInfo("America/St_Johns")),
     "due": datetime(1900, 1, 1, tzinfo=TZ)},  # an offset of minutes; a local mean time (+08:05:43)
    {"at": datetime(999, 1, 1, tzinfo=TZ), "due": datetime(2026, 1, 1)},  # a three-digit year; no zone
], ids=["all fields", "empty lists", "escapes", "keys that are not text", "offsets", "odd times"])
def test_the_notice_line_is_json_dumps_of_to_json(changes: dict) -> None:
    """replay --out writes each notice as to_json_line(): byte for byte json.dumps(to_json(), ensure_ascii=False)."""
    n = Notice(**{**{f: getattr(NOTICE, f) for f in Notice.__slots__}, **changes})
    assert n.to_json_line() == json.dumps(n.to_json(), ensure_ascii=False)


def test_a_notice_line_that_cannot_be_json_fails_as_json_dumps_does() -> None:
    """A fact that is not JSON raises the standard library's error, not a line."""
    bad = Notice(**{**{f: getattr(NOTICE, f) for f in Notice.__slots__}, "facts": {"when": datetime(2026, 1, 1)}})
    with pytest.raises(TypeError, match="not JSON serializable"):
        bad.to_json_line()
