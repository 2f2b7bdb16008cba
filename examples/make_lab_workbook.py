"""Regenerate examples/化验室抽检结果.xlsx, the demo lab workbook.

The workbook is what 县检验检测中心 sends the county office at the end of April 2026, with the
county's register of food businesses added to it as a second sheet:

- ``抽检结果``: a title row, the Chinese headers of the contract (§5) and one row per 检验项目;
  the sample-level cells (样品编号 … 样品名称, 检验结论) are merged over the rows of one sample,
  so they are empty on its continuation rows, as in the lab's own template. Dates are real
  Excel date cells; 未检出 / 不得检出 are text, as labs write them. 32 samples: 22 of 红河镇's
  食用农产品监测 (2 不合格: 韭菜 腐霉利, 芹菜 毒死蜱, so the April pass rate is 20/22 = 90.9 % <
  97 %), 6 of 板桥镇's 食品安全抽检 and 4 of 出山镇's monitoring, all 合格.
- ``台账``: the register (食品生产经营主体风险分级台账) as the county office keeps it at the end
  of April: one row per business with its current grade, written ``A级`` … ``D级``, and its 评定日期
  (an Excel date cell), 状态 在营 or 注销. It repeats the register rows at the top of
  examples/events.jsonl with the same content (so they are duplicates, dropped) and adds the
  rest of the county's businesses, among them those the April events inspect or sample. The
  workbook is read after events.jsonl, so these rows come after the 1 April check: they are on
  the 检查频次 page from then on, and checked from 1 July.

Everything is fixed in this file (no randomness) and the zip entries carry a fixed timestamp, so
running it again gives the same bytes:

    python examples/make_lab_workbook.py            # writes examples/化验室抽检结果.xlsx
    python examples/make_lab_workbook.py OUT.xlsx
"""
from __future__ import annotations

import io
import re
import sys
import zipfile
from datetime import date, datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

OUT = Path(__file__).with_name("化验室抽检结果.xlsx")
SHEET = "抽检结果"
TITLE = "西平县检验检测中心 2026年4月 食用农产品监测及食品安全抽检检验结果汇总表"
HEADERS = ["样品编号", "任务类别", "抽样日期", "检验报告日期", "乡镇", "村", "被抽样单位名称",
           "统一社会信用代码", "食品大类", "样品名称", "检验项目", "检验结果", "计量单位", "标准限值",
           "单项判定", "检验结论"]
SAMPLE_COLUMNS = 10   # 样品编号 … 样品名称: one value per sample, merged over its rows
ITEM_COLUMNS = 5      # 检验项目 … 单项判定: one row per item
FIXED_TIME = (2026, 4, 30, 17, 0, 0)
ND = "未检出"
NOT_ALLOWED = "不得检出"

# Item lists per food: (检验项目, 计量单位, 标准限值); limits as in GB 2763 / GB 31650 / GB 2762.
VEG = [("克百威", "mg/kg", 0.02), ("氧乐果", "mg/kg", 0.02), ("甲拌磷", "mg/kg", 0.01)]
ITEMS = {
    "韭菜": [("腐霉利", "mg/kg", 0.2), ("毒死蜱", "mg/kg", 0.02), *VEG],
    "芹菜": [("毒死蜱", "mg/kg", 0.05), *VEG],
    "菠菜": [("阿维菌素", "mg/kg", 0.05), *VEG],
    "豇豆": [("灭蝇胺", "mg/kg", 0.5), ("水胺硫磷", "mg/kg", 0.05), *VEG],
    "黄瓜": [("腐霉利", "mg/kg", 2), *VEG],
    "番茄": [("氯氟氰菊酯", "mg/kg", 0.2), *VEG],
    "辣椒": [("甲胺磷", "mg/kg", 0.05), *VEG],
    "普通白菜": [("毒死蜱", "mg/kg", 0.1), *VEG],
    "苹果": [("敌敌畏", "mg/kg", 0.1), ("克百威", "mg/kg", 0.02), ("氧乐果", "mg/kg", 0.02)],
    "梨": [("敌敌畏", "mg/kg", 0.2), ("克百威", "mg/kg", 0.02), ("氧乐果", "mg/kg", 0.02)],
    "猪肉": [("克伦特罗", "μg/kg", NOT_ALLOWED), ("莱克多巴胺", "μg/kg", NOT_ALLOWED),
           ("沙丁胺醇", "μg/kg", NOT_ALLOWED), ("恩诺沙星", "μg/kg", 100)],
    "牛肉": [("克伦特罗", "μg/kg", NOT_ALLOWED), ("莱克多巴胺", "μg/kg", NOT_ALLOWED),
           ("沙丁胺醇", "μg/kg", NOT_ALLOWED)],
    "鸡肉": [("恩诺沙星", "μg/kg", 100), ("氧氟沙星", "μg/kg", NOT_ALLOWED), ("氯霉素", "μg/kg", NOT_ALLOWED)],
    "鸡蛋": [("恩诺沙星", "μg/kg", NOT_ALLOWED), ("氟苯尼考", "μg/kg", NOT_ALLOWED),
           ("甲硝唑", "μg/kg", NOT_ALLOWED)],
    "鲤鱼": [("孔雀石绿", "μg/kg", NOT_ALLOWED), ("氯霉素", "μg/kg", NOT_ALLOWED),
           ("呋喃唑酮代谢物", "μg/kg", NOT_ALLOWED), ("恩诺沙星", "μg/kg", 100)],
    "草鱼": [("孔雀石绿", "μg/kg", NOT_ALLOWED), ("氯霉素", "μg/kg", NOT_ALLOWED),
           ("呋喃唑酮代谢物", "μg/kg", NOT_ALLOWED), ("恩诺沙星", "μg/kg", 100)],
    "大米": [("镉(以Cd计)", "mg/kg", 0.2), ("无机砷(以As计)", "mg/kg", 0.35)],
    "小麦粉": [("脱氧雪腐镰刀菌烯醇", "μg/kg", 1000), ("玉米赤霉烯酮", "μg/kg", 60)],
    "花生油": [("黄曲霉毒素B1", "μg/kg", 20), ("苯并[a]芘", "μg/kg", 10), ("酸价(KOH)", "mg/g", 3)],
    "白酒": [("甲醇", "g/L", 0.6), ("氰化物(以HCN计)", "mg/L", 8.0)],
    "豆腐": [("苯甲酸及其钠盐", "g/kg", NOT_ALLOWED), ("脱氢乙酸及其钠盐", "g/kg", NOT_ALLOWED)],
    "馒头": [("糖精钠", "g/kg", NOT_ALLOWED), ("甜蜜素", "g/kg", NOT_ALLOWED), ("苯甲酸及其钠盐", "g/kg", NOT_ALLOWED)],
}
CATEGORY = {
    "韭菜": "蔬菜", "芹菜": "蔬菜", "菠菜": "蔬菜", "豇豆": "蔬菜", "黄瓜": "蔬菜", "番茄": "蔬菜", "辣椒": "蔬菜",
    "普通白菜": "蔬菜", "苹果": "水果", "梨": "水果", "猪肉": "畜禽肉", "牛肉": "畜禽肉", "鸡肉": "畜禽肉",
    "鸡蛋": "蛋类", "鲤鱼": "水产品", "草鱼": "水产品", "大米": "粮食", "小麦粉": "粮食", "馒头": "粮食",
    "花生油": "食用油", "白酒": "酒类", "豆腐": "豆制品",
}

# Entities: name -> (村, 统一社会信用代码 or None for market stalls without a licence of their own).
ENTITIES = {
    "农贸市场周桂英蔬菜摊": ("红河村", None),
    "农贸市场杨秀珍蔬菜摊": ("红河村", None),
    "农贸市场李广福鲜肉摊": ("红河村", None),
    "农贸市场王德明水产摊": ("红河村", None),
    "农贸市场张丽娟禽蛋摊": ("红河村", None),
    "佳和超市": ("红河村", "92411721MA46PB3E9W"),
    "绿源蔬菜种植专业合作社": ("坝心村", "93411721MA44H7XC2K"),
    "新寨村果蔬种植基地": ("新寨村", "93411721MA45J1RT8M"),
    "定点生猪屠宰场": ("新寨村", "91411721MA40TZ5S3N"),
    "惠民购物广场": ("板桥村", "92411721MA47R2KD3L"),
    "老街食品批发部": ("板桥村", "92411721MA47TG1Y4H"),
    "石桥村豆腐坊": ("石桥村", "92411721MA48A2PQ5C"),
    "东庄村馒头加工坊": ("东庄村", "92411721MA48C6LW1E"),
    "王建军蔬菜批发部": ("桂李村", "92411721MA44KQ9T1F"),
    "农贸市场赵秀兰蔬菜摊": ("出山村", None),
    "杨湾村家庭农场": ("杨湾村", "92411721MA43VN4D7G"),
}

# Non-detects are 未检出; a detected value is given per (sample number, item).
DETECTED = {
    ("XP-NJ-2026-0402", "腐霉利"): 0.54,      # 韭菜：腐霉利超标 → 不合格
    ("XP-NJ-2026-0402", "毒死蜱"): 0.006,
    ("XP-NJ-2026-0405", "毒死蜱"): 0.16,      # 芹菜：毒死蜱超标 → 不合格
    ("XP-NJ-2026-0403", "腐霉利"): 0.31,
    ("XP-NJ-2026-0407", "灭蝇胺"): 0.12,
    ("XP-NJ-2026-0409", "氯氟氰菊酯"): 0.018,
    ("XP-NJ-2026-0415", "恩诺沙星"): 8.6,
    ("XP-NJ-2026-0417", "恩诺沙星"): 12.5,
    ("XP-NJ-2026-0420", "敌敌畏"): 0.013,
    ("XP-JC-2026-0431", "镉(以Cd计)"): 0.032,
    ("XP-JC-2026-0431", "无机砷(以As计)"): 0.08,
    ("XP-JC-2026-0432", "脱氧雪腐镰刀菌烯醇"): 156,
    ("XP-JC-2026-0433", "黄曲霉毒素B1"): 2.1,
    ("XP-JC-2026-0433", "苯并[a]芘"): 0.8,
    ("XP-JC-2026-0433", "酸价(KOH)"): 0.42,
    ("XP-JC-2026-0434", "甲醇"): 0.12,
    ("XP-JC-2026-0434", "氰化物(以HCN计)"): 0.6,
    ("XP-NJ-2026-0442", "腐霉利"): 0.08,
}

AGRI, FOOD = "食用农产品监测", "食品安全抽检"
# (样品编号, 任务类别, 抽样日期, 检验报告日期, 乡镇, 被抽样单位名称, 样品名称)
SAMPLES = [
    ("XP-NJ-2026-0401", AGRI, date(2026, 4, 13), date(2026, 4, 20), "红河镇", "农贸市场周桂英蔬菜摊", "菠菜"),
    ("XP-NJ-2026-0402", AGRI, date(2026, 4, 13), date(2026, 4, 20), "红河镇", "农贸市场周桂英蔬菜摊", "韭菜"),
    ("XP-NJ-2026-0403", AGRI, date(2026, 4, 13), date(2026, 4, 20), "红河镇", "农贸市场杨秀珍蔬菜摊", "黄瓜"),
    ("XP-NJ-2026-0404", AGRI, date(2026, 4, 13), date(2026, 4, 21), "红河镇", "农贸市场杨秀珍蔬菜摊", "辣椒"),
    ("XP-NJ-2026-0405", AGRI, date(2026, 4, 14), date(2026, 4, 21), "红河镇", "绿源蔬菜种植专业合作社", "芹菜"),
    ("XP-NJ-2026-0406", AGRI, date(2026, 4, 14), date(2026, 4, 21), "红河镇", "绿源蔬菜种植专业合作社", "普通白菜"),
    ("XP-NJ-2026-0407", AGRI, date(2026, 4, 14), date(2026, 4, 22), "红河镇", "新寨村果蔬种植基地", "豇豆"),
    ("XP-NJ-2026-0408", AGRI, date(2026, 4, 14), date(2026, 4, 22), "红河镇", "新寨村果蔬种植基地", "黄瓜"),
    ("XP-NJ-2026-0409", AGRI, date(2026, 4, 14), date(2026, 4, 22), "红河镇", "佳和超市", "番茄"),
    ("XP-NJ-2026-0410", AGRI, date(2026, 4, 14), date(2026, 4, 22), "红河镇", "佳和超市", "芹菜"),
    ("XP-NJ-2026-0411", AGRI, date(2026, 4, 15), date(2026, 4, 23), "红河镇", "佳和超市", "韭菜"),
    ("XP-NJ-2026-0412", AGRI, date(2026, 4, 15), date(2026, 4, 23), "红河镇", "农贸市场李广福鲜肉摊", "猪肉"),
    ("XP-NJ-2026-0413", AGRI, date(2026, 4, 15), date(2026, 4, 23), "红河镇", "定点生猪屠宰场", "猪肉"),
    ("XP-NJ-2026-0414", AGRI, date(2026, 4, 15), date(2026, 4, 24), "红河镇", "佳和超市", "牛肉"),
    ("XP-NJ-2026-0415", AGRI, date(2026, 4, 15), date(2026, 4, 24), "红河镇", "佳和超市", "鸡肉"),
    ("XP-NJ-2026-0416", AGRI, date(2026, 4, 15), date(2026, 4, 24), "红河镇", "农贸市场张丽娟禽蛋摊", "鸡蛋"),
    ("XP-NJ-2026-0417", AGRI, date(2026, 4, 16), date(2026, 4, 24), "红河镇", "农贸市场张丽娟禽蛋摊", "鸡肉"),
    ("XP-NJ-2026-0418", AGRI, date(2026, 4, 16), date(2026, 4, 27), "红河镇", "农贸市场王德明水产摊", "鲤鱼"),
    ("XP-NJ-2026-0419", AGRI, date(2026, 4, 16), date(2026, 4, 27), "红河镇", "农贸市场王德明水产摊", "草鱼"),
    ("XP-NJ-2026-0420", AGRI, date(2026, 4, 16), date(2026, 4, 27), "红河镇", "佳和超市", "苹果"),
    ("XP-NJ-2026-0421", AGRI, date(2026, 4, 16), date(2026, 4, 27), "红河镇", "新寨村果蔬种植基地", "梨"),
    ("XP-NJ-2026-0422", AGRI, date(2026, 4, 16), date(2026, 4, 27), "红河镇", "绿源蔬菜种植专业合作社", "菠菜"),
    ("XP-JC-2026-0431", FOOD, date(2026, 4, 8), date(2026, 4, 17), "板桥镇", "惠民购物广场", "大米"),
    ("XP-JC-2026-0432", FOOD, date(2026, 4, 8), date(2026, 4, 17), "板桥镇", "惠民购物广场", "小麦粉"),
    ("XP-JC-2026-0433", FOOD, date(2026, 4, 8), date(2026, 4, 20), "板桥镇", "老街食品批发部", "花生油"),
    ("XP-JC-2026-0434", FOOD, date(2026, 4, 8), date(2026, 4, 20), "板桥镇", "老街食品批发部", "白酒"),
    ("XP-JC-2026-0435", FOOD, date(2026, 4, 9), date(2026, 4, 16), "板桥镇", "石桥村豆腐坊", "豆腐"),
    ("XP-JC-2026-0436", FOOD, date(2026, 4, 9), date(2026, 4, 16), "板桥镇", "东庄村馒头加工坊", "馒头"),
    ("XP-NJ-2026-0441", AGRI, date(2026, 4, 20), date(2026, 4, 28), "出山镇", "农贸市场赵秀兰蔬菜摊", "芹菜"),
    ("XP-NJ-2026-0442", AGRI, date(2026, 4, 20), date(2026, 4, 28), "出山镇", "王建军蔬菜批发部", "黄瓜"),
    ("XP-NJ-2026-0443", AGRI, date(2026, 4, 20), date(2026, 4, 28), "出山镇", "杨湾村家庭农场", "番茄"),
    ("XP-NJ-2026-0444", AGRI, date(2026, 4, 20), date(2026, 4, 28), "出山镇", "杨湾村家庭农场", "苹果"),
]


REGISTER_SHEET = "台账"
REGISTER_TITLE = "西平县食品生产经营主体风险分级台账（截至2026年4月30日）"
REGISTER_HEADERS = ["编号", "乡镇", "单位名称", "统一社会信用代码", "业态", "风险等级", "评定日期", "状态"]
OPEN, CLOSED = "在营", "注销"
# (编号, 乡镇, 单位名称, 统一社会信用代码 or None, 业态, 风险等级, 评定日期, 状态). The first six are
# the current versions of the register rows at the top of events.jsonl, with the same content.
REGISTER = [
    ("HH-TZ-0001", "红河镇", "中心学校食堂", "12411721MB0H31207X", "学校食堂", "D", date(2019, 3, 1), OPEN),
    ("HH-TZ-0014", "红河镇", "兴旺饭店", "92411721MA45D8JL6R", "餐饮服务", "C", date(2026, 3, 10), OPEN),
    ("BQ-TZ-0003", "板桥镇", "惠民购物广场", "92411721MA47R2KD3L", "食品销售", "C", date(2020, 6, 15), OPEN),
    ("BQ-TZ-0021", "板桥镇", "东庄村李记早餐店", None, "餐饮服务", "B", date(2026, 3, 25), CLOSED),
    ("CS-TZ-0008", "出山镇", "杨湾村幼儿园食堂", "52411721MJ7A1234X9", "幼儿园食堂", "D", date(2017, 9, 1), OPEN),
    ("QZ-TZ-0030", "权寨镇", "家家乐超市", "92411721MA46UX8C0B", "食品销售", "B", date(2026, 2, 15), OPEN),
    # 红河镇
    ("HH-TZ-0002", "红河镇", "佳和超市", "92411721MA46PB3E9W", "食品销售", "B", date(2020, 4, 20), OPEN),
    ("HH-TZ-0003", "红河镇", "定点生猪屠宰场", "91411721MA40TZ5S3N", "屠宰场", "D", date(2016, 8, 1), OPEN),
    ("HH-TZ-0004", "红河镇", "红河镇卫生院职工食堂", "12411721MB0H3A16XT", "集体食堂", "C", date(2018, 5, 10), OPEN),
    ("HH-TZ-0005", "红河镇", "红河村幸福幼儿园食堂", "52411721MJ7C2231X4", "幼儿园食堂", "D", date(2021, 9, 1), OPEN),
    ("HH-TZ-0006", "红河镇", "新寨村便民超市", "92411721MA47N3FD2Q", "食品销售", "A", date(2022, 3, 15), OPEN),
    ("HH-TZ-0007", "红河镇", "坝心村老杨烩面馆", "92411721MA48K5GP6R", "餐饮服务", "A", date(2021, 11, 2), OPEN),
    ("HH-TZ-0008", "红河镇", "红河镇粮油批发部", "92411721MA45C2HN1J", "食品销售", "A", date(2019, 6, 18), OPEN),
    ("HH-TZ-0009", "红河镇", "红河酒家", "92411721MA44R7JM3K", "餐饮服务", "B", date(2020, 1, 8), OPEN),
    ("HH-TZ-0010", "红河镇", "新寨村鲜奶吧", "92411721MA49D1KL8P", "食品销售", "B", date(2023, 5, 26), OPEN),
    ("HH-TZ-0011", "红河镇", "红河镇糕点加工坊", "92411721MA48F6LJ5N", "小作坊", "C", date(2022, 7, 12), OPEN),
    ("HH-TZ-0012", "红河镇", "坝心村张记豆腐坊", None, "小作坊", "B", date(2026, 4, 23), OPEN),
    ("HH-TZ-0013", "红河镇", "红河村好又多便利店", "92411721MA4AB2MM7H", "食品销售", "A", date(2024, 10, 9), OPEN),
    ("HH-TZ-0015", "红河镇", "红河镇敬老院食堂", "52411721MJ7D8812X1", "集体食堂", "C", date(2019, 12, 1), OPEN),
    # 板桥镇
    ("BQ-TZ-0001", "板桥镇", "老街食品批发部", "92411721MA47TG1Y4H", "食品销售", "B", date(2018, 3, 2), OPEN),
    ("BQ-TZ-0002", "板桥镇", "刘记鲜肉店", "92411721MA47M6WE2U", "食品销售", "B", date(2020, 11, 16), OPEN),
    ("BQ-TZ-0004", "板桥镇", "石桥村豆腐坊", "92411721MA48A2PQ5C", "小作坊", "B", date(2021, 4, 6), OPEN),
    ("BQ-TZ-0005", "板桥镇", "东庄村馒头加工坊", "92411721MA48C6LW1E", "小作坊", "B", date(2021, 4, 6), OPEN),
    ("BQ-TZ-0006", "板桥镇", "东庄村阳光幼儿园食堂", "52411721MJ7B5678X2", "幼儿园食堂", "D", date(2019, 9, 1), OPEN),
    ("BQ-TZ-0007", "板桥镇", "板桥镇中心学校食堂", "12411721MB0H47210L", "学校食堂", "D", date(2017, 8, 25), OPEN),
    ("BQ-TZ-0008", "板桥镇", "板桥村兴隆饭庄", "92411721MA45T8NP2W", "餐饮服务", "A", date(2020, 6, 30), OPEN),
    ("BQ-TZ-0009", "板桥镇", "石桥村百姓超市", "92411721MA46E4QR9V", "食品销售", "A", date(2022, 2, 14), OPEN),
    ("BQ-TZ-0010", "板桥镇", "板桥镇卤肉店", "92411721MA47W3RS4T", "食品销售", "C", date(2023, 3, 3), OPEN),
    ("BQ-TZ-0011", "板桥镇", "东庄村小卖部", None, "食品销售", "A", date(2019, 5, 20), OPEN),
    # 出山镇
    ("CS-TZ-0001", "出山镇", "王建军蔬菜批发部", "92411721MA44KQ9T1F", "食品销售", "A", date(2018, 7, 9), OPEN),
    ("CS-TZ-0002", "出山镇", "好再来饭店", "92411721MA43QW5N8E", "餐饮服务", "B", date(2019, 10, 21), OPEN),
    ("CS-TZ-0003", "出山镇", "农贸市场", "91411721MA40LK2J6P", "集贸市场", "C", date(2015, 5, 1), OPEN),
    ("CS-TZ-0004", "出山镇", "桂李村便民超市", None, "食品销售", "A", date(2021, 8, 17), OPEN),
    ("CS-TZ-0005", "出山镇", "出山镇中心学校食堂", "12411721MB0H50321M", "学校食堂", "D", date(2016, 9, 1), OPEN),
    ("CS-TZ-0006", "出山镇", "杨湾村冷饮店", "92411721MA4AC8DE5G", "食品销售", "A", date(2024, 5, 1), OPEN),
    ("CS-TZ-0007", "出山镇", "出山镇老字号熟食店", "92411721MA45P1UV3Z", "食品销售", "C", date(2020, 12, 12), OPEN),
    ("CS-TZ-0009", "出山镇", "桂李村农家乐", "92411721MA49H7WX6B", "餐饮服务", "B", date(2023, 6, 6), OPEN),
    ("CS-TZ-0010", "出山镇", "出山村老王面馆", None, "餐饮服务", "A", date(2026, 1, 20), CLOSED),
    # 盆尧镇
    ("PY-TZ-0001", "盆尧镇", "惠万家超市", "92411721MA45YH2P7Q", "食品销售", "B", date(2019, 4, 12), OPEN),
    ("PY-TZ-0002", "盆尧镇", "中心学校食堂", "12411721MB0H42318K", "学校食堂", "D", date(2017, 3, 1), OPEN),
    ("PY-TZ-0003", "盆尧镇", "生猪定点屠宰场", "91411721MA40UC7H2D", "屠宰场", "D", date(2016, 11, 8), OPEN),
    ("PY-TZ-0004", "盆尧镇", "马庄村老马烩面馆", None, "餐饮服务", "A", date(2020, 7, 7), OPEN),
    ("PY-TZ-0005", "盆尧镇", "于庄村好运来饭店", None, "餐饮服务", "A", date(2021, 10, 15), OPEN),
    ("PY-TZ-0006", "盆尧镇", "盆尧村粮油店", "92411721MA46K2YZ1C", "食品销售", "A", date(2022, 1, 10), OPEN),
    ("PY-TZ-0007", "盆尧镇", "盆尧镇卫生院食堂", "12411721MB0H4B27XD", "集体食堂", "C", date(2018, 2, 26), OPEN),
    # 权寨镇
    ("QZ-TZ-0001", "权寨镇", "中心学校食堂", "12411721MB0H55102C", "学校食堂", "D", date(2016, 9, 1), OPEN),
    ("QZ-TZ-0002", "权寨镇", "福旺粮油店", None, "食品销售", "A", date(2019, 8, 3), OPEN),
    ("QZ-TZ-0003", "权寨镇", "秦庄村饺子馆", "92411721MA47Z5AB8E", "餐饮服务", "A", date(2022, 11, 11), OPEN),
    ("QZ-TZ-0004", "权寨镇", "权寨村酱菜坊", "92411721MA48Q3BC2F", "小作坊", "C", date(2021, 5, 19), OPEN),
    ("QZ-TZ-0005", "权寨镇", "郭庄村百货部", None, "食品销售", "A", date(2020, 9, 9), OPEN),
]


def item_rows(sample_id: str, food: str) -> list[list]:
    """One row per 检验项目: 检验项目, 检验结果, 计量单位, 标准限值, 单项判定."""
    rows = []
    for item, unit, limit in ITEMS[food]:
        value = DETECTED.get((sample_id, item), ND)
        bound = 0 if limit == NOT_ALLOWED else limit
        failed = value != ND and value > bound
        rows.append([item, value, unit, limit, "不合格" if failed else "合格"])
    return rows


def build() -> Workbook:
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    width = len(HEADERS)
    thin = Side(style="thin", color="808080")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    centre = Alignment(horizontal="center", vertical="center", wrap_text=True)

    ws.append([TITLE])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    ws.cell(1, 1).font = Font(bold=True, size=14)
    ws.cell(1, 1).alignment = Alignment(horizontal="center")
    ws.row_dimensions[1].height = 28
    ws.append(HEADERS)
    for col in range(1, width + 1):
        cell = ws.cell(2, col)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = centre
        cell.border = border

    for sample_id, program, sampled, reported, township, entity, food in SAMPLES:
        village, credit_code = ENTITIES[entity]
        items = item_rows(sample_id, food)
        verdict = "不合格" if any(row[4] == "不合格" for row in items) else "合格"
        first = ws.max_row + 1
        head = [sample_id, program, sampled, reported, township, village, entity, credit_code,
                CATEGORY[food], food]
        for i, item in enumerate(items):
            ws.append((head if i == 0 else [None] * SAMPLE_COLUMNS) + item + [verdict if i == 0 else None])
        last = ws.max_row
        for row in range(first, last + 1):
            for col in range(1, width + 1):
                cell = ws.cell(row, col)
                cell.border = border
                cell.alignment = centre
                if col in (3, 4):
                    cell.number_format = "yyyy-mm-dd"
            if ws.cell(row, 15).value == "不合格":
                ws.cell(row, 12).font = ws.cell(row, 15).font = Font(bold=True, color="C00000")
        if verdict == "不合格":
            ws.cell(first, width).font = Font(bold=True, color="C00000")
        if last > first:  # the lab's template merges the sample-level cells over the item rows
            for col in [*range(1, SAMPLE_COLUMNS + 1), width]:
                ws.merge_cells(start_row=first, start_column=col, end_row=last, end_column=col)

    widths = [17, 15, 12, 13, 8, 8, 30, 21, 9, 10, 20, 10, 9, 10, 9, 9]
    for col, w in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(col)].width = w
    ws.freeze_panes = "A3"
    register_sheet(wb.create_sheet(REGISTER_SHEET), border, centre)
    stamp = datetime(*FIXED_TIME)
    wb.properties.creator = "西平县检验检测中心"
    wb.properties.title = TITLE
    wb.properties.created = stamp
    return wb


def register_sheet(ws, border: Border, centre: Alignment) -> None:
    """The 台账 sheet: a title row, the headers, one row per business (grade written A级 … D级)."""
    width = len(REGISTER_HEADERS)
    ws.append([REGISTER_TITLE])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    ws.cell(1, 1).font = Font(bold=True, size=14)
    ws.cell(1, 1).alignment = Alignment(horizontal="center")
    ws.append(REGISTER_HEADERS)
    for col in range(1, width + 1):
        cell = ws.cell(2, col)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = centre
        cell.border = border
    for row_id, township, name, code, kind, risk, graded, status in REGISTER:
        ws.append([row_id, township, name, code, kind, f"{risk}级", graded, status])
        row = ws.max_row
        for col in range(1, width + 1):
            ws.cell(row, col).border = border
        ws.cell(row, 7).number_format = "yyyy-mm-dd"
        if status == CLOSED:
            ws.cell(row, 8).font = Font(color="808080")
    for col, w in enumerate([13, 8, 24, 21, 11, 9, 12, 7], 1):
        ws.column_dimensions[get_column_letter(col)].width = w
    ws.freeze_panes = "A3"


def save(wb: Workbook, path: Path) -> None:
    """Save with fixed zip timestamps and document dates, so the bytes do not depend on when."""
    buffer = io.BytesIO()
    wb.save(buffer)
    stamp = datetime(*FIXED_TIME).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + stamp.encode(), data)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=FIXED_TIME), data,
                         compress_type=zipfile.ZIP_DEFLATED)
    path.write_bytes(out.getvalue())


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else OUT
    save(build(), path)
    print(f"已生成 {path}：{len(SAMPLES)} 个样品，台账 {len(REGISTER)} 户")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
