"""The resolution tally (shian.rules.measures.resolutions): a notice's first 签收 and first 办结
against the ``notice.unresolved`` deadline, as the engine decided on them — what the notice page
shows. ``working_days: 10``: 签收 on Friday 2026-06-05 gives the deadline 2026-06-23T00:00 (§6)."""
from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from conftest import config_dict, t
from shian.notifiers.routing import recipients
from shian.rules.config import parse
from shian.rules.engine import Engine
from shian.rules.events import Rejected, Validator
from shian.rules.families import FAMILIES
from shian.rules.notice import Notice

DEADLINE = "2026-06-23T00:00:00"
ON = {"notice.unresolved": {"enabled": True}}


def sample(sid: str = "S1", at: str = "2026-06-05T08:00:00", **kw: Any) -> dict:
    return {"type": "sampling_result", "id": sid, "township": "红河镇", "sampled_at": at, "entity": "阳光餐馆",
            "category": "蔬菜", "items": [], "conclusion": "不合格", **kw}


def ack(aid: str, notice: str, at: str, action: str = "签收", by: str = "hh-agri") -> dict:
    return {"type": "ack", "id": aid, "township": "红河镇", "notice_id": notice, "by": by, "action": action,
            "acked_at": at}


def run(events: list[dict], rules: dict | None = ON, *, durable: bool = False,
        overrides: dict | None = None) -> tuple[Engine, list[Notice]]:
    config = parse(config_dict(rules, overrides), path="<test>")
    raised: list[Notice] = []
    e = Engine(config, recipients, raised.append, families=FAMILIES, durable=durable)
    v = Validator(config.known())
    for obj in events:
        ev = v.from_object(obj)
        if e.clock is not None and ev.time - e.clock > timedelta(days=50):
            e.advance(ev.time - timedelta(days=1))
        try:
            e.admit(ev)
        except Rejected:
            pass
    return e, raised


def the_notice(raised: list[Notice], rule: str = "sample.unqualified") -> Notice:
    return next(n for n in raised if n.rule == rule)


NID = "sample.unqualified|红河镇|S1"   # acks may name a notice by its key (§1)


@pytest.mark.parametrize("acks, now, status, closed_at, fires", [
    ([("签收", "2026-06-05T10:00:00"), ("办结", "2026-06-22T23:59:59")], "2026-07-01", "closed", "2026-06-22T23:59:59",
     False),
    ([("签收", "2026-06-05T10:00:00"), ("办结", DEADLINE)], "2026-07-01", "closed_late", DEADLINE, True),  # at it: late
    ([("签收", "2026-06-05T10:00:00")], "2026-06-22T23:59:59", "open", None, True),
    ([("签收", "2026-06-05T10:00:00")], DEADLINE, "overdue", None, True),
    ([("办结", "2026-06-05T10:00:00")], "2026-07-01", "closed", "2026-06-05T10:00:00", False),  # 办结 alone: both
    ([("签收", "2026-06-05T10:00:00"), ("签收", "2026-06-08T10:00:00")], "2026-06-22", "open", None, True),  # nothing new
])
def test_status_against_the_deadline(acks, now, status, closed_at, fires):
    """The first 签收 sets the deadline (the same resolve_deadline the rule arms); a 办结 before it is
    on time, at it late; without one the deadline passing makes it overdue; notice.unresolved
    fires exactly when no 办结 came before the deadline."""
    events = [sample(), *(ack(f"A{i}", NID, at, action) for i, (action, at) in enumerate(acks))]
    e, raised = run(events)
    e.advance(t(DEADLINE) + timedelta(hours=1))
    [row] = e.figures("resolution", the_notice(raised), t(now))
    assert (row.signed_at, row.deadline, row.status, row.watched) == (t(acks[0][1]), t(DEADLINE), status, True)
    assert row.closed_at == (t(closed_at) if closed_at else None)
    assert bool([n for n in raised if n.rule == "notice.unresolved"]) is fires
    assert fires is (row.closed_at is None or row.closed_at >= row.deadline)


def test_a_signing_after_its_deadline_is_not_watched():
    """A 签收 accepted once its deadline is behind the clock: shown, not watched, and no 督办 follows."""
    events = [sample(), sample("S2", "2026-06-30T10:00:00"), ack("A1", NID, "2026-06-05T10:00:00")]
    e, raised = run(events)
    [row] = e.figures("resolution", the_notice(raised), t("2026-07-01"))
    assert (row.watched, row.status) == (False, "overdue")
    assert not [n for n in raised if n.rule == "notice.unresolved"]


@pytest.mark.parametrize("rules, by, shown", [
    (ON, "hh-agri", True),
    (None, "hh-agri", False),     # notice.unresolved off (the default): no row
    (ON, "bq-fso", False),        # not a recipient: the Acks rule refuses the ack, so it is not tallied
])
def test_rows_only_when_the_rule_follows_the_notice(rules, by, shown):
    """A row only for an accepted 签收, with the rule on."""
    e, raised = run([sample(), ack("A1", NID, "2026-06-05T10:00:00", by=by)], rules)
    assert bool(e.figures("resolution", the_notice(raised), t("2026-06-10"))) == shown


def test_notices_the_rules_do_not_follow_up_have_none():
    """Info notices and the notice.* rules' own notices are not followed up: no row, even signed for."""
    rules = {**ON, "notice.unacknowledged": {"enabled": True, "hours": {"warning": 1}}}
    e, raised = run([sample(), sample("S2", "2026-06-05T12:00:00"),
                     ack("A1", NID, "2026-06-05T13:00:00")], rules)
    unacked = the_notice(raised, "notice.unacknowledged")
    e.admit(Validator(e.config.known()).from_object(ack("A9", unacked.id, "2026-06-05T13:10:00", by="county-fso")))
    assert e.figures("resolution", unacked, t("2026-06-10")) == []
    signed = the_notice(raised)
    assert e.figures("resolution", signed, t("2026-06-10")) != []
    assert e.figures("resolution", dataclasses.replace(signed, severity="info"), t("2026-06-10")) == []


def test_the_tally_is_in_the_snapshot_and_bounded():
    """A restored engine shows the same row; half a year later (dedup_days 30) it is forgotten."""
    events = [sample(), ack("A1", NID, "2026-06-05T10:00:00")]
    e, raised = run(events, durable=True)
    n = the_notice(raised)
    back = Engine.restore(e.snapshot(), e.config, recipients, lambda x: None)
    assert back.figures("resolution", n, t("2026-06-10")) == e.figures("resolution", n, t("2026-06-10")) != []
    short, _ = run(events, overrides={"dedup_days": 30})
    short.advance(t("2026-07-20"))
    assert list(short.measures.resolutions.notices) == [n.id]   # the deadline (23 June) is within 30 days
    short.advance(t("2026-08-20"))
    assert short.measures.resolutions.notices == {}


def test_a_period_that_is_not_a_notice_is_refused():
    """figures("resolution", …) takes a notice, nothing else."""
    e, _ = run([sample()])
    with pytest.raises(ValueError):
        e.figures("resolution", "2026-06", t("2026-06-10"))
