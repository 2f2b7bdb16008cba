"""The office's figures agree with the notices the rules raised, because both come from the
same tallies (shian.rules.measures).

Three streams: the shipped example month (examples/, until 2026-05-01), a generated county
year (bench/replay_bench.py, small) and the synthetic county of the Kafka tests (a large register
with re-gradings, closures and rows arriving late, checked on 2 March and 15 April; small). Each
is replayed with timers of the test's own at the
rules' deadlines, which take the figure as the rule saw it (a pass rate is judged, a report
falls due, a holiday's window closes, a check date of the register comes), and with the clock each event arrived at, so the
comparisons can leave out exactly what a late arrival makes differ (a figure counts a late
event, a rule that already decided does not).
"""
from __future__ import annotations

import importlib.util
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shian.rules.calendar import holiday_date
from shian.rules.config import Config, load
from shian.rules.engine import Engine, Status
from shian.rules.measures import check_time, judged_at, report_due
from shian.rules.timeutil import add_days, local_midnight, month_of, next_month
from shian.streams.replay import Replay

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TZ = ZoneInfo("Asia/Shanghai")


@dataclass
class Watched:
    """What a replay raised, what its figures showed when the rules decided, and when each
    event arrived (the engine's clock as its handlers ran)."""
    config: Config
    engine: Engine
    until: datetime
    notices: list[dict[str, Any]] = field(default_factory=list)
    taken: dict[tuple[str, str, datetime], list[Any]] = field(default_factory=dict)
    arrived: dict[tuple[str, str, str], tuple[Any, datetime]] = field(default_factory=dict)
    accepted: list[Any] = field(default_factory=list)   # every accepted event (register versions too), in order

    @property
    def start(self) -> datetime:
        return min(clock for _, clock in self.arrived.values() if clock is not None)  # register rows may come first

    def raised(self, rule: str) -> list[dict[str, Any]]:
        return [n for n in self.notices if n["rule"] == rule]


def watched_replay(config: Config, paths: list[Path], until: datetime, first_month: str) -> Watched:
    w = Watched(config, None, until)  # type: ignore[arg-type]
    replay = Replay(config, lambda n: w.notices.append(n.to_json()), lambda r: None, until=until)
    engine = w.engine = replay.engine
    admit = engine.admit

    def watched_admit(ev: Any, until: datetime | None = None) -> str:
        status = admit(ev, until)
        if status == Status.ACCEPTED:
            w.arrived[(ev.type, ev.township, ev.id)] = (ev, engine.clock)
            w.accepted.append(ev)
        return status

    def take(kind: str, period: str, at: datetime) -> None:
        engine.schedule(at, lambda now, _: w.taken.__setitem__((kind, period, now), engine.figures(kind, period, now)))

    engine.admit = watched_admit  # type: ignore[method-assign]
    rules = config.rules
    m = first_month
    while m <= month_of(until):
        take("pass_rate", m, judged_at(m, rules["sample.pass_rate_low"].grace_days, TZ))
        due = report_due(m, rules["report.reminder"].due_day, TZ)
        take("reports", m, due)
        take("reports", m, add_days(due, rules["report.escalation"].escalate_after_days))
        m = next_month(m)
    for year in range(int(first_month[:4]), until.year + 1):
        for h in rules["campaign.reminder"].holidays:
            take("campaigns", str(year), local_midnight(holiday_date(h, year), TZ))
        for mm_dd in rules["inspection.frequency_due"].checks:
            take("frequency", str(year), check_time(mm_dd, year, TZ))
    replay.run([str(p) for p in paths])
    return w


def _bench_generator() -> Any:
    spec = importlib.util.spec_from_file_location("replay_bench", ROOT / "bench" / "replay_bench.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules.setdefault("replay_bench", module)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _synthetic() -> Any:
    spec = importlib.util.spec_from_file_location("synthetic", ROOT / "tests" / "kafka" / "synthetic.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module", params=["example month", "generated year", "synthetic register"])
def run(request, tmp_path_factory) -> Watched:
    if request.param == "example month":
        return watched_replay(load(EXAMPLES / "county.yaml"),
                              [EXAMPLES / "events.jsonl", EXAMPLES / "化验室抽检结果.xlsx"],
                              datetime(2026, 5, 1, tzinfo=TZ), "2026-01")
    if request.param == "synthetic register":
        out, synthetic = tmp_path_factory.mktemp("register"), _synthetic()
        synthetic.generate(out / "events.jsonl", 20_000)
        return watched_replay(load(synthetic.write_config(out / "county.yaml")), [out / "events.jsonl"],
                              datetime(2026, 5, 1, tzinfo=TZ), "2026-01")
    out = tmp_path_factory.mktemp("county")
    made = _bench_generator().dataset(out, 24_000, 6, 20260101, False)
    return watched_replay(load(made["config_path"]), [Path(made["events_path"])],
                          datetime(2027, 1, 1, tzinfo=TZ), "2025-12")


def decided(run: Watched, kind: str) -> list[tuple[str, datetime, list[Any]]]:
    """The figures taken when the rules decided, from the engine's start on (before it, the
    rules had not started and decided nothing)."""
    return [(period, at, rows) for (k, period, at), rows in sorted(run.taken.items(), key=lambda kv: kv[0][2])
            if k == kind and at >= run.start]


def test_pass_rate_cells_below_target_are_the_notices(run):
    """Every judged month: the township × program cells shown below target, with at least
    min_samples, are exactly the sample.pass_rate_low notices of that month."""
    params = run.config.rules["sample.pass_rate_low"]
    assert params.enabled
    months = decided(run, "pass_rate")
    assert months
    for period, _, rows in months:
        shown = {(r.township, r.program) for r in rows if r.below and r.total >= params.min_samples}
        raised = {(n["township"], n["facts"]["program"]) for n in run.raised("sample.pass_rate_low")
                  if n["facts"]["period"] == period}
        assert shown == raised, period
    assert run.raised("sample.pass_rate_low")


@pytest.mark.parametrize("rule, escalation", [("report.overdue", False), ("report.escalation", True)])
def test_reports_missing_at_the_due_are_the_notices(run, rule, escalation):
    """At a month's due (and at its escalation), the reporters shown 逾期未报 are exactly the
    report.overdue (report.escalation) notices of that month."""
    assert run.config.rules[rule].enabled
    compared = 0
    for period, at, rows in decided(run, "reports"):
        due = report_due(period, run.config.rules["report.reminder"].due_day, TZ)
        if (at > due) != escalation:
            continue
        missing = {(r.township, r.reporter) for r in rows if r.cells[period].status == "missing"}
        raised = {(n["township"], n["facts"]["reporter"]) for n in run.raised(rule) if n["facts"]["period"] == period}
        assert missing == raised, period
        compared += 1
    assert compared and run.raised(rule)


def test_campaigns_missed_are_the_notices(run):
    """When a holiday's window closes, the townships shown 未开展 are exactly the
    campaign.missed notices of that holiday."""
    assert run.config.rules["campaign.missed"].enabled
    compared = 0
    for _, at, rows in decided(run, "campaigns"):
        mine = [r for r in rows if r.date == at.date()]
        missed = {(r.township, r.holiday) for r in mine if r.status == "missed"}
        raised = {(n["township"], n["facts"]["holiday"]) for n in run.raised("campaign.missed")
                  if n["facts"]["date"] == at.date().isoformat()}
        assert missed == raised, at
        assert all(r.status in ("done", "missed") for r in mine)
        compared += len(mine)
    assert compared


def test_disposals_overdue_are_the_notices(run):
    """Final figures: an unqualified sample that arrived before its due, whose disposal (if
    any) arrived on time, is shown overdue (逾期未处置 / 逾期处置) exactly when a
    sample.disposal_overdue notice names it; and every such notice names a sample shown."""
    raised = {(n["township"], n["facts"]["sample_id"]) for n in run.raised("sample.disposal_overdue")}
    assert raised
    rows = {}
    for m in sorted({month_of(ev.time) for (kind, _, _), (ev, _) in run.arrived.items() if kind == "sampling_result"}):
        rows.update({(r.township, r.sample_id): r for r in run.engine.figures("disposals", m, run.until)})
    first_disposal: dict[tuple[str, str], tuple[Any, datetime]] = {}
    for (kind, _, _), (ev, clock) in run.arrived.items():
        key = (ev.township, getattr(ev, "sample_id", None))
        if kind == "disposal" and (key not in first_disposal or ev.time < first_disposal[key][0].time):
            first_disposal[key] = (ev, clock)
    compared = 0
    for key, r in rows.items():
        _, sample_clock = run.arrived[("sampling_result", *key)]
        disposal = first_disposal.get(key)
        on_time = disposal is None or disposal[1] == disposal[0].time
        if r.due > run.until or sample_clock >= r.due or not on_time:
            continue
        assert r.overdue is (key in raised), (key, r.status)
        compared += 1
    assert compared and raised <= set(rows)


def test_health_certificates_below_are_notices(run):
    """Each month: an entity shown below the health-certificate target had an
    inspection.health_cert_low notice that month; and, inspected once that month, it is shown
    below exactly when it had one."""
    assert run.config.rules["inspection.health_cert_low"].enabled
    inspected: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (kind, _, _), (ev, _) in run.arrived.items():
        if kind == "inspection" and ev.staff_total and ev.staff_with_health_cert is not None:
            inspected[(ev.township, month_of(ev.time))][ev.entity] += 1
    noticed: dict[tuple[str, str], set[str]] = defaultdict(set)
    for n in run.raised("inspection.health_cert_low"):
        ev, _ = run.arrived[("inspection", n["township"], n["facts"]["inspection_id"])]
        noticed[(n["township"], month_of(ev.time))].add(n["facts"]["entity"])
    assert noticed
    for month in sorted({m for _, m in inspected}):
        for r in run.engine.figures("health", month, run.until):
            low, had = set(r.low_entities), noticed.get((r.township, month), set())
            assert low <= had, (r.township, month)
            once = {e for e, n in inspected[(r.township, month)].items() if n == 1}
            assert low & once == had & once, (r.township, month)


def test_frequency_behind_cells_are_the_notices(run):
    """At each check date, the entities the 检查频次 figures show behind (per township × risk
    level) are exactly the inspection.frequency_due notices of that check."""
    assert run.config.rules["inspection.frequency_due"].enabled
    compared = 0
    for _, at, rows in decided(run, "frequency"):
        if not rows or rows[0].check_date != at.date():
            continue   # a check of another year than the figures' (none here: one year each)
        shown = Counter((r.township, r.risk_level, name) for r in rows for name in r.behind_entities)
        raised = Counter((n["township"], n["facts"]["risk_level"], n["facts"]["entity"])
                         for n in run.raised("inspection.frequency_due") if n["facts"]["check_date"] == at.date().isoformat())
        assert shown == raised, at
        assert sum(r.behind for r in rows) == sum(raised.values())
        assert all(r.required == 0 or r.entities for r in rows)
        compared += sum(raised.values())
    assert compared or not any(ev.type == "entity" for ev, _ in run.arrived.values())


def test_figures_are_the_service_journal_rebuilt(run):
    """A fresh engine fed the accepted events in arrival order shows the same figures (the
    tallies depend on what was accepted, not on the rules run beside them)."""
    bare = Engine(run.config, lambda *a: (), lambda n: None, families=())
    for ev in run.accepted:   # in arrival order
        bare.admit(ev)
    bare.finish(run.until)
    last = month_of(run.until - (run.until - run.start) / 2)
    for kind, period in (("pass_rate", last), ("health", last), ("disposals", last), ("reports", last),
                         ("campaigns", last[:4]), ("pace", last), ("frequency", last[:4])):
        assert bare.figures(kind, period, run.until) == run.engine.figures(kind, period, run.until), kind

