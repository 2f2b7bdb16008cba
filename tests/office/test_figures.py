"""The office's figures on the known-answer county (tests/office/known_county.py), as the
engine answers them (``Engine.figures``) from the tallies it keeps of the events it accepts."""
from __future__ import annotations

from datetime import date, datetime
from fractions import Fraction

import pytest

import known_county as kc
from office_support import make_service  # noqa: F401  (a fixture)
from shian.notifiers.routing import recipients
from shian.office import figures as fig
from shian.rules.engine import Engine
from shian.rules.events import Rejected, Validator


@pytest.fixture(scope="module")
def config():
    return kc.config()


@pytest.fixture(scope="module")
def events():
    return kc.events()


def figures(config, events, kind, period, now=kc.NOW):
    """The figure from a bare engine (no rules, as the Kafka office keeps) fed with ``events``;
    events the config refuses are left out, as the engine refuses them."""
    engine = Engine(config, recipients, lambda n: None, families=())
    validator = Validator(config.known())
    for obj in events:
        try:
            engine.admit(validator.from_object(obj))
        except Rejected:
            continue
    return engine.figures(kind, period, now)


def by(rows, *keys):
    return {tuple(getattr(r, k) for k in keys) if len(keys) > 1 else getattr(r, keys[0]): r for r in rows}


def test_pass_rates_of_the_month(config, events):
    rows = by(figures(config, events, "pass_rate", kc.MONTH), "township", "program")
    hh = rows[("红河镇", "food_sampling")]
    assert (hh.qualified, hh.total) == kc.EXPECTED_HONGHE_FOOD
    assert fig.fmt_rate(hh.rate) == kc.EXPECTED_HONGHE_FOOD_RATE
    assert hh.exact_rate == Fraction(19, 20) and hh.target == 0.98 and hh.period == kc.MONTH
    bq = rows[("板桥镇", "agri_monitoring")]
    assert (bq.qualified, bq.total) == kc.EXPECTED_BANQIAO_AGRI  # 结论 合格 but a 克伦特罗 hit
    assert fig.fmt_rate(bq.rate) == kc.EXPECTED_BANQIAO_AGRI_RATE
    assert (rows[("板桥镇", "food_sampling")].qualified, rows[("板桥镇", "food_sampling")].total) == kc.EXPECTED_BANQIAO_FOOD
    assert (rows[("红河镇", "agri_monitoring")].qualified, rows[("红河镇", "agri_monitoring")].total) == kc.EXPECTED_HONGHE_AGRI
    for key, below in kc.EXPECTED_BELOW.items():
        assert rows[key].below is below, key
    assert all(p != "rapid_test" for _, p in rows)
    empty = rows[("出山镇", "food_sampling")]
    assert (empty.total, empty.rate, empty.below) == (0, None, False)


def test_pass_rates_by_event_month_and_year(config, events):
    may = by(figures(config, events, "pass_rate", "2026-05"), "township", "program")
    assert (may[("红河镇", "food_sampling")].qualified, may[("红河镇", "food_sampling")].total) == kc.EXPECTED_HONGHE_FOOD_MAY
    year = by(figures(config, events, "pass_rate", "2026"), "township", "program")
    assert (year[("红河镇", "food_sampling")].qualified, year[("红河镇", "food_sampling")].total) == (20, 21)
    assert year[("红河镇", "food_sampling")].period == "2026"
    every = figures(config, events, "pass_rate", None)
    assert sorted({r.period for r in every}) == ["2026-04", "2026-05"]


def test_rate_comparison_is_exact(config):
    samples = [{"type": "sampling_result", "id": f"S{i}", "township": "红河镇", "sampled_at": "2026-04-02",
                "entity": "店", "category": "蔬菜", "items": [], "conclusion": "不合格" if i == 0 else "合格"}
               for i in range(20)]
    row = by(figures(config, samples, "pass_rate", "2026-04"), "township", "program")[("红河镇", "food_sampling")]
    assert row.rate == 0.95 and row.below is True
    certs = [{"type": "inspection", "id": "I1", "township": "红河镇", "inspected_at": "2026-04-02", "entity": "店",
              "entity_type": "餐饮服务", "inspection_type": "日常检查", "outcome": "合格", "staff_total": 20,
              "staff_with_health_cert": 19}]
    assert by(figures(config, certs, "health", "2026-04"), "township")["红河镇"].below is False


def test_report_board(config, events):
    rows = figures(config, events, "reports", kc.MONTHS, kc.NOW)
    cells = {(r.township, r.reporter): r.cells for r in rows}
    assert len(rows) == sum(len(t.reporters) for t in config.townships.values())
    for key, status in kc.EXPECTED_REPORTS.items():
        assert cells[key]["2026-04"].status == status, key
    for key, status in kc.EXPECTED_REPORTS_MAY.items():
        assert cells[key]["2026-05"].status == status, key
    late = cells[("红河镇", "红河村")]["2026-04"].submitted_at
    assert late.isoformat() == kc.EXPECTED_HONGHE_LATE_SUBMITTED
    assert cells[("红河镇", "新寨村")]["2026-04"].submitted_at is None
    before_due = figures(config, events, "reports", ["2026-04"], datetime(2026, 4, 25, 23, 0, tzinfo=kc.TZ))
    assert {(r.township, r.reporter): r.cells["2026-04"].status for r in before_due}[("红河镇", "新寨村")] == "pending"


def test_sampling_pace(config, events):
    rows = by(figures(config, events, "pace", kc.NOW.date().isoformat()), "township")
    for tw, (batches, yearly) in kc.EXPECTED_PACE.items():
        assert (rows[tw].batches, rows[tw].yearly_target) == (batches, yearly), tw
    hh = rows["红河镇"]
    assert hh.target_to_date == Fraction(120 * 130, 365)
    assert f"{float(hh.target_to_date):.1f}" == kc.EXPECTED_HONGHE_TARGET_TO_DATE
    assert hh.behind is True and hh.ratio == pytest.approx(31 / (120 * 130 / 365))
    assert rows["出山镇"].ratio == 0.0
    early = by(figures(config, events, "pace", "2026-04-10"), "township")
    assert early["红河镇"].batches == 10  # food 01–10; agri starts 04-11; rapid tests never count
    assert early["红河镇"].batches == len([e for e in events if e["township"] == "红河镇"
                                         and e["type"] == "sampling_result" and e.get("program") != "rapid_test"
                                         and e.get("reported_at", e["sampled_at"]) < "2026-04-11"])


def test_health_certs(config, events):
    rows = by(figures(config, events, "health", kc.MONTH), "township")
    for tw, (certified, staff) in kc.EXPECTED_HEALTH.items():
        assert (rows[tw].certified, rows[tw].staff) == (certified, staff)
        assert rows[tw].below is kc.EXPECTED_HEALTH_BELOW[tw]
    assert rows["板桥镇"].low_entities == ("老街饭店",)
    assert rows["出山镇"].staff == 0 and rows["出山镇"].rate is None


def test_campaigns(config, events):
    rows = by(figures(config, events, "campaigns", "2026", kc.NOW), "township", "holiday")
    for key, done in kc.EXPECTED_CAMPAIGNS.items():
        assert rows[key].done is done, key
    hh = rows[("红河镇", "劳动节")]
    assert (hh.date, hh.inspections, hh.status, hh.window_start) == (date(2026, 5, 1), 1, "done", date(2026, 4, 1))
    assert rows[("板桥镇", "劳动节")].status == "missed"
    assert rows[("红河镇", "国庆节")].status == "upcoming"
    assert rows[("红河镇", "春节")].date == date(2026, 2, 17)
    after = by(figures(config, events, "campaigns", "2026", datetime(2027, 1, 1, tzinfo=kc.TZ)), "township", "holiday")
    assert after[("红河镇", "国庆节")].status == "missed"  # its window over without one


def test_disposals(config, events):
    rows = by(figures(config, events, "disposals", kc.MONTH, kc.NOW), "sample_id")
    assert {k: r.status for k, r in rows.items()} == kc.EXPECTED_DISPOSALS
    hh = rows[kc.HH_UNQUALIFIED]
    assert hh.entity == kc.FORMULA_ENTITY and hh.notice_id == kc.HH_NOTICE and hh.banned is False
    assert hh.due == datetime(2026, 4, 23, 9, 0, tzinfo=kc.TZ) and hh.overdue
    bq = rows[kc.BQ_UNQUALIFIED]
    assert bq.banned and bq.notice_id == kc.BQ_NOTICE and bq.disposal_id == "BQ-CZ-2604-01"
    assert bq.measures == ("下架", "立案") and not bq.overdue
    before = by(figures(config, events, "disposals", kc.MONTH, datetime(2026, 4, 20, tzinfo=kc.TZ)), "sample_id")
    assert before[kc.HH_UNQUALIFIED].status == "open"


def test_disposals_from_the_service_notices(config, make_service):
    svc = make_service(now=lambda: kc.NOW)
    kc.fill(svc)
    notices = svc.outbox.notices()
    rows = by(svc.figures("disposals", kc.MONTH), "sample_id")
    assert {k: r.status for k, r in rows.items()} == kc.EXPECTED_DISPOSALS
    assert rows[kc.HH_UNQUALIFIED].due.isoformat() == next(n.to_json()["due"] for n in notices if n.id == kc.HH_NOTICE)
    counts = fig.notice_counts(svc.config, notices, "2026-05")
    assert {c.rule for c in counts} >= {"sample.pass_rate_low", "report.escalation", "campaign.missed"}
    low = [c for c in counts if c.rule == "sample.pass_rate_low"]
    assert [(c.township, c.count) for c in low] == [("红河镇", 1)]
    assert low[0].summary == "月度抽检合格率低于目标"


def test_store_events_validate_and_bad_rows_are_skipped(config, events):
    bad = {"type": "sampling_result", "id": "X", "township": "不存在镇", "sampled_at": "2026-04-02",
           "entity": "店", "category": "蔬菜", "items": []}
    assert figures(config, [*events, bad], "pass_rate", kc.MONTH) == figures(config, events, "pass_rate", kc.MONTH)


def rate(period: str, total: int) -> fig.RateRow:
    return fig.RateRow("红河镇", "food_sampling", period, total, total, 1.0 if total else None, 0.98, False)


#: (months with samples → total, judged through, the month a pass-rate page opens on)
OPEN_ON = [
    ({}, "2026-11", None),
    ({"2026-04": 20, "2026-05": 1}, "2026-11", "2026-05"),     # the latest judged month with samples
    ({"2026-04": 20, "2026-05": 1}, "2026-04", "2026-04"),     # May not yet judged
    ({"2026-04": 20, "2026-05": 0}, "2026-11", "2026-04"),     # a month without samples is no data
    ({"2026-12": 3}, "2026-11", "2026-12"),                    # only the open month has samples
]


@pytest.mark.parametrize("totals, judged, expected", OPEN_ON)
def test_rate_page_opens_on_the_latest_judged_month_with_samples(totals, judged, expected):
    """Which month 合格率 opens on: never an empty month when one has samples."""
    assert fig.latest_rate_period([rate(p, n) for p, n in totals.items()], judged) == expected


def test_report_board_opens_on_the_latest_month_anyone_reported(config, events):
    """Which month 月报报送 opens on: the last month with a report in it (May: 镇卫生院)."""
    months = ["2026-03", "2026-04", "2026-05", "2026-06"]
    assert fig.latest_report_month(figures(config, events, "reports", months)) == "2026-05"
    assert fig.latest_report_month(figures(config, events, "reports", ["2026-03"])) is None
