"""``shian report``: the monthly XLSX + HTML on the known-answer county."""
from __future__ import annotations

import re

import openpyxl
import pytest

import known_county as kc
from office_support import county, make_service  # noqa: F401  (a fixture)
from shian.office.report import SHEETS, report_main, safe, write_report


@pytest.fixture
def filled(make_service):
    svc = make_service(now=lambda: kc.NOW)
    kc.fill(svc)
    return svc


@pytest.fixture
def written(filled, tmp_path):
    return write_report(filled.config, filled, filled.outbox.notices(), kc.MONTH,
                        tmp_path / "月报", now=kc.NOW)


def rows_of(ws):
    """Header → list of row dicts, up to the first empty row (a note may follow it)."""
    values = list(ws.iter_rows(values_only=True))
    head, out = values[0], []
    for row in values[1:]:
        if all(v is None for v in row):
            break
        out.append(dict(zip(head, row)))
    return out


def test_safe_prefixes_formula_leads():
    for lead in ("=", "+", "-", "@", "\t", "\r"):
        assert safe(lead + "x") == "'" + lead + "x"
    assert safe("红河镇") == "红河镇" and safe(-1) == -1 and safe(None) is None


def test_workbook_sheets_headers_and_values(written):
    xlsx, _ = written
    assert xlsx.suffix == ".xlsx" and "2026年4月" in xlsx.name
    wb = openpyxl.load_workbook(xlsx)
    assert tuple(wb.sheetnames) == SHEETS
    for name in ("概况", "抽检合格率", "月报报送", "持证率", "节前联合检查", "不合格处置", "通知汇总"):
        assert name in wb.sheetnames

    rates = rows_of(wb["抽检合格率"])
    assert list(rates[0]) == ["乡镇", "任务类别", "月份", "合格批次", "抽检批次", "合格率", "目标", "达标情况"]
    hh = next(r for r in rates if r["乡镇"] == "红河镇" and r["任务类别"] == "食品安全抽检")
    assert (hh["合格批次"], hh["抽检批次"]) == kc.EXPECTED_HONGHE_FOOD
    assert f"{hh['合格率']:.1%}" == kc.EXPECTED_HONGHE_FOOD_RATE and hh["目标"] == 0.98 and hh["达标情况"] == "未达标"
    bq = next(r for r in rates if r["乡镇"] == "板桥镇" and r["任务类别"] == "食用农产品监测")
    assert f"{bq['合格率']:.1%}" == kc.EXPECTED_BANQIAO_AGRI_RATE and bq["达标情况"] == "未达标"
    ws = wb["抽检合格率"]
    assert ws.cell(row=2, column=6).number_format == "0.0%"

    reports = {(r["乡镇"], r["报送单位"]): r for r in rows_of(wb["月报报送"])}
    names = {"late": "逾期报送", "missing": "逾期未报", "on_time": "按时报送"}
    for key, status in kc.EXPECTED_REPORTS.items():
        assert reports[key]["状态"] == names[status], key
        assert reports[key]["达标情况"] == ("达标" if status == "on_time" else "未达标")
    assert reports[("红河镇", "红河村")]["报送时间"] == "2026-04-27 10:00"

    health = {r["乡镇"]: r for r in rows_of(wb["持证率"])}
    for tw, (certified, staff) in kc.EXPECTED_HEALTH.items():
        assert (health[tw]["持健康证人数"], health[tw]["从业人员数"]) == (certified, staff)
        assert health[tw]["达标情况"] == ("未达标" if kc.EXPECTED_HEALTH_BELOW[tw] else "达标")

    camps = {(r["乡镇"], r["节日"]): r for r in rows_of(wb["节前联合检查"])}
    for key, done in kc.EXPECTED_CAMPAIGNS.items():
        assert camps[key]["状态"] == ("已开展" if done else "未开展")
        assert camps[key]["达标情况"] == ("达标" if done else "未达标")
    assert {h for _, h in camps} == {"劳动节"}

    disp = {r["样品编号"]: r for r in rows_of(wb["不合格处置"])}
    assert disp[kc.HH_UNQUALIFIED]["状态"] == "逾期未处置"
    assert disp[kc.BQ_UNQUALIFIED]["状态"] == "已处置" and disp[kc.BQ_UNQUALIFIED]["禁用物质"] == "是"
    assert disp[kc.HH_UNQUALIFIED]["被抽样单位"] == "'" + kc.FORMULA_ENTITY

    counts = rows_of(wb["通知汇总"])
    assert list(counts[0]) == ["规则", "规则名称", "类别", "级别", "层级", "乡镇", "通知数"]
    assert any(r["规则"] == "sample.unqualified" and r["乡镇"] == "红河镇" and r["通知数"] == 1 for r in counts)
    assert {(r["规则名称"], r["类别"]) for r in counts if r["规则"] == "sample.unqualified"} == {("样品抽检不合格", "预警通知")}

    overview = {r["指标"]: r for r in rows_of(wb["概况"])}
    assert overview["食品安全抽检合格率"]["数量"] == "39/40"
    assert overview["不合格样品按期处置率"]["数量"] == "1/2"


def test_no_formula_cells(written):
    wb = openpyxl.load_workbook(written[0])
    seen = False
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if cell.value == "'" + kc.FORMULA_ENTITY:
                    seen = True
                    assert cell.data_type == "s"
    assert seen


def test_html_tables_charts_and_no_external_resources(written):
    page = written[1].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for name in SHEETS:
        assert f"<h2>{name}</h2>" in page
    assert kc.EXPECTED_HONGHE_FOOD_RATE in page and kc.EXPECTED_BANQIAO_AGRI_RATE in page
    assert "<svg" in page and "<rect" in page
    assert "=cmd|&#x27; /C calc&#x27;!A0" in page  # escaped text, not markup
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href)\s*=""", page, re.I)
    assert "<script" not in page.lower()


def test_report_main_reads_the_service(filled, tmp_path):
    paths = report_main(filled.config, filled, kc.MONTH, tmp_path, now=kc.NOW)
    assert [p.suffix for p in paths] == [".xlsx", ".html"] and all(p.exists() for p in paths)


def test_bad_month_is_refused(filled, tmp_path):
    with pytest.raises(ValueError):
        write_report(filled.config, filled, [], "2026-13", tmp_path, now=kc.NOW)


def test_cli_report_rebuilds_the_figures_from_the_store(make_service, tmp_path):
    """``shian report`` offline: the engine is the service's snapshot plus the journal after
    it, so the figures are those the service showed (here half the events came after it)."""
    from shian.cli import main

    svc = make_service(now=lambda: kc.NOW)
    events = kc.events()
    for i, ev in enumerate(events):
        assert svc.accept_object(ev, "known_county", mode="event").status == "accepted"
        if i == len(events) // 2:
            svc.snapshot()
    svc.tick()
    svc.store.close()
    svc.outbox.close()
    assert main(["report", "--config", str(tmp_path / "county.yaml"), "--month", kc.MONTH,
                 "--out", str(tmp_path / "out")]) == 0
    [xlsx] = (tmp_path / "out").glob("*.xlsx")
    wb = openpyxl.load_workbook(xlsx)
    rates = {(r["乡镇"], r["任务类别"]): (r["合格批次"], r["抽检批次"]) for r in rows_of(wb["抽检合格率"])}
    assert rates[("红河镇", "食品安全抽检")] == kc.EXPECTED_HONGHE_FOOD
    assert rates[("板桥镇", "食用农产品监测")] == kc.EXPECTED_BANQIAO_AGRI
    disp = {r["样品编号"]: r["状态"] for r in rows_of(wb["不合格处置"])}
    assert disp == {kc.HH_UNQUALIFIED: "逾期未处置", kc.BQ_UNQUALIFIED: "已处置"}
    health = {r["乡镇"]: (r["持健康证人数"], r["从业人员数"]) for r in rows_of(wb["持证率"])}
    assert all(health[tw] == v for tw, v in kc.EXPECTED_HEALTH.items())


@pytest.mark.parametrize("tokens", [
    {"feeds": {"lab": {"name": "县检验检测中心", "token_env": "SHIAN_TEST_FEED_LAB"}},
     "tokens": {"county-fso": {"token_env": "SHIAN_TEST_TOKEN_COUNTY"}, "hh-fso": {"token_env": "SHIAN_TEST_TOKEN_HH"}}},
    {"feeds": {"lab": {"name": "县检验检测中心", "token": "feed-lab-token-1"}},
     "tokens": {"county-fso": {"token": "dept-county-token-1"}, "hh-fso": {"token_env": "SHIAN_TEST_TOKEN_HH"}}},
], ids=["tokens by variable, none set", "literal tokens and a variable"])
def test_cli_report_and_ledger_need_no_tokens(make_service, tmp_path, monkeypatch, tokens):
    """``shian report`` and ``shian ledger`` read a config with several feed and department
    tokens (their variables unset here): the offline commands do not check tokens."""
    from shian.cli import main

    for var in ("SHIAN_TEST_FEED_LAB", "SHIAN_TEST_TOKEN_COUNTY", "SHIAN_TEST_TOKEN_HH"):
        monkeypatch.delenv(var, raising=False)
    env = {"SHIAN_TEST_FEED_LAB": "feed-lab-token-1", "SHIAN_TEST_TOKEN_COUNTY": "dept-county-token-1",
           "SHIAN_TEST_TOKEN_HH": "dept-hh-token-1"}
    svc = make_service(county(service={"listen": "127.0.0.1:0", "data_dir": "data", **tokens}),
                       now=lambda: kc.NOW, env=env)
    kc.fill(svc)
    svc.store.close()
    svc.outbox.close()
    cfg = str(tmp_path / "county.yaml")
    assert main(["report", "--config", cfg, "--month", kc.MONTH, "--out", str(tmp_path / "out")]) == 0
    assert main(["ledger", "--config", cfg, "--out", str(tmp_path / "out" / "台账.xlsx")]) == 0
    assert sorted(p.suffix for p in (tmp_path / "out").iterdir()) == [".html", ".xlsx", ".xlsx"]
