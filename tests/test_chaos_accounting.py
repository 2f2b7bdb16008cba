"""The chaos suite's bookkeeping (bench/chaos_parts.py, bench/chaos_kafka.py): a delivery the
catch-up holds counts only when the outbox holds it, so holding reminders never hides a loss."""
from __future__ import annotations

import importlib.util
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shian.rules.config import load
from shian.rules.notice import Notice, notice_id, notice_key

ROOT = Path(__file__).resolve().parents[1]
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=TZ)


def bench(name: str):
    if name not in sys.modules:
        sys.path.insert(0, str(ROOT / "bench"))
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


KEY = ("n1", "hh-fso", "email")


@pytest.mark.parametrize("held, mailed, in_outbox, lost, unexpected", [
    ("no", 1, False, False, False),              # mailed as expected
    ("no", 0, False, True, False),               # never mailed: lost
    ("no", 0, True, True, False),                # held although catch-up sends it: lost
    ("yes", 0, True, False, False),              # held as catch-up decides
    ("yes", 0, False, True, False),              # neither held nor mailed: lost
    ("yes", 1, True, False, True),               # held and mailed anyway: a message nobody expected
    ("yes", 1, False, True, True),               # mailed instead of held: lost as held, unexpected as mail
    ("maybe", 1, False, False, False),           # superseded or not in time: mailed is fine
    ("maybe", 0, True, False, False),            # … and so is held
    ("maybe", 0, False, True, False),            # but one of them
])
def test_a_delivery_counts_only_as_mailed_or_held_where_the_product_holds_it(held, mailed, in_outbox, lost,
                                                                             unexpected):
    """Lost is a delivery neither mailed nor held as decided; mail for a held one is unexpected."""
    tally = bench("chaos_parts").Tally()
    tally.expect(*KEY, held)
    if mailed:
        tally.got([KEY[0]], *KEY[1:])
    tally.saw_held([KEY] if in_outbox else [])
    assert (tally.lost() == [KEY]) is lost
    assert tally.delivered_notices() == (0 if lost else 1)
    assert (KEY in tally.unexpected()) is unexpected


def reminder(reporter: str, due: str) -> Notice:
    key = notice_key("report.reminder", "红河镇", reporter, "2026-11")
    return Notice(id=notice_id(key), rule="report.reminder", severity="info", level="town", township="红河镇",
                  recipients=("hh-fso",), title="月报提醒", at=datetime(2026, 11, 28, 9, tzinfo=TZ), due=None,
                  event_ids=(), key=key, facts={"reporter": reporter, "period": "2026-11", "due_date": due})


def overdue(reporter: str) -> Notice:
    key = notice_key("report.overdue", "红河镇", reporter, "2026-11")
    return Notice(id=notice_id(key), rule="report.overdue", severity="warning", level="town", township="红河镇",
                  recipients=("hh-fso",), title="月报逾期", at=datetime(2026, 12, 2, 0, tzinfo=TZ), due=None,
                  event_ids=(), key=key, facts={"reporter": reporter, "period": "2026-11"})


def test_expected_holds_are_the_catch_up_decision_held_always_or_by_what_is_stored():
    """A reminder whose date passed is held for sure; one superseded by a stored overdue notice
    may go either way; a reminder still ahead and alone is mailed."""
    config = load(ROOT / "examples" / "county.yaml")
    passed, superseded, ahead = reminder("红河村", "2026-11-30"), reminder("新寨村", "2026-12-20"), \
        reminder("坝心村", "2026-12-20")
    held = bench("chaos_kafka").held_by_catch_up(config, [passed, superseded, ahead, overdue("新寨村")], NOW,
                                                 timedelta(hours=2))
    assert held == {passed.id: "yes", superseded.id: "maybe"}
