"""A broken file or line is set aside with its reason and never stops the run: the good lines of
the same file and the files given with it are still read (the one reader, streams/sources.py,
and the validator's limits)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from conftest import write_events
from shian.cli import main
from shian.rules.events import MAX_LINE
from shian.streams import sources

HH = "红河镇"
CONFIG = str(Path(__file__).resolve().parents[1] / "examples" / "county.yaml")
HEADER = ["样品编号", "任务类别", "抽样日期", "报告日期", "乡镇", "被抽样单位名称", "食品大类", "样品名称",
          "检验项目", "检验结果", "计量单位", "标准值", "单项结论"]


def row(sid: str, day: str, note: str = "合格") -> list[str]:
    return [sid, "监督抽检", day, day, HH, "张三蔬菜店", "蔬菜", "韭菜", "铅", "0.1", "mg/kg", "0.2", note]


def incident(iid: str, **extra: object) -> dict:
    return {"type": "incident", "id": iid, "township": HH, "kind": "食物中毒", "occurred_at": "2026-04-01T08:00:00",
            "reported_at": "2026-04-01T09:00:00", **extra}


def csv_text(rows: list[list[str]]) -> str:
    return "\n".join(",".join(r) for r in rows) + "\n"


def run(tmp_path: Path, *files: Path) -> tuple[int, list[dict], list[dict]]:
    out, rej = tmp_path / "notices.jsonl", tmp_path / "rejects.jsonl"
    code = main(["replay", *map(str, files), "--config", CONFIG, "--out", str(out),
                 "--rejects", str(rej), "--no-progress"])
    read = lambda p: [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
    return code, read(out), read(rej)


def good_file(tmp_path: Path) -> Path:
    return write_events(tmp_path / "good.jsonl", [incident("GOOD-1")])


def truncated_workbook(tmp_path: Path) -> Path:
    import openpyxl

    path = tmp_path / "抽检.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "抽检"
    for r in [HEADER, row("S-1", "2026-04-02"), row("S-2", "2026-04-03")]:
        ws.append(r)
    wb.save(path)
    broken = tmp_path / "截断.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data[: len(data) // 2] if item.filename.startswith("xl/worksheets/") else data)
    return broken


BROKEN = {
    "a workbook whose sheet XML is cut short": truncated_workbook,
    "a zip that is not a workbook": lambda d: _zip(d / "抽检.xlsx"),
    "random bytes named .xlsx": lambda d: _bytes(d / "抽检.xlsx", b"\x00\x01not a zip at all"),
    "a CSV in no known encoding": lambda d: _bytes(d / "抽检.csv", b"\xff\xfe\x00\xd8\x00\xdc" * 10),
}


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("what", BROKEN)
def test_an_unreadable_file_is_one_reject_and_the_files_given_with_it_still_run(tmp_path, what):
    """Exit 0, one reject naming the file, and the good file's notices as without it."""
    broken = BROKEN[what](tmp_path)
    code, notices, rejects = run(tmp_path, broken, good_file(tmp_path))
    assert code == 0
    assert [r["source"] for r in rejects] == [str(broken)] and rejects[0]["reason"], rejects
    assert [n["event_ids"] for n in notices if n["rule"] == "incident.reported"] == [["GOOD-1"]]


def test_a_csv_line_that_cannot_be_read_keeps_the_lines_before_it(tmp_path):
    """A cell over the cell limit: the rows before it are read, the rest is one reject saying
    from which line on."""
    path = tmp_path / "抽检.csv"
    path.write_text(csv_text([HEADER, row("S-1", "2026-04-02"), row("S-2", "2026-04-03", "x" * (sources.MAX_CELL + 1)),
                              row("S-3", "2026-04-04")]), encoding="utf-8")
    records = sources.read_tabular(path)
    assert [r.obj["id"] for r in records if r.obj] == ["S-1"]
    [cut] = [r for r in records if r.obj is None]
    assert "第 3 行起" in cut.reason and "1,048,576" in cut.reason


def test_a_sheet_is_read_up_to_the_row_limit_then_cut_with_a_reason(tmp_path, monkeypatch):
    """Past MAX_ROWS (200,000) a sheet is not read further: what came before stands."""
    import openpyxl

    monkeypatch.setattr(sources, "MAX_ROWS", 3)
    path = tmp_path / "抽检.xlsx"
    wb = openpyxl.Workbook()
    for r in [HEADER] + [row(f"S-{i}", f"2026-04-0{i}") for i in range(1, 6)]:
        wb.active.append(r)
    wb.save(path)
    records = sources.read_tabular(path)
    assert [r.obj["id"] for r in records if r.obj] == ["S-1", "S-2"]
    assert [("第 4 行起未读取" in r.reason) for r in records if r.obj is None] == [True]


def test_a_workbook_too_large_once_unzipped_is_refused_before_parsing(tmp_path, monkeypatch):
    """The inflated size is read from the zip directory, so a bomb is never parsed."""
    monkeypatch.setattr(sources, "MAX_INFLATED", 1000)
    path = tmp_path / "抽检.xlsx"
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(HEADER)
    wb.save(path)
    [record] = sources.read_tabular(path)
    assert "解压后" in record.reason


@pytest.mark.parametrize("line, why", [
    (json.dumps(incident("DEEP"))[:-1] + ', "extra": ' + '{"x":' * 1000 + "1" + "}" * 1000 + "}",
     "嵌套过深"),
    (json.dumps(incident("LONG", note="x" * MAX_LINE)), "这一行太长"),
])
def test_a_hostile_json_line_is_rejected_and_its_neighbours_kept(tmp_path, line, why):
    """A line nested 1,000 deep (it crashed the decoder) or over 1 MiB is refused on its own."""
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([json.dumps(incident("A")), line, json.dumps(incident("B"))]) + "\n", encoding="utf-8")
    code, notices, rejects = run(tmp_path, path)
    assert code == 0 and [r["line"] for r in rejects] == [2] and why in rejects[0]["reason"]
    assert sorted(n["event_ids"][0] for n in notices if n["rule"] == "incident.reported") == ["A", "B"]


def test_a_rule_that_raises_in_replay_sets_its_line_aside(tmp_path, monkeypatch):
    """Replay, too: an injected failing handler rejects that line with its reason, and the
    lines after it are judged as usual."""
    from shian.rules.families.incidents import Incidents

    original = Incidents.handlers

    def handlers(self):
        real = original(self)

        def failing(ev, now):
            if ev.id == "BOOM":
                raise ZeroDivisionError("injected")
            real["incident"](ev, now)

        return {**real, "incident": failing}

    monkeypatch.setattr(Incidents, "handlers", handlers)
    path = write_events(tmp_path / "events.jsonl", [incident("BOOM"), incident("AFTER")])
    code, notices, rejects = run(tmp_path, path)
    assert code == 0 and [r["line"] for r in rejects] == [1] and "ZeroDivisionError" in rejects[0]["reason"]
    assert [n["event_ids"] for n in notices if n["rule"] == "incident.reported"] == [["AFTER"]]


@pytest.mark.parametrize("entity, accepted", [
    ("\\ud83d\\ude00", True),   # a valid escape pair (an emoji) is text like any other
    ("\\ud800", False),         # an unpaired surrogate, escaped
    ("\\udc00x", False),
])
def test_unpaired_surrogates_are_rejected_and_valid_escapes_accepted(tmp_path, entity, accepted):
    """In a JSON line, and in an already parsed object (an HTTP body, a spreadsheet cell), where
    one used to crash the validator with UnicodeEncodeError."""
    from shian.rules.config import load
    from shian.rules.events import Rejected, Validator

    line = json.dumps(incident("U-1"))[:-1] + f', "entity": "{entity}"}}'
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(incident("A")) + "\n" + line + "\n", encoding="utf-8")
    code, notices, rejects = run(tmp_path, path)
    assert code == 0 and len(rejects) == (0 if accepted else 1), rejects
    validator = Validator(load(CONFIG).known())
    parsed = json.loads(line)
    if accepted:
        assert validator.from_object(parsed).id == "U-1"
    else:
        with pytest.raises(Rejected):
            validator.from_object(parsed)


@pytest.mark.parametrize("tail, accepted, why", [
    (b', "note": "' + "中毒".encode("gbk") + b'"', False, "UTF-8"),            # GBK bytes in an unknown field
    (b', "note": "\xed\xa0\x80"', False, "UTF-8"),                           # a surrogate as bytes, unknown field
    (b', "zz": ' + b"9" * 5000, False, "4,300 位"),                            # a number json.loads cannot read
    (b', "zz": ' + b"9" * 4000, True, ""),
    (b', "zz": "' + b"9" * 5000 + b'"', True, ""),                               # digits in a string are text
    (b', "note": "' + "中毒".encode() + b'"', True, ""),
])
def test_an_unknown_field_is_ignored_but_its_bytes_and_numbers_still_checked(tmp_path, tail, accepted, why):
    """The decoder skips unknown fields without reading them; bytes that are not UTF-8 and
    numbers past 4,300 digits there still reject the line (the service's journal reads every
    line back with json.loads), with the reason in Chinese."""
    line = json.dumps(incident("U-1"), ensure_ascii=False).encode()[:-1] + tail + b"}"
    path = tmp_path / "events.jsonl"
    path.write_bytes(json.dumps(incident("A")).encode() + b"\n" + line + b"\n")
    code, notices, rejects = run(tmp_path, path)
    assert code == 0 and len(rejects) == (0 if accepted else 1), rejects
    assert all(why in r["reason"] for r in rejects)


@pytest.mark.parametrize("tail, words", [
    (', "cases": 1e400', "数值超出范围"),
    (', "cases": ' + "9" * 5000, "整数位数过多"),
])
def test_a_number_out_of_range_is_rejected_in_chinese(tmp_path, tail, words):
    """msgspec's "Number out of range" reached the reject record in English."""
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(incident("A")) + "\n" + json.dumps(incident("N"))[:-1] + tail + "}\n1e999999\n",
                    encoding="utf-8")
    code, notices, rejects = run(tmp_path, path)
    assert [r["line"] for r in rejects] == [2, 3]
    assert words in rejects[0]["reason"] and "out of range" not in rejects[0]["reason"]
    assert rejects[1]["reason"] == "不是 JSON 对象（数值超出范围）"


def test_a_quote_left_open_in_a_csv_is_a_reject_not_one_long_cell(tmp_path):
    """An opened quote used to swallow every row after it into one cell, silently: the rows
    before it are read, and one reject says from which row on nothing was."""
    path = tmp_path / "抽检.csv"
    text = csv_text([HEADER, row("S-1", "2026-04-02")]) + '"S-2,监督抽检\n' + csv_text([row("S-3", "2026-04-04")])
    path.write_text(text, encoding="utf-8")
    records = sources.read_tabular(path)
    assert [r.obj["id"] for r in records if r.obj] == ["S-1"]
    [cut] = [r for r in records if r.obj is None]
    assert "第 3 行起" in cut.reason and "引号没有闭合" in cut.reason


def test_a_csv_with_old_mac_line_ends_is_read(tmp_path):
    """Excel for Mac's "CSV (Macintosh)" ends lines with a lone CR."""
    path = tmp_path / "抽检.csv"
    path.write_bytes(csv_text([HEADER, row("S-1", "2026-04-02"), row("S-2", "2026-04-03")]).replace("\n", "\r").encode())
    assert [r.obj["id"] for r in sources.read_tabular(path)] == ["S-1", "S-2"]


def test_rows_as_wide_as_the_last_column_are_cut_at_the_cell_limit(tmp_path, monkeypatch):
    """A row is as wide as its last cell: a few thousand rows with one cell in column XFD were
    gigabytes. Past MAX_CELLS the workbook is cut with a reject; the rows before stand."""
    import openpyxl

    monkeypatch.setattr(sources, "MAX_CELLS", 40_000)
    path = tmp_path / "抽检.xlsx"
    wb = openpyxl.Workbook()
    for r in [HEADER, row("S-1", "2026-04-02"), row("S-2", "2026-04-03")]:
        wb.active.append(r)
    for n in range(4, 10):
        wb.active.cell(row=n, column=16384, value=1)
    wb.save(path)
    records = sources.read_tabular(path)
    assert [r.obj["id"] for r in records if r.obj] == ["S-1", "S-2"]
    [cut] = [r for r in records if r.obj is None]
    assert "第 6 行起未读取" in cut.reason and "单元格太多" in cut.reason


@pytest.mark.parametrize("filename", ["抽检" + "长" * 300 + ".csv", "抽检\x00.csv", "抽检" + "a" * 2000 + ".csv"])
def test_an_upload_whose_name_the_file_system_refuses_is_still_read(filename):
    """The upload was saved under the sender's name: one too long for the file system, or with
    a NUL, raised out of the reader (an HTTP 500). Its name still gives the event type."""
    data = csv_text([HEADER, row("S-1", "2026-04-02")]).encode()
    [record] = sources.read_bytes(data, filename, "api:test")
    assert record.obj["id"] == "S-1" and record.obj["type"] == "sampling_result"


def test_a_json_body_with_a_number_past_python_s_limit_is_refused_as_unreadable():
    """json.loads raises ValueError (not JSONDecodeError) for an integer of more than 4,300
    digits: it escaped the reader as an HTTP 500."""
    body = json.dumps(incident("A"))[:-1].encode() + b', "zz": ' + b"9" * 5000 + b"}"
    with pytest.raises(sources.UnreadableInput, match="位数过多"):
        sources.read_bytes(body, "body.json", "api:test")
