"""Hypothesis strategies for event streams over a small county, and the runs the property tests
compare (tests/test_properties.py).

The county has three townships; its rules are tuned so that a few months of a few dozen
events reach the time-based rules: disposals due after 20 days, pass rates judged from 3
samples, silence after 10 days, ``notice.unacknowledged`` on. Events are built from templates
of each type of §1, at times between mid-January and late May 2026 — across the reports due
on the 25th, the months' pass-rate judgements, 春节 (17 Feb) and 劳动节 (1 May) — with a share
of them at exactly those deadlines, and some arriving late (after events later than them).
Invalid lines are made from valid events by breaking one thing that validation alone rejects.

Streams are lists of lines (text; written to a JSON Lines file as UTF-8 by :func:`encode`, a
lone surrogate as its bytes).
"""
from __future__ import annotations

import json
import tempfile
from functools import partial
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from hypothesis import strategies as st

from shian.notifiers.routing import recipients
from shian.rules.config import Config, parse
from shian.rules.engine import Engine, Status
from shian.rules.events import Rejected, Validator
from shian.rules.notice import notice_id
from shian.streams.replay import Replay

CONFIG_DICT: dict[str, Any] = {
    "timezone": "Asia/Shanghai",
    "county": {"name": "西平县", "office": "county-fso", "escalation": ["county-lead"]},
    "min_event_date": "2020-01-01",
    "departments": {
        "county-fso": {"name": "县食安办"},
        "county-lead": {"name": "县食安办分管领导"},
        "hh-fso": {"name": "红河镇食安办"},
        "hh-agri": {"name": "红河镇农技中心"},
        "hh-vet": {"name": "红河镇畜牧站"},
        "bq-fso": {"name": "板桥镇食安办"},
        "bq-vet": {"name": "板桥镇畜牧站"},
        "cs-fso": {"name": "出山镇食安办"},
    },
    "townships": {
        "红河镇": {"office": "hh-fso", "reporters": ["红河村", "新寨村"],
                   "routing": {"蔬菜": "hh-agri", "畜禽肉": "hh-vet", "屠宰场": "hh-vet"}},
        "板桥镇": {"office": "bq-fso", "reporters": ["板桥村"], "routing": {"畜禽肉": "bq-vet"}},
        "出山镇": {"office": "cs-fso", "reporters": ["出山村", "镇卫生院"]},
    },
    "rules": {
        "sample.unqualified": {"disposal_days": 20},
        "sample.pass_rate_low": {"min_samples": 3},
        "source.silent": {"days": 10},
        "notice.unacknowledged": {"enabled": True},
    },
}
CONFIG: Config = parse(CONFIG_DICT, path="<property-tests>")
#: The same county with another zone and short windows everywhere, so that the months also
#: forget (ids, tallies, issued notices after 15 days) and every deadline comes round often.
#: A resent id is a new event after ``dedup_days`` (§1), so only the properties that do not
#: depend on ids being remembered run on it.
TIGHT: Config = parse({**CONFIG_DICT, "timezone": "Asia/Urumqi", "dedup_days": 15, "max_jump_days": 20, "rules": {
    "sample.unqualified": {"disposal_days": 3},
    "sample.pass_rate_low": {"min_samples": 1, "grace_days": 2, "county_margin": 0.5},
    "report.reminder": {"due_day": 10, "remind_days_before": 2}, "report.escalation": {"escalate_after_days": 3},
    "campaign.reminder": {"remind_days_before": 3}, "campaign.missed": {"window_days": 7},
    "entity.repeat_offender": {"window_days": 10}, "source.silent": {"days": 3},
    "notice.unacknowledged": {"enabled": True, "hours": {"critical": 4, "warning": 8}},
}}, path="<property-tests: tight>")
CONFIGS = {"county": CONFIG, "tight": TIGHT}
configs = st.sampled_from(sorted(CONFIGS))
TOWNSHIPS = tuple(CONFIG_DICT["townships"])
CST = timezone(timedelta(hours=8))
START = datetime(2026, 1, 12, tzinfo=CST)
SPAN_MINUTES = 130 * 24 * 60  # to 2026-05-22

#: Instants the rules have deadlines at (report reminder 09:00 on the 22nd, overdue 00:00 on
#: the 26th, escalation five days later, pass rates at the 1st, 春节 and 劳动节 with their
#: reminders ten days before): events exactly there test "a deadline at an event's time fires first".
DEADLINES = tuple(datetime(*parts, tzinfo=CST) for parts in (
    (2026, 1, 22, 9), (2026, 1, 26), (2026, 1, 31), (2026, 2, 1), (2026, 2, 7, 9), (2026, 2, 17),
    (2026, 2, 22, 9), (2026, 2, 26), (2026, 3, 1), (2026, 3, 3), (2026, 3, 22, 9), (2026, 3, 26),
    (2026, 3, 31), (2026, 4, 1), (2026, 4, 21, 9), (2026, 4, 22, 9), (2026, 4, 26), (2026, 5, 1),
))

SAMPLE_IDS = tuple(f"YP-{n:02d}" for n in range(1, 21))
INSPECTION_IDS = tuple(f"JC-{n:02d}" for n in range(1, 7))
ENTITIES = ("惠民超市", "老王肉铺", "福满饭店", "中心学校食堂")
CATEGORIES = ("蔬菜", "畜禽肉", "水果", "粮食")
BANNED_ITEM = "克伦特罗"


# -- times ---------------------------------------------------------------------------------

instants = st.one_of(
    st.integers(0, SPAN_MINUTES).map(lambda m: START + timedelta(minutes=m)),
    st.sampled_from(DEADLINES),
)
Spelling = Callable[[datetime], str]


def spell(how: str, at: datetime) -> str:
    """``at`` as the contract allows it: local without offset, +08:00, UTC, to the minute or
    with a fraction of a second, or (at local midnight) a bare date."""
    if how == "offset":
        return at.isoformat()
    if how == "utc":
        return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if how == "minutes":
        return at.strftime("%Y-%m-%dT%H:%M")
    if how == "fraction":
        return at.strftime("%Y-%m-%dT%H:%M:%S.25")
    if how == "date" and at.hour == at.minute == 0:
        return at.strftime("%Y-%m-%d")
    return at.strftime("%Y-%m-%dT%H:%M:%S")


spellings: st.SearchStrategy[Spelling] = st.sampled_from(
    ["local", "local", "offset", "utc", "minutes", "fraction", "date"]).map(lambda how: partial(spell, how))


def _hours(lo: float, hi: float) -> st.SearchStrategy[timedelta]:
    return st.integers(int(lo * 60), int(hi * 60)).map(lambda m: timedelta(minutes=m))


# -- one valid event per type ----------------------------------------------------------------
# Each template draws everything but the event time and returns how to make the event at a time
# (``make(at)``), so that a stream's events shrink one by one whatever their times. Strategies
# are built once, here, not in the templates: building them on every draw makes generation
# and, above all, shrinking several times slower.

Maker = Callable[[datetime], dict[str, Any]]
one_in_four = st.integers(0, 3).map(lambda n: n == 0)
booleans = st.booleans()
within_a_week = _hours(0, 7 * 24)
within_6_hours = _hours(0, 6)
banquet_ahead = _hours(-2, 72)  # held before it was registered: late
ids = {name: st.sampled_from(pool) for name, pool in (
    ("sample", SAMPLE_IDS), ("inspection", INSPECTION_IDS), ("incident", ("SJ-1", "SJ-2", "SJ-3")),
    ("disposal", ("CZ-1", "CZ-2", "CZ-3", "CZ-4")), ("banquet", ("YX-1", "YX-2", "YX-3")),
    ("ack", tuple(f"ACK-{n}" for n in range(1, 7))), ("copy", (1, 2)))}
pick = {name: st.sampled_from(values) for name, values in {
    "item": ["ok", "over", "banned", "banned_zero", "text", "below"], "text": ["未检出", "ND", "阴性", "阳性"],
    "ok": [0.01, 0.05, 0.1], "over": [0.11, 0.5], "verdict": ["合格", "不合格"],
    "program": ["food_sampling", "food_sampling", "agri_monitoring", "rapid_test"], "entity": ENTITIES,
    "sampled_entity": ENTITIES[:3], "category": CATEGORIES, "outcome": ["合格", "合格", "限期整改", "责令停业", "立案查处"],
    "entity_type": ["学校食堂", "餐饮服务", "屠宰场", "食品销售"],
    "inspection_type": ["日常检查", "双随机", "节前联合检查", "复查"], "back": [0, 0, 0, 28],
    "kind": ["食物中毒", "食源性疾病聚集"], "grade": ["Ⅲ", "Ⅳ", "一般"], "host": ["张玉山", "李家"],
    "action": ["签收", "办结"],
}.items()}
staff = st.integers(0, 20).flatmap(lambda total: st.tuples(st.just(total), st.integers(0, total)))
rectify_days = st.integers(-2, 20)
cases = st.integers(0, 40)
guests = st.integers(20, 200)
measures = st.lists(st.sampled_from(["下架", "召回", "立案"]), max_size=2, unique=True)


@st.composite
def _item(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(pick["item"])
    if kind in ("banned", "banned_zero"):
        return {"item": BANNED_ITEM, "value": 0.8 if kind == "banned" else 0, "unit": "μg/kg", "limit": 0}
    if kind == "text":
        return {"item": "有机磷农药", "value": draw(pick["text"])}
    if kind == "below":
        return {"item": "镉", "value": "<0.01", "limit": 0.2}
    item = {"item": "毒死蜱", "value": draw(pick[kind]), "unit": "mg/kg", "limit": 0.1}
    if draw(booleans):
        item["result"] = "合格" if kind == "ok" else "不合格"
    return item


items = st.lists(_item(), max_size=2)


@st.composite
def sampling_result(draw: st.DrawFn, township: str) -> Maker:
    entity = draw(pick["sampled_entity"])
    fixed: dict[str, Any] = {"type": "sampling_result", "id": draw(ids["sample"]), "township": township,
                             "program": draw(pick["program"]), "entity": entity, "category": draw(pick["category"]),
                             "items": draw(items)}
    if draw(one_in_four):  # with an id it is another entity than the name alone
        fixed["entity_id"] = f"92411721MA{ENTITIES.index(entity):04d}"
    if draw(one_in_four):
        fixed["conclusion"] = draw(pick["verdict"])
    lag = draw(within_a_week) if draw(booleans) else None  # reported later: the report date is the event time
    sampled, reported = draw(spellings), draw(spellings)

    def make(at: datetime) -> dict[str, Any]:
        if lag is None:
            return {**fixed, "sampled_at": sampled(at)}
        return {**fixed, "sampled_at": sampled(at - lag), "reported_at": reported(at)}
    return make


@st.composite
def inspection(draw: st.DrawFn, township: str) -> Maker:
    outcome = draw(pick["outcome"])
    fixed: dict[str, Any] = {"type": "inspection", "id": draw(ids["inspection"]), "township": township,
                             "entity": draw(pick["entity"]), "entity_type": draw(pick["entity_type"]),
                             "inspection_type": draw(pick["inspection_type"]), "outcome": outcome}
    if draw(booleans):
        fixed["license_valid"] = draw(booleans)
    if draw(booleans):
        fixed["staff_total"], fixed["staff_with_health_cert"] = draw(staff)
    days, inspected = draw(rectify_days), draw(spellings)

    def make(at: datetime) -> dict[str, Any]:
        ev = {**fixed, "inspected_at": inspected(at)}
        if outcome == "限期整改":
            ev["rectify_by"] = (at + timedelta(days=days)).strftime("%Y-%m-%d")
        return ev
    return make


@st.composite
def monthly_report(draw: st.DrawFn, township: str) -> Maker:
    reporter = draw(reporters[township])
    back = draw(pick["back"])  # mostly for the month it is sent in, else the one before
    copy, submitted = draw(ids["copy"]), draw(spellings)

    def make(at: datetime) -> dict[str, Any]:
        month = at - timedelta(days=back)
        period = f"{month.year:04d}-{month.month:02d}"
        return {"type": "monthly_report", "id": f"{reporter}-{period}-{copy}", "township": township,
                "reporter": reporter, "period": period, "submitted_at": submitted(at)}
    return make


@st.composite
def incident(draw: st.DrawFn, township: str) -> Maker:
    fixed: dict[str, Any] = {"type": "incident", "id": draw(ids["incident"]), "township": township,
                             "kind": draw(pick["kind"])}
    if draw(booleans):
        fixed.update(cases=draw(cases), grade=draw(pick["grade"]))
    delay, occurred, reported = draw(within_6_hours), draw(spellings), draw(spellings)
    return lambda at: {**fixed, "occurred_at": occurred(at - delay), "reported_at": reported(at)}


@st.composite
def disposal(draw: st.DrawFn, township: str) -> Maker:
    fixed = {"type": "disposal", "id": draw(ids["disposal"]), "township": township,
             "sample_id": draw(ids["sample"]), "measures": draw(measures)}
    disposed = draw(spellings)
    return lambda at: {**fixed, "disposed_at": disposed(at)}


@st.composite
def banquet(draw: st.DrawFn, township: str) -> Maker:
    fixed: dict[str, Any] = {"type": "banquet", "id": draw(ids["banquet"]), "township": township,
                             "host": draw(pick["host"]), "guests": draw(guests)}
    if draw(booleans):
        fixed.update(chef="王留根", chef_health_cert=draw(booleans))
    ahead, registered, held = draw(banquet_ahead), draw(spellings), draw(spellings)
    return lambda at: {**fixed, "registered_at": registered(at), "held_at": held(at + ahead)}


def _notice_keys(township: str) -> list[str]:
    """Keys of notices the other templates can raise, which an ack may name."""
    keys = [f"{rule}|{township}|{sid}" for sid in SAMPLE_IDS[:6]
            for rule in ("sample.unqualified", "sample.banned_substance", "sample.disposal_overdue")]
    keys += [f"inspection.severe_outcome|{township}|{iid}" for iid in INSPECTION_IDS[:3]]
    keys += [f"report.overdue|{township}|{r}|2026-0{m}" for r in CONFIG_DICT["townships"][township]["reporters"]
             for m in (1, 2, 3, 4)]
    keys += [f"incident.reported|{township}|SJ-1", f"campaign.missed|{township}|春节|2026-02-17"]
    return keys


reporters = {tw: st.sampled_from(t["reporters"]) for tw, t in CONFIG_DICT["townships"].items()}
#: what an ack names: mostly a notice's id, sometimes its key (both are accepted, §1)
named_notices = {tw: st.sampled_from([notice_id(k) for k in _notice_keys(tw)] * 4 + _notice_keys(tw))
                 for tw in TOWNSHIPS}
#: who signs: mostly the town office (a recipient of every town notice), else the county or another
signers = {tw: st.sampled_from([t["office"], t["office"], "county-fso", "hh-vet", "hh-agri"])
           for tw, t in CONFIG_DICT["townships"].items()}


@st.composite
def ack(draw: st.DrawFn, township: str) -> Maker:
    fixed = {"type": "ack", "id": draw(ids["ack"]), "township": township,
             "notice_id": draw(named_notices[township]), "by": draw(signers[township])}
    if draw(booleans):
        fixed["action"] = draw(pick["action"])
    acked = draw(spellings)
    return lambda at: {**fixed, "acked_at": acked(at)}


TEMPLATES: dict[str, Callable[[str], st.SearchStrategy[Maker]]] = {
    "sampling_result": sampling_result, "inspection": inspection, "monthly_report": monthly_report,
    "incident": incident, "disposal": disposal, "banquet": banquet, "ack": ack,
}
#: how often each type is drawn (samples most, as in the offices' feeds)
WEIGHTS = ("sampling_result",) * 6 + ("inspection",) * 2 + ("monthly_report",) * 3 + (
    "incident", "disposal", "disposal", "banquet", "ack", "ack")
#: and where (most in one township, so that its months reach ``min_samples`` and its entities repeat)
TOWNSHIP_WEIGHTS = ("红河镇",) * 3 + ("板桥镇",) * 2 + ("出山镇",)
makers: st.SearchStrategy[Maker] = st.sampled_from(
    [TEMPLATES[kind](township) for kind in WEIGHTS for township in TOWNSHIP_WEIGHTS]).flatmap(lambda maker: maker)


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def encode(line: str) -> bytes:
    """A line as it is in the file: UTF-8, a lone surrogate (never valid) as its three bytes."""
    return line.encode("utf-8", "surrogatepass")


def next_deadline(after: datetime) -> datetime:
    return next((d for d in DEADLINES if d > after), after)


#: the time from one event to the next: minutes to a week, none (the same instant), or up to
#: exactly the next deadline; rarely an event alone far ahead (past ``max_jump_days``: a year typo)
gaps = st.one_of(st.sampled_from(["same", "deadline", "deadline", "leap"]), within_a_week, within_a_week,
                 _hours(0, 36), _hours(0, 36))
#: how long after its event time an event arrives (among events up to ten days later)
lateness = st.one_of(st.just(timedelta(0)), st.just(timedelta(0)), _hours(0, 10 * 24))
first_instant = _hours(0, 60 * 24).map(lambda offset: START + offset)
# runs of steps: a list alone stays short on average, and a drawn length shrinks badly
runs_of_steps = st.lists(st.lists(st.tuples(gaps, lateness, makers), min_size=1, max_size=8), min_size=1, max_size=8)


@st.composite
def streams(draw: st.DrawFn) -> list[str]:
    """Valid events in arrival order (1 to 64, about 20): a walk through event time from a
    start in the first two months, with late arrivals."""
    at = draw(first_instant)
    timed = []
    for gap, late, make in (step for run in draw(runs_of_steps) for step in run):
        if gap == "leap":
            timed.append((at + timedelta(days=65) + late, make(at + timedelta(days=65))))
            continue
        at = next_deadline(at) if gap == "deadline" else at if gap == "same" else at + gap
        timed.append((at + late, make(at)))
    timed.sort(key=lambda arrival_event: arrival_event[0])
    return [dump(obj) for _, obj in timed]


#: ``--until``: none, anywhere up to a month after the events, or exactly at a deadline
untils = st.one_of(st.none(), st.integers(0, SPAN_MINUTES + 30 * 24 * 60).map(lambda m: START + timedelta(minutes=m)),
                   st.sampled_from(DEADLINES))


# -- lines validation alone rejects ------------------------------------------------------------

REQUIRED = {
    "sampling_result": ("id", "township", "sampled_at", "entity", "category", "items"),
    "inspection": ("id", "township", "inspected_at", "entity", "entity_type", "inspection_type", "outcome"),
    "monthly_report": ("id", "township", "reporter", "period", "submitted_at"),
    "incident": ("id", "township", "occurred_at", "reported_at", "kind"),
    "disposal": ("id", "township", "sample_id", "disposed_at"),
    "banquet": ("id", "township", "host", "held_at", "registered_at", "guests"),
    "ack": ("id", "township", "notice_id", "by", "acked_at"),
}
TIME_FIELDS = ("sampled_at", "reported_at", "inspected_at", "rectify_by", "submitted_at", "occurred_at",
               "disposed_at", "held_at", "registered_at", "acked_at")
#: (min_event_date is 2020-01-01: 00:30 at +09:00 on 1 January is still 2019 in local time)
BAD_TIMES = ("0001-01-01T00:00:00", "0001-01-01", "9999-12-31T23:59:59", "9999-12-31T23:59:59-14:00",
             "0001-01-01T00:00:00+14:00", "2019-12-31T23:59:59", "2020-01-01T00:30:00+09:00", "2100-01-01",
             "2026-02-30", "2026-13-01T00:00", "2026/4/1", "26-04-01", "2026-04-01T09:00+08:60", "2026-04-01 09:00")
WRONG_TYPES = {"township": 7, "id": 12, "items": "无", "guests": -1, "staff_total": 1.5, "license_valid": "是",
               "cases": "3人", "outcome": "良好", "program": "抽检", "inspection_type": None, "measures": "下架",
               "action": "确认", "conclusion": "基本合格", "sampled_at": 20260401}


@st.composite
def _broken_field(draw: st.DrawFn, obj: dict[str, Any]) -> dict[str, Any]:
    obj = dict(obj)
    how = draw(st.sampled_from(["missing", "null", "blank", "township", "time", "type", "surrogate"]))
    required = REQUIRED[obj["type"]]
    if how == "missing":
        del obj[draw(st.sampled_from(required))]
    elif how == "null":
        obj[draw(st.sampled_from(required))] = None
    elif how == "blank":
        obj[draw(st.sampled_from([f for f in required if isinstance(obj[f], str) and f not in TIME_FIELDS]))] = "  "
    elif how == "township":
        obj["township"] = draw(st.sampled_from(["不存在镇", "红和镇", "红河镇 ", "板桥"]))
    elif how == "time":
        name = draw(st.sampled_from([f for f in TIME_FIELDS if f in obj]))
        obj[name] = draw(st.sampled_from(BAD_TIMES + (("",) if name in required else ())))
    elif how == "type":
        name = draw(st.sampled_from([f for f in WRONG_TYPES if f in obj]))  # unknown fields are ignored
        obj[name] = WRONG_TYPES[name]
    else:
        obj["entity" if "entity" in obj else "id"] = "食品\ud800店"
    return obj


@st.composite
def _broken_rule(draw: st.DrawFn, obj: dict[str, Any], township: str) -> dict[str, Any]:
    """What only the config or §6's cross-field checks reject."""
    obj = dict(obj)
    how = draw(st.sampled_from(["reporter", "department", "rectify", "incident_order", "unknown_type"]))
    if how == "reporter":
        return {**obj, "type": "monthly_report", "reporter": "不在册村", "period": "2026-03",
                "submitted_at": "2026-03-20T09:00:00"}
    if how == "department":
        return {"type": "ack", "id": "ACK-X", "township": township, "notice_id": "0123456789abcdef",
                "by": "no-such-dept", "acked_at": "2026-03-01T09:00:00"}
    if how == "rectify":
        return {"type": "inspection", "id": "JC-X", "township": township, "inspected_at": "2026-03-01T09:00:00",
                "entity": "惠民超市", "entity_type": "食品销售", "inspection_type": "复查", "outcome": "限期整改"}
    if how == "incident_order":
        return {"type": "incident", "id": "SJ-X", "township": township, "occurred_at": "2026-03-01T12:00:00",
                "reported_at": "2026-03-01T11:59:59", "kind": "食物中毒"}
    return {**obj, "type": draw(st.sampled_from(["sample", "entity_register", "Inspection", ""]))}


@st.composite
def invalid_lines(draw: st.DrawFn) -> str:
    """A line that validation rejects whatever came before it."""
    how = draw(st.sampled_from(["field", "field", "field", "rule", "json", "not_object"]))
    valid = draw(makers)(draw(instants))
    if how == "field":
        obj = draw(_broken_field(valid))
    elif how == "rule":
        obj = draw(_broken_rule(valid, valid["township"]))
    elif how == "json":
        text = dump(valid)
        return text[:draw(st.integers(1, len(text) - 1))]  # a prefix of an object is never JSON
    else:
        return draw(st.sampled_from(["[1, 2]", '"event"', "42", "null", dump([valid])]))
    # a lone surrogate either escaped (\\ud800) or, in the file, as its (invalid UTF-8) bytes
    return json.dumps(obj, ensure_ascii=draw(st.booleans()))


# -- the runs compared ----------------------------------------------------------------------------

@dataclass
class Run:
    """What came out of one run: notices (§4 JSON) in emission order, rejects as (line number,
    reason), and for the engine runs the status of every line."""
    notices: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[int, str]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    duplicates: int = 0
    skipped: int = 0


REJECTED = "rejected"  # the status of a line the validator or the engine refused


def local(until: datetime | None, config: Config) -> datetime | None:
    return until.astimezone(config.tz) if until is not None else None


def replay(lines: list[str], until: datetime | None = None, config: Config = CONFIG, *,
           files: tuple[int, ...] = ()) -> Run:
    """``shian replay`` of the lines as one JSON Lines file, or as several, a new one starting
    at each index in ``files`` (``until`` read in the config's zone, as the command line reads
    ``--until``). Rejects are numbered through the files, as if they were one."""
    run, until = Run(), local(until, config)
    bounds = [0, *sorted(set(files) - {0, len(lines)}), len(lines)]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for n, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
            paths.append(Path(tmp) / f"events-{n}.jsonl")
            paths[-1].write_bytes(b"".join(encode(line) + b"\n" for line in lines[lo:hi]))
        first_line = {str(path): lo for path, lo in zip(paths, bounds)}
        summary = Replay(config, lambda n: run.notices.append(n.to_json()),
                         lambda r: run.rejects.append((first_line[r.source] + r.line, r.reason)),
                         until=until).run([str(p) for p in paths])
    run.duplicates, run.skipped = summary.duplicates, summary.skipped
    return run


def run_engine(lines: list[str], until: datetime | None = None, *, splits: tuple[int, ...] = (),
               restore: Callable[[bytes, list[str], int], Run] | None = None, config: Config = CONFIG) -> Run:
    """The lines through the validator and a durable engine (what ``shian run`` and the Kafka
    worker run, which snapshot), as replay handles them. At each index in ``splits`` the engine
    is snapshotted and restored from the snapshot before that line; with ``restore`` the last
    part runs elsewhere: ``restore(blob, rest, first_line_number)`` returns what it gave."""
    run, until = Run(), local(until, config)
    sink = lambda n: run.notices.append(n.to_json())  # noqa: E731
    engine = Engine(config, recipients, sink, durable=True)
    validator = Validator(config.known())
    cuts = sorted(set(splits))
    if restore is not None and not cuts:
        cuts = [0]
    for i, line in enumerate(lines):
        if cuts and i == cuts[0]:
            cuts.pop(0)
            blob = engine.snapshot()
            if restore is not None and not cuts:
                return _merge(run, restore(blob, lines[i:], i + 1))
            engine = Engine.restore(blob, config, recipients, sink)
        admit_line(engine, validator, line, i + 1, until, run)
    if cuts:  # a split after the last line
        blob = engine.snapshot()
        if restore is not None:
            return _merge(run, restore(blob, [], len(lines) + 1))
        engine = Engine.restore(blob, config, recipients, sink)
    engine.finish(until)
    return run


def admit_line(engine: Engine, validator: Validator, line: str, number: int, until: datetime | None,
               run: Run) -> None:
    """One line as replay takes it; a rule that raises is not caught (it is a bug here)."""
    try:
        status = engine.admit(validator.from_json(encode(line)), until)
    except Rejected as r:
        run.rejects.append((number, r.reason))
        status = REJECTED
    run.statuses.append(status)
    run.duplicates += status == Status.DUPLICATE
    run.skipped += status == Status.SKIPPED


def _merge(head: Run, tail: Run) -> Run:
    return Run(head.notices + tail.notices, head.rejects + tail.rejects, head.statuses + tail.statuses,
               head.duplicates + tail.duplicates, head.skipped + tail.skipped)


def resume(blob: bytes, lines: list[str], first: int, until: datetime | None, config: Config = CONFIG) -> Run:
    """The rest of a run from a snapshot: restore, take ``lines`` (numbered from ``first``), finish."""
    run, until = Run(), local(until, config)
    engine = Engine.restore(blob, config, recipients, lambda n: run.notices.append(n.to_json()))
    validator = Validator(config.known())
    for i, line in enumerate(lines):
        admit_line(engine, validator, line, first + i, until, run)
    engine.finish(until)
    return run
