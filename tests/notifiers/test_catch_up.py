"""Catch-up after a clock jump (shian.notifiers.catchup through the outbox and the dispatcher):
reminders held once their date has passed or their own overdue notice supersedes them, late
notices as one 补发汇总 per office by month and rule, critical ones alone, groups that never
mix months, escalations following their notice into its summary, the version-1 outbox
converted, ``notifiers.catch_up_after`` checked, and a late start on the example county. The
clock is fake, the channel a recorder, the renderer the real one (its templates are part of
what is checked)."""
from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import sqlite3
import threading
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from notice_month import april
from shian.notifiers import catchup
from shian.notifiers.dispatch import Dispatcher
from shian.notifiers.message import DELIVERED, Message, Outcome, Result
from shian.notifiers.outbox import Outbox
from shian.notifiers.render import Renderer
from shian.notifiers.settings import parse as parse_settings
from shian.rules.config import ConfigError, load
from shian.rules.families import RULES
from shian.rules.notice import Notice, notice_id, notice_key
from shian.streams.replay import Replay

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=TZ)  # a Wednesday
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"

CONFIG: dict[str, Any] = {
    "timezone": "Asia/Shanghai",
    "county": {"name": "西平县", "office": "county-fso", "escalation": ["county-lead"]},
    "departments": {
        "county-fso": {"name": "县食安办", "email": ["fso@county.example"]},
        "county-lead": {"name": "县食安办分管领导"},
        "hh-fso": {"name": "红河镇食安办", "email": ["fso@honghe.example"]},
        "hh-agri": {"name": "红河镇农技中心", "email": ["agri@honghe.example"]},
        "bq-fso": {"name": "板桥镇食安办", "email": ["fso@banqiao.example"]},
    },
    "townships": {
        "红河镇": {"office": "hh-fso", "reporters": ["红河村", "新寨村"], "routing": {"蔬菜": "hh-agri"}},
        "板桥镇": {"office": "bq-fso", "reporters": ["板桥村"]},
    },
    "notifiers": {"outbox": "outbox.sqlite", "smtp": {"host": "localhost", "from": "shian@county.example"},
                  "quiet_hours": False, "digest": None},
}


class Recorder:
    """The e-mail channel's far side: what it received; ``script`` answers first (then DELIVERED)."""
    name = "email"

    def __init__(self) -> None:
        self.received: list[tuple[str, Message]] = []
        self.script: list[Result] = []

    async def send(self, dept_id, dept, message):
        result = self.script.pop(0) if self.script else DELIVERED
        if result.outcome is Outcome.DELIVERED:
            self.received.append((dept_id, message))
        return result

    async def close(self):
        pass


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


class World:
    """An outbox and a dispatcher on a config written to ``tmp_path``, at a fake clock."""

    def __init__(self, tmp_path: Path, now: datetime = NOW, data: dict[str, Any] | None = None,
                 **notifiers: Any) -> None:
        data = copy.deepcopy(data or CONFIG)
        data["notifiers"].update(notifiers)
        path = tmp_path / "county.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        self.settings = parse_settings(load(path), env={})
        self.clock = Clock(now)
        self.channel = Recorder()
        self.outbox = Outbox(self.settings.outbox, self.settings)
        self.outbox.db.execute("PRAGMA synchronous=OFF")  # no crash here: spare the disk its fsyncs
        self.dispatcher = Dispatcher(self.settings, self.outbox, {"email": self.channel}, Renderer(self.settings),
                                     now=self.clock, rand=lambda: 0.5)

    def submit(self, *notices: Notice, whole_batch: bool = True) -> None:
        for n in notices:
            assert self.dispatcher.submit(n, whole_batch=whole_batch)

    def step(self) -> int:
        return asyncio.run(self.dispatcher.step())

    def drain(self) -> None:
        """Steps until nothing is due within the next minutes (group waits, quick retries)."""
        for _ in range(100):
            self.step()
            due = self.outbox.next_due()
            if due is None or due > self.clock.t + timedelta(minutes=10):
                return
            self.clock.t = max(self.clock.t, due)
        raise AssertionError("delivery never settled")

    def messages(self, dept: str | None = None) -> list[Message]:
        return [m for d, m in self.channel.received if dept is None or d == dept]

    def row(self, n: Notice, dept: str) -> tuple[str, str]:
        [d] = [d for d in self.outbox.deliveries_of(n.id) if d.dept == dept]
        return d.state, d.last_error


def make(rule: str, *tail: str, at: datetime, township: str = "红河镇", recipients: tuple[str, ...] = ("hh-fso",),
         severity: str | None = None, **facts: Any) -> Notice:
    spec = RULES[rule]
    key = notice_key(rule, township, *tail)
    return Notice(id=notice_id(key), rule=rule, severity=severity or spec.severity, level=spec.level,
                  township=township, recipients=recipients, title=f"{spec.summary} {' '.join(tail)}", at=at,
                  due=None, event_ids=(), key=key, facts=facts)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def reminder(reporter: str, period: str, *, at: datetime, township: str = "红河镇", due_date: str | None = "",
             recipients: tuple[str, ...] = ("hh-fso",)) -> Notice:
    """A report.reminder; ``due_date=None`` leaves the fact out (then period + due_day say it)."""
    facts: dict[str, Any] = {"reporter": reporter, "period": period}
    if due_date is not None:
        facts["due_date"] = due_date or f"{period}-25"
    return make("report.reminder", reporter, period, at=at, township=township, recipients=recipients, **facts)


def report(rule: str, reporter: str, period: str, *, at: datetime, township: str = "红河镇",
           recipients: tuple[str, ...] = ("hh-fso",)) -> Notice:
    return make(rule, reporter, period, at=at, township=township, recipients=recipients,
                reporter=reporter, period=period, due_date=f"{period}-25")


def campaign(rule: str, holiday: str, day: str, *, at: datetime, township: str = "红河镇") -> Notice:
    return make(rule, holiday, day, at=at, township=township, holiday=holiday, date=day)


def sample(i: int, *, at: datetime, township: str = "红河镇", severity: str | None = None,
           recipients: tuple[str, ...] = ("hh-agri", "hh-fso"), rule: str = "sample.unqualified") -> Notice:
    return make(rule, f"S-{i}", at=at, township=township, recipients=recipients, severity=severity,
                entity=f"商户{i}", category="蔬菜", food="韭菜", sample_id=f"S-{i}")


# -- notifiers.catch_up_after -------------------------------------------------------------------

@pytest.mark.parametrize("written, expected", [
    (None, timedelta(days=1)),           # key left out: the default
    ("1d", timedelta(days=1)),
    ("36h", timedelta(hours=36)),
    ("90m", timedelta(minutes=90)),
    ("2天", timedelta(days=2)),
    ("12小时", timedelta(hours=12)),
    ("1h", timedelta(hours=1)),          # the lower bound itself
    ("30d", timedelta(days=30)),         # the upper bound itself
    ("off", None),                       # null in the file: no summary
])
def test_catch_up_after_reads_a_length_of_time_with_its_unit(tmp_path, written, expected):
    """The key takes a duration with its unit; absent it is a day, null turns summaries off."""
    notifiers = {} if written is None else {"catch_up_after": None if written == "off" else written}
    assert World(tmp_path, **notifiers).settings.catch_up_after == expected


@pytest.mark.parametrize("written, words", [
    (24, "带单位的时长"),                 # a bare number: hours? days? refused
    ("1y", "带单位的时长"),
    ("", "带单位的时长"),
    ("59m", "1h（1 小时）到 30d（30 天）之间"),
    ("31d", "1h（1 小时）到 30d（30 天）之间"),
    ("0h", "1h（1 小时）到 30d（30 天）之间"),
])
def test_catch_up_after_out_of_range_or_without_unit_is_refused_in_chinese(tmp_path, written, words):
    """A bad value is refused naming the key path and line, in Chinese."""
    with pytest.raises(ConfigError) as err:
        World(tmp_path, catch_up_after=written)
    [problem] = [p for p in err.value.problems if ": notifiers.catch_up_after（第 " in p]
    assert words in problem, problem


# -- held: the reminder's date has passed when it would be sent --------------------------------------

@pytest.mark.parametrize("name, notice, now, rules, held_words", [
    ("report, the due day itself", reminder("红河村", "2026-04", at=local("2026-04-25T09:00")),
     local("2026-04-25T17:00"), None, None),
    ("report, the night after the due day", reminder("红河村", "2026-04", at=local("2026-04-25T09:00")),
     local("2026-04-26T00:00"), None, "要求于2026年4月25日前办理"),
    ("report without due_date, the due day", reminder("红河村", "2026-04", at=local("2026-04-25T09:00"), due_date=None),
     local("2026-04-25T23:59"), None, None),
    ("report without due_date, after it", reminder("红河村", "2026-04", at=local("2026-04-25T09:00"), due_date=None),
     local("2026-04-26T00:00"), None, "要求于2026年4月25日前办理"),
    ("report without due_date, the config's due_day", reminder("红河村", "2026-04", at=local("2026-04-17T09:00"),
                                                              due_date=None),
     local("2026-04-21T00:00"), {"report.reminder": {"due_day": 20}}, "要求于2026年4月20日前办理"),
    ("campaign, the eve of the holiday", campaign("campaign.reminder", "国庆节", "2026-10-01",
                                                  at=local("2026-09-30T09:00")),
     local("2026-09-30T23:59"), None, None),
    ("campaign, the holiday", campaign("campaign.reminder", "国庆节", "2026-10-01", at=local("2026-09-30T09:00")),
     local("2026-10-01T00:00"), None, "要求于2026年10月1日前办理"),
    ("not a reminder: an overdue notice is never held", report("report.overdue", "红河村", "2026-04",
                                                              at=local("2026-04-26T00:00")),
     local("2026-04-27T00:00"), None, None),
])
def test_a_reminder_is_held_once_its_action_date_has_passed(tmp_path, name, notice, now, rules, held_words):
    """Sent up to its date; from the instant its own overdue notice would fire, held with the
    reason in the delivery record — whether or not the notice is late."""
    data = copy.deepcopy(CONFIG)
    if rules:
        data["rules"] = rules
    w = World(tmp_path, now=now, data=data)
    w.submit(notice)
    w.drain()
    state, reason = w.row(notice, "hh-fso")
    if held_words is None:
        assert state == "sent" and [m.notice_ids for m in w.messages()] == [(notice.id,)]
    else:
        assert state == "held" and w.messages() == []
        assert reason.startswith("不发送：") and held_words in reason, reason


# -- inhibition: superseded by its own overdue notice --------------------------------------------------

# The reminder's date is still ahead (December's report, due on the 25th), so only inhibition can hold it.
DEC_REMINDER = reminder("红河村", "2026-12", at=local("2026-12-02T09:00"))
DEC_CAMPAIGN = campaign("campaign.reminder", "元旦", "2027-01-01", at=local("2026-12-02T09:00"))


@pytest.mark.parametrize("name, target, source, held", [
    ("its overdue notice", DEC_REMINDER, report("report.overdue", "红河村", "2026-12", at=NOW), True),
    ("its escalation", DEC_REMINDER, report("report.escalation", "红河村", "2026-12", at=NOW), True),
    ("another reporter's overdue", DEC_REMINDER, report("report.overdue", "新寨村", "2026-12", at=NOW), False),
    ("another month's overdue", DEC_REMINDER, report("report.overdue", "红河村", "2026-11", at=NOW), False),
    ("another township's overdue", DEC_REMINDER,
     report("report.overdue", "红河村", "2026-12", at=NOW, township="板桥镇", recipients=("bq-fso",)), False),
    ("its campaign missed", DEC_CAMPAIGN, campaign("campaign.missed", "元旦", "2027-01-01", at=NOW), True),
    ("last year's campaign missed", DEC_CAMPAIGN, campaign("campaign.missed", "元旦", "2026-01-01", at=NOW), False),
    ("another holiday's missed", DEC_CAMPAIGN, campaign("campaign.missed", "春节", "2027-02-06", at=NOW), False),
])
def test_inhibition_matches_rule_township_and_the_equal_labels(tmp_path, name, target, source, held):
    """Only a source rule's notice with the same township, reporter / holiday and period holds it."""
    w = World(tmp_path)
    w.submit(target, source)
    w.drain()
    state, reason = w.row(target, "hh-fso")
    assert (state == "held") is held, (state, reason)
    if held:
        assert f"通知编号 {source.id}）取代" in reason and target.id not in {i for m in w.messages() for i in m.notice_ids}


@pytest.mark.parametrize("where", ["waiting in its group", "due, not yet sent", "rendered, waiting for a retry"])
def test_a_superseded_reminder_is_never_sent_even_when_already_due(tmp_path, where):
    """The overdue notice arrives while the reminder still waits — for its group, for the
    dispatcher, or for a retry of a message already rendered — and the reminder never goes."""
    w = World(tmp_path, group_wait_seconds=30)
    target = DEC_REMINDER
    if where == "rendered, waiting for a retry":
        w.channel.script = [Result(Outcome.RETRY, "421 try later")]
    w.submit(target, whole_batch=False)
    if where != "waiting in its group":
        w.clock.t += timedelta(seconds=31)
        assert w.outbox.due(w.clock.t)
    if where == "rendered, waiting for a retry":
        assert w.step() == 0 and w.row(target, "hh-fso")[0] == "pending"
    w.submit(report("report.overdue", "红河村", "2026-12", at=w.clock.t), whole_batch=False)
    w.clock.t += timedelta(hours=2)
    w.drain()
    assert w.row(target, "hh-fso")[0] == "held"
    assert [m.notice_ids for m in w.messages()] == [(notice_id(notice_key("report.overdue", "红河镇", "红河村", "2026-12")),)]


# -- late notices: one summary per office ----------------------------------------------------------------

@pytest.mark.parametrize("severity, age, catch_up_after, follows_late, expected", [
    ("warning", timedelta(hours=23), "1d", False, "group"),
    ("warning", timedelta(hours=24), "1d", False, "group"),       # exactly the age: not more
    ("warning", timedelta(hours=24, seconds=1), "1d", False, "summary"),
    ("info", timedelta(days=200), "1d", False, "summary"),
    ("critical", timedelta(days=200), "1d", False, "alone"),
    ("critical", timedelta(hours=1), "1d", False, "group"),       # a fresh critical groups as before
    ("warning", timedelta(hours=3), "2h", False, "summary"),
    ("warning", timedelta(days=200), None, False, "group"),       # summaries off
    ("warning", timedelta(0), "1d", True, "follow"),              # a fresh escalation of a late notice
    ("critical", timedelta(0), "1d", True, "group"),
    ("warning", timedelta(0), None, True, "group"),
])
def test_route_by_age_severity_and_what_a_notice_escalates(tmp_path, severity, age, catch_up_after,
                                                          follows_late, expected):
    """How a notice goes out is decided by its age when received, its severity and whether it
    escalates a late notice."""
    settings = World(tmp_path, catch_up_after=catch_up_after).settings
    n = sample(1, at=NOW - age, severity=severity)
    assert catchup.route(n, NOW, settings, follows_late=follows_late) == expected


LATE = [
    sample(1, at=local("2026-04-03T10:00")),
    sample(2, at=local("2026-04-20T15:00")),
    report("report.overdue", "新寨村", "2026-04", at=local("2026-04-26T00:00")),
    report("report.escalation", "新寨村", "2026-04", at=local("2026-05-01T00:00"), recipients=("county-fso", "hh-fso")),
    report("report.overdue", "新寨村", "2026-05", at=local("2026-05-26T00:00")),
    sample(3, at=local("2026-05-12T09:00"), township="板桥镇", recipients=("bq-fso",)),
    make("inspection.license_missing", "JC-1", at=local("2026-06-03T11:00"), entity="老王饭店", entity_type="餐饮服务",
         inspection_type="日常检查", outcome="限期整改", inspection_id="JC-1", findings=[]),
    sample(4, at=local("2026-04-09T10:00"), rule="sample.banned_substance", severity="critical",
           recipients=("county-fso", "hh-agri", "hh-fso")),
]


def card(w: World, summary: Message) -> str:
    """The markdown card a robot would get for the summary e-mailed (same notices, same office)."""
    notices = [w.outbox.notice(i) for i in summary.notice_ids]
    card = Renderer(w.settings).catch_up(notices, summary.dept)
    assert card.ref == summary.ref
    return card.markdown


def test_late_notices_go_to_each_office_as_one_summary_by_month_and_rule(tmp_path):
    """Each office gets one 补发汇总 of its late notices (critical ones aside), by month then
    rule, every notice once; the robot card of the same summary stays within a robot's size
    (the e-mail carries no card: it sends none)."""
    w = World(tmp_path, group_wait_seconds=0)
    w.submit(*LATE)
    w.drain()
    critical = LATE[-1]
    for dept in ("county-fso", "hh-fso", "hh-agri", "bq-fso"):
        mine = [n for n in LATE[:-1] if dept in n.recipients]
        summaries = [m for m in w.messages(dept) if m.subject.startswith("【补发汇总】")]
        assert len(summaries) == 1, dept
        [s] = summaries
        assert sorted(s.notice_ids) == sorted(n.id for n in mine)
        assert all(s.text.count(n.id) == 1 for n in mine)
        assert s.markdown == "" and len(card(w, s).encode()) <= 4096
    hh = next(m for m in w.messages("hh-fso") if m.subject.startswith("【补发汇总】"))
    months = [hh.text.index(h) for h in ("一、2026年4月（4条）", "二、2026年5月（1条）", "三、2026年6月（1条）")]
    assert months == sorted(months)
    april = hh.text[months[0]:months[1]]
    assert "样品抽检不合格（预警通知，2条）" in april and "月报逾期未报（升级督办）（督办通知，1条）" in april
    assert "2026年4月**（4条）" in card(w, hh) and "月报逾期未报1条" in card(w, hh)
    assert [m.notice_ids for m in w.messages() if critical.id in m.notice_ids] == [(critical.id,)] * 3


def test_critical_notices_go_alone_even_of_one_rule_and_township(tmp_path):
    """Two late critical notices of one rule and township: two messages, never the summary."""
    w = World(tmp_path, group_wait_seconds=30)
    bad = [sample(i, at=local("2026-04-09T10:00"), rule="sample.banned_substance", severity="critical",
                  recipients=("county-fso",)) for i in (5, 6)]
    w.submit(*bad, sample(7, at=local("2026-04-09T11:00"), recipients=("county-fso",)))
    w.drain()
    shapes = sorted((m.subject.startswith("【补发汇总】"), m.notice_ids) for m in w.messages())
    assert shapes == sorted([(False, (bad[0].id,)), (False, (bad[1].id,)),
                             (True, (sample(7, at=NOW).id,))])


@pytest.mark.parametrize("name, first, second, messages", [
    ("one month", sample(1, at=local("2026-11-30T20:00")), sample(2, at=local("2026-11-30T23:50")), 1),
    ("a month boundary", sample(1, at=local("2026-11-30T23:50")), sample(2, at=local("2026-12-01T00:10")), 2),
    ("the same time, two periods", report("report.overdue", "红河村", "2026-10", at=local("2026-12-01T00:00")),
     report("report.overdue", "新寨村", "2026-11", at=local("2026-12-01T00:00")), 2),
    ("two months of at, one period", report("report.escalation", "红河村", "2026-11", at=local("2026-11-30T23:00")),
     report("report.escalation", "新寨村", "2026-11", at=local("2026-12-01T00:00")), 1),
])
def test_a_group_never_mixes_periods(tmp_path, name, first, second, messages):
    """Notices of one rule and township within the group wait share a message only when they
    are about the same month (their period fact, else the month of their at)."""
    w = World(tmp_path, now=local("2026-12-01T00:15"), group_wait_seconds=30)
    w.submit(first, second, whole_batch=False)
    w.drain()
    assert len(w.messages("hh-fso")) == messages


@pytest.mark.parametrize("name, escalation", [
    ("unacknowledged", lambda late: make("notice.unacknowledged", late.id, at=NOW, recipients=("county-fso", "hh-fso"),
                                         severity="warning", notice_id=late.id, hours=72)),
    ("report escalation", lambda late: report("report.escalation", "新寨村", "2026-11", at=NOW,
                                              recipients=("county-fso", "hh-fso"))),
])
@pytest.mark.parametrize("summary", ["waiting", "already sent"])
def test_an_escalation_of_a_late_notice_joins_its_summary_while_it_waits(tmp_path, name, escalation, summary):
    """A fresh escalation of a late notice goes into the office's summary if it has not gone
    yet; otherwise, and for an office without a summary, it goes as usual."""
    w = World(tmp_path, group_wait_seconds=30)
    late = report("report.overdue", "新寨村", "2026-11", at=local("2026-11-26T00:00"))
    w.submit(late, whole_batch=False)
    if summary == "already sent":
        w.clock.t += timedelta(seconds=31)
        w.step()
    fresh = escalation(late)
    w.submit(fresh, whole_batch=False)
    w.drain()
    hh = [(m.subject.startswith("【补发汇总】"), set(m.notice_ids)) for m in w.messages("hh-fso")]
    if summary == "waiting":
        assert hh == [(True, {late.id, fresh.id})]
    else:
        assert hh == [(True, {late.id}), (False, {fresh.id})]
    assert [(m.subject.startswith("【补发汇总】"), m.notice_ids) for m in w.messages("county-fso")] == \
        [(False, (fresh.id,))]


# -- the outbox of the previous version ---------------------------------------------------------------

V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema', '1');
CREATE TABLE notices (
    id TEXT PRIMARY KEY, rule TEXT NOT NULL, severity TEXT NOT NULL, level TEXT NOT NULL,
    township TEXT NOT NULL, at REAL NOT NULL, due REAL, received REAL NOT NULL,
    silenced INTEGER NOT NULL DEFAULT 0, json TEXT NOT NULL
);
CREATE TABLE recipients (
    notice_id TEXT NOT NULL REFERENCES notices (id), dept TEXT NOT NULL, PRIMARY KEY (dept, notice_id)
) WITHOUT ROWID;
CREATE TABLE batches (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('notice', 'digest')),
    dept TEXT NOT NULL, channel TEXT NOT NULL, rule TEXT, township TEXT,
    opened REAL NOT NULL, due REAL NOT NULL, ref TEXT, message TEXT
);
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    notice_id TEXT REFERENCES notices (id),
    dept TEXT NOT NULL, channel TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('notice', 'digest')),
    batch_id INTEGER REFERENCES batches (id),
    rule TEXT, township TEXT,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'silenced')),
    attempts INTEGER NOT NULL DEFAULT 0, next_at REAL, first_attempt_at REAL,
    last_error TEXT NOT NULL DEFAULT '', sent_at REAL, ref TEXT,
    UNIQUE (notice_id, dept, channel)
);
CREATE TABLE digests (
    dept TEXT NOT NULL, day TEXT NOT NULL, channel TEXT NOT NULL,
    delivery_id INTEGER REFERENCES deliveries (id), created REAL NOT NULL,
    PRIMARY KEY (dept, day, channel)
) WITHOUT ROWID;
"""


def test_an_outbox_of_schema_1_is_converted_and_its_waiting_rows_still_go(tmp_path):
    """A file written before ``held`` rows and summaries existed: opened, it keeps its waiting
    row (sent once), takes held rows, and its digests still point at their deliveries."""
    w = World(tmp_path)
    w.outbox.close()
    path = w.settings.outbox
    path.unlink()
    waiting = sample(1, at=NOW)
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    t = NOW.timestamp()
    db.execute("INSERT INTO notices VALUES (?, ?, 'warning', 'town', '红河镇', ?, NULL, ?, 0, ?)",
               (waiting.id, waiting.rule, t, t, json.dumps(waiting.to_json(), ensure_ascii=False)))
    db.execute("INSERT INTO recipients VALUES (?, 'hh-fso')", (waiting.id,))
    db.execute("INSERT INTO batches VALUES (1, 'notice', 'hh-fso', 'email', ?, '红河镇', ?, ?, NULL, NULL)",
               (waiting.rule, t, t))
    db.execute("INSERT INTO deliveries (notice_id, dept, channel, kind, batch_id, rule, township, state, next_at)"
               " VALUES (?, 'hh-fso', 'email', 'notice', 1, ?, '红河镇', 'pending', ?)", (waiting.id, waiting.rule, t))
    db.execute("INSERT INTO deliveries (dept, channel, kind, state, sent_at) VALUES ('hh-fso', 'email', 'digest', 'sent', ?)",
               (t,))
    db.execute("INSERT INTO digests VALUES ('hh-fso', '2026-12-01', 'email', 2, ?)", (t,))
    db.commit()
    db.close()
    w.outbox = Outbox(path, w.settings)
    w.dispatcher = Dispatcher(w.settings, w.outbox, {"email": w.channel}, Renderer(w.settings), now=w.clock)
    assert w.outbox.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == "2"
    w.submit(reminder("红河村", "2026-04", at=local("2026-04-22T09:00")))
    w.drain()
    assert Counter(d.state for d in w.outbox.deliveries(kind="notice")) == {"sent": 1, "held": 1}
    assert [m.notice_ids for m in w.messages()] == [(waiting.id,)]
    assert w.outbox.db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert {r[2] for r in w.outbox.db.execute("PRAGMA foreign_key_list(digests)")} == {"deliveries"}


# -- a late start on the example county ---------------------------------------------------------------

ASKED = re.compile(r"于(\d{4})年(\d{1,2})月(\d{1,2})日前")


def test_a_late_start_on_the_example_county_sends_few_messages_none_asking_for_a_passed_date(tmp_path):
    """April's events run in December: each office gets one summary, each critical notice
    goes alone (marked 补发), every reminder is held, and no message asks for a date already
    passed without saying it is a late one."""
    data = yaml.safe_load((EXAMPLES / "county.yaml").read_text(encoding="utf-8"))
    data["notifiers"] = {"outbox": "outbox.sqlite", "smtp": {"host": "localhost", "from": "shian@county.example"},
                         "quiet_hours": False, "digest": None, "group_wait_seconds": 30}
    w = World(tmp_path, data=data)
    notices: list[Notice] = []
    Replay(w.settings.config, notices.append, lambda r: None, until=NOW).run(
        [str(EXAMPLES / "events.jsonl"), str(EXAMPLES / "化验室抽检结果.xlsx")])
    w.submit(*notices)
    w.drain()
    messages = w.messages()
    reminders = {n.id for n in notices if n.rule in catchup.DEADLINES}
    rows = [(n, d) for n in notices for d in n.recipients if w.settings.channels_of(d)]
    late = [(n, d) for n, d in rows if NOW - n.at > timedelta(days=1) and n.id not in reminders]
    offices = {d for n, d in late if n.severity != "critical"}
    criticals = [(n, d) for n, d in late if n.severity == "critical"]
    assert reminders and all(w.row(n, d)[0] == "held" for n, d in rows if n.id in reminders)
    summaries = Counter(d for d, m in w.channel.received if m.subject.startswith("【补发汇总】"))
    assert summaries == Counter(offices)
    assert len(messages) <= len(offices) + len(criticals) + len([r for r in rows if r not in late])
    for m in messages:  # a date already passed is asked for only by a critical notice sent late, which says so
        for y, mo, d in ASKED.findall(m.text):
            if date(int(y), int(mo), int(d)) < NOW.date():
                assert m.subject.startswith("【补发】【紧急】"), m.subject
                assert f"本通知产生于" in m.text and f"办理期限为{y}年{mo}月{d}日，如已过期限" in m.text, m.text
    got = Counter((d, i) for d, m in w.channel.received for i in m.notice_ids)
    assert got == Counter((d, n.id) for n, d in rows if n.id not in reminders), "every other row once"


# -- what the summary and a late critical notice look like -------------------------------------------

def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SHIAN_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with SHIAN_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} differs; SHIAN_UPDATE_GOLDEN=1 rewrites it"


def test_golden_catch_up_summary_and_late_critical_notice(tmp_path):
    """April's notices of the renderer's month as 红河镇食安办's summary (text, card, HTML), and
    its banned-substance notice sent late under the 补发 note."""
    config, notices = april(tmp_path)
    renderer = Renderer(parse_settings(config, env={}))
    mine = [n for n in notices if "hh-fso" in n.recipients]
    summary = renderer.catch_up([n for n in mine if n.severity != "critical" and n.rule not in catchup.DEADLINES],
                                "hh-fso")
    _golden("catch_up.txt", f"== subject\n{summary.subject}\n== text\n{summary.text}== markdown\n{summary.markdown}")
    _golden("catch_up.html", summary.html)
    banned = next(n for n in mine if n.rule == "sample.banned_substance")
    late = renderer.catch_up([banned], "hh-fso")
    assert late.notice_ids == (banned.id,) and late.subject.startswith("【补发】【紧急】")
    _golden("catch_up_notice.txt", f"== subject\n{late.subject}\n== text\n{late.text}== markdown\n{late.markdown}")


def test_a_summary_a_late_notice_joins_while_it_is_rendered_goes_at_the_next_step_with_it(tmp_path):
    """Rendering runs off the event loop: a late notice that joins a 补发汇总 while the summary is
    being rendered keeps it from being claimed without that notice; the next step sends it with
    both, each once."""
    w = World(tmp_path, group_wait_seconds=0)
    first = sample(1, at=local("2026-04-10T10:00:00"), recipients=("hh-fso",))
    joined = sample(2, at=local("2026-04-11T10:00:00"), recipients=("hh-fso",))
    w.submit(first)
    rendering, go_on = threading.Event(), threading.Event()
    real = w.dispatcher.renderer

    class Slow:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def catch_up(self, notices: list[Notice], dept: str, **kw: Any) -> Message:
            rendering.set()
            assert go_on.wait(10)
            return real.catch_up(notices, dept, **kw)

    w.dispatcher.renderer = Slow()

    async def step_with_a_join() -> int:
        step = asyncio.ensure_future(w.dispatcher.step())
        assert await asyncio.to_thread(rendering.wait, 10)
        w.submit(joined)  # on the event loop, while the summary is rendered on the render thread
        go_on.set()
        return await step

    assert asyncio.run(step_with_a_join()) == 0
    assert w.messages() == [] and w.row(first, "hh-fso")[0] == w.row(joined, "hh-fso")[0] == "pending"
    w.dispatcher.renderer = real
    assert w.step() == 1
    [m] = w.messages("hh-fso")
    assert sorted(m.notice_ids) == sorted((first.id, joined.id))
    assert w.row(first, "hh-fso")[0] == w.row(joined, "hh-fso")[0] == "sent"
