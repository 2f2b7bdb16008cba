"""``shian report``: the monthly compliance report an office sends upward (XLSX + HTML).

One sheet per table, figures against the work plans' targets with a 达标情况 column; the HTML
carries the same tables and inline-SVG bar charts, with no external resources, so it can be
mailed or opened offline. Text that came from events is written so that no spreadsheet
formula can run (:func:`shian.rules.cells.safe`, shared with every workbook shian writes).
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from shian.notifiers.render import rule_name, spec_of
from shian.rules.cells import safe
from shian.rules.config import Config
from shian.rules.notice import Notice
from shian.rules.params import exact
from shian.rules.timeutil import parse_period

from . import figures as fig
from .runtime import Runtime

SHEETS = ("概况", "抽检合格率", "抽检进度", "月报报送", "持证率", "节前联合检查", "检查频次", "不合格处置", "通知汇总")
MET, NOT_MET, NOT_YET = "达标", "未达标", "未到期"


def when(dt: datetime | None) -> str:
    return "" if dt is None else f"{dt:%Y-%m-%d %H:%M}"


def met(ok: bool | None) -> str:
    return NOT_YET if ok is None else (MET if ok else NOT_MET)


@dataclass
class Table:
    """One sheet / one HTML table; ``rates`` are the columns holding a fraction shown as %."""
    name: str
    frame: pd.DataFrame
    rates: tuple[str, ...] = ()
    note: str = ""


def write_xlsx(tables: Sequence[Table], path: Path) -> Path:
    """Tables as sheets with bold headers, % formats and readable widths; every text cell
    passes through :func:`safe`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for t in tables:
            frame = t.frame.map(safe) if not t.frame.empty else t.frame
            frame.columns = [safe(c) for c in frame.columns]
            frame.to_excel(writer, sheet_name=t.name, index=False)
            ws = writer.sheets[t.name]
            head = PatternFill("solid", fgColor="DDEBF7")
            for cell in ws[1]:
                cell.font = Font(bold=True)
                cell.fill = head
                cell.alignment = Alignment(horizontal="center", vertical="center")
            for i, col in enumerate(frame.columns, start=1):
                letter = get_column_letter(i)
                if col in t.rates:
                    for cell in ws[letter][1:]:
                        cell.number_format = "0.0%"
                width = max([_width(col), *(_width(v) for v in frame.iloc[:, i - 1])] or [8])
                ws.column_dimensions[letter].width = min(max(width + 2, 8), 60)
            ws.freeze_panes = "A2"
            if t.note:
                ws.cell(row=len(frame) + 3, column=1, value=safe(t.note)).font = Font(italic=True, color="666666")
    return path


def _width(v: Any) -> int:
    s = "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)


# -- the tables --------------------------------------------------------------------------------

def build_tables(config: Config, source: fig.FigureSource, notices: Sequence[Notice],
                 month: str, now: datetime) -> list[Table]:
    """The report's tables for ``month`` as seen at ``now`` (statuses not yet due show 未到期);
    the figures are the runtime's (``source``), the notice counts the outbox's."""
    start, _ = fig.period_bounds(month, config.tz)
    as_of = fig.as_of(month, now, config.tz)

    rates = source.figures("pass_rate", month, now)
    pace = source.figures("pace", month, now)
    board = source.figures("reports", month, now)
    health = source.figures("health", month, now)
    camps = source.figures("campaigns", month, now)
    disp = source.figures("disposals", month, now)
    freq = source.figures("frequency", month, now)
    counts = fig.notice_counts(config, notices, month)
    month_notices = [n for n in notices if fig.in_period(n.at.astimezone(config.tz), month)]

    rate_df, pace_df, report_df = _rates_frame(rates), _pace_frame(pace, start.year), _reports_frame(board, month)
    health_df, camp_df, disp_df = _health_frame(health), _campaigns_frame(camps), _disposals_frame(disp)
    count_df = _counts_frame(counts)

    overview = _overview(config, month, now, as_of, rates, pace, board, health, camps, disp, month_notices)
    overview = pd.concat([overview.iloc[:-1], _frequency_summary(freq), overview.iloc[-1:]], ignore_index=True)
    return [
        Table("概况", overview, ("实际", "目标")),
        Table("抽检合格率", rate_df, ("合格率", "目标"),
              "合格率按检验报告日期（无则按抽样日期）所在月份统计；快检不计入合格率。"),
        Table("抽检进度", pace_df, ("完成进度",),
              "目标：食品和农产品抽检 4 批次/千人·年（不含快速检测），按全年天数折算到统计日。"),
        Table("月报报送", report_df, note=f"月报应于每月 {config.params('report.reminder').due_day} 日（含）前报送。"),
        Table("持证率", health_df, ("持证率", "目标"), "按本月检查中填报了从业人员数的单位统计，同一单位取最近一次检查。"),
        Table("节前联合检查", camp_df,
              note=f"节前 {config.params('campaign.missed').window_days} 日内开展节前联合检查即为已开展。"),
        Table("检查频次", _frequency_frame(freq), note=_frequency_note(config, int(month[:4]))),
        Table("不合格处置", disp_df, note="不合格食品处置率目标 100%；处置期限届满前报送处置记录为按期处置。"),
        Table("通知汇总", count_df),
    ]


def _rates_frame(rates: list[fig.RateRow]) -> pd.DataFrame:
    """合格率 per township × program."""
    return pd.DataFrame([{
        "乡镇": r.township, "任务类别": fig.program_name(r.program), "月份": r.period,
        "合格批次": r.qualified, "抽检批次": r.total, "合格率": r.rate, "目标": r.target,
        "达标情况": "无抽检" if not r.total else met(not r.below),
    } for r in rates], columns=["乡镇", "任务类别", "月份", "合格批次", "抽检批次", "合格率", "目标", "达标情况"])


def _pace_frame(pace: list[fig.PaceRow], year: int) -> pd.DataFrame:
    """Sampling pace against the yearly target."""
    return pd.DataFrame([{
        "乡镇": p.township, "人口": p.population, f"{year}年已抽检批次": p.batches,
        "全年目标批次": p.yearly_target, "截至统计日应完成": round(float(p.target_to_date), 1),
        "完成进度": p.ratio, "达标情况": met(not p.behind),
    } for p in pace])


def _reports_frame(board: list[fig.BoardRow], month: str) -> pd.DataFrame:
    """Monthly reports of the month, per reporter."""
    return pd.DataFrame([{
        "乡镇": b.township, "报送单位": b.reporter, "所属月份": month,
        "报送时间": when(b.cells[month].submitted_at), "状态": fig.REPORT_STATUS[b.cells[month].status],
        "达标情况": {"on_time": MET, "pending": NOT_YET}.get(b.cells[month].status, NOT_MET),
    } for b in board], columns=["乡镇", "报送单位", "所属月份", "报送时间", "状态", "达标情况"])


def _health_frame(health: list[fig.HealthRow]) -> pd.DataFrame:
    """Health certificates per township."""
    return pd.DataFrame([{
        "乡镇": h.township, "月份": h.period, "检查单位数": h.entities, "从业人员数": h.staff,
        "持健康证人数": h.certified, "持证率": h.rate, "目标": h.target,
        "达标情况": "无检查数据" if not h.staff else met(not h.below),
        "低于目标的单位": "、".join(h.low_entities),
    } for h in health])


def _campaigns_frame(camps: list[fig.CampaignRow]) -> pd.DataFrame:
    """Holiday joint inspections."""
    return pd.DataFrame([{
        "乡镇": c.township, "节日": c.holiday, "节日日期": c.date.isoformat(),
        "检查期间": f"{c.window_start:%Y-%m-%d} 至 {c.date - timedelta(days=1):%Y-%m-%d}",
        "联合检查次数": c.inspections, "状态": fig.CAMPAIGN_STATUS[c.status],
        "达标情况": {"done": MET, "missed": NOT_MET}.get(c.status, NOT_YET),
    } for c in camps], columns=["乡镇", "节日", "节日日期", "检查期间", "联合检查次数", "状态", "达标情况"])


FREQUENCY_COLUMNS = ["乡镇", "风险等级", "主体数", "全年应检次数", "核对日", "截至核对日应检次数", "核对日前已检次数",
                     "未达标户数", "本年累计已检次数", "达标情况", "未达标单位"]


def _frequency_frame(freq: list[fig.FrequencyRow]) -> pd.DataFrame:
    """Inspections of the register's entities per township × risk level, a 合计 row per township
    and one for the county: the quota by the year's latest check date passed (the rule's)."""
    check = next((r.check_date for r in freq), None)

    def row(township: str, level: str, t: fig.FrequencyTotal, names: tuple[str, ...] = ()) -> dict[str, Any]:
        verdict = "—" if not t.entities else met(None if check is None else not t.behind)
        return {"乡镇": township, "风险等级": level, "主体数": t.entities, "全年应检次数": t.yearly,
                "核对日": check.isoformat() if check else "未到核对日", "截至核对日应检次数": t.required,
                "核对日前已检次数": t.done, "未达标户数": t.behind, "本年累计已检次数": t.done_to_date,
                "达标情况": verdict, "未达标单位": "、".join(names)}

    out = []
    for township, cells, total in fig.frequency_by_township(freq):
        out += [row(township, f"{r.risk_level}级", fig.frequency_total([r], township), r.behind_entities) for r in cells]
        out.append(row(township, "合计", total))
    if freq:
        out.append(row("全县合计", "", fig.frequency_total(freq)))
    return pd.DataFrame(out, columns=FREQUENCY_COLUMNS)


def _frequency_note(config: Config, year: int) -> str:
    per_year = config.params("inspection.frequency_due").per_year
    dates = "、".join(f"{d.month}月{d.day}日（{share * 100:g}%）" for d, share in fig.frequency_schedule(config, year))
    grades = "、".join(f"{level}级 {n} 次" for level, n in per_year.items())
    return (f"按风险等级每年至少检查：{grades}；核对日 {dates}，当天 9:00 前的检查计入，截至核对日应完成全年次数的相应比例。"
            "当年新登记的主体次年起核对，已注销的不再核对。")


def _frequency_summary(freq: list[fig.FrequencyRow]) -> pd.DataFrame:
    """The 概况 line: entities up to their quota at the latest check date passed."""
    total = fig.frequency_total(freq)
    check = next((r.check_date for r in freq), None)
    ok = total.entities - total.behind
    return pd.DataFrame([{
        "指标": "按风险等级检查频次达标率", "实际": ok / total.entities if total.entities else None, "目标": 1.0,
        "数量": f"{ok}/{total.entities}",
        "达标情况": "—" if not total.entities else met(None if check is None else not total.behind),
        "说明": (f"截至 {check.isoformat()} 核对日，未达标 {total.behind} 户" if check else "本年尚未到核对日"),
    }])


def _disposals_frame(disp: list[fig.DisposalRow]) -> pd.DataFrame:
    """Disposal of unqualified samples."""
    return pd.DataFrame([{
        "乡镇": d.township, "样品编号": d.sample_id, "被抽样单位": d.entity, "任务类别": fig.program_name(d.program),
        "食品大类": d.category, "食品名称": d.food or "", "检验报告日期": when(d.reported_at),
        "禁用物质": "是" if d.banned else "否", "处置期限": when(d.due), "处置时间": when(d.disposed_at),
        "处置措施": "、".join(d.measures), "状态": fig.DISPOSAL_STATUS[d.status],
        "达标情况": {"disposed": MET, "open": NOT_YET}.get(d.status, NOT_MET),
    } for d in disp], columns=["乡镇", "样品编号", "被抽样单位", "任务类别", "食品大类", "食品名称", "检验报告日期",
                              "禁用物质", "处置期限", "处置时间", "处置措施", "状态", "达标情况"])


def _counts_frame(counts: list[fig.NoticeCountRow]) -> pd.DataFrame:
    """Notices per rule, severity, level and township."""
    return pd.DataFrame([{
        "规则": c.rule, "规则名称": rule_name(c.rule), "类别": spec_of(c.rule, c.severity).document,
        "级别": fig.SEVERITY_NAMES.get(c.severity, c.severity),
        "层级": fig.LEVEL_NAMES.get(c.level, c.level), "乡镇": c.township, "通知数": c.count,
    } for c in counts], columns=["规则", "规则名称", "类别", "级别", "层级", "乡镇", "通知数"])


def _overview(config: Config, month: str, now: datetime, as_of: date, rates: list[fig.RateRow],
              pace: list[fig.PaceRow], board: list[fig.BoardRow], health: list[fig.HealthRow],
              camps: list[fig.CampaignRow], disp: list[fig.DisposalRow],
              notices: list[Notice]) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []

    def add(name: str, num: int, den: int, target: float | None, detail: str, pending: bool = False) -> None:
        rate = num / den if den else None
        ok = None if pending or not den or target is None else Fraction(num, den) >= exact(target)
        rows.append({"指标": name, "实际": rate, "目标": target, "数量": f"{num}/{den}",
                     "达标情况": ("—" if not den else met(ok)), "说明": detail})

    for program in fig.COUNTED_PROGRAMS:
        mine = [r for r in rates if r.program == program]
        q, n = sum(r.qualified for r in mine), sum(r.total for r in mine)
        below = [r.township for r in mine if r.below]
        add(f"{fig.program_name(program)}合格率", q, n, mine[0].target if mine else None,
            ("低于目标：" + "、".join(below)) if below else "")
    batches = sum(p.batches for p in pace)
    to_date = sum((p.target_to_date for p in pace), Fraction(0))
    yearly = sum(p.yearly_target for p in pace)
    ratio = float(batches / to_date) if to_date else None
    rows.append({"指标": "抽检批次进度（4 批次/千人·年）", "实际": ratio, "目标": 1.0,
                 "数量": f"{batches}/{float(to_date):.1f}",
                 "达标情况": "—" if not to_date else met(batches >= to_date),
                 "说明": f"截至 {as_of.isoformat()}，全年目标 {yearly} 批次"})
    cells = [b.cells[month] for b in board]
    due = [c for c in cells if c.status != "pending"]
    on_time = sum(c.status == "on_time" for c in cells)
    missing = [f"{b.township}{b.reporter}" for b in board if b.cells[month].status == "missing"]
    add("月报按时报送率", on_time, len(cells), 1.0,
        ("逾期未报：" + "、".join(missing)) if missing else "", pending=len(due) < len(cells))
    add("从业人员健康证持证率", sum(h.certified for h in health), sum(h.staff for h in health), health[0].target if health else 0.95,
        "低于目标：" + "、".join(h.township for h in health if h.below) if any(h.below for h in health) else "")
    closed = [c for c in camps if c.status in ("done", "missed")]
    add("节前联合检查开展率", sum(c.done for c in closed), len(closed), 1.0,
        "、".join(sorted({f"{c.holiday}（{c.date:%m-%d}）" for c in camps})))
    settled = [d for d in disp if d.status != "open"]
    add("不合格样品按期处置率", sum(d.status == "disposed" for d in settled), len(settled), 1.0,
        f"本月不合格样品 {len(disp)} 批次，逾期未处置 {sum(d.status == 'overdue' for d in disp)} 批次")
    crit = sum(n.severity == "critical" for n in notices)
    rows.append({"指标": "本月发出通知", "实际": None, "目标": None, "数量": str(len(notices)), "达标情况": "—",
                 "说明": f"其中紧急 {crit} 条"})
    head = {"指标": f"{config.county.name or ''}{month[:4]}年{int(month[5:])}月食品安全工作情况",
            "实际": None, "目标": None, "数量": "", "达标情况": "",
            "说明": f"统计时间 {now:%Y-%m-%d %H:%M}"}
    return pd.DataFrame([head, *rows], columns=["指标", "实际", "数量", "目标", "达标情况", "说明"])


# -- HTML --------------------------------------------------------------------------------------

_CSS = """
body{font-family:"Microsoft YaHei","PingFang SC","Noto Sans CJK SC",sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-left:4px solid #2f6fb3;padding-left:8px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #bbb;padding:4px 8px;text-align:left}th{background:#ddebf7}
td.bad{color:#b00020;font-weight:bold}td.ok{color:#1b7f3b}p.note{color:#666;font-size:12px}
svg text{font-size:12px}
"""


def _cell(col: str, v: Any, rates: tuple[str, ...]) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        text = ""
    elif col in rates and isinstance(v, (int, float)):
        text = fig.fmt_rate(v)
    else:
        text = str(v)
    cls = ' class="bad"' if text in (NOT_MET, "逾期未报", "逾期未处置", "未开展") else (
        ' class="ok"' if text == MET else "")
    return f"<td{cls}>{html.escape(text)}</td>"


def html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.frame.columns)
    body = "".join("<tr>" + "".join(_cell(c, v, t.rates) for c, v in zip(t.frame.columns, row)) + "</tr>"
                   for row in t.frame.itertuples(index=False))
    if t.frame.empty:
        body = f'<tr><td colspan="{len(t.frame.columns)}">（无）</td></tr>'
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def bar_chart(title: str, bars: Sequence[tuple[str, float | None, float | None]], scale: float = 1.0) -> str:
    """Horizontal bars (label, value, target) as inline SVG; the target is a red tick."""
    row, left, width = 22, 150, 360
    h = row * len(bars) + 30
    parts = [f'<svg width="{left + width + 80}" height="{h}" role="img" '
             f'aria-label="{html.escape(title)}">']
    for i, (label, value, target) in enumerate(bars):
        y = 20 + i * row
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{html.escape(label)}</text>')
        v = min(max((value or 0) / scale, 0), 1)
        below = value is not None and target is not None and value < target
        color = "#d9534f" if below else "#4a90d9"
        parts.append(f'<rect x="{left}" y="{y + 2}" width="{v * width:.1f}" height="{row - 6}" fill="{color}"/>')
        shown = "—" if value is None else fig.fmt_rate(value)
        parts.append(f'<text x="{left + v * width + 4:.1f}" y="{y + 13}">{html.escape(shown)}</text>')
        if target is not None:
            tx = left + min(target / scale, 1) * width
            parts.append(f'<line x1="{tx:.1f}" y1="{y}" x2="{tx:.1f}" y2="{y + row - 2}" stroke="#b00020" stroke-width="2"/>')
    parts.append(f'<text x="0" y="12" font-weight="bold">{html.escape(title)}</text></svg>')
    return "".join(parts)


def _charts(tables: Mapping[str, Table]) -> dict[str, str]:
    rates = tables["抽检合格率"].frame
    charts = {}
    if not rates.empty:
        # A rate chart zoomed on 80–100% would hide how far below target a township is; use 0–100%.
        charts["抽检合格率"] = bar_chart("抽检合格率（红线为目标）", [
            (f"{r['乡镇']} {r['任务类别']}", r["合格率"], r["目标"]) for _, r in rates.iterrows()
            if r["抽检批次"]])
    pace = tables["抽检进度"].frame
    if not pace.empty:
        charts["抽检进度"] = bar_chart("抽检批次完成进度（红线为应完成）", [
            (r["乡镇"], r["完成进度"], 1.0) for _, r in pace.iterrows()], scale=1.5)
    reports = tables["月报报送"].frame
    if not reports.empty:
        by = reports.groupby("乡镇", sort=False)["达标情况"].agg(lambda s: (s == MET).sum() / len(s))
        charts["月报报送"] = bar_chart("月报按时报送率", [(tw, float(v), 1.0) for tw, v in by.items()])
    health = tables["持证率"].frame
    if not health.empty:
        charts["持证率"] = bar_chart("从业人员健康证持证率（红线为目标）", [
            (r["乡镇"], r["持证率"], r["目标"]) for _, r in health.iterrows() if r["从业人员数"]])
    return charts


def write_html(tables: Sequence[Table], path: Path, title: str) -> Path:
    by_name = {t.name: t for t in tables}
    charts = _charts(by_name)
    sections = []
    for t in tables:
        chart = charts.get(t.name, "")
        sections.append(f"<section><h2>{html.escape(t.name)}</h2>{chart}{html_table(t)}</section>")
    doc = (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
           f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path


def report_title(config: Config, month: str) -> str:
    return f"{config.county.name or ''}{month[:4]}年{int(month[5:])}月食品安全工作月报"


def write_report(config: Config, source: fig.FigureSource, notices: Sequence[Notice],
                 month: str, out_dir: str | Path, *, now: datetime | None = None) -> tuple[Path, Path]:
    """The monthly report of ``month`` (YYYY-MM) as ``<title>.xlsx`` and ``<title>.html`` in
    ``out_dir``, with the figures of ``source``; ``now`` (default: the wall clock) decides
    what is already due."""
    parse_period(month)
    now = now or datetime.now(config.tz)
    tables = build_tables(config, source, list(notices), month, now)
    title = report_title(config, month)
    out = Path(out_dir)
    return write_xlsx(tables, out / f"{title}.xlsx"), write_html(tables, out / f"{title}.html", title)


def report_main(config: Config, runtime: Runtime, month: str, out_dir: str | Path, *,
                now: datetime | None = None) -> list[Path]:
    """For the CLI: the report with the figures and notices of ``runtime`` (the service as it
    recovers from its store)."""
    xlsx, page = write_report(config, runtime, runtime.notices(), month, out_dir, now=now)
    return [xlsx, page]
