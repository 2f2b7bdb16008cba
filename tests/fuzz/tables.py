"""Spreadsheets (contract §5) good and bad by construction: sheets of rows as offices fill them
in, written as CSV text or openpyxl workbooks, and the broken files the issue lists.

A sheet holds events of one type (named by the sheet or file: 抽检…, 检查…) under Chinese or
English headers, or of several types under a 类型 column (English headers, which mean the
same field for every type). Good rows spell cells the ways §5 accepts (2026/4/3, 2026年4月3日,
是/否, 不得检出, date cells …); a sample's items are rows of their own. A bad row has one cell
fault; the row numbers of each event are known, so the reject is expected on that line.
"""
from __future__ import annotations

import copy
import csv
import io
import random
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from shian.rules.timeutil import parse_time

from .events import MAKERS, World, ack_for, conflict, instant, jump, render
from .model import ACCEPT, ACK_TIME, DUPLICATE, NOW, REJECT, TZ, Row

#: Chinese headers per type and field (the first is the usual one); English names work too.
CHINESE = {
    "sampling_result": {"id": ["样品编号"], "program": ["任务类别"], "sampled_at": ["抽样日期"],
                        "reported_at": ["报告日期", "检验报告日期"], "township": ["乡镇"], "village": ["村"],
                        "entity": ["被抽样单位名称"], "entity_id": ["统一社会信用代码", "许可证号"],
                        "category": ["食品大类"], "food": ["样品名称", "食品名称"], "item": ["检验项目"],
                        "value": ["检验结果"], "unit": ["计量单位", "单位"], "limit": ["标准值", "标准限值"],
                        "result": ["单项结论", "单项判定"], "conclusion": ["结论", "检验结论"]},
    "inspection": {"id": ["检查编号", "编号"], "inspected_at": ["检查日期"], "township": ["乡镇"], "village": ["村"],
                   "entity": ["被检查单位", "单位名称"], "entity_id": ["统一社会信用代码", "许可证号"],
                   "entity_type": ["业态", "单位类型"], "inspection_type": ["检查类型"], "license_valid": ["许可证有效"],
                   "staff_total": ["从业人员数"], "staff_with_health_cert": ["持健康证人数"], "grade": ["量化等级"],
                   "findings": ["发现问题"], "outcome": ["检查结果"], "rectify_by": ["整改期限"]},
    "monthly_report": {"id": ["编号"], "reporter": ["报送单位"], "township": ["乡镇"], "period": ["所属月份"],
                       "submitted_at": ["报送时间"]},
    "incident": {"id": ["事件编号", "事故编号", "编号"], "township": ["乡镇"], "occurred_at": ["发生时间"],
                 "reported_at": ["报告时间"], "kind": ["事件类型"], "cases": ["发病人数"], "deaths": ["死亡人数"],
                 "grade": ["事件等级"]},
    "disposal": {"id": ["处置编号", "编号"], "sample_id": ["样品编号"], "township": ["乡镇"], "disposed_at": ["处置时间"],
                 "measures": ["处置措施"]},
    "banquet": {"id": ["登记编号", "编号"], "township": ["乡镇"], "village": ["村"], "host": ["举办者"],
                "held_at": ["举办时间"], "registered_at": ["登记时间"], "guests": ["就餐人数"], "chef": ["厨师"],
                "chef_health_cert": ["厨师健康证"]},
    "ack": {"id": ["签收编号", "编号"], "township": ["乡镇"], "notice_id": ["通知编号"], "by": ["签收部门"],
            "action": ["动作"], "acked_at": ["签收时间"], "note": ["反馈"]},
}
SHEET_NAMES = {"sampling_result": ["抽检", "抽检结果", "快检记录", "4月抽检"], "inspection": ["检查", "日常检查记录"],
               "monthly_report": ["月报", "月报报送"], "incident": ["事故", "事件报告"], "disposal": ["处置", "核查处置"],
               "banquet": ["聚餐", "宴席登记"], "ack": ["签收", "签收记录"]}
TYPE_WORDS = {"sampling_result": ["sampling_result", "抽检"], "inspection": ["inspection", "检查"],
              "monthly_report": ["monthly_report", "月报"], "incident": ["incident", "事故", "事件"],
              "disposal": ["disposal", "处置"], "banquet": ["banquet", "聚餐", "宴席"], "ack": ["ack", "签收"]}
TIME_FIELDS = {"sampled_at", "reported_at", "inspected_at", "submitted_at", "occurred_at", "disposed_at", "held_at",
               "registered_at", "acked_at"}
ITEM_FIELDS = ("item", "value", "unit", "limit", "result")
PROGRAM_WORDS = {"food_sampling": ["食品安全抽检", "监督抽检", "food_sampling"],
                 "agri_monitoring": ["食用农产品监测", "农产品监测"], "rapid_test": ["快检", "快速检测", "rapid_test"]}
BOOL_WORDS = {True: ["是", "true", "y", "yes", "1", "有", "有效", "TRUE"], False: ["否", "false", "n", "no", "0", "无", "无效"]}
REQUIRED = {"sampling_result": ("township", "entity", "category", "sampled_at"),
            "inspection": ("id", "township", "inspected_at", "entity", "entity_type", "inspection_type", "outcome"),
            "monthly_report": ("id", "reporter", "township", "period", "submitted_at"),
            "incident": ("id", "township", "occurred_at", "reported_at", "kind"),
            "disposal": ("id", "sample_id", "township", "disposed_at"),
            "banquet": ("id", "township", "host", "held_at", "registered_at", "guests"),
            "ack": ("id", "township", "notice_id", "by", "acked_at")}


@dataclass
class Sheet:
    """One sheet (or CSV file): its name, header labels, rows of cells by field, the events."""

    name: str | None
    kind: str | None                     # None: a 类型 column says each row's type
    labels: list[str]                    # header cells, in column order
    fields: list[str]                    # the field each column holds ("type", "" for an unknown one)
    rows: list[list[Any]] = field(default_factory=list)
    events: list[tuple[Row, int, int]] = field(default_factory=list)  # row, first and last index in rows
    title: bool = False                  # a title row above the header

    @property
    def first_data_row(self) -> int:
        """The spreadsheet row number of rows[0] (1-based, as Excel shows it)."""
        return 3 if self.title else 2


def _labels(rng: random.Random, kind: str | None, english: bool) -> tuple[list[str], list[str]]:
    """Header labels and the fields they map to, in a shuffled column order."""
    kinds = [kind] if kind is not None else list(CHINESE)
    fields: list[str] = []
    for k in kinds:
        for name in CHINESE[k]:
            if name not in fields:
                fields.append(name)
    rng.shuffle(fields)
    if kind is None:
        fields.insert(rng.randrange(len(fields) + 1), "type")
    labels = []
    for name in fields:
        if name == "type":
            labels.append(rng.choice(("类型", "type", "TYPE")))
        elif english:
            labels.append(rng.choice((name, name.upper(), f" {name} ")))
        else:
            label = rng.choice(CHINESE[kind][name])  # type: ignore[index]
            labels.append(rng.choice((label, f" {label} ", f"{label}（必填）", f"*{label}", f"{label}(mg/kg)")))
    for extra in rng.sample(("备注", "序号", "填表人", "列A"), rng.randrange(3)):
        at = rng.randrange(len(fields) + 1)
        fields.insert(at, "")
        labels.insert(at, extra)
    return labels, fields


# -- cells ----------------------------------------------------------------------------------

def time_cell(rng: random.Random, text: str, xlsx: bool) -> Any:
    """A contract time as an office writes it: text in one of §5's shapes, or a date cell."""
    moment = parse_time(text, TZ).replace(microsecond=0)
    naive = moment.replace(tzinfo=None)
    midnight = naive.time() == time(0)
    choices = ["iso", "slash", "chinese", "space", "offset"] + (["cell"] * 3 if xlsx else []) + (["compact"] if midnight else [])
    how = rng.choice(choices)
    if how == "cell":
        return naive.date() if midnight and rng.random() < 0.5 else naive
    if how == "offset":
        return naive.strftime("%Y-%m-%dT%H:%M:%S") + "+08:00"
    if how == "compact":
        return naive.strftime("%Y%m%d")
    if midnight and rng.random() < 0.6:
        return {"iso": f"{naive:%Y-%m-%d}", "slash": f"{naive.year}/{naive.month}/{naive.day}",
                "chinese": f"{naive.year}年{naive.month}月{naive.day}日", "space": f"{naive:%Y-%m-%d}"}[how]
    clock = f"{naive.hour}:{naive.minute:02d}" + (f":{naive.second:02d}" if naive.second or rng.random() < 0.5 else "")
    return {"iso": f"{naive:%Y-%m-%dT%H:%M:%S}", "slash": f"{naive.year}/{naive.month}/{naive.day} {clock}",
            "chinese": f"{naive.year}年{naive.month}月{naive.day}日 {clock}", "space": f"{naive:%Y-%m-%d} {clock}"}[how]


def value_cell(rng: random.Random, name: str, value: Any, xlsx: bool) -> Any:
    """One field's value as a cell."""
    if value is None:
        return None
    if name in TIME_FIELDS:
        return time_cell(rng, value, xlsx)
    if name == "rectify_by":
        day = date.fromisoformat(value)
        return rng.choice((value, f"{day.year}/{day.month}/{day.day}", f"{day.year}年{day.month}月{day.day}日")
                          + ((day, datetime(day.year, day.month, day.day)) if xlsx else ()))
    if name == "program":
        return rng.choice(PROGRAM_WORDS[value])
    if name == "period":
        y, m = int(value[:4]), int(value[5:])
        return rng.choice((value, f"{y}/{m}", f"{y}年{m}月", f"{y}年{m}月份", f"{y}{m:02d}")
                          + ((datetime(y, m, 1),) if xlsx else ()))
    if isinstance(value, bool):
        return value if xlsx and rng.random() < 0.4 else rng.choice(BOOL_WORDS[value])
    if isinstance(value, int) and name != "value":
        return value if xlsx and rng.random() < 0.5 else rng.choice((str(value), f" {value} ", f"{value}.0"))
    if isinstance(value, list):
        return rng.choice(("；", ";", "\n")).join(value) if value else None
    if name == "limit" and isinstance(value, (int, float)):
        return rng.choice((value, str(value), f"≤{value}", "不得检出" if value == 0 else value))
    if name == "value" and isinstance(value, (int, float)) and not xlsx:
        return repr(value) if isinstance(value, float) else str(value)
    return value


def event_rows(rng: random.Random, obj: dict, fields: list[str], xlsx: bool, type_word: str | None) -> list[list[Any]]:
    """The row(s) of one event: one per item for a sample (at least one). The rows after a
    sample's first leave its sample-level cells empty or repeat them, and its 样品编号 too."""
    items = (obj.get("items") or [None]) if obj["type"] == "sampling_result" else [None]
    out = []
    for n, item in enumerate(items):
        cells = []
        for name in fields:
            if name == "type":
                cells.append(type_word)
            elif name == "":
                cells.append(rng.choice((None, None, "", "无关内容")))
            elif name in ITEM_FIELDS and obj["type"] == "sampling_result":
                cells.append(value_cell(rng, name, (item or {}).get(name), xlsx))
            elif name not in obj:
                cells.append(None)
            elif n == 0 or rng.random() < 0.3:
                cells.append(value_cell(rng, name, obj[name], xlsx))
            else:
                cells.append(None)
        out.append(cells)
    return out


# -- faults in cells ------------------------------------------------------------------------

@dataclass(frozen=True)
class ExcelSerial:
    """A number stored in a date-formatted cell (0 shows as 1900-01-00 in Excel)."""

    value: float


BAD_DATE_TEXT = ("2026-13-01", "2026年2月30日", "明天", "2026.4", "04/03/2026", "2026-04-03 25:00", "46000", "2026-4")
OUT_OF_RANGE = ("1900-01-01", "1899-12-31", "2100-01-01", "0001-01-01", "1999-12-31 23:59")


def _column(fields: list[str], name: str) -> int | None:
    return fields.index(name) if name in fields else None


def _set_all(rows: list[list[Any]], col: int, value: Any, *, only_filled: bool = False) -> None:
    for n, row in enumerate(rows):
        if n == 0 or not only_filled or row[col] not in (None, ""):
            row[col] = value


def cell_fault(rng: random.Random, world: World, obj: dict, fields: list[str], rows: list[list[Any]],
               xlsx: bool, mixed: bool) -> tuple[str, str] | None:  # long: one table of cell faults
    """One fault in the cells of one event (all its rows): (category, what), or None when the
    columns give no room for the chosen one."""
    kind = obj["type"]
    col = lambda name: _column(fields, name)  # noqa: E731
    present = [f for f in fields if f in obj and f not in ITEM_FIELDS]
    choice = rng.randrange(13)
    times = [f for f in present if f in TIME_FIELDS]
    if choice <= 1 and times:
        name = rng.choice(times)
        value: Any = rng.choice(BAD_DATE_TEXT + ((ExcelSerial(0),) if xlsx else ()))
        rows[0][col(name)] = value
        return "time", f"{name}={value!r}"
    if choice == 2 and times:
        name = rng.choice(times)
        value = rng.choice(OUT_OF_RANGE + ((datetime(1900, 1, 1), date(1900, 1, 1)) if xlsx else ()))
        rows[0][col(name)] = value
        return "range", f"{name}={value!r}"
    if choice == 3:
        _set_all(rows, col("township"), rng.choice(("不存在镇", "红河")), only_filled=True)
        return "township", "township unknown"
    if choice == 4:
        name = rng.choice(REQUIRED[kind])
        if col(name) is None:
            return None
        _set_all(rows, col(name), rng.choice((None, "", "  ")))
        return "missing", f"{name} empty"
    enums = {"inspection": ("inspection_type", "outcome"), "ack": ("action",),
             "sampling_result": ("program", "conclusion")}.get(kind, ())
    if choice == 5 and enums and col(enums[0]) is not None:
        name = rng.choice([e for e in enums if col(e) is not None])
        rows[0][col(name)] = rng.choice(("其他", "不合格品", "抽查", "已读"))
        return "enum", f"{name} outside its set"
    ints = [f for f in ("staff_total", "staff_with_health_cert", "cases", "deaths", "guests") if col(f) is not None]
    if choice == 6 and ints and kind in ("inspection", "incident", "banquet"):
        name = rng.choice([f for f in ints if f in CHINESE[kind]])
        rows[0][col(name)] = rng.choice(("三人", "1.5", "-2", "12人", "1e3x"))
        return "int", f"{name}={rows[0][col(name)]!r}"
    bools = [f for f in ("license_valid", "chef_health_cert") if col(f) is not None and f in CHINESE[kind]]
    if choice == 7 and bools:
        name = rng.choice(bools)
        rows[0][col(name)] = rng.choice(("也许", "2", "待定"))
        return "bool", f"{name}={rows[0][col(name)]!r}"
    if choice == 8 and kind == "monthly_report":
        rows[0][col("period")] = rng.choice(("2026年13月", "2026-00", "4月", "13/2026"))
        return "period", f"period={rows[0][col('period')]!r}"
    if choice == 8 and kind == "sampling_result" and col("value") is not None and obj.get("items"):
        rows[rng.randrange(len(rows))][col("value")] = rng.choice(("超标", "检出", "<"))
        return "value", "value text unknown"
    if choice == 9 and kind == "inspection" and col("rectify_by") is not None:
        rows[0][col("outcome")] = "限期整改"
        rows[0][col("rectify_by")] = None
        return "rectify", "限期整改 without 整改期限"
    if choice == 9 and kind == "incident":
        reported = parse_time(obj["reported_at"], TZ).replace(tzinfo=None, microsecond=0)
        rows[0][col("reported_at")] = f"{reported:%Y-%m-%d %H:%M:%S}"
        rows[0][col("occurred_at")] = f"{reported + timedelta(hours=1):%Y-%m-%d %H:%M:%S}"
        return "order", "occurred after reported"
    if choice == 10 and mixed and len(rows) == 1:  # (rows without a type are rejected one by one)
        _set_all(rows, col("type"), rng.choice(("其他", None)))
        return "event_type", "type cell unknown or empty"
    if choice == 11 and kind == "monthly_report":
        rows[0][col("reporter")] = "不存在村"
        return "reporter", "reporter unknown"
    if choice == 11 and kind == "ack":
        rows[0][col("by")] = "no-such-dept"
        return "department", "by unknown"
    if choice == 12 and kind == "ack":
        rows[0][col("notice_id")] = "0000000000000000"
        return "notice", "notice unknown"
    return None


# -- sheets of events -----------------------------------------------------------------------

@dataclass
class Made:
    """What the sheets so far hold: good events (with their rows, to re-send) and incidents."""

    goods: list[tuple[Row, list[list[Any]], list[str]]] = field(default_factory=list)
    incidents: list[dict] = field(default_factory=list)


def make_sheet(rng: random.Random, world: World, prefix: str, made: Made, *, kind: str | None, xlsx: bool,
               live: bool, size: int) -> Sheet:  # long: one table of row kinds
    """A sheet of ``size`` events of ``kind`` (None: mixed, with a 类型 column)."""
    english = kind is None or rng.random() < 0.3
    labels, fields = _labels(rng, kind, english)
    name = rng.choice(SHEET_NAMES[kind]) if kind is not None else rng.choice(("Sheet1", "数据", "导入"))
    sheet = Sheet(name, kind, labels, fields, title=rng.random() < 0.2)
    t = lambda moment: render(rng, moment, offsets=False)  # noqa: E731
    for n in range(size):
        if rng.random() < 0.1:
            sheet.rows.append([None] * rng.randrange(0, len(fields) + 1))  # an empty row
        eid = f"{prefix}-{len(sheet.rows)}-{n}"
        this = kind or rng.choice(list(MAKERS) + ["ack"])
        if this == "ack" and not made.incidents:
            this = "incident"  # a sheet of acks is made only after one of incidents
        same = [g for g in made.goods if g[2] == fields and g[0].obj["type"] != "sampling_result"]
        roll = rng.random()
        if same and roll < 0.06:
            row, cells, _ = rng.choice(same)
            _add(sheet, Row(row.id, DUPLICATE, obj=row.obj, note="re-sent"), copy.deepcopy(cells))
            continue
        if same and roll < 0.1:
            row, cells, _ = rng.choice(same)
            bad, why, note = conflict(rng, row.obj)
            changed = copy.deepcopy(cells)
            for f, value in bad.items():
                if f in fields and bad[f] != row.obj.get(f):
                    changed[0][fields.index(f)] = value_cell(rng, f, value, xlsx)
            _add(sheet, Row(row.id, REJECT, why, bad, note=note), changed)
            continue
        if this == "ack":
            obj = ack_for(rng, world, eid, rng.choice(made.incidents), NOW if live else ACK_TIME, t)
        else:
            obj = MAKERS[this](rng, world, eid, instant(rng), t)
        if made.goods and roll < 0.14:
            obj, why, note = jump(rng, obj, t)
            _add(sheet, Row(eid, REJECT, why, obj, note=note), event_rows(rng, obj, fields, xlsx, _word(rng, obj, kind)))
            continue
        cells = event_rows(rng, obj, fields, xlsx, _word(rng, obj, kind))
        if roll < 0.45 and (found := cell_fault(rng, world, obj, fields, cells, xlsx, kind is None)) is not None:
            _add(sheet, Row(eid, REJECT, found[0], obj, note=found[1]), cells)
            continue
        row = Row(eid, ACCEPT, obj=obj)
        _add(sheet, row, cells)
        made.goods.append((row, cells, fields))
        if this == "incident":
            made.incidents.append(obj)
    return sheet


def _word(rng: random.Random, obj: dict, kind: str | None) -> str | None:
    return rng.choice(TYPE_WORDS[obj["type"]]) if kind is None else None


def _add(sheet: Sheet, row: Row, cells: list[list[Any]]) -> None:
    first = len(sheet.rows)
    sheet.rows.extend(cells)
    sheet.events.append((row, first, len(sheet.rows) - 1))


def label_lines(sheet: Sheet, *, csv_file: bool) -> None:
    """Where the reader reports each event: ``3``/``3-5`` (CSV) or ``抽检!3-5``."""
    for row, first, last in sheet.events:
        a, b = first + sheet.first_data_row, last + sheet.first_data_row
        span = str(a) if a == b else f"{a}-{b}"
        row.line = span if csv_file else f"{sheet.name}!{span}"


def grid(sheet: Sheet) -> list[list[Any]]:
    """The sheet's rows as written: an optional title row, the header, the rows."""
    out: list[list[Any]] = []
    if sheet.title:
        out.append([f"{sheet.name or ''}汇总表（2026年）"])
    out.append(list(sheet.labels))
    out.extend(sheet.rows)
    return out


# -- writing --------------------------------------------------------------------------------

def csv_text(rng: random.Random, rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=rng.choice((csv.QUOTE_MINIMAL, csv.QUOTE_ALL)),
                        lineterminator=rng.choice(("\r\n", "\n")))
    for row in rows:
        writer.writerow(["" if c is None else c for c in row])
    return buf.getvalue()


def encode_csv(rng: random.Random, text: str) -> tuple[bytes, str]:
    """UTF-8 (with or without BOM), GBK where the text allows it, else GB18030 (§5)."""
    encoding = rng.choice(("utf-8", "utf-8-sig", "gbk", "gb18030"))
    try:
        return text.encode(encoding), encoding
    except UnicodeEncodeError:
        return text.encode("gb18030"), "gb18030"


def workbook_bytes(sheets: list[tuple[str, list[list[Any]]]]) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for r, row in enumerate(rows, 1):
            for c, value in enumerate(row, 1):
                if value is None:
                    continue
                if isinstance(value, ExcelSerial):
                    cell = ws.cell(row=r, column=c, value=value.value)
                    cell.number_format = "yyyy-mm-dd"
                else:
                    ws.cell(row=r, column=c, value=value)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def rewrite_member(data: bytes, member: str, change: Any) -> bytes:
    """The workbook with one zip member's bytes changed (``change(bytes) -> bytes``)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as dst:
        for item in src.infolist():
            body = src.read(item)
            dst.writestr(item.filename, change(body) if item.filename == member else body)
    return out.getvalue()


# -- whole files ----------------------------------------------------------------------------

CUT = "cut"  # the category of rows a reader cannot reach (after a broken CSV line, past a limit)


def covered(rows: list[Row], why: str) -> list[Row]:
    """Rows of a file that cannot be read: none may be accepted, a reject must say why."""
    return [Row(r.id, REJECT, why, r.obj, line=None, note=f"in a file that is {why}") for r in rows]


def marker(why: str) -> Row:
    """A reject the input must produce that belongs to no row (a sheet cut at a limit)."""
    return Row(f"<{why}>", REJECT, why, line=None, note="a reject for the file")


def table_kinds(rng: random.Random, count: int) -> list[str | None]:
    """Sheet kinds: mixed (None) or one type; a sheet of acks only after one of incidents."""
    kinds: list[str | None] = []
    for _ in range(count):
        kind = rng.choice([None, None, *MAKERS, "ack"])
        if kind == "ack" and "incident" not in kinds and None not in kinds:
            kind = "incident"
        kinds.append(kind)
    return kinds


def csv_file(rng: random.Random, world: World, prefix: str, *, live: bool, size: int) -> tuple[str, Sheet, str]:
    """A CSV text (not yet encoded), its sheet, and a file stem naming its type (or none: a
    类型 column then)."""
    kind = table_kinds(rng, 1)[0]
    if kind == "ack":
        kind = None
    sheet = make_sheet(rng, world, prefix, Made(), kind=kind, xlsx=False, live=live, size=size)
    stem = sheet.name if kind is not None else rng.choice(("导入", "data", "2026年4月"))
    sheet.name = None
    label_lines(sheet, csv_file=True)
    return csv_text(rng, grid(sheet)), sheet, stem


def workbook(rng: random.Random, world: World, prefix: str, *, live: bool, size: int
             ) -> tuple[list[tuple[str, list[list[Any]]]], list[Row]]:
    """Sheets of a workbook (1–3 of events, maybe a notes sheet or an empty one) and the rows."""
    made = Made()
    sheets: list[tuple[str, list[list[Any]]]] = []
    rows: list[Row] = []
    names: set[str] = set()
    for n, kind in enumerate(table_kinds(rng, rng.choice((1, 1, 2, 3)))):
        if kind == "ack" and not made.incidents:
            kind = "incident"  # acks need a notice: an incident accepted before them
        sheet = make_sheet(rng, world, f"{prefix}s{n}", made, kind=kind, xlsx=True, live=live,
                           size=max(1, size // 2) if n else size)
        while sheet.name in names:
            sheet.name += "_"
        names.add(sheet.name)
        label_lines(sheet, csv_file=False)
        sheets.append((sheet.name, grid(sheet)))
        rows += [row for row, _, _ in sheet.events]
    roll = rng.random()
    if roll < 0.1:
        sheets.insert(rng.randrange(len(sheets) + 1), ("说明", [["本表由县检验检测中心填写"], ["日期请用 2026-04-03 格式"]]))
        rows.append(Row("<notes>", REJECT, "header", line="说明!1", note="a notes sheet"))
    elif roll < 0.2:
        sheets.append(("空白页", []))
    return sheets, rows
