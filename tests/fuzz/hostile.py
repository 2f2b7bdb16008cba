"""The hostile inputs of the issue, one builder each, run first on every path (in order).

Each builder ``(rng, world, prefix) -> Case`` puts its hostile row or file among good rows, so
that the case also shows that nothing around it is lost.
"""
from __future__ import annotations

import io
import json
import random
import zipfile
from datetime import datetime
from typing import Any, Callable

from .events import World, batch, incident, instant, render
from .files import multipart, qualify, unreadable
from .model import ACCEPT, REJECT, Case, Row
from .tables import CUT, covered, csv_file, encode_csv, grid, label_lines, make_sheet, marker, rewrite_member, workbook, \
    workbook_bytes, Made

Builder = Callable[[random.Random, World, str], Case]


def heavy(builder: Builder) -> Builder:
    """A builder whose input takes seconds: run by ``make fuzz``, left out of the fast test."""
    builder.heavy = True  # type: ignore[attr-defined]
    return builder


def goods(rng: random.Random, world: World, prefix: str, n: int, *, live: bool = False) -> list[Row]:
    made = batch(rng, world, prefix, n * 3, live=live, bad_share=0.0)
    return [r for r in made if r.expect == ACCEPT and r.obj["type"] != "ack"][:n]


def event(rng: random.Random, world: World, eid: str, **fields: Any) -> dict:
    obj = incident(rng, world, eid, instant(rng), lambda t: render(rng, t))
    obj.update(fields)
    return obj


# -- JSON Lines -----------------------------------------------------------------------------

def _line(text: str | bytes, why: str, note: str, eid: str) -> Row:
    return Row(eid, REJECT if why else ACCEPT, why, text=text, note=note)


def hostile_lines(rng: random.Random, world: World, prefix: str) -> list[tuple[str | bytes, str, str]]:
    """(line, category or "" for a good line, note): the issue's list and its neighbours."""
    base = event(rng, world, "X", occurred_at="2026-04-01T08:00:00", reported_at="2026-04-01T09:00:00")
    text = json.dumps(base, ensure_ascii=False)

    def with_(**kw: Any) -> str:
        return json.dumps({**base, **kw}, ensure_ascii=False)

    def esc(**kw: Any) -> str:
        return json.dumps({**base, **kw}, ensure_ascii=True)

    def raw(extra: str) -> str:
        return text[:-1] + ", " + extra + "}"

    return [
        (raw('"deep": ' + "[" * 1000 + "]" * 1000), "nesting", "unknown field nested 1,000 deep"),
        (raw('"deep": ' + '{"a":' * 1000 + "1" + "}" * 1000), "nesting", "unknown object nested 1,000 deep"),
        (raw('"deep": ' + "[" * 100_000 + "]" * 100_000), "nesting", "unknown field nested 100,000 deep"),
        (raw('"deep": ' + "[" * 20 + "]" * 20), "", "unknown field nested 20 deep (ignored)"),
        (esc(kind="\ud800"), "surrogate", "a lone surrogate, escaped"),
        (raw('"note": "\\udc00x"'), "surrogate", "a lone low surrogate in an unknown field"),
        (esc(kind="\ud83d\ude00"), "", "an escaped surrogate pair (an emoji)"),
        (text.encode()[:-1] + b', "x": "\xed\xa0\x80"}', "surrogate", "a surrogate as UTF-8 bytes in an unknown field"),
        (text.encode().replace("食物中毒".encode(), b"\xed\xa0\x80"), "surrogate", "a surrogate as bytes in a known field"),
        (text.encode().replace(base["kind"].encode(), base["kind"].encode("gbk")), "encoding", "GBK bytes in a UTF-8 line"),
        (text.encode()[:-1] + ', "备注": "中毒"}'.encode("gbk"), "encoding", "GBK bytes in an unknown field"),
        (with_(reported_at="1900-01-01"), "range", "1900-01-01"),
        (with_(occurred_at="0001-01-01", reported_at="2026-04-01"), "range", "year 1"),
        (with_(reported_at="9999-12-31T23:59:59"), "range", "year 9999"),
        (with_(reported_at="9999-12-31T23:59:59-14:00"), "range", "year 9999 past the calendar's end"),
        (with_(occurred_at="0001-01-01T00:00:00+14:00"), "range", "year 1 before the calendar's start"),
        (with_(reported_at="2026-04-01T09:00:00+08:60"), "time", "offset +08:60"),
        (with_(reported_at="2026-04-01T09:00:00+15:00"), "time", "offset +15:00"),
        (with_(reported_at="2026-04-01T09:00:00-14:59"), "", "offset -14:59"),
        (with_(reported_at="2026-04-01T24:00:00"), "time", "24:00"),
        (with_(occurred_at="2000-01-01T00:00:00+08:00"), "", "the first day of min_event_date"),
        (with_(occurred_at="1999-12-31T23:59:59+08:00"), "range", "the day before min_event_date"),
        (with_(occurred_at="1999-12-31T20:00:00-08:00"), "", "2000-01-01 local, written in -08:00"),
        (raw('"cases": 1e400'), "int", "a number out of range"),
        (raw('"cases": ' + "9" * 5000), "int", "an integer of 5,000 digits"),
        (raw('"zz": ' + "9" * 5000), "number", "an integer of 5,000 digits in an unknown field"),
        (raw('"cases": ' + "9" * 400), "", "an integer of 400 digits"),
        ("1e999999", "not_object", "a number out of range, not an object"),
        (raw('"pad": "' + "x" * (1 << 20) + '"'), "too_long", "a line over 1 MiB"),
        (with_(kind="a\u2028b\ufeffc\u0000"), "", "U+2028, U+FEFF and NUL in a string"),
        ("[" * 1000 + "]" * 1000, "not_object", "a line that is an array nested 1,000 deep"),
        ("\x00", "json", "a NUL byte"),
        ("\ufeff" + text, "json", "a BOM in the middle of the file"),
    ]


def jsonl_hostile(rng: random.Random, world: World, prefix: str) -> Case:
    from .paths import jsonl_bytes

    rows: list[Row] = []
    for n, (text, why, note) in enumerate(hostile_lines(rng, world, prefix)):
        rows += goods(rng, world, f"{prefix}g{n}", 1)
        eid = f"{prefix}-{n}"
        line = text.replace('"id": "X"', f'"id": "{eid}"') if isinstance(text, str) else text.replace(b'"id": "X"', f'"id": "{eid}"'.encode())
        rows.append(_line(line, why, note, eid))
    rows += goods(rng, world, f"{prefix}end", 2)
    return Case("jsonl", "hostile-lines", rows, jsonl_bytes(random.Random(1), rows), {"filename": "hostile.jsonl"})


def jsonl_empty(rng: random.Random, world: World, prefix: str) -> Case:
    return Case("jsonl", "empty-file", [marker("file")], b"", {"filename": "empty.jsonl"})


def jsonl_blank(rng: random.Random, world: World, prefix: str) -> Case:
    return Case("jsonl", "only-blank-lines", [marker("file")], b"\xef\xbb\xbf\n  \r\n\t\n", {"filename": "blank.jsonl"})


@heavy
def jsonl_many(rng: random.Random, world: World, prefix: str) -> Case:
    from .paths import jsonl_bytes

    rows = batch(rng, world, prefix, 20_000, live=False, line_faults=False)
    return Case("jsonl", "20,000-lines", rows, jsonl_bytes(rng, rows), {"filename": "many.jsonl"})


JSONL: list[Builder] = [jsonl_hostile, jsonl_empty, jsonl_blank, jsonl_many]


# -- CSV ------------------------------------------------------------------------------------

def _csv(rng: random.Random, world: World, prefix: str, size: int = 6, live: bool = False) -> tuple[str, list[Row], str]:
    text, sheet, stem = csv_file(rng, world, prefix, live=live, size=size)
    return text, [row for row, _, _ in sheet.events], stem


def csv_unclosed(rng: random.Random, world: World, prefix: str) -> Case:
    """A quote opened and never closed: the rows before it stand, the rest is one reject."""
    text, rows, stem = _csv(rng, world, prefix)
    more, after, _ = _csv(random.Random(rng.random()), world, prefix + "b")
    lines = more.splitlines(keepends=True)[1:]  # the second file's rows, without its header
    broken = text + '"未闭合的引号,红河镇\n' + "".join(lines)
    return Case("csv", "unclosed-quote", rows + covered(after, CUT) + [marker(CUT)], broken.encode(), {"filename": f"{stem}.csv"})


def csv_big_cell(rng: random.Random, world: World, prefix: str) -> Case:
    """A 200,000-character cell is a cell like any other (here in an unknown column)."""
    text, rows, stem = _csv(rng, world, prefix)
    header, _, rest = text.partition("\n")
    body = "".join(line.rstrip("\r") + ',"' + "长" * 200_000 + '"\n' if line.strip() else "\n"
                   for line in rest.splitlines())
    return Case("csv", "200,000-character-cell", rows, (header.rstrip("\r") + ",备注\n" + body).encode(), {"filename": f"{stem}.csv"})


def csv_huge_cell(rng: random.Random, world: World, prefix: str) -> Case:
    """A cell over the 1 MiB cell limit: the rows before it stand, the rest is one reject."""
    text, rows, stem = _csv(rng, world, prefix)
    more, after, _ = _csv(random.Random(rng.random()), world, prefix + "b")
    broken = text + '"' + "x" * ((1 << 20) + 10) + '",红河镇\n' + "".join(more.splitlines(keepends=True)[1:])
    return Case("csv", "cell-over-1-MiB", rows + covered(after, CUT) + [marker(CUT)], broken.encode(), {"filename": f"{stem}.csv"})


def csv_mixed_encoding(rng: random.Random, world: World, prefix: str) -> Case:
    """GBK bytes pasted into a UTF-8 file: the rows holding them are rejected for their
    encoding, every other row stands (one bad paste never loses the rest of the file)."""
    text, rows, stem = _csv(rng, world, "M" + prefix)
    more, after, _ = _csv(random.Random(rng.random()), world, "M" + prefix + "g", size=1)
    pasted = "".join(more.splitlines(keepends=True)[1:])  # the second file's rows, without its header
    data = text.encode() + pasted.encode("gb18030")
    return Case("csv", "gbk-inside-utf8", rows + covered(after, "encoding"), data, {"filename": f"{stem}.csv"})


def csv_undecodable(rng: random.Random, world: World, prefix: str) -> Case:
    return Case("csv", "no-known-encoding", [marker("file")], b"\xff\xfe\x00\xd8\x00\xdc\x80" * 20, {"filename": "抽检.csv"})


def csv_empty(rng: random.Random, world: World, prefix: str) -> Case:
    return Case("csv", "empty-file", [marker("file")], b"", {"filename": "抽检.csv"})


def csv_header_only(rng: random.Random, world: World, prefix: str) -> Case:
    text, _, stem = _csv(rng, world, prefix, size=1)
    return Case("csv", "header-only", [marker("file")], text.splitlines(keepends=True)[0].encode(), {"filename": f"{stem}.csv"})


def csv_gbk(rng: random.Random, world: World, prefix: str) -> Case:
    text, rows, stem = _csv(rng, world, prefix)
    return Case("csv", "gb18030", rows, text.encode("gb18030"), {"filename": f"{stem}.csv"})


@heavy
def csv_many_blank_rows(rng: random.Random, world: World, prefix: str) -> Case:
    """Past the 200,000-row limit (blank rows): what came before stands, then one reject."""
    text, rows, stem = _csv(rng, world, prefix)
    return Case("csv", "200,001-rows", rows + [marker(CUT)], (text + "\n" * 200_001).encode(), {"filename": f"{stem}.csv"})


@heavy
def csv_wide_row(rng: random.Random, world: World, prefix: str) -> Case:
    """A row of 5,000,000 empty cells after the good rows."""
    text, rows, stem = _csv(rng, world, prefix)
    return Case("csv", "5,000,000-cell-row", rows + [marker("any")], (text + "," * 5_000_000 + "x\n").encode(), {"filename": f"{stem}.csv"})


def csv_cr_only(rng: random.Random, world: World, prefix: str) -> Case:
    text, rows, stem = _csv(rng, world, prefix)
    return Case("csv", "cr-line-ends", rows, text.replace("\r\n", "\n").replace("\n", "\r").encode(), {"filename": f"{stem}.csv"})


CSV: list[Builder] = [csv_unclosed, csv_big_cell, csv_huge_cell, csv_mixed_encoding, csv_undecodable, csv_empty,
                      csv_header_only, csv_gbk, csv_many_blank_rows, csv_wide_row, csv_cr_only]


# -- XLSX -----------------------------------------------------------------------------------

def _book(rng: random.Random, world: World, prefix: str, size: int = 5, live: bool = False) -> tuple[bytes, list[Row], str]:
    sheets, rows = workbook(rng, world, prefix, live=live, size=size)
    return workbook_bytes(sheets), rows, sheets[0][0]


def _sheet_member(data: bytes) -> str:
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    return sorted(n for n in names if n.startswith("xl/worksheets/sheet"))[0]


def _rows_of_first_sheet(rows: list[Row], title: str) -> list[Row]:
    return [r for r in rows if (r.line or "").startswith(f"{title}!")]


def xlsx_truncated(rng: random.Random, world: World, prefix: str) -> Case:
    data, rows, _ = _book(rng, world, prefix)
    member = _sheet_member(data)
    cut = rewrite_member(data, member, lambda body: body[: len(body) * 2 // 3])
    return Case("xlsx", "truncated-sheet-xml", unreadable(rows, "file"), cut, {"filename": "截断.xlsx"})


def xlsx_not_a_workbook(rng: random.Random, world: World, prefix: str) -> Case:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "这不是工作簿")
        z.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    return Case("xlsx", "zip-not-a-workbook", [marker("file")], buf.getvalue(), {"filename": "抽检.xlsx"})


def xlsx_random_bytes(rng: random.Random, world: World, prefix: str) -> Case:
    return Case("xlsx", "random-bytes", [marker("file")], bytes(rng.randrange(256) for _ in range(5000)), {"filename": "抽检.xlsx"})


def xlsx_empty_file(rng: random.Random, world: World, prefix: str) -> Case:
    return Case("xlsx", "empty-file", [marker("file")], b"", {"filename": "抽检.xlsx"})


def _typed_sheet(rng: random.Random, world: World, prefix: str, kind: str, size: int = 4):
    sheet = make_sheet(rng, world, prefix, Made(), kind=kind, xlsx=True, live=False, size=size)
    label_lines(sheet, csv_file=False)
    return sheet


def _cells(sheet: Any) -> tuple[bytes, list[Row]]:
    return workbook_bytes([(sheet.name, grid(sheet))]), [row for row, _, _ in sheet.events]


HOSTILE_CELLS = [
    ({"kind": "HUGE-200000"}, "", "a 200,000-character cell"),
    ({"kind": "HUGE-1100000"}, "too_long", "a 1,100,000-character cell"),
    ({"reported_at": datetime(1900, 1, 1)}, "range", "a 1900-01-01 date cell"),
    ({"occurred_at": "serial0"}, "time", "a date cell holding 0 (1900-01-00)"),
    ({"kind": "=A1"}, "missing", "a formula without a cached value"),
    ({"occurred_at": datetime(1899, 12, 31)}, "time", "1899-12-31 (Excel keeps no date before 1900)"),
]


def xlsx_cells(rng: random.Random, world: World, prefix: str) -> Case:
    """Huge cells, 1900-01-01 and serial-0 date cells, a formula with no cached value, each
    followed by an empty row."""
    from .tables import ExcelSerial

    sheet = _typed_sheet(rng, world, prefix, "incident")
    rows = [row for row, _, _ in sheet.events]
    extra: list[list[Any]] = []
    start = len(sheet.rows) + sheet.first_data_row
    for n, (cells, why, note) in enumerate(HOSTILE_CELLS):
        eid = f"{prefix}-h{n}"
        obj = {"id": eid, "township": world.townships[0], "kind": "食物中毒", "occurred_at": datetime(2026, 4, 1, 8),
               "reported_at": datetime(2026, 4, 1, 9), **cells}
        if obj["occurred_at"] == "serial0":
            obj["occurred_at"] = ExcelSerial(0)
        rows.append(Row(eid, REJECT if why else ACCEPT, why, note=note, line=f"{sheet.name}!{start + len(extra)}"))
        extra.append([obj.get(f) for f in sheet.fields])
        extra.append([None] * len(sheet.fields))
    data = workbook_bytes([(sheet.name, grid(sheet) + extra)])
    # openpyxl cuts strings at Excel's 32,767 characters when writing: the long ones go in by hand
    huge = lambda body: body.replace(b"HUGE-200000", "长".encode() * 200_000).replace(b"HUGE-1100000", "长".encode() * 1_100_000)  # noqa: E731
    for member in ("xl/sharedStrings.xml", _sheet_member(data)):
        data = rewrite_member(data, member, huge)
    return Case("xlsx", "hostile-cells", rows, data, {"filename": "导入.xlsx"})


def _append_xml(extra: bytes) -> Callable[[bytes], bytes]:
    return lambda body: body.replace(b"</sheetData>", extra + b"</sheetData>")


def xlsx_far_cell(rng: random.Random, world: World, prefix: str) -> Case:
    """One cell at row 20,000,000: the sheet is read to the row limit, then one reject."""
    sheet = _typed_sheet(rng, world, prefix, "inspection")
    data, rows = _cells(sheet)
    far = b'<row r="20000000"><c r="A20000000" t="inlineStr"><is><t>x</t></is></c></row>'
    return Case("xlsx", "cell-at-row-20,000,000", rows + [marker(CUT)], rewrite_member(data, _sheet_member(data), _append_xml(far)),
                {"filename": "导入.xlsx"})


@heavy
def xlsx_empty_rows(rng: random.Random, world: World, prefix: str) -> Case:
    """20,000,000 empty <row/> elements (about 180 KB zipped, 120 MB unzipped)."""
    sheet = _typed_sheet(rng, world, prefix, "banquet")
    data, rows = _cells(sheet)
    return Case("xlsx", "20,000,000-empty-rows", rows + [marker(CUT)],
                rewrite_member(data, _sheet_member(data), _append_xml(b"<row/>" * 20_000_000)), {"filename": "导入.xlsx"})


@heavy
def xlsx_wide_rows(rng: random.Random, world: World, prefix: str) -> Case:
    """50,000 rows with one cell each in the last column (XFD): a memory bomb for a reader
    that fills every row to its last cell."""
    sheet = _typed_sheet(rng, world, prefix, "disposal")
    data, rows = _cells(sheet)
    start = len(sheet.rows) + sheet.first_data_row + 1
    wide = b"".join(b'<row r="%d"><c r="XFD%d"><v>1</v></c></row>' % (i, i) for i in range(start, start + 50_000))
    return Case("xlsx", "50,000-rows-to-column-XFD", rows + [marker(CUT)],
                rewrite_member(data, _sheet_member(data), _append_xml(wide)), {"filename": "导入.xlsx"})


def xlsx_big_dimension(rng: random.Random, world: World, prefix: str) -> Case:
    """A <dimension> claiming A1:XFD1048576 over a few rows."""
    sheet = _typed_sheet(rng, world, prefix, "monthly_report")
    data, rows = _cells(sheet)
    import re

    change = lambda body: re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:XFD1048576"/>', body)  # noqa: E731
    return Case("xlsx", "dimension-A1:XFD1048576", rows, rewrite_member(data, _sheet_member(data), change), {"filename": "导入.xlsx"})


@heavy
def xlsx_inflated(rng: random.Random, world: World, prefix: str) -> Case:
    """A sheet that unzips past 200 MB: refused before parsing."""
    data, rows, _ = _book(rng, world, prefix, size=2)
    return Case("xlsx", "inflates-past-200-MB", unreadable(rows, "file"),
                rewrite_member(data, _sheet_member(data), _append_xml(b'<row r="99"/>' * 20_000_000)), {"filename": "导入.xlsx"})


def xlsx_entity_bomb(rng: random.Random, world: World, prefix: str) -> Case:
    """XML entities in the sheet (billion laughs, an external file): never expanded."""
    data, rows, _ = _book(rng, world, prefix, size=2)
    doctype = (b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
               b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
               b'<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">'
               b'<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">'
               b'<!ENTITY x SYSTEM "file:///etc/passwd">]>')

    def change(body: bytes) -> bytes:
        body = body.split(b"?>", 1)[1] if body.startswith(b"<?xml") else body
        return doctype + body.replace(b"</sheetData>", b'<row r="999"><c r="A999" t="inlineStr"><is><t>&h;&x;</t></is></c></row></sheetData>')

    return Case("xlsx", "xml-entity-bomb", unreadable(rows, "file"), rewrite_member(data, _sheet_member(data), change),
                {"filename": "导入.xlsx"})


XLSX: list[Builder] = [xlsx_truncated, xlsx_not_a_workbook, xlsx_random_bytes, xlsx_empty_file, xlsx_cells, xlsx_far_cell,
                       xlsx_empty_rows, xlsx_wide_rows, xlsx_big_dimension, xlsx_inflated, xlsx_entity_bomb]


# -- HTTP -----------------------------------------------------------------------------------

def _upload(rng: random.Random, world: World, prefix: str, name: str) -> tuple[bytes, list[Row]]:
    from .files import jsonl_file

    return jsonl_file(rng, world, prefix, name, 5)


def http_named(filename: str, label: str, *, header_ok: bool = True) -> Builder:
    """An upload whose file name is hostile: read like a file of its last path part; one that
    cannot be in a header (``header_ok`` False: CR/LF, NUL, longer than a header line) may
    also have the whole request refused with 400."""
    def build(rng: random.Random, world: World, prefix: str) -> Case:
        data, rows = _upload(rng, world, prefix, "x")
        body, headers = multipart([("file", filename, data, "application/x-ndjson")])
        for row in rows:
            row.line = row.line.split(":", 1)[1] if row.line else row.line
        return Case("http", label, rows, {"body": body, "headers": headers},
                    {"by_source": False, "or_status": () if header_ok else (400,)})
    return build


def http_field_named(field: str, label: str) -> Builder:
    def build(rng: random.Random, world: World, prefix: str) -> Case:
        data, rows = _upload(rng, world, prefix, "事件.jsonl")
        body, headers = multipart([(field, "事件.jsonl", data, "application/x-ndjson")])
        return Case("http", label, rows, {"body": body, "headers": headers}, {"or_status": (400,)})
    return build


def http_refused(label: str, request: Callable[[random.Random, World, str], tuple[dict, list[Row]]], status: int) -> Builder:
    def build(rng: random.Random, world: World, prefix: str) -> Case:
        req, rows = request(rng, world, prefix)
        return Case("http", label, unreadable(rows, "file"), req, {"status": status})
    return build


def _no_boundary(rng: random.Random, world: World, prefix: str) -> tuple[dict, list[Row]]:
    data, rows = _upload(rng, world, prefix, "事件.jsonl")
    body, _ = multipart([("file", "事件.jsonl", data, "application/x-ndjson")])
    return {"body": body, "headers": {"Content-Type": "multipart/form-data"}}, rows


def _unterminated(rng: random.Random, world: World, prefix: str) -> tuple[dict, list[Row]]:
    data, rows = _upload(rng, world, prefix, "事件.jsonl")
    body, headers = multipart([("file", "事件.jsonl", data, "application/x-ndjson")])
    return {"body": body[: len(body) // 2], "headers": headers}, rows


def _fields_only(rng: random.Random, world: World, prefix: str) -> tuple[dict, list[Row]]:
    body, headers = multipart([("note", None, "没有文件".encode(), "text/plain")])
    return {"body": body, "headers": headers}, []


def _json_body(data: bytes) -> Callable[[random.Random, World, str], tuple[dict, list[Row]]]:
    return lambda rng, world, prefix: ({"body": data, "headers": {"Content-Type": "application/json"}}, [])


def _gbk_json(rng: random.Random, world: World, prefix: str) -> tuple[dict, list[Row]]:
    rows = goods(rng, world, prefix, 3, live=True)
    body = json.dumps([r.obj for r in rows], ensure_ascii=False).encode("gb18030")
    return {"body": body, "headers": {"Content-Type": "application/json"}}, rows


def _plain(rng: random.Random, world: World, prefix: str) -> tuple[dict, list[Row]]:
    rows = goods(rng, world, prefix, 2, live=True)
    return {"body": "\n".join(json.dumps(r.obj) for r in rows).encode(), "headers": {"Content-Type": "text/plain"}}, rows


def _too_big(rng: random.Random, world: World, prefix: str) -> tuple[dict, list[Row]]:
    rows = goods(rng, world, prefix, 2, live=True)
    body = b"\n".join(json.dumps(r.obj).encode() for r in rows) + b"\n" + b" " * (51 * 1024 * 1024) + b"\n"
    return {"body": body, "headers": {"Content-Type": "application/x-ndjson"}}, rows


def _big_int_json(rng: random.Random, world: World, prefix: str) -> tuple[dict, list[Row]]:
    rows = goods(rng, world, prefix, 2, live=True)
    objs = json.dumps([r.obj for r in rows], ensure_ascii=False)
    return {"body": (objs[:-2] + ', "zz": ' + "9" * 5000 + "}]").encode(), "headers": {"Content-Type": "application/json"}}, rows


def http_surrogate_json(rng: random.Random, world: World, prefix: str) -> Case:
    """A JSON body whose second event holds "\\ud800": that event is rejected, the others not."""
    rows = goods(rng, world, prefix, 3, live=True)
    objs = [r.obj for r in rows]
    text = json.dumps(objs, ensure_ascii=True)
    bad_id = rows[1].obj["id"]
    text = text.replace(f'"id": "{bad_id}"', f'"id": "{bad_id}", "entity_note": "\\ud800"', 1)
    rows[1] = Row(bad_id, REJECT, "surrogate", rows[1].obj, note="\\ud800 in a JSON body")
    for n, row in enumerate(rows, 1):
        row.line = f"body.json:{n}"
    return Case("http", "json-body-lone-surrogate", rows, {"body": text.encode(), "headers": {"Content-Type": "application/json"}})


def http_ndjson_gbk(rng: random.Random, world: World, prefix: str) -> Case:
    """NDJSON with GBK bytes in one line: that line is rejected, the others not."""
    from .paths import jsonl_bytes

    rows = goods(rng, world, prefix, 4, live=True)
    bad = dict(rows[2].obj, kind="食物中毒")
    rows[2] = Row(bad["id"], REJECT, "encoding", text=json.dumps(bad, ensure_ascii=False).encode("gb18030"), note="GB18030 line")
    return Case("http", "ndjson-gbk-line", rows, {"body": jsonl_bytes(rng, rows, prefix="body.jsonl:"),
                                                  "headers": {"Content-Type": "application/x-ndjson"}})


def http_upload_files(rng: random.Random, world: World, prefix: str) -> Case:
    """One upload of every kind of broken file the file paths know, beside a good one."""
    good, rows = _upload(rng, world, prefix, "好.jsonl")
    truncated = xlsx_truncated(rng, world, prefix + "t")
    unclosed = csv_unclosed(rng, world, prefix + "u")
    named = "未闭合" + unclosed.extra["filename"]  # the name still says the type
    qualify(unclosed.rows, named)
    parts = [("file", "好.jsonl", good, "application/x-ndjson"), ("file", "截断.xlsx", truncated.data, "application/octet-stream"),
             ("file", named, unclosed.data, "text/csv"), ("file", "说明.txt", b"hello", "text/plain")]
    body, headers = multipart(parts)
    return Case("http", "broken-files-in-one-upload", rows + truncated.rows + unclosed.rows, {"body": body, "headers": headers},
                {"by_source": True})


HTTP: list[Builder] = [
    http_named("抽检\r\n.jsonl", "filename-with-CRLF", header_ok=False),
    http_named("抽\x00检.jsonl", "filename-with-NUL", header_ok=False),
    http_named("长" * 5000 + ".jsonl", "filename-5000-characters", header_ok=False),
    http_named("../../etc/事件.jsonl", "filename-path-traversal"),
    http_named("事" * 300 + ".jsonl", "filename-900-bytes"),
    http_named("a" * 2000 + ".jsonl", "filename-2000-ascii-characters"),
    http_named("%ED%A0%80.jsonl", "filename-percent-escapes"),
    http_named("C:\\fakepath\\事件.jsonl", "filename-windows-path"),
    http_field_named("fi\r\nle", "field-name-with-CRLF"),
    http_field_named("f" * 5000, "field-name-5000-characters"),
    http_field_named("fi\x00le", "field-name-with-NUL"),
    http_refused("multipart-without-boundary", _no_boundary, 400),
    http_refused("multipart-cut-short", _unterminated, 400),
    http_refused("multipart-without-a-file", _fields_only, 400),
    http_refused("json-body-invalid", _json_body(b'{"type": "incident", '), 400),
    http_refused("json-body-nested-100000", _json_body(b"[" * 100_000 + b"]" * 100_000), 400),
    http_refused("json-body-nested-1000", _json_body(b"[" * 1000 + b"]" * 1000), 400),
    http_refused("json-body-empty", _json_body(b"  \n"), 400),
    http_refused("json-body-gbk", _gbk_json, 400),
    http_refused("json-body-5000-digit-integer", _big_int_json, 400),
    http_refused("text-plain", _plain, 415),
    heavy(http_refused("body-over-50-MB", _too_big, 413)),  # the documented limit (README, SECURITY.md)
    http_surrogate_json,
    http_ndjson_gbk,
    http_upload_files,
]


# -- the drop folder ------------------------------------------------------------------------

def drop_kinds(rng: random.Random, world: World, prefix: str) -> Case:
    """Upper-case suffixes are taken; lock files, hidden files, other suffixes and a file
    still being written are left in the folder."""
    from .files import jsonl_file

    data, rows = jsonl_file(rng, world, prefix, "大写.JSONL", 4)
    csv_text, sheet, stem = csv_file(rng, world, prefix + "c", live=True, size=3)
    csv_rows = qualify([r for r, _, _ in sheet.events], f"{stem}.CSV")
    fresh = b'{"type": "incident"}\n'
    files = [("大写.JSONL", data), (f"{stem}.CSV", encode_csv(rng, csv_text)[0]), ("~$抽检.xlsx", b"lock"),
             (".隐藏.jsonl", fresh), ("说明.txt", b"x"), ("正在写入.jsonl", fresh)]
    return Case("drop", "suffixes-and-ignored-files", rows + csv_rows, files,
                {"ignored": ["~$抽检.xlsx", ".隐藏.jsonl", "说明.txt"], "fresh": ["正在写入.jsonl"]})


def drop_broken(rng: random.Random, world: World, prefix: str) -> Case:
    """Broken files in the folder: each set aside with its reason, the good one read."""
    from .files import jsonl_file

    data, rows = jsonl_file(rng, world, prefix, "好.jsonl", 4)
    truncated = xlsx_truncated(rng, world, prefix + "t")
    empty = [marker("file")]
    files = [("好.jsonl", data), ("截断.xlsx", truncated.data), ("空.csv", b""), ("空.jsonl", b""),
             ("随机.xlsx", bytes(rng.randrange(256) for _ in range(999)))]
    return Case("drop", "broken-files", rows + truncated.rows + empty, files)


@heavy
def drop_empty_rows(rng: random.Random, world: World, prefix: str) -> Case:
    case = xlsx_empty_rows(rng, world, prefix)
    qualify(case.rows, "导入.xlsx")
    return Case("drop", "20,000,000-empty-rows", case.rows, [("导入.xlsx", case.data)])


def drop_named(name: str, label: str) -> Builder:
    """A file whose name is odd: a newline, the longest the file system takes, bytes that are
    not UTF-8."""
    def build(rng: random.Random, world: World, prefix: str) -> Case:
        from .files import jsonl_file

        data, rows = jsonl_file(rng, world, prefix, name, 3)
        return Case("drop", label, rows, [(name, data)])
    return build


DROP: list[Builder] = [
    drop_kinds, drop_broken, drop_empty_rows,
    drop_named("换\n行.jsonl", "file-name-with-newline"),
    drop_named("长" * 80 + ".jsonl", "file-name-246-bytes"),
    drop_named(b"\xff\xfe\xe6\x8a\xbd.jsonl".decode("utf-8", "surrogateescape"), "file-name-not-utf8"),
]
