"""The YAML config (§2) loaded and checked up front into frozen, typed objects.

A bad config is refused with one message per problem naming the file, the key path, the
line and the fix. Nothing here is mutated at run time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .events import Townships
from .families import RULES
from .params import NonNegInt, PositiveInt, RuleParams
from .timeutil import LAST_EVENT_DATE, MIN_EVENT_DATE


class ConfigError(Exception):
    """A refused config; ``problems`` are complete sentences for the person who wrote it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


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


class County(Strict):
    name: str = ""
    office: str
    escalation: list[str] = []


class Township(Strict):
    population: NonNegInt | None = None
    office: str
    reporters: list[str] = []
    routing: dict[str, str] = {}


class _File(Strict):
    timezone: str = "Asia/Shanghai"
    county: County
    max_jump_days: PositiveInt = 60
    min_event_date: date = Field(MIN_EVENT_DATE, strict=False)  # a YAML date or "YYYY-MM-DD"
    dedup_days: PositiveInt = 400
    departments: dict[str, _Department]
    townships: dict[str, Township] = Field(min_length=1)
    rules: dict[str, dict[str, Any]] = {}
    notifiers: dict[str, Any] = {}
    service: dict[str, Any] = {}


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


FIXES = {
    "extra_forbidden": "删除该键，或检查拼写",
    "missing": "补上该键",
}


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Key path → 1-based line, so that errors point at the line to edit."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                p = path + (str(k.value),)
                lines[p] = k.start_mark.line + 1
                walk(v, p)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                p = path + (str(i),)
                lines[p] = v.start_mark.line + 1
                walk(v, p)

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return lines


class Problems:
    def __init__(self, path: str, lines: dict[tuple[str, ...], int]) -> None:
        self.path, self.lines, self.items = path, lines, []

    def add(self, keys: tuple[Any, ...], what: str, fix: str = "") -> None:
        keys = tuple(str(k) for k in keys)
        line = next((self.lines[keys[:n]] for n in range(len(keys), 0, -1) if keys[:n] in self.lines), None)
        where = ".".join(keys) or "(根)"
        at = f"（第 {line} 行）" if line else ""
        self.items.append(f"{self.path}: {where}{at}：{what}" + (f"；{fix}" if fix else ""))

    def from_pydantic(self, prefix: tuple[Any, ...], err: ValidationError) -> None:
        for e in err.errors(include_url=False):
            loc = prefix + tuple(e["loc"])
            if e["type"] == "extra_forbidden":
                self.add(loc, "未知的键", FIXES["extra_forbidden"])
            elif e["type"] == "missing":
                self.add(loc, "缺少必填的键", FIXES["missing"])
            else:
                self.add(loc, f"取值 {e.get('input')!r} 无效：{e['msg']}", "按 README 中的说明修改")


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


def check_section(config: Config, key: str, model: type[BaseModel]) -> Section:
    """Validates ``config.<key>`` with ``model``; raises ConfigError with every problem."""
    try:
        lines = key_lines(Path(config.path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        lines = {}
    problems = Problems(config.path, lines)
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
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ConfigError([f"{path}: 无法读取配置文件：{e.strerror}"]) from None
    try:
        lines = key_lines(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError([f"{path}: 不是有效的 YAML：{e}"]) from None
    return parse(data, path=path, lines=lines)


def _departments(written: Mapping[str, _Department], lines: Mapping[tuple[str, ...], int]) -> dict[str, Department]:
    """Each department with its contact keys as written and the lines below it."""
    below: dict[str, dict[tuple[str, ...], int]] = {dept_id: {} for dept_id in written}
    for keys, line in lines.items():
        if len(keys) > 2 and keys[0] == "departments" and keys[1] in below:
            below[keys[1]][keys[2:]] = line
    return {dept_id: Department(d.name, dict(d.model_extra or {}), below[dept_id]) for dept_id, d in written.items()}


def parse(data: Any, *, path: str = "<config>", lines: dict[tuple[str, ...], int] | None = None) -> Config:
    problems = Problems(path, lines or {})
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: 配置文件应为 YAML 映射（键: 值），实为 {type(data).__name__}"])
    try:
        raw = _File.model_validate(data)
    except ValidationError as err:
        problems.from_pydantic((), err)
        raise ConfigError(problems.items) from None

    try:
        tz = ZoneInfo(raw.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(("timezone",), f"未知的时区“{raw.timezone}”", "使用 IANA 时区名，如 Asia/Shanghai")
        tz = ZoneInfo("Asia/Shanghai")

    depts = _departments(raw.departments, lines or {})
    _check_departments(raw, depts, problems)
    rules = _rule_params(raw, problems)
    if raw.min_event_date > LAST_EVENT_DATE:
        problems.add(("min_event_date",), f"应早于 {LAST_EVENT_DATE}（事件日期的上限）", "写一个更早的日期，如 2000-01-01")

    if problems.items:
        raise ConfigError(problems.items)
    return Config(
        path=path,
        tz=tz,
        county=raw.county,
        max_jump_days=raw.max_jump_days,
        dedup_days=raw.dedup_days,
        min_event_date=raw.min_event_date,
        departments=depts,
        townships=raw.townships,
        rules=rules,
        notifiers=raw.notifiers,
        service=raw.service,
    )


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


def _rule_params(raw: _File, problems: Problems) -> dict[str, RuleParams]:
    """Each rule's parameters: its defaults with the config's overrides, validated."""
    rules: dict[str, RuleParams] = {}
    for rule_id, override in raw.rules.items():
        if rule_id not in RULES:
            problems.add(("rules", rule_id), "未知的规则 id", f"可用的规则：{', '.join(RULES)}")
    for rule_id, spec in RULES.items():
        override = raw.rules.get(rule_id) or {}
        if not isinstance(override, dict):
            problems.add(("rules", rule_id), "应为参数映射", "例如 {enabled: false}")
            override = {}
        try:
            rules[rule_id] = spec.params.model_validate(_merge(spec.params, override))
        except ValidationError as err:
            problems.from_pydantic(("rules", rule_id), err)
        except ValueError as err:
            problems.add(("rules", rule_id), str(err))
    return rules
