"""Inputs of the service paths: files for the drop folder and requests for ``POST /api/events``,
made of the same good and bad rows as the file paths, each row's line qualified by its file
(``抽检.csv:3``) because one drop or one upload may carry several files.
"""
from __future__ import annotations

import json
import random

from .events import World, batch
from .model import REJECT, Case, Row
from .tables import covered, csv_file, encode_csv, marker, workbook, workbook_bytes


def qualify(rows: list[Row], name: str) -> list[Row]:
    for row in rows:
        if row.line is not None:
            row.line = f"{name}:{row.line}"
    return rows


def jsonl_file(rng: random.Random, world: World, prefix: str, name: str, size: int) -> tuple[bytes, list[Row]]:
    from .paths import jsonl_bytes

    rows = batch(rng, world, prefix, size, live=True)
    return jsonl_bytes(rng, rows, prefix=f"{name}:"), rows


def csv_upload(rng: random.Random, world: World, prefix: str, size: int) -> tuple[str, bytes, list[Row]]:
    text, sheet, stem = csv_file(rng, world, prefix, live=True, size=size)
    data, _ = encode_csv(rng, text)
    name = f"{stem}.csv"
    return name, data, qualify([row for row, _, _ in sheet.events], name)


def xlsx_upload(rng: random.Random, world: World, prefix: str, size: int) -> tuple[str, bytes, list[Row]]:
    sheets, rows = workbook(rng, world, prefix, live=True, size=size)
    name = rng.choice(("导入.xlsx", "data.xlsx", "宏.xlsm"))
    return name, workbook_bytes(sheets), qualify(rows, name)


def json_doc(rng: random.Random, world: World, prefix: str, size: int, name: str) -> tuple[bytes, list[Row]]:
    """One event object, or an array of them (array index = line), as a JSON document."""
    rows = batch(rng, world, prefix, size, live=True, line_faults=False)
    for n, row in enumerate(rows, 1):
        row.line = f"{name}:{n}"
    objs = [row.obj if row.text is None else json.loads(row.text) for row in rows]
    if len(objs) == 1 and rng.random() < 0.5:
        return json.dumps(objs[0], ensure_ascii=rng.random() < 0.3).encode(), rows
    extra = []
    if rng.random() < 0.2:  # a value that is not an object, in the array
        extra = [Row(f"{prefix}-scalar", REJECT, "not_object", line=f"{name}:{len(rows) + 1}", note="a number in the array")]
        objs.append(42)
    return json.dumps(objs, ensure_ascii=rng.random() < 0.3, indent=rng.choice((None, 2))).encode(), rows + extra


def some_file(rng: random.Random, world: World, prefix: str, *, drop: bool) -> tuple[str, bytes, list[Row]]:
    """One file of a random kind, with its rows."""
    kind = rng.choice(("jsonl", "jsonl", "csv", "csv", "xlsx", "json", "ndjson"))
    size = rng.choice((1, 3, 6, 12))
    if kind in ("jsonl", "ndjson") or (kind == "json" and drop):
        name = f"{prefix}-事件.{kind}"
        data, rows = jsonl_file(rng, world, prefix, name, size)
        return name, data, rows
    if kind == "json":
        name = f"{prefix}-事件.json"
        data, rows = json_doc(rng, world, prefix, size, name)
        return name, data, rows
    if kind == "csv":
        name, data, rows = csv_upload(rng, world, prefix, size)
    else:
        name, data, rows = xlsx_upload(rng, world, prefix, size)
    named = f"{prefix}-{name}"
    for row in rows:
        if row.line is not None:
            row.line = f"{prefix}-{row.line}"
    return named, data, rows


# -- the drop folder ------------------------------------------------------------------------

IGNORED = ("说明.txt", "~$抽检.xlsx", ".隐藏.csv", "备份.jsonl.bak")


def drop_files(rng: random.Random, world: World, index: int) -> Case:
    files: list[tuple[str, bytes]] = []
    rows: list[Row] = []
    for n in range(rng.choice((1, 1, 2, 3))):
        name, data, these = some_file(rng, world, f"D{index}f{n}", drop=True)
        files.append((name, data))
        rows += these
    ignored = []
    if rng.random() < 0.2:
        name = rng.choice(IGNORED)
        files.append((name, b'{"type": "incident"}\n'))
        ignored.append(name)
    return Case("drop", f"random#{index}", rows, files, {"ignored": ignored})


# -- HTTP -----------------------------------------------------------------------------------

def multipart(parts: list[tuple[str, str | None, bytes, str]], boundary: str = "fuzzBoundary7MA4YWxk") -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body written by hand (so that names can be anything): parts of
    (field name, file name or None, bytes, content type)."""
    out = []
    for field, filename, data, ctype in parts:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename is not None else "")
        out.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {ctype}\r\n\r\n".encode("utf-8", "surrogatepass")
                   + data + b"\r\n")
    body = b"".join(out) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


CTYPES = {".csv": "text/csv", ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
          ".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12", ".jsonl": "application/x-ndjson",
          ".ndjson": "application/x-ndjson", ".json": "application/json"}


def http_request(rng: random.Random, world: World, index: int) -> Case:
    prefix = f"W{index}"
    kind = rng.choice(("json", "ndjson", "csv", "multipart", "multipart"))
    if kind == "json":
        data, rows = json_doc(rng, world, prefix, rng.choice((1, 1, 3, 10)), "body.json")
        return Case("http", f"json#{index}", rows, {"body": data, "headers": {"Content-Type": "application/json"}})
    if kind == "ndjson":
        data, rows = jsonl_file(rng, world, prefix, "body.jsonl", rng.choice((1, 3, 10, 30)))
        ctype = rng.choice(("application/x-ndjson", "application/jsonl", "application/x-ndjson; charset=utf-8"))
        return Case("http", f"ndjson#{index}", rows, {"body": data, "headers": {"Content-Type": ctype}})
    if kind == "csv":
        name, data, rows = csv_upload(rng, world, prefix, rng.choice((1, 3, 10)))
        typed = not name.startswith(("导入", "data", "2026年4月"))
        url = f"/api/events?filename={name}" if typed or rng.random() < 0.5 else "/api/events"
        body_name = name if "filename" in url else "body.csv"
        for row in rows:
            if row.line is not None:
                row.line = row.line.replace(f"{name}:", f"{body_name}:", 1)
        return Case("http", f"csv#{index}", rows, {"body": data, "url": url, "headers": {"Content-Type": "text/csv"}})
    parts, rows = [], []
    for n in range(rng.choice((1, 1, 2, 3))):
        name, data, these = some_file(rng, world, f"{prefix}f{n}", drop=False)
        suffix = name[name.rfind("."):]
        parts.append((rng.choice(("file", "files", "上传")), name, data, CTYPES.get(suffix, "application/octet-stream")))
        rows += these
    if rng.random() < 0.3:
        parts.insert(0, ("note", None, "备注：四月第二批".encode(), "text/plain"))
    body, headers = multipart(parts)
    return Case("http", f"multipart#{index}", rows, {"body": body, "headers": headers})


def unreadable(rows: list[Row], why: str) -> list[Row]:
    return covered(rows, why) or [marker(why)]
