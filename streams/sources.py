"""The one reader of input files: JSON Lines, JSON, CSV and XLSX, from a path or from bytes.

Replay, ingest, ``shian run``'s backfill and drop folder, and the HTTP upload all read through
:func:`read_path` / :func:`read_bytes`, so suffixes, encodings and sheets mean the same
everywhere; the column mapping of spreadsheets is in :mod:`shian.rules.tabular`.

- JSON Lines (``.jsonl``, ``.ndjson``, and any other name): one record per non-blank line,
  ``raw`` the line's bytes (a UTF-8 BOM on the first line dropped), parsed later by the
  validator; a file without a line gives one reject.
- JSON (``.json``) from bytes: one event object or an array of them (array index = line); from a
  path, as JSON Lines (the drop folder's ``.json`` files are read line by line).
- CSV / XLSX (``.csv``, ``.xlsx``, ``.xlsm``): converted events in event-time order (stable;
  events without a readable event time keep their relative order after the timed ones), then
  the rows that could not be turned into events, in sheet and row order. Events go first so
  that the rejects, which never move the clock, do not sit between events of the same file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator
from zipfile import BadZipFile

from shian.rules.records import Record, UnreadableInput
from shian.rules.tabular import event_time_key, rows_to_events, type_from_name

__all__ = ["TABULAR_SUFFIXES", "JSONL_SUFFIXES", "INPUT_SUFFIXES", "UnreadableInput", "read_path", "read_bytes",
           "read_tabular", "is_tabular"]

TABULAR_SUFFIXES = (".csv", ".xlsx", ".xlsm")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
INPUT_SUFFIXES = (".jsonl", ".json", ".ndjson", *TABULAR_SUFFIXES)  # what the drop folder picks up

Rows = list[list[Any]]


def is_tabular(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in TABULAR_SUFFIXES


def read_path(path: str | os.PathLike[str]) -> Iterator[Record]:
    """The records of one input file, as replay reads it: JSON Lines in line order,
    spreadsheets in event-time order. A missing or unreadable file raises OSError."""
    if is_tabular(path):
        yield from read_tabular(path)
        return
    source = str(path)
    with open(path, "rb") as f:
        empty = True
        for number, line in enumerate(f, 1):
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if not line or line.isspace():
                continue
            empty = False
            yield Record(source, number, line)
        if empty:
            yield Record(source, 0, "", reason="文件为空：没有任何事件行")


def read_bytes(data: bytes, filename: str, source: str) -> list[Record]:
    """An uploaded file (or a request body named like one) read as :func:`read_path` reads a
    file of that name; ``source`` is prefixed to the name for the records' ``source``.
    Raises :class:`UnreadableInput` for a ``.json`` document that is not JSON."""
    name = Path(filename.replace("\\", "/")).name.strip() or "upload"
    suffix = Path(name).suffix.lower()
    label = f"{source}:{name}"
    if suffix == ".json":
        return json_records(data, label) if data.strip() else [Record(label, 0, "", reason="文件为空：没有任何事件")]
    if suffix not in TABULAR_SUFFIXES + JSONL_SUFFIXES:
        return [Record(label, 0, "", reason=f"不支持的文件格式“{suffix or name}”：请用 .xlsx、.csv 或 JSON Lines（.jsonl）")]
    with tempfile.TemporaryDirectory(prefix="shian-upload-") as tmp:
        path = Path(tmp) / (name if not name.startswith(".") else f"upload{suffix}")
        path.write_bytes(data)
        try:
            records = list(read_path(path))
        except (OSError, ValueError) as e:
            return [Record(label, 0, "", reason=f"无法读取文件：{type(e).__name__}")]
    for r in records:
        r.source = label
    return records


def json_records(body: bytes, source: str) -> list[Record]:
    """One JSON event object or an array of them (array index = line)."""
    try:
        data = json.loads(body)
    except UnicodeDecodeError:
        raise UnreadableInput("请求体不是 UTF-8 编码的 JSON") from None
    except json.JSONDecodeError as e:
        hint = "；多个事件请用 JSON 数组，或以 application/x-ndjson 逐行报送" if e.msg == "Extra data" else ""
        raise UnreadableInput(f"请求体不是合法的 JSON：第 {e.lineno} 行第 {e.colno} 列（{e.msg}）{hint}") from None
    items = data if isinstance(data, list) else [data]
    out = []
    for n, item in enumerate(items, 1):
        if isinstance(item, dict):
            out.append(Record(source, n, "", item))
        else:
            out.append(Record(source, n, json.dumps(item, ensure_ascii=False), reason="不是 JSON 对象：每个事件应是一个 {…} 对象"))
    return out


def read_tabular(path: str | os.PathLike[str]) -> list[Record]:
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
        from openpyxl.utils.exceptions import InvalidFileException  # openpyxl only when a workbook comes

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
    from openpyxl import load_workbook

    workbook = load_workbook(file, read_only=True, data_only=True)
    try:
        sheets = []
        for sheet in workbook.worksheets:
            sheet.reset_dimensions()  # some writers store a wrong <dimension>: read every row
            sheets.append((sheet.title, [list(row) for row in sheet.iter_rows(values_only=True)]))
        return sheets
    finally:
        workbook.close()


def _in_event_order(records: list[Record]) -> list[Record]:
    """Events by event time (stable), events without one after them, then the rejects."""
    events = [record for record in records if record.obj is not None]
    timed = [(key, record) for record in events if (key := event_time_key(record.obj)) is not None]
    timed.sort(key=lambda pair: pair[0])
    untimed = [record for record in events if event_time_key(record.obj) is None]
    rejects = [record for record in records if record.obj is None]
    return [record for _, record in timed] + untimed + rejects


def _file_reject(source: str, reason: str) -> Record:
    return Record(source=source, line="", raw="", obj=None, reason=reason)
