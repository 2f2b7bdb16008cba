"""The fault-injection scenarios on the embedded service, ``shian run`` (see ``bench/chaos.py``):
SMTP down, robots refusing, SIGKILL under load, disk full, a corrupt snapshot."""
from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from chaos_parts import (
    DING_SECRET, TOWNSHIP_OFFICE, Mailbox, RobotServer, Row, ShianRun, SmtpSink, Tally, base_config, db_rows,
    delivery_config, integrity, sample, say, unqualified_id, wait_for,
)

CJK = re.compile(r"[\u4e00-\u9fff]")
DING_ENV = "SHIAN_CHAOS_DING_SECRET"


def events_for(tag: str, n: int, every: int, *, category: str = "蔬菜") -> list[dict[str, Any]]:
    """``n`` sampling results over both townships, one in ``every`` 不合格."""
    return [sample(tag, i, township=("红河镇", "板桥镇")[i % 2], category=category, bad=i % every == 0)
            for i in range(n)]


def expect(tally: Tally, events: list[dict[str, Any]], channels: dict[str, list[str]]) -> None:
    """The deliveries the events must give: ``sample.unqualified`` for each 不合格 one, to the
    routed department (蔬菜 in 红河镇) and the town office, on each of their channels."""
    for ev in events:
        if ev["items"][0]["value"] <= ev["items"][0]["limit"]:
            continue
        depts = {TOWNSHIP_OFFICE[ev["township"]]}
        if ev["township"] == "红河镇" and ev["category"] == "蔬菜":
            depts.add("hh-agri")
        for dept in depts:
            for channel in channels.get(dept, ["email"]):
                tally.expect(unqualified_id(ev), dept, channel)


def post_all(run: ShianRun, events: list[dict[str, Any]], size: int, acknowledged: set[str],
             *, retry_for: float = 0.0) -> list[tuple[int | None, dict[str, Any]]]:
    """Posts ``events`` in batches; a batch without an answer is sent again (as a feed would)
    for up to ``retry_for`` seconds. Returns the failed answers seen."""
    failures = []
    for start in range(0, len(events), size):
        batch = events[start:start + size]
        deadline = time.monotonic() + retry_for
        while True:
            status, answer = run.post(batch)
            if status == 200:
                acknowledged.update(r["id"] for r in answer["results"] if r["status"] in ("accepted", "duplicate"))
                break
            failures.append((status, answer))
            if time.monotonic() > deadline:
                break
            wait_for(lambda: run.health(timeout=2)[0] is not None, 60, 0.2)  # whoever killed it restarts it
    return failures


def settle(run: ShianRun, mailbox_count: Any, timeout: float) -> bool:
    """Waits until the outbox has nothing pending and the mailbox has stopped growing."""
    ok = wait_for(run.settled, timeout, poll=0.5)
    last = -1
    while mailbox_count() != last:
        last = mailbox_count()
        time.sleep(1.0)
    return bool(ok)


def journal_ids(path: Path) -> list[str]:
    return db_rows(path, "SELECT id FROM events", lambda rows: [r[0] for r in rows])


# -- 1. SMTP down ------------------------------------------------------------------------------

def smtp_down(work: Path, quick: bool) -> Row:
    row = Row("1. SMTP down for a while, then back")
    tally = Tally()
    sink = SmtpSink(Mailbox(tally)).up()
    run = ShianRun(work, base_config(notifiers=delivery_config(smtp=sink.smtp_config())))
    events = events_for("S1", 80 if quick else 400, 4)
    expect(tally, events, {})
    half = len(events) // 2
    acknowledged: set[str] = set()
    try:
        row.require("shian run started", run.up(), run.log_text()[-500:])
        post_all(run, events[:half], 20, acknowledged)
        wait_for(lambda: sink.mailbox.count > 0, 30)
        sink.down()
        say(f"  SMTP server down after {sink.mailbox.count} messages")
        post_all(run, events[half:], 20, acknowledged)
        time.sleep(5 if quick else 12)
        errors = db_rows(run.outbox, "SELECT MAX(attempts), COUNT(*), MIN(last_error) FROM deliveries"
                         " WHERE state = 'pending' AND attempts > 0", list)
        attempts, waiting, error = errors[0] if errors else (None, 0, None)
        row.check("retried while down", waiting and attempts and attempts >= 2,
                  f"{waiting} deliveries waiting, up to {attempts} attempts, error “{error}”")
        row.check("the retry reason is in Chinese", error and CJK.search(error), str(error))
        sink.up()
        say("  SMTP server back")
        row.check("outbox drained after the server returned", settle(run, lambda: sink.mailbox.count, 120),
                  str(run.outbox_states()))
        row.check("every event acknowledged", len(acknowledged) == len(events), f"{len(acknowledged)}/{len(events)}")
        row.check("clean stop", run.stop() == 0)
    finally:
        run.stop()
        sink.down()
    row.events = len(events)
    row.from_tally(tally, documented=0)
    return row


# -- 2. robots refusing ---------------------------------------------------------------------

ROBOTS = {"hh-fso": ["wecom"], "bq-fso": ["wecom"], "hh-agri": ["dingtalk"]}


def robot_config(robots: RobotServer) -> dict[str, Any]:
    data = base_config(notifiers=delivery_config())
    depts = data["departments"]
    for dept, (channel,) in ROBOTS.items():
        contact: dict[str, Any] = {"webhook": robots.url(channel, dept)}
        if channel == "dingtalk":
            contact["secret_env"] = DING_ENV
        depts[dept] = {**depts[dept], channel: contact}
    return data


def backoff_gaps(robots: RobotServer) -> dict[str, float]:
    """The shortest wait before the next attempt of one message, after each kind of bad answer."""
    by_message: dict[tuple, list] = defaultdict(list)
    for h in robots.hits:
        by_message[(h.channel, h.dept, h.ids)].append(h)
    gaps: dict[str, float] = {}
    for hits in by_message.values():
        for a, b in zip(hits, hits[1:]):
            kind = "errcode" if a.errcode not in (None, 0) else f"HTTP {a.status}" if a.errcode is None else None
            if kind:
                gaps[kind] = min(gaps.get(kind, 1e9), b.at - a.at)
    return gaps


def robots_refusing(work: Path, quick: bool) -> Row:
    import os

    row = Row("2. robots answer 5xx, 429, errcode≠0, then OK")
    tally = Tally()
    robots = RobotServer(tally).start()
    os.environ[DING_ENV] = DING_SECRET
    run = ShianRun(work, robot_config(robots))
    events = events_for("S2", 30 if quick else 60, 3)
    expect(tally, events, ROBOTS)
    acknowledged: set[str] = set()
    try:
        robots.bad.set()
        row.require("shian run started", run.up(), run.log_text()[-500:])
        post_all(run, events, 10, acknowledged)
        enough = lambda: all(v >= 2 for v in robots.bad_answers().values()) and len(robots.bad_answers()) == 6
        row.check("every kind of bad answer was given", wait_for(enough, 60, 0.5), str(dict(robots.bad_answers())))
        robots.bad.clear()
        say(f"  robots answer OK from now on; bad answers so far {dict(robots.bad_answers())}")
        row.check("outbox drained once the robots answered OK", settle(run, lambda: len(robots.hits), 240),
                  str(run.outbox_states()))
        gaps = backoff_gaps(robots)
        row.check("backoff after 5xx / 429 (first_seconds 1 s, equal jitter: ≥ 0.5 s)",
                  all(v >= 0.45 for k, v in gaps.items() if k.startswith("HTTP")), _gaps(gaps))
        row.check("errcode 45009 / 130101 waits the robot's minute", gaps.get("errcode", 0) >= 59, _gaps(gaps))
        row.check("DingTalk signature valid on every request", not any(h.errcode == 310000 for h in robots.hits))
        row.check("clean stop", run.stop() == 0)
    finally:
        run.stop()
        robots.stop()
    row.events = len(events)
    row.from_tally(tally, documented=0)
    row.note(f"bad answers given: {dict(robots.bad_answers())}; shortest waits after them: {_gaps(gaps)}")
    return row


def _gaps(gaps: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in sorted(gaps.items())) or "none"


# -- 5. shian run SIGKILLed under load -------------------------------------------------------

def run_killed(work: Path, quick: bool) -> Row:
    row = Row("5. shian run SIGKILLed 3× during the HTTP stream")
    tally = Tally()
    sink = SmtpSink(Mailbox(tally)).up()
    run = ShianRun(work, base_config(notifiers=delivery_config(smtp=sink.smtp_config())))
    n = 10_000 if quick else 100_000
    events = events_for("S5", n, 20, category="粮食")
    expect(tally, events, {})
    acknowledged: set[str] = set()
    kills: list[str] = []
    try:
        row.require("shian run started", run.up(), run.log_text()[-500:])
        killer = threading.Thread(target=_killer, args=(run, acknowledged, n, kills), daemon=True)
        t0 = time.monotonic()
        killer.start()
        post_all(run, events, 250, acknowledged, retry_for=120)
        killer.join(5)
        posted = time.monotonic() - t0
        row.note(f"{n} events posted in {posted:.0f} s ({n / posted:.0f}/s), {run.starts - 1} restarts; "
                 + "; ".join(kills))
        row.check("three kills landed", len(kills) == 3, f"{len(kills)}")
        row.check("outbox drained", settle(run, lambda: sink.mailbox.count, 600), str(run.outbox_states()))
        row.check("clean stop", run.stop() == 0)
    finally:
        run.stop()
        sink.down()
    journal = journal_ids(run.data_dir / "events.sqlite")
    row.check("every acknowledged event in the journal, once", set(journal) >= acknowledged and len(journal) == len(set(journal)),
              f"{len(acknowledged)} acknowledged, {len(journal)} journal rows, {len(acknowledged - set(journal))} missing")
    row.check("every event acknowledged (resent after a kill)", len(acknowledged) == n, f"{len(acknowledged)}/{n}")
    outbox = set(db_rows(run.outbox, "SELECT id FROM notices", lambda r: [x[0] for x in r]))
    row.check("the outbox holds exactly the expected notices", outbox == set(tally.expected),
              f"{len(outbox)} stored, {len(set(tally.expected) - outbox)} missing, {len(outbox - set(tally.expected))} extra")
    row.events = n
    row.from_tally(tally, documented=len(kills))  # one message in flight per kill (one SMTP channel)
    return row


def _killer(run: ShianRun, acknowledged: set[str], n: int, kills: list[str]) -> None:
    for share in (0.25, 0.5, 0.75):
        if not wait_for(lambda: len(acknowledged) >= share * n, 1800, 0.05):
            return
        t = time.monotonic()
        run.kill()
        run.start()
        came = run.up(timeout=120)
        kills.append(f"kill at {len(acknowledged)} acknowledged, back in {time.monotonic() - t:.1f} s"
                     + ("" if came else " (NOT back)"))
        say(f"  {kills[-1]}")


# -- 6. disk full ----------------------------------------------------------------------------

def mount_tmpfs(path: Path, size: str) -> str | None:
    """Mounts a tmpfs (None) or says why it could not."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip() or f"mount exit {done.returncode}")


def disk_full(work: Path, quick: bool, under: str) -> Row:
    row = Row(f"6{'a' if under == 'outbox' else 'b'}. disk full under the {under}")
    mnt = work / "tmpfs"
    problem = mount_tmpfs(mnt, "2m")
    if problem is not None:
        row.skipped = "needs root for tmpfs"
        row.note(problem)
        return row
    try:
        _disk_full(work, mnt, under, row, quick)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
    return row


def _disk_full(work: Path, mnt: Path, under: str, row: Row, quick: bool) -> None:  # long: one story
    tally = Tally()
    sink = SmtpSink(Mailbox(tally)).up()
    notifiers = delivery_config(smtp=sink.smtp_config())
    service: dict[str, Any] = {}
    if under == "outbox":
        notifiers["outbox"] = str(mnt / "outbox.sqlite")
    else:
        service["data_dir"] = str(mnt / "data")
    run = ShianRun(work, base_config(notifiers=notifiers, service=service))
    outbox_path = Path(notifiers["outbox"]) if under == "outbox" else work / "outbox.sqlite"
    journal_path = (mnt / "data" if under == "journal" else work / "data") / "events.sqlite"
    events = events_for(f"S6{under[0]}", 4000, 2)
    acknowledged: set[str] = set()
    sent: list[dict[str, Any]] = []
    full_answers: list[tuple[int | None, dict[str, Any]]] = []
    try:
        row.require("shian run started", run.up(), run.log_text()[-500:])
        for start in range(0, len(events), 25):
            batch = events[start:start + 25]
            sent += batch
            status, answer = run.post(batch)
            if status == 200:
                acknowledged.update(r["id"] for r in answer["results"] if r["status"] in ("accepted", "duplicate"))
                if any(r["status"] == "rejected" for r in answer["results"]):
                    full_answers.append((status, answer))
            else:
                full_answers.append((status, answer))
            if under == "outbox" and not full_answers and run.health()[0] == 503:
                full_answers.append((status, answer))  # the outbox is full; events are still journalled
            if len(full_answers) >= 3:
                break
        row.check("the disk filled up", full_answers, f"after {len(sent)} events")
        status, answer = full_answers[0] if full_answers else (None, {})
        text = str(answer)[:300]
        row.note(f"answer while full: HTTP {status} {text}")
        if under == "journal":  # each line its own answer: the ones not journalled refused, in Chinese
            reasons = [r.get("reason") or "" for r in answer.get("results", []) if r.get("status") == "rejected"]
            row.check("lines not journalled refused with a Chinese reason (or 503)",
                      (status == 503 and CJK.search(text)) or
                      (status == 200 and reasons and all(CJK.search(x) for x in reasons)), f"HTTP {status}")
        else:  # the journal still takes events; the notices wait for the outbox (/health says so)
            row.check("events still accepted while the outbox is full", status == 200, f"HTTP {status}")
        h_status, h_body = run.health()
        row.note(f"/health while full: HTTP {h_status} {str(h_body)[:200]}")
        row.check("/health unhealthy while full", h_status == 503, f"HTTP {h_status}")
        row.note(f"log lines about the disk: {_disk_lines(run.log_text()) or 'none in Chinese'}")
        remount = subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], capture_output=True, text=True)
        row.check("tmpfs grown to 64 MB", remount.returncode == 0, remount.stderr.strip())
        say("  space is back")
        more = events[len(sent):len(sent) + 100]
        failures = post_all(run, sent + more, 25, acknowledged, retry_for=30)
        sent += more
        row.check("accepted again once space returned", not failures, f"{len(failures)} failed posts: {str(failures[:1])[:200]}")
        row.check("outbox drained", settle(run, lambda: sink.mailbox.count, 120), str(run.outbox_states()))
        row.check("clean stop", run.stop() == 0, run.log_text()[-300:] if run.proc and run.proc.returncode else "")
        for name, path in (("journal", journal_path), ("outbox", outbox_path)):
            result = integrity(path)
            row.check(f"{name} passes PRAGMA integrity_check", result == "ok", result[:200])
        journal = set(journal_ids(journal_path))
        row.check("every acknowledged event in the journal", acknowledged <= journal,
                  f"{len(acknowledged)} acknowledged, {len(acknowledged - journal)} missing from the journal")
        row.check("restart after the stop", run.up(), run.log_text()[-300:])
        status, answer = run.post(sent)
        again = {r["status"] for r in answer.get("results", [])} if status == 200 else {f"HTTP {status}"}
        row.check("after a restart every event sent is a duplicate", again == {"duplicate"},
                  f"{sum(r['status'] == 'accepted' for r in answer.get('results', []))} accepted anew")
        settle(run, lambda: sink.mailbox.count, 60)
    finally:
        run.stop()
        sink.down()
    expect(tally, sent, {})
    row.events = len(sent)
    row.from_tally(tally, documented=0)


def _disk_lines(log: str) -> str:
    lines = [ln.strip()[:160] for ln in log.splitlines() if ("磁盘" in ln or "空间" in ln) and CJK.search(ln)]
    return " | ".join(lines[:2])


# -- 7a. corrupt snapshot of shian run ----------------------------------------------------------

def corruptions(blob: bytes) -> dict[str, bytes]:
    """The damaged versions of a snapshot blob the suite tries."""
    def flip(pos: int) -> bytes:
        b = bytearray(blob)
        b[pos] ^= 0x10
        return bytes(b)

    flips = {f"bit flipped at {k}/8": flip(len(blob) * k // 8) for k in range(1, 8)}
    return {"truncated to half": blob[:len(blob) // 2], "truncated by 1 byte": blob[:-1],
            "bit flipped in the header": flip(3), **flips, "bit flipped near the end": flip(len(blob) - 20),
            "emptied": b""}


def set_snapshot(path: Path, blob: bytes | None) -> None:
    db = sqlite3.connect(path)
    try:
        if blob is None:
            db.execute("DELETE FROM snapshot")
        else:
            db.execute("UPDATE snapshot SET blob = ?", (blob,))
        db.commit()
    finally:
        db.close()


def _start_on(run: ShianRun, events: list[dict[str, Any]]) -> tuple[str, str]:
    """Starts ``shian run`` on a damaged snapshot: "exit N: reason" when it refused, else
    what it did with events it had already accepted (it is stopped again)."""
    mark = len(run.log_text())
    proc = run.start()
    try:
        code = proc.wait(60)
    except subprocess.TimeoutExpired:
        code = None
    said = run.log_text()[mark:]
    if code is None:
        status, answer = run.post(events)
        fresh = sum(r["status"] == "accepted" for r in answer.get("results", []))
        run.stop()
        return f"STARTED on it; {fresh} of {len(events)} earlier events taken as new", said
    reason = next((ln for ln in reversed(said.splitlines()) if "快照" in ln and "raise " not in ln), "")
    if code == 0 or not CJK.search(reason):
        return f"STARTED and exited {code} without a reason", said
    return f"exit {code}: {reason.strip()[:140]}", said


def corrupt_run_snapshot(work: Path, quick: bool) -> Row:  # long: one story, told in order
    row = Row("7a. corrupt snapshot of shian run")
    tally = Tally()
    sink = SmtpSink(Mailbox(tally)).up()
    run = ShianRun(work, base_config(notifiers=delivery_config(smtp=sink.smtp_config())))
    events = events_for("S7", 200, 4)
    expect(tally, events, {})
    acknowledged: set[str] = set()
    journal = run.data_dir / "events.sqlite"
    try:
        row.require("shian run started", run.up(), run.log_text()[-500:])
        post_all(run, events, 50, acknowledged)
        settle(run, lambda: sink.mailbox.count, 60)
        row.check("clean stop (writes the snapshot)", run.stop() == 0)
        pristine = work / "events.pristine.sqlite"
        shutil.copy(journal, pristine)
        blob = db_rows(journal, "SELECT blob FROM snapshot", lambda r: bytes(r[0][0]) if r else b"")
        row.check("a snapshot was written", blob, f"{len(blob)} bytes")
        refused, silent, traced = [], [], []
        for name, bad in corruptions(blob).items():
            shutil.copy(pristine, journal)
            set_snapshot(journal, bad)
            outcome, said = _start_on(run, events)
            (refused if outcome.startswith("exit") else silent).append(f"{name}: {outcome}")
            if "Traceback" in said:
                traced.append(name)
        for line in refused + silent:
            row.note(line)
        row.check("every damaged snapshot refused (non-zero exit, Chinese reason)", not silent, "; ".join(silent))
        row.check("the refusal is a message, not a traceback", not traced, "traceback for " + ", ".join(traced))
        shutil.copy(pristine, journal)
        set_snapshot(journal, corruptions(blob)["truncated to half"])
        set_snapshot(journal, None)  # the README's way out: the journal is run again
        before = sink.mailbox.count
        row.check("started again without the snapshot", run.up(), run.log_text()[-300:])
        status, answer = run.post(events)
        fresh = sum(r["status"] == "accepted" for r in answer.get("results", [])) if status == 200 else None
        row.check("the journal brought the state back (resent events are duplicates)", fresh == 0, f"{fresh} accepted anew")
        settle(run, lambda: sink.mailbox.count, 30)
        row.check("no message sent again", sink.mailbox.count == before, f"{sink.mailbox.count - before} new")
        row.check("clean stop", run.stop() == 0)
    finally:
        run.stop()
        sink.down()
    row.events = len(events)
    row.from_tally(tally, documented=0)
    return row


def disk_full_outbox(work: Path, quick: bool) -> Row:
    return disk_full(work, quick, "outbox")


def disk_full_journal(work: Path, quick: bool) -> Row:
    return disk_full(work, quick, "journal")
