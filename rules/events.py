"""The eight event types of the contract (§1) and their validation.

Validation here is stateless: it needs the line and the config (townships, reporters,
departments, timezone) but no history. What depends on history — duplicates, the
``max_jump_days`` check, acks naming a known notice — is the engine's.

Events are msgspec Structs: one C-level pass parses a JSON line and checks types, required
fields and value sets; the few checks msgspec cannot express (blank strings, the contract's
time format, result texts) run once per event in ``__post_init__`` and the time hook.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass
from operator import attrgetter
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, Union

import msgspec
from msgspec import Meta, Struct

from .timeutil import LAST_EVENT_DATE, MIN_EVENT_DATE, parse_local, parse_period, parse_time

PROGRAMS = ("food_sampling", "agri_monitoring", "rapid_test")
VERDICTS = ("合格", "不合格")
OUTCOMES = ("合格", "限期整改", "责令停业", "立案查处")
INSPECTION_TYPES = ("日常检查", "双随机", "专项检查", "节前联合检查", "复查")
ACTIONS = ("签收", "办结")
RISK_LEVELS = ("A", "B", "C", "D")
STATUSES = ("在营", "注销")
NO_VALUE_TEXTS = frozenset(("未检出", "ND", "阴性"))
POSITIVE_TEXT = "阳性"
_BELOW = re.compile(r"<\s*\d+(?:\.\d+)?")
_TEXT_VALUES = NO_VALUE_TEXTS | {POSITIVE_TEXT}
_set = msgspec.structs.force_setattr


class _Marker(type):
    """Marker types for fields the validator's hook decodes; msgspec checks what the hook
    returns with ``isinstance``, which this answers for the plain type it stands for."""

    stands_for: type

    def __instancecheck__(cls, obj: object) -> bool:
        return obj.__class__ is cls.stands_for


class Time(metaclass=_Marker):
    """A contract time field, decoded into an aware :class:`datetime` in the configured zone."""

    stands_for = datetime


class Day(metaclass=_Marker):
    """A contract date field (``rectify_by``), decoded into a :class:`date`."""

    stands_for = date


Count = Annotated[int, Meta(ge=0)]


def _blank(value: str | None) -> bool:
    return value is not None and not value.strip()


class Item(Struct, frozen=True, gc=False):
    item: str
    value: float | str | None = None
    unit: str | None = None
    limit: float | None = None
    result: Literal["合格", "不合格"] | None = None

    @property
    def number(self) -> float | None:
        """The numeric value: ``<x`` reads as 0, texts without a number as None."""
        v = self.value
        if v.__class__ is str:
            return 0.0 if v.startswith("<") else None  # type: ignore[union-attr]
        return v  # type: ignore[return-value]

    @property
    def failed(self) -> bool:
        """Item verdict: any 不合格 wins (result, 阳性, or value above the upper limit)."""
        return item_failed(self)


def item_failed(item: Item) -> bool:
    """:attr:`Item.failed` as a function (the verdict calls it per item, without a property)."""
    if item.result == "不合格":
        return True
    v = item.value
    if v.__class__ is str:
        if v == POSITIVE_TEXT:
            return True
        n = 0.0 if v.startswith("<") else None  # type: ignore[union-attr]
    else:
        n = v
    return n is not None and item.limit is not None and n > item.limit  # type: ignore[operator]


class Event(Struct, tag_field="type", kw_only=True, frozen=True, gc=False):
    """Fields every event has. ``TIME_FIELD`` names the event-time field; ``TEXT`` the
    required strings, which may not be blank; ``SHARED`` the texts and lists of texts that
    recur across events (names, categories, departments, measures), which validation interns,
    so that the state kept per entity or department holds one copy of each, not one per event."""

    TIME_FIELD: ClassVar[str]
    TEXT: ClassVar[tuple[str, ...]] = ()
    SHARED: ClassVar[tuple[str, ...]] = ()
    id: str
    township: str

    def __post_init__(self) -> None:
        if not self.id.strip():
            raise ValueError(_empty("id"))
        if not self.township.strip():
            raise ValueError(_empty("township"))
        for name in self.TEXT:
            if not getattr(self, name).strip():
                raise ValueError(_empty(name))

    type: ClassVar[str]
    @property
    def time(self) -> datetime:
        return getattr(self, self.TIME_FIELD)


class SamplingResult(Event, tag="sampling_result", kw_only=True):
    TIME_FIELD: ClassVar[str] = "sampled_at"
    TEXT: ClassVar[tuple[str, ...]] = ("entity", "category")
    program: Literal["food_sampling", "agri_monitoring", "rapid_test"] | None = "food_sampling"  # null: the default (set below)
    sampled_at: Time
    reported_at: Time | None = None
    village: str | None = None
    entity: str
    entity_id: str | None = None
    category: str
    food: str | None = None
    items: tuple[Item, ...]
    conclusion: Literal["合格", "不合格"] | None = None

    def __post_init__(self) -> None:
        # Event.__post_init__ inlined (TEXT is entity, category): this runs for most lines
        if not self.id.strip():
            raise ValueError(_empty("id"))
        if not self.township.strip():
            raise ValueError(_empty("township"))
        if not self.entity.strip():
            raise ValueError(_empty("entity"))
        if not self.category.strip():
            raise ValueError(_empty("category"))
        if self.program is None:
            _set(self, "program", "food_sampling")
        for i, it in enumerate(self.items):
            if not it.item.strip():
                raise ValueError(_empty(f"items.{i}.item"))
            v = it.value
            if v.__class__ is str and v not in _TEXT_VALUES and _BELOW.fullmatch(v) is None:
                raise ValueError(f"字段 items.{i}.value（检验结果）的值“{v}”无法识别（应为数值、未检出、ND、阴性、阳性或 <x）")

    @property
    def time(self) -> datetime:
        return self.reported_at or self.sampled_at


class Inspection(Event, tag="inspection", kw_only=True):
    TIME_FIELD: ClassVar[str] = "inspected_at"
    TEXT: ClassVar[tuple[str, ...]] = ("entity", "entity_type")
    SHARED: ClassVar[tuple[str, ...]] = ("entity", "entity_id", "entity_type", "village", "findings")
    inspected_at: Time
    village: str | None = None
    entity: str
    entity_id: str | None = None
    entity_type: str
    inspection_type: Literal["日常检查", "双随机", "专项检查", "节前联合检查", "复查"]
    license_valid: bool | None = None
    staff_total: Count | None = None
    staff_with_health_cert: Count | None = None
    grade: str | None = None
    findings: tuple[str, ...] | None = None
    outcome: Literal["合格", "限期整改", "责令停业", "立案查处"]
    rectify_by: Day | None = None


class MonthlyReport(Event, tag="monthly_report", kw_only=True):
    TIME_FIELD: ClassVar[str] = "submitted_at"
    TEXT: ClassVar[tuple[str, ...]] = ("reporter",)
    SHARED: ClassVar[tuple[str, ...]] = ("reporter",)
    reporter: str
    period: str
    submitted_at: Time

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        try:
            parse_period(self.period)
        except ValueError as e:
            raise ValueError(f"字段 period（所属月份）：{e}") from None


class Incident(Event, tag="incident", kw_only=True):
    TIME_FIELD: ClassVar[str] = "reported_at"
    TEXT: ClassVar[tuple[str, ...]] = ("kind",)
    occurred_at: Time
    reported_at: Time
    kind: str
    cases: Count | None = None
    deaths: Count | None = None
    grade: str | None = None


class Disposal(Event, tag="disposal", kw_only=True):
    TIME_FIELD: ClassVar[str] = "disposed_at"
    TEXT: ClassVar[tuple[str, ...]] = ("sample_id",)
    SHARED: ClassVar[tuple[str, ...]] = ("measures",)
    sample_id: str
    disposed_at: Time
    measures: tuple[str, ...] | None = None


class Banquet(Event, tag="banquet", kw_only=True):
    TIME_FIELD: ClassVar[str] = "registered_at"
    TEXT: ClassVar[tuple[str, ...]] = ("host",)
    village: str | None = None
    host: str
    held_at: Time
    registered_at: Time
    guests: Count
    chef: str | None = None
    chef_health_cert: bool | None = None


class Ack(Event, tag="ack", kw_only=True):
    TIME_FIELD: ClassVar[str] = "acked_at"
    TEXT: ClassVar[tuple[str, ...]] = ("notice_id", "by")
    SHARED: ClassVar[tuple[str, ...]] = ("by",)
    notice_id: str
    by: str
    action: Literal["签收", "办结"] | None = "签收"  # null: the default (set below)
    acked_at: Time
    note: str | None = None

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        if self.action is None:  # null counts as absent (§6): the default
            _set(self, "action", "签收")


class RegisterRow(Event, tag="entity", kw_only=True):
    """A row of the town's register of food businesses (台账), with its risk grade (§1).

    Its event time is ``registered_at``, from which its state holds; the engine takes it at the
    clock's time and never lets it start or move the clock (§6). ``status`` null or absent is
    在营."""

    TIME_FIELD: ClassVar[str] = "registered_at"
    TEXT: ClassVar[tuple[str, ...]] = ("entity", "entity_type")
    SHARED: ClassVar[tuple[str, ...]] = ("entity", "entity_id", "entity_type")
    entity: str
    entity_id: str | None = None
    entity_type: str
    risk_level: Literal["A", "B", "C", "D"]
    registered_at: Time
    status: Literal["在营", "注销"] | None = None

    @property
    def closed(self) -> bool:
        return self.status == "注销"


REGISTER = "entity"  # the type of register rows, which the engine admits apart

EVENT_TYPES: dict[str, type[Event]] = {
    m.__struct_config__.tag: m  # type: ignore[misc]
    for m in (SamplingResult, Inspection, MonthlyReport, Incident, Disposal, Banquet, Ack, RegisterRow)
}
for _tag, _model in EVENT_TYPES.items():
    _model.type = _tag  # a plain class attribute: the tag, read on every event
    if _model is not SamplingResult:  # the event time, read many times per event: one C getter
        _model.time = property(attrgetter(_model.TIME_FIELD))  # type: ignore[assignment, method-assign]
AnyEvent = Union[SamplingResult, Inspection, MonthlyReport, Incident, Disposal, Banquet, Ack, RegisterRow]
ALLOWED = {
    "program": PROGRAMS, "conclusion": VERDICTS, "result": VERDICTS, "outcome": OUTCOMES,
    "inspection_type": INSPECTION_TYPES, "action": ACTIONS, "risk_level": RISK_LEVELS, "status": STATUSES,
}

LABELS = {
    "type": "类型", "id": "编号", "township": "乡镇", "program": "任务类别", "sampled_at": "抽样日期",
    "reported_at": "报告时间", "village": "村", "entity": "单位名称", "entity_id": "统一社会信用代码",
    "category": "食品大类", "food": "食品名称", "items": "检验项目", "item": "检验项目",
    "value": "检验结果", "unit": "单位", "limit": "标准限值", "result": "单项结论",
    "conclusion": "结论", "inspected_at": "检查日期", "entity_type": "业态",
    "inspection_type": "检查类型", "license_valid": "许可证有效", "staff_total": "从业人员数",
    "staff_with_health_cert": "持健康证人数", "grade": "等级", "findings": "发现问题",
    "outcome": "检查结果", "rectify_by": "整改期限", "reporter": "报送单位", "period": "所属月份",
    "submitted_at": "报送时间", "occurred_at": "发生时间", "kind": "事件类型", "cases": "发病人数",
    "deaths": "死亡人数", "sample_id": "样品编号", "disposed_at": "处置时间", "measures": "处置措施",
    "host": "举办者", "held_at": "举办时间", "registered_at": "登记时间", "guests": "就餐人数",
    "chef": "厨师", "chef_health_cert": "厨师健康证", "notice_id": "通知编号", "by": "签收部门",
    "action": "动作", "acked_at": "签收时间", "note": "反馈", "risk_level": "风险等级", "status": "状态",
}


class Rejected(Exception):
    """An input line set aside with a reason in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_NAMED_FIELD = re.compile(r"(?<![A-Za-z0-9_.])([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)（[^（）]+）")
_COLUMN = re.compile(r"列“([^”]+)”")
_NAMED_BY_WORD = (("乡镇“", "township"), ("报送单位“", "reporter"), ("签收的通知“", "notice_id"), ("部门“", "by"),
                  ("报告时间早于发生时间", "reported_at"), ("编号重复", "id"))


def reject_field(reason: str) -> str:
    """The field a reject's reason names, for the 字段 column of a 拒收 list: ``township（乡镇）``
    (the key path with its label, as the reason has it), a spreadsheet's column (``抽样日期``),
    or "" when the reason is about the whole line or file."""
    if (m := _COLUMN.search(reason)) is not None:
        return m.group(1)
    if (m := _NAMED_FIELD.search(reason)) is not None:
        return m.group(0)
    for words, name in _NAMED_BY_WORD:
        if words in reason:
            return _label(name)
    return ""


@dataclass(frozen=True, slots=True)
class Townships:
    """What validation needs from the config: who exists, and the dates an event may carry
    (``first_day`` = ``min_event_date`` to :data:`LAST_EVENT_DATE`, local dates)."""

    reporters: dict[str, frozenset[str]]
    departments: frozenset[str]
    tz: Any
    first_day: date = MIN_EVENT_DATE


def _label(path: str) -> str:
    """``items.1.value（检验结果）``: the path with the Chinese label of its last field."""
    name = next((p for p in reversed(path.split(".")) if p in LABELS), None)
    return f"{path}（{LABELS[name]}）" if name else path


def _empty(path: str) -> str:
    return f"必填字段 {_label(path)} 为空"


_MISSING = "missing"
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_TYPE_NAMES = {
    "str": "文本", "int": "整数", "float": "数值", "bool": "true / false", "array": "列表",
    "object": "对象", "null": "null", "Time": "时间字符串", "Day": "日期字符串",
    "float | str | null": "数值或文本",
}


#: msgspec's messages without a field to name, in plain words
_PLAIN = {"Number out of range": "数值超出范围", "Integer value out of range": "整数位数过多，超出范围"}


def _reason(message: str) -> str:
    """msgspec's error, in the plain words of a reject record."""
    m = _AT.match(message)
    msg, raw_path = m.group("msg"), m.group("path") or ""  # type: ignore[union-attr]
    path = re.sub(r"\[(\d+)\]", r".\1", raw_path).lstrip(".")
    if msg in _PLAIN:
        return f"字段 {_label(path)} {_PLAIN[msg]}" if path else f"不是 JSON 对象（{_PLAIN[msg]}）"
    if not path:
        if msg.startswith("Expected `object`"):
            return "不是 JSON 对象"
        missing = re.match(r"Object missing required field `(\w+)`", msg)
        if missing:
            return f"缺少必填字段 {_label(missing.group(1))}"
        return msg
    missing = re.match(r"Object missing required field `(\w+)`", msg)
    if missing:
        return f"缺少必填字段 {_label(path + '.' + missing.group(1))}"
    if path == "type" and msg.startswith("Invalid value"):
        return f"未知的事件类型“{msg[len('Invalid value '):].strip(chr(39))}”（应为 {', '.join(EVENT_TYPES)} 之一）"
    field = path.rsplit(".", 1)[-1]
    if msg.startswith("Invalid enum value"):
        given = msg[len("Invalid enum value "):].strip("'")
        return f"字段 {_label(path)} 的值“{given}”不在允许范围内（{'、'.join(ALLOWED.get(field, ()))}）"
    if msg.endswith("got `null`") or msg == _MISSING:
        return f"缺少必填字段 {_label(path)}"
    expected = re.match(r"Expected `([^`]+)`(?: (>=) 0)?, got `([^`]+)`", msg) or re.match(r"Expected `([^`]+)` (>=) 0", msg)
    if expected and expected.group(2):
        return f"字段 {_label(path)} 应为非负整数"
    if expected:
        want, got = expected.group(1).removesuffix(" | null"), expected.group(3)
        return f"字段 {_label(path)} 类型错误：应为{_TYPE_NAMES.get(want, want)}，实为{_TYPE_NAMES.get(got, got)}"
    return f"字段 {_label(path)}：{msg}"


MAX_LINE = 1 << 20    # bytes (or characters) of one event's JSON; nesting: the decoder's limit
#: Digits of one JSON number that every runtime can read back (Python's int limit, which the
#: service's journal meets when it parses a line); longer ones, even in an unknown field, reject it.
MAX_DIGITS = 4300
_LONG_NUMBER = {bytes: re.compile(rb"[0-9]{%d}" % (MAX_DIGITS + 1)), str: re.compile(r"[0-9]{%d}" % (MAX_DIGITS + 1))}


_NOT_UTF8 = "含有不是 UTF-8 的字节（如 GBK 编码的文字，或孤立的 UTF-16 代理项）：请以 UTF-8 编码报送"
_LONE = r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
_LONE_ESCAPE = {bytes: re.compile(_LONE.encode()), str: re.compile(_LONE)}


def _undecodable(message: str, raw: bytes | str) -> str:
    """Why the decoder could not read a line: bytes that are not UTF-8, an escaped lone
    surrogate (``\\ud800``), or JSON that is malformed."""
    if "UTF-8" in message:
        return _NOT_UTF8
    if _LONE_ESCAPE[raw.__class__].search(raw) is not None:  # type: ignore[index, arg-type]
        return "含有无效的字符（孤立的 UTF-16 代理项，如 \\ud800）：请检查文字的编码"
    return "不是有效的 JSON"


def _unreadable_elsewhere(raw: bytes | str) -> str | None:
    """Why a line the decoder took still cannot be kept, or None. The decoder skips unknown
    fields without looking into them, so their bytes are checked here: they must be UTF-8
    (no lone surrogate, no GBK), and their numbers readable by ``json.loads``."""
    if raw.__class__ is bytes and not raw.isascii():  # type: ignore[union-attr]
        try:
            raw.decode("utf-8")  # type: ignore[union-attr]
        except UnicodeDecodeError:
            return _NOT_UTF8
    if len(raw) > MAX_DIGITS and _LONG_NUMBER[raw.__class__].search(raw) is not None:  # type: ignore[index, arg-type]
        try:
            json.loads(raw)
        except ValueError:
            return f"含有超过 {MAX_DIGITS:,} 位的数字：无法处理，请检查该行"
    return None


def in_range(day: date, first: date, text: str) -> date:
    """``day`` (a field's local date) if it lies in [``first``, :data:`LAST_EVENT_DATE`];
    ValueError otherwise: an empty Excel date cell reads 1900-01-00, a typo 2206 or 0206."""
    if day < first:
        raise ValueError(f"日期“{text}”早于 {first}（min_event_date），可能是空白或填错的日期")
    if day > LAST_EVENT_DATE:
        raise ValueError(f"日期“{text}”晚于 {LAST_EVENT_DATE}，可能是年份填错")
    return day


_intern = sys.intern


class Validator:
    """Turns a JSON line or an object into an event, or raises :class:`Rejected`."""

    def __init__(self, known: Townships) -> None:
        self.known = known
        tz, first = known.tz, known.first_day
        # [start, end): local midnight of the first day and of the day after the last
        start = datetime(first.year, first.month, first.day, tzinfo=tz)
        end = datetime(LAST_EVENT_DATE.year + 1, 1, 1, tzinfo=tz)

        def decode_time(kind: type, value: Any) -> Any:
            if value is None:
                raise TypeError(_MISSING)
            if kind is Time:
                if value.__class__ is not str:
                    raise TypeError("应为时间字符串")
                t = parse_local(value, tz)
                if t < start or t >= end:
                    in_range(t.date(), first, value)
                return t
            if kind is Day:
                if value.__class__ is not str:
                    raise TypeError("应为日期字符串")
                d = parse_time(value, tz).date()
                return d if first <= d <= LAST_EVENT_DATE else in_range(d, first, value)
            raise NotImplementedError(kind)

        self._decoder = msgspec.json.Decoder(AnyEvent, dec_hook=decode_time)
        self._towns = {name: (name, reporters) for name, reporters in known.reporters.items()}
        #: the checks that need the config, per type (the others have none)
        self._checks: dict[type, Any] = {MonthlyReport: self._check_report, Ack: self._check_ack,
                                         Inspection: self._check_inspection, Incident: self._check_incident}

    def from_json(self, raw: bytes | str) -> Event:
        if len(raw) > MAX_LINE:
            raise Rejected(f"这一行太长（{len(raw):,} 字节，上限 {MAX_LINE:,}）：一行只写一个事件")
        try:
            event = self._decoder.decode(raw)
        except msgspec.ValidationError as err:
            raise Rejected(_reason(str(err))) from None
        except msgspec.DecodeError as err:
            raise Rejected(_undecodable(str(err), raw)) from None
        except RecursionError:  # the decoder's own limit, about 1,000 levels (Python's recursion limit)
            raise Rejected("JSON 嵌套过深：事件的字段不会嵌套几百层") from None
        except UnicodeEncodeError:  # a parsed value (an HTTP body, a cell) holding a lone surrogate
            raise Rejected("含有无效的字符（孤立的 UTF-16 代理项，如 \\ud800）：请检查文字的编码") from None
        problem = _unreadable_elsewhere(raw)
        if problem is not None:
            raise Rejected(problem)
        return self._check(event)

    def from_object(self, obj: Any) -> Event:
        """A row from a spreadsheet: validated as the JSON it would be, so the rules are one."""
        return self.from_json(json.dumps(obj, ensure_ascii=False))

    def _check(self, ev: Event) -> Event:
        town = self._towns.get(ev.township)
        if town is None:
            raise Rejected(f"乡镇“{ev.township}”未在配置中登记")
        _set(ev, "township", town[0])  # the config's own string: the state keyed by township keeps one copy
        shared = ev.SHARED
        if shared:
            for field in shared:
                value = getattr(ev, field)
                if value.__class__ is str:
                    _set(ev, field, _intern(value))
                elif value:  # a list of texts
                    _set(ev, field, tuple(map(_intern, value)))
        check = self._checks.get(ev.__class__)
        if check is not None:
            check(ev, town[1])
        return ev

    def _check_report(self, ev: MonthlyReport, reporters: frozenset[str]) -> None:
        if ev.reporter not in reporters:
            raise Rejected(f"报送单位“{ev.reporter}”不是{ev.township}配置的报送单位")

    def _check_ack(self, ev: Ack, reporters: frozenset[str]) -> None:
        if ev.by not in self.known.departments:
            raise Rejected(f"部门“{ev.by}”未在配置中登记")

    @staticmethod
    def _check_inspection(ev: Inspection, reporters: frozenset[str]) -> None:
        if ev.outcome == "限期整改" and ev.rectify_by is None:
            raise Rejected("检查结果为限期整改时必须填写整改期限 rectify_by（整改期限）")

    @staticmethod
    def _check_incident(ev: Incident, reporters: frozenset[str]) -> None:
        if ev.reported_at < ev.occurred_at:
            raise Rejected("报告时间早于发生时间")


def fingerprint(ev: Event) -> int:
    """What two sends of one id are compared by: the decoded event's values.

    Key order, spacing, null-versus-absent and two spellings of one instant do not make two
    sends different; any changed value does. The hash is process-local (Python's ``hash``).
    """
    return hash(ev)


_encode = msgspec.json.Encoder().encode


def stable_key(ev: Event) -> int:
    """The id's identity (type, township, id) as 64 bits that are the same in every process."""
    data = f"{ev.type}\x1f{ev.township}\x1f{ev.id}".encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def stable_fingerprint(ev: Event) -> int:
    """:func:`fingerprint`, but the same in every process: for state that outlives one."""
    return int.from_bytes(hashlib.blake2b(_encode(ev), digest_size=8).digest(), "big")
