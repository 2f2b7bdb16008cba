"""The real parts the fault-injection suite (``bench/chaos.py``) puts under stress, and the
bookkeeping it judges them by.

- :class:`SmtpSink`: an aiosmtpd server on 127.0.0.1 that can be taken down and brought back
  on the same port; it records every message with its ``Message-ID`` and
  ``X-Shian-Notice-Ids``.
- :class:`RobotServer`: an aiohttp server on 127.0.0.1 answering like the WeCom
  (``/cgi-bin/webhook/send?key=…``) and DingTalk (``/robot/send?access_token=…``, signature
  checked) robots, with a script of bad answers (HTTP 5xx, 429, HTTP 200 with a non-zero
  ``errcode``) for a while before it answers OK.
- :class:`ShianRun`: a real ``shian run`` subprocess on a free port (start, SIGKILL, SIGTERM,
  ``POST /api/events``, ``/health``).
- :class:`Tally` and :class:`Row`: expected against received, per (notice, department,
  channel), and the line of the table a scenario ends with.
"""
from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Literal
from zoneinfo import ZoneInfo

import yaml

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Shanghai")
FEED_TOKEN = "chaos-feed-token-0001"
DING_SECRET = "SECchaos0123456789abcdef"
HEX16 = re.compile(r"\b[0-9a-f]{16}\b")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def notice_id(key: str) -> str:
    """§4: the first 16 hex digits of SHA-256 of the key (computed here, not by shian)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def wait_for(what: Callable[[], Any], timeout: float, poll: float = 0.2) -> Any:
    """``what()`` once it is truthy, or its last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(poll)


# -- what came in, against what should have -------------------------------------------------

Key = tuple[str, str, str]  # (notice id, department, channel)


@dataclass
class Tally:
    """Deliveries expected (notice id → the (department, channel) pairs it must reach) and
    received (each accepted message, by the notice ids it carries).

    A delivery the product decides not to send (a reminder the catch-up holds,
    ``notifiers/catchup.py``) is expected as ``held`` in the outbox instead: accounted for
    when the outbox holds it, lost when it is neither held nor mailed, a duplicate when it is
    mailed anyway. ``maybe`` is for a hold that depends on what the outbox has stored by then
    (a reminder superseded by its overdue notice): held or mailed, but one of them."""
    expected: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    received: Counter = field(default_factory=Counter)   # (notice id, dept, channel) -> times
    must_hold: set[Key] = field(default_factory=set)
    may_hold: set[Key] = field(default_factory=set)
    held: set[Key] = field(default_factory=set)          # rows the outbox holds (as last read)

    def expect(self, nid: str, dept: str, channel: str, held: Literal["no", "yes", "maybe"] = "no") -> None:
        self.expected.setdefault(nid, set()).add((dept, channel))
        if held == "yes":
            self.must_hold.add((nid, dept, channel))
        elif held == "maybe":
            self.may_hold.add((nid, dept, channel))

    def got(self, nids: Iterable[str], dept: str, channel: str) -> None:
        for nid in nids:
            self.received[(nid, dept, channel)] += 1

    def saw_held(self, keys: Iterable[Key]) -> None:
        """The outbox's ``held`` rows, read again (they only grow)."""
        self.held = set(keys)

    def accounted(self, key: Key) -> bool:
        """Mailed, or held where the product holds it."""
        if key in self.must_hold:
            return key in self.held
        return bool(self.received[key]) or (key in self.may_hold and key in self.held)

    def notice_accounted(self, nid: str) -> bool:
        return all(self.accounted((nid, d, c)) for d, c in self.expected.get(nid, ()))

    def lost(self) -> list[Key]:
        return [(n, d, c) for n, pairs in self.expected.items() for d, c in pairs if not self.accounted((n, d, c))]

    def delivered_notices(self) -> int:
        return sum(self.notice_accounted(n) for n in self.expected)

    def held_notices(self) -> int:
        """Notices with at least one delivery held as expected."""
        return len({n for n, d, c in (self.must_hold | self.may_hold) & self.held})

    def repeats(self) -> int:
        return sum(k - 1 for k in self.received.values() if k > 1)

    def unexpected(self) -> list[Key]:
        """Messages for a delivery nobody expected, or for one the product holds."""
        return [k for k in self.received if k[1:] not in self.expected.get(k[0], ()) or k in self.must_hold]

    def messages(self) -> tuple[int, int]:
        """(deliveries expected, distinct expected deliveries mailed or held as decided)"""
        want = sum(len(p) for p in self.expected.values())
        return want, want - len(self.lost())


class Abort(Exception):
    """A scenario cannot go on (its row says why)."""


@dataclass
class Row:
    """One line of the table."""
    scenario: str
    events: int | str = 0
    expected: int | str = 0
    delivered: int | str = 0
    duplicates: int | str = 0
    redeliveries: int | str = 0
    lost: int | str = 0
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str | None = None

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append((name, bool(ok), detail))
        say(f"  {'ok ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
        return bool(ok)

    def require(self, name: str, ok: Any, detail: str = "") -> None:
        """A check the rest of the scenario depends on: raises when it fails."""
        if not self.check(name, ok, "" if ok else detail):
            raise Abort(name, self)

    def note(self, text: str) -> None:
        self.notes.append(text)
        say(f"  note: {text}")

    def from_tally(self, tally: Tally, documented: int) -> None:
        """Figures from a delivery tally; ``documented`` repeats are the outbox's window."""
        self.expected = len(tally.expected)
        self.delivered = tally.delivered_notices()
        repeats = tally.repeats()
        self.redeliveries = min(repeats, documented)
        self.duplicates = repeats - self.redeliveries + len(tally.unexpected())
        self.lost = len(tally.expected) - tally.delivered_notices()
        want, got = tally.messages()
        self.note(f"messages: {want} expected, {got} received, {repeats} repeated "
                  f"(at most {documented} allowed by the outbox's window), {len(tally.unexpected())} unexpected")

    @property
    def failed(self) -> list[str]:
        bad = [f"{name}" + (f" ({detail[:160]})" if detail else "") for name, ok, detail in self.checks if not ok]
        for what, n in (("lost", self.lost), ("duplicates", self.duplicates)):
            if isinstance(n, int) and n:
                bad.insert(0, f"{n} {what}")
        return bad

    def verdict(self) -> str:
        if self.skipped:
            return f"skipped: {self.skipped}"
        return "PASS" if not self.failed else "FAIL: " + "; ".join(self.failed)


# -- SMTP ---------------------------------------------------------------------------------------

class Mailbox:
    """aiosmtpd handler: every message accepted, with its reference and notice ids."""

    def __init__(self, tally: Tally | None = None) -> None:
        self.tally = tally or Tally()
        self.message_ids: Counter = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        mid = str(msg["Message-ID"]).strip("<>")
        dept = mid.removesuffix(".email@shian").rsplit(".", 1)[-1]
        ids = [i for i in re.split(r"[,\s]+", str(msg.get("X-Shian-Notice-Ids", ""))) if i]
        with self.lock:
            self.message_ids[mid] += 1
            self.tally.got(ids, dept, "email")
        return "250 OK"

    @property
    def count(self) -> int:
        return sum(self.message_ids.values())


class SmtpSink:
    """A real SMTP server on a fixed port that can go down (connections refused) and come back."""

    def __init__(self, mailbox: Mailbox | None = None) -> None:
        self.mailbox = mailbox or Mailbox()
        self.port = free_port()
        self._controller: Any = None

    def up(self) -> "SmtpSink":
        from aiosmtpd.controller import Controller

        if self._controller is None:
            self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
            self._controller.start()
        return self

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def smtp_config(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "security": "none", "timeout_seconds": 5,
                "from": "西平县食安办 <shianban@xiping.example>"}


# -- chat robots ----------------------------------------------------------------------------------

BAD_ANSWERS = {
    "wecom": [(500, None), (429, None), (200, {"errcode": 45009, "errmsg": "api freq out of limit"})],
    "dingtalk": [(502, None), (429, None),
                 (200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})],
}


@dataclass
class RobotHit:
    at: float
    channel: str
    dept: str
    status: int
    errcode: int | None
    ids: tuple[str, ...]


class RobotServer:
    """WeCom and DingTalk robots on one aiohttp server in a thread of its own. While
    ``bad`` is set, answers cycle through :data:`BAD_ANSWERS` per channel; then errcode 0."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.port = free_port()
        self.hits: list[RobotHit] = []
        self.bad = threading.Event()
        self._cycle: Counter = Counter()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: Any = None

    def url(self, channel: str, dept: str) -> str:
        if channel == "wecom":
            return f"http://127.0.0.1:{self.port}/cgi-bin/webhook/send?key=wk-{dept}"
        return f"http://127.0.0.1:{self.port}/robot/send?access_token=dt-{dept}"

    def start(self) -> "RobotServer":
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/cgi-bin/webhook/send", self._wecom)
        app.router.add_post("/robot/send", self._dingtalk)
        self._runner = web.AppRunner(app, access_log=None)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    async def _serve(self) -> None:
        from aiohttp import web

        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _wecom(self, request: Any) -> Any:
        body = await request.json()
        dept = request.query.get("key", "").removeprefix("wk-")
        return self._answer("wecom", dept, body["markdown"]["content"])

    async def _dingtalk(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.json()
        dept = request.query.get("access_token", "").removeprefix("dt-")
        ts = request.query.get("timestamp", "")
        want = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode(),
                                         hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(request.query.get("sign", ""), want):
            self.hits.append(RobotHit(time.monotonic(), "dingtalk", dept, 200, 310000, ()))
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        return self._answer("dingtalk", dept, body["markdown"]["text"])

    def _answer(self, channel: str, dept: str, text: str) -> Any:
        from aiohttp import web

        ids = tuple(dict.fromkeys(HEX16.findall(text.split("通知编号", 1)[-1]) or HEX16.findall(text)))
        if self.bad.is_set():
            status, body = BAD_ANSWERS[channel][self._cycle[channel] % 3]
            self._cycle[channel] += 1
            self.hits.append(RobotHit(time.monotonic(), channel, dept, status, body and body["errcode"], ids))
            if body is None:
                headers = {"Retry-After": "1"} if status == 429 else None
                return web.Response(status=status, text="busy", headers=headers)
            return web.json_response(body)
        self.hits.append(RobotHit(time.monotonic(), channel, dept, 200, 0, ids))
        self.tally.got(ids, dept, channel)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def bad_answers(self) -> Counter:
        return Counter(f"{h.channel} {'HTTP ' + str(h.status) if h.errcode is None else 'errcode ' + str(h.errcode)}"
                       for h in self.hits if h.errcode != 0)


# -- shian run -------------------------------------------------------------------------------

def base_config(**over: Any) -> dict[str, Any]:
    """A two-township county whose only notices come from events: the time-based rules that
    could fire on the wall clock during a run are off, so every notice is one the suite expects."""
    quiet_rules = ["report.reminder", "report.overdue", "report.escalation", "campaign.reminder",
                   "campaign.missed", "source.silent", "sample.pass_rate_low"]
    data: dict[str, Any] = {
        "timezone": "Asia/Shanghai",
        "county": {"name": "西平县", "office": "county-fso", "escalation": ["county-lead"]},
        "departments": {
            "county-fso": {"name": "县食安办", "email": ["fso@xiping.example"]},
            "county-lead": {"name": "县食安办分管领导", "email": ["lead@xiping.example"]},
            "hh-fso": {"name": "红河镇食安办", "email": ["fso@honghe.example"]},
            "hh-agri": {"name": "红河镇农技中心", "email": ["agri@honghe.example"]},
            "bq-fso": {"name": "板桥镇食安办", "email": ["fso@banqiao.example"]},
        },
        "townships": {
            "红河镇": {"population": 30000, "office": "hh-fso", "reporters": ["红河村"],
                     "routing": {"蔬菜": "hh-agri"}},
            "板桥镇": {"population": 20000, "office": "bq-fso", "reporters": ["板桥村"]},
        },
        "rules": {r: {"enabled": False} for r in quiet_rules},
    }
    data.update(over)
    return data


def delivery_config(**over: Any) -> dict[str, Any]:
    d = {"outbox": "outbox.sqlite", "quiet_hours": False, "group_wait_seconds": 0, "digest": None,
         "retry": {"first_seconds": 1, "max_seconds": 8, "give_up_hours": 2}, "robot_per_minute": 600}
    d.update(over)
    return d


TOWNSHIP_OFFICE = {"红河镇": "hh-fso", "板桥镇": "bq-fso"}


def sample(tag: str, i: int, *, township: str, category: str, bad: bool, now: datetime | None = None) -> dict[str, Any]:
    """A sampling result at the wall clock; ``bad``: 不合格 (one ``sample.unqualified``)."""
    now = (now or datetime.now(TZ)).replace(microsecond=0)
    return {"type": "sampling_result", "id": f"{tag}-{i:06d}", "program": "food_sampling", "township": township,
            "entity": f"混沌测试商户{tag}{i}", "category": category, "food": "韭菜" if category == "蔬菜" else "大米",
            "sampled_at": (now - timedelta(days=1)).isoformat(), "reported_at": now.isoformat(),
            "items": [{"item": "腐霉利", "value": 0.5 if bad else 0.05, "limit": 0.2, "unit": "mg/kg"}]}


def unqualified_id(ev: dict[str, Any]) -> str:
    return notice_id(f"sample.unqualified|{ev['township']}|{ev['id']}")


class ShianRun:
    """A ``shian run`` subprocess on its config; every start appends to one log."""

    def __init__(self, work: Path, data: dict[str, Any], name: str = "run") -> None:
        self.work = work
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        data = dict(data)
        service = {"listen": f"127.0.0.1:{self.port}", "data_dir": "data", "snapshot_every": 10000,
                   "feeds": {"lab": {"name": "县检验检测中心", "token": FEED_TOKEN}}}
        service.update(data.pop("service", {}))
        data["service"] = service
        outbox = Path(data.get("notifiers", {}).get("outbox", "outbox.sqlite"))
        self.outbox = outbox if outbox.is_absolute() else work / outbox
        self.config = work / f"{name}.yaml"
        self.config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        self.log = work / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def data_dir(self) -> Path:
        return self.work / "data"

    def start(self) -> subprocess.Popen:
        out = open(self.log, "a")
        out.write(f"\n===== start {self.starts + 1} at {time.strftime('%H:%M:%S')} =====\n")
        out.flush()
        self.proc = subprocess.Popen([sys.executable, "-m", "shian.cli", "run", "--config", str(self.config),
                                      "--loglevel", "warning"], stdout=out, stderr=out, cwd=self.work,
                                     env=dict(os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1"))
        out.close()
        self.starts += 1
        return self.proc

    def up(self, timeout: float = 90.0) -> bool:
        """Started and answering /health (False when it exited or never answered)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.health(timeout=2)[0] is not None:
                return True
            time.sleep(0.1)
        return False

    def health(self, timeout: float = 5) -> tuple[int | None, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"{self.base}/health", timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, _json_or_text(e.read())
        except (OSError, ValueError):
            return None, {}

    def post(self, events: list[dict[str, Any]], timeout: float = 120) -> tuple[int | None, dict[str, Any]]:
        """``POST /api/events`` of a JSON array: (status, answer), (None, {}) without an answer."""
        req = urllib.request.Request(f"{self.base}/api/events", data=json.dumps(events, ensure_ascii=False).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {FEED_TOKEN}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, _json_or_text(e.read())
        except (OSError, ValueError):
            return None, {}

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait; SIGKILL after ``timeout``. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        return self.proc.returncode

    def outbox_states(self) -> dict[str, int]:
        return db_rows(self.outbox, "SELECT state, COUNT(*) FROM deliveries GROUP BY state", dict)

    def settled(self) -> bool:
        """Nothing left to send: no delivery row pending or in flight (as ``/health`` says,
        else as the outbox file says)."""
        states = self.health(timeout=5)[1].get("outbox") or self.outbox_states()
        return bool(states) and not states.get("pending") and not states.get("sending")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _json_or_text(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
        return value if isinstance(value, dict) else {"body": value}
    except ValueError:
        return {"body": raw.decode("utf-8", "replace")[:500]}


def db_rows(path: Path, sql: str, shape: Callable[[list[Any]], Any] = list, args: tuple = ()) -> Any:
    """Rows of a query on a SQLite file, opened read-only for the query ({} / [] if it fails)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return shape(db.execute(sql, args).fetchall())
        finally:
            db.close()
    except sqlite3.Error:
        return shape([])


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` of a SQLite file ("ok" when it is sound)."""
    try:
        db = sqlite3.connect(path, timeout=10)
        try:
            return "; ".join(r[0] for r in db.execute("PRAGMA integrity_check").fetchall())
        finally:
            db.close()
    except sqlite3.Error as e:
        return f"{type(e).__name__}: {e}"
