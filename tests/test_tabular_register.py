"""The register (台账) in spreadsheets (§5): its columns, ``A级`` cells, where its type comes
from, and a workbook of several hundred register rows replayed with its inspections."""
from __future__ import annotations

import csv
from collections import Counter
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from conftest import config_dict, of, t
from shian.rules.config import parse
from shian.rules.tabular import rows_to_events, type_from_name, type_from_value
from shian.streams.replay import Replay
from shian.streams.sources import read_tabular

HEADER = ["编号", "乡镇", "单位名称", "统一社会信用代码", "业态", "风险等级", "登记日期", "状态"]
RISKS = "ABCD"
PER_YEAR = {"A": 1, "B": 2, "C": 3, "D": 4}


def write_xlsx(path: Path, sheets: dict[str, list[list]]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def convert(header: list, row: list, sheet: str | None = "台账") -> dict:
    [record] = rows_to_events([header, row], source="t.xlsx", sheet=sheet, default_type=None)
    return record.obj if record.obj is not None else {"reason": record.reason}


def test_register_row_maps_onto_the_entity_event():
    """编号, 乡镇, 单位名称, 统一社会信用代码, 业态, 风险等级 (D级 → D), 登记日期, 状态."""
    obj = convert(HEADER, ["TZ-1", "红河镇", "兴旺饭店", "92411721MA45D8JL6R", "餐饮服务", "D级",
                           datetime(2024, 3, 1), "在营"])
    assert obj == {"type": "entity", "id": "TZ-1", "township": "红河镇", "entity": "兴旺饭店",
                   "entity_id": "92411721MA45D8JL6R", "entity_type": "餐饮服务", "risk_level": "D",
                   "registered_at": "2024-03-01", "status": "在营"}


def test_alternative_headers():
    """许可证号 → entity_id, 单位类型 → entity_type, 评定日期 → registered_at; no 状态 column."""
    obj = convert(["编号", "乡镇", "单位名称", "许可证号", "单位类型", "风险等级", "评定日期"],
                  ["TZ-2", "红河镇", "小卖部", "JY14117210001", "食品销售", "C", "2026年3月5日"])
    assert obj == {"type": "entity", "id": "TZ-2", "township": "红河镇", "entity": "小卖部",
                   "entity_id": "JY14117210001", "entity_type": "食品销售", "risk_level": "C",
                   "registered_at": "2026-03-05"}


@pytest.mark.parametrize("cell, read", [("A级", "A"), ("B级", "B"), ("C", "C"), (" D级 ", "D"), ("E级", "E级"),
                                        ("A 级", "A 级"), ("高", "高")])
def test_risk_level_cells(cell, read):
    """A级 … D级 read as the letter; anything else is left for the validator to reject."""
    assert convert(HEADER, ["TZ-1", "红河镇", "x", "", "餐饮服务", cell, "2024-03-01"])["risk_level"] == read


@pytest.mark.parametrize("name, kind", [
    ("台账", "entity"), ("台账（2026年）", "entity"), ("主体名单", "entity"), (" 主体台账", "entity"),
    ("检查台账", "inspection"), ("抽检台账", "sampling_result"), ("快检台账", "sampling_result"),
    ("红河镇食品经营主体", None), ("entity_register", "entity"), ("检查记录", "inspection"),
])
def test_type_from_sheet_or_file_name(name, kind):
    """A name beginning 台账 or 主体 is the register; 检查台账 stays inspections."""
    assert type_from_name(name) == kind


@pytest.mark.parametrize("word", ["entity", "台账", "Entity"])
def test_type_column_values(word):
    """类型 column: entity or 台账."""
    assert type_from_value(word) == "entity"


def test_csv_named_by_its_type_column_and_bad_rows_rejected(tmp_path, replay):
    """A 类型 column of 台账 in any file; E级 and 停业 are rejected by the validator with the row."""
    path = tmp_path / "导入.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        csv.writer(out).writerows([["类型", *HEADER],
                                   ["台账", "TZ-1", "红河镇", "兴旺饭店", "", "餐饮服务", "A级", "2024-03-01", ""],
                                   ["台账", "TZ-2", "红河镇", "小卖部", "", "食品销售", "E级", "2024-03-01", ""],
                                   ["台账", "TZ-3", "红河镇", "面馆", "", "餐饮服务", "B", "2024-03-01", "停业"]])
    config = parse(config_dict(), path="<test>")
    rejects: list = []
    summary = Replay(config, lambda n: None, lambda r: rejects.append(r.to_json())).run([str(path)])
    assert summary.accepted == 1
    assert [(r["line"], "风险等级" in r["reason"] or "状态" in r["reason"]) for r in rejects] == [("3", True), ("4", True)]


def _register(n: int) -> list[list]:
    """n register rows of 红河镇: risk by i % 4 as 'X级' cells, registered 2015–2025 as date cells, every
    10th closed (注销) and every 25th first registered in 2026; in a shuffled order."""
    rows = []
    for i in range(n):
        registered = datetime(2026, 2, 1) if i % 25 == 24 else datetime(2015 + i % 11, 1 + i % 12, 1 + i % 28)
        rows.append([f"TZ-{i:04d}", "红河镇", f"单位{i:04d}", f"9241{i:06d}", "餐饮服务" if i % 3 else "学校食堂",
                     f"{RISKS[i % 4]}级", registered, "注销" if i % 10 == 9 else "在营"])
    return [HEADER] + sorted(rows, key=lambda r: (int(r[0][3:]) * 7919) % n)


def _inspections(n: int) -> list[list]:
    """Entity i inspected i % 3 times in the first half of 2026."""
    rows = [["检查编号", "检查日期", "乡镇", "单位名称", "统一社会信用代码", "业态", "检查类型", "检查结果"]]
    for i in range(n):
        for k in range(i % 3):
            rows.append([f"JC-{i:04d}-{k}", datetime(2026, 1 + (i + k) % 6, 1 + k * 9, 10), "红河镇", f"单位{i:04d}",
                         f"9241{i:06d}", "餐饮服务", "日常检查", "合格"])
    return rows


def test_workbook_of_several_hundred_register_rows(tmp_path):
    """A 台账 sheet of 600 rows (A级 … D级) and a 检查 sheet replayed to the end of the year: the
    notices are exactly the entities registered before 2026, in business, with fewer inspections
    than the quota; the register never starts or moves the clock, whatever its order."""
    n = 600
    book = write_xlsx(tmp_path / "红河镇2026.xlsx", {"台账": _register(n), "检查记录": _inspections(n)})
    records = read_tabular(book)
    assert [r.reason for r in records if r.obj is None] == []
    assert Counter(r.obj["type"] for r in records)["entity"] == n
    config = parse(config_dict(), path="<test>")
    notices: list = []
    rejects: list = []
    summary = Replay(config, lambda x: notices.append(x.to_json()), lambda r: rejects.append(r.to_json()),
                     until=t("2026-12-31T00:00:00")).run([str(book)])
    assert rejects == [] and summary.accepted == len(records)

    expected = set()
    for i in range(n):
        if i % 25 == 24 or i % 10 == 9:
            continue
        per_year = PER_YEAR[RISKS[i % 4]]
        for day, required in (("2026-07-01", -(-per_year // 2)), ("2026-12-01", per_year)):  # ceil(0.5 ×), 1.0 ×
            done = sum(1 for k in range(i % 3) if f"2026-{1 + (i + k) % 6:02d}-{1 + k * 9:02d}" < day)
            if done < required:
                expected.add((f"9241{i:06d}", day))
    got = {(n_["facts"]["entity_id"], n_["facts"]["check_date"]) for n_ in of(notices, "inspection.frequency_due")}
    assert got == expected
    first_at = min(n_["at"] for n_ in notices)
    assert first_at >= "2026-01-01T10:00:00+08:00"  # the clock started with the first inspection


@pytest.mark.parametrize("order", ["as written", "reversed"])
def test_register_rows_sorted_by_their_dates_never_move_the_clock(tmp_path, order):
    """A workbook sorted by event time puts a 2019 row first and a December one last: neither
    starts nor moves the clock, so without --until nothing after the last inspection fires."""
    register = [["TZ-1", "红河镇", "兴旺饭店", "91A", "餐饮服务", "D级", datetime(2019, 3, 1), "在营"],
                ["TZ-2", "红河镇", "小卖部", "91B", "食品销售", "A级", datetime(2026, 12, 20), "在营"],
                ["TZ-1", "红河镇", "兴旺饭店", "91A", "餐饮服务", "C级", datetime(2026, 2, 1), "在营"]]
    if order == "reversed":
        register.reverse()
    inspections = [["检查编号", "检查日期", "乡镇", "单位名称", "统一社会信用代码", "业态", "检查类型", "检查结果"]]
    inspections += [[f"JC-{m}", datetime(2026, m, 10, 10), "红河镇", "兴旺饭店", "91A", "餐饮服务", "日常检查", "合格"]
                    for m in (1, 2, 3)]
    book = write_xlsx(tmp_path / "红河镇.xlsx", {"主体台账": [HEADER, *register], "检查": inspections})
    config = parse(config_dict(), path="<test>")
    notices: list = []
    rejects: list = []
    summary = Replay(config, lambda x: notices.append(x.to_json()), lambda r: rejects.append(r.to_json())).run([str(book)])
    assert rejects == [] and summary.accepted == 6  # the re-grading sorts after the 2019 row
    assert notices and all(n["at"] <= "2026-03-10T10:00:00+08:00" for n in notices)
    assert min(n["at"] for n in notices) >= "2026-01-10T10:00:00+08:00"
