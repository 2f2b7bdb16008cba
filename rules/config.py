"""The YAML config (§2) loaded and checked up front into frozen, typed objects.

A bad config is refused with one message per problem naming the file, the key path, the
line and the fix. Nothing here is mutated at run time.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from . import configfile
from .calendar import Calendar, iso_date
from .events import Townships
from .families import RULES
from .params import Days, RuleParams
from .problems import FIXES, ConfigError, Problems, shown
from .timeutil import LAST_EVENT_DATE, MIN_EVENT_DATE

__all__ = ["FIXES", "Config", "ConfigError", "Department", "Problems", "Section", "Strict", "check_section",
           "load", "parse"]

FIRST_MIN_EVENT_DATE = date(1900, 1, 1)  # the lunar calendar's first year (春节 is known from 1900)


class Strict(BaseModel):
    """Every config model: an unknown key is an error, values are not coerced, nothing changes."""
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass(frozen=True)
class Department:
    """What the rules know of a department: its name. Its other keys say how notices reach it
    (``email``, ``wecom``, …); the rules do not read them. They are kept as written in
    ``contacts``, and ``lines`` gives the line of each key path below the department (``("email",)``,
    ``("wecom", "webhook")``), for the delivery side to check them in the same terms as the rest
    (shian.notifiers.channels)."""
    name: str
    contacts: Mapping[str, Any] = field(default_factory=dict)
    lines: Mapping[tuple[str, ...], int] = field(default_factory=dict, compare=False, repr=False)  # where, not what


class _Department(Strict):
    """A department as written: its name, and any other key kept for the delivery side."""
    model_config = ConfigDict(**{**Strict.model_config, "extra": "allow"})
    name: str


def _none_is_empty(v: Any) -> Any:
    """An optional section left empty (``rules:`` with every line commented out) is ``{}``."""
    return {} if v is None else v


def _min_event_date(v: Any) -> date:
    """``min_event_date``: a YAML date or "YYYY-MM-DD", within the calendar's years."""
    if isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        try:
            v = date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"“{v}”不是有效的日期（月 01–12，日不超过该月的天数）；写成 YYYY-MM-DD，如 2000-01-01") from None
    if isinstance(v, datetime) or not isinstance(v, date):
        raise ValueError(f"应为日期，实为 {shown(v)}；写成 YYYY-MM-DD，如 2000-01-01")
    if not FIRST_MIN_EVENT_DATE <= v <= LAST_EVENT_DATE:
        raise ValueError(f"应在 {FIRST_MIN_EVENT_DATE}（农历可查的首年）与 {LAST_EVENT_DATE}（事件日期的上限）之间，"
                         f"实为 {v}；写一个这期间的日期，如 2000-01-01")
    return v


OptionalSection = Annotated[dict[str, Any], BeforeValidator(_none_is_empty)]


class County(Strict):
    name: str = ""
    office: str
    escalation: list[str] = []


class Township(Strict):
    population: Annotated[int, Field(ge=0, le=10_000_000)] | None = None  # informational
    office: str
    reporters: list[str] = []
    routing: dict[str, str] = {}


class CalendarSection(Strict):
    """``calendar:`` as written: lists of ISO dates (checked by :func:`_calendar`)."""
    holidays: list[Any] = []
    workdays: list[Any] = []


class _File(Strict):
    timezone: str = "Asia/Shanghai"
    county: County
    max_jump_days: Days = 60
    min_event_date: Annotated[date, BeforeValidator(_min_event_date)] = MIN_EVENT_DATE
    dedup_days: Days = 400
    departments: dict[str, _Department]
    townships: dict[str, Township] = Field(min_length=1)
    calendar: CalendarSection | None = None
    rules: OptionalSection = {}        # rule id → its overrides, checked against each rule's parameters
    notifiers: OptionalSection = {}    # checked by shian.notifiers.settings
    service: OptionalSection = {}      # checked by shian.office.settings


REQUIRED = frozenset(name for name, f in _File.model_fields.items() if f.is_required())


@dataclass(frozen=True)
class Config:
    path: str
    tz: ZoneInfo
    county: County
    max_jump_days: int
    dedup_days: int
    departments: Mapping[str, Department]
    townships: Mapping[str, Township]
    rules: Mapping[str, RuleParams]
    notifiers: Mapping[str, Any]
    service: Mapping[str, Any]  # checked by shian.office.settings
    min_event_date: date = MIN_EVENT_DATE
    lines: Mapping[tuple[str, ...], int] = field(default_factory=dict, compare=False, repr=False)  # key path → line
    calendar: Calendar = Calendar()  # official working days (§3), for every rule and quiet hours

    def params(self, rule_id: str) -> Any:
        return self.rules[rule_id]

    def enabled(self, rule_id: str) -> bool:
        return self.rules[rule_id].enabled

    def known(self) -> Townships:
        return Townships(
            reporters={n: frozenset(t.reporters) for n, t in self.townships.items()},
            departments=frozenset(self.departments),
            tz=self.tz,
            first_day=self.min_event_date,
        )


@dataclass(frozen=True)
class Section:
    """A section of the config checked after :func:`load` by the part that owns it
    (``notifiers:``, ``service:``): its typed model, a problem list that names the config's
    file and lines, and paths resolved against the config file's folder."""
    raw: Any
    problems: Problems
    base: Path

    def path(self, p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else self.base / q


def _lines_of(config: Config) -> Mapping[tuple[str, ...], int]:
    if config.lines:
        return config.lines
    try:
        return configfile.read(config.path).lines
    except ConfigError:
        return {}


def check_section(config: Config, key: str, model: type[BaseModel]) -> Section:
    """Validates ``config.<key>`` with ``model``; raises ConfigError with every problem."""
    problems = Problems(config.path, _lines_of(config))
    try:
        raw = model.model_validate(dict(getattr(config, key) or {}))
    except ValidationError as err:
        problems.from_pydantic((key,), err)
        raise ConfigError(problems.items) from None
    return Section(raw, problems, Path(config.path).resolve().parent)


def _merge(spec_params: type[RuleParams], override: dict[str, Any]) -> dict[str, Any]:
    """Parameter-by-parameter merge; mapping parameters (targets, hours) merge per key, except
    those the rule's params name in ``WHOLE`` (a schedule given replaces the default)."""
    merged: dict[str, Any] = {}
    for name, value in override.items():
        field = spec_params.model_fields.get(name)
        default = field.default if field is not None else None
        if isinstance(value, dict) and isinstance(default, dict) and name not in spec_params.WHOLE:
            merged[name] = {**default, **value}
        else:
            merged[name] = value
    return merged


def load(path: str | Path) -> Config:
    """The config file at ``path``, read (size, encoding, YAML, shape: :mod:`.configfile`) and
    checked; raises ConfigError with every problem found."""
    doc = configfile.read(str(path))
    return parse(doc.data, path=str(path), lines=doc.lines)


def _departments(written: Mapping[str, _Department], lines: Mapping[tuple[str, ...], int]) -> dict[str, Department]:
    """Each department with its contact keys as written and the lines below it."""
    below: dict[str, dict[tuple[str, ...], int]] = {dept_id: {} for dept_id in written}
    for keys, line in lines.items():
        if len(keys) > 2 and keys[0] == "departments" and keys[1] in below:
            below[keys[1]][keys[2:]] = line
    return {dept_id: Department(d.name, dict(d.model_extra or {}), below[dept_id]) for dept_id, d in written.items()}


_KINDS = {dict: "映射", list: "列表", str: "文字", int: "数字", float: "数字", bool: "true/false", type(None): "空的文件"}


def parse(data: Any, *, path: str = "<config>", lines: Mapping[tuple[str, ...], int] | None = None) -> Config:
    """The config's data checked into a :class:`Config`; raises ConfigError with every
    problem: the top-level keys and the ``rules:`` section are checked together."""
    lines = dict(lines or {})
    problems = Problems(path, lines)
    if not isinstance(data, dict):
        kind = _KINDS.get(type(data), type(data).__name__)
        raise ConfigError([f"{path}: 配置文件应为 YAML 映射（键: 值），实为{kind}；"
                           "按 README 的示例写出 county、departments、townships 等键"])
    try:
        raw = _File.model_validate(data)
    except ValidationError as err:
        problems.from_pydantic((), err)
        if isinstance(data.get("rules"), dict):
            _rule_params(data["rules"], problems)
        raise ConfigError(problems.items, partial=_partial(data, err, path, lines)) from None
    config = _config(raw, path, lines, problems)
    if problems.items:
        raise ConfigError(problems.items, partial=config)
    return config


def _partial(data: dict[str, Any], err: ValidationError, path: str, lines: Mapping[tuple[str, ...], int]) -> Config | None:
    """The config without the top-level keys that failed, when none of them is required: what
    the sections checked after loading may still be checked against (never run)."""
    failed = {str(e["loc"][0]) for e in err.errors() if e["loc"]}
    if failed & REQUIRED:
        return None
    try:
        raw = _File.model_validate({k: v for k, v in data.items() if k not in failed})
    except ValidationError:
        return None
    return _config(raw, path, lines, Problems(path, lines))


def _config(raw: _File, path: str, lines: Mapping[tuple[str, ...], int], problems: Problems) -> Config:
    """The checked file as a Config; problems across keys (departments named, time zone,
    rule parameters) are added to ``problems``."""
    try:
        tz = ZoneInfo(raw.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        problems.add(("timezone",), f"未知的时区“{raw.timezone}”", "使用 IANA 时区名，如 Asia/Shanghai")
        tz = ZoneInfo("Asia/Shanghai")
    depts = _departments(raw.departments, lines)
    _check_departments(raw, depts, problems)
    calendar = _calendar(raw.calendar or CalendarSection(), problems)
    return Config(
        path=path,
        tz=tz,
        county=raw.county,
        max_jump_days=raw.max_jump_days,
        dedup_days=raw.dedup_days,
        min_event_date=raw.min_event_date,
        calendar=calendar,
        departments=depts,
        townships=raw.townships,
        rules=_rule_params(raw.rules, problems),
        notifiers=raw.notifiers,
        service=raw.service,
        lines=lines,
    )


def _calendar(raw: CalendarSection, problems: Problems) -> Calendar:
    """``calendar:``: every entry a real date (a YAML date or "YYYY-MM-DD"), none in both lists."""
    lists: dict[str, set[date]] = {"holidays": set(), "workdays": set()}
    for key, dates in lists.items():
        for i, value in enumerate(getattr(raw, key)):
            d = iso_date(value)
            if d is None:
                problems.add(("calendar", key, i), f"“{value}”不是有效的日期", "写成 YYYY-MM-DD（不带时间），如 2027-02-05")
            elif d in lists["holidays"] and key == "workdays":
                problems.add(("calendar", key, i), f"{d} 同时列在 holidays 和 workdays 中", "一个日期只能是其中之一")
            else:
                dates.add(d)
    return Calendar(frozenset(lists["holidays"]), frozenset(lists["workdays"]))


def _check_departments(raw: _File, depts: dict[str, Department], problems: Problems) -> None:
    """Every department the county and townships name is defined; reporters listed once."""
    def dept(keys: tuple[Any, ...], dept_id: str) -> None:
        if dept_id not in depts:
            problems.add(keys, f"未知的部门 id“{dept_id}”", f"在 departments 下定义它，或改用已有的部门：{', '.join(depts)}")

    dept(("county", "office"), raw.county.office)
    for i, d in enumerate(raw.county.escalation):
        dept(("county", "escalation", i), d)
    for name, t in raw.townships.items():
        dept(("townships", name, "office"), t.office)
        for key, d in t.routing.items():
            dept(("townships", name, "routing", key), d)
        if len(set(t.reporters)) != len(t.reporters):
            problems.add(("townships", name, "reporters"), "报送单位重复", "每个报送单位只列一次")


def _rule_params(written: Mapping[Any, Any], problems: Problems) -> dict[str, RuleParams]:
    """Each rule's parameters: its defaults with the config's overrides (``written``: the
    ``rules:`` section), validated."""
    rules: dict[str, RuleParams] = {}
    for rule_id in written:
        if rule_id not in RULES:
            problems.add(("rules", rule_id), "未知的规则 id", f"可用的规则：{', '.join(RULES)}")
    for rule_id, spec in RULES.items():
        override = written.get(rule_id) or {}
        if not isinstance(override, dict):
            problems.add(("rules", rule_id), f"应为参数映射，实为 {shown(override)}", "例如 {enabled: false}")
            override = {}
        try:
            rules[rule_id] = spec.params.model_validate(_merge(spec.params, override))
        except ValidationError as err:
            problems.from_pydantic(("rules", rule_id), err)
        except ValueError as err:
            problems.add(("rules", rule_id), str(err))
    return rules
