"""The embedded service's core (no HTTP): journal, wall clock, recovery after a crash, the
drop folder, acks — each with a fake wall clock."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from office_support import county, make_service  # noqa: F401  (a fixture)
from shian.rules.timeutil import fmt

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 6, 2, 10, 0, tzinfo=TZ)


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def inspection(i: int, at: datetime, outcome: str = "限期整改", **kw) -> dict:
    ev = {"type": "inspection", "id": f"JC-{i}", "inspected_at": at.isoformat(), "township": "红河镇",
          "entity": f"商户{i}", "entity_type": "餐饮服务", "inspection_type": "日常检查", "outcome": outcome}
    if outcome == "限期整改":
        ev["rectify_by"] = (at + timedelta(days=3)).date().isoformat()
    ev.update(kw)
    return ev


def sample(i: int, at: datetime, entity: str = "老王蔬菜店", bad: bool = True) -> dict:
    return {"type": "sampling_result", "id": f"CJ-{i}", "program": "food_sampling", "township": "红河镇",
            "entity": entity, "category": "蔬菜", "food": "韭菜", "sampled_at": (at - timedelta(days=1)).isoformat(),
            "reported_at": at.isoformat(),
            "items": [{"item": "腐霉利", "value": 0.5 if bad else 0.1, "limit": 0.2, "unit": "mg/kg"}]}


def rules_in(svc) -> list[str]:
    return [n.rule for n in svc.outbox.notices()]


def test_an_accepted_event_is_in_the_journal_and_its_notice_in_the_outbox(make_service):
    svc = make_service(now=Clock(T0))
    out = svc.accept_object(sample(1, T0), "test")
    assert out.status == "accepted"
    assert [e["id"] for e in svc.store.events()] == ["CJ-1"]
    assert rules_in(svc) == ["sample.unqualified"]
    assert svc.accept_object(sample(1, T0), "test").status == "duplicate"
    assert len(svc.store.events()) == 1


def test_a_crash_loses_no_accepted_event_and_raises_no_notice_twice(make_service):
    """No snapshot after the first sample (a SIGKILL): the second service rebuilds the state
    from the journal, so the same entity's next sample is a repeat offence, and the first
    sample's notice is not added again."""
    clock = Clock(T0)
    first = make_service(now=clock)
    first.accept_object(sample(1, T0), "test")
    assert first.store.load_snapshot() is None
    clock.t = T0 + timedelta(hours=2)
    second = make_service(now=clock)  # same data folder, the first never closed
    assert len(second.outbox.notices()) == 1
    second.accept_object(sample(2, clock.t), "test")
    assert sorted(rules_in(second)) == ["entity.repeat_offender", "sample.unqualified", "sample.unqualified"]


def test_deadlines_missed_while_down_fire_once_after_the_restart(make_service):
    clock = Clock(T0)
    svc = make_service(now=clock)
    svc.accept_object(inspection(1, T0), "test")
    svc.tick()
    assert "inspection.rectification_overdue" not in rules_in(svc)
    clock.t = T0 + timedelta(days=10)  # down for ten days, rectify_by passed meanwhile
    again = make_service(now=clock)
    again.tick()
    assert rules_in(again).count("inspection.rectification_overdue") == 1
    third = make_service(now=clock)
    third.tick()
    assert rules_in(third).count("inspection.rectification_overdue") == 1


def test_backfill_runs_on_event_time_then_the_wall_clock_fires_what_it_passed(make_service, tmp_path: Path):
    import json

    events = tmp_path / "april.jsonl"
    events.write_text(json.dumps(inspection(1, datetime(2026, 4, 3, 9, 0, tzinfo=TZ)), ensure_ascii=False) + "\n",
                      encoding="utf-8")
    clock = Clock(datetime(2026, 4, 20, 12, 0, tzinfo=TZ))
    svc = make_service(now=clock)
    tally = svc.backfill([str(events)])
    assert tally["accepted"] == 1
    overdue = [n for n in svc.outbox.notices() if n.rule == "inspection.rectification_overdue"]
    assert [fmt(n.at) for n in overdue] == ["2026-04-07T00:00:00+08:00"]
    assert "report.reminder" not in rules_in(svc), "reminders are due on April 22, after the wall clock"
    clock.t = datetime(2026, 4, 22, 9, 0, tzinfo=TZ)
    svc.tick()
    reminders = [n for n in svc.outbox.notices() if n.rule == "report.reminder"]
    assert reminders and {fmt(n.at) for n in reminders} == {"2026-04-22T09:00:00+08:00"}
    assert svc.store.load_snapshot() is not None
    assert svc.backfill([str(events)])["duplicate"] == 1


def test_a_live_event_a_day_ahead_of_the_wall_clock_is_rejected_and_kept_as_a_reject(make_service):
    svc = make_service(now=Clock(T0))
    out = svc.accept_object(sample(1, T0 + timedelta(days=3)), "feed:lab", 7)
    assert out.status == "rejected" and "超前一天" in out.reason
    assert svc.store.events() == []
    assert svc.store.rejects()[0].source == "feed:lab" and svc.store.rejects()[0].line == "7"


def test_the_drop_folder_imports_files_and_moves_them_aside(make_service, tmp_path: Path):
    """A file with one good and one bad line: imported, moved to 已处理/ with its 拒收 list beside it."""
    import json
    import os
    import time

    svc = make_service(county(service={"listen": "127.0.0.1:0", "data_dir": "data", "drop_dir": "drop"}),
                       now=Clock(T0))
    drop = tmp_path / "drop"
    drop.mkdir()
    f = drop / "抽检.jsonl"
    f.write_text(json.dumps(sample(1, T0), ensure_ascii=False) + "\nnot json\n", encoding="utf-8")
    old = time.time() - 5
    os.utime(f, (old, old))
    assert asyncio.run(svc.scan_drop_folder()) == 1
    assert not f.exists()
    assert sorted(p.name[16:] for p in (drop / "已处理").iterdir()) == ["抽检.jsonl", "抽检.jsonl.拒收.xlsx"]
    assert [e["id"] for e in svc.store.events()] == ["CJ-1"]
    assert len(svc.store.rejects()) == 1


def test_only_a_recipient_department_can_acknowledge(make_service):
    svc = make_service(now=Clock(T0))
    svc.accept_object(sample(1, T0), "test")
    notice = svc.outbox.notices()[0]
    outsider = next(d for d in svc.config.departments if d not in notice.recipients)
    refused = svc.ack(notice.id, outsider)
    assert refused.status == "rejected" and "不是该通知的接收部门" in refused.reason
    done = svc.ack(notice.id, notice.recipients[0], "办结", "已下架")
    assert done.status == "accepted"
    acks = svc.store.events(types=["ack"])
    assert [(a["by"], a["action"], a["note"]) for a in acks] == [(notice.recipients[0], "办结", "已下架")]


def test_an_ack_in_the_second_of_its_notice_is_taken_and_deadlines_of_a_second_share_it(make_service):
    """The rules run on the wall clock in whole seconds: an ack (its time written in whole
    seconds) in the same second as its notice is not earlier than the notice, and the
    deadlines the samples of one second set share one time."""
    clock = Clock(T0 + timedelta(microseconds=400_000))
    svc = make_service(now=clock)
    for i in range(3):
        svc.accept_object(sample(i, T0, entity=f"商户{i}"), "test")
        clock.t += timedelta(microseconds=100_000)
    notice = svc.outbox.notices()[0]
    assert notice.at == T0 and svc.runner.engine.clock == T0
    assert svc.ack(notice.id, notice.recipients[0]).status == "accepted"
    times = [at for at, _, _ in svc.runner.engine._timers.entries()]
    assert len(times) >= 3 and len(set(times)) < len(times)


def test_a_backfills_notices_are_due_at_once_not_after_a_group_wait(make_service, tmp_path: Path):
    """They all arrive together: a group has nothing more to wait for."""
    import json

    data = county(notifiers={"outbox": "outbox.sqlite", "file": {"dir": "out"}, "quiet_hours": False,
                             "group_wait_seconds": 30, "digest": None})
    events = tmp_path / "april.jsonl"
    events.write_text(json.dumps(sample(1, datetime(2026, 4, 3, 9, 0, tzinfo=TZ)), ensure_ascii=False) + "\n",
                      encoding="utf-8")
    clock = Clock(datetime(2026, 4, 3, 12, 0, tzinfo=TZ))
    svc = make_service(data, now=clock)
    svc.backfill([str(events)])
    assert svc.outbox.due(clock.t), "the backfill's notices wait for nothing"
    svc.accept_object(sample(2, clock.t, entity="另一家"), "test")
    due_ids = {n.id for b in svc.outbox.due(clock.t) for n in b.notices}
    assert not any("CJ-2" in n.event_ids for n in svc.outbox.notices() if n.id in due_ids), \
        "a live notice still waits its group's 30 s"


def test_a_rule_that_raises_sets_its_event_aside_and_later_events_are_unaffected(make_service, monkeypatch):
    """A failing handler (injected) rejects that one event with a reason; the service goes on
    accepting and raising notices for the events after it."""
    from shian.rules.families.incidents import Incidents

    original = Incidents.handlers

    def handlers(self):
        real = original(self)
        on_incident = real["incident"]

        def failing(ev, now):
            if ev.id == "BOOM":
                raise ZeroDivisionError("injected")
            on_incident(ev, now)

        return {**real, "incident": failing}

    monkeypatch.setattr(Incidents, "handlers", handlers)
    svc = make_service()
    boom = svc.accept_object({"type": "incident", "id": "BOOM", "township": "红河镇", "kind": "食物中毒",
                              "occurred_at": "2026-04-01T08:00:00", "reported_at": "2026-04-01T09:00:00"}, "test")
    after = svc.accept_object({"type": "incident", "id": "AFTER", "township": "红河镇", "kind": "食物中毒",
                               "occurred_at": "2026-04-01T10:00:00", "reported_at": "2026-04-01T11:00:00"}, "test")
    assert boom.status == "rejected" and "处理失败" in boom.reason and "ZeroDivisionError" in boom.reason
    assert after.status == "accepted"
    assert [n.event_ids for n in svc.outbox.notices() if n.rule == "incident.reported"] == [("AFTER",)]
    assert [r.reason for r in svc.store.rejects()] == [boom.reason]
    assert [e["id"] for e in svc.store.events(["incident"])] == ["AFTER"], "the failed event is not journalled"


def test_a_posted_object_with_a_lone_surrogate_is_rejected_and_kept_among_the_rejects(make_service):
    """A JSON body's string may hold "\\ud800" once parsed: the line is refused with its reason
    and its text stored (shown as \\ud800), never a failure of the store."""
    import asyncio
    import json

    svc = make_service()
    body = json.dumps({"type": "incident", "id": "SUR-1", "township": "红河镇", "kind": "食物中毒",
                       "occurred_at": "2026-04-01T08:00:00", "reported_at": "2026-04-01T09:00:00",
                       "entity": "\ud800"}).encode()
    [outcome] = asyncio.run(svc.accept_file(body, "body.json", "test"))
    assert outcome.status == "rejected" and "代理项" in outcome.reason
    [reject] = svc.store.rejects()
    assert "\\ud800" in reject.raw


# -- one failure never poisons what comes after ---------------------------------------------

def _drop(folder: Path, name: str, lines: list[str]) -> Path:
    import os
    import time

    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    old = time.time() - 5
    os.utime(path, (old, old))
    return path


def test_a_drop_folder_file_that_fails_is_moved_aside_with_its_reasons_and_the_others_go_on(make_service, tmp_path,
                                                                                            monkeypatch):
    """A 100,000-deep nested line is rejected and the file moved to 已处理/; a file whose reading
    raises half-way (injected) is moved too, its reason among the rejects, and the files after
    it are imported; a file without one good line goes to 无法读取/; a second scan reads nothing."""
    import json

    import shian.streams.service as service_module

    svc = make_service(county(service={"listen": "127.0.0.1:0", "data_dir": "data", "drop_dir": "drop"}),
                       now=Clock(T0))
    drop = tmp_path / "drop"
    ev = [json.dumps(sample(i, T0), ensure_ascii=False) for i in range(6)]
    _drop(drop, "a-deep.jsonl", [ev[1], '{"a":' * 100_000 + "1" + "}" * 100_000, ev[2]])
    _drop(drop, "b-breaks.jsonl", [ev[3], ev[4]])
    _drop(drop, "c-bad.jsonl", ["not json", "[" * 100_000])
    _drop(drop, "d-good.jsonl", [ev[5]])
    real = service_module.read_path

    def breaking(path):
        records = real(path)
        if path.name.startswith("b-"):
            yield next(records)
            raise RuntimeError("injected")
        yield from records

    monkeypatch.setattr(service_module, "read_path", breaking)
    assert asyncio.run(svc.scan_drop_folder()) == 4
    assert sorted(p.name[16:] for p in (drop / "已处理").iterdir()) == [
        "a-deep.jsonl", "a-deep.jsonl.拒收.xlsx", "b-breaks.jsonl", "b-breaks.jsonl.拒收.xlsx", "d-good.jsonl"]
    assert sorted(p.name[16:] for p in (drop / "无法读取").iterdir()) == ["c-bad.jsonl", "c-bad.jsonl.拒收.xlsx"]
    assert [e["id"] for e in svc.store.events()] == ["CJ-1", "CJ-2", "CJ-3", "CJ-5"]
    reasons = {(Path(r.source).name, r.reason) for r in svc.store.rejects()}
    assert ("a-deep.jsonl", "JSON 嵌套过深：事件的字段不会嵌套几百层") in reasons
    assert ("b-breaks.jsonl", "已处理 1 行，其后无法读取文件（RuntimeError：injected）") in reasons
    assert sum(name == "c-bad.jsonl" for name, _ in reasons) == 2
    assert asyncio.run(svc.scan_drop_folder()) == 0


def test_a_drop_folder_file_that_cannot_be_moved_aside_is_not_read_again(make_service, tmp_path):
    """A name too long for the time prefix is moved under a short one; a file whose target
    folder cannot be made (a plain file named 无法读取) stays, and is not read again."""
    svc = make_service(county(service={"listen": "127.0.0.1:0", "data_dir": "data", "drop_dir": "drop"}),
                       now=Clock(T0))
    drop = tmp_path / "drop"
    _drop(drop, "抽" * 80 + ".jsonl", ["not json"])  # 246 bytes: with the prefix over the 255 a name may have
    (drop / "无法读取").mkdir()
    assert asyncio.run(svc.scan_drop_folder()) == 1
    assert sorted(p.suffix for p in (drop / "无法读取").iterdir()) == [".jsonl", ".xlsx"]
    (drop / "无法读取").rename(drop / "old")
    (drop / "无法读取").write_text("in the way")
    stuck = _drop(drop, "stuck.jsonl", ["not json"])
    for _ in range(3):
        asyncio.run(svc.scan_drop_folder())
    assert stuck.exists() and len(svc.store.rejects()) == 2, "read once, then left alone"


def test_notices_the_outbox_could_not_take_are_raised_again_after_a_restart(make_service):
    """The outbox refuses writes (injected): the event is accepted (journalled), its notice
    waits, no snapshot is saved over it at the stop, so the next start raises it again."""
    import sqlite3

    clock = Clock(T0)
    svc = make_service(now=clock)

    def full(*args, **kw):
        raise sqlite3.OperationalError("database or disk is full")

    svc.outbox.add_all = full
    assert svc.accept_object(sample(1, T0), "test").status == "accepted"
    assert "outbox" in svc.problems() and "1 条通知等待写入" in svc.problems()["outbox"]
    asyncio.run(svc.close())
    assert svc.store.path.exists()
    again = make_service(now=clock)
    assert rules_in(again) == ["sample.unqualified"]
    assert again.accept_object(sample(1, T0), "test").status == "duplicate"


def test_an_outbox_that_cannot_be_written_is_tried_again_once_a_second_not_at_every_event(make_service):
    """With the outbox refusing, the notices that wait are written again at most every
    OUTBOX_RETRY_SECONDS: a burst of events does not try (and rewrite) them all each time."""
    import sqlite3

    svc = make_service(now=Clock(T0))
    tries: list[int] = []

    def full(notices, *args, **kw):
        tries.append(len(notices))
        raise sqlite3.OperationalError("database or disk is full")

    svc.outbox.add_all = full
    for i in range(50):
        assert svc.accept_object(sample(i, T0), "test").status == "accepted"
    assert len(tries) <= 2, f"tried {len(tries)} times for 50 events"
    assert "条通知等待写入" in svc.problems()["outbox"]


def test_a_stop_half_way_through_a_dropped_file_leaves_it_to_be_read_again_whole(make_service, tmp_path):
    """Stopping while a dropped file is imported: the file stays where it is; read at the next
    start, the lines taken before are duplicates and the rest accepted, then it is moved."""
    import json

    svc = make_service(county(service={"listen": "127.0.0.1:0", "data_dir": "data", "drop_dir": "drop"}),
                       now=Clock(T0))
    drop = tmp_path / "drop"
    big = _drop(drop, "big.jsonl", [json.dumps(sample(i, T0, bad=False), ensure_ascii=False) for i in range(40)])
    svc._stop = asyncio.Event()
    accept = svc.accept_records

    def then_stop(records, **kw):
        svc._stop.set()
        return accept(records, **kw)

    svc.accept_records = then_stop
    assert asyncio.run(svc.scan_drop_folder()) == 0
    taken = len(svc.store.events())
    assert big.exists() and 0 < taken < 40
    svc._stop.clear()
    svc.accept_records = accept
    assert asyncio.run(svc.scan_drop_folder()) == 1
    assert not big.exists() and len(svc.store.events()) == 40 and svc.metrics.duplicates == taken


def test_a_slow_snapshot_spaces_out_the_next_so_pickling_stays_a_small_share_of_the_time(make_service):
    """Snapshots come every ``snapshot_every`` events, but after one that took d seconds the
    next waits d / SNAPSHOT_SHARE (a large state pickled per 10,000 events would stall the
    requests); a clean stop snapshots all the same."""
    import sqlite3

    clock = Clock(T0)
    svc = make_service(county(service={"listen": "127.0.0.1:0", "data_dir": "data", "snapshot_every": 2}), now=clock)
    for cost, events, snapshotted in ((0.0, 2, True), (3600.0, 4, False), (0.0, 2, True)):
        svc._snapshot_cost = cost
        before = svc.store.load_snapshot()
        for _ in range(events):
            i = len(svc.store.events()) + 1
            assert svc.accept_object(sample(i, T0, entity=f"商户{i}", bad=False), "test").status == "accepted"
        after = svc.store.load_snapshot()
        assert (after is not None and (before is None or after[0] > before[0])) == snapshotted, cost
    svc._snapshot_cost = 3600.0
    svc.accept_object(sample(99, T0, entity="商户99", bad=False), "test")
    asyncio.run(svc.close())
    db = sqlite3.connect(svc.store.path)
    assert db.execute("SELECT seq FROM snapshot").fetchone() == db.execute("SELECT MAX(seq) FROM events").fetchone()
    db.close()


def test_the_rules_state_is_out_of_the_collectors_way_after_the_start_and_each_snapshot(make_service):
    """The engine's timers (its long-lived state) are frozen out of the cyclic collector's
    generations at the start and again, with what came since, at each snapshot: a full
    collection does not walk the rules' state on the event loop."""
    import gc

    def collected(obj: object) -> bool:
        return any(o is obj for o in gc.get_objects())

    svc = make_service(now=Clock(T0))
    assert not collected(svc.runner.engine._timers)
    svc.accept_object(sample(1, T0), "test")
    timer = next(slot for slot in svc.runner.engine._timers._due.values()   # the deadlines of one time
                 if any(isinstance(arg, tuple) and arg[1:2] == ("CJ-1",) for arg in slot))
    assert collected(timer)
    svc.snapshot()
    assert not collected(timer) and not collected(svc.runner.engine._timers)
