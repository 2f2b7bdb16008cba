"""CSV / XLSX input (contract §5): header mapping, cell conversion, sample grouping, order, rejects."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from shian.rules.tabular import HEADERS, event_time_key, rows_to_events, type_from_name
from shian.streams.sources import read_tabular

SAMPLE_HEADER = ["样品编号", "任务类别", "抽样日期", "报告日期", "乡镇", "被抽样单位名称",
                 "食品大类", "样品名称", "检验项目", "检验结果", "计量单位", "标准值", "单项结论"]


def write_csv(path: Path, rows: list[list], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as out:
        csv.writer(out).writerows(rows)
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list]]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def events(records) -> list[dict]:
    assert [r.reason for r in records if r.obj is None] == []
    return [r.obj for r in records]


def convert(header: list, row: list, kind: str = "inspection") -> dict:
    """One row through rows_to_events; the event dict, or the reject reason as {'reason': …}."""
    [record] = rows_to_events([header, row], source="t.csv", sheet=None, default_type=kind)
    return record.obj if record.obj is not None else {"reason": record.reason}


# --- sample grouping -----------------------------------------------------------------------

def test_three_rows_of_one_sample_become_one_event_with_three_items(tmp_path):
    rows = [SAMPLE_HEADER,
            ["S-001", "监督抽检", "2026-04-03", "2026-04-10", "红河镇", "张三蔬菜店", "蔬菜", "韭菜",
             "腐霉利", "0.5", "mg/kg", "0.2", "不合格"],
            ["S-001", "", "", "", "红河镇", "", "", "", "毒死蜱", "未检出", "mg/kg", "0.02", "合格"],
            ["S-001", "", "", "", "", "", "", "", "克百威", "<0.01", "mg/kg", "不得检出", ""]]
    [record] = read_tabular(write_csv(tmp_path / "抽检.csv", rows))
    assert record.line == "2-4"
    assert record.obj == {
        "type": "sampling_result", "id": "S-001", "program": "food_sampling",
        "sampled_at": "2026-04-03", "reported_at": "2026-04-10", "township": "红河镇",
        "entity": "张三蔬菜店", "category": "蔬菜", "food": "韭菜",
        "items": [
            {"item": "腐霉利", "value": 0.5, "unit": "mg/kg", "limit": 0.2, "result": "不合格"},
            {"item": "毒死蜱", "value": "未检出", "unit": "mg/kg", "limit": 0.02, "result": "合格"},
            {"item": "克百威", "value": "<0.01", "unit": "mg/kg", "limit": 0},
        ]}
    assert [row["检验项目"] for row in json.loads(record.raw)] == ["腐霉利", "毒死蜱", "克百威"]


def test_merged_cells_rows_without_sample_id_continue_the_sample_above(tmp_path):
    path = tmp_path / "结果.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "抽检"
    sheet.append(["样品编号", "乡镇", "抽样日期", "被抽样单位名称", "食品大类", "检验项目", "检验结果"])
    sheet.append(["S-1", "红河镇", date(2026, 4, 3), "李记", "畜禽肉", "克伦特罗", "阴性"])
    sheet.append([None, None, None, None, None, "莱克多巴胺", "阳性"])
    sheet.append(["S-2", "红河镇", date(2026, 4, 3), "王记", "畜禽肉", "沙丁胺醇", "ND"])
    sheet.merge_cells("A2:A3")
    sheet.merge_cells("B2:B3")
    workbook.save(path)
    first, second = read_tabular(path)
    assert (first.line, first.obj["id"]) == ("抽检!2-3", "S-1")
    assert first.obj["items"] == [{"item": "克伦特罗", "value": "阴性"},
                                  {"item": "莱克多巴胺", "value": "阳性"}]
    assert (second.line, second.obj["items"]) == ("抽检!4", [{"item": "沙丁胺醇", "value": "ND"}])


def test_same_sample_id_in_two_townships_gives_two_samples():
    rows = [["样品编号", "乡镇", "检验项目"], ["S-1", "红河镇", "铅"], ["S-1", "新寨镇", "镉"]]
    records = rows_to_events(rows, source="x", sheet="抽检", default_type=None)
    assert [(r.line, r.obj["township"], len(r.obj["items"])) for r in records] == [
        ("抽检!2", "红河镇", 1), ("抽检!3", "新寨镇", 1)]


def test_sample_row_without_test_item_gives_an_empty_items_list():
    obj = convert(["样品编号", "乡镇", "检验结论"], ["S-9", "红河镇", "合格"], "sampling_result")
    assert obj == {"type": "sampling_result", "id": "S-9", "township": "红河镇",
                   "conclusion": "合格", "items": []}


# --- cell conversion -----------------------------------------------------------------------

@pytest.mark.parametrize("cell, value", [
    ("0.5", 0.5), (0.05, 0.05), ("3", 3), (" 1e-3 ", 0.001), ("未检出", "未检出"), ("ND", "ND"),
    ("阴性", "阴性"), ("阳性", "阳性"), ("<0.01", "<0.01"), ("", None), (None, None),
])
def test_result_cells_numbers_become_numbers_and_verdict_texts_pass_through(cell, value):
    obj = convert(["样品编号", "检验项目", "检验结果"], ["S", "铅", cell], "sampling_result")
    assert obj["items"][0].get("value") == value


@pytest.mark.parametrize("cell, limit", [
    ("不得检出", 0), ("0.02", 0.02), (0.5, 0.5), ("≤0.1", 0.1), ("", None), ("见标准", "见标准"),
])
def test_limit_cells_banned_means_zero_and_numeric_text_becomes_number(cell, limit):
    obj = convert(["样品编号", "检验项目", "标准限值"], ["S", "铅", cell], "sampling_result")
    assert obj["items"][0].get("limit") == limit


@pytest.mark.parametrize("label, program", [
    ("食品安全抽检", "food_sampling"), ("监督抽检", "food_sampling"),
    ("食用农产品监测", "agri_monitoring"), ("农产品监测", "agri_monitoring"),
    ("快检", "rapid_test"), ("rapid_test", "rapid_test"), ("专项抽查", "专项抽查"),
])
def test_program_labels_map_to_contract_values_and_unknown_ones_pass_through(label, program):
    obj = convert(["样品编号", "任务类别"], ["S", label], "sampling_result")
    assert obj["program"] == program


@pytest.mark.parametrize("cell, value", [
    ("是", True), ("否", False), ("true", True), ("FALSE", False), ("Y", True), ("n", False),
    ("1", True), ("0", False), (1, True), (0.0, False), (True, True),
])
def test_yes_no_cells_become_booleans(cell, value):
    obj = convert(["检查编号", "许可证有效"], ["J1", cell])
    assert obj["license_valid"] is value


def test_unreadable_yes_no_cell_rejects_the_row_naming_column_and_value():
    assert convert(["检查编号", "许可证有效"], ["J1", "不清楚"]) == {
        "reason": "是/否无法识别：列“许可证有效”的值“不清楚”"}


@pytest.mark.parametrize("cell, value", [(12.0, 12), (12, 12), ("12", 12), (" 12.0 ", 12)])
def test_integer_cells_become_ints(cell, value):
    obj = convert(["检查编号", "从业人员数"], ["J1", cell])
    assert obj["staff_total"] == value and type(obj["staff_total"]) is int


def test_fractional_count_rejects_the_row():
    assert convert(["检查编号", "持健康证人数"], ["J1", "12.5"]) == {
        "reason": "整数无法识别：列“持健康证人数”的值“12.5”"}


@pytest.mark.parametrize("cell, findings", [
    ("未公示许可证；冷藏柜温度过高; 无留样 ；", ["未公示许可证", "冷藏柜温度过高", "无留样"]),
    ("无", ["无"]),
])
def test_findings_split_on_chinese_and_ascii_semicolons(cell, findings):
    assert convert(["检查编号", "发现问题"], ["J1", cell])["findings"] == findings


def test_numeric_ids_lose_the_excel_float_suffix():
    obj = convert(["检查编号", "统一社会信用代码"], [2026040001.0, "  91530000MA6K0000X1 "])
    assert (obj["id"], obj["entity_id"]) == ("2026040001", "91530000MA6K0000X1")


# --- dates and periods ---------------------------------------------------------------------

@pytest.mark.parametrize("cell, iso", [
    ("2026-04-03", "2026-04-03"),
    ("2026/4/3", "2026-04-03"),
    ("2026年4月3日", "2026-04-03"),
    ("2026-04-03 08:30", "2026-04-03T08:30:00"),
    ("2026-04-03T08:30:15", "2026-04-03T08:30:15"),
    ("2026/4/3 8:05", "2026-04-03T08:05:00"),
    ("2026年4月3日 14:20:05", "2026-04-03T14:20:05"),
    ("2026年4月3日14:20", "2026-04-03T14:20:00"),
    ("2026-04-03T08:30:00+08:00", "2026-04-03T08:30:00+08:00"),
    ("2026-04-03T00:30:00Z", "2026-04-03T00:30:00Z"),
    (datetime(2026, 4, 3, 8, 30), "2026-04-03T08:30:00"),
    (datetime(2026, 4, 3), "2026-04-03"),
    (date(2026, 4, 3), "2026-04-03"),
])
def test_date_forms_become_naive_iso_text(cell, iso):
    assert convert(["检查编号", "检查日期"], ["J1", cell])["inspected_at"] == iso


@pytest.mark.parametrize("cell", ["2026年13月1日", "2026-02-30", "4月3日", "2026-04-03 25:00", "下周一"])
def test_unreadable_date_rejects_the_row_naming_column_and_value(cell):
    assert convert(["检查编号", "检查日期"], ["J1", cell]) == {
        "reason": f"日期无法识别：列“检查日期”的值“{cell}”"}


def test_rectify_by_is_written_as_a_date():
    obj = convert(["检查编号", "整改期限"], ["J1", "2026/4/30 00:00"])
    assert obj["rectify_by"] == "2026-04-30"


@pytest.mark.parametrize("cell, period", [
    ("2026-04", "2026-04"), ("2026/4", "2026-04"), ("2026年4月", "2026-04"), ("2026-4", "2026-04"),
    ("2026年10月份", "2026-10"), (datetime(2026, 4, 1), "2026-04"), (date(2026, 11, 1), "2026-11"),
])
def test_period_forms_become_year_month(cell, period):
    obj = convert(["编号", "所属月份"], ["R1", cell], "monthly_report")
    assert obj["period"] == period


@pytest.mark.parametrize("cell", ["2026-13", "四月", 2026.1])
def test_unreadable_period_rejects_the_row(cell):
    assert convert(["编号", "所属月份"], ["R1", cell], "monthly_report")["reason"].startswith(
        "月份无法识别：列“所属月份”")


def test_excel_date_cells_are_read_as_dates(tmp_path):
    path = write_xlsx(tmp_path / "w.xlsx", {"月报": [
        ["编号", "报送单位", "乡镇", "所属月份", "报送时间"],
        ["R1", "红河村", "红河镇", datetime(2026, 4, 1), datetime(2026, 4, 20, 16, 45)],
    ]})
    [record] = read_tabular(path)
    assert record.line == "月报!2"
    assert record.obj == {"type": "monthly_report", "id": "R1", "reporter": "红河村",
                          "township": "红河镇", "period": "2026-04",
                          "submitted_at": "2026-04-20T16:45:00"}


# --- event type ----------------------------------------------------------------------------

@pytest.mark.parametrize("word, kind", [
    ("抽检", "sampling_result"), ("sampling_result", "sampling_result"), ("检查", "inspection"),
    ("月报", "monthly_report"), ("事故", "incident"), ("事件", "incident"), ("处置", "disposal"),
    ("聚餐", "banquet"), ("宴席", "banquet"), ("签收", "ack"), ("ACK", "ack"),
])
def test_type_column_names_the_event_type(word, kind):
    [record] = rows_to_events([["类型", "编号"], [word, "E1"]], source="x", sheet="Sheet1",
                              default_type=None)
    assert record.obj["type"] == kind


def test_type_column_is_not_a_field_and_wins_over_the_sheet_name():
    [record] = rows_to_events([[" 类型 ", "编号", "乡镇"], ["月报", "R1", "红河镇"]],
                              source="x", sheet="检查", default_type=None)
    assert record.obj == {"type": "monthly_report", "id": "R1", "township": "红河镇"}


def test_unknown_type_value_rejects_only_that_row():
    rows = [["类型", "编号"], ["投诉", "C1"], ["检查", "J1"]]
    bad, good = rows_to_events(rows, source="x", sheet="Sheet1", default_type=None)
    assert (bad.line, bad.reason) == ("Sheet1!2", "无法识别事件类型：列“类型”的值“投诉”")
    assert good.obj == {"type": "inspection", "id": "J1"}


@pytest.mark.parametrize("name, kind", [
    ("抽检", "sampling_result"), ("4月抽检结果", "sampling_result"), ("化验室抽检结果", "sampling_result"),
    ("快检台账", "sampling_result"), ("节前检查", "inspection"), ("月报2026-04", "monthly_report"),
    ("食物中毒事故", "incident"), ("处置记录", "disposal"), ("农村集体聚餐登记", "banquet"),
    ("签收回执", "ack"), ("inspections_2026", "inspection"), ("ack", "ack"),
    ("feedback", None), ("Sheet1", None), ("", None),
])
def test_type_from_sheet_or_file_name(name, kind):
    assert type_from_name(name) == kind


def test_type_from_file_name_when_sheet_name_says_nothing(tmp_path):
    path = write_xlsx(tmp_path / "红河镇2026年4月检查.xlsx",
                      {"Sheet1": [["检查编号", "乡镇"], ["J1", "红河镇"]]})
    assert events(read_tabular(path)) == [{"type": "inspection", "id": "J1", "township": "红河镇"}]


def test_sheet_name_wins_over_file_name(tmp_path):
    path = write_xlsx(tmp_path / "抽检.xlsx", {"月报": [["编号", "乡镇"], ["R1", "红河镇"]]})
    assert events(read_tabular(path))[0]["type"] == "monthly_report"


def test_unrecognisable_sheet_gives_one_reject_naming_the_sheet(tmp_path):
    path = write_xlsx(tmp_path / "data.xlsx", {"Sheet1": [["编号", "乡镇"], ["1", "红河镇"], ["2", "红河镇"]]})
    [record] = read_tabular(path)
    assert record.obj is None and record.line == "Sheet1!1"
    assert record.reason.startswith("工作表“Sheet1”无法识别事件类型")


def test_sheet_without_known_headers_gives_one_reject(tmp_path):
    path = write_xlsx(tmp_path / "抽检.xlsx", {"填表说明": [["请按模板填写"], ["日期写成 2026-04-03"]]})
    [record] = read_tabular(path)
    assert record.line == "填表说明!1" and record.reason.startswith("工作表“填表说明”没有可识别的表头")


# --- headers -------------------------------------------------------------------------------

def test_headers_and_cells_ignore_surrounding_spaces_notes_and_unknown_columns():
    header = [" 检查编号 ", "*乡镇", "检查日期（必填）", "备注", "Outcome"]
    obj = convert(header, ["  J1 ", " 红河镇\u3000", " 2026-04-03 ", "随便写", " 合格 "])
    assert obj == {"type": "inspection", "id": "J1", "township": "红河镇",
                   "inspected_at": "2026-04-03", "outcome": "合格"}


def test_title_row_above_the_header_is_skipped_and_rows_keep_their_excel_numbers():
    rows = [["红河镇日常检查记录表"], [], ["检查编号", "乡镇"], ["J1", "红河镇"], [None, ""], ["J2", "红河镇"]]
    records = rows_to_events(rows, source="x", sheet="检查", default_type=None)
    assert [(r.line, r.obj["id"]) for r in records] == [("检查!4", "J1"), ("检查!6", "J2")]


def test_english_field_names_are_accepted_as_headers():
    for kind, mapping in HEADERS.items():
        fields = sorted(set(mapping.values()) - {"item", "value", "unit", "limit", "result"})
        assert all(mapping[name] == name for name in fields), kind
    obj = convert(["id", "township", "held_at", "registered_at", "guests", "host"],
                  ["B1", "红河镇", "2026-05-01 11:00", "2026-04-28", "120", "张三"], "banquet")
    assert obj == {"type": "banquet", "id": "B1", "township": "红河镇", "held_at": "2026-05-01T11:00:00",
                   "registered_at": "2026-04-28", "guests": 120, "host": "张三"}


@pytest.mark.parametrize("kind, header, row, expected", [
    ("incident", ["事件编号", "乡镇", "发生时间", "报告时间", "事件类型", "发病人数", "死亡人数", "事件等级"],
     ["I1", "红河镇", "2026-04-03 12:00", "2026-04-03 15:30", "食物中毒", "8", "0", "Ⅳ"],
     {"id": "I1", "township": "红河镇", "occurred_at": "2026-04-03T12:00:00",
      "reported_at": "2026-04-03T15:30:00", "kind": "食物中毒", "cases": 8, "deaths": 0, "grade": "Ⅳ"}),
    ("disposal", ["处置编号", "样品编号", "乡镇", "处置时间", "处置措施"],
     ["D1", "S-001", "红河镇", "2026/5/6", "下架；召回;立案"],
     {"id": "D1", "sample_id": "S-001", "township": "红河镇", "disposed_at": "2026-05-06",
      "measures": ["下架", "召回", "立案"]}),
    ("banquet", ["登记编号", "乡镇", "村", "举办者", "举办时间", "登记时间", "就餐人数", "厨师", "厨师健康证"],
     ["B1", "红河镇", "新寨村", "李四", "2026年5月1日 11:00", "2026年4月30日", 150.0, "王五", "否"],
     {"id": "B1", "township": "红河镇", "village": "新寨村", "host": "李四",
      "held_at": "2026-05-01T11:00:00", "registered_at": "2026-04-30", "guests": 150,
      "chef": "王五", "chef_health_cert": False}),
    ("ack", ["签收编号", "乡镇", "通知编号", "签收部门", "动作", "签收时间", "反馈"],
     ["A1", "红河镇", "0123456789abcdef", "hh-agri", "办结", "2026-04-05 09:00", "已下架"],
     {"id": "A1", "township": "红河镇", "notice_id": "0123456789abcdef", "by": "hh-agri",
      "action": "办结", "acked_at": "2026-04-05T09:00:00", "note": "已下架"}),
    ("inspection", ["检查编号", "检查日期", "乡镇", "村", "被检查单位", "许可证号", "业态", "检查类型",
                    "许可证有效", "从业人员数", "持健康证人数", "量化等级", "发现问题", "检查结果", "整改期限"],
     ["J1", "2026-04-03", "红河镇", "红河村", "红河小学食堂", "JY153", "学校食堂", "节前联合检查",
      "是", "20", "19", "B", "留样不全", "限期整改", "2026-04-30"],
     {"id": "J1", "inspected_at": "2026-04-03", "township": "红河镇", "village": "红河村",
      "entity": "红河小学食堂", "entity_id": "JY153", "entity_type": "学校食堂",
      "inspection_type": "节前联合检查", "license_valid": True, "staff_total": 20,
      "staff_with_health_cert": 19, "grade": "B", "findings": ["留样不全"], "outcome": "限期整改",
      "rectify_by": "2026-04-30"}),
])
def test_chinese_headers_map_onto_each_event_type(kind, header, row, expected):
    assert convert(header, row, kind) == {"type": kind, **expected}


# --- files: encodings, empty files, rejects, order -----------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_csv_encodings_are_detected(tmp_path, encoding):
    path = write_csv(tmp_path / "检查.csv", [["检查编号", "乡镇", "检查结果"], ["J1", "红河镇", "合格"]], encoding)
    assert events(read_tabular(path)) == [{"type": "inspection", "id": "J1", "township": "红河镇",
                                           "outcome": "合格"}]


@pytest.mark.parametrize("name, content", [("抽检.csv", b""), ("抽检.csv", b"\xef\xbb\xbf\r\n\r\n")])
def test_empty_csv_gives_one_reject(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    [record] = read_tabular(tmp_path / name)
    assert record.obj is None and record.reason == "文件为空：没有数据行"


def test_workbook_with_only_empty_sheets_gives_one_reject(tmp_path):
    [record] = read_tabular(write_xlsx(tmp_path / "抽检.xlsx", {"Sheet1": [], "Sheet2": []}))
    assert record.reason == "文件为空：没有数据行"


@pytest.mark.parametrize("name, content, reason", [
    ("抽检.xls", b"\xd0\xcf\x11\xe0", "不支持的文件格式“.xls”"),
    ("抽检.xlsx", b"not a zip", "无法打开工作簿"),
    ("抽检.csv", b"\x81\x30", "文件编码无法识别"),
])
def test_unreadable_files_give_one_reject(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    [record] = read_tabular(tmp_path / name)
    assert record.obj is None and record.reason.startswith(reason)


def test_bad_date_row_is_rejected_with_sheet_and_row_and_the_rest_is_kept(tmp_path):
    path = write_xlsx(tmp_path / "四月.xlsx", {"抽检": [
        SAMPLE_HEADER[:6],
        ["S-1", "监督抽检", "2026-04-03", "", "红河镇", "甲店"],
        ["S-2", "监督抽检", "2026年13月1日", "", "红河镇", "乙店"],
        ["S-3", "监督抽检", "2026-04-02", "", "红河镇", "丙店"],
    ]})
    records = read_tabular(path)
    assert [r.obj["id"] for r in records if r.obj] == ["S-3", "S-1"]
    reject = records[-1]
    assert (reject.source, reject.line, reject.obj) == (str(path), "抽检!3", None)
    assert reject.reason == "日期无法识别：列“抽样日期”的值“2026年13月1日”"
    assert json.loads(reject.raw)["被抽样单位名称"] == "乙店"


def test_file_events_come_out_in_event_time_order_across_sheets_rejects_last(tmp_path):
    path = write_xlsx(tmp_path / "汇总.xlsx", {
        "检查": [["检查编号", "检查日期"], ["J-late", datetime(2026, 4, 9, 10)], ["J-bad", "昨天"],
                 ["J-none", None], ["J-early", "2026-04-01"]],
        "抽检": [["样品编号", "抽样日期", "报告日期"], ["S-rep", "2026-03-20", "2026-04-05"],
                 ["S-samp", "2026-04-03", None]],
        "签收": [["签收编号", "签收时间"], ["A-tie", "2026-04-09 10:00"]],
    })
    assert [(r.obj or {}).get("id") or r.line for r in read_tabular(path)] == [
        "J-early", "S-samp", "S-rep", "J-late", "A-tie", "J-none", "检查!3"]


@pytest.mark.parametrize("obj, key", [
    ({"type": "sampling_result", "sampled_at": "2026-04-01", "reported_at": "2026-04-05T08:00:00"},
     "2026-04-05T08:00:00"),
    ({"type": "sampling_result", "sampled_at": "2026-04-01"}, "2026-04-01T00:00:00"),
    ({"type": "inspection", "inspected_at": "2026-04-02"}, "2026-04-02T00:00:00"),
    ({"type": "monthly_report", "submitted_at": "2026-04-20T09:00:00"}, "2026-04-20T09:00:00"),
    ({"type": "incident", "occurred_at": "2026-04-01", "reported_at": "2026-04-02"}, "2026-04-02T00:00:00"),
    ({"type": "disposal", "disposed_at": "2026-04-03"}, "2026-04-03T00:00:00"),
    ({"type": "banquet", "held_at": "2026-05-01", "registered_at": "2026-04-28"}, "2026-04-28T00:00:00"),
    ({"type": "ack", "acked_at": "2026-04-04T10:00:00"}, "2026-04-04T10:00:00"),
    ({"type": "inspection"}, None),
    ({"type": "complaint", "at": "2026-04-01"}, None),
])
def test_event_time_key_per_type(obj, key):
    assert event_time_key(obj) == key


def test_type_column_sheet_mixes_types_and_events_are_json_ready(tmp_path):
    path = write_csv(tmp_path / "events.csv", [
        ["类型", "编号", "乡镇", "抽样日期", "检验项目", "检查日期", "报送单位", "所属月份", "报送时间"],
        ["抽检", "S1", "红河镇", "2026-04-01", "铅", "", "", "", ""],
        ["检查", "J1", "红河镇", "", "", "2026-04-02", "", "", ""],
        ["月报", "R1", "红河镇", "", "", "", "红河村", "2026年3月", "2026-03-24 17:00"],
        ["", "X1", "红河镇", "", "", "", "", "", ""],
    ], "gb18030")
    records = read_tabular(path)
    assert [(r.line, (r.obj or {}).get("type")) for r in records] == [
        ("4", "monthly_report"), ("2", "sampling_result"), ("3", "inspection"), ("5", None)]
    assert records[-1].reason.startswith("无法识别事件类型")
    assert all(json.loads(json.dumps(r.obj)) == r.obj for r in records if r.obj)
