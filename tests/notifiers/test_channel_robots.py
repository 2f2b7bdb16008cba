"""The WeCom and DingTalk robot channels against a local webhook server (aiohttp) on 127.0.0.1."""
from __future__ import annotations

import asyncio

import pytest

from channel_support import RobotServer, free_port, make_message, make_settings
from shian.notifiers.channels.dingtalk import DingtalkChannel
from shian.notifiers.channels.parts import CONTINUED
from shian.notifiers.channels.wecom import WecomChannel
from shian.notifiers.message import Outcome, Result
from shian.rules.config import Department

KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
TOKEN = "b7e0c9d1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9"
SIGN_SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def wecom_dept(server: RobotServer, key: str = KEY) -> Department:
    return Department(name="红河镇食安办", contacts={"wecom": {"webhook": server.url("wecom", key=key)}})


def dingtalk_dept(server: RobotServer, secret_env: str | None = None) -> Department:
    return Department(name="红河镇食安办", contacts={"dingtalk": {
        "webhook": server.url("dingtalk", access_token=TOKEN), "secret_env": secret_env}})


async def send_each(channel, dept: Department, messages) -> list[Result]:
    try:
        return [await channel.send("hh-fso", dept, m) for m in messages]
    finally:
        await channel.close()


def assert_no_secrets(result: Result) -> None:
    for s in (KEY, TOKEN, SIGN_SECRET):
        assert s not in result.error


@pytest.mark.parametrize("status, reply, outcome, retry_after", [
    (200, {"errcode": 0, "errmsg": "ok"}, Outcome.DELIVERED, None),
    (200, {"errcode": 45009, "errmsg": "api freq out of limit"}, Outcome.RETRY, 60.0),
    (200, {"errcode": -1, "errmsg": "system busy"}, Outcome.RETRY, None),
    (200, {"errcode": 93000, "errmsg": f"invalid webhook url, hint: [key={KEY}]"}, Outcome.FAILED, None),
    (200, {"errcode": 40008, "errmsg": "invalid message type"}, Outcome.FAILED, None),
    (500, "internal error", Outcome.RETRY, None),
    (502, "bad gateway", Outcome.RETRY, None),
    (404, "not found", Outcome.FAILED, None),
    (200, "<html>portal login</html>", Outcome.RETRY, None),
])
def test_wecom_answers_map_to_outcomes(status, reply, outcome, retry_after):
    async def go():
        async with RobotServer() as server:
            server.replies = [(status, reply)]
            [result] = await send_each(WecomChannel(make_settings()), wecom_dept(server), [make_message()])
            assert len(server.requests) == 1
            return result
    result = asyncio.run(go())
    assert result.outcome is outcome, result
    assert result.retry_after == retry_after
    assert_no_secrets(result)


def test_wecom_posts_the_markdown_card():
    async def go():
        async with RobotServer() as server:
            [result] = await send_each(WecomChannel(make_settings()), wecom_dept(server), [make_message()])
            return result, server.requests
    result, [(path, query, body)] = asyncio.run(go())
    assert result.outcome is Outcome.DELIVERED, result
    assert path == "/wecom" and query == {"key": KEY}
    assert body == {"msgtype": "markdown", "markdown": {"content": make_message().markdown}}


def test_wecom_card_of_one_long_notice_goes_as_parts_cut_at_line_ends():
    """A card over 4,096 bytes with no notice boundary: parts within the limit, cut where lines
    end, each saying it goes on, all lines delivered once and the reference in the last."""
    ref_line = "> 编号：n-20260501-0007"
    lines = [f"- 第 {i} 条：红河镇新寨村青菜农残超标" for i in range(400)]
    long_md = "### 食安预警\n" + "\n".join(lines) + "\n" + ref_line

    async def go():
        async with RobotServer() as server:
            [result] = await send_each(WecomChannel(make_settings()), wecom_dept(server), [make_message(markdown=long_md)])
            return result, [b["markdown"]["content"] for _, _, b in server.requests]
    result, contents = asyncio.run(go())
    assert result.outcome is Outcome.DELIVERED, result
    assert len(contents) > 1 and all(len(c.encode()) <= 4096 for c in contents)
    assert [c.splitlines()[0] for c in contents] == [f"### 食安预警（1/{len(contents)}）"] + [
        f"### 食安预警（{k}/{len(contents)}，接上条，编号 n-20260501-0007）" for k in range(2, len(contents) + 1)]
    assert all(CONTINUED in c for c in contents[:-1]) and contents[-1].endswith(ref_line)
    sent = [ln for c in contents for ln in c.splitlines() if ln.startswith("- 第 ")]
    assert sent == lines


@pytest.mark.parametrize("status, reply, outcome, retry_after", [
    (200, {"errcode": 0, "errmsg": "ok"}, Outcome.DELIVERED, None),
    (200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}, Outcome.RETRY, 60.0),
    (200, {"errcode": 410100, "errmsg": "发送速度太快而限流"}, Outcome.RETRY, 60.0),
    (200, {"errcode": 310000, "errmsg": "keywords not in content"}, Outcome.FAILED, None),
    (200, {"errcode": 300001, "errmsg": f"token is not exist access_token={TOKEN}"}, Outcome.FAILED, None),
    (200, {"errcode": 400013, "errmsg": "群已被解散"}, Outcome.FAILED, None),
    (503, "unavailable", Outcome.RETRY, None),
    (403, "forbidden", Outcome.FAILED, None),
])
def test_dingtalk_answers_map_to_outcomes(status, reply, outcome, retry_after):
    async def go():
        async with RobotServer() as server:
            server.replies = [(status, reply)]
            [result] = await send_each(DingtalkChannel(make_settings()), dingtalk_dept(server), [make_message()])
            return result, server.requests
    result, [(path, query, body)] = asyncio.run(go())
    assert result.outcome is outcome, result
    assert result.retry_after == retry_after
    assert body["markdown"]["title"] == make_message().subject
    assert_no_secrets(result)


def test_dingtalk_signature_is_accepted_and_a_wrong_secret_refused_without_leaking(monkeypatch):
    async def go(secret_value: str):
        monkeypatch.setenv("TEST_DING_SECRET", secret_value)
        async with RobotServer(secret=SIGN_SECRET) as server:
            [result] = await send_each(DingtalkChannel(make_settings()), dingtalk_dept(server, "TEST_DING_SECRET"),
                                       [make_message()])
            return result, server.requests[0][1]
    ok, query = asyncio.run(go(SIGN_SECRET))
    assert ok.outcome is Outcome.DELIVERED, ok
    assert set(query) == {"access_token", "timestamp", "sign"}
    bad, _ = asyncio.run(go("SEC-not-the-robots-secret-0000"))
    assert bad.outcome is Outcome.FAILED and "310000" in bad.error
    assert_no_secrets(bad)
    assert "SEC-not-the-robots-secret-0000" not in bad.error


def test_dingtalk_signing_secret_missing_from_environment_is_failed_without_request(monkeypatch):
    monkeypatch.delenv("TEST_DING_SECRET", raising=False)

    async def go():
        async with RobotServer(secret=SIGN_SECRET) as server:
            [result] = await send_each(DingtalkChannel(make_settings()), dingtalk_dept(server, "TEST_DING_SECRET"),
                                       [make_message()])
            return result, server.requests
    result, requests = asyncio.run(go())
    assert result.outcome is Outcome.FAILED and "TEST_DING_SECRET" in result.error and requests == []


@pytest.mark.parametrize("make", [
    lambda: (WecomChannel, Department(name="x", contacts={
        "wecom": {"webhook": f"http://127.0.0.1:{free_port()}/wecom?key={KEY}"}})),
    lambda: (DingtalkChannel, Department(name="x", contacts={
        "dingtalk": {"webhook": f"http://127.0.0.1:{free_port()}/dingtalk?access_token={TOKEN}"}})),
])
def test_robot_unreachable_is_retry_without_the_key(make):
    cls, dept = make()
    [result] = asyncio.run(send_each(cls(make_settings()), dept, [make_message()]))
    assert result.outcome is Outcome.RETRY, result
    assert_no_secrets(result)


def test_robot_answering_too_slowly_is_retry():
    async def go():
        async with RobotServer(delay=1.0) as server:
            return await send_each(WecomChannel(make_settings(), timeout=0.2), wecom_dept(server), [make_message()])
    [result] = asyncio.run(go())
    assert result.outcome is Outcome.RETRY and "超时" in result.error


@pytest.mark.parametrize("cls, dept_of", [(WecomChannel, wecom_dept), (DingtalkChannel, dingtalk_dept)])
def test_21st_message_in_a_minute_is_held_back_without_a_request(cls, dept_of):
    clock = Clock()

    async def go():
        async with RobotServer() as server:
            channel = cls(make_settings(), now=clock)
            dept = dept_of(server)
            try:
                first = [await channel.send("hh-fso", dept, make_message(ref=f"n-{i}")) for i in range(20)]
                clock.t += 45
                held = await channel.send("hh-fso", dept, make_message(ref="n-20"))
                sent_before = len(server.requests)
                clock.t += 15
                later = await channel.send("hh-fso", dept, make_message(ref="n-20"))
            finally:
                await channel.close()
            return first, held, sent_before, later, len(server.requests)
    first, held, sent_before, later, sent_after = asyncio.run(go())
    assert all(r.outcome is Outcome.DELIVERED for r in first)
    assert held.outcome is Outcome.RETRY and held.retry_after == pytest.approx(15.0)
    assert held.error == "群机器人每分钟最多 20 条，稍后重发"
    assert sent_before == 20
    assert later.outcome is Outcome.DELIVERED and sent_after == 21


def test_rate_limit_follows_settings_and_is_per_webhook():
    clock = Clock()

    async def go():
        async with RobotServer() as server:
            channel = WecomChannel(make_settings(robot_per_minute=2), now=clock)
            a, b = wecom_dept(server, key="key-a-1234"), wecom_dept(server, key="key-b-5678")
            try:
                return [(await channel.send("a", a, make_message())).outcome for _ in range(3)] + \
                       [(await channel.send("b", b, make_message())).outcome]
            finally:
                await channel.close()
    assert asyncio.run(go()) == [Outcome.DELIVERED, Outcome.DELIVERED, Outcome.RETRY, Outcome.DELIVERED]


def test_department_without_the_robot_is_failed():
    result = asyncio.run(send_each(WecomChannel(make_settings()), Department(name="x"), [make_message()]))[0]
    assert result.outcome is Outcome.FAILED
