"""``shian run`` stopped with SIGTERM while busy — a batch of 50,000 events being accepted, a
delivery queue waiting on an SMTP server that stalls — exits within 10 s; every line of the
batch has an answer, and exactly the lines answered accepted are in the journal, which the
next start runs again (they are then duplicates)."""
from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

import yaml
from aiosmtpd.controller import Controller

from office_support import county
from shian.notifiers.settings import parse as delivery_settings
from shian.office.settings import parse as service_settings
from shian.rules.config import load
from shian.streams.service import Service
from test_run_kill import TZ, free_port, start, wait_up  # noqa: F401  (TZ: the samples' zone)

TOKEN = "stop-test-feed-token"
EVENTS = 50_000


class StallingInbox:
    """An SMTP server that takes the connection, then holds every message until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        self.entered.set()
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        return "250 OK"


def sample(i: int) -> dict:
    value = 0.5 if i % 10 == 0 else 0.1  # one in ten over its limit: a notice, so a queue of deliveries
    return {"type": "sampling_result", "id": f"STOP-{i}", "program": "food_sampling", "township": "红河镇",
            "entity": f"商户{i}", "category": "蔬菜", "food": "韭菜", "sampled_at": "2026-04-08",
            "reported_at": "2026-04-09T10:00:00",
            "items": [{"item": "腐霉利", "value": value, "limit": 0.2, "unit": "mg/kg"}]}


def post_all(base: str, answer: dict) -> None:
    body = "\n".join(json.dumps(sample(i), ensure_ascii=False) for i in range(EVENTS)).encode()
    req = urllib.request.Request(f"{base}/api/events", data=body, headers={
        "Content-Type": "application/x-ndjson", "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=120) as r:
        answer["status"], answer["body"] = r.status, json.loads(r.read())


def test_sigterm_while_busy_stops_within_10_s_and_loses_no_accepted_event(tmp_path: Path):
    """SIGTERM once the SMTP server holds a message and the batch is being accepted: the
    process exits 0 within 10 s; the batch is answered line by line (the lines not reached say
    服务正在停止); the journal holds exactly the accepted ones; a new start knows them."""
    inbox = StallingInbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    port = free_port()
    data = county(service={"listen": f"127.0.0.1:{port}", "data_dir": "data",
                           "feeds": {"lab": {"name": "化验室", "token": TOKEN}}},
                  notifiers={"outbox": "outbox.sqlite", "quiet_hours": False, "group_wait_seconds": 0,
                             "digest": None, "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                                                      "from": "食安办 <fso@xiping.example>"}})
    config = tmp_path / "county.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    log = tmp_path / "run.log"
    base = f"http://127.0.0.1:{port}"
    proc = start(config, log)
    answer: dict = {}
    try:
        wait_up(base, proc, log)
        poster = threading.Thread(target=post_all, args=(base, answer))
        poster.start()
        assert inbox.entered.wait(30), "no delivery reached the SMTP server:\n" + log.read_text()[-2000:]
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        stopped = time.monotonic() - sent
        poster.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        inbox.release.set()
        smtp.stop()
    assert proc.returncode == 0 and stopped < 10, (stopped, log.read_text()[-3000:])
    results = answer["body"]["results"]
    assert answer["status"] == 200 and [r["line"] for r in results] == list(range(1, EVENTS + 1))
    accepted = [r["id"] for r in results if r["status"] == "accepted"]
    unreached = [r for r in results if r["status"] == "rejected"]
    assert accepted and unreached, "stopped half-way through the batch"
    assert all(r["reason"].startswith("服务正在停止") for r in unreached)
    db = sqlite3.connect(tmp_path / "data" / "events.sqlite")
    journal = [r[0] for r in db.execute("SELECT id FROM events ORDER BY seq")]
    db.close()
    assert journal == accepted, "exactly the lines answered accepted are journalled"
    loaded = load(config)
    again = Service(loaded, service_settings(loaded, env={}), delivery_settings(loaded, env={}))
    try:
        first, unreached_one = sample(0), sample(int(unreached[0]["line"]) - 1)
        assert again.accept_object(first, "test").status == "duplicate"
        assert again.accept_object(unreached_one, "test").status == "accepted"
    finally:
        again.store.close()
        again.outbox.close()
