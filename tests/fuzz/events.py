"""Events good by construction (contract §1, §6) and the faults that make one bad.

Every good event is built from the contract's tables: required fields present and non-blank,
optional ones present or not (or ``null``), values from the closed sets, times in the
contract's shape inside the fuzz window, townships, reporters and departments from the config.
A fault changes exactly one thing the contract rejects, and names its category; the category's
words are what the reject reason must mention (:data:`REASON_WORDS`).
"""
from __future__ import annotations

import copy
import hashlib
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from shian.rules.config import Config
from shian.rules.timeutil import parse_time

from .model import ACK_TIME, ACCEPT, JUMP_FROM, NOW, REJECT, TZ, WINDOW_END, WINDOW_START, Row

PROGRAMS = ("food_sampling", "agri_monitoring", "rapid_test")
VERDICTS = ("合格", "不合格")
OUTCOMES = ("合格", "限期整改", "责令停业", "立案查处")
INSPECTION_TYPES = ("日常检查", "双随机", "专项检查", "节前联合检查", "复查")
CATEGORIES = ("蔬菜", "水果", "畜禽肉", "水产品", "粮食", "奶制品", "豆制品", "酒类", "饮料", "儿童食品")
ENTITY_TYPES = ("学校食堂", "幼儿园食堂", "餐饮服务", "集体食堂", "食品生产", "食品销售", "小作坊", "屠宰场")
ITEMS = ("铅", "镉", "腐霉利", "毒死蜱", "克百威", "克伦特罗", "氯霉素", "菌落总数", "二氧化硫")
NAMES = ("张三蔬菜店", "红河农贸市场12号摊", "新寨村小卖部", "镇中心学校食堂", "李记餐馆", "O'Brien & 王 \"大\"",
         "  带空格的店  ", "𠀀生僻字超市", "emoji店😀", "逗号,分号;店", "换行\n店", "tab\t店", "a" * 300)

#: Reject reasons must name the fault in the user's words (a regular expression per category).
REASON_WORDS = {
    "missing": "缺少|为空", "type": "类型错误|应为|不是 JSON 对象", "enum": "不在允许范围", "int": "整数|类型错误|超出范围",
    "time": "时间|日期", "range": "早于|晚于|超出", "township": "乡镇", "reporter": "报送单位",
    "department": "部门", "notice": "通知", "rectify": "整改期限", "order": "早于发生时间", "period": "月份",
    "value": "检验结果", "surrogate": "JSON|代理项|字符|编码", "encoding": "JSON|编码|UTF-8|字符",
    "json": "JSON", "not_object": "对象", "event_type": "类型", "too_long": "太长", "nesting": "嵌套", "number": "位的数字|位数",
    "jump": "超前", "conflict": "编号重复",
}


@dataclass(frozen=True)
class World:
    """What the config says exists: townships with their reporters, offices and departments."""

    townships: tuple[str, ...]
    reporters: dict[str, tuple[str, ...]]
    offices: dict[str, str]
    county_office: str
    departments: tuple[str, ...]

    @classmethod
    def of(cls, config: Config) -> "World":
        return cls(tuple(config.townships), {n: tuple(t.reporters) for n, t in config.townships.items()},
                   {n: t.office for n, t in config.townships.items()}, config.county.office, tuple(config.departments))


def notice_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


# -- times ----------------------------------------------------------------------------------

def instant(rng: random.Random, start: datetime = WINDOW_START, end: datetime = WINDOW_END) -> datetime:
    seconds = int((end - start).total_seconds())
    return start + timedelta(seconds=rng.randrange(seconds))


def render(rng: random.Random, t: datetime, *, offsets: bool = True) -> str:
    """One instant in one of the contract's spellings: naive local, with +08:00, Z or another
    offset (converted, so that it names the same instant), with or without seconds."""
    choice = rng.randrange(6 if offsets else 3)
    if choice == 0 and t.hour == t.minute == t.second == 0:
        return t.date().isoformat()
    if choice == 1:
        return t.strftime("%Y-%m-%dT%H:%M") if t.second == 0 else t.strftime("%Y-%m-%dT%H:%M:%S")
    if choice <= 2:
        fraction = rng.choice(("", "", "", f".{t.microsecond // 1000:03d}", f".{t.microsecond:06d}", ".0"))
        return t.strftime("%Y-%m-%dT%H:%M:%S") + fraction  # the same instant: its own fraction of a second
    if choice == 3:
        return t.strftime("%Y-%m-%dT%H:%M:%S+08:00")
    if choice == 4:
        return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    zone = rng.choice(("America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kathmandu", "Europe/London"))
    other = t.astimezone(TZ.__class__(zone))
    off = other.utcoffset()
    total = int(off.total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    return other.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{abs(total) // 60:02d}:{abs(total) % 60:02d}"


def whole_minutes(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


# -- good events ----------------------------------------------------------------------------

def _optional(rng: random.Random, obj: dict[str, Any], name: str, value: Callable[[], Any]) -> None:
    """An optional field: absent, null (counts as absent) or given."""
    roll = rng.random()
    if roll < 0.4:
        obj[name] = value()
    elif roll < 0.5:
        obj[name] = None


def _text(rng: random.Random, pool: tuple[str, ...] = NAMES) -> str:
    return rng.choice(pool)


def _item(rng: random.Random) -> dict[str, Any]:
    item: dict[str, Any] = {"item": rng.choice(ITEMS)}
    _optional(rng, item, "value", lambda: rng.choice(
        [round(rng.uniform(0, 2), 3), 0, 5, "未检出", "ND", "阴性", "阳性", "<0.01", "< 5", 10 ** rng.randrange(30)]))
    _optional(rng, item, "limit", lambda: rng.choice([0.2, 0, 1, 0.05, 100]))
    _optional(rng, item, "unit", lambda: rng.choice(["mg/kg", "μg/kg", "CFU/g", ""]))
    _optional(rng, item, "result", lambda: rng.choice(VERDICTS))
    return item


def sampling_result(rng: random.Random, world: World, eid: str, at: datetime, t: Callable[[datetime], str]) -> dict:
    obj: dict[str, Any] = {"type": "sampling_result", "id": eid, "township": rng.choice(world.townships),
                           "entity": _text(rng), "category": rng.choice(CATEGORIES),
                           "items": [_item(rng) for _ in range(rng.choice((0, 1, 1, 2, 3)))]}
    if rng.random() < 0.7:
        obj["reported_at"] = t(at)
        obj["sampled_at"] = t(whole_minutes(at - timedelta(days=rng.randrange(0, 20))) if rng.random() < 0.8 else at)
    else:
        obj["sampled_at"] = t(at)
    _optional(rng, obj, "program", lambda: rng.choice(PROGRAMS))
    _optional(rng, obj, "village", lambda: rng.choice(("红河村", "新寨村", "")))
    _optional(rng, obj, "entity_id", lambda: f"91{rng.randrange(10 ** 16):016d}")
    _optional(rng, obj, "food", lambda: rng.choice(("韭菜", "猪肉", "鲫鱼", "大米")))
    _optional(rng, obj, "conclusion", lambda: rng.choice(VERDICTS))
    return obj


def inspection(rng: random.Random, world: World, eid: str, at: datetime, t: Callable[[datetime], str]) -> dict:
    obj: dict[str, Any] = {"type": "inspection", "id": eid, "township": rng.choice(world.townships),
                           "inspected_at": t(at), "entity": _text(rng), "entity_type": rng.choice(ENTITY_TYPES),
                           "inspection_type": rng.choice(INSPECTION_TYPES), "outcome": rng.choice(OUTCOMES)}
    if obj["outcome"] == "限期整改" or rng.random() < 0.2:
        obj["rectify_by"] = rng.choice([(at + timedelta(days=rng.randrange(1, 40))).date().isoformat(), "2099-12-31",
                                        "2000-01-01"])
    _optional(rng, obj, "village", lambda: "新寨村")
    _optional(rng, obj, "entity_id", lambda: f"JY{rng.randrange(10 ** 12)}")
    _optional(rng, obj, "license_valid", lambda: rng.random() < 0.5)
    total = rng.randrange(0, 40)
    _optional(rng, obj, "staff_total", lambda: total)
    _optional(rng, obj, "staff_with_health_cert", lambda: rng.randrange(0, total + 1))
    _optional(rng, obj, "grade", lambda: rng.choice(("A", "B", "C", "良好", "")))
    _optional(rng, obj, "findings", lambda: [rng.choice(("未公示", "无健康证", "冰箱生熟混放")) for _ in range(rng.randrange(3))])
    return obj


def monthly_report(rng: random.Random, world: World, eid: str, at: datetime, t: Callable[[datetime], str]) -> dict:
    township = rng.choice([n for n in world.townships if world.reporters[n]])
    return {"type": "monthly_report", "id": eid, "township": township, "reporter": rng.choice(world.reporters[township]),
            "period": f"{rng.choice((2025, 2026, 2026))}-{rng.randrange(1, 13):02d}", "submitted_at": t(at)}


def incident(rng: random.Random, world: World, eid: str, at: datetime, t: Callable[[datetime], str]) -> dict:
    occurred = at - timedelta(minutes=rng.choice((0, 30, 90, 121, 60 * 48)))
    obj = {"type": "incident", "id": eid, "township": rng.choice(world.townships), "kind": rng.choice(("食物中毒", "食源性疾病聚集")),
           "occurred_at": t(occurred) if rng.random() < 0.9 else "2000-01-01", "reported_at": t(at)}
    _optional(rng, obj, "cases", lambda: rng.choice((0, 3, 12, 10 ** 20)))
    _optional(rng, obj, "deaths", lambda: rng.choice((0, 1)))
    _optional(rng, obj, "grade", lambda: rng.choice(("Ⅰ", "Ⅱ", "Ⅲ", "Ⅳ", "一般")))
    return obj


def disposal(rng: random.Random, world: World, eid: str, at: datetime, t: Callable[[datetime], str]) -> dict:
    obj = {"type": "disposal", "id": eid, "township": rng.choice(world.townships), "sample_id": f"S-{rng.randrange(10 ** 6)}",
           "disposed_at": t(at)}
    _optional(rng, obj, "measures", lambda: [rng.choice(("下架", "召回", "立案", "复检")) for _ in range(rng.randrange(3))])
    return obj


def banquet(rng: random.Random, world: World, eid: str, at: datetime, t: Callable[[datetime], str]) -> dict:
    held = rng.choice([at + timedelta(hours=rng.randrange(-48, 24 * 7)), datetime(2099, 12, 31, 12, tzinfo=TZ)])
    obj = {"type": "banquet", "id": eid, "township": rng.choice(world.townships), "host": _text(rng),
           "held_at": t(whole_minutes(held)), "registered_at": t(at), "guests": rng.choice((0, 49, 50, 100, 500))}
    _optional(rng, obj, "village", lambda: "红河村")
    _optional(rng, obj, "chef", lambda: "王师傅")
    _optional(rng, obj, "chef_health_cert", lambda: rng.random() < 0.5)
    return obj


MAKERS = {"sampling_result": sampling_result, "inspection": inspection, "monthly_report": monthly_report,
          "incident": incident, "disposal": disposal, "banquet": banquet}


def ack_for(rng: random.Random, world: World, eid: str, incident_obj: dict, at: datetime, t: Callable[[datetime], str]) -> dict:
    """An ack of the ``incident.reported`` notice an accepted incident raises, by one of its
    recipients (the county office and the town office), by notice id or key."""
    township = incident_obj["township"]
    key = f"incident.reported|{township}|{incident_obj['id']}"
    obj = {"type": "ack", "id": eid, "township": township, "notice_id": rng.choice((notice_id(key), key)),
           "by": rng.choice((world.county_office, world.offices[township])), "acked_at": t(at)}
    _optional(rng, obj, "action", lambda: rng.choice(("签收", "办结")))
    _optional(rng, obj, "note", lambda: "已核查")
    return obj


def with_unknown_fields(rng: random.Random, obj: dict) -> dict:
    """Unknown fields are ignored (§6): any JSON value, nested a little."""
    out = dict(obj)
    for _ in range(rng.randrange(1, 3)):
        value: Any = rng.choice([1, "x", None, True, 1.5e300, [], {"a": [1, {"b": None}]}, "中文", "\u0000"])
        for _ in range(rng.randrange(0, 30)):
            value = [value] if rng.random() < 0.5 else {"k": value}
        out[rng.choice(("extra", "备注", "x-trace", "", "TYPE", "Type", "ID"))] = value
    return out


# -- faults ---------------------------------------------------------------------------------

#: field -> kind, per type: what the faults may do to it.
SCHEMA: dict[str, dict[str, str]] = {
    "sampling_result": {"id": "text", "township": "township", "sampled_at": "time", "reported_at": "time?",
                        "entity": "text", "category": "text", "items": "items", "program": "enum?",
                        "conclusion": "enum?", "village": "text?", "entity_id": "text?", "food": "text?"},
    "inspection": {"id": "text", "township": "township", "inspected_at": "time", "entity": "text",
                   "entity_type": "text", "inspection_type": "enum", "outcome": "enum", "license_valid": "bool?",
                   "staff_total": "int?", "staff_with_health_cert": "int?", "grade": "text?", "findings": "list?",
                   "rectify_by": "day?"},
    "monthly_report": {"id": "text", "township": "township", "reporter": "reporter", "period": "period",
                       "submitted_at": "time"},
    "incident": {"id": "text", "township": "township", "occurred_at": "time", "reported_at": "time",
                 "kind": "text", "cases": "int?", "deaths": "int?", "grade": "text?"},
    "disposal": {"id": "text", "township": "township", "sample_id": "text", "disposed_at": "time", "measures": "list?"},
    "banquet": {"id": "text", "township": "township", "host": "text", "held_at": "time", "registered_at": "time",
                "guests": "int", "chef": "text?", "chef_health_cert": "bool?"},
    "ack": {"id": "text", "township": "township", "notice_id": "text", "by": "department", "action": "enum?",
            "acked_at": "time", "note": "text?"},
}
BAD_TIMES = ("2026/04/01", "2026-4-1", "2026-04-01 09:00", "2026-04-01T09:00:00+08:60", "2026-04-01T09:00:00+0800",
             "2026-02-30", "2026-04-01T25:00", "2026-04-01T09:00:00.1234567", "today", "2026-04-01T09", "+2026-04-01",
             "2026-04-01T09:00:00+15:00", "2026-04-01T09:60", "２０２６-04-01", "2026-04-01t09:00", "2026-04-01T09:00:00 ")
OUT_OF_RANGE = ("1900-01-01", "0001-01-01", "9999-12-31", "9999-12-31T23:59:59", "1999-12-31", "2100-01-01",
                "2000-01-01T00:30:00+09:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1899-12-30")
WRONG_TYPES = (123, 1.5, True, [], {}, ["x"], {"a": 1})


def fault(rng: random.Random, world: World, obj: dict) -> tuple[dict, str, str]:
    """``obj`` with one fault the contract rejects: (object, category, what was done)."""
    kind = obj["type"]
    fields = SCHEMA[kind]
    bad = copy.deepcopy(obj)
    name = rng.choice(list(fields))
    spec = fields[name]
    roll = rng.random()
    if roll < 0.15 and not spec.endswith("?"):
        how = rng.choice(("delete", "null", "blank")) if spec in ("text", "township", "reporter", "department") \
            else rng.choice(("delete", "null"))
        if how == "delete":
            bad.pop(name, None)
        else:
            bad[name] = None if how == "null" else rng.choice(("", "  ", "\t", "\u3000 "[1:]))
        return bad, "missing", f"{name}: {how}"
    if spec.startswith("time") or spec.startswith("day"):
        if roll < 0.55:
            bad[name] = rng.choice(BAD_TIMES)
            return bad, "time", f"{name}={bad[name]!r}"
        bad[name] = rng.choice(OUT_OF_RANGE)
        return bad, "range", f"{name}={bad[name]!r}"
    if spec.startswith("int") and roll < 0.7:
        bad[name] = rng.choice((-1, -100, 1.5, "12", True, 1e3))
        return bad, "int" if isinstance(bad[name], (int, float)) and not isinstance(bad[name], bool) else "type", f"{name}={bad[name]!r}"
    if spec.startswith("enum") and roll < 0.7:
        bad[name] = rng.choice(("其他", "合格 ", "FOOD_SAMPLING", "不合格品", "已签收"))
        return bad, "enum", f"{name}={bad[name]!r}"
    if spec == "township" and roll < 0.7:
        bad[name] = rng.choice(("不存在镇", world.townships[0] + " ", "红河", "xx镇"))
        return bad, "township", f"{name}={bad[name]!r}"
    if spec == "reporter" and roll < 0.7:
        others = [r for t, rs in world.reporters.items() for r in rs if r not in world.reporters[bad["township"]]]
        bad[name] = rng.choice(others + ["不存在村"])
        return bad, "reporter", f"{name}={bad[name]!r}"
    if spec == "department" and roll < 0.7:
        bad[name] = rng.choice(("no-such-dept", "县食安办"))
        return bad, "department", f"{name}={bad[name]!r}"
    if spec == "period" and roll < 0.7:
        bad[name] = rng.choice(("2026-13", "2026-4", "202604", "2026-00", "2026年4月", "2026-04-01"))
        return bad, "period", f"{name}={bad[name]!r}"
    if spec == "items" and roll < 0.8:
        return _items_fault(rng, bad)
    valid = {"list": ([], ["x"]), "items": ([],), "int": (123,)}.get(spec.rstrip("?"), ())
    wrong = [v for v in WRONG_TYPES if not any(v == ok and type(v) is type(ok) for ok in valid)]
    if spec.startswith("bool"):
        wrong = ["true", "是", 1, 0, "false"]
    bad[name] = rng.choice(wrong)
    return bad, "type", f"{name}={bad[name]!r}"


def _items_fault(rng: random.Random, bad: dict) -> tuple[dict, str, str]:
    item = {"item": "铅", "value": 0.1, "limit": 0.2}
    choice = rng.choice([
        ("type", "x"), ("type", {"item": "铅"}), ("type", [1]), ("missing", [{"value": 1}]),
        ("missing", [{"item": "  "}]), ("value", [{**item, "value": "超标"}]), ("value", [{**item, "value": "<"}]),
        ("type", [{**item, "value": True}]), ("type", [{**item, "limit": "0.2"}]), ("enum", [{**item, "result": "良好"}]),
        ("type", [{**item, "item": 5}]), ("missing", None),
    ])
    bad["items"] = choice[1]
    return bad, choice[0], f"items={choice[1]!r}"


def relational_fault(rng: random.Random, world: World, obj: dict, t: Callable[[datetime], str]) -> tuple[dict, str, str] | None:
    """Faults across fields: 限期整改 without a deadline, an incident reported before it happened."""
    bad = copy.deepcopy(obj)
    if obj["type"] == "inspection":
        bad["outcome"] = "限期整改"
        bad.pop("rectify_by", None)
        if rng.random() < 0.5:
            bad["rectify_by"] = None
        return bad, "rectify", "限期整改 without rectify_by"
    if obj["type"] == "incident":
        reported = parse_time(obj["reported_at"], TZ)
        bad["occurred_at"] = (reported + timedelta(minutes=rng.choice((1, 60, 60 * 24)))).isoformat()
        return bad, "order", "occurred_at after reported_at"
    return None


def json_line_fault(rng: random.Random, obj: dict) -> tuple[str | bytes, str, str]:
    """A line that is not an event object: broken JSON, another JSON value, bad bytes, a lone
    surrogate, too deep, too long, an unknown type."""
    text = json.dumps(obj, ensure_ascii=False)
    choice = rng.randrange(12)
    if choice == 0:
        return text[: rng.randrange(1, len(text))], "json", "cut short"
    if choice == 1:
        return rng.choice(("[" + text + "]", "null", "1", '"x"', "true", "[]")), "not_object", "not an object"
    if choice == 2:
        return text.replace('"', "'", 2), "json", "single quotes"
    if choice == 3:
        return text[:-1] + ', "zzz": NaN}', "json", "NaN"
    if choice == 4:
        field = rng.choice([k for k, v in obj.items() if isinstance(v, str) and k != "type"])
        return text.replace(json.dumps(obj[field], ensure_ascii=False), '"a\\ud800b"', 1), "surrogate", f"{field}: \\ud800"
    if choice == 5:
        data = text.encode("utf-8")
        return data[:-1] + rng.choice((b', "x": "\xed\xa0\x80"}', b', "x": "\xff"}', b', "x": "' + "中毒".encode("gbk") + b'"}')), \
            "encoding", "bad bytes in an unknown field"
    if choice == 6:
        data = text.encode("utf-8")
        return data.replace(b'"township": "', b'"township": "' + "镇".encode("gbk"), 1), "encoding", "GBK bytes in township"
    if choice == 7:
        depth = rng.choice((1000, 5000, 100_000))
        return text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}", "nesting", f"unknown field nested {depth} deep"
    if choice == 8:
        return text[:-1] + ', "pad": "' + "x" * (1 << 20) + '"}', "too_long", "over 1 MiB"
    if choice == 9:
        other = dict(obj, type=rng.choice(("entity_x", "Inspection", "抽检", "", "sampling-result")))
        return json.dumps(other, ensure_ascii=False), "event_type", f"type={other['type']!r}"
    if choice == 10:
        other = {k: v for k, v in obj.items() if k != "type"}
        return json.dumps(other, ensure_ascii=False), "event_type", "no type"
    return text[:-1] + ", }", "json", "trailing comma"


def jump(rng: random.Random, obj: dict, t: Callable[[datetime], str]) -> tuple[dict, str, str]:
    """The event time far ahead of any clock (a mistyped year): rejected by the engine."""
    bad = copy.deepcopy(obj)
    ahead = instant(rng, JUMP_FROM, datetime(2099, 6, 1, tzinfo=TZ))
    field = {"sampling_result": "reported_at" if "reported_at" in obj else "sampled_at", "inspection": "inspected_at",
             "monthly_report": "submitted_at", "incident": "reported_at", "disposal": "disposed_at",
             "banquet": "registered_at", "ack": "acked_at"}[obj["type"]]
    bad[field] = t(ahead)
    return bad, "jump", f"{field}={bad[field]}"


def conflict(rng: random.Random, obj: dict) -> tuple[dict, str, str]:
    """The same type, township and id as an accepted event with other content."""
    bad = copy.deepcopy(obj)
    for name, value in (("entity", "另一家店"), ("kind", "食源性疾病聚集" if obj.get("kind") == "食物中毒" else "食物中毒"),
                        ("host", "另一位举办者"), ("sample_id", "S-other"), ("reporter", None), ("note", "改过的反馈")):
        if name in SCHEMA[obj["type"]] and (value is not None):
            bad[name] = value
            return bad, "conflict", f"{name} changed"
    bad["period"] = "2024-01" if obj.get("period") != "2024-01" else "2024-02"
    return bad, "conflict", "period changed"


def resend(rng: random.Random, obj: dict) -> str:
    """The same object again, keys in another order and other spacing: a duplicate."""
    items = list(obj.items())
    rng.shuffle(items)
    return json.dumps(dict(items), ensure_ascii=rng.random() < 0.5, indent=None, separators=rng.choice(((",", ":"), (", ", ": "), (" ,", " : "))))


# -- a batch of rows -----------------------------------------------------------------------

def batch(rng: random.Random, world: World, prefix: str, size: int, *, live: bool, offsets: bool = True,
          bad_share: float = 0.35, line_faults: bool = True) -> list[Row]:  # long: one table of row kinds
    """``size`` rows: good events (and their duplicates), acks of good incidents, and bad rows.

    ``live``: for the service paths (wall clock at NOW): acks at NOW. Otherwise (replay) acks at
    ACK_TIME, after every good event time. ``line_faults``: also faults that only a JSON line can
    carry (broken JSON, bad bytes)."""
    t = lambda moment: render(rng, moment, offsets=offsets)  # noqa: E731
    rows: list[Row] = []
    goods: list[Row] = []
    incidents: list[dict] = []
    for n in range(size):
        eid = f"{prefix}-{n}"
        roll = rng.random()
        if goods and roll < 0.06:
            original = rng.choice(goods)
            rows.append(Row(original.id, "duplicate", obj=original.obj, text=resend(rng, original.obj), note="re-sent"))
            continue
        if goods and roll < 0.10:
            bad, why, note = conflict(rng, rng.choice(goods).obj)
            rows.append(Row(bad["id"], REJECT, why, bad, note=note))
            continue
        if goods and roll < 0.14:
            bad, why, note = jump(rng, rng.choice(goods).obj | {"id": eid}, t)
            rows.append(Row(eid, REJECT, why, bad, note=note))
            continue
        if incidents and roll < 0.22:
            obj = ack_for(rng, world, eid, rng.choice(incidents), NOW if live else ACK_TIME, t)
            if rng.random() < bad_share:
                bad, why, note = _ack_fault(rng, world, obj)
                rows.append(Row(eid, REJECT, why, bad, note=note))
            else:
                rows.append(_good(rng, eid, obj, goods))
            continue
        kind = rng.choice(list(MAKERS))
        obj = MAKERS[kind](rng, world, eid, instant(rng), t)
        if rng.random() >= bad_share:
            rows.append(_good(rng, eid, obj, goods))
            if kind == "incident":
                incidents.append(obj)
            continue
        rows.append(_bad(rng, world, eid, obj, t, line_faults))
    return rows


def _good(rng: random.Random, eid: str, obj: dict, goods: list[Row]) -> Row:
    row = Row(eid, ACCEPT, obj=with_unknown_fields(rng, obj) if rng.random() < 0.15 else obj)
    goods.append(row)
    return row


def _bad(rng: random.Random, world: World, eid: str, obj: dict, t: Callable[[datetime], str], line_faults: bool) -> Row:
    roll = rng.random()
    if line_faults and roll < 0.25:
        text, why, note = json_line_fault(rng, obj)
        return Row(eid, REJECT, why, None, text=text, note=note)
    if roll < 0.35 and (found := relational_fault(rng, world, obj, t)) is not None:
        bad, why, note = found
        return Row(eid, REJECT, why, bad, note=note)
    bad, why, note = fault(rng, world, obj)
    return Row(eid, REJECT, why, bad, note=note)


def _ack_fault(rng: random.Random, world: World, obj: dict) -> tuple[dict, str, str]:
    bad = dict(obj)
    choice = rng.randrange(3)
    if choice == 0:
        bad["notice_id"] = "0000000000000000"
        return bad, "notice", "unknown notice"
    if choice == 1:
        others = [d for d in world.departments if d not in (world.county_office, world.offices[obj["township"]])]
        bad["by"] = rng.choice(others)
        return bad, "department", f"by={bad['by']} (not a recipient)"
    bad["by"] = "no-such-dept"
    return bad, "department", "unknown department"


def line_of(row: Row) -> str | bytes:
    """The JSON line of a row."""
    if row.text is not None:
        return row.text
    return json.dumps(row.obj, ensure_ascii=False)
