#!/usr/bin/env python3
"""Load test of ``shian run`` (a script, not a timed test): events posted over HTTP at a fixed
rate while a reader keeps loading the dashboard; optionally a ``kill -9`` in the middle.

    python bench/load_test.py [--rate 200] [--seconds 300] [--readers 1] [--kill-at S] [--out DIR]

It writes a config for the example county (tokens for one feed and one department, a drop
folder, e-mail to a local aiosmtpd server it starts, quiet hours off), starts ``shian run`` as a
subprocess on a free port on 127.0.0.1, and posts one sampling result per request
(``POST /api/events``), about a tenth of them 不合格 (each raising a notice), at ``--rate``
per second for ``--seconds``. Meanwhile ``--readers`` clients log in as the department and
load ``/`` and ``/rates`` in a loop. With ``--kill-at S`` the server is killed with SIGKILL after S seconds and started
again at once (posts that fail while it is down are counted apart, not as errors).

Reported (and written to ``<out>/load_test.json``): requests sent, accepted, errors (target
0: non-2xx answers or failed connections while the server is up), ingest latency p50 / p99 /
max, dashboard page latency p50 / p99, the server's RSS at start and end (growth), and after
the run: every event the server acknowledged is in its journal (``events.sqlite``), and the
e-mail the SMTP server received — every notice of the outbox sent, and how many messages came
twice (allowed only inside the outbox's documented window, at most the messages in flight at
the kill).
"""
from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Shanghai")
FEED_TOKEN = "load-test-feed-token-0001"
DEPT_TOKEN = "load-test-dept-token-0001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))] * 1000, 1)


class Inbox:
    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.ids[str(msg["Message-ID"])] += 1
        return "250 OK"


def write_config(work: Path, port: int, smtp_port: int) -> Path:
    data = yaml.safe_load((ROOT / "examples" / "county.yaml").read_text(encoding="utf-8"))
    data["notifiers"] = {"outbox": "outbox.sqlite", "quiet_hours": False, "group_wait_seconds": 5,
                         "digest": None, "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                                                  "from": "西平县食安办 <shianban@xiping.example>"}}
    data["service"] = {"listen": f"127.0.0.1:{port}", "data_dir": "data", "drop_dir": "投放",
                       "feeds": {"lab": {"name": "县检验检测中心", "token": FEED_TOKEN}},
                       "tokens": {data["county"]["office"]: {"token": DEPT_TOKEN}}}
    path = work / "county.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def start_server(config: Path, log: Path) -> subprocess.Popen:
    out = open(log, "a")
    return subprocess.Popen([sys.executable, "-m", "shian.cli", "run", "--config", str(config),
                             "--loglevel", "warning"], stdout=out, stderr=out,
                            env=dict(os.environ, PYTHONWARNINGS="ignore"))


async def login(session: Any, base: str) -> None:
    """The dashboard's login form with the department token (its CSRF token from the page)."""
    async with session.get(f"{base}/login") as r:
        m = re.search(r'name="csrf" value="([^"]+)"', await r.text())
    if m is None:
        raise RuntimeError("the login page has no CSRF token")
    async with session.post(f"{base}/login", data={"csrf": m.group(1), "token": DEPT_TOKEN},
                            allow_redirects=False) as r:
        if r.status != 303:
            raise RuntimeError(f"login refused: HTTP {r.status}")


async def wait_up(session: Any, base: str, timeout: float = 60) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            async with session.get(f"{base}/health") as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("shian run did not come up")


def event(i: int, now: datetime, townships: list[str]) -> dict[str, Any]:
    bad = i % 10 == 0
    return {"type": "sampling_result", "id": f"LOAD-{i:07d}", "program": "food_sampling",
            "township": townships[i % len(townships)], "entity": f"负载测试商户{i % 500}", "category": "蔬菜",
            "food": "韭菜", "sampled_at": (now - timedelta(days=1)).isoformat(timespec="seconds"),
            "reported_at": now.isoformat(timespec="seconds"),
            "items": [{"item": "腐霉利", "value": 0.5 if bad else 0.05, "limit": 0.2, "unit": "mg/kg"}]}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp
    from aiosmtpd.controller import Controller

    work = Path(tempfile.mkdtemp(prefix="shian-load-"))
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    port = free_port()
    config = write_config(work, port, smtp.port)
    townships = list(yaml.safe_load(config.read_text(encoding="utf-8"))["townships"])
    log = work / "server.log"
    base = f"http://127.0.0.1:{port}"
    server = start_server(config, log)
    result: dict[str, Any] = {"rate": args.rate, "seconds": args.seconds, "work": str(work)}
    ingest: list[float] = []
    pages: list[float] = []
    errors: Counter[str] = Counter()
    down_failures = 0
    acknowledged: set[str] = set()
    down = asyncio.Event()
    stop = asyncio.Event()
    rss: list[tuple[float, float]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await wait_up(session, base)
        rss0 = rss_mb(server.pid)
        headers = {"Authorization": f"Bearer {FEED_TOKEN}"}

        async def post(i: int) -> None:
            nonlocal down_failures
            body = event(i, datetime.now(TZ), townships)
            t0 = time.perf_counter()
            try:
                async with session.post(f"{base}/api/events", json=body, headers=headers) as r:
                    text = await r.text()
                    if r.status == 200 and json.loads(text).get("accepted") == 1:
                        ingest.append(time.perf_counter() - t0)
                        acknowledged.add(body["id"])
                    elif down.is_set():
                        down_failures += 1
                    else:
                        errors[f"HTTP {r.status}"] += 1
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
                if down.is_set():
                    down_failures += 1
                else:
                    errors[type(e).__name__] += 1

        async def reader() -> None:
            # the pages need a login: each reader logs in as the department, like staff do
            # (an unsafe cookie jar keeps cookies of an IP address such as 127.0.0.1)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                             cookie_jar=aiohttp.CookieJar(unsafe=True)) as own:
                await login(own, base)
                while not stop.is_set():
                    for page in ("/", "/rates"):
                        t0 = time.perf_counter()
                        try:
                            async with own.get(f"{base}{page}", allow_redirects=False) as r:
                                await r.read()
                                if r.status == 200:
                                    pages.append(time.perf_counter() - t0)
                                elif r.status == 303 and not down.is_set():  # logged out by a restart
                                    await login(own, base)
                                elif not down.is_set():
                                    errors[f"page HTTP {r.status}"] += 1
                        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
                            if not down.is_set():
                                errors[f"page {type(e).__name__}"] += 1
                    await asyncio.sleep(0.5)

        async def sampler() -> None:
            while not stop.is_set():
                if (m := rss_mb(server.pid)) is not None and not down.is_set():
                    rss.append((time.monotonic(), m))
                await asyncio.sleep(1.0)

        readers = [asyncio.create_task(reader()) for _ in range(args.readers)]
        sampling = asyncio.create_task(sampler())
        tasks: set[asyncio.Task] = set()
        t_start = time.monotonic()
        n = int(args.rate * args.seconds)
        killed = False
        for i in range(n):
            target = t_start + i / args.rate
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if args.kill_at is not None and not killed and time.monotonic() - t_start >= args.kill_at:
                down.set()
                server.send_signal(signal.SIGKILL)
                server.wait()
                result["killed_at_s"] = round(time.monotonic() - t_start, 1)
                server = start_server(config, log)
                killed = True

                async def back() -> None:
                    await wait_up(session, base)
                    await asyncio.sleep(0.2)
                    down.clear()
                    result["restart_s"] = round(time.monotonic() - t_start - result["killed_at_s"], 2)

                restart = asyncio.create_task(back())
                tasks.add(restart)
                restart.add_done_callback(tasks.discard)
            t = asyncio.create_task(post(i))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.gather(*list(tasks))
        elapsed = time.monotonic() - t_start
        # let delivery finish
        t_wait = time.monotonic()
        while time.monotonic() - t_wait < 60:
            db = sqlite3.connect(work / "outbox.sqlite")
            pending = db.execute("SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'sending')").fetchone()[0]
            db.close()
            if pending == 0:
                break
            await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*readers, sampling)
        rss1 = rss_mb(server.pid)
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
    smtp.stop()
    db = sqlite3.connect(work / "data" / "events.sqlite")
    journal = {r[0] for r in db.execute("SELECT id FROM events")}
    db.close()
    db = sqlite3.connect(work / "outbox.sqlite")
    sent = db.execute("SELECT COUNT(DISTINCT batch_id) FROM deliveries WHERE state = 'sent'").fetchone()[0]
    states = dict(db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall())
    db.close()
    result.update({
        "requests": n, "accepted": len(acknowledged), "errors": dict(errors), "errors_total": sum(errors.values()),
        "failed_while_down": down_failures, "elapsed_s": round(elapsed, 1),
        "achieved_rate": round(len(acknowledged) / elapsed, 1),
        "ingest_ms": {"p50": pct(ingest, 0.5), "p99": pct(ingest, 0.99), "max": pct(ingest, 1.0)},
        "page_ms": {"p50": pct(pages, 0.5), "p99": pct(pages, 0.99), "count": len(pages)},
        "rss_mb": {"start": rss0 and round(rss0, 1), "end": rss1 and round(rss1, 1),
                   "max": round(max(m for _, m in rss), 1) if rss else None},
        "acknowledged_missing_from_journal": sorted(acknowledged - journal)[:20],
        "acknowledged_missing_count": len(acknowledged - journal),
        "deliveries": states, "messages_sent": sent, "messages_received": sum(inbox.ids.values()),
        "messages_repeated": sum(c - 1 for c in inbox.ids.values() if c > 1),
    })
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--readers", type=int, default=1)
    ap.add_argument("--kill-at", type=float, metavar="S", help="SIGKILL the server after S seconds, restart it")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args(argv)
    r = asyncio.run(run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load_test.json").write_text(json.dumps(r, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"shian run load test: {r['requests']} events at {args.rate:g}/s for {args.seconds:g} s"
          + (f", SIGKILL at {r.get('killed_at_s')} s (back after {r.get('restart_s')} s)" if args.kill_at else ""))
    print(f"  accepted {r['accepted']} ({r['achieved_rate']}/s), errors {r['errors_total']} {r['errors'] or ''}"
          + (f", refused while down {r['failed_while_down']}" if args.kill_at else ""))
    print(f"  ingest latency p50 {r['ingest_ms']['p50']} ms, p99 {r['ingest_ms']['p99']} ms, max {r['ingest_ms']['max']} ms")
    print(f"  dashboard pages: {r['page_ms']['count']} loads, p50 {r['page_ms']['p50']} ms, p99 {r['page_ms']['p99']} ms")
    print(f"  server RSS: {r['rss_mb']['start']} MB at start, {r['rss_mb']['end']} MB at end (max {r['rss_mb']['max']})")
    print(f"  acknowledged events missing from the journal: {r['acknowledged_missing_count']}")
    print(f"  e-mail: {r['messages_sent']} messages sent by the outbox, {r['messages_received']} received, "
          f"{r['messages_repeated']} repeated; deliveries {r['deliveries']}")
    print(f"report: {args.out / 'load_test.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
