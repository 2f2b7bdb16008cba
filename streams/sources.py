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
from typing import IO, Any, Iterator
from zipfile import BadZipFile

from shian.rules.records import Record, UnreadableInput
from shian.rules.tabular import event_time_key, rows_to_events, type_from_name

__all__ = ["TABULAR_SUFFIXES", "JSONL_SUFFIXES", "INPUT_SUFFIXES", "UnreadableInput", "read_path", "read_bytes",
           "read_tabular", "is_tabular", "jsonl_lines", "empty_file"]

TABULAR_SUFFIXES = (".csv", ".xlsx", ".xlsm")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
INPUT_SUFFIXES = (".jsonl", ".json", ".ndjson", *TABULAR_SUFFIXES)  # what the drop folder picks up
MAX_ROWS = 200_000           # rows of one CSV file or one worksheet
MAX_CELL = 1 << 20           # characters of one CSV cell (the line limit of JSON Lines)
MAX_INFLATED = 200_000_000   # bytes of a workbook once unzipped, checked before parsing
MAX_CELLS = 10_000_000       # cells read from one file, empty ones up to each row's last cell included
csv.field_size_limit(MAX_CELL)

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
        for number, line in jsonl_lines(f):
            empty = False
            yield Record(source, number, line)
        if empty:
            yield empty_file(source)


def jsonl_lines(f: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of a JSON Lines file as :func:`read_path` reads it, without a
    :class:`Record` per line (replay makes one only for a line it rejects): blank lines
    skipped, a UTF-8 BOM on the first line dropped."""
    for number, line in enumerate(f, 1):
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if not line or line.isspace():
            continue
        yield number, line


def empty_file(source: str) -> Record:
    """The reject record of a JSON Lines file without a line."""
    return Record(source, 0, "", reason="文件为空：没有任何事件行")


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
        # saved under a name of our own (the sender's may be too long for the file system or hold
        # a NUL); its own name still says the event type of a spreadsheet
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            records = list(read_tabular(path, name=name) if suffix in TABULAR_SUFFIXES else read_path(path))
        except (OSError, ValueError) as e:
            return [Record(label, 0, "", reason=f"无法读取文件：{type(e).__name__}")]
    for r in records:
        r.source = label
    return records


def json_records(body: bytes, source: str) -> list[Record]:
    """One JSON event object or an array of them (array index = line)."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise UnreadableInput("请求体的 JSON 嵌套过深：每个事件应是一个不深嵌套的 {…} 对象") from None
    except UnicodeDecodeError as e:
        raise UnreadableInput(f"请求体不是 UTF-8 编码的 JSON（第 {e.start + 1} 个字节起，可能是 GBK）") from None
    except json.JSONDecodeError as e:
        hint = "；多个事件请用 JSON 数组，或以 application/x-ndjson 逐行报送" if e.msg == "Extra data" else ""
        raise UnreadableInput(f"请求体不是合法的 JSON：第 {e.lineno} 行第 {e.colno} 列（{e.msg}）{hint}") from None
    except ValueError:  # an integer of more than 4,300 digits (Python's limit for int())
        raise UnreadableInput("请求体中有位数过多的数字（超过 4,300 位）：无法读取") from None
    items = data if isinstance(data, list) else [data]
    if len(items) > MAX_ROWS:
        raise UnreadableInput(f"一次最多报送 {MAX_ROWS:,} 个事件（此 JSON 数组有 {len(items):,} 个）：请分成几次报送")
    out = []
    for n, item in enumerate(items, 1):
        if isinstance(item, dict):
            out.append(Record(source, n, "", item))
        else:
            out.append(Record(source, n, json.dumps(item, ensure_ascii=False), reason="不是 JSON 对象：每个事件应是一个 {…} 对象"))
    return out


def read_tabular(path: str | os.PathLike[str], *, name: str | None = None) -> list[Record]:
    """All records of one CSV or XLSX file (every sheet), events sorted by event time.
    ``name``: the file's name as its sender gave it, when it is stored under another (an
    upload): the event type of sheets that do not say theirs comes from it.

    A missing or unreadable file raises OSError (the run cannot go on without its input);
    a file that is empty, not a workbook or in an unknown encoding gives one reject record.
    """
    file = Path(path)
    source = str(path)
    suffix = file.suffix.lower()
    cut: list[Record] = []  # what could not be read past a broken line, or past the row limit
    if suffix == ".csv":
        text = _decode(file.read_bytes())
        if text is None:
            return [_file_reject(source, "文件编码无法识别：请另存为 UTF-8 或 GB18030（GBK）编码的 CSV")]
        rows, problem = _csv_rows(text)
        sheets: list[tuple[str | None, Rows]] = [(None, rows)]
        cut += _not_utf8_rows(rows, source)
        if problem:
            cut.append(_file_reject(source, problem))
    elif suffix in (".xlsx", ".xlsm"):
        try:
            sheets, cut = _workbook(file, source)
        except UnreadableWorkbook as e:
            return [_file_reject(source, str(e))]
    else:
        return [_file_reject(source, f"不支持的文件格式“{file.suffix}”：请另存为 .xlsx 或 .csv")]

    file_type = type_from_name(Path(name).stem if name is not None else file.stem)
    records = [record for sheet, rows in sheets
               for record in rows_to_events(rows, source=source, sheet=sheet, default_type=file_type)] + cut
    if not records:
        return [_file_reject(source, "文件为空：没有数据行")]
    return _in_event_order(records)


def _decode(data: bytes) -> str | None:
    """UTF-8 (a BOM is dropped), else GB18030 (a superset of GBK / GB2312), else None. Text
    that is mostly UTF-8 (more valid multi-byte characters than bad bytes: a UTF-8 file with a
    few GBK cells) is UTF-8, its bad bytes kept as surrogate escapes for
    :func:`_not_utf8_rows` to reject those rows — never read as GB18030 mojibake."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8-sig", "surrogateescape")
    bad = sum(1 for ch in text if "\udc80" <= ch <= "\udcff")
    if sum(1 for ch in text if ch > "\x7f") - bad > bad:
        return text
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        return None


def _not_utf8_rows(rows: Rows, source: str) -> list[Record]:
    """Rows holding bytes that are not UTF-8 (surrogate escapes from :func:`_decode`): emptied
    (so no event is made of them) and each rejected, naming its row."""
    out = []
    for index, row in enumerate(rows):
        if any(_escaped(cell) for cell in row):
            shown = ",".join(cell.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") for cell in row)
            out.append(Record(source, str(index + 1), shown,
                              reason=f"第 {index + 1} 行含有不是 UTF-8 的字节（可能是 GBK）：此行未导入，请改为 UTF-8 后重发"))
            row.clear()
    return out


def _escaped(cell: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in cell)


def _csv_rows(text: str) -> tuple[Rows, str | None]:
    """The rows of a CSV text, up to the first record the csv module cannot read, or past the
    limits (then why). Strict: a quote left open swallows the rest of the file, so it is a
    reject from its record on, not one long cell."""
    rows: Rows = []
    cells = 0
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)  # lines end in \n, \r\n or \r (Excel for Mac)
    try:
        for row in reader:
            rows.append(row)
            cells += len(row)
            if len(rows) > MAX_ROWS:
                return rows[:MAX_ROWS], f"第 {MAX_ROWS + 1:,} 行起未读取：每个文件最多 {MAX_ROWS:,} 行，请分成几个文件"
            if cells > MAX_CELLS:
                return rows[:-1], f"第 {len(rows):,} 行起未读取：单元格太多（每个文件最多 {MAX_CELLS:,} 个），请删去多余的列或分成几个文件"
    except csv.Error as e:
        return rows, f"第 {len(rows) + 1} 行起无法读取（{_csv_problem(e)}）：前面的行已读入，请改正后只重发其余的行"
    return rows, None


def _csv_problem(e: csv.Error) -> str:
    text = str(e)
    if "field larger than field limit" in text:
        return f"某一格超过 {MAX_CELL:,} 个字符"
    if "unexpected end of data" in text:
        return "引号没有闭合：这一格从引号起直到文件末尾"
    if "expected after" in text:
        return "引号用错：带引号的格子在闭合引号后还有字符，格内的引号应写成两个（\"\"）"
    return f"CSV 格式错误：{text}"


class UnreadableWorkbook(ValueError):
    """A workbook that cannot be read at all (the reason in Chinese)."""


def _workbook(file: Path, source: str) -> tuple[list[tuple[str, Rows]], list[Record]]:
    """Cell values of every worksheet (date cells stay datetimes; data_only: formula results),
    and a reject for each sheet cut at :data:`MAX_ROWS`. The workbook's inflated size is checked
    before anything is parsed."""
    import zipfile
    from xml.etree.ElementTree import ParseError

    from openpyxl import load_workbook  # openpyxl only when a workbook comes
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with zipfile.ZipFile(file) as z:
            inflated = sum(i.file_size for i in z.infolist())
    except (BadZipFile, OSError, ValueError):
        raise UnreadableWorkbook("无法打开工作簿：文件不是有效的 .xlsx（请用 Excel 另存为 .xlsx）") from None
    if inflated > MAX_INFLATED:
        raise UnreadableWorkbook(f"工作簿解压后 {inflated / 1e6:,.0f} MB，超过上限 {MAX_INFLATED / 1e6:,.0f} MB：请分成几个文件")
    try:
        workbook = load_workbook(file, read_only=True, data_only=True)
        try:
            return _sheets(workbook, source)
        finally:
            workbook.close()
    except (BadZipFile, InvalidFileException, KeyError):  # a zip, but not a workbook
        raise UnreadableWorkbook("无法打开工作簿：文件不是有效的 .xlsx（请用 Excel 另存为 .xlsx）") from None
    except (ParseError, OSError, ValueError, TypeError, EOFError, zipfile.LargeZipFile) as e:
        raise UnreadableWorkbook(f"工作簿已损坏，无法读取（{type(e).__name__}）：请用 Excel 打开后另存为 .xlsx") from None


def _sheets(workbook: Any, source: str) -> tuple[list[tuple[str, Rows]], list[Record]]:
    """The rows of every sheet, each sheet cut (with a reject) at :data:`MAX_ROWS` rows, and
    the workbook at :data:`MAX_CELLS` cells: a row is as wide as its last cell, so a few
    thousand rows holding one cell in column XFD are already tens of millions of cells."""
    sheets, cut = [], []
    cells = 0
    for sheet in workbook.worksheets:
        sheet.reset_dimensions()  # some writers store a wrong <dimension>: read every row
        rows: Rows = []
        if cells > MAX_CELLS:
            cut.append(_file_reject(source, f"工作表“{sheet.title}”未读取：前面的工作表已达单元格上限 {MAX_CELLS:,} 个，请分成几个文件"))
        else:
            for row in sheet.iter_rows(values_only=True):
                cells += len(row)
                if len(rows) == MAX_ROWS or cells > MAX_CELLS:
                    limit = (f"每个工作表最多 {MAX_ROWS:,} 行，请分成几个工作表或文件" if len(rows) == MAX_ROWS else
                             f"单元格太多（每个工作簿最多 {MAX_CELLS:,} 个，空白格算到每行最后一个有内容的格为止），"
                             "请删去多余的列或分成几个文件")
                    cut.append(_file_reject(source, f"工作表“{sheet.title}”第 {len(rows) + 1:,} 行起未读取：{limit}"))
                    break
                rows.append(list(row))
        sheets.append((sheet.title, rows))
    return sheets, cut


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
