"""Spreadsheet rows (CSV / XLSX as county offices send them) -> plain event dicts.

Pure functions; the file I/O is in ``shian.streams.sources``. The dicts carry the contract's
English field names and are validated afterwards exactly like JSON Lines objects, so this
module only maps headers, converts cells and groups the rows of one sample. It rejects a row
only when no event dict can be built from it (no event type, an unreadable date, ...), with a
reason in Chinese that names the column and the value, because the people who read it are the
ones who filled in the sheet.
"""

from __future__ import annotations

import json
import numbers
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Iterable, Sequence

from .records import Record

__all__ = [
    "HEADERS",
    "TYPES",
    "event_time_key",
    "rows_to_events",
    "type_from_name",
    "type_from_value",
]

Cell = Any


# ---------------------------------------------------------------------------------------------
# Event types and where they come from

TYPES = ("sampling_result", "inspection", "monthly_report", "incident", "disposal", "banquet", "ack", "entity")

#: Values of a 类型 column (English type names are accepted too).
_TYPE_WORDS = {
    "抽检": "sampling_result",
    "检查": "inspection",
    "月报": "monthly_report",
    "事故": "incident",
    "事件": "incident",
    "处置": "disposal",
    "聚餐": "banquet",
    "宴席": "banquet",
    "签收": "ack",
    "台账": "entity",
}
#: Words looked for in sheet and file names; rapid-test sheets are often called 快检…. The
#: register (台账, 主体…) only by a name that begins with it: 检查台账 is a sheet of inspections.
_NAME_WORDS = {word: kind for word, kind in {**_TYPE_WORDS, "快检": "sampling_result"}.items() if kind != "entity"}
_REGISTER_PREFIXES = ("台账", "主体")
#: English type names in a sheet or file name, as whole words ("ack" must not match "feedback").
_ENGLISH_NAME = re.compile(r"(?<![a-z])(" + "|".join(TYPES) + r")s?(?![a-z])")

_TYPE_HEADERS = {"类型", "type"}


def type_from_value(text: str | None) -> str | None:
    """The event type named by a 类型 cell, or None."""
    word = (text or "").strip()
    return word.lower() if word.lower() in TYPES else _TYPE_WORDS.get(word)


def type_from_name(name: str | None) -> str | None:
    """The event type a sheet or file name points at (the earliest type word in it), or None."""
    if not name:
        return None
    hits = [(name.find(word), kind) for word, kind in _NAME_WORDS.items() if word in name]
    if name.strip().startswith(_REGISTER_PREFIXES):
        hits.append((-1, "entity"))
    hits += [(m.start(), m.group(1)) for m in _ENGLISH_NAME.finditer(name.lower())]
    return min(hits)[1] if hits else None


# ---------------------------------------------------------------------------------------------
# Header mapping: Chinese header (or the English field name itself) -> field, per event type

_FIELDS = {
    "sampling_result": ("id", "program", "sampled_at", "reported_at", "township", "village",
                        "entity", "entity_id", "category", "food",
                        "item", "value", "unit", "limit", "result", "conclusion"),
    "inspection": ("id", "inspected_at", "township", "village", "entity", "entity_id",
                   "entity_type", "inspection_type", "license_valid", "staff_total",
                   "staff_with_health_cert", "grade", "findings", "outcome", "rectify_by"),
    "monthly_report": ("id", "reporter", "township", "period", "submitted_at"),
    "incident": ("id", "township", "occurred_at", "reported_at", "kind", "cases", "deaths", "grade"),
    "disposal": ("id", "sample_id", "township", "disposed_at", "measures"),
    "banquet": ("id", "township", "village", "host", "held_at", "registered_at", "guests",
                "chef", "chef_health_cert"),
    "ack": ("id", "township", "notice_id", "by", "action", "acked_at", "note"),
    "entity": ("id", "township", "entity", "entity_id", "entity_type", "risk_level", "registered_at", "status"),
}

_ENTITY_ID = {"统一社会信用代码": "entity_id", "许可证号": "entity_id"}
_CHINESE = {
    "sampling_result": {
        "样品编号": "id", "任务类别": "program", "抽样日期": "sampled_at",
        "报告日期": "reported_at", "检验报告日期": "reported_at", "村": "village",
        "被抽样单位名称": "entity", **_ENTITY_ID, "食品大类": "category",
        "样品名称": "food", "食品名称": "food", "检验项目": "item", "检验结果": "value",
        "计量单位": "unit", "单位": "unit", "标准值": "limit", "标准限值": "limit",
        "单项结论": "result", "单项判定": "result", "结论": "conclusion", "检验结论": "conclusion",
    },
    "inspection": {
        "检查编号": "id", "检查日期": "inspected_at", "村": "village",
        "被检查单位": "entity", "单位名称": "entity", **_ENTITY_ID,
        "业态": "entity_type", "单位类型": "entity_type", "检查类型": "inspection_type",
        "许可证有效": "license_valid", "从业人员数": "staff_total",
        "持健康证人数": "staff_with_health_cert", "量化等级": "grade", "发现问题": "findings",
        "检查结果": "outcome", "整改期限": "rectify_by",
    },
    "monthly_report": {"报送单位": "reporter", "所属月份": "period", "报送时间": "submitted_at"},
    "incident": {
        "事件编号": "id", "事故编号": "id", "发生时间": "occurred_at", "报告时间": "reported_at",
        "事件类型": "kind", "发病人数": "cases", "死亡人数": "deaths", "事件等级": "grade",
    },
    "disposal": {"处置编号": "id", "样品编号": "sample_id", "处置时间": "disposed_at",
                 "处置措施": "measures"},
    "banquet": {
        "登记编号": "id", "村": "village", "举办者": "host", "举办时间": "held_at",
        "登记时间": "registered_at", "就餐人数": "guests", "厨师": "chef",
        "厨师健康证": "chef_health_cert",
    },
    "ack": {"签收编号": "id", "通知编号": "notice_id", "签收部门": "by", "动作": "action",
            "签收时间": "acked_at", "反馈": "note"},
    "entity": {"单位名称": "entity", **_ENTITY_ID, "业态": "entity_type", "单位类型": "entity_type",
               "风险等级": "risk_level", "登记日期": "registered_at", "评定日期": "registered_at",
               "状态": "status"},
}
#: 编号 is the generic "number" column and 乡镇 the township in every sheet.
_COMMON = {"编号": "id", "乡镇": "township"}

#: Per event type: normalised header -> contract field.
HEADERS: dict[str, dict[str, str]] = {
    kind: {**_COMMON, **{f: f for f in fields}, **_CHINESE[kind]} for kind, fields in _FIELDS.items()
}
_KNOWN_HEADERS = set().union(*HEADERS.values(), _TYPE_HEADERS)

#: A trailing note such as "(mg/kg)" or "（必填）" and a required-marker "*" do not change the column.
_HEADER_NOTE = re.compile(r"\s*[(（][^()（）]*[)）]$")


def _header_key(cell: Cell) -> str:
    """The form a header is looked up in: trimmed, note and '*' removed, English lower-cased."""
    text = _HEADER_NOTE.sub("", (_text(cell) or "").strip("*＊ ")).strip("*＊ ")
    return text.lower() if text.isascii() else text


# ---------------------------------------------------------------------------------------------
# Cell conversion

_DATETIME_FIELDS = {"sampled_at", "reported_at", "inspected_at", "submitted_at", "occurred_at",
                    "disposed_at", "held_at", "registered_at", "acked_at"}
_BOOL_FIELDS = {"license_valid", "chef_health_cert"}
_INT_FIELDS = {"staff_total", "staff_with_health_cert", "cases", "deaths", "guests"}
_LIST_FIELDS = {"findings", "measures"}
_ITEM_FIELDS = ("item", "value", "unit", "limit", "result")

_PROGRAMS = {
    "食品安全抽检": "food_sampling", "监督抽检": "food_sampling",
    "食品安全监督抽检": "food_sampling",
    "食用农产品监测": "agri_monitoring", "农产品监测": "agri_monitoring",
    "食用农产品质量安全监测": "agri_monitoring",
    "快检": "rapid_test", "快速检测": "rapid_test",
}
_BOOLS = {"是": True, "否": False, "true": True, "false": False, "y": True, "n": False,
          "yes": True, "no": False, "1": True, "0": False, "有": True, "无": False,
          "有效": True, "无效": False}

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DATE_TEXT = re.compile(
    r"(\d{4})(?:年|[-/.])(\d{1,2})(?:月|[-/.])(\d{1,2})(日)?"
    r"(?:(?:T|\s+|(?<=日))(\d{1,2})[:：](\d{1,2})(?:[:：](\d{1,2})(?:\.\d+)?)?)?"
)
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_WITH_OFFSET = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})"
)
_PERIOD = re.compile(r"(\d{4})(?:年|[-/.])(\d{1,2})(?:月份?)?|(\d{4})(\d{2})")
_LIST_SPLIT = re.compile(r"[；;\n]")


class _Unreadable(ValueError):
    """A cell that cannot become its field's value; the message is the user-facing reason."""


def _blank(cell: Cell) -> bool:
    """Empty, blank text, or a pandas NaN / NaT."""
    if cell is None:
        return True
    if isinstance(cell, str):
        return not cell.strip()
    try:
        return bool(cell != cell)
    except (TypeError, ValueError):
        return False


def _text(cell: Cell) -> str | None:
    """A cell as trimmed text; integral numbers without '.0' (ids typed as numbers in Excel)."""
    if _blank(cell):
        return None
    if isinstance(cell, str):
        return cell.strip()
    if isinstance(cell, bool):
        return str(cell).lower()
    if isinstance(cell, numbers.Integral):
        return str(int(cell))
    if isinstance(cell, numbers.Real):
        number = float(cell)
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(cell, datetime):
        return _iso(cell)
    if isinstance(cell, (date, time)):
        return cell.isoformat()
    return str(cell)


def _iso(moment: datetime) -> str:
    """Excel / pandas date cell -> naive ISO text, to the second; a bare date when at midnight."""
    moment = datetime(moment.year, moment.month, moment.day, moment.hour, moment.minute,
                      moment.second, moment.microsecond, moment.tzinfo)  # pandas -> datetime
    moment = (moment + timedelta(microseconds=500_000)).replace(microsecond=0)
    if moment.tzinfo is None and moment.time() == time(0):
        return moment.date().isoformat()
    return moment.isoformat()


def _number(cell: Cell) -> int | float | None:
    """A numeric cell or numeric text as a JSON number, else None."""
    if isinstance(cell, bool):
        return None
    if isinstance(cell, numbers.Integral):
        return int(cell)
    if isinstance(cell, numbers.Real):
        return float(cell)
    text = _text(cell)
    if text is None or not _NUMBER.fullmatch(text):
        return None
    return float(text) if any(c in text for c in ".eE") else int(text)


def _datetime(cell: Cell) -> str | None:
    """Date or date-time text / cell -> ``YYYY-MM-DD[THH:MM:SS]`` (offsets kept), else None."""
    if isinstance(cell, datetime):
        return _iso(cell)
    if isinstance(cell, date):
        return cell.isoformat()
    text = _text(cell) or ""
    if _WITH_OFFSET.fullmatch(text):
        return text[:10] + "T" + text[11:]
    match = _DATE_TEXT.fullmatch(text)
    parts = [match[1], match[2], match[3], match[5], match[6], match[7]] if match else None
    if parts is None and (match := _COMPACT_DATE.fullmatch(text)):
        parts = [*match.groups(), None, None, None]
    if parts is None:
        return None
    year, month, day, hour, minute, second = (int(p) if p else None for p in parts)
    try:
        moment = datetime(year, month, day, hour or 0, minute or 0, second or 0)
    except ValueError:  # 2026年13月1日, 2026-02-30, 25:00
        return None
    return moment.date().isoformat() if hour is None else moment.isoformat()


def _period(cell: Cell) -> str | None:
    """A month (2026-04, 2026/4, 2026年4月, a date cell, ...) -> ``YYYY-MM``, else None."""
    if isinstance(cell, (datetime, date)):
        return f"{cell.year:04d}-{cell.month:02d}"
    if isinstance(cell, float) and not cell.is_integer():
        return None  # 2026.1 could be January or October
    text = _text(cell) or ""
    if match := _PERIOD.fullmatch(text):
        year, month = (int(g) for g in match.groups() if g)
        return f"{year:04d}-{month:02d}" if 1 <= month <= 12 else None
    moment = _datetime(text)
    return moment[:7] if moment else None


def _convert(name: str, cell: Cell) -> Any:
    """One non-empty cell -> the JSON value of field ``name``; raises _Unreadable(kind)."""
    if name in _DATETIME_FIELDS or name == "rectify_by":
        value = _datetime(cell)
        if value is None:
            raise _Unreadable("日期")
        if name == "rectify_by" and value.endswith("T00:00:00"):
            value = value[:10]  # a date field
        return value
    if name == "period":
        if (value := _period(cell)) is None:
            raise _Unreadable("月份")
        return value
    if name in _BOOL_FIELDS:
        if isinstance(cell, bool):
            return cell
        if (value := _BOOLS.get((_text(cell) or "").lower())) is None:
            raise _Unreadable("是/否")
        return value
    if name in _INT_FIELDS:
        number = _number(cell)
        if number is None or number != int(number):
            raise _Unreadable("整数")
        return int(number)
    if name in _LIST_FIELDS:
        return [part.strip() for part in _LIST_SPLIT.split(_text(cell) or "") if part.strip()]
    if name == "value":  # 未检出 / ND / 阴性 / 阳性 / <0.01 stay text: the validator reads them
        number = _number(cell)
        return _text(cell) if number is None else number
    if name == "limit":
        text = _text(cell) or ""
        if text == "不得检出":
            return 0
        number = _number(re.sub(r"^(?:≤|<=)\s*", "", text))  # an upper bound written "≤0.5"
        return text if number is None else number
    if name == "program":
        text = _text(cell) or ""
        return _PROGRAMS.get(text, text)
    if name == "risk_level":  # 风险等级 written D级 in the register: the letter (the validator checks it)
        text = _text(cell) or ""
        return text[0] if len(text) == 2 and text[0] in "ABCD" and text[1] == "级" else text
    return _text(cell)


def _convert_all(cells: dict[str, tuple[str, Cell]]) -> dict[str, Any]:
    """Convert field -> (column label, cell); the reason of a failure names column and value."""
    out: dict[str, Any] = {}
    for name, (label, cell) in cells.items():
        try:
            value = _convert(name, cell)
        except _Unreadable as kind:
            raise _Unreadable(f"{kind}无法识别：列“{label}”的值“{_text(cell)}”") from None
        if value is not None:
            out[name] = value
    return out


# ---------------------------------------------------------------------------------------------
# Rows -> records

_HEADER_SCAN_ROWS = 10  # a title row or two above the header is common in office templates


@dataclass
class _Row:
    number: int  # 1-based, as Excel shows it
    raw: dict[str, Any]
    cells: dict[str, tuple[str, Cell]]  # field -> (column label, cell), non-empty cells only


@dataclass
class _Sample:
    """The rows of one sample (same 样品编号 and 乡镇), in sheet order."""

    id: str | None
    township: str | None
    rows: list[_Row] = field(default_factory=list)


def rows_to_events(
    rows: Sequence[Sequence[Cell]], *, source: str, sheet: str | None, default_type: str | None
) -> list[Record]:
    """Turn one sheet (or CSV file) into records in row order, a grouped sample at its first row.

    ``rows[0]`` is the first spreadsheet row; the header is the first row (of the first few
    non-empty ones) naming at least two known columns. The event type of a row comes from its
    类型 cell, else from the sheet name, else ``default_type`` (the reader passes the file
    name's type). An empty sheet gives no records; a sheet without a recognisable header or
    type gives one reject.
    """
    where = f"工作表“{sheet}”" if sheet is not None else "文件"
    start = _header_index(rows)
    if start is None:
        if all(_blank_row(row) for row in rows):
            return []
        first = next(i for i, row in enumerate(rows) if not _blank_row(row))
        return [_reject(source, sheet, [first + 1], _raw_json(list(rows[first])),
                        f"{where}没有可识别的表头：请在第一行写列名，如“样品编号”“乡镇”“抽样日期”")]
    labels = [_text(cell) or f"列{j + 1}" for j, cell in enumerate(rows[start])]
    keys = [_header_key(cell) for cell in rows[start]]
    type_column = next((j for j, key in enumerate(keys) if key in _TYPE_HEADERS), None)
    sheet_type = type_from_name(sheet) or default_type
    if type_column is None and sheet_type is None:
        return [_reject(source, sheet, [start + 1], _raw_json(labels),
                        f"{where}无法识别事件类型：请增加“类型”列或以“抽检/检查/月报…”命名工作表或文件")]

    entries: list[Record | _Sample] = []
    samples: list[_Sample] = []
    last: _Sample | None = None  # a row without 样品编号 continues it (merged cells)
    for index in range(start + 1, len(rows)):
        row = rows[index]
        if _blank_row(row):
            continue
        raw = _by_label(labels, row)
        kind = _row_type(row, labels, type_column, sheet_type)
        if kind not in HEADERS:
            entries.append(_reject(source, sheet, [index + 1], _raw_json(raw), kind))
            last = None
            continue
        cells = _fields(HEADERS[kind], labels, keys, row)
        this = _Row(index + 1, raw, cells)
        if kind != "sampling_result":
            entries.append(_event(source, sheet, kind, [this]))
            last = None
            continue
        sample = _sample_of(samples, last, cells)
        if sample is None:
            sample = _Sample(_cell_text(cells, "id"), _cell_text(cells, "township"))
            samples.append(sample)
            entries.append(sample)
        sample.rows.append(this)
        last = sample
    return [_event(source, sheet, "sampling_result", entry.rows) if isinstance(entry, _Sample)
            else entry for entry in entries]


def _by_label(labels: list[str], row: Sequence[Cell]) -> dict[str, Cell]:
    """The row's non-empty cells by column label (the first of a repeated label wins)."""
    raw: dict[str, Cell] = {}
    for label, cell in zip(labels, row):
        if not _blank(cell):
            raw.setdefault(label, cell)
    return raw


def _fields(headers: dict[str, str], labels: list[str], keys: list[Any], row: Sequence[Cell]
            ) -> dict[str, tuple[str, Cell]]:
    """The row's non-empty cells by event field (with the column label they came from)."""
    cells: dict[str, tuple[str, Cell]] = {}
    for label, key, cell in zip(labels, keys, row):
        name = headers.get(key)
        if name is not None and not _blank(cell):
            cells.setdefault(name, (label, cell))
    return cells


def _row_type(row: Sequence[Cell], labels: list[str], type_column: int | None, sheet_type: str | None) -> str:
    """The event type of a row (its 类型 cell, else the sheet's or file's), or — when there is
    none — the reason to reject the row."""
    if type_column is not None and (word := _text(_at(row, type_column))) is not None:
        kind = type_from_value(word)
        return kind if kind is not None else f"无法识别事件类型：列“{labels[type_column]}”的值“{word}”"
    if sheet_type is None:
        return "无法识别事件类型：“类型”为空，工作表名和文件名也不含“抽检/检查/月报…”"
    return sheet_type


def _sample_of(samples: list[_Sample], last: _Sample | None,
               cells: dict[str, tuple[str, Cell]]) -> _Sample | None:
    """The sample a row belongs to: same 样品编号 and 乡镇 (an empty 乡镇 matches), or the
    previous sample when the row has no 样品编号 (continuation rows of merged cells)."""
    sample_id, township = _cell_text(cells, "id"), _cell_text(cells, "township")
    if sample_id is None:
        return last
    for sample in reversed(samples):
        if sample.id == sample_id and (not township or not sample.township
                                       or sample.township == township):
            sample.township = sample.township or township
            return sample
    return None


def _cell_text(cells: dict[str, tuple[str, Cell]], name: str) -> str | None:
    return _text(cells[name][1]) if name in cells else None


def _event(source: str, sheet: str | None, kind: str, rows: list[_Row]) -> Record:
    """One event from its row(s): sample-level cells from the first row that has them, one
    item per row with a 检验项目."""
    raw = _raw_json(rows[0].raw if len(rows) == 1 else [row.raw for row in rows])
    lines = [row.number for row in rows]
    merged: dict[str, tuple[str, Cell]] = {}
    for row in rows:
        for name, cell in row.cells.items():
            if kind != "sampling_result" or name not in _ITEM_FIELDS:
                merged.setdefault(name, cell)
    try:
        obj = {"type": kind, **_convert_all(merged)}
        if kind == "sampling_result":
            obj["items"] = [
                _convert_all({name: row.cells[name] for name in _ITEM_FIELDS if name in row.cells})
                for row in rows if "item" in row.cells
            ]
    except _Unreadable as reason:
        return _reject(source, sheet, lines, raw, str(reason))
    return Record(source=source, line=_line(sheet, lines), raw=raw, obj=obj, reason=None)


def _reject(source: str, sheet: str | None, rows: list[int], raw: str, reason: str) -> Record:
    return Record(source=source, line=_line(sheet, rows), raw=raw, obj=None, reason=reason)


def _line(sheet: str | None, rows: Iterable[int]) -> str:
    """``抽检!3`` / ``抽检!3-5`` / ``3-5,8`` (CSV): where a user finds the row(s)."""
    spans: list[list[int]] = []
    for number in sorted(rows):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    text = ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return f"{sheet}!{text}" if sheet is not None else text


def _raw_json(value: Any) -> str:
    """Original cells as compact JSON with Chinese unescaped (dates as ISO text)."""
    def plain(cell: Cell) -> Any:
        if cell is None or isinstance(cell, (str, bool)):
            return cell
        if isinstance(cell, numbers.Integral):
            return int(cell)
        if isinstance(cell, numbers.Real):
            return None if _blank(cell) else float(cell)
        return _text(cell)

    if isinstance(value, dict):
        value = {k: plain(v) for k, v in value.items()}
    elif isinstance(value, list):
        value = [{k: plain(v) for k, v in v.items()} if isinstance(v, dict) else plain(v)
                 for v in value]
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _at(row: Sequence[Cell], column: int) -> Cell:
    return row[column] if column < len(row) else None


def _blank_row(row: Sequence[Cell]) -> bool:
    return all(_blank(cell) for cell in row)


def _header_index(rows: Sequence[Sequence[Cell]]) -> int | None:
    """Index of the header row: the first of the first few non-empty rows naming two known columns."""
    seen = 0
    for index, row in enumerate(rows):
        if _blank_row(row):
            continue
        if sum(_header_key(cell) in _KNOWN_HEADERS for cell in row) >= 2:
            return index
        seen += 1
        if seen >= _HEADER_SCAN_ROWS:
            break
    return None


# ---------------------------------------------------------------------------------------------
# Ordering

_EVENT_TIME = {
    "sampling_result": ("reported_at", "sampled_at"),
    "inspection": ("inspected_at",),
    "monthly_report": ("submitted_at",),
    "incident": ("reported_at",),
    "disposal": ("disposed_at",),
    "banquet": ("registered_at",),
    "ack": ("acked_at",),
    "entity": ("registered_at",),  # where register rows sort; they never move the clock (§6)
}


def event_time_key(obj: dict) -> str | None:
    """The event time as sortable naive text (a bare date is its 00:00), or None.

    Times written with an offset sort by their written clock time: spreadsheets carry local
    times, and the configured timezone is not known here.
    """
    for name in _EVENT_TIME.get(obj.get("type"), ()):
        value = obj.get(name)
        if isinstance(value, str) and value.strip():
            return value + "T00:00:00" if len(value) == 10 else value
    return None
