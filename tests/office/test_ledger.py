"""``shian ledger``: the notice ledger (台账) on the known-answer county."""
from __future__ import annotations

import dataclasses
from datetime import datetime

import openpyxl
import pytest

import known_county as kc
from office_support import make_service  # noqa: F401  (a fixture)
from shian.office.ledger import SHEETS, ledger_main, write_ledger


@pytest.fixture
def filled(make_service):
    svc = make_service(now=lambda: kc.NOW)
    kc.fill(svc)
    return svc


def rows_of(ws):
    values = list(ws.iter_rows(values_only=True))
    return [dict(zip(values[0], row)) for row in values[1:]]


def test_ledger_rows_acks_and_deliveries(filled, tmp_path):
    path = ledger_main(filled.config, filled, tmp_path / "台账.xlsx")
    wb = openpyxl.load_workbook(path)
    assert tuple(wb.sheetnames) == SHEETS
    notices = filled.outbox.notices()

    summary = rows_of(wb["通知台账"])
    assert list(summary[0])[:9] == ["编号", "时间", "类别", "规则", "级别", "层级", "乡镇", "标题", "办理期限"]
    assert [r["编号"] for r in summary] == [n.id for n in notices]
    hh = next(r for r in summary if r["编号"] == kc.HH_NOTICE)
    assert (hh["类别"], hh["规则"]) == ("预警通知", "样品抽检不合格")
    assert hh["接收部门"] == "红河镇畜牧站、红河镇食安办" and hh["签收情况"] == "1/2" and hh["办结"] == "已签收"
    assert hh["时间"] == "2026-04-08 09:00" and hh["办理期限"] == "2026-04-23 09:00" and hh["级别"] == "警示"
    bq = next(r for r in summary if r["编号"] == kc.BQ_NOTICE)
    assert bq["办结"] == "已办结" and bq["级别"] == "紧急" and bq["层级"] == "县级"

    detail = {(r["编号"], r["部门编号"]): r for r in rows_of(wb["签收明细"])}
    assert len(detail) == sum(len(n.recipients) for n in notices)
    vet = detail[(kc.HH_NOTICE, "hh-vet")]
    assert vet["接收部门"] == "红河镇畜牧站" and vet["签收时间"] == "2026-04-08 16:00" and vet["办结时间"] is None
    assert vet["反馈"] == "04-08 16:00 " + kc.FORMULA_NOTE  # starts with a digit: left as it is
    assert vet["投递状态"] == "待发送（文件发件箱）"
    assert detail[(kc.HH_NOTICE, "hh-fso")]["签收时间"] is None
    closed = detail[(kc.BQ_NOTICE, "bq-vet")]
    assert (closed["签收时间"], closed["办结时间"], closed["反馈"]) == (
        "2026-04-09 09:00", "2026-04-20 17:30", "04-20 17:30 已下架并立案查处")


def test_formula_text_is_protected(filled, tmp_path):
    notices = filled.outbox.notices()
    acks = [*filled.store.events(["ack"]),
            {"type": "ack", "id": "x", "township": "红河镇", "notice_id": kc.HH_NOTICE, "by": "hh-fso",
             "action": "办结", "acked_at": "2026-04-09T10:00:00", "note": "ignored"}]
    evil = dataclasses.replace(notices[0], title="=HYPERLINK(\"x\",\"y\")", township="@SUM(A1)")
    path = write_ledger(filled.config, [evil, *notices[1:]], acks, tmp_path / "l.xlsx", filled.outbox.deliveries_of)
    wb = openpyxl.load_workbook(path)
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
    first = rows_of(wb["通知台账"])[0]
    assert first["标题"] == "'=HYPERLINK(\"x\",\"y\")" and first["乡镇"] == "'@SUM(A1)"
    fso = {(r["编号"], r["部门编号"]): r for r in rows_of(wb["签收明细"])}[(kc.HH_NOTICE, "hh-fso")]
    assert fso["签收时间"] == fso["办结时间"] == "2026-04-09 10:00"


def test_ack_by_notice_key(filled, tmp_path):
    notices = filled.outbox.notices()
    hh = next(n for n in notices if n.id == kc.HH_NOTICE)
    acks = [{"type": "ack", "id": "k", "township": "红河镇", "notice_id": hh.key, "by": "hh-fso",
             "action": "签收", "acked_at": "2026-04-10T08:00:00"}]
    wb = openpyxl.load_workbook(write_ledger(filled.config, [hh], acks, tmp_path / "k.xlsx"))
    detail = {r["部门编号"]: r for r in rows_of(wb["签收明细"])}
    assert detail["hh-fso"]["签收时间"] == "2026-04-10 08:00"
    assert detail["hh-vet"]["投递状态"] == "无投递渠道"


def test_since_until(filled, tmp_path):
    since, until = datetime(2026, 5, 1, tzinfo=kc.TZ), datetime(2026, 5, 2, tzinfo=kc.TZ)
    path = ledger_main(filled.config, filled, tmp_path / "may.xlsx", since=since, until=until)
    rows = rows_of(openpyxl.load_workbook(path)["通知台账"])
    assert rows and all(r["时间"].startswith("2026-05-01") for r in rows)
    assert any(r["规则"] == "月度抽检合格率低于目标" and r["乡镇"] == "红河镇" for r in rows)
