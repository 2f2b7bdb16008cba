"""The dispatcher (shian.notifiers.dispatch) against its documented delivery semantics:
exactly once outside the one crash window, retries and give-up, delivery.failed, grouping,
quiet hours, silences, the daily digest. Channels here are recorders with scripted answers;
``received`` is what the far side got. The clock is fake; restarts open a new Outbox and
Dispatcher on the same SQLite file."""
from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import random
import sqlite3
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from shian.notifiers import dispatch
from shian.notifiers.dispatch import Dispatcher
from shian.notifiers.message import DELIVERED, Message, Outcome, Result
from shian.notifiers.outbox import DueBatch, Outbox
from shian.notifiers.settings import parse as parse_settings
from shian.rules.config import load
from shian.rules.notice import Notice, notice_id

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 4, 27, 10, 0, tzinfo=TZ)  # a Monday, inside working hours

CONFIG: dict[str, Any] = {
    "timezone": "Asia/Shanghai",
    "county": {"name": "西平县", "office": "county-fso", "escalation": ["county-lead"]},
    "departments": {
        "county-fso": {"name": "县食安办", "email": ["fso@county.example"]},
        "county-lead": {"name": "县食安办分管领导"},
        "hh-fso": {"name": "红河镇食安办", "email": ["fso@honghe.example"],
                   "wecom": {"webhook": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=test"}},
        "hh-agri": {"name": "红河镇农技中心", "email": ["agri@honghe.example"]},
        "bq-fso": {"name": "板桥镇食安办"},
    },
    "townships": {
        "红河镇": {"office": "hh-fso", "reporters": ["红河村"], "routing": {"蔬菜": "hh-agri"}},
        "板桥镇": {"office": "bq-fso", "reporters": ["板桥村"]},
    },
    "notifiers": {"outbox": "outbox.sqlite", "smtp": {"host": "localhost", "from": "shian@county.example"},
                  "quiet_hours": False, "digest": None},
}

RETRY = Result(Outcome.RETRY, "421 try later")
FAILED = Result(Outcome.FAILED, "550 no such mailbox")


class Killed(BaseException):
    """The process dies at this point (nothing in the dispatcher catches it)."""


class Recorder:
    """A channel with scripted answers. Script steps: a Result; "crash-before" (dies before
    the far side has the message); "crash-after" (the far side has it, then the process dies);
    "raise-after" (the far side has it, then the channel raises an ordinary error)."""

    def __init__(self, name: str, script: list[Any] | None = None) -> None:
        self.name = name
        self.script = list(script or [])
        self.received: list[tuple[str, Message]] = []
        self.calls = 0
        self.closed = False

    async def send(self, dept_id, dept, message):
        self.calls += 1
        step = self.script.pop(0) if self.script else DELIVERED
        if step == "crash-before":
            raise Killed
        if step in ("crash-after", "raise-after"):
            self.received.append((dept_id, message))
            if step == "crash-after":
                raise Killed
            raise ConnectionResetError("connection reset after the server accepted")
        if step.outcome is Outcome.DELIVERED:
            self.received.append((dept_id, message))
        return step

    async def close(self):
        self.closed = True


class TinyRenderer:
    """Deterministic messages: the same notices for the same department give the same ref."""

    def __init__(self) -> None:
        self.digests: list[tuple[str, date, list[str], list[str]]] = []
        self.fail: int = 0

    def _m(self, ref, ids, dept, severity, subject):
        return Message(ref=ref, notice_ids=tuple(ids), dept=dept, severity=severity, subject=subject,
                       text=subject, html=f"<p>{subject}</p>", markdown=subject, headers=(("X-Shian-Ref", ref),))

    def notice(self, n, dept, **kw):
        if self.fail:
            self.fail -= 1
            raise KeyError("template")
        return self._m(f"{n.id}.{dept}", [n.id], dept, n.severity, n.title)

    def group(self, ns, dept, **kw):
        ids = [n.id for n in ns]
        ref = "g" + hashlib.sha256("|".join(ids + [dept]).encode()).hexdigest()[:16]
        return self._m(ref, ids, dept, ns[0].severity, f"{len(ns)} 条 {ns[0].rule}")

    def digest(self, dept, day, notices, open_deadlines):
        self.digests.append((dept, day, [n.id for n in notices], [n.id for n in open_deadlines]))
        return self._m(f"digest-{dept}-{day}", [], dept, "info", f"{day} 每日汇总")


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


def make_notice(rule: str = "sample.unqualified", township: str = "红河镇", subject: str = "S1", *,
                at: datetime = NOW, severity: str = "warning", level: str = "town",
                recipients: tuple[str, ...] = ("hh-agri",), due: datetime | None = None) -> Notice:
    key = f"{rule}|{township}|{subject}"
    return Notice(id=notice_id(key), rule=rule, severity=severity, level=level, township=township,
                  recipients=recipients, title=f"{rule} {subject}", at=at, due=due,
                  event_ids=(subject,), key=key, facts={"entity": subject})


class World:
    """Settings from a YAML file in tmp_path, recording channels that outlive restarts (they
    are the far side), and a dispatcher that can be killed and started again."""

    def __init__(self, tmp_path: Path, channels: tuple[str, ...] = ("email", "wecom"), **notifiers: Any) -> None:
        data = copy.deepcopy(CONFIG)
        data["notifiers"].update(notifiers)
        p = tmp_path / "county.yaml"
        p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        self.settings = parse_settings(load(p), env={})
        self.clock = Clock(NOW)
        self.channels = {name: Recorder(name) for name in channels}
        self.renderer = TinyRenderer()
        self.start()

    def start(self, channels: dict[str, Recorder] | None = None) -> None:
        self.outbox = Outbox(self.settings.outbox, self.settings)
        self.dispatcher = Dispatcher(self.settings, self.outbox, channels if channels is not None else self.channels,
                                     self.renderer, now=self.clock, rand=lambda: 0.5)

    def restart(self, channels: dict[str, Recorder] | None = None) -> None:
        """A hard stop (no clean shutdown) and a new process on the same file."""
        self.outbox.db.close()
        self.start(channels)

    def step(self) -> int:
        return asyncio.run(self.dispatcher.step())

    def received(self) -> Counter:
        """Messages the far side got, per (notice id, department, channel)."""
        c: Counter = Counter()
        for name, ch in self.channels.items():
            for dept, m in ch.received:
                for nid in m.notice_ids:
                    c[(nid, dept, name)] += 1
        return c

    def states(self, n: dict[str, Any]) -> dict[tuple[str, str], str]:
        return {(d.dept, d.channel): d.state for d in self.outbox.deliveries_of(n.id)}


@pytest.fixture
def world(tmp_path):
    return World(tmp_path, group_wait_seconds=0)


# -- accepted, sent once ---------------------------------------------------------------------


def test_a_notice_goes_to_every_channel_of_every_recipient_once(world):
    n = make_notice(recipients=("hh-agri", "hh-fso", "bq-fso"))
    assert world.dispatcher.submit(n) is True
    assert world.dispatcher.submit(n) is False
    assert world.step() == 3
    assert world.step() == 0
    assert world.received() == {(n.id, "hh-agri", "email"): 1, (n.id, "hh-fso", "email"): 1,
                                (n.id, "hh-fso", "wecom"): 1}
    rows = world.outbox.deliveries_of(n.id)
    assert {r.state for r in rows} == {"sent"}
    assert all(r.sent_at == NOW and r.attempts == 1 and r.ref == f"{n.id}.{r.dept}" for r in rows)


def test_a_restart_after_delivery_sends_nothing_again(world):
    n = make_notice(recipients=("hh-agri", "hh-fso"))
    world.dispatcher.submit(n)
    world.step()
    world.restart()
    world.clock.advance(hours=1)
    assert world.step() == 0
    assert set(world.received().values()) == {1}


def test_a_notice_accepted_before_a_crash_is_sent_after_the_restart(world):
    n = make_notice()
    world.dispatcher.submit(n)
    world.restart()
    assert world.step() == 1
    assert world.received() == {(n.id, "hh-agri", "email"): 1}


CRASH_POINTS = [
    # (where the process dies, times the far side has the message in the end)
    ("in claim, before the rows are marked sending", 1),
    ("after the rows are marked sending, before the channel is called", 1),
    ("in the channel, before the far side accepted", 1),
    ("in the channel, after the far side accepted (the window)", 2),
    ("in finish, before sent is committed (the window)", 2),
    ("after sent is committed", 1),
    ("in the renderer", 1),
]


@pytest.mark.parametrize("point,expected", CRASH_POINTS, ids=[p for p, _ in CRASH_POINTS])
def test_a_dispatcher_killed_at_any_point_sends_each_delivery_once_except_in_the_window(world, monkeypatch, point, expected):
    n = make_notice()
    world.dispatcher.submit(n)
    ob = world.outbox

    def die_in(name: str, after: bool):
        real = getattr(ob, name)

        def wrapper(*a, **kw):
            if after:
                real(*a, **kw)
            raise Killed

        monkeypatch.setattr(ob, name, wrapper)

    if point.startswith("in claim"):
        die_in("claim", after=False)
    elif point.startswith("after the rows are marked"):
        die_in("claim", after=True)
    elif point.startswith("in the channel, before"):
        world.channels["email"].script = ["crash-before"]
    elif point.startswith("in the channel, after"):
        world.channels["email"].script = ["crash-after"]
    elif point.startswith("in finish"):
        die_in("finish", after=False)
    elif point.startswith("after sent"):
        die_in("finish", after=True)
    elif point.startswith("in the renderer"):
        real = world.renderer.notice

        def die_once(*a, **kw):
            monkeypatch.setattr(world.renderer, "notice", real)
            raise Killed

        monkeypatch.setattr(world.renderer, "notice", die_once)
    with pytest.raises(Killed):
        world.step()
    world.restart()
    world.clock.advance(seconds=1)
    world.step()
    world.clock.advance(hours=1)
    world.step()
    assert world.received() == {(n.id, "hh-agri", "email"): expected}
    assert world.states(n) == {("hh-agri", "email"): "sent"}
    resent = [m for _, m in world.channels["email"].received]
    assert len({m.ref for m in resent}) == 1  # a resend in the window carries the same ref


def test_repeated_kills_at_random_points_never_send_twice_outside_the_window(tmp_path):
    """Thirty notices, a far side that answers at random (delivered, retry, or the process
    dying before it accepted), a restart after every death: each delivery arrives once."""
    rnd = random.Random(7)
    w = World(tmp_path, group_wait_seconds=0)
    notices = [make_notice(subject=f"S{i}", recipients=("hh-agri", "hh-fso")) for i in range(30)]
    for ch in w.channels.values():
        ch.script = [rnd.choice([DELIVERED, DELIVERED, RETRY, "crash-before"]) for _ in range(200)]
    for i, n in enumerate(notices):
        w.dispatcher.submit(n)
        if i % 3 == 2:
            for _ in range(3):
                try:
                    w.step()
                except Killed:
                    w.restart()
                w.clock.advance(minutes=2)
    for _ in range(200):
        try:
            w.step()
        except Killed:
            w.restart()
        w.clock.advance(minutes=5)
        if w.outbox.state_counts()["sent"] == 90:
            break
    assert w.outbox.state_counts()["sent"] == 90
    assert len(w.received()) == 90 and set(w.received().values()) == {1}


class Concurrent(Recorder):
    """A recording channel that takes a moment per message and says it takes ``concurrency``
    sends at once; it keeps the most it had in flight."""

    def __init__(self, name: str, concurrency: int) -> None:
        super().__init__(name)
        self.concurrency = concurrency
        self.in_flight = self.most = 0

    async def send(self, dept_id, dept, message):
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.005)
            return await super().send(dept_id, dept, message)
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_channel_taking_several_sends_at_once_gets_at_most_that_many_each_once(tmp_path, concurrency):
    """A step over 150 due messages (more than one claim) keeps at most the channel's
    ``concurrency`` sends in flight, counts every delivery, and sends each once."""
    w = World(tmp_path, channels=("email",), group_wait_seconds=0)
    w.channels["email"] = Concurrent("email", concurrency)
    w.start()
    notices = [make_notice(subject=f"S{i}") for i in range(150)]
    w.dispatcher.submit_many(notices)
    assert w.step() == 150
    assert w.channels["email"].most == concurrency
    assert set(w.received().values()) == {1} and len(w.received()) == 150
    assert w.outbox.state_counts()["sent"] == 150


def test_a_dispatcher_killed_half_way_through_a_claim_releases_what_it_never_handed_over(world):
    """Killed at the third message of a claim: the two before it are sent, the third is in
    the window (sending), the rest are pending again with no attempt counted; after a restart
    every delivery arrives once, but the one in the window, which may arrive twice."""
    notices = [make_notice(subject=f"S{i}") for i in range(10)]
    world.dispatcher.submit_many(notices)
    world.channels["email"].script = [DELIVERED, DELIVERED, "crash-after"]
    with pytest.raises(Killed):
        world.step()
    rows = [world.outbox.deliveries_of(n.id)[0] for n in notices]
    assert [(r.state, r.attempts) for r in rows] == \
        [("sent", 1)] * 2 + [("sending", 1)] + [("pending", 0)] * 7
    world.restart()
    world.clock.advance(seconds=1)
    assert world.step() == 8
    got = world.received()
    assert got[(notices[2].id, "hh-agri", "email")] == 2
    assert all(got[(n.id, "hh-agri", "email")] == 1 for n in notices if n is not notices[2])


def test_a_channel_that_raises_counts_as_retry_and_may_resend_within_the_window(world):
    world.channels["email"].script = ["raise-after"]
    n = make_notice()
    world.dispatcher.submit(n)
    assert world.step() == 0
    assert world.states(n) == {("hh-agri", "email"): "pending"}
    world.clock.advance(minutes=1)
    assert world.step() == 1
    assert world.received() == {(n.id, "hh-agri", "email"): 2}


def test_a_channel_error_is_recorded_and_logged_without_addresses(world, caplog):
    """A robot's webhook URL carries its access token: it never reaches the log or the outbox."""

    async def leaky(dept_id, dept, message):
        raise ValueError("bad request to https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRET")

    world.channels["email"].send = leaky
    n = make_notice()
    world.dispatcher.submit(n)
    world.step()
    [row] = world.outbox.deliveries_of(n.id)
    assert row.state == "pending" and "SECRET" not in row.last_error and "<URL>" in row.last_error
    assert "SECRET" not in caplog.text and n.id in caplog.text


# -- retries, give-up, delivery.failed -------------------------------------------------------


def test_retry_backs_off_exponentially_with_jitter_then_delivers(world):
    world.channels["email"].script = [RETRY, RETRY, DELIVERED]
    n = make_notice()
    world.dispatcher.submit(n)
    world.step()
    [row] = world.outbox.deliveries_of(n.id)
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "421 try later")
    assert row.next_at == NOW + timedelta(seconds=22.5)  # cap 30 s, equal jitter at 0.5
    world.clock.advance(seconds=22)
    assert world.step() == 0
    world.clock.advance(seconds=1)
    world.step()
    [row] = world.outbox.deliveries_of(n.id)
    assert row.next_at == world.clock.t + timedelta(seconds=45)  # cap 60 s
    world.clock.advance(seconds=45)
    assert world.step() == 1
    [row] = world.outbox.deliveries_of(n.id)
    assert (row.state, row.attempts, row.last_error, row.first_attempt_at) == ("sent", 3, "", NOW)
    assert world.received() == {(n.id, "hh-agri", "email"): 1}


def test_retry_after_from_the_channel_is_respected_when_longer(world):
    world.channels["email"].script = [Result(Outcome.RETRY, "限流", retry_after=600)]
    n = make_notice()
    world.dispatcher.submit(n)
    world.step()
    assert world.outbox.deliveries_of(n.id)[0].next_at == NOW + timedelta(seconds=600)


def delivery_failed(world) -> list[Notice]:
    return [x for x in world.outbox.notices() if x.rule == "delivery.failed"]


def test_a_permanent_failure_is_recorded_and_raises_delivery_failed_to_the_county_office(world):
    world.channels["email"].script = [FAILED]
    n = make_notice()
    world.dispatcher.submit(n)
    world.clock.advance(minutes=3)
    world.step()
    [row] = world.outbox.deliveries_of(n.id)
    assert (row.state, row.last_error) == ("failed", "550 no such mailbox")
    [f] = delivery_failed(world)
    key = f"delivery.failed|红河镇|{n.id}|hh-agri|email"
    assert f.to_json() == {
        "id": notice_id(key), "rule": "delivery.failed", "severity": "warning", "level": "county",
        "township": "红河镇", "recipients": ["county-fso"], "title": f.title, "at": "2026-04-27T10:03:00+08:00",
        "due": None, "event_ids": [], "key": key,
        "facts": {"notice_id": n.id, "dept": "hh-agri", "dept_name": "红河镇农技中心", "channel": "email",
                  "error": "550 no such mailbox", "rule": "sample.unqualified"},
    }
    assert "红河镇农技中心" in f.title
    world.step()
    assert world.received() == {(f.id, "county-fso", "email"): 1}


def test_retries_give_up_after_give_up_hours_since_the_first_attempt(tmp_path):
    w = World(tmp_path, group_wait_seconds=0, retry={"first_seconds": 60, "max_seconds": 3600, "give_up_hours": 6})
    w.channels["email"].script = [RETRY] * 100
    n = make_notice()
    w.dispatcher.submit(n)
    steps = 0
    while w.states(n)[("hh-agri", "email")] == "pending":
        w.step()
        steps += 1
        row = w.outbox.deliveries_of(n.id)[0]
        if row.next_at:
            w.clock.t = row.next_at
    row = w.outbox.deliveries_of(n.id)[0]
    assert row.state == "failed" and row.last_error == "421 try later"
    assert w.clock.t - NOW >= timedelta(hours=6)
    assert w.clock.t - NOW < timedelta(hours=6, minutes=60)
    assert row.attempts == steps
    assert [x.facts["notice_id"] for x in delivery_failed(w)] == [n.id]


def test_delivery_failed_is_never_raised_about_a_delivery_failed_notice(world):
    world.channels["email"].script = [FAILED, FAILED]
    n = make_notice()
    world.dispatcher.submit(n)
    world.step()
    world.step()  # the delivery.failed notice to county-fso by email fails too
    [f] = delivery_failed(world)
    assert world.states(f) == {("county-fso", "email"): "failed"}
    world.clock.advance(hours=1)
    world.step()
    assert len(delivery_failed(world)) == 1


def test_a_renderer_error_is_retried_like_a_delivery(world):
    world.renderer.fail = 1
    n = make_notice()
    world.dispatcher.submit(n)
    assert world.step() == 0
    [row] = world.outbox.deliveries_of(n.id)
    assert row.state == "pending" and row.attempts == 1 and "渲染失败" in row.last_error
    world.clock.advance(minutes=1)
    assert world.step() == 1


def test_a_channel_missing_from_the_mapping_makes_its_rows_wait_and_is_logged_once(world, caplog):
    world.restart(channels={"email": world.channels["email"]})
    n = make_notice(recipients=("hh-fso",))
    world.dispatcher.submit(n)
    with caplog.at_level(logging.ERROR, "shian.notifiers"):
        world.step()
        world.clock.advance(minutes=1)
        world.step()
    assert world.states(n) == {("hh-fso", "email"): "sent", ("hh-fso", "wecom"): "pending"}
    assert sum("wecom" in r.getMessage() for r in caplog.records) == 1
    world.restart()
    world.step()
    assert world.states(n) == {("hh-fso", "email"): "sent", ("hh-fso", "wecom"): "sent"}


# -- grouping ---------------------------------------------------------------------------------


def test_notices_of_one_rule_and_township_within_group_wait_go_as_one_message(tmp_path):
    w = World(tmp_path)  # group_wait_seconds: 30 by default
    first = [make_notice(subject=s, recipients=("hh-agri", "hh-fso")) for s in ("A", "B", "C")]
    other_rule = make_notice(rule="inspection.license_missing", subject="D", recipients=("hh-agri",))
    other_town = make_notice(township="板桥镇", subject="E", recipients=("hh-agri",))
    for offset, n in zip((0, 10, 25), first):
        w.clock.t = NOW + timedelta(seconds=offset)
        w.dispatcher.submit(n)
    w.dispatcher.submit(other_rule)
    w.dispatcher.submit(other_town)
    w.clock.t = NOW + timedelta(seconds=29)
    assert w.step() == 0
    w.clock.t = NOW + timedelta(seconds=30)
    assert w.step() == 3  # the group to hh-agri/email, hh-fso/email and hh-fso/wecom
    [(dept, m)] = w.channels["wecom"].received
    assert dept == "hh-fso" and m.notice_ids == tuple(n.id for n in first)
    w.clock.t = NOW + timedelta(seconds=55)
    assert w.step() == 2  # the two others, each on its own after its own wait
    assert sorted(len(m.notice_ids) for _, m in w.channels["email"].received) == [1, 1, 3, 3]
    late = make_notice(subject="F", recipients=("hh-agri",))
    w.dispatcher.submit(late)  # its group has gone: a new one
    w.clock.advance(seconds=30)
    assert w.step() == 1
    assert w.channels["email"].received[-1][1].notice_ids == (late.id,)


def test_group_wait_zero_sends_each_notice_at_once(world):
    for s in ("A", "B"):
        world.dispatcher.submit(make_notice(subject=s))
    assert world.step() == 2


def test_a_group_shares_its_outcome_and_a_retry_sends_the_same_message(tmp_path):
    w = World(tmp_path)
    w.channels["email"].script = [RETRY, DELIVERED]
    group = [make_notice(subject=s) for s in ("A", "B")]
    for n in group:
        w.dispatcher.submit(n)
    w.clock.advance(seconds=30)
    w.step()
    rows = [r for n in group for r in w.outbox.deliveries_of(n.id)]
    assert {(r.state, r.attempts, r.next_at) for r in rows} == {("pending", 1, w.clock.t + timedelta(seconds=22.5))}
    ref = rows[0].ref
    assert {r.ref for r in rows} == {ref}
    newcomer = make_notice(subject="C")
    w.dispatcher.submit(newcomer)  # the group is rendered: it does not join
    w.clock.advance(seconds=30)
    assert w.step() == 2
    msgs = [m for _, m in w.channels["email"].received]
    assert [(m.ref, len(m.notice_ids)) for m in msgs] == [(ref, 2), (f"{newcomer.id}.hh-agri", 1)]
    assert {r.state for n in group for r in w.outbox.deliveries_of(n.id)} == {"sent"}


def test_a_group_failing_for_good_raises_one_delivery_failed_per_notice(tmp_path):
    w = World(tmp_path)
    w.channels["email"].script = [FAILED]
    group = [make_notice(subject=s) for s in ("A", "B")]
    for n in group:
        w.dispatcher.submit(n)
    w.clock.advance(seconds=30)
    w.step()
    assert sorted(f.facts["notice_id"] for f in delivery_failed(w)) == sorted(n.id for n in group)
    w.clock.advance(seconds=30)
    assert w.step() == 1  # the two delivery.failed notices are one group to the county office
    assert len(w.channels["email"].received[-1][1].notice_ids) == 2


# -- quiet hours ------------------------------------------------------------------------------


def test_quiet_hours_hold_warnings_until_the_next_working_morning_and_let_critical_through(tmp_path):
    w = World(tmp_path, quiet_hours=True)
    friday_evening = datetime(2026, 4, 24, 18, 0, tzinfo=TZ)
    w.clock.t = friday_evening
    warning = make_notice(subject="W", at=friday_evening)
    critical = make_notice(rule="sample.banned_substance", subject="K", severity="critical", level="county",
                           at=friday_evening)
    w.dispatcher.submit(warning)
    w.dispatcher.submit(critical)
    w.clock.advance(seconds=30)
    assert w.step() == 1
    assert w.received() == {(critical.id, "hh-agri", "email"): 1}
    w.clock.t = datetime(2026, 4, 25, 10, 0, tzinfo=TZ)  # Saturday
    late = make_notice(subject="W2", at=w.clock.t)
    w.dispatcher.submit(late)  # joins the held group
    assert w.step() == 0
    w.clock.t = datetime(2026, 4, 27, 8, 29, 59, tzinfo=TZ)
    assert w.step() == 0
    w.clock.t = datetime(2026, 4, 27, 8, 30, tzinfo=TZ)
    assert w.step() == 1
    assert w.channels["email"].received[-1][1].notice_ids == (warning.id, late.id)


# -- silences ---------------------------------------------------------------------------------


def test_a_silence_added_while_a_group_waits_mutes_it(tmp_path):
    w = World(tmp_path)
    n = make_notice()
    kept = make_notice(township="板桥镇", subject="X")
    w.dispatcher.submit(n)
    w.dispatcher.submit(kept)
    w.outbox.add_silence(None, "红河镇", NOW - timedelta(hours=1), NOW + timedelta(hours=1), "演练", "county-fso",
                         now=NOW)
    w.clock.advance(seconds=30)
    assert w.step() == 1
    assert w.states(n) == {("hh-agri", "email"): "silenced"}
    assert w.outbox.is_silenced(n.id)
    assert w.received() == {(kept.id, "hh-agri", "email"): 1}


def test_a_silenced_notice_is_never_sent(world):
    world.outbox.add_silence("sample.unqualified", None, NOW - timedelta(days=1), NOW + timedelta(days=1), now=NOW)
    n = make_notice()
    world.dispatcher.submit(n)
    world.clock.advance(hours=1)
    assert world.step() == 0
    assert world.states(n) == {("hh-agri", "email"): "silenced"}


# -- daily digest -----------------------------------------------------------------------------


def digest_world(tmp_path) -> World:
    w = World(tmp_path, group_wait_seconds=0, digest={"at": "17:30"})
    w.dispatcher.submit(make_notice(subject="A", due=datetime(2026, 7, 26, 10, 0, tzinfo=TZ)))
    w.dispatcher.submit(make_notice(subject="B", recipients=("hh-agri", "hh-fso")))
    w.dispatcher.submit(make_notice(subject="old", at=NOW - timedelta(days=1), recipients=("hh-fso",)))
    w.step()
    return w


def digests_sent(w: World) -> list[tuple[str, str, str]]:
    return [(name, dept, m.ref) for name, ch in w.channels.items() for dept, m in ch.received
            if m.ref.startswith("digest-")]


def test_the_daily_digest_goes_once_per_department_day_and_channel(tmp_path):
    w = digest_world(tmp_path)
    a, b = make_notice(subject="A").id, make_notice(subject="B").id
    w.clock.t = datetime(2026, 4, 27, 17, 29, tzinfo=TZ)
    w.step()
    assert [d for d in w.renderer.digests if d[1] == date(2026, 4, 27)] == []
    w.clock.t = datetime(2026, 4, 27, 17, 30, tzinfo=TZ)
    assert w.step() == 3
    today = sorted(d for d in w.renderer.digests if d[1] == date(2026, 4, 27))
    assert today == [("hh-agri", date(2026, 4, 27), [a, b], [a]), ("hh-fso", date(2026, 4, 27), [b], [])]
    assert sorted(digests_sent(w)) == [("email", "hh-agri", "digest-hh-agri-2026-04-27"),
                                       ("email", "hh-fso", "digest-hh-fso-2026-04-27"),
                                       ("wecom", "hh-fso", "digest-hh-fso-2026-04-27")]
    w.restart()
    w.clock.advance(minutes=5)
    assert w.step() == 0
    assert len(digests_sent(w)) == 3
    w.clock.t = datetime(2026, 4, 28, 17, 30, tzinfo=TZ)
    w.step()  # the next day: hh-agri still has an open deadline; hh-fso has nothing to report
    assert [d for d in w.renderer.digests if d[1] == date(2026, 4, 28)] == [("hh-agri", date(2026, 4, 28), [], [a])]


def test_a_digest_is_retried_with_the_same_message(tmp_path):
    w = digest_world(tmp_path)
    w.channels["email"].script = [RETRY, RETRY]
    w.clock.t = datetime(2026, 4, 27, 17, 30, tzinfo=TZ)
    w.step()
    assert len(digests_sent(w)) == 1  # wecom
    w.clock.advance(minutes=5)
    w.step()
    assert len(digests_sent(w)) == 3
    assert len([d for d in w.renderer.digests if d[1] == date(2026, 4, 27)]) == 2  # rendered once each
    digest_rows = w.outbox.deliveries(kind="digest")
    assert {(r.state, r.ref) for r in digest_rows if r.dept == "hh-agri"} == {("sent", "digest-hh-agri-2026-04-27")}


def test_silenced_notices_are_left_out_of_the_digest(tmp_path):
    w = World(tmp_path, group_wait_seconds=0, digest={"at": "17:30"})
    w.outbox.add_silence(None, "红河镇", NOW - timedelta(hours=1), NOW + timedelta(hours=1), now=NOW)
    w.dispatcher.submit(make_notice())
    w.clock.t = datetime(2026, 4, 27, 17, 30, tzinfo=TZ)
    w.step()
    assert w.renderer.digests == [] and digests_sent(w) == []


# -- the loop ---------------------------------------------------------------------------------


def test_run_sends_until_stopped_and_close_closes_the_channels(world):
    n = make_notice(recipients=("hh-fso",))

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(world.dispatcher.run(stop, poll_seconds=0.001))
        world.dispatcher.submit(n)
        for _ in range(1000):
            if len(world.received()) == 2:
                break
            await asyncio.sleep(0.001)
        stop.set()
        await asyncio.wait_for(task, 1)
        await world.dispatcher.close()

    asyncio.run(main())
    assert world.received() == {(n.id, "hh-fso", "email"): 1, (n.id, "hh-fso", "wecom"): 1}
    assert all(ch.closed for ch in world.channels.values())


# -- with the real renderer and file channel ---------------------------------------------------


def test_the_real_renderer_and_file_channel_carry_a_notice_its_failure_and_a_digest(tmp_path):
    from shian.notifiers.channels.file import FileChannel
    from shian.notifiers.render import Renderer

    w = World(tmp_path, group_wait_seconds=0, file={"dir": "out"}, digest={"at": "17:30"})
    email = Recorder("email", [FAILED])
    channels = {"email": email, "wecom": w.channels["wecom"], "file": FileChannel(w.settings)}
    w.outbox.db.close()
    w.outbox = Outbox(w.settings.outbox, w.settings)
    w.dispatcher = Dispatcher(w.settings, w.outbox, channels, Renderer(w.settings), now=w.clock)
    n = make_notice(due=datetime(2026, 7, 26, 10, 0, tzinfo=TZ))
    w.dispatcher.submit(n)
    assert w.step() == 1  # the file; email fails for good
    [f] = delivery_failed(w)
    assert w.step() == 2  # delivery.failed to the county office by email and file
    assert email.received[0][1].notice_ids == (f.id,)
    out = tmp_path / "out"
    assert len(list((out / "hh-agri").glob("*.md"))) == 1
    [failed_md] = (out / "county-fso").glob("*.md")
    assert "红河镇农技中心" in failed_md.read_text(encoding="utf-8")
    w.clock.t = datetime(2026, 4, 27, 17, 30, tzinfo=TZ)
    assert w.step() == 4  # digests to hh-agri and county-fso, by email and file each
    assert len(list((out / "hh-agri").glob("*.md"))) == 2


# -- paging and batched accepting -------------------------------------------------------------


def test_a_step_reads_what_is_due_page_by_page_and_sends_all_of_it_once(world, monkeypatch):
    """More batches due than a page holds: one step sends every one of them, each once, earliest first."""
    monkeypatch.setattr(dispatch, "PAGE", 3)
    notices = [make_notice(subject=f"S{i}", at=NOW - timedelta(minutes=20 - i)) for i in range(10)]
    assert world.dispatcher.submit_many(notices) == 10
    assert world.step() == 10
    assert world.received() == {(n.id, "hh-agri", "email"): 1 for n in notices}
    assert [m.notice_ids[0] for _, m in world.channels["email"].received] == [n.id for n in notices]
    assert world.step() == 0


def test_a_batch_that_stays_due_is_not_read_twice_in_one_step(world, monkeypatch):
    """A page whose batches are still pending after sending (released) does not loop: the step ends."""
    monkeypatch.setattr(dispatch, "PAGE", 2)
    for i in range(5):
        world.dispatcher.submit(make_notice(subject=f"S{i}"))
    monkeypatch.setattr(world.dispatcher, "_send_page", lambda page: asyncio.sleep(0, result=0))
    assert world.step() == 0  # nothing sent, every batch still due, and the step returned
    assert len(world.outbox.due(NOW)) == 5 and len(world.outbox.due(NOW, 2)) == 2
    assert world.outbox.due(NOW, channels=("wecom",)) == []
    first = world.outbox.due(NOW, 2)
    assert [b.id for b in world.outbox.due(NOW, 2, after=[b.id for b in first])] == [first[-1].id + 1, first[-1].id + 2]


class Logged(Recorder):
    """A recorder that writes each send into a shared log (beside what the renderer logs)."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(name)
        self.log = log

    async def send(self, dept_id, dept, message):
        self.log.append(f"send {message.notice_ids[0]}")
        return await super().send(dept_id, dept, message)


def test_a_step_reads_renders_and_sends_a_few_batches_at_a_time(tmp_path, monkeypatch):
    """The working set stays small: CLAIM batches read and rendered, sent, and only then the next few."""
    monkeypatch.setattr(dispatch, "CLAIM", 2)
    events: list[str] = []
    w = World(tmp_path, channels=("email",), group_wait_seconds=0)
    w.start({"email": Logged("email", events)})
    read = w.outbox.batches
    monkeypatch.setattr(w.outbox, "batches", lambda ids: events.append(f"read {len(ids)}") or read(ids))
    render = w.renderer.notice
    monkeypatch.setattr(w.renderer, "notice", lambda n, dept, **kw: events.append(f"render {n.id}") or render(n, dept, **kw))
    notices = [make_notice(subject=f"S{i}", at=NOW - timedelta(minutes=10 - i)) for i in range(5)]
    w.dispatcher.submit_many(notices)
    assert w.step() == 5
    ids = [n.id for n in notices]
    assert events == ["read 2", f"render {ids[0]}", f"render {ids[1]}", f"send {ids[0]}", f"send {ids[1]}",
                      "read 2", f"render {ids[2]}", f"render {ids[3]}", f"send {ids[2]}", f"send {ids[3]}",
                      "read 1", f"render {ids[4]}", f"send {ids[4]}"]


def test_chunks_bound_both_the_batches_and_the_notices_read_at_once():
    """A chunk holds at most ``most`` batches and ``notices`` due rows; a bigger group goes alone, in order."""
    dues = [DueBatch(i, "email", rows) for i, rows in enumerate([1, 1, 1, 100, 2, 30, 30, 5, 1])]
    assert list(dispatch.chunks(dues, 3, 64)) == [[0, 1, 2], [3], [4, 5, 6], [7, 8]]
    assert list(dispatch.chunks(dues, 16, 10)) == [[0, 1, 2], [3], [4], [5], [6], [7, 8]]
    assert list(dispatch.chunks([], 16, 64)) == []


def test_a_step_lets_the_event_loop_run_between_messages(world):
    """A channel that answers without waiting does not hold the event loop for the whole step."""
    for i in range(6):
        world.dispatcher.submit(make_notice(subject=f"S{i}"))
    ticks, seen = [0], []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks[0] += 1
            await asyncio.sleep(0)

    class Watching(Recorder):
        async def send(self, dept_id, dept, message):
            seen.append(ticks[0])
            return await super().send(dept_id, dept, message)

    world.start({"email": Watching("email")})

    async def run() -> int:
        stop = asyncio.Event()
        t = asyncio.ensure_future(ticker(stop))
        try:
            return await world.dispatcher.step()
        finally:
            stop.set()
            await t

    assert asyncio.run(run()) == 6
    assert all(b > a for a, b in zip(seen, seen[1:])), seen


def test_rendering_runs_off_the_event_loop(world):
    """A message that takes long to render (a group of hundreds of notices) does not hold up
    the event loop: it goes on meanwhile."""
    slow_renderer, ticks = TinyRenderer(), [0]
    plain = slow_renderer.notice

    def slow(n, dept, **kw):
        time.sleep(0.3)
        return plain(n, dept, **kw)

    slow_renderer.notice = slow  # type: ignore[method-assign]
    world.dispatcher.renderer = slow_renderer
    world.dispatcher.submit(make_notice())

    async def run() -> int:
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                ticks[0] += 1
                await asyncio.sleep(0.01)

        t = asyncio.ensure_future(ticker())
        try:
            return await world.dispatcher.step()
        finally:
            stop.set()
            await t

    assert asyncio.run(run()) == 1
    assert ticks[0] >= 10


def test_submit_all_keeps_every_notice_of_an_event_or_none(world, monkeypatch):
    """One transaction for an event's notices: each accepted once (known ones False), or, should
    the transaction fail, none of them."""
    a, b, c = (make_notice(subject=s) for s in ("A", "B", "C"))
    assert world.dispatcher.submit(a)
    assert world.dispatcher.submit_all([a, b]) == [False, True]
    real = world.outbox._add

    def failing(cur, n, *args):
        if n.id == c.id:
            raise sqlite3.OperationalError("disk I/O error")
        return real(cur, n, *args)

    monkeypatch.setattr(world.outbox, "_add", failing)
    d = make_notice(subject="D")
    with pytest.raises(sqlite3.OperationalError):
        world.dispatcher.submit_all([d, c])
    assert world.outbox.notice(d.id) is None and world.outbox.notice(c.id) is None
    monkeypatch.setattr(world.outbox, "_add", real)
    assert world.dispatcher.submit_all([d, c]) == [True, True]
    assert world.step() == 4
