"""Messages longer than a chat robot takes go as numbered parts (notifiers.channels.parts), split
between notices, never inside a character — checked on the splitter itself and on every message
template sent through both robots, in both message types, to the local robot server, which
refuses what the real ones refuse (WeCom: content over 4,096 / 2,048 bytes; DingTalk: a body
over 20,000 bytes)."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from datetime import date, datetime
from typing import Any

import pytest

from channel_support import DINGTALK_BODY, WECOM_LIMITS, RobotServer, make_message, make_settings
from conftest import TZ
from notice_month import april, first_of_each_rule
from shian.notifiers.channels.dingtalk import DingtalkChannel
from shian.notifiers.channels.parts import CONTINUED, MAX_PARTS, OMITTED, split, utf8
from shian.notifiers.channels.wecom import WecomChannel
from shian.notifiers.message import Message, Outcome
from shian.notifiers.render import Renderer
from shian.notifiers.settings import parse as parse_settings
from shian.rules.config import Department
from shian.rules.notice import Notice

PART = re.compile(r"（(\d+)/(\d+)(?:，接上条，编号 [^）]+)?）")


def _unnumbered(parts: list[str]) -> str:
    """The parts' text without what splitting added: part 1's numbering (or the heading made up
    for a text whose first line is too long), the heading each later part repeats, the 未完 lines."""
    out = []
    for k, p in enumerate(parts, 1):
        first, _, rest = p.partition("\n")
        made_up = first.startswith("通知编号 ") and rest.startswith("\n")
        out.append((PART.sub("", first) if k == 1 and not made_up else "") + "\n" + rest)
    return re.sub(r"……未完，接下条（\d+/\d+）|" + re.escape(CONTINUED), "", "".join(out))


# -- the splitter -------------------------------------------------------------------------------

def _text(n: int, size: int = 300) -> tuple[str, tuple[int, ...]]:
    """A heading, then ``n`` notices of about ``size`` bytes each; the breaks where each begins."""
    head = "### 预警通知：样品抽检不合格\n\n"
    blocks = [f"**{i}. 第{i}条**\n\n" + "红河镇新寨村青菜抽检不合格。" * (size // 42) + f"\n\n签收：{i}\n\n" for i in range(1, n + 1)]
    breaks, at = [], len(head)
    for b in blocks:
        breaks.append(at)
        at += len(b)
    return head + "".join(blocks), tuple(breaks)


@pytest.mark.parametrize("count, size, limit", [(30, 500, 4096), (30, 500, 2048), (5, 3000, 2048), (60, 500, 20000)])
def test_parts_stay_within_the_limit_and_keep_each_notice_whole(count: int, size: int, limit: int) -> None:
    """Each part ≤ limit, numbered k/n on its first line, and every notice that fits a part is in one."""
    text, breaks = _text(count, size)
    parts = split(text, breaks, limit, ref="g1")
    assert len(parts) > 1 and all(utf8(p) <= limit for p in parts)
    n = len(parts)
    for k, p in enumerate(parts, 1):
        assert PART.findall(p.splitlines()[0]) == [(str(k), str(n))]
        assert ("未完，接下条" in p) is (k < n)
    for i in range(1, count + 1):
        holding = [p for p in parts if f"**{i}. 第{i}条**" in p]
        assert len(holding) == 1
        if utf8(f"**{i}. 第{i}条**") + size < limit // 2:
            assert f"签收：{i}\n" in holding[0] + "\n"


@pytest.mark.parametrize("text, limit", [("食" * 3000, 4096), ("a" * 9000, 4096), ("食安\n" * 600, 1000), ("短", 100),
                                         ("🍜" * 2000, 2048)])
def test_parts_never_split_a_character_nor_lose_one(text: str, limit: int) -> None:
    """Whatever the text (one huge line, many short ones, 4-byte characters): parts within the
    limit, valid UTF-8, and the text's characters all there, in order."""
    parts = split(text, (), limit, ref="n-1")
    assert all(utf8(p) <= limit for p in parts)
    if len(parts) == 1:
        assert parts == [text]
        return
    assert re.sub(r"\s", "", _unnumbered(parts)) == re.sub(r"\s", "", text)


def test_at_most_max_parts_the_rest_left_out_saying_so() -> None:
    """A message that would need more than MAX_PARTS parts: MAX_PARTS go, the last says the rest is left out."""
    text, breaks = _text(400, 500)
    parts = split(text, breaks, 2048, ref="g1")
    assert len(parts) == MAX_PARTS and parts[-1].endswith(OMITTED) and all(utf8(p) <= 2048 for p in parts)


# -- every template through both robots ---------------------------------------------------------

@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Notice]]:
    return april(tmp_path_factory.mktemp("parts"))


def _long(n: Notice, i: int = 0) -> Notice:
    """The notice with every text fact 1,500 characters long (one line longer than any limit)."""
    facts = {k: ("食" * 1500 if isinstance(v, str) and k not in ("notice_id", "notice_rule") else v)
             for k, v in n.facts.items()}
    return dataclasses.replace(n, facts=facts)


def _messages(month: tuple[Any, list[Notice]]) -> list[tuple[str, Message]]:
    """Each template: every rule's notice, as written and with long facts; a group of 30 notices;
    a digest of 60; a fire drill."""
    config, notices = month
    config = dataclasses.replace(config, service={"public_url": "https://shian.xiping.gov.cn"})
    r = Renderer(parse_settings(config, env={}))
    by_rule = first_of_each_rule(notices)
    out = [(rule, r.notice(n, n.recipients[0])) for rule, n in sorted(by_rule.items())]
    out += [(f"{rule} (long)", r.notice(_long(n), n.recipients[0])) for rule, n in sorted(by_rule.items())]
    base = by_rule["sample.unqualified"]
    many = [dataclasses.replace(base, id=f"{i:016x}", facts={**base.facts, "sample_id": f"XP-{i}"}) for i in range(30)]
    out.append(("group of 30", r.group(many, "hh-agri")))
    days = [dataclasses.replace(base, id=f"d{i:015x}") for i in range(60)]
    out.append(("digest of 60", r.digest("hh-agri", date(2026, 4, 3), days, days[:20])))
    out.append(("drill", r.drill("hh-fso", "wecom", datetime(2026, 5, 6, 9, 0, tzinfo=TZ))))
    return out


ROBOTS = [("wecom", "markdown"), ("wecom", "text"), ("dingtalk", "markdown"), ("dingtalk", "text")]


def _received(server: RobotServer, robot: str, kind: str) -> list[str]:
    """What the server was sent, after checking each request against the robot's limit."""
    out = []
    for (path, _, body), raw in zip(server.requests, server.bodies):
        assert path == f"/{robot}" and body["msgtype"] == kind
        content = body[kind]["content"] if robot == "wecom" or kind == "text" else body["markdown"]["text"]
        if robot == "wecom":
            assert len(content.encode()) <= WECOM_LIMITS[kind]
        else:
            assert len(raw) <= DINGTALK_BODY
        out.append(content)
    return out


@pytest.mark.parametrize("robot, kind", ROBOTS)
def test_every_template_reaches_both_robots_within_their_limits(robot: str, kind: str, month) -> None:
    """Every message of every template is accepted by the robot server (errcode 0), each request
    within the robot's limit, a split message numbered 1/n … n/n with its reference in the last part."""
    messages = _messages(month)

    async def go() -> list[tuple[str, Message, Any, list[str]]]:
        out = []
        async with RobotServer() as server:
            channel = (WecomChannel if robot == "wecom" else DingtalkChannel)(make_settings(robot_per_minute=1000))
            dept = Department(name="红河镇食安办", contacts={robot: {"webhook": server.url(robot, key="k"), "msgtype": kind}})
            try:
                for what, m in messages:
                    server.requests.clear()
                    server.bodies.clear()
                    result = await channel.send("hh-fso", dept, m)
                    out.append((what, m, result, _received(server, robot, kind)))
            finally:
                await channel.close()
        return out

    split_any = False
    for what, m, result, contents in asyncio.run(go()):
        assert result.outcome is Outcome.DELIVERED, (what, result)
        if len(contents) > 1:
            split_any = True
            n = len(contents)
            assert [PART.findall(c.splitlines()[0])[-1] for c in contents] == [(str(k), str(n)) for k in range(1, n + 1)], what
            assert m.ref in contents[-1], what
        else:
            assert contents == [(m.markdown if kind == "markdown" else m.text).rstrip("\n")], what
    assert split_any


def test_a_group_of_30_on_wecom_goes_as_parts_of_whole_notices(month) -> None:
    """The 30-notice group (22 KB of markdown): every notice's heading, lead, facts, link and ack
    command in one and the same part."""
    [(_, group)] = [(w, m) for w, m in _messages(month) if w == "group of 30"]
    parts = WecomChannel(make_settings()).parts(
        WecomChannel.spec.contact.validate_python({"webhook": "http://127.0.0.1/wecom"}), group)
    assert len(group.markdown.encode()) > 4 * 4096 and 5 <= len(parts) <= 8
    for i in range(30):
        nid = f"{i:016x}"
        holding = [p.content for p in parts if f"通知编号 {nid}" in p.content]
        assert len(holding) == 1 and f"notices/{nid})" in holding[0] and f"shian ack {nid} --by hh-agri" in holding[0]


def _three_parts() -> Message:
    text, breaks = _text(9, 1200)
    return make_message(markdown=text, markdown_breaks=breaks)


def test_a_part_refused_for_now_is_resumed_not_repeated() -> None:
    """Part 2 of 3 answered HTTP 500: RETRY naming the part; the next attempt sends parts 2 and 3
    only, so the group sees each part once."""
    async def go():
        async with RobotServer() as server:
            channel = WecomChannel(make_settings())
            dept = Department(name="红河镇食安办", contacts={"wecom": {"webhook": server.url("wecom", key="k")}})
            server.replies = [(200, {"errcode": 0, "errmsg": "ok"}), (500, "busy")]
            try:
                first = await channel.send("hh-fso", dept, _three_parts())
                second = await channel.send("hh-fso", dept, _three_parts())
            finally:
                await channel.close()
            return first, second, [PART.findall(b["markdown"]["content"].splitlines()[0])[0] for _, _, b in server.requests]
    first, second, sent = asyncio.run(go())
    assert first.outcome is Outcome.RETRY and "第 2/3 部分" in first.error
    assert second.outcome is Outcome.DELIVERED
    assert sent == [("1", "3"), ("2", "3"), ("2", "3"), ("3", "3")]


def test_parts_take_their_places_in_the_rate_limit() -> None:
    """robot_per_minute 2 and a message of 3 parts: two go, the third waits for a free slot
    (RETRY with retry_after) and goes on the next attempt."""
    clock = [1000.0]

    async def go():
        async with RobotServer() as server:
            channel = WecomChannel(make_settings(robot_per_minute=2), now=lambda: clock[0])
            dept = Department(name="红河镇食安办", contacts={"wecom": {"webhook": server.url("wecom", key="k")}})
            try:
                first = await channel.send("hh-fso", dept, _three_parts())
                clock[0] += 61
                second = await channel.send("hh-fso", dept, _three_parts())
            finally:
                await channel.close()
            return first, second, len(server.requests)
    first, second, requests = asyncio.run(go())
    assert first.outcome is Outcome.RETRY and first.retry_after is not None and 0 < first.retry_after <= 60
    assert second.outcome is Outcome.DELIVERED and requests == 3


def test_dingtalk_body_is_utf8_json_and_its_title_numbers_the_part() -> None:
    """The body goes as UTF-8 JSON (the 20,000 bytes counted as sent); each part's title carries k/n."""
    message = _three_parts()
    channel = DingtalkChannel(make_settings())
    robot = DingtalkChannel.spec.contact.validate_python({"webhook": "http://127.0.0.1/dingtalk"})
    limit, size = channel.budget(robot, message)
    parts = channel.parts(robot, dataclasses.replace(message, markdown=message.markdown * 8,
                                                     markdown_breaks=()))
    assert len(parts) > 1
    for part in parts:
        _, body, _ = channel.request("http://127.0.0.1/dingtalk", robot, message, part)
        raw = json.dumps(body, ensure_ascii=False).encode()
        assert len(raw) <= DINGTALK_BODY and body["markdown"]["title"].endswith(f"（{part.index}/{part.count}）")
        assert size(part.content) <= limit
