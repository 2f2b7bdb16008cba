"""The outbox file: an accepted notice is kept with one delivery row per recipient and channel,
in one transaction; redeliveries are ignored; silences mute; readers for the dashboard."""
from __future__ import annotations

import copy
import dataclasses
import sqlite3
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from shian.notifiers.outbox import NoticeQuery, Outbox
from shian.notifiers.settings import parse as parse_settings
from shian.notifiers.silences import check
from shian.rules.config import load
from shian.rules.notice import Notice, notice_id

TZ = ZoneInfo("Asia/Shanghai")

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
    "notifiers": {"outbox": "data/outbox.sqlite", "smtp": {"host": "localhost", "from": "shian@county.example"}},
}


def make_settings(tmp_path: Path, **notifiers: Any):
    data = copy.deepcopy(CONFIG)
    data["notifiers"].update(notifiers)
    p = tmp_path / "county.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return parse_settings(load(p), env={})


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def make_notice(rule: str = "sample.unqualified", township: str = "红河镇", subject: str = "S1", *,
                at: str = "2026-04-27T10:00:00+08:00", severity: str = "warning", level: str = "town",
                recipients: tuple[str, ...] = ("hh-agri", "hh-fso"), due: str | None = None) -> Notice:
    key = f"{rule}|{township}|{subject}"
    return Notice.from_json({"id": notice_id(key), "rule": rule, "severity": severity, "level": level,
                             "township": township, "recipients": list(recipients), "title": f"{rule} {subject}",
                             "at": at, "due": due, "event_ids": [subject], "key": key,
                             "facts": {"entity": subject}}, TZ)


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


NOW = t("2026-04-27T10:00:00")


def test_outbox_path_is_resolved_next_to_the_config_and_uses_wal(settings, tmp_path):
    assert settings.outbox == tmp_path / "data" / "outbox.sqlite"
    with Outbox(settings.outbox, settings) as ob:
        assert ob.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert settings.outbox.exists()


def test_one_delivery_row_per_recipient_and_channel(settings):
    """hh-agri has email; hh-fso has email and a WeCom robot: three rows, all pending."""
    n = make_notice()
    with Outbox(settings.outbox, settings) as ob:
        assert ob.add(n, NOW) is True
        rows = ob.deliveries_of(n.id)
    assert sorted((r.dept, r.channel) for r in rows) == [("hh-agri", "email"), ("hh-fso", "email"), ("hh-fso", "wecom")]
    assert {r.state for r in rows} == {"pending"}
    assert {(r.rule, r.township) for r in rows} == {("sample.unqualified", "红河镇")}
    assert all(r.attempts == 0 and r.sent_at is None and r.ref is None for r in rows)


def test_a_redelivered_notice_with_the_same_id_is_ignored(settings):
    n = make_notice()
    with Outbox(settings.outbox, settings) as ob:
        assert ob.add(n, NOW) is True
        assert ob.add(copy.deepcopy(n), NOW + timedelta(minutes=5)) is False
        assert len(ob.deliveries_of(n.id)) == 3
        assert len(ob.notices()) == 1


def test_an_accepted_notice_survives_a_restart(settings):
    n = make_notice()
    ob = Outbox(settings.outbox, settings)
    ob.add(n, NOW)
    ob.db.close()  # no clean shutdown of the object
    with Outbox(settings.outbox, settings) as again:
        assert again.notice(n.id).to_json() == n.to_json()
        assert len(again.deliveries_of(n.id)) == 3
        assert again.add(n, NOW) is False


def test_add_is_one_transaction_nothing_is_kept_when_it_fails_half_way(settings, monkeypatch):
    """A failure while the second department's rows are written leaves no trace, so the
    notice is accepted in full when it comes again."""
    n = make_notice()
    real = type(settings).channels_of
    calls = []

    def failing(self, dept):
        calls.append(dept)
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return real(self, dept)

    with Outbox(settings.outbox, settings) as ob:
        monkeypatch.setattr(type(settings), "channels_of", failing)
        with pytest.raises(sqlite3.OperationalError):
            ob.add(n, NOW)
        monkeypatch.setattr(type(settings), "channels_of", real)
        assert ob.notices() == [] and ob.state_counts()["pending"] == 0
        assert ob.add(n, NOW) is True
        assert len(ob.deliveries_of(n.id)) == 3


def test_a_full_database_is_reported_as_full_and_taken_again_once_there_is_room(settings):
    """SQLite rolls a transaction back itself when the file cannot grow: the error raised is
    that one (not "no transaction is active"), nothing is half kept, and the outbox takes
    notices again once there is room."""
    notices = [make_notice(subject=f"S{i}") for i in range(400)]
    with Outbox(settings.outbox, settings) as ob:
        pages = ob.db.execute("PRAGMA page_count").fetchone()[0]
        ob.db.execute(f"PRAGMA max_page_count={pages + 2}")
        with pytest.raises(sqlite3.OperationalError, match="full"):
            ob.add_all(notices, NOW)
        assert not ob.db.in_transaction and ob.notices() == []
        ob.db.execute("PRAGMA max_page_count=1073741823")
        assert all(ob.add_all(notices, NOW))
        assert len(ob.notices()) == 400


def test_a_department_without_a_channel_gets_no_row_but_the_notice_is_listed_for_it(settings):
    n = make_notice(township="板桥镇", recipients=("bq-fso",))
    with Outbox(settings.outbox, settings) as ob:
        ob.add(n, NOW)
        assert ob.deliveries_of(n.id) == []
        assert [x.id for x in ob.notices(dept="bq-fso")] == [n.id]


def test_notice_queries_by_time_and_department_and_open_deadlines(settings):
    a = make_notice(subject="A", at="2026-04-26T09:00:00+08:00", due="2026-07-25T09:00:00+08:00")
    b = make_notice(subject="B", at="2026-04-27T09:00:00+08:00", recipients=("hh-fso",))
    c = make_notice(rule="report.overdue", subject="C", at="2026-04-27T00:00:00+08:00", recipients=("county-fso",),
                    due="2026-04-27T09:30:00+08:00")
    with Outbox(settings.outbox, settings) as ob:
        for n in (b, a, c):
            ob.add(n, NOW)
        assert [x.id for x in ob.notices()] == [a.id, c.id, b.id]
        assert [x.id for x in ob.notices(t("2026-04-27T00:00:00"), t("2026-04-28T00:00:00"))] == [c.id, b.id]
        assert [x.id for x in ob.notices(dept="hh-agri")] == [a.id]
        assert [x.id for x in ob.notices(until=t("2026-04-27T00:00:00"), dept="hh-fso")] == [a.id]
        assert [x.id for x in ob.open_deadlines("hh-fso", NOW)] == [a.id]
        assert [x.to_json() for x in ob.open_deadlines("county-fso", t("2026-04-27T09:00:00"))] == [c.to_json()]
        assert ob.open_deadlines("county-fso", NOW) == []


#: five notices, added in this order: name → (rule, township, at, severity, recipients)
PAGED = {
    "a": ("sample.unqualified", "红河镇", "2026-04-26T09:00:00+08:00", "warning", ("hh-agri", "hh-fso")),
    "b": ("sample.banned_substance", "红河镇", "2026-04-27T09:00:00+08:00", "critical", ("hh-fso",)),
    "c": ("report.overdue", "板桥镇", "2026-05-02T00:00:00+08:00", "warning", ("bq-fso",)),
    "d": ("report.reminder", "板桥镇", "2026-05-02T00:00:00+08:00", "info", ("bq-fso",)),
    "e": ("sample.unqualified", "板桥镇", "2026-04-30T10:00:00+08:00", "warning", ("bq-fso", "county-fso")),
}
#: (query, offset, limit, the names listed in order, how many match)
PAGE_CASES = [
    (NoticeQuery(), 0, 50, "dceba", 5),                                     # newest first; ties: later added first
    (NoticeQuery(order="severity"), 0, 50, "bcead", 5),                     # critical, warnings, info
    (NoticeQuery(), 1, 2, "ce", 5),
    (NoticeQuery(), 5, 2, "", 5),
    (NoticeQuery(township="红河镇"), 0, 50, "ba", 2),
    (NoticeQuery(rule="sample.unqualified"), 0, 50, "ea", 2),
    (NoticeQuery(severity="warning"), 0, 50, "cea", 3),
    (NoticeQuery(dept="hh-fso"), 0, 50, "ba", 2),
    (NoticeQuery(dept="county-fso", township="板桥镇"), 0, 50, "e", 1),
    (NoticeQuery(since=t("2026-04-27T09:00:00"), until=t("2026-05-02T00:00:00")), 0, 50, "eb", 2),
    (NoticeQuery(exclude=("b", "c")), 0, 50, "dea", 3),
    (NoticeQuery(ids=("a", "e", "zzz")), 0, 50, "ea", 2),
    (NoticeQuery(ids=("a", "e", "a"), order="ids"), 0, 50, "ae", 2),
    (NoticeQuery(ids=("b", "c", "e"), exclude=("c",), order="ids"), 0, 1, "b", 2),
    (NoticeQuery(ids=()), 0, 50, "", 0),
]


@pytest.mark.parametrize("query, offset, limit, names, total", PAGE_CASES)
def test_notice_page_filters_orders_and_pages_in_the_outbox(settings, query, offset, limit, names, total):
    """The dashboard's list is asked of the outbox: each field narrows, ``ids`` / ``exclude``
    keep or leave out notices by id, pages are cut in SQL, and the counts by severity agree."""
    made = {name: make_notice(rule, tw, name, at=at, severity=sev, recipients=rec)
            for name, (rule, tw, at, sev, rec) in PAGED.items()}
    by_id = {n.id: name for name, n in made.items()}
    real = dataclasses.replace(query, ids=None if query.ids is None else tuple(made[i].id if i in made else i
                                                                                   for i in query.ids),
                               exclude=tuple(made[i].id for i in query.exclude))
    with Outbox(settings.outbox, settings) as ob:
        for n in made.values():
            ob.add(n, NOW)
        count, page = ob.notice_page(real, offset, limit)
        assert ("".join(by_id[n.id] for n in page), count) == (names, total)
        matching = ob.notice_page(real, 0, 50)[1]
        assert ob.notice_counts(real) == dict(Counter(n.severity for n in matching))


def test_notice_span_and_an_order_that_needs_ids(settings):
    """The span is the first and last ``at`` (None when empty); ordering by ids without ids is refused."""
    with Outbox(settings.outbox, settings) as ob:
        assert ob.notice_span() is None
        for name, (rule, tw, at, sev, rec) in PAGED.items():
            ob.add(make_notice(rule, tw, name, at=at, severity=sev, recipients=rec), NOW)
        assert ob.notice_span() == (t("2026-04-26T09:00:00"), t("2026-05-02T00:00:00"))
        with pytest.raises(ValueError):
            ob.notice_page(NoticeQuery(order="ids"))
        with pytest.raises(ValueError):
            ob.notice_page(NoticeQuery(order="random()"))


def test_a_notice_from_a_department_the_config_does_not_know_is_kept_without_rows(settings, caplog):
    n = make_notice(recipients=("ghost", "hh-agri"))
    with Outbox(settings.outbox, settings) as ob:
        assert ob.add(n, NOW)
        assert [(r.dept, r.channel) for r in ob.deliveries_of(n.id)] == [("hh-agri", "email")]
    assert "ghost" in caplog.text


# -- silences --------------------------------------------------------------------------------


def test_run_time_silences_are_listed_until_they_end_and_can_be_expired(settings):
    with Outbox(settings.outbox, settings) as ob:
        past = ob.add_silence("report.overdue", None, t("2026-04-01T00:00:00"), t("2026-04-02T00:00:00"), now=NOW)
        active = ob.add_silence(None, "红河镇", t("2026-04-27T00:00:00"), t("2026-04-28T00:00:00"),
                                "镇里停电", "county-fso", now=NOW)
        future = ob.add_silence("sample.unqualified", "板桥镇", t("2026-05-01T00:00:00"), t("2026-05-06T00:00:00"),
                                now=NOW)
        listed = ob.silences(NOW)
        assert [s.id for s in listed] == [active, future]
        assert (listed[0].township, listed[0].comment, listed[0].by) == ("红河镇", "镇里停电", "county-fso")
        assert past not in [s.id for s in ob.silences(NOW)]
        assert [s.id for s in ob.silences(t("2026-04-28T00:00:00"))] == [future]  # ended by itself
        assert ob.expire_silence(future, now=NOW) is True
        assert ob.expire_silence(future, now=NOW) is False
        assert ob.expire_silence(past, now=NOW) is False
        assert [s.id for s in ob.silences(NOW)] == [active]
    with Outbox(settings.outbox) as reader:  # the command line reads without settings
        assert [s.id for s in reader.silences(NOW)] == [active]


@pytest.mark.parametrize("at,muted", [
    ("2026-04-26T23:59:59+08:00", False),
    ("2026-04-27T00:00:00+08:00", True),     # start inclusive
    ("2026-04-27T23:59:59+08:00", True),
    ("2026-04-28T00:00:00+08:00", False),    # end exclusive
])
def test_a_silenced_notice_is_kept_with_its_rows_silenced(settings, at, muted):
    n = make_notice(at=at)
    other = make_notice(township="板桥镇", recipients=("county-fso",), at=at)
    with Outbox(settings.outbox, settings) as ob:
        ob.add_silence(None, "红河镇", t("2026-04-27T00:00:00"), t("2026-04-28T00:00:00"), now=NOW)
        ob.add(n, NOW)
        ob.add(other, NOW)
        assert {r.state for r in ob.deliveries_of(n.id)} == ({"silenced"} if muted else {"pending"})
        assert {r.state for r in ob.deliveries_of(other.id)} == {"pending"}
        assert ob.is_silenced(n.id) is muted
        assert ob.notice(n.id).to_json() == n.to_json()


def test_silences_from_the_config_mute_by_rule_and_township(tmp_path):
    settings = make_settings(tmp_path, silences=[
        {"rule": "report.overdue", "township": "红河镇", "start": "2026-04-01", "end": "2026-05-01", "comment": "系统迁移"}])
    hit = make_notice(rule="report.overdue")
    other_rule = make_notice(rule="sample.unqualified")
    other_town = make_notice(rule="report.overdue", township="板桥镇", recipients=("county-fso",))
    with Outbox(settings.outbox, settings) as ob:
        for n in (hit, other_rule, other_town):
            ob.add(n, NOW)
        assert [ob.is_silenced(n.id) for n in (hit, other_rule, other_town)] == [True, False, False]
        assert ob.state_counts()["silenced"] == 3


def test_silence_check_explains_what_is_wrong_in_chinese(settings):
    start, end = t("2026-05-01T00:00:00"), t("2026-05-02T00:00:00")
    assert check(settings.config, "report.overdue", "红河镇", start, end) == []
    assert check(settings.config, "delivery.failed", None, start, end) == []
    problems = check(settings.config, "report.overdu", "红河", end, start)
    assert len(problems) == 3 and "未知的规则" in problems[0] and "未配置的乡镇" in problems[1]
    assert "规则或乡镇" in check(settings.config, None, None, start, end)[0]
    with Outbox(settings.outbox, settings) as ob, pytest.raises(ValueError):
        ob.add_silence(None, None, start, end)


@pytest.mark.parametrize("chunk", [1, 2, 500])
def test_add_many_stores_what_add_stores_one_by_one(tmp_path, chunk):
    """Many notices per transaction: the same notices, rows and groups as one add each; a
    notice already stored (or twice in the list) counts once."""
    notices = [make_notice(subject=f"S{i}", recipients=("hh-agri", "hh-fso")[: 1 + i % 2]) for i in range(5)]
    notices += [notices[1], make_notice("inspection.overdue", subject="S9")]
    tables = []
    for name, many in (("one", False), ("many", True)):
        (tmp_path / name).mkdir()
        s = make_settings(tmp_path / name, group_wait_seconds=30)
        with Outbox(s.outbox, s) as ob:
            ob.add(notices[0], NOW)
            new = ob.add_many(notices, NOW, chunk=chunk) if many else sum(ob.add(n, NOW) for n in notices)
            assert new == 5
            tables.append([ob.db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                           for table in ("notices", "recipients", "batches", "deliveries")])
    assert [[tuple(r) for r in rows] for rows in tables[0]] == [[tuple(r) for r in rows] for rows in tables[1]]


def test_a_claim_leaves_pending_only_the_batches_a_notice_joined_since_they_were_read(tmp_path):
    """claim(unchanged=True) over several batches (one query for them all): the batch a notice
    joined after it was read stays pending, with the new row; the others are claimed."""
    s = make_settings(tmp_path, group_wait_seconds=30)
    with Outbox(s.outbox, s) as ob:
        ob.add(make_notice(subject="S1", recipients=("hh-fso",)), NOW)
        ob.add(make_notice("inspection.overdue", subject="S2", recipients=("hh-fso",)), NOW)
        ob.add(make_notice("report.overdue", subject="S3", recipients=("hh-fso",)), NOW)
        later = NOW + timedelta(minutes=31)
        read = ob.due(later, channels=("email",))
        assert len(read) == 3 and all(len(b.notices) == 1 for b in read)
        ob.add(make_notice("inspection.overdue", subject="S4", recipients=("hh-fso",)), NOW)  # joins S2's batch
        claimed = ob.claim([(b, None) for b in read], later, unchanged=True)
        assert sorted(b.notices[0].facts["entity"] for b in claimed) == ["S1", "S3"]
        joined = next(b for b in read if b.notices[0].facts["entity"] == "S2")
        states = ob.db.execute("SELECT state FROM deliveries WHERE batch_id = ?", (joined.id,)).fetchall()
        assert sorted(r[0] for r in states) == ["pending", "pending"]
        [again] = [b for b in ob.due(later, channels=("email",)) if b.id == joined.id]
        assert sorted(n.facts["entity"] for n in again.notices) == ["S2", "S4"]
