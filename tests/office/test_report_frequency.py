"""``shian report``'s 检查频次 sheet (XLSX and HTML) on the small register of ``register_county``:
the month's quota is that of the latest check date passed by the month's end."""
from __future__ import annotations

import openpyxl
import pytest

from office_support import service_in
from register_county import BQ, HH, NOW, fill
from shian.office.report import SHEETS, write_report
from test_report import rows_of


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    svc = service_in(tmp_path_factory.mktemp("register"), now=lambda: NOW)
    fill(svc)
    yield svc
    svc.store.close()
    svc.outbox.close()


def sheet(filled, month, tmp_path):
    xlsx, page = write_report(filled.config, filled, filled.outbox.notices(), month, tmp_path, now=NOW)
    wb = openpyxl.load_workbook(xlsx)
    return {(r["乡镇"], r["风险等级"]): r for r in rows_of(wb["检查频次"])}, wb, page.read_text(encoding="utf-8")


@pytest.mark.parametrize("month, check, hh_d, hh_total, county", [
    # June: the 1 April check (D needs 1, had 0); July: the 1 July check (D needs 2, had 1)
    ("2026-06", "2026-04-01", (1, 4, 1, 0, 1, 1), (2, 5, 2, 1, 1, 2), (3, 7, 3, 2, 1, 4)),
    ("2026-07", "2026-07-01", (1, 4, 2, 1, 1, 1), (2, 5, 3, 2, 1, 2), (3, 7, 4, 4, 1, 4)),
    ("2026-03", "未到核对日", (1, 4, 0, 0, 0, 0), (2, 5, 0, 1, 0, 1), (3, 7, 0, 2, 0, 2)),  # before the first
])
def test_the_sheet_is_the_pages_table(filled, tmp_path, month, check, hh_d, hh_total, county):
    """Per township × risk level, 合计 per township and 全县合计: entities, the year's quota, the
    quota by the check, done before it, entities behind, done to date (end of month or now)."""
    rows, wb, _ = sheet(filled, month, tmp_path)
    assert tuple(wb.sheetnames) == SHEETS and "检查频次" in SHEETS
    fields = ("主体数", "全年应检次数", "截至核对日应检次数", "核对日前已检次数", "未达标户数", "本年累计已检次数")
    assert tuple(rows[(HH, "D级")][f] for f in fields) == hh_d
    assert tuple(rows[(HH, "合计")][f] for f in fields) == hh_total
    assert tuple(rows[("全县合计", None)][f] for f in fields) == county
    assert {r["核对日"] for r in rows.values()} == {check}
    assert rows[(HH, "D级")]["达标情况"] == ("未到期" if check == "未到核对日" else "未达标")
    assert rows[(HH, "D级")]["未达标单位"] == ("中心学校食堂" if hh_d[4] else None)
    assert rows[(BQ, "B级")]["达标情况"] == ("未到期" if check == "未到核对日" else "达标")
    assert rows[(HH, "C级")]["达标情况"] == "—"       # no entity of that grade to check


def test_the_overview_and_the_html_carry_it(filled, tmp_path):
    """概况 has the share of entities up to their quota; the HTML has the same table."""
    _, wb, page = sheet(filled, "2026-07", tmp_path)
    overview = {r["指标"]: r for r in rows_of(wb["概况"])}
    line = overview["按风险等级检查频次达标率"]
    assert (line["数量"], line["达标情况"]) == ("2/3", "未达标") and "2026-07-01" in line["说明"]
    assert "<h2>检查频次</h2>" in page and "全县合计" in page and "中心学校食堂" in page
