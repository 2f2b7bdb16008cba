"""A dropped file's 拒收 list: the lines or rows of it that were not taken, each with where it
was, the field and the reason, and the original cells — a workbook written beside the file
when it is moved aside (``已处理/<file>.拒收.xlsx``), for the office to fix the rows and drop
them again.

A spreadsheet's rejected rows keep their own columns (the headers as the file had them), so a
corrected row can be copied back into the sheet; a JSON Lines line is shown as it was. Every
text cell passes through :func:`shian.rules.cells.safe` (no formula can run).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from shian.rules.cells import safe
from shian.rules.records import Reject

SUFFIX = ".拒收.xlsx"
FIXED = ("行号/位置", "字段", "原因")
RAW = "原始内容"
SHEET = "拒收"


@dataclass(frozen=True)
class Book:
    """The list as a table: its column headers and one row of cells per original row."""
    headers: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


MAX_NAME = 255  # bytes of a file name on the usual file systems
PART = ".part"  # the list is written under this suffix, then renamed


def book_path(moved: Path) -> Path:
    """Where the list of a file moved to ``moved`` goes: beside it, its name plus ``.拒收.xlsx``
    (the file's name cut short when the two would make a name too long)."""
    budget = MAX_NAME - len((SUFFIX + PART).encode("utf-8"))
    name = moved.name.encode("utf-8", "surrogateescape")[:budget].decode("utf-8", "ignore")
    return moved.with_name(name + SUFFIX)


def _cells(reject: Reject, tabular: bool) -> list[dict[str, Any]] | None:
    """The original cells of a spreadsheet row (one mapping per row: a sample may span
    several), or None when the reject holds a line of text instead."""
    if not tabular or not reject.raw:
        return None
    try:
        value = json.loads(reject.raw)
    except ValueError:
        return None
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    return None


def book(rejects: Sequence[Reject], *, tabular: bool) -> Book:
    """The rejects of one file as its 拒收 list (pure): 行号/位置, 字段, 原因, then the original
    columns of a spreadsheet (in the order first seen) and 原始内容 for what is not cells."""
    columns: dict[str, None] = {}
    shaped = []
    for r in rejects:
        cells = _cells(r, tabular)
        for row in cells or ():
            columns.update(dict.fromkeys(str(k) for k in row))
        shaped.append((r, cells))
    text = any(cells is None and r.raw for r, cells in shaped)
    headers = (*FIXED, *columns, *((RAW,) if text else ()))
    rows = []
    for r, cells in shaped:
        lead = (r.place, r.field, r.reason)
        if cells is None:
            rows.append((*lead, *(None for _ in columns), *((r.raw,) if text else ())))
            continue
        for row in cells:
            by_name = {str(k): v for k, v in row.items()}
            rows.append((*lead, *(by_name.get(c) for c in columns), *((None,) if text else ())))
    return Book(headers, tuple(rows))


def _value(v: Any) -> Any:
    """A cell as written: text made safe, numbers, booleans and blanks as they are."""
    if v is None or isinstance(v, (bool, int)) or (isinstance(v, float) and v == v and abs(v) != float("inf")):
        return v
    return safe(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))


def write_book(path: Path, table: Book) -> Path:
    """``table`` as an XLSX workbook at ``path`` (one sheet, bold headers, text as text)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(SHEET)
    for i, width in enumerate((14, 22, 48), start=1):
        ws.column_dimensions[chr(64 + i)].width = width
    bold = Font(bold=True)
    header = []
    for name in table.headers:
        cell = WriteOnlyCell(ws, value=safe(name))
        cell.font = bold
        header.append(cell)
    ws.append(header)
    for row in table.rows:
        ws.append([_value(v) for v in row])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + PART)
    wb.save(tmp)
    tmp.replace(path)
    return path
