"""Rejects an office can see and fix: a dropped file without one good line goes to 无法读取/, one
with some bad lines to 已处理/, each with its ``<file>.拒收.xlsx`` beside it; the rejects are kept
once per input (a restart's backfill reading the same file adds none), and the 拒收记录 page and
``GET /api/rejects`` show the same of them, filtered by source and time."""
from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from openpyxl import Workbook, load_workbook

from api_support import client, running
from office_support import county, make_service  # noqa: F401  (a fixture)
from shian.rules.records import Reject
from shian.streams.store import Store

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 4, 10, 10, 0, tzinfo=TZ)
HEADERS = ["样品编号", "任务类别", "抽样日期", "报告日期", "乡镇", "被抽样单位名称", "食品大类", "样品名称",
           "检验项目", "检验结果", "计量单位", "标准值", "单项结论"]
DROP = {"listen": "127.0.0.1:0", "data_dir": "data", "drop_dir": "drop"}


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def sample(sid: str, township: str = "红河镇") -> dict[str, Any]:
    return {"type": "sampling_result", "id": sid, "township": township, "sampled_at": "2026-04-08",
            "reported_at": "2026-04-09T10:00:00", "entity": f"农贸市场{sid}号摊", "category": "蔬菜",
            "food": "韭菜", "items": [{"item": "腐霉利", "value": 0.1, "unit": "mg/kg", "limit": 0.2}]}


def aged(path: Path) -> Path:
    """As a file copied in a while ago: the drop folder takes files not written to for a second."""
    old = time.time() - 5
    os.utime(path, (old, old))
    return path


def workbook(rows: list[list[Any]], sheet: str = "抽检") -> bytes:
    """The rows as a sheet, every cell a value (text starting with = is text, as typed with a ')."""
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    for row in rows:
        ws.append(row)
    for line in ws.iter_rows():
        for cell in line:
            if cell.data_type == "f":
                cell.data_type = "s"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def four_bad_files(drop: Path) -> dict[str, str]:
    """A new user's first mistakes, each file name → a word its reason must hold."""
    drop.mkdir(exist_ok=True)
    (drop / "化验结果.xlsx").write_bytes(os.urandom(3000))
    (drop / "检查.csv").write_text("foo,bar,baz\n1,2,3\n", encoding="utf-8")
    misspelt = {**sample("S-1"), "townshp": "红河镇"}
    del misspelt["township"]
    (drop / "抽检.jsonl").write_text(json.dumps(misspelt, ensure_ascii=False) + "\n", encoding="utf-8")
    (drop / "月报.json").write_text("月报已报\n", encoding="utf-8")
    for p in drop.iterdir():
        aged(p)
    return {"化验结果.xlsx": "不是有效的 .xlsx", "检查.csv": "表头", "抽检.jsonl": "township（乡镇）",
            "月报.json": "不是有效的 JSON"}


def sheet_of(path: Path) -> list[tuple[Any, ...]]:
    wb = load_workbook(path)
    rows = list(wb["拒收"].iter_rows(values_only=True))
    wb.close()
    return rows


def test_four_bad_files_go_to_unreadable_each_with_its_reasons(make_service, tmp_path: Path):
    """Random bytes named .xlsx, a CSV with wrong headers, a JSON Lines line with a misspelt
    field and a line that is not JSON: all four to 无法读取/, each with a 拒收 list naming why."""
    svc = make_service(county(service=DROP), now=Clock(NOW))
    words = four_bad_files(tmp_path / "drop")
    assert asyncio.run(svc.scan_drop_folder()) == 4
    assert not (tmp_path / "drop" / "已处理").exists()
    moved = sorted(p.name[16:] for p in (tmp_path / "drop" / "无法读取").iterdir())
    assert moved == sorted([*words, *(f"{name}.拒收.xlsx" for name in words)])
    for name, word in words.items():
        [book] = (tmp_path / "drop" / "无法读取").glob(f"*-{name}.拒收.xlsx")
        header, *rows = sheet_of(book)
        assert header[:3] == ("行号/位置", "字段", "原因")
        assert rows and all(word in "".join(str(c) for c in row) for row in rows), (name, rows)
        total, kept = svc.reject_page(source=name)
        assert total == len(rows) and all(word in r.reason + r.field for r in kept), (name, kept)


def test_a_partly_bad_workbook_goes_to_processed_with_its_rows_to_fix_beside_it(make_service, tmp_path: Path):
    """Good rows are taken; the bad ones are listed with their place, field, reason and their
    own cells under the sheet's headers, formula-like text neutralised with a leading '."""
    svc = make_service(county(service=DROP), now=Clock(NOW))
    drop = tmp_path / "drop"
    drop.mkdir()
    good = ["S-1", "食品安全抽检", "2026-04-07", "2026-04-08", "红河镇", "红河超市", "蔬菜", "芹菜", "毒死蜱", 0.01,
            "mg/kg", 0.05, "合格"]
    bad_date = ["S-2", "食品安全抽检", "四月七日", "2026-04-08", "红河镇", "红河超市", "蔬菜", "芹菜", "毒死蜱", 0.01,
                "mg/kg", 0.05, "合格"]
    bad_town = ["S-3", "食品安全抽检", "2026-04-07", "2026-04-08", "北京镇", '=HYPERLINK("http://x.example")', "蔬菜",
                "芹菜", "毒死蜱", 0.01, "mg/kg", 0.05, "合格"]
    (drop / "抽检结果.xlsx").write_bytes(workbook([HEADERS, good, bad_date, bad_town]))
    aged(drop / "抽检结果.xlsx")
    assert asyncio.run(svc.scan_drop_folder()) == 1
    assert [e["id"] for e in svc.store.events()] == ["S-1"]
    done = drop / "已处理"
    assert sorted(p.name[16:] for p in done.iterdir()) == ["抽检结果.xlsx", "抽检结果.xlsx.拒收.xlsx"]
    [book] = done.glob("*.拒收.xlsx")
    header, *rows = sheet_of(book)
    assert header == ("行号/位置", "字段", "原因", *HEADERS)
    by_place = {row[0]: dict(zip(header, row)) for row in rows}
    assert set(by_place) == {"抽检!3", "抽检!4"}
    assert by_place["抽检!3"]["字段"] == "抽样日期" and "四月七日" in by_place["抽检!3"]["原因"]
    assert by_place["抽检!3"]["抽样日期"] == "四月七日" and by_place["抽检!3"]["样品编号"] == "S-2"
    assert by_place["抽检!4"]["字段"] == "township（乡镇）" and "北京镇" in by_place["抽检!4"]["原因"]
    assert by_place["抽检!4"]["被抽样单位名称"] == '\'=HYPERLINK("http://x.example")'
    wb = load_workbook(book)
    assert not [c.coordinate for r in wb["拒收"].iter_rows() for c in r if c.data_type == "f"], "no formula cell"


def test_a_partly_bad_json_lines_file_lists_its_lines_as_they_were(make_service, tmp_path: Path):
    """A JSON Lines file's rejected lines: line number, field, reason and the line itself."""
    svc = make_service(county(service=DROP), now=Clock(NOW))
    drop = tmp_path / "drop"
    drop.mkdir()
    lines = [json.dumps(sample("S-1"), ensure_ascii=False), json.dumps(sample("S-2", "北京镇"), ensure_ascii=False),
             "=1+1"]
    aged_file = drop / "抽检.jsonl"
    aged_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    aged(aged_file)
    assert asyncio.run(svc.scan_drop_folder()) == 1
    [book] = (drop / "已处理").glob("*.拒收.xlsx")
    header, *rows = sheet_of(book)
    assert header == ("行号/位置", "字段", "原因", "原始内容")
    assert [(r[0], r[1]) for r in rows] == [("2", "township（乡镇）"), ("3", None)]
    assert rows[0][3] == lines[1] and rows[1][3] == "'=1+1"


def test_the_same_input_rejected_again_is_kept_once(make_service, tmp_path: Path):
    """A restart's backfill reads the same file again: its bad lines are not added again (nor
    those of the same bad file dropped twice); another bad line still is."""
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([json.dumps(sample("S-1"), ensure_ascii=False), "not json",
                                 json.dumps(sample("S-2", "北京镇"), ensure_ascii=False)]) + "\n", encoding="utf-8")
    first = make_service(county(service=DROP), now=Clock(NOW))
    assert first.backfill([str(events)])["rejected"] == 2
    asyncio.run(first.close())
    again = make_service(county(service=DROP), now=Clock(NOW + timedelta(hours=1)))
    tally = again.backfill([str(events)])
    assert (tally["duplicate"], tally["rejected"]) == (1, 2), "still answered as rejected"
    assert again.store.counts()["rejects"] == 2
    assert [r.at for r in again.store.rejects()] == [NOW, NOW], "the first rejection's time stays"
    for _ in range(2):
        four_bad_files(tmp_path / "drop")
        asyncio.run(again.scan_drop_folder())
    assert again.store.counts()["rejects"] == 2 + 4
    assert again.accept_object("still not json", "api:feed:lab", 1).status == "rejected"
    assert again.store.counts()["rejects"] == 2 + 4 + 1


def test_a_journal_kept_before_rejects_were_deduplicated_drops_its_repeats(tmp_path: Path):
    """A journal whose rejects table has the old shape, with the same bad line kept at every
    start: opened by this version, each input is kept once (the first), and new ones dedupe."""
    path = tmp_path / "events.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE rejects (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, source TEXT NOT NULL, line TEXT,"
               " raw TEXT NOT NULL, reason TEXT NOT NULL)")
    rows = [("2026-04-01T08:00:00+08:00", "e.jsonl", "2", "not json", "不是有效的 JSON"),
            ("2026-04-02T08:00:00+08:00", "e.jsonl", "2", "not json", "不是有效的 JSON"),
            ("2026-04-02T08:00:00+08:00", "e.jsonl", "3", "[1]", "不是 JSON 对象"),
            ("2026-04-03T08:00:00+08:00", "e.jsonl", "2", "not json", "不是有效的 JSON")]
    db.executemany("INSERT INTO rejects (at, source, line, raw, reason) VALUES (?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    store = Store(path, TZ)
    try:
        assert [(r.line, r.at.day) for r in store.rejects()] == [("3", 2), ("2", 1)]
        assert not store.add_reject(Reject("e.jsonl", 2, "not json", "不是有效的 JSON"), NOW)
        assert store.reject_count(since=datetime(2026, 4, 2, tzinfo=TZ)) == 1
    finally:
        store.close()


# -- the page and the API ---------------------------------------------------------------------

def seeded(make_service: Any) -> Any:
    """A service holding 60 rejects of one upload and 2 of a dropped file, a day apart."""
    clock = Clock(NOW - timedelta(days=1))
    svc = make_service(county(service=DROP), now=clock)
    asyncio.run(svc.accept_file(b"\n".join(f'{{"n": {i}}}'.encode() for i in range(60)), "上传.jsonl", "api:open"))
    clock.t = NOW
    for i, raw in enumerate(("not json", json.dumps(sample("S-9", "北京镇"), ensure_ascii=False)), 1):
        svc.accept_object(raw, "/srv/投放/抽检.jsonl", i)
    return svc


def test_api_rejects_filters_by_source_and_time_and_limits(make_service):
    """GET /api/rejects: newest first, filtered by the text of the source and the time refused,
    at most ``limit``; every answer as the spec says (bad parameters are 400)."""
    svc = seeded(make_service)

    async def scenario() -> None:
        async with running(svc, svc.storage) as base, client(base) as api:
            st, body = await api.call("GET", "/api/rejects")
            assert st == 200 and body["total"] == 62 and len(body["rejects"]) == 62
            newest = body["rejects"][0]
            assert newest == {"source": "/srv/投放/抽检.jsonl", "line": "2", "raw": json.dumps(sample("S-9", "北京镇"),
                                                                                         ensure_ascii=False),
                              "reason": "乡镇“北京镇”未在配置中登记", "field": "township（乡镇）",
                              "at": "2026-04-10T10:00:00+08:00"}
            st, body = await api.call("GET", "/api/rejects", params={"source": "抽检"})
            assert (body["total"], [r["line"] for r in body["rejects"]]) == (2, ["2", "1"])
            st, body = await api.call("GET", "/api/rejects", params={"since": "2026-04-10"})
            assert body["total"] == 2
            st, body = await api.call("GET", "/api/rejects", params={"source": "上传", "limit": "5"})
            assert body["total"] == 60 and [r["line"] for r in body["rejects"]] == ["60", "59", "58", "57", "56"]
            for bad in ({"since": "昨天"}, {"limit": "0"}, {"limit": "x"}):
                st, body = await api.call("GET", "/api/rejects", params=bad)
                assert (st, body["code"]) == (400, "bad_parameter"), bad

    asyncio.run(scenario())


def test_the_rejects_page_shows_what_the_api_gives_paged_and_filtered(make_service):
    """拒收记录 (linked in the menu of every page): the same rejects as the API, 50 to a page,
    with where, field, reason and input; the filters are query parameters kept by the pager."""
    svc = seeded(make_service)

    async def scenario() -> dict[str, str]:
        pages = {}
        async with running(svc, svc.storage) as base, aiohttp.ClientSession() as s:
            for name, query in (("home", "/"), ("all", "/rejects"), ("two", "/rejects?page=2"),
                                ("drop", "/rejects?source=%E6%8A%BD%E6%A3%80"), ("since", "/rejects?since=2099-01-01"),
                                ("bad", "/rejects?since=%E6%98%A8%E5%A4%A9")):
                async with s.get(base + query) as r:
                    assert r.status == 200 and r.content_type == "text/html"
                    pages[name] = await r.text()
        return pages

    pages = asyncio.run(scenario())
    assert '<a href="/rejects">拒收记录</a>' in pages["home"]
    assert "拒收记录 62 条，第 1–50 条" in pages["all"] and pages["all"].count('<tr class="reject">') == 50
    assert "第 51–62 条" in pages["two"] and pages["two"].count('<tr class="reject">') == 12
    assert 'href="/rejects?page=2"' in pages["all"]
    drop = pages["drop"]
    assert "拒收记录 2 条" in drop and "/srv/投放/抽检.jsonl" in drop and "上传.jsonl" not in drop
    assert "乡镇“北京镇”未在配置中登记" in drop and "township（乡镇）" in drop and "不是有效的 JSON" in drop
    assert "&#34;北京镇&#34;" in drop or "&quot;北京镇&quot;" in drop  # the input, escaped
    assert "没有符合条件的拒收记录" in pages["since"]
    assert "起始时间“昨天”无法识别" in pages["bad"] and "拒收记录 62 条" in pages["bad"]


def test_the_drop_folder_says_in_chinese_what_became_of_each_file(make_service, tmp_path: Path, caplog):
    """One log line per file, in Chinese: counts, where it went and where its 拒收 list is."""
    svc = make_service(county(service=DROP), now=Clock(NOW))
    four_bad_files(tmp_path / "drop")
    with caplog.at_level(logging.INFO, "shian.service"):
        asyncio.run(svc.scan_drop_folder())
    lines = [r.getMessage() for r in caplog.records if r.name == "shian.service"]
    assert len(lines) == 4 and all(line.startswith("投放文件夹：") for line in lines), lines
    assert any("检查.csv 已读完：接受 0 条，重复 0 条，拒收 1 条；已移到 无法读取/20260410-100000-检查.csv，"
               "拒收明细见 无法读取/20260410-100000-检查.csv.拒收.xlsx" == line[len("投放文件夹："):] for line in lines), lines


def test_a_new_user_drops_bad_files_into_a_running_shian_and_restarts_it(tmp_path: Path):
    """``shian run --listen`` with a backfill and a drop folder, as a new user tries it: the bad
    files go to 无法读取/, the partly bad one to 已处理/, all with their 拒收 lists; the rejects
    are on /api/rejects and the page; the log says so in Chinese, stamped in the county's time;
    after a restart (the backfill read again) the rejects are the same."""
    import signal

    import yaml

    from test_run_kill import free_port, get, wait_up

    port = free_port()
    data = county(service={"listen": "127.0.0.1:8080", "data_dir": "data", "drop_dir": "投放文件夹"})
    config = tmp_path / "county.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    backfill = tmp_path / "events.jsonl"
    recent = {**sample("B-1"), "sampled_at": (datetime.now(TZ) - timedelta(days=1)).date().isoformat(),
              "reported_at": (datetime.now(TZ) - timedelta(hours=1)).isoformat(timespec="seconds")}
    backfill.write_text(json.dumps(recent, ensure_ascii=False) + "\nnot json\n", encoding="utf-8")
    drop = tmp_path / "投放文件夹"
    four_bad_files(drop)
    (drop / "部分.jsonl").write_text(json.dumps(sample("P-1"), ensure_ascii=False) + "\n{}\n", encoding="utf-8")
    aged(drop / "部分.jsonl")
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "shian.cli", "run", "--config", str(config), "--listen", f"127.0.0.1:{port}",
               "--backfill", str(backfill)]
    seen = []
    for attempt in range(2):
        log = tmp_path / f"run{attempt}.log"
        proc = subprocess.Popen(command, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        try:
            wait_up(base, proc, log)
            deadline = time.monotonic() + 20
            while any(p.is_file() for p in drop.iterdir()) and time.monotonic() < deadline:
                time.sleep(0.2)
            seen.append((get(f"{base}/api/rejects"), get(f"{base}/health")["rejects"]))
            with urllib.request.urlopen(f"{base}/rejects", timeout=5) as r:
                page = r.read().decode()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    text = (tmp_path / "run0.log").read_text()
    assert not any(p.is_file() for p in drop.iterdir()), text
    assert sorted(p.name[16:] for p in (drop / "已处理").iterdir()) == ["部分.jsonl", "部分.jsonl.拒收.xlsx"]
    assert len(list((drop / "无法读取").iterdir())) == 8
    (first, count), (again, count_again) = seen
    assert first["total"] == count == 1 + 4 + 1, first
    assert again == first and count_again == count, "the restart's backfill added no reject"
    assert "拒收记录 6 条" in page and "月报.json" in page
    stamps = [line[:19] for line in text.splitlines() if "信息 shian.service: 投放文件夹：" in line]
    assert len(stamps) == 5, text
    local = datetime.strptime(stamps[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=TZ)
    assert abs(datetime.now(TZ) - local) < timedelta(minutes=5), (stamps[0], "stamped in the county's time")


# -- the pure parts ----------------------------------------------------------------------------

@pytest.mark.parametrize("reason, field", [
    ("缺少必填字段 township（乡镇）", "township（乡镇）"),
    ("字段 items.0.value（检验结果）应为数值，实为文本“高”", "items.0.value（检验结果）"),
    ("乡镇“北京镇”未在配置中登记", "township（乡镇）"),
    ("报送单位“李村”不是红河镇配置的报送单位", "reporter（报送单位）"),
    ("签收的通知“93946f8828379c8c”在权寨镇不存在（截至 2026-04-27 09:00 未发出该通知）", "notice_id（通知编号）"),
    ("部门“hh-x”未在配置中登记", "by（签收部门）"),
    ("日期无法识别：列“抽样日期”的值“四月七日”", "抽样日期"),
    ("编号重复但内容不同（duplicate id with different content; the first is kept）", "id（编号）"),
    ("不是有效的 JSON", ""),
    ("文件为空：没有任何事件行", ""),
], ids=lambda v: v[:12] if isinstance(v, str) else v)
def test_the_field_a_reason_names(reason: str, field: str) -> None:
    """The 字段 column of the page, the API and the 拒收 list: the field the reason names, or none."""
    assert Reject("s", 1, "", reason).field == field


@pytest.mark.parametrize("line, place", [(3, "3"), ("抽检!3-5", "抽检!3-5"), (0, "整个文件"), ("", "整个文件"),
                                         (None, "整个文件")])
def test_the_place_of_a_reject(line: Any, place: str) -> None:
    """行号/位置: a line, a sheet's rows, or the whole file."""
    assert Reject("s", line, "", "r").place == place


def test_cells_hold_text_as_text_like_openpyxl_requires() -> None:
    """The shared cell helper: the control characters openpyxl refuses, and formula leads."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    from shian.rules.cells import ILLEGAL, safe

    assert ILLEGAL.pattern == ILLEGAL_CHARACTERS_RE.pattern
    assert [safe(v) for v in ("=1+1", "+86", "-3", "@x", "\tx", "a\x07b", "正常", 5, None)] == \
        ["'=1+1", "'+86", "'-3", "'@x", "'\tx", "a b", "正常", 5, None]
