"""A refused config's problems, each one Chinese sentence naming the file, the key path, the
line and the fix; and pydantic's errors said in those terms (no English message reaches the
person who wrote the file).
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Mapping

from pydantic import ValidationError


class ConfigError(Exception):
    """A refused config; ``problems`` are complete sentences for the person who wrote it.
    ``partial`` is the config as far as it could be read when the problems do not make the
    sections checked after loading (``notifiers:``, ``service:``) meaningless, so that
    ``check-config`` can report theirs too; None otherwise. It is never run."""

    def __init__(self, problems: list[str], partial: Any = None) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.partial = partial


FIXES = {
    "extra_forbidden": "删除该键，或检查拼写",
    "missing": "补上该键",
}

_CJK = re.compile(r"[\u3400-\u9fff]")


def shown(value: Any, limit: int = 40) -> str:
    """A value as the person wrote it, short: true/false, null, numbers, “文字”, 列表 / 映射."""
    if value is None:
        return "空值（null）"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= limit else text[:limit] + "…"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, str):
        text = value if len(value) <= limit else value[:limit] + "…"
        return f"“{text}”"
    if isinstance(value, (list, tuple, set)):
        return "列表"
    if isinstance(value, dict):
        return "映射"
    return type(value).__name__


def _choices(expected: str) -> str:
    """pydantic's ``'a', 'b' or 'c'`` as ``'a'、'b'、'c'``."""
    return re.sub(r",\s*|\s+or\s+", "、", expected)


# pydantic error type → (what is wrong, the fix); {input} is the value shown, other fields
# come from the error's context.
PYDANTIC: dict[str, tuple[str, str]] = {
    "missing": ("缺少必填的键", FIXES["missing"]),
    "extra_forbidden": ("未知的键", FIXES["extra_forbidden"]),
    "int_type": ("应为整数，实为 {input}", "写成不带小数点、不加引号的整数，如 14"),
    "int_parsing": ("应为整数，实为 {input}", "写成不带小数点、不加引号的整数，如 14"),
    "int_from_float": ("应为整数，实为 {input}", "写成不带小数点、不加引号的整数，如 14"),
    "float_type": ("应为数字，实为 {input}", "写成不加引号的数字，如 24 或 0.5"),
    "float_parsing": ("应为数字，实为 {input}", "写成不加引号的数字，如 24 或 0.5"),
    "finite_number": ("应为有限的数字，实为 {input}", "写成普通数字，如 24"),
    "bool_type": ("应为 true 或 false，实为 {input}", "写 true 或 false（不加引号）"),
    "bool_parsing": ("应为 true 或 false，实为 {input}", "写 true 或 false（不加引号）"),
    "string_type": ("应为文字，实为 {input}", "写成文字；像数字或日期的文字请加引号，如 \"0123\""),
    "list_type": ("应为列表，实为 {input}", "写成 [甲, 乙]，或每行一项“- 甲”"),
    "tuple_type": ("应为列表，实为 {input}", "写成 [甲, 乙]，或每行一项“- 甲”"),
    "set_type": ("应为列表，实为 {input}", "写成 [甲, 乙]，或每行一项“- 甲”"),
    "dict_type": ("应为映射（键: 值），实为 {input}", "写成“键: 值”，如 {{enabled: false}}"),
    "model_type": ("应为映射（键: 值），实为 {input}", "在该键下逐行写出“键: 值”"),
    "model_attributes_type": ("应为映射（键: 值），实为 {input}", "在该键下逐行写出“键: 值”"),
    "greater_than": ("取值 {input} 太小：应大于 {gt}", "改为大于 {gt} 的数"),
    "greater_than_equal": ("取值 {input} 太小：应不小于 {ge}", "改为不小于 {ge} 的数"),
    "less_than": ("取值 {input} 太大：应小于 {lt}", "改为小于 {lt} 的数"),
    "less_than_equal": ("取值 {input} 太大：应不大于 {le}", "改为不大于 {le} 的数"),
    "too_short": ("至少要有 {min_length} 项", "补上内容"),
    "too_long": ("最多只能有 {max_length} 项", "删去多余的项"),
    "string_too_short": ("文字太短：至少 {min_length} 个字符", "补全该值"),
    "string_too_long": ("文字太长：最多 {max_length} 个字符", "改短该值"),
    "literal_error": ("取值 {input} 不在可选范围内", "改为 {expected} 之一"),
    "enum": ("取值 {input} 不在可选范围内", "改为 {expected} 之一"),
    "date_type": ("应为日期，实为 {input}", "写成 YYYY-MM-DD，如 2000-01-01"),
    "date_parsing": ("应为日期，实为 {input}", "写成 YYYY-MM-DD，如 2000-01-01"),
    "date_from_datetime_parsing": ("应为日期，实为 {input}", "写成 YYYY-MM-DD，如 2000-01-01"),
    "date_from_datetime_inexact": ("应为日期（不带时刻），实为 {input}", "写成 YYYY-MM-DD，如 2000-01-01"),
    "datetime_type": ("应为日期时间，实为 {input}", "写成 2026-05-01T08:30 这样的格式"),
    "datetime_parsing": ("应为日期时间，实为 {input}", "写成 2026-05-01T08:30 这样的格式"),
    "time_type": ("应为时刻，实为 {input}", "写成 HH:MM，如 '08:30'"),
    "time_parsing": ("应为时刻，实为 {input}", "写成 HH:MM，如 '08:30'"),
    "none_required": ("应留空，实为 {input}", "删除该值"),
}
FALLBACK = ("取值 {input} 无效", "按 README 中的说明修改")


def _ctx(err: Mapping[str, Any]) -> dict[str, Any]:
    ctx = {k: v for k, v in (err.get("ctx") or {}).items()}
    if "expected" in ctx:
        ctx["expected"] = _choices(str(ctx["expected"]))
    for k in ("gt", "ge", "lt", "le"):
        if isinstance(ctx.get(k), float) and float(ctx[k]).is_integer():
            ctx[k] = int(ctx[k])
    ctx["input"] = shown(err.get("input"))
    return ctx


def pydantic_problem(err: Mapping[str, Any]) -> tuple[str, str]:
    """One pydantic error as (what is wrong, fix) in Chinese. A validator's own message (a
    ``ValueError`` raised in our models) is kept when it is Chinese; any other text falls back
    to a generic Chinese sentence."""
    kind = err["type"]
    if kind in ("value_error", "assertion_error"):
        said = str((err.get("ctx") or {}).get("error", ""))
        if _CJK.search(said):
            return said, ""
        kind = ""
    what, fix = PYDANTIC.get(kind, FALLBACK)
    ctx = _ctx(err)
    try:
        return what.format(**ctx), fix.format(**ctx)
    except (KeyError, IndexError, ValueError):
        return FALLBACK[0].format(**ctx), FALLBACK[1]


class Problems:
    """The problems found in one file, worded alike; ``lines`` maps a key path to its line."""

    def __init__(self, path: str, lines: Mapping[tuple[str, ...], int]) -> None:
        self.path, self.lines, self.items = path, lines, []

    def add(self, keys: tuple[Any, ...], what: str, fix: str = "", *, line: int | None = None) -> None:
        """``line``: where, when not the line of the key path (the second of two equal keys)."""
        keys = tuple(str(k) for k in keys)
        if line is None:
            line = next((self.lines[keys[:n]] for n in range(len(keys), 0, -1) if keys[:n] in self.lines), None)
        where = ".".join(keys) or "(根)"
        at = f"（第 {line} 行）" if line else ""
        self.items.append(f"{self.path}: {where}{at}：{what}" + (f"；{fix}" if fix else ""))

    def at(self, line: int, column: int | None, what: str, fix: str = "") -> None:
        """A problem found at a place in the text rather than under a key (syntax, encoding)."""
        where = f"第 {line} 行" + (f"第 {column} 列" if column else "")
        self.items.append(f"{self.path}: {where}：{what}" + (f"；{fix}" if fix else ""))

    def from_pydantic(self, prefix: tuple[Any, ...], err: ValidationError) -> None:
        for e in err.errors(include_url=False):
            loc = prefix + tuple(e["loc"])
            what, fix = pydantic_problem(e)
            if loc and loc[-1] == "[key]":  # the key itself is wrong (a number where a name goes)
                loc = loc[:-1]
                what = f"键 {shown(e.get('input'))} 无效：{what}"
            self.add(loc, what, fix)
