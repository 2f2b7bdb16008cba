"""The seven event types of the contract (§1) and their validation.

Validation here is stateless: it needs the line and the config (townships, reporters,
departments, timezone) but no history. What depends on history — duplicates, the
``max_jump_days`` check, acks naming a known notice — is the engine's.

JSON Lines take the fast path: pydantic-core parses and validates the bytes in one step.
Only a line that fails is parsed again with :mod:`json` to say in plain words what is wrong.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    BeforeValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
)

from .timeutil import parse_period, parse_time

PROGRAMS = ("food_sampling", "agri_monitoring", "rapid_test")
VERDICTS = ("合格", "不合格")
OUTCOMES = ("合格", "限期整改", "责令停业", "立案查处")
INSPECTION_TYPES = ("日常检查", "双随机", "专项检查", "节前联合检查", "复查")
ACTIONS = ("签收", "办结")
NO_VALUE_TEXTS = ("未检出", "ND", "阴性")
POSITIVE_TEXT = "阳性"
VALUE_TEXT = r"^(未检出|ND|阴性|阳性|<\s*\d+(\.\d+)?)$"


def _time(value: Any, info: ValidationInfo) -> datetime:
    if not isinstance(value, str):
        raise ValueError("应为时间字符串")
    return parse_time(value, info.context["tz"])


def _date(value: Any, info: ValidationInfo) -> date:
    if not isinstance(value, str):
        raise ValueError("应为日期字符串")
    return parse_time(value, info.context["tz"]).date()


def _period(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("应为 YYYY-MM 字符串")
    return parse_period(value)


Time = Annotated[datetime, BeforeValidator(_time)]
Day = Annotated[date, BeforeValidator(_date)]
Period = Annotated[str, BeforeValidator(_period)]
Text = Annotated[str, Field(pattern=r"^\s*\S")]
Count = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Item(_Model):
    item: Text
    value: float | Annotated[str, Field(pattern=VALUE_TEXT)] | None = None
    unit: str | None = None
    limit: float | None = None
    result: Literal["合格", "不合格"] | None = None

    @property
    def number(self) -> float | None:
        """The numeric value: ``<x`` reads as 0, texts without a number as None."""
        v = self.value
        if isinstance(v, str):
            return 0.0 if v.startswith("<") else None
        return v

    @property
    def failed(self) -> bool:
        """Item verdict: any 不合格 wins (result, 阳性, or value above the upper limit)."""
        if self.result == "不合格" or self.value == POSITIVE_TEXT:
            return True
        n = self.number
        return n is not None and self.limit is not None and n > self.limit


class Event(_Model):
    """Fields every event has. ``TIME_FIELD`` names the event-time field."""

    TIME_FIELD: ClassVar[str]
    id: Text
    township: Text

    @property
    def time(self) -> datetime:
        return getattr(self, self.TIME_FIELD)


class SamplingResult(Event):
    type: Literal["sampling_result"]
    TIME_FIELD: ClassVar[str] = "sampled_at"
    program: Literal["food_sampling", "agri_monitoring", "rapid_test"] = "food_sampling"
    sampled_at: Time
    reported_at: Time | None = None
    village: str | None = None
    entity: Text
    entity_id: str | None = None
    category: Text
    food: str | None = None
    items: tuple[Item, ...]
    conclusion: Literal["合格", "不合格"] | None = None

    @property
    def time(self) -> datetime:
        return self.reported_at or self.sampled_at


class Inspection(Event):
    type: Literal["inspection"]
    TIME_FIELD: ClassVar[str] = "inspected_at"
    inspected_at: Time
    village: str | None = None
    entity: Text
    entity_id: str | None = None
    entity_type: Text
    inspection_type: Literal["日常检查", "双随机", "专项检查", "节前联合检查", "复查"]
    license_valid: bool | None = None
    staff_total: Count | None = None
    staff_with_health_cert: Count | None = None
    grade: str | None = None
    findings: tuple[str, ...] | None = None
    outcome: Literal["合格", "限期整改", "责令停业", "立案查处"]
    rectify_by: Day | None = None


class MonthlyReport(Event):
    type: Literal["monthly_report"]
    TIME_FIELD: ClassVar[str] = "submitted_at"
    reporter: Text
    period: Period
    submitted_at: Time


class Incident(Event):
    type: Literal["incident"]
    TIME_FIELD: ClassVar[str] = "reported_at"
    occurred_at: Time
    reported_at: Time
    kind: Text
    cases: Count | None = None
    deaths: Count | None = None
    grade: str | None = None


class Disposal(Event):
    type: Literal["disposal"]
    TIME_FIELD: ClassVar[str] = "disposed_at"
    sample_id: Text
    disposed_at: Time
    measures: tuple[str, ...] | None = None


class Banquet(Event):
    type: Literal["banquet"]
    TIME_FIELD: ClassVar[str] = "registered_at"
    village: str | None = None
    host: Text
    held_at: Time
    registered_at: Time
    guests: Count
    chef: str | None = None
    chef_health_cert: bool | None = None


class Ack(Event):
    type: Literal["ack"]
    TIME_FIELD: ClassVar[str] = "acked_at"
    notice_id: Text
    by: Text
    action: Literal["签收", "办结"] = "签收"
    acked_at: Time
    note: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    m.model_fields["type"].annotation.__args__[0]: m  # type: ignore[union-attr]
    for m in (SamplingResult, Inspection, MonthlyReport, Incident, Disposal, Banquet, Ack)
}
AnyEvent = Annotated[
    Union[SamplingResult, Inspection, MonthlyReport, Incident, Disposal, Banquet, Ack],
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Event] = TypeAdapter(AnyEvent)
_BY_TAG = {tag.encode(): model for tag, model in EVENT_TYPES.items()}
_TYPE_FIRST = re.compile(rb'\s*\{\s*"type"\s*:\s*"([a-z_]+)"')

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
    "action": "动作", "acked_at": "签收时间", "note": "反馈",
}


class Rejected(Exception):
    """An input line set aside with a reason in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Townships:
    """What validation needs from the config: who exists."""

    reporters: dict[str, frozenset[str]]
    departments: frozenset[str]
    tz: Any


def _where(loc: tuple[Any, ...]) -> str:
    """``items.1.value`` with the Chinese label of the last named field."""
    parts = [str(p) for p in loc if isinstance(p, int) or p in LABELS]
    name = next((p for p in reversed(parts) if p in LABELS), None)
    path = ".".join(parts)
    return f"{path}（{LABELS[name]}）" if name else path


def _reason(err: ValidationError, obj: Any = None) -> str:
    e = err.errors(include_url=False)[0]
    kind, loc, given = e["type"], e["loc"], e.get("input")
    if kind == "json_invalid":
        return "不是有效的 JSON"
    if kind == "model_attributes_type" or (kind == "model_type" and not loc):
        return "不是 JSON 对象"
    if kind == "union_tag_not_found":
        return "缺少必填字段 type（类型）"
    if kind == "union_tag_invalid":
        tag = obj.get("type") if isinstance(obj, dict) else given
        return f"未知的事件类型“{tag}”（应为 {', '.join(EVENT_TYPES)} 之一）"
    where = _where(loc)
    if kind == "missing" or given is None:
        return f"缺少必填字段 {where}"
    if kind == "string_pattern_mismatch":
        return f"必填字段 {where} 为空"
    if kind == "literal_error":
        return f"字段 {where} 的值“{given}”不在允许范围内（{e['ctx']['expected']}）"
    if kind == "greater_than_equal":
        return f"字段 {where} 应为非负整数，实为 {given!r}"
    if "value" in loc and "items" in loc:
        return f"字段 {where} 的值“{given}”无法识别（应为数值、未检出、ND、阴性、阳性或 <x）"
    if kind == "value_error":
        return f"字段 {where}：{e['ctx']['error']}"
    expected = {
        "string_type": "文本", "int_type": "整数", "float_type": "数值", "bool_type": "true / false",
        "list_type": "列表", "model_type": "对象", "dict_type": "对象",
    }.get(kind, e["msg"])
    return f"字段 {where} 类型错误：应为{expected}，实为 {json.dumps(given, ensure_ascii=False)}"


class Validator:
    """Turns a JSON line or an object into an event, or raises :class:`Rejected`."""

    def __init__(self, known: Townships) -> None:
        self.known = known
        self._ctx = {"tz": known.tz}

    def from_json(self, raw: bytes | str) -> Event:
        # Most lines start with their type: validating against that one model skips the
        # union's dispatch. Anything else (or a failure) takes the general path.
        head = _TYPE_FIRST.match(raw if isinstance(raw, bytes) else raw.encode())
        model = _BY_TAG.get(head.group(1)) if head else None
        try:
            if model is not None:
                try:
                    return self._check(model.model_validate_json(raw, context=self._ctx))
                except ValidationError:
                    pass
            event = _ADAPTER.validate_json(raw, context=self._ctx)
        except ValidationError as err:
            raise Rejected(self._explain(raw, err)) from None
        return self._check(event)

    def from_object(self, obj: Any) -> Event:
        """A row from a spreadsheet: validated as the JSON it would be, so the rules are one."""
        return self.from_json(json.dumps(obj, ensure_ascii=False))

    @staticmethod
    def _explain(raw: bytes | str, err: ValidationError) -> str:
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return "不是有效的 JSON"
        if not isinstance(obj, dict):
            return "不是 JSON 对象"
        return _reason(err, obj)

    def _check(self, ev: Event) -> Event:
        reporters = self.known.reporters.get(ev.township)
        if reporters is None:
            raise Rejected(f"乡镇“{ev.township}”未在配置中登记")
        if isinstance(ev, MonthlyReport) and ev.reporter not in reporters:
            raise Rejected(f"报送单位“{ev.reporter}”不是{ev.township}配置的报送单位")
        if isinstance(ev, Ack) and ev.by not in self.known.departments:
            raise Rejected(f"部门“{ev.by}”未在配置中登记")
        if isinstance(ev, Inspection) and ev.outcome == "限期整改" and ev.rectify_by is None:
            raise Rejected("检查结果为限期整改时必须填写整改期限 rectify_by（整改期限）")
        if isinstance(ev, Incident) and ev.reported_at < ev.occurred_at:
            raise Rejected("报告时间早于发生时间")
        return ev


def fingerprint(ev: Event) -> int:
    """What two sends of one id are compared by: the validated event's values.

    Key order, spacing, null-versus-absent and two spellings of one instant do not make two
    sends different; any changed value does. The hash is process-local (Python's ``hash``).
    """
    return hash(ev)
