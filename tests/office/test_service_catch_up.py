"""The embedded service started late: the example county's April backfilled on a wall clock
in December (``shian run --backfill`` as ``make demo`` does it), delivered to the file outbox
— what the offices receive is the catch-up of shian.notifiers.catchup, end to end."""
from __future__ import annotations

import asyncio
import email
import email.policy
import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from office_support import REPO, county, make_service  # noqa: F401  (a fixture)
from shian.notifiers.catchup import DEADLINES

TZ = ZoneInfo("Asia/Shanghai")
DECEMBER = datetime(2026, 12, 2, 10, 0, tzinfo=TZ)
ASKED = re.compile(r"于(\d{4})年(\d{1,2})月(\d{1,2})日前报送")


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def received(folder: Path) -> list[tuple[str, email.message.EmailMessage]]:
    """(department, message) for every .eml the file channel wrote."""
    return [(p.parent.name, email.message_from_bytes(p.read_bytes(), policy=email.policy.default))
            for p in sorted(folder.glob("*/*.eml"))]


def test_a_december_start_on_aprils_data_sends_one_summary_per_office_and_no_passed_date(make_service, tmp_path):
    """Each office: one 补发汇总 of its late notices; critical notices alone; every reminder
    held with its reason; no message asks a village to report by a date already passed."""
    data = county(notifiers={"outbox": "outbox.sqlite", "file": {"dir": "发件箱"}, "quiet_hours": False,
                             "group_wait_seconds": 30, "digest": None})
    clock = Clock(DECEMBER)
    svc = make_service(data, now=clock)
    for db in (svc.outbox.db, svc.store.db):  # no crash here: spare the disk its fsyncs
        db.execute("PRAGMA synchronous=OFF")
    svc.backfill([str(REPO / "examples" / "events.jsonl"), str(REPO / "examples" / "化验室抽检结果.xlsx")])
    for _ in range(5):
        asyncio.run(svc.dispatcher.step())
        clock.t += timedelta(seconds=30)
    assert svc.outbox.state_counts()["pending"] == 0
    notices = svc.outbox.notices()
    rows = {(n.id, d) for n in notices for d in n.recipients}
    reminders = {(n.id, d) for n in notices if n.rule in DEADLINES for d in n.recipients}
    held = [d for d in svc.outbox.deliveries(state="held")]
    assert {(d.notice_id, d.dept) for d in held} == reminders
    assert all(d.last_error.startswith("不发送：") for d in held)
    mail = received(tmp_path / "发件箱")
    summaries = Counter(dept for dept, m in mail if m["Subject"].startswith("【补发汇总】"))
    assert summaries and set(summaries.values()) == {1}
    critical = {n.id for n in notices if n.severity == "critical"}
    assert len(mail) == len(summaries) + len({(i, d) for i, d in rows if i in critical})
    got = Counter((i.strip(), dept) for dept, m in mail for i in str(m["X-Shian-Notice-Ids"]).split(","))
    assert got == Counter(rows - reminders), "every other row arrives once"
    for dept, m in mail:
        text = m.get_body(("plain",)).get_content()
        assert all(date(int(y), int(mo), int(d)) >= DECEMBER.date() for y, mo, d in ASKED.findall(text)), m["Subject"]
