#!/usr/bin/env python3
"""Load test of ``shian run`` (a script, not a timed test): a soak with dashboard readers, and
page latency over a year of data.

    python bench/load_test.py [--quick] [--phase soak|year|both] [--rate 200] [--seconds 1800]
                              [--readers 2] [--kill-at S] [--max-in-flight 32] [--unqualified-every 10]
                              [--profile PATH] [--trace-memory DIR [--trace-frames 1]] [--out DIR] [--json PATH]

Soak: it writes a config for the example county (tokens for one feed and one department, a
drop folder, e-mail to a local aiosmtpd server it starts in a process of its own, quiet hours off), starts ``shian
run`` as a subprocess on a free port on 127.0.0.1, and posts one sampling result per request
(``POST /api/events``), every ``--unqualified-every``-th of them 不合格 (each raising a notice), at ``--rate`` per
second for ``--seconds``, at most ``--max-in-flight`` of them waiting for their answer (a
sender that waits: a slow server shows as a lower rate achieved, not as a queue in the
client counted in the latencies). After ``--readers-after`` seconds (the ingest latency without
readers, the floor), ``--readers`` clients log in as the department and load every figure
page and the notice list in turn (:data:`PAGES`). The server's RSS is sampled every second
and printed by minute; its growth is counted from minute ``--rss-from`` (5) to the end. With
``--kill-at S`` the server is killed with SIGKILL after S seconds and started again at once
(posts that fail while it is down are counted apart, not as errors). ``--profile`` runs the
server under cProfile, ``--trace-memory`` under tracemalloc (``bench/memtrace.py``: the heap's
growth, by line of code, each minute).

Year of data: a county-year of ``replay_bench.py``'s generator (``--year-events`` lines,
moved to this year and cut a day before now) is backfilled (``shian run --backfill``), then
the readers load every page with filters and paging (:data:`YEAR_PAGES`: the list by state,
township, month and severity, a deep page, a notice, every figure page, the API's list)
for ``--page-seconds`` while events are posted at ``--rate``.

Reported (printed, and written to ``<out>/load_test.json``): requests sent, accepted, errors
(target 0: non-2xx answers or failed connections while the server is up), ingest latency
p50 / p99 / max (before and with the readers), each page's latency, the RSS series, after the
soak: every event the server acknowledged is in its journal (``events.sqlite``), and the
e-mail the SMTP server received — every notice of the outbox sent, and how many messages
came twice (allowed only inside the outbox's documented window, at most the messages in
flight at the kill). ``--json PATH`` writes the target rows (:mod:`bench.targets`):
RSS growth after minute 5 ≤ 50 MB, ingest p99 with the readers < 50 ms, page p99 over a year
< 200 ms. ``--quick``: a 3-minute soak (RSS from minute 1, the 50 MB prorated to the
minutes), a 50,000-line year and 60 s of reading.
"""
from __future__ import annotations

import argparse
import asyncio
import email
import email.parser
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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from targets import Target, table, write_rows  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Shanghai")
FEED_TOKEN = "load-test-feed-token-0001"
DEPT_TOKEN = "load-test-dept-token-0001"
RSS_BUDGET_MB = 50.0      # RSS growth after minute 5 of a 30-minute run
INGEST_P99_MS = 50.0      # POST /api/events p99 with the readers
PAGE_P99_MS = 200.0       # each page's p99 over a year of data
#: what the soak's readers load in turn (the everyday pages)
PAGES = ("/", "/?state=all", "/rates", "/reports", "/pace", "/frequency", "/calendar", "/rejects")
#: what they load over a year of data: filters, paging, a notice (``{notice}``: one linked
#: from the list), every figure page with its choices, the API's list
YEAR_PAGES = ("/", "/?state=all", "/?state=all&page=20", "/?state=closed", "/?state=open&scope=all",
              "/?severity=critical&scope=all", "/?month={month}&scope=all", "/?township={town}&scope=all&page=2",
              "/notices/{notice}", "/rates", "/rates?period={year}", "/reports", "/reports?months=12", "/pace",
              "/frequency", "/calendar", "/rejects", "/rejects?page=3", "/api/notices?limit=50",
              "/api/notices?state=open&township={town}&limit=50")


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


def cpu_seconds(pid: int) -> float | None:
    """The process's CPU time so far (user + system), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def deliveries_due(outbox: Path) -> int | None:
    """The outbox's deliveries due now and not sent yet (the sender's backlog, which it reads
    into memory at each step)."""
    try:
        db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute("SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'sending')"
                              " AND next_at <= ?", (time.time(),)).fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return None


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))] * 1000, 1)


class Inbox:
    """aiosmtpd's handler: counts each Message-ID it receives (the headers parsed, not the body)."""

    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()

    async def handle_DATA(self, server, session, envelope):
        head = envelope.original_content.split(b"\r\n\r\n", 1)[0]
        msg = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(head)
        self.ids[str(msg["Message-ID"])] += 1
        return "250 OK"


def _serve_inbox(conn: Any) -> None:
    """The e-mail sink's process: an aiosmtpd server on a free port (sent back first), then
    the counts by Message-ID for each ``"counts"`` asked, until ``"stop"``."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    conn.send(smtp.port)
    try:
        while conn.recv() == "counts":
            conn.send(dict(inbox.ids))
    finally:
        smtp.stop()


class InboxProcess:
    """The e-mail sink in a process of its own: its reading of the messages does not take the
    interpreter from the client's loop, whose waits would count in the latencies measured (in
    the client's process, a soak's messages of 400 kB held it up to 130 ms at a time)."""

    def __init__(self) -> None:
        import multiprocessing

        self._conn, child = multiprocessing.Pipe()
        self._proc = multiprocessing.get_context("spawn").Process(target=_serve_inbox, args=(child,), daemon=True)
        self._proc.start()
        self.port: int = self._conn.recv()

    def counts(self) -> Counter[str]:
        self._conn.send("counts")
        return Counter(self._conn.recv())

    def stop(self) -> None:
        self._conn.send("stop")
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()


def write_config(work: Path, port: int, smtp_port: int, data: dict[str, Any] | None = None) -> Path:
    """``data`` (default: the example county) with the load test's delivery and service sections."""
    if data is None:
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


def event(i: int, now: datetime, townships: list[str], prefix: str = "LOAD", every: int = 10) -> dict[str, Any]:
    """Sampling result ``i``: 不合格 when ``i`` is a multiple of ``every`` (0: never)."""
    bad = every > 0 and i % every == 0
    return {"type": "sampling_result", "id": f"{prefix}-{i:07d}", "program": "food_sampling",
            "township": townships[i % len(townships)], "entity": f"负载测试商户{i % 500}", "category": "蔬菜",
            "food": "韭菜", "sampled_at": (now - timedelta(days=1)).isoformat(timespec="seconds"),
            "reported_at": now.isoformat(timespec="seconds"),
            "items": [{"item": "腐霉利", "value": 0.5 if bad else 0.05, "limit": 0.2, "unit": "mg/kg"}]}


@dataclass
class Server:
    """``shian run`` as a subprocess (restarted in place by a kill)."""
    config: Path
    log: Path
    extra: tuple[str, ...] = ()
    profile: Path | None = None     # run it under cProfile, the stats written there at its stop
    trace: Path | None = None       # run it under bench/memtrace.py, its reports there
    trace_frames: int = 1           # memtrace's --frames (0: pymalloc's numbers only)
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = open(self.log, "a")
        if self.trace:
            how: tuple[str, ...] = (str(ROOT / "bench" / "memtrace.py"), "--out", str(self.trace),
                                    "--frames", str(self.trace_frames), "--after", "60", "--every", "30", "--")
        else:
            how = ("-m", "cProfile", "-o", str(self.profile)) if self.profile else ()
            how += ("-m", "shian.cli")
        self.proc = subprocess.Popen([sys.executable, *how, "run", "--config", str(self.config),
                                      "--loglevel", "warning", *self.extra], stdout=out, stderr=out,
                                     env=dict(os.environ, PYTHONWARNINGS="ignore"))

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Phase:
    """What one phase of the run measured."""
    seconds: float
    rate: float
    readers: int
    readers_after: float = 0.0                                   # seconds of posting before the readers start
    unqualified_every: int = 10                                  # every n-th event 不合格 (0: none)
    ingest: list[tuple[float, float]] = field(default_factory=list)   # (seconds since start, latency s)
    pages: dict[str, list[float]] = field(default_factory=dict)       # page → latencies (s)
    errors: Counter = field(default_factory=Counter)
    acknowledged: set[str] = field(default_factory=set)
    rss: list[tuple[float, float]] = field(default_factory=list)      # (seconds since start, MB)
    waiting: list[tuple[float, int]] = field(default_factory=list)    # (seconds, posts sent and not answered)
    load: list[tuple[float, float]] = field(default_factory=list)     # (seconds, the machine's 1-min load average)
    cpu: list[tuple[float, float]] = field(default_factory=list)      # (seconds, the server's CPU seconds so far)
    due: list[tuple[float, int]] = field(default_factory=list)        # (seconds, deliveries due and not sent)
    down_failures: int = 0
    held: int = 0                                                # posts that waited for a free slot
    requests: int = 0
    elapsed: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def ingest_ms(self, with_readers: bool | None = None) -> dict[str, Any]:
        lat = [v for t, v in self.ingest if with_readers is None or (t >= self.readers_after) == with_readers]
        return {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": pct(lat, 1.0), "count": len(lat)}

    def page_ms(self) -> dict[str, dict[str, Any]]:
        return {page: {"p50": pct(v, 0.5), "p99": pct(v, 0.99), "max": pct(v, 1.0), "count": len(v)}
                for page, v in self.pages.items()}

    def rss_by_minute(self) -> list[float]:
        """The RSS at each whole minute (the first sample at or after it), then at the end."""
        return [round(mb, 1) for mb in by_minute(self.rss)]

    def waiting_by_minute(self) -> list[int]:
        return by_minute(self.waiting)

    def load_by_minute(self) -> list[float]:
        return [round(v, 1) for v in by_minute(self.load)]

    def cpu_ms_per_request(self) -> float | None:
        """The server's CPU time over the phase per post (pages read meanwhile included): on a
        shared machine, steadier than the latencies."""
        if len(self.cpu) < 2 or not self.ingest:
            return None
        return round((self.cpu[-1][1] - self.cpu[0][1]) * 1000 / len(self.ingest), 2)


def by_minute(samples: list[tuple[float, Any]]) -> list[Any]:
    """The value at each whole minute (the first sample at or after it), then the last one."""
    out, minute = [], 0
    for t, v in samples:
        if t >= minute * 60:
            out.append(v)
            minute += 1
    if samples and samples[-1][0] > (minute - 1) * 60 + 1:
        out.append(samples[-1][1])
    return out


async def reader(base: str, pages: list[str], phase: Phase, stop: asyncio.Event, down: asyncio.Event,
                 pause: float) -> None:
    """A member of staff: logs in as the department and loads ``pages`` in turn, ``pause``
    seconds between two; ``{notice}`` in a page is a notice linked from the list."""
    import aiohttp

    notice = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as own:
        await login(own, base)
        while not stop.is_set():
            for page in pages:
                if stop.is_set():
                    break
                if "{notice}" in page and notice is None:
                    continue
                url = page.format(notice=notice)
                t0 = time.perf_counter()
                try:
                    headers = {"Authorization": f"Bearer {DEPT_TOKEN}"} if url.startswith("/api/") else None
                    async with own.get(f"{base}{url}", allow_redirects=False, headers=headers) as r:
                        body = await r.read()
                        if r.status == 200:
                            phase.pages.setdefault(page, []).append(time.perf_counter() - t0)
                            if notice is None and (m := re.search(rb'/notices/([0-9a-f]{16})', body)):
                                notice = m.group(1).decode()
                        elif r.status == 303 and not down.is_set():  # logged out by a restart
                            await login(own, base)
                        elif not down.is_set():
                            phase.errors[f"page {page} HTTP {r.status}"] += 1
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
                    if not down.is_set():
                        phase.errors[f"page {type(e).__name__}"] += 1
                await asyncio.sleep(pause)


async def drive(server: Server, base: str, phase: Phase, townships: list[str], pages: list[str], *,
                prefix: str = "LOAD", kill_at: float | None = None, pause: float = 0.5,
                max_in_flight: int = 32) -> None:
    """Posts ``phase.rate`` events a second for ``phase.seconds`` while ``phase.readers``
    readers load ``pages`` (from ``phase.readers_after`` on); samples the server's RSS every
    second. At most ``max_in_flight`` posts wait for their answer: the next one is sent when
    one is answered (counted in ``phase.held``), as senders that wait for their answer do —
    so a slow server shows as a lower rate achieved, not as a backlog of requests queued in
    the client, whose waiting would count in the latencies. With ``kill_at``: SIGKILL after
    that many seconds and a restart at once."""
    import aiohttp

    down, stop = asyncio.Event(), asyncio.Event()
    headers = {"Authorization": f"Bearer {FEED_TOKEN}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await wait_up(session, base)
        t_start = time.monotonic()

        async def post(i: int) -> None:
            body = event(i, datetime.now(TZ), townships, prefix, phase.unqualified_every)
            sent, t0 = time.monotonic() - t_start, time.perf_counter()
            try:
                async with session.post(f"{base}/api/events", json=body, headers=headers) as r:
                    text = await r.text()
                    if r.status == 200 and json.loads(text).get("accepted") == 1:
                        phase.ingest.append((sent, time.perf_counter() - t0))
                        phase.acknowledged.add(body["id"])
                    elif down.is_set():
                        phase.down_failures += 1
                    else:
                        phase.errors[f"HTTP {r.status}"] += 1
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
                if down.is_set():
                    phase.down_failures += 1
                else:
                    phase.errors[type(e).__name__] += 1

        async def readers() -> None:
            try:
                await asyncio.wait_for(stop.wait(), phase.readers_after)
            except asyncio.TimeoutError:
                await asyncio.gather(*(reader(base, pages, phase, stop, down, pause) for _ in range(phase.readers)))

        tasks: set[asyncio.Task] = set()
        posting: set[asyncio.Task] = set()   # the posts sent and not answered yet

        async def sampler() -> None:
            while not stop.is_set():
                assert server.proc is not None
                now = time.monotonic() - t_start
                if (m := rss_mb(server.proc.pid)) is not None and not down.is_set():
                    phase.rss.append((now, m))
                if (c := cpu_seconds(server.proc.pid)) is not None and not down.is_set():
                    phase.cpu.append((now, c))
                if (due := deliveries_due(server.config.parent / "outbox.sqlite")) is not None:
                    phase.due.append((now, due))
                phase.waiting.append((now, len(posting)))
                phase.load.append((now, os.getloadavg()[0]))
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass

        reading = asyncio.create_task(readers())
        sampling = asyncio.create_task(sampler())
        n = int(phase.rate * phase.seconds)
        killed = False
        for i in range(n):
            delay = t_start + i / phase.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if kill_at is not None and not killed and time.monotonic() - t_start >= kill_at:
                down.set()
                assert server.proc is not None
                server.proc.send_signal(signal.SIGKILL)
                server.proc.wait()
                phase.extra["killed_at_s"] = round(time.monotonic() - t_start, 1)
                server.start()
                killed = True

                async def back() -> None:
                    await wait_up(session, base)
                    await asyncio.sleep(0.2)
                    down.clear()
                    phase.extra["restart_s"] = round(time.monotonic() - t_start - phase.extra["killed_at_s"], 2)

                restart = asyncio.create_task(back())
                tasks.add(restart)
                restart.add_done_callback(tasks.discard)
            if len(posting) >= max_in_flight:   # a sender waits for an answer: no backlog in the client
                phase.held += 1
                await asyncio.wait(posting, return_when=asyncio.FIRST_COMPLETED)
            t = asyncio.create_task(post(i))
            for group in (tasks, posting):
                group.add(t)
                t.add_done_callback(group.discard)
        while tasks:
            await asyncio.gather(*list(tasks))
        phase.requests, phase.elapsed = n, time.monotonic() - t_start
        stop.set()
        await asyncio.gather(reading, sampling)


def wait_delivered(work: Path, seconds: float = 60) -> None:
    """Until the outbox has nothing pending or being sent (at most ``seconds``)."""
    t_wait = time.monotonic()
    while time.monotonic() - t_wait < seconds:
        db = sqlite3.connect(work / "outbox.sqlite")
        pending = db.execute("SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'sending')").fetchone()[0]
        db.close()
        if pending == 0:
            return
        time.sleep(0.5)


async def soak(args: argparse.Namespace, smtp_port: int, inbox: InboxProcess) -> dict[str, Any]:
    """The soak: events posted at ``--rate`` for ``--seconds`` with ``--readers`` readers of
    the everyday pages; then the journal and the e-mail checked."""
    work = Path(tempfile.mkdtemp(prefix="shian-load-"))
    port = free_port()
    config = write_config(work, port, smtp_port)
    townships = list(yaml.safe_load(config.read_text(encoding="utf-8"))["townships"])
    server = Server(config, work / "server.log", profile=args.profile and args.profile.with_suffix(".soak.prof"),
                    trace=args.trace_memory and args.trace_memory / "soak", trace_frames=args.trace_frames)
    server.start()
    phase = Phase(args.seconds, args.rate, args.readers, readers_after=args.readers_after,
                  unqualified_every=args.unqualified_every)
    try:
        await drive(server, f"http://127.0.0.1:{port}", phase, townships, list(PAGES), kill_at=args.kill_at,
                    max_in_flight=args.max_in_flight)
        await asyncio.to_thread(wait_delivered, work)
        assert server.proc is not None
        rss_drained = rss_mb(server.proc.pid)
    finally:
        server.stop()
    db = sqlite3.connect(work / "data" / "events.sqlite")
    journal = {r[0] for r in db.execute("SELECT id FROM events")}
    db.close()
    db = sqlite3.connect(work / "outbox.sqlite")
    sent = db.execute("SELECT COUNT(DISTINCT batch_id) FROM deliveries WHERE state = 'sent'").fetchone()[0]
    states = dict(db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall())
    db.close()
    received = inbox.counts()
    series = phase.rss_by_minute()
    base_minute = min(args.rss_from, max(0, len(series) - 2))
    return {
        "work": str(work), "rate": args.rate, "seconds": args.seconds, "readers": args.readers,
        "readers_after_s": args.readers_after, "pages": list(PAGES), **phase.extra,
        "requests": phase.requests, "held_for_a_slot": phase.held, "accepted": len(phase.acknowledged),
        "errors": dict(phase.errors),
        "errors_total": sum(phase.errors.values()), "failed_while_down": phase.down_failures,
        "elapsed_s": round(phase.elapsed, 1), "achieved_rate": round(len(phase.acknowledged) / phase.elapsed, 1),
        "ingest_ms": phase.ingest_ms(), "ingest_ms_with_readers": phase.ingest_ms(True),
        "ingest_ms_before_readers": phase.ingest_ms(False), "page_ms": phase.page_ms(),
        "rss_mb_by_minute": series, "rss_from_minute": base_minute,
        "posts_waiting_by_minute": phase.waiting_by_minute(), "load_average_by_minute": phase.load_by_minute(),
        "server_cpu_ms_per_post": phase.cpu_ms_per_request(), "deliveries_due_by_minute": by_minute(phase.due),
        "rss_growth_mb": round(series[-1] - series[base_minute], 1) if len(series) > base_minute else None,
        "rss_mb_max": round(max(m for _, m in phase.rss), 1) if phase.rss else None,
        "rss_mb_drained": rss_drained and round(rss_drained, 1),
        "acknowledged_missing_from_journal": sorted(phase.acknowledged - journal)[:20],
        "acknowledged_missing_count": len(phase.acknowledged - journal),
        "deliveries": states, "messages_sent": sent, "messages_received": sum(received.values()),
        "messages_repeated": sum(c - 1 for c in received.values() if c > 1),
    }


def year_feed(work: Path, events: int, now: datetime) -> tuple[Path, Path, int]:
    """A county-year of replay_bench's generator (its config and events), cut at a day
    before ``now`` (the service refuses events ahead of its clock): the config, the
    events file and its lines."""
    sys.path.insert(0, str(ROOT / "bench"))
    import replay_bench

    m = replay_bench.dataset(work, events, 24, 20260101, False)
    cutoff = (now - timedelta(days=1)).replace(tzinfo=None).isoformat(timespec="seconds")
    shift = now.year - replay_bench.YEAR   # the generated year moved to this one
    kept = 0
    path = work / "year.jsonl"
    with open(m["events_path"], encoding="utf-8") as src, open(path, "w", encoding="utf-8") as out:
        for line in src:
            if shift:
                line = re.sub(r'"(\d{4})-', lambda x: f'"{int(x.group(1)) + shift}-', line)
            stamps = re.findall(r'"\w+_at":"([0-9T:-]{19})"', line)
            if stamps and max(stamps) >= cutoff:
                continue
            out.write(line)
            kept += 1
    return Path(m["config_path"]), path, kept


async def year_pages(args: argparse.Namespace, smtp_port: int) -> dict[str, Any]:
    """Page latency over a year of data: ``shian run --backfill`` a generated county-year,
    then readers load every page (filters, paging, a notice, the API's list) while events
    are posted at ``--rate``."""
    work = Path(tempfile.mkdtemp(prefix="shian-load-year-"))
    now = datetime.now(TZ)
    gen_config, feed, lines = year_feed(work, args.year_events, now)
    port = free_port()
    data = yaml.safe_load(gen_config.read_text(encoding="utf-8"))
    config = write_config(work, port, smtp_port, data)
    townships = list(data["townships"])
    server = Server(config, work / "server.log", ("--backfill", str(feed)),
                    profile=args.profile and args.profile.with_suffix(".year.prof"),
                    trace=args.trace_memory and args.trace_memory / "year", trace_frames=args.trace_frames)
    t0 = time.monotonic()
    server.start()
    import aiohttp

    async with aiohttp.ClientSession() as session:
        await wait_up(session, f"http://127.0.0.1:{port}", timeout=3600)
    backfill_s = time.monotonic() - t0
    await asyncio.to_thread(wait_delivered, work, args.drain_seconds)   # the backfill's notices sent first
    drain_s = time.monotonic() - t0 - backfill_s
    month = f"{now.year}-{max(1, now.month - 2):02d}"
    pages = [p.format(month=month, year=now.year, town=townships[0], notice="{notice}") for p in YEAR_PAGES]
    phase = Phase(args.page_seconds, args.rate, args.readers)
    try:
        await drive(server, f"http://127.0.0.1:{port}", phase, townships, pages, prefix="YEAR", pause=0.2,
                    max_in_flight=args.max_in_flight)
    finally:
        server.stop()
    db = sqlite3.connect(work / "outbox.sqlite")
    notices = db.execute("SELECT COUNT(*) FROM notices").fetchone()[0]
    db.close()
    pm = phase.page_ms()
    every = [v for lat in phase.pages.values() for v in lat]
    return {"work": str(work), "year_lines": lines, "notices": notices, "backfill_s": round(backfill_s, 1),
            "drain_s": round(drain_s, 1),
            "seconds": args.page_seconds, "rate": args.rate, "readers": args.readers,
            "errors": dict(phase.errors), "errors_total": sum(phase.errors.values()), "held_for_a_slot": phase.held,
            "achieved_rate": round(phase.requests / phase.elapsed, 1), "ingest_ms": phase.ingest_ms(), "page_ms": pm,
            "page_ms_all": {"p50": pct(every, 0.5), "p99": pct(every, 0.99), "count": len(every)},
            "rss_mb_by_minute": phase.rss_by_minute(), "load_average_by_minute": phase.load_by_minute(),
            "server_cpu_ms_per_post": phase.cpu_ms_per_request()}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    inbox = InboxProcess()
    result: dict[str, Any] = {"quick": args.quick}
    try:
        if args.phase in ("soak", "both"):
            result["soak"] = await soak(args, inbox.port, inbox)
        if args.phase in ("year", "both"):
            result["year"] = await year_pages(args, inbox.port)
    finally:
        inbox.stop()
    return result


def target_rows(r: dict[str, Any], args: argparse.Namespace) -> list[Target]:
    rows = []
    if (s := r.get("soak")) is not None:
        series, base = s["rss_mb_by_minute"], s["rss_from_minute"]
        minutes = len(series) - 1 - base
        budget = RSS_BUDGET_MB if not args.quick else round(RSS_BUDGET_MB * minutes / 25, 1)
        growth = s["rss_growth_mb"]
        rows.append(Target("service", f"RSS growth, minute {base} → end of {args.seconds / 60:.3g} min at "
                                      f"{args.rate:g} events/s, {args.readers} readers",
                           f"{growth} MB ({series[base]} → {series[-1]} MB)" if growth is not None else "?",
                           target=f"≤ {budget:g} MB" + (" (50 MB over 25 min, prorated)" if args.quick else ""),
                           met=growth is not None and growth <= budget))
        w, wo = s["ingest_ms_with_readers"], s["ingest_ms_before_readers"]
        ratio = f"{w['p99'] / wo['p99']:.2f}" if w["p99"] and wo["p99"] else ""
        rows.append(Target("service", f"ingest (POST) p99 with {args.readers} readers", f"{w['p99']} ms",
                           floor=f"{wo['p99']} ms before the readers" if wo["p99"] else "", ratio=ratio,
                           target=f"< {INGEST_P99_MS:g} ms", met=w["p99"] is not None and w["p99"] < INGEST_P99_MS))
        worst = max(s["page_ms"].items(), key=lambda kv: kv[1]["p99"] or 0, default=None)
        if worst:
            rows.append(Target("service", "page p99 during the soak, slowest page", f"{worst[1]['p99']} ms ({worst[0]})"))
        rows.append(Target("service", "errors during the soak", str(s["errors_total"]), target="0",
                           met=s["errors_total"] == 0))
    if (y := r.get("year")) is not None:
        worst = max(y["page_ms"].items(), key=lambda kv: kv[1]["p99"] or 0, default=None)
        what = f"over a year of data ({y['year_lines']:,} events, {y['notices']:,} notices)"
        if worst:
            rows.append(Target("service", f"page p99 {what}, slowest page", f"{worst[1]['p99']} ms ({worst[0]})",
                               target=f"< {PAGE_P99_MS:g} ms", met=(worst[1]["p99"] or 0) < PAGE_P99_MS))
        rows.append(Target("service", f"page p99 {what}, all pages", f"{y['page_ms_all']['p99']} ms",
                           target=f"< {PAGE_P99_MS:g} ms",
                           met=y["page_ms_all"]["p99"] is not None and y["page_ms_all"]["p99"] < PAGE_P99_MS))
        rows.append(Target("service", f"ingest (POST) p99 {what}, {args.readers} readers", f"{y['ingest_ms']['p99']} ms",
                           target=f"< {INGEST_P99_MS:g} ms",
                           met=y["ingest_ms"]["p99"] is not None and y["ingest_ms"]["p99"] < INGEST_P99_MS))
    return rows


def report(r: dict[str, Any], args: argparse.Namespace) -> list[str]:
    out = []
    if (s := r.get("soak")) is not None:
        out += [f"shian run soak: {s['requests']} events at {args.rate:g}/s for {args.seconds:g} s, "
                f"{args.readers} readers from {args.readers_after:g} s"
                + (f", SIGKILL at {s.get('killed_at_s')} s (back after {s.get('restart_s')} s)" if args.kill_at else ""),
                f"  accepted {s['accepted']} ({s['achieved_rate']}/s), {s['held_for_a_slot']} posts waited for one of "
                f"{args.max_in_flight} slots, errors {s['errors_total']} {s['errors'] or ''}"
                + (f", refused while down {s['failed_while_down']}" if args.kill_at else "")]
        for name, key in (("all", "ingest_ms"), ("before readers", "ingest_ms_before_readers"),
                          ("with readers", "ingest_ms_with_readers")):
            i = s[key]
            out.append(f"  ingest latency ({name}, {i['count']}): p50 {i['p50']} ms, p99 {i['p99']} ms, max {i['max']} ms")
        out += [f"  page {page}: {v['count']} loads, p50 {v['p50']} ms, p99 {v['p99']} ms, max {v['max']} ms"
                for page, v in s["page_ms"].items()]
        out += [f"  server RSS by minute (MB): {' '.join(str(m) for m in s['rss_mb_by_minute'])}",
                f"  posts waiting for their answer, by minute: {' '.join(str(m) for m in s['posts_waiting_by_minute'])}; "
                f"deliveries due and not sent: {' '.join(str(m) for m in s['deliveries_due_by_minute'])}",
                f"  the machine's load average (2 cores), by minute: "
                f"{' '.join(str(m) for m in s['load_average_by_minute'])}; the server's CPU per post "
                f"(readers' pages included): {s['server_cpu_ms_per_post']} ms",
                f"  RSS growth from minute {s['rss_from_minute']} to the end: {s['rss_growth_mb']} MB "
                f"(max {s['rss_mb_max']}, after delivery drained {s['rss_mb_drained']})",
                f"  acknowledged events missing from the journal: {s['acknowledged_missing_count']}",
                f"  e-mail: {s['messages_sent']} messages sent by the outbox, {s['messages_received']} received, "
                f"{s['messages_repeated']} repeated; deliveries {s['deliveries']}"]
    if (y := r.get("year")) is not None:
        out += [f"year of data: {y['year_lines']:,} events backfilled in {y['backfill_s']} s, {y['notices']:,} notices "
                f"(their delivery waited for: {y['drain_s']} s); "
                f"{args.readers} readers for {y['seconds']:g} s while posting {y['rate']:g}/s, errors {y['errors_total']} "
                f"{y['errors'] or ''}",
                f"  ingest latency: p50 {y['ingest_ms']['p50']} ms, p99 {y['ingest_ms']['p99']} ms, "
                f"{y['achieved_rate']} posts/s, {y['held_for_a_slot']} waited for one of {args.max_in_flight} slots"]
        out += [f"  page {page}: {v['count']} loads, p50 {v['p50']} ms, p99 {v['p99']} ms, max {v['max']} ms"
                for page, v in y["page_ms"].items()]
        out.append(f"  all pages: p50 {y['page_ms_all']['p50']} ms, p99 {y['page_ms_all']['p99']} ms; "
                   f"RSS by minute (MB): {' '.join(str(m) for m in y['rss_mb_by_minute'])}; load average by minute: "
                   f"{' '.join(str(m) for m in y['load_average_by_minute'])}; the server's CPU per post "
                   f"(readers' pages included): {y['server_cpu_ms_per_post']} ms")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="a few minutes: a 3-minute soak (RSS from minute 1), a smaller year, 60 s of pages")
    ap.add_argument("--phase", choices=("soak", "year", "both"), default="both")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, help="soak length (default 1800; --quick 180)")
    ap.add_argument("--readers", type=int, default=2)
    ap.add_argument("--readers-after", type=float, default=30.0, metavar="S",
                    help="seconds of posting before the readers start (the ingest floor)")
    ap.add_argument("--rss-from", type=int, metavar="MIN", help="the minute RSS growth counts from (default 5; --quick 1)")
    ap.add_argument("--year-events", type=int, help="events of the generated year (default 200000; --quick 50000)")
    ap.add_argument("--page-seconds", type=float, help="seconds of reading over the year (default 180; --quick 60)")
    ap.add_argument("--drain-seconds", type=float, default=900.0, metavar="S",
                    help="after the backfill, wait at most S seconds for its notices to be sent before reading")
    ap.add_argument("--kill-at", type=float, metavar="S", help="SIGKILL the server after S seconds, restart it")
    ap.add_argument("--profile", type=Path, metavar="PATH",
                    help="run the server under cProfile: stats to PATH.soak.prof / PATH.year.prof")
    ap.add_argument("--trace-memory", type=Path, metavar="DIR",
                    help="run the server under tracemalloc (bench/memtrace.py): its heap growth each minute in DIR/soak, DIR/year")
    ap.add_argument("--unqualified-every", type=int, default=10, metavar="N",
                    help="every N-th event posted is 不合格 and raises a notice (default 10; 0: none, no delivery)")
    ap.add_argument("--trace-frames", type=int, default=1, metavar="N",
                    help="with --trace-memory: frames per allocation; 0: no tracemalloc, pymalloc's numbers only")
    ap.add_argument("--max-in-flight", type=int, default=32, metavar="N",
                    help="posts waiting for their answer at most (then the next waits for one; default 32)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--json", type=Path, metavar="PATH", help="write the target rows (bench/targets.py) there")
    args = ap.parse_args(argv)
    full = {"seconds": 1800.0, "rss_from": 5, "year_events": 200_000, "page_seconds": 180.0}
    quick = {"seconds": 180.0, "rss_from": 1, "year_events": 50_000, "page_seconds": 60.0}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    r = asyncio.run(run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load_test.json").write_text(json.dumps(r, ensure_ascii=False, indent=2), encoding="utf-8")
    print("\n".join(report(r, args)))
    rows = target_rows(r, args)
    print("\n".join(table(rows)))
    write_rows(args.json, rows)
    print(f"report: {args.out / 'load_test.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
