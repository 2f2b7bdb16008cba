"""`make demo`: the embedded service backfills the example files on event time, then runs on the
wall clock. Every rule fires, whether the wall clock is just after the example month or months
later (today's demo), and the workbook's 台账 rows are checked from 1 July on."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from office_support import make_service  # noqa: F401  (a fixture)
from shian.rules.families import RULES
from test_examples import make_recipe

TZ = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parents[2]


def backfill_files() -> list[str]:
    words = make_recipe("demo")
    assert words[:1] == ["run"] and "--backfill" in words
    files = words[words.index("--backfill") + 1:]
    assert words[words.index("--config") + 1] == "examples/county.yaml" and files
    return [str(ROOT / f) for f in files]


@pytest.mark.parametrize("now", [datetime(2026, 5, 1, 8, 0, tzinfo=TZ), datetime(2026, 12, 2, 12, 0, tzinfo=TZ)])
def test_make_demo_fires_every_rule(make_service, now):
    """The demo's backfill (the Makefile's files) with the wall clock at ``now``: a notice of every rule."""
    svc = make_service(now=lambda: now)
    tally = svc.backfill(backfill_files())
    assert tally["rejected"] == 4 and tally["duplicate"] == 7
    fired = {n.rule for n in svc.outbox.notices()}
    assert sorted(set(RULES) - fired) == []


def test_the_register_sheet_is_checked_from_july(make_service):
    """On 1 July the businesses of the 台账 sheet (read after the 1 April check) are checked too:
    the 检查频次 figures' behind entities are that check's notices."""
    svc = make_service(now=lambda: datetime(2026, 7, 1, 12, 0, tzinfo=TZ))
    svc.backfill(backfill_files())
    july = [n for n in svc.outbox.notices() if n.rule == "inspection.frequency_due" and n.facts["check_date"] == "2026-07-01"]
    rows = svc.figures("frequency", "2026")
    assert rows[0].check_date.isoformat() == "2026-07-01"
    behind = sorted((r.township, r.risk_level, name) for r in rows for name in r.behind_entities)
    assert behind == sorted((n.township, n.facts["risk_level"], n.facts["entity"]) for n in july)
    assert len(july) > 30 and "佳和超市" not in {n.facts["entity"] for n in july}   # B: 1 by July, inspected 20 April
