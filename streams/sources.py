"""Reading CSV / XLSX event files (the file I/O; the mapping is in ``shian.rules.tabular``).

The records of one file come out as: converted events in event-time order (stable; events
without a readable event time keep their relative order after the timed ones), then the rows
that could not be turned into events, in sheet and row order. Events go first so that the
rejects, which never move the clock, do not sit between events of the same file.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any
from zipfile import BadZipFile

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from shian.rules.tabular import TabularRecord, event_time_key, rows_to_events, type_from_name

__all__ = ["TABULAR_SUFFIXES", "read_tabular"]

TABULAR_SUFFIXES = (".csv", ".xlsx", ".xlsm")

Rows = list[list[Any]]


def read_tabular(path: str | os.PathLike[str]) -> list[TabularRecord]:
    """All records of one CSV or XLSX file (every sheet), events sorted by event time.

    A missing or unreadable file raises OSError (the run cannot go on without its input);
    a file that is empty, not a workbook or in an unknown encoding gives one reject record.
    """
    file = Path(path)
    source = str(path)
    suffix = file.suffix.lower()
    if suffix == ".csv":
        text = _decode(file.read_bytes())
        if text is None:
            return [_file_reject(source, "文件编码无法识别：请另存为 UTF-8 或 GB18030（GBK）编码的 CSV")]
        sheets: list[tuple[str | None, Rows]] = [(None, [list(row) for row in csv.reader(io.StringIO(text))])]
    elif suffix in (".xlsx", ".xlsm"):
        try:
            sheets = _workbook_sheets(file)
        except (BadZipFile, InvalidFileException, KeyError):
            return [_file_reject(source, "无法打开工作簿：文件不是有效的 .xlsx（请用 Excel 另存为 .xlsx）")]
    else:
        return [_file_reject(source, f"不支持的文件格式“{file.suffix}”：请另存为 .xlsx 或 .csv")]

    file_type = type_from_name(file.stem)
    records = [record for sheet, rows in sheets
               for record in rows_to_events(rows, source=source, sheet=sheet, default_type=file_type)]
    if not records:
        return [_file_reject(source, "文件为空：没有数据行")]
    return _in_event_order(records)


def _decode(data: bytes) -> str | None:
    """UTF-8 (a BOM is dropped), else GB18030 (a superset of GBK / GB2312), else None."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _workbook_sheets(file: Path) -> list[tuple[str, Rows]]:
    """Cell values of every worksheet; date cells stay datetimes (data_only: formula results)."""
    workbook = load_workbook(file, read_only=True, data_only=True)
    try:
        sheets = []
        for sheet in workbook.worksheets:
            sheet.reset_dimensions()  # some writers store a wrong <dimension>: read every row
            sheets.append((sheet.title, [list(row) for row in sheet.iter_rows(values_only=True)]))
        return sheets
    finally:
        workbook.close()


def _in_event_order(records: list[TabularRecord]) -> list[TabularRecord]:
    """Events by event time (stable), events without one after them, then the rejects."""
    events = [record for record in records if record.obj is not None]
    timed = [(key, record) for record in events if (key := event_time_key(record.obj)) is not None]
    timed.sort(key=lambda pair: pair[0])
    untimed = [record for record in events if event_time_key(record.obj) is None]
    rejects = [record for record in records if record.obj is None]
    return [record for _, record in timed] + untimed + rejects


def _file_reject(source: str, reason: str) -> TabularRecord:
    return TabularRecord(source=source, line="", raw="", obj=None, reason=reason)
