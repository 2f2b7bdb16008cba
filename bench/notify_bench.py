#!/usr/bin/env python3
"""Delivery benchmark: notices through the outbox, the dispatcher and e-mail to a local SMTP server.

    python bench/notify_bench.py [--quick] [--notices N] [--connections K] [--out DIR] [--events E]
                                 [--townships T] [--seed S] [--group-wait S] [--timeout S]
                                 [--json PATH] [--profile PATH]

1. The notices: ``bench/replay_bench.py``'s synthetic county-year (``dataset``: generated, or
   reused when its manifest matches) run through the rules in process (``Replay``); the first N
   notices (§4 JSON, default 10,000) are kept, in the order the engine made them. Should the
   replay make fewer, the rest are copies with a new key (and so a new id).
2. An SMTP server (aiosmtpd) on 127.0.0.1, a free port, in a thread of this process; it counts
   the connections it accepts, the messages and recipients, and the distinct Message-IDs.
3. The county config of step 1 with a ``notifiers:`` section: SMTP to that server (security
   none, ``connections: K``, default 1), no quiet hours, no digest, the outbox in a temporary
   folder.
4. Each run in a child process of its own (so its peak RSS is the pipeline's alone): a fresh
   outbox; ``Dispatcher.submit_many`` of every notice (500 per SQLite transaction), then ``step``
   until no row is pending. Run "single": ``group_wait_seconds: 0`` (one message per notice
   and recipient department). Run "grouped": ``--group-wait`` seconds (default 30; 0 skips the
   run) on a clock moved past the wait after submitting, so every notice arrived inside one
   window: the most grouping the outbox can do (one message per rule, township and department).
   Before the measured window the child warms up as a long-running sender is after its first
   messages: every template compiled (``Renderer.load_templates``) and the SMTP library
   imported; one-off start-up costs are not counted per message.

Prints a readable summary, writes ``<out>/notify_bench.json`` (default ``bench/out/``) and
exits 0. A benchmark measures, it does not assert: a mismatch between the messages the outbox
marked sent and those the server received is printed as a ``MISMATCH`` line. ``--quick``:
2,000 notices (a minute or so); ``--json PATH``: the target rows (``bench/targets.py``) —
per run the sender's CPU per message against the server's (target: ratio ≤ 1), notices/s and
messages/s end to end, and whether every message sent arrived once; ``--profile PATH``: the
single run's child profiled (cProfile, CPU time), its stats written to PATH (the figures of
that run are then the profiler's, not the pipeline's).

The server shares the machine (and, being in the parent, not the child's CPU) with the
pipeline; its CPU seconds are reported beside the child's.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

DIR = Path(__file__).resolve().parent
SENDER = "西平县食安办 <shianban@xiping.example>"
_HEAD = 2048  # Message-ID is the fifth header
FULL_NOTICES = 10_000
QUICK_NOTICES = 2_000
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def load_by_path(name: str, path: Path) -> Any:
    """bench/ is not a package: import a script by its path (once)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def replay_bench() -> Any:
    return load_by_path("replay_bench", DIR / "replay_bench.py")


# --------------------------------------------------------------------------- the notices

def make_notices(out: Path, n: int, events: int, townships: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """The first ``n`` notices of a replay of the synthetic county, as JSON Lines, and the config."""
    from shian.rules.config import load
    from shian.rules.notice import notice_id
    from shian.streams.replay import Replay

    rb = replay_bench()
    t0 = time.perf_counter()
    m = rb.dataset(out, events, townships, seed, False)
    gen_seconds = time.perf_counter() - t0
    config = load(m["config_path"])
    notices: list[dict[str, Any]] = []

    def keep(notice: Any) -> None:
        if len(notices) < n:
            notices.append(notice.to_json())

    until = datetime(rb.UNTIL.year, rb.UNTIL.month, rb.UNTIL.day, tzinfo=config.tz)
    t0 = time.perf_counter()
    summary = Replay(config, on_notice=keep, on_reject=lambda r: None, until=until).run([m["events_path"]])
    replay_seconds = time.perf_counter() - t0
    made = sum(summary.notices.values())
    real = len(notices)
    copies = 0
    while len(notices) < n and real:
        src = notices[copies % real]
        copies += 1
        key = f"{src['key']}|bench-copy-{copies}"
        notices.append({**src, "key": key, "id": notice_id(key)})
    path = out / f"notify_bench_notices_{n}.jsonl"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for notice in notices:
            f.write(json.dumps(notice, ensure_ascii=False, separators=(",", ":")) + "\n")
    info = {
        "events": m["lines"], "townships": townships, "seed": seed, "data_reused": m["reused"],
        "data_seconds": round(gen_seconds, 1), "replay_seconds": round(replay_seconds, 1),
        "notices_made_by_replay": made, "notices_from_replay": real, "notices_copied": copies,
        "by_rule": dict(Counter(x["rule"] for x in notices).most_common()),
        "by_severity": dict(Counter(x["severity"] for x in notices).most_common()),
        "recipients_per_notice": dict(sorted(Counter(len(x["recipients"]) for x in notices).items())),
        "config_path": m["config_path"],
    }
    return path, info


def bench_config(county_yaml: str, outbox: Path, port: int, group_wait: float, connections: int = 1) -> str:
    """The county config with a ``notifiers:`` section that mails the local server."""
    head, sep, _ = county_yaml.rpartition("notifiers: {}")
    assert sep, "the county config has no 'notifiers: {}' line to replace"
    section = "\n".join([
        "notifiers:",
        f"  outbox: {json.dumps(str(outbox))}",
        f"  smtp: {{host: 127.0.0.1, port: {port}, security: none, from: {json.dumps(SENDER, ensure_ascii=False)},"
        f" timeout_seconds: 30, connections: {connections}}}",
        f"  group_wait_seconds: {group_wait}",
        "  quiet_hours: false",
        "  digest: null",
        "  catch_up_after: null",  # every notice goes as itself, however old the replay's dates are
    ])
    return head + section + "\n"


# --------------------------------------------------------------------------- the SMTP server

class Counts:
    """What the server saw; touched only on its event loop's thread."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.connections = 0
        self.open = 0
        self.max_open = 0
        self.messages = 0
        self.recipients = 0
        self.bytes = 0
        self.heads: list[bytes] = []
        self.cpu0 = time.thread_time()

    def snapshot(self) -> dict[str, Any]:
        cpu = time.thread_time() - self.cpu0
        ids = {m.group(1) for m in (_MESSAGE_ID.search(h) for h in self.heads) if m}
        return {"connections": self.connections, "open_connections": self.open,
                "max_concurrent_connections": self.max_open, "messages": self.messages,
                "recipients": self.recipients, "bytes": self.bytes,
                "distinct_message_ids": len(ids), "cpu_seconds": round(cpu, 2)}


class Handler:
    """Counts, and keeps each message's head for the Message-ID check made after the run, so
    that the server's CPU is aiosmtpd's own (the floor the sender is measured against)."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        c = self.counts
        c.messages += 1
        c.recipients += len(envelope.rcpt_tos)
        data = envelope.original_content or envelope.content or b""
        c.bytes += len(data)
        c.heads.append(data[:_HEAD])
        return "250 OK"


class Server:
    """aiosmtpd on 127.0.0.1 and a port the kernel picks, on an event loop in a thread."""

    def __init__(self) -> None:
        self.counts = Counts()
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._run, name="smtp-server", daemon=True)
        self._ready = threading.Event()

    def _factory(self) -> Any:
        from aiosmtpd.smtp import SMTP

        counts = self.counts

        class CountingSMTP(SMTP):
            def connection_made(self, transport: Any) -> None:
                counts.connections += 1
                counts.open += 1
                counts.max_open = max(counts.max_open, counts.open)
                super().connection_made(transport)

            def connection_lost(self, exc: BaseException | None) -> None:
                counts.open -= 1
                super().connection_lost(exc)

        # a fixed hostname: SMTP() would otherwise ask the resolver for this machine's FQDN
        return CountingSMTP(Handler(counts), hostname="notify-bench.localhost")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(self.loop.create_server(self._factory, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self.counts.reset()
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the SMTP server did not start")

    def _call(self, fn: Any) -> Any:
        async def on_loop() -> Any:
            return fn()
        return asyncio.run_coroutine_threadsafe(on_loop(), self.loop).result(10)

    def reset(self) -> None:
        self._call(self.counts.reset)

    def snapshot(self, settle_seconds: float = 5.0) -> dict[str, Any]:
        """The counts once the client's connections are closed (QUIT is answered before the
        server sees the connection go)."""
        deadline = time.monotonic() + settle_seconds
        while self._call(lambda: self.counts.open) and time.monotonic() < deadline:
            time.sleep(0.02)
        return self._call(self.counts.snapshot)

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            await self._server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


# --------------------------------------------------------------------------- one run (child)

async def deliver(config_path: str, notices_path: str, group_wait: float, timeout: float) -> dict[str, Any]:
    """Submit every notice to a fresh outbox, then step the dispatcher until nothing is pending."""
    from shian.notifiers.channels import build
    from shian.notifiers.dispatch import Dispatcher
    from shian.notifiers.outbox import Outbox
    from shian.notifiers.render import Renderer
    from shian.notifiers.settings import parse
    from shian.rules.config import load
    from shian.rules.notice import Notice

    settings = parse(load(config_path))
    with open(notices_path, encoding="utf-8") as f:  # read before the clock starts, as before
        notices = [Notice.from_json(json.loads(line), settings.config.tz) for line in f]
    outbox = Outbox(settings.outbox, settings)
    channels = build(settings)
    offset = timedelta(0)
    tz = settings.config.tz

    def now() -> datetime:
        return datetime.now(tz) + offset

    renderer = Renderer(settings)
    dispatcher = Dispatcher(settings, outbox, channels, renderer, now=now)
    # Warmed up before the clock starts, as a long-running sender is after its first minute:
    # every template compiled and the SMTP library imported (one-off costs, not per message).
    renderer.load_templates()
    import aiosmtplib  # noqa: F401
    rss_now_kib = replay_bench().rss_now_kib
    rss_before = rss_now_kib()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)

    t0 = time.perf_counter()
    accepted = dispatcher.submit_many(notices)
    submit_seconds = time.perf_counter() - t0
    rows = outbox.state_counts()

    if group_wait > 0:
        offset = timedelta(seconds=group_wait + 1)  # every group's wait is over
    steps = delivered = 0
    t1 = time.perf_counter()
    timed_out = False
    while True:
        got = await dispatcher.step()
        steps += 1
        delivered += got
        counts = outbox.state_counts()
        if counts["pending"] == 0 and counts["sending"] == 0:
            break
        if time.perf_counter() - t1 > timeout:
            timed_out = True
            break
        if got == 0:
            await asyncio.sleep(0.05)  # something waits for a retry; the real loop polls each second
    deliver_seconds = time.perf_counter() - t1
    await dispatcher.close()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)

    db = outbox.db
    sent_messages = db.execute(
        "SELECT COUNT(DISTINCT batch_id) FROM deliveries WHERE state = 'sent'").fetchone()[0]
    by_channel = dict(db.execute("SELECT channel, COUNT(*) FROM deliveries GROUP BY channel").fetchall())
    errors = dict(Counter(r[0] for r in db.execute(
        "SELECT last_error FROM deliveries WHERE state NOT IN ('sent', 'held') AND last_error != ''")).most_common(5))
    failure_notices = db.execute("SELECT COUNT(*) FROM notices WHERE rule = 'delivery.failed'").fetchone()[0]
    outbox_bytes = sum(p.stat().st_size for p in Path(settings.outbox).parent.glob(Path(settings.outbox).name + "*"))
    outbox.close()
    email = channels.get("email")
    return {
        "group_wait_seconds": group_wait, "notices": len(notices), "accepted": accepted,
        "delivery_rows": sum(rows.values()), "rows_by_channel": by_channel,
        "submit_seconds": submit_seconds, "deliver_seconds": deliver_seconds, "steps": steps,
        "delivered_by_steps": delivered, "outbox_messages_sent": sent_messages,
        "final_states": counts, "timed_out": timed_out, "errors": errors,
        "delivery_failed_notices": failure_notices,
        "channel_connections": getattr(email, "connections", None),
        "cpu_user_seconds": cpu1.ru_utime - cpu0.ru_utime, "cpu_sys_seconds": cpu1.ru_stime - cpu0.ru_stime,
        "rss_before_kib": rss_before, "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "outbox_bytes": outbox_bytes,
    }


async def bare_client(port: int, messages: int, size: int) -> dict[str, Any]:
    """The floor of the client side: aiosmtplib alone sending ``messages`` ready-made messages
    of ``size`` bytes, each to one address, one after the other on one connection (``sendmail``,
    as any user of the library would), no outbox, no rendering."""
    import aiosmtplib

    body = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
    await client.connect()
    for i in range(messages):
        head = f"From: a@bench.example\r\nTo: b@bench.example\r\nMessage-ID: <bare-{i}@bench>\r\n\r\n".encode()
        await client.sendmail("a@bench.example", ["b@bench.example"], head + body)
    await client.quit()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"messages": messages, "size": len(body), "seconds": time.perf_counter() - t0,
            "cpu_user_seconds": cpu1.ru_utime - cpu0.ru_utime, "cpu_sys_seconds": cpu1.ru_stime - cpu0.ru_stime}


def run_bare(port: int, messages: int, size: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--bare-port", str(port),
           "--bare-messages", str(messages), "--bare-size", str(size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8")
    if proc.returncode != 0:
        raise RuntimeError(f"bare client failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_child(config_path: Path, notices_path: Path, group_wait: float, timeout: float,
              profile: Path | None = None) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--config-file", str(config_path),
           "--notices-file", str(notices_path), "--group-wait", str(group_wait), "--timeout", str(timeout)]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8")
    if proc.returncode != 0:
        raise RuntimeError(f"delivery run failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report

def summarise(name: str, r: dict[str, Any], server: dict[str, Any]) -> dict[str, Any]:
    total = r["submit_seconds"] + r["deliver_seconds"]
    messages = r["outbox_messages_sent"]
    return {
        "run": name, "group_wait_seconds": r["group_wait_seconds"],
        "notices": r["notices"], "accepted": r["accepted"], "delivery_rows": r["delivery_rows"],
        "seconds_total": round(total, 2), "seconds_submit": round(r["submit_seconds"], 2),
        "seconds_deliver": round(r["deliver_seconds"], 2),
        "notices_per_s": round(r["notices"] / total, 1),
        "submit_notices_per_s": round(r["notices"] / r["submit_seconds"], 1),
        "deliver_notices_per_s": round(r["notices"] / r["deliver_seconds"], 1),
        "messages_per_s": round(messages / total, 1),
        "deliver_messages_per_s": round(messages / r["deliver_seconds"], 1),
        "outbox_messages_sent": messages, "delivered_by_steps": r["delivered_by_steps"],
        "server_messages_received": server["messages"], "server_recipients": server["recipients"],
        "server_distinct_message_ids": server["distinct_message_ids"], "server_bytes": server["bytes"],
        "smtp_connections_server": server["connections"],
        "smtp_max_concurrent_connections": server["max_concurrent_connections"],
        "smtp_connections_channel": r["channel_connections"],
        "steps": r["steps"], "final_states": r["final_states"], "timed_out": r["timed_out"],
        "errors": r["errors"], "delivery_failed_notices": r["delivery_failed_notices"],
        "child_cpu_seconds": round(r["cpu_user_seconds"] + r["cpu_sys_seconds"], 2),
        "child_cpu_user_seconds": round(r["cpu_user_seconds"], 2), "child_cpu_sys_seconds": round(r["cpu_sys_seconds"], 2),
        "server_cpu_seconds": server["cpu_seconds"],
        "peak_rss_mb": round(r["peak_rss_kib"] / 1024, 1),
        "rss_before_submit_mb": round((r["rss_before_kib"] or 0) / 1024, 1),
        "outbox_mb": round(r["outbox_bytes"] / 2**20, 1),
        **cpu_per_message(r["cpu_user_seconds"] + r["cpu_sys_seconds"], server["cpu_seconds"], messages),
        "matches": (messages == server["messages"] == r["delivered_by_steps"]
                    == server["distinct_message_ids"]),
    }


def summarise_bare(b: dict[str, Any], server: dict[str, Any]) -> dict[str, Any]:
    return {"messages": b["messages"], "message_bytes": b["size"], "seconds": round(b["seconds"], 2),
            "server_messages_received": server["messages"],
            "client_cpu_user_seconds": round(b["cpu_user_seconds"], 2),
            "client_cpu_sys_seconds": round(b["cpu_sys_seconds"], 2),
            **cpu_per_message(b["cpu_user_seconds"] + b["cpu_sys_seconds"], server["cpu_seconds"], b["messages"])}


def cpu_per_message(sender_cpu: float, server_cpu: float, messages: int) -> dict[str, Any]:
    """The target: the sender's CPU per message at most the SMTP server's (aiosmtpd, counting only)."""
    result = 1000 * sender_cpu / max(1, messages)
    floor = 1000 * server_cpu / max(1, messages)
    ratio = result / floor if floor else float("inf")
    return {"cpu_per_message": {"measure": "sender CPU ms per message", "result": round(result, 3),
                                "floor": round(floor, 3), "ratio": round(ratio, 2), "target": "ratio ≤ 1",
                                "met": ratio <= 1}}


def report_lines(rep: dict[str, Any]) -> list[str]:
    d = rep["data"]
    lines = [
        f"shian delivery benchmark: {rep['notices']:,} notices → outbox → dispatcher → e-mail "
        f"(aiosmtpd on 127.0.0.1:{rep['smtp_port']}), {rep['departments']} departments",
        f"  notices: {d['notices_from_replay']:,} from a replay of {d['events']:,} events "
        f"({d['townships']} townships, seed {d['seed']}, {d['notices_made_by_replay']:,} made)"
        + (f" + {d['notices_copied']:,} copies with new keys" if d["notices_copied"] else "")
        + f"; recipients per notice {d['recipients_per_notice']}",
        "  each run measured after a warm-up (every template compiled, the SMTP library imported):"
        " start-up costs are not counted per message",
    ]
    for r in rep["runs"]:
        lines += [
            "",
            f"  run {r['run']!r} (group_wait_seconds {r['group_wait_seconds']:g}):",
            f"    end to end          {r['notices_per_s']:>10,} notices/s  {r['messages_per_s']:>10,} messages/s"
            f"  ({r['seconds_total']} s)",
            f"    submit (outbox)     {r['submit_notices_per_s']:>10,} notices/s"
            f"                        ({r['seconds_submit']} s, 500 notices per transaction)",
            f"    deliver (steps)     {r['deliver_notices_per_s']:>10,} notices/s  "
            f"{r['deliver_messages_per_s']:>10,} messages/s  ({r['seconds_deliver']} s, {r['steps']} steps)",
            f"    messages            outbox sent {r['outbox_messages_sent']:,}, server received "
            f"{r['server_messages_received']:,} ({r['server_distinct_message_ids']:,} distinct Message-IDs, "
            f"{r['server_recipients']:,} recipients, {r['server_bytes'] / 2**20:.1f} MB)",
            f"    SMTP connections    server {r['smtp_connections_server']}, channel {r['smtp_connections_channel']}"
            f" (at most {r['smtp_max_concurrent_connections']} at once)",
            f"    delivery rows       {r['delivery_rows']:,}: {r['final_states']}",
            f"    CPU                 pipeline {r['child_cpu_seconds']} s (user {r['child_cpu_user_seconds']}, "
            f"system {r['child_cpu_sys_seconds']}), SMTP server {r['server_cpu_seconds']} s",
            "    CPU per message     " + ", ".join(f"{k} {v}" for k, v in r["cpu_per_message"].items()),
            f"    peak RSS            {r['peak_rss_mb']} MB ({r['rss_before_submit_mb']} MB after imports, "
            f"config and notices); outbox file {r['outbox_mb']} MB",
        ]
        if not r["matches"] or r["timed_out"] or r["errors"]:
            lines.append(f"    MISMATCH: outbox sent {r['outbox_messages_sent']}, steps delivered "
                         f"{r['delivered_by_steps']}, server received {r['server_messages_received']} "
                         f"({r['server_distinct_message_ids']} distinct); timed out {r['timed_out']}; "
                         f"errors {r['errors']}")
    b = rep.get("bare_client")
    if b:
        c = b["cpu_per_message"]
        lines += ["", f"  bare aiosmtplib client ({b['messages']:,} ready-made messages of {b['message_bytes']:,} bytes, "
                      f"sendmail on one connection; server received {b['server_messages_received']:,}):",
                  f"    CPU per message     client {c['result']} ms (user {b['client_cpu_user_seconds']} s, system "
                  f"{b['client_cpu_sys_seconds']} s), SMTP server {c['floor']} ms, ratio {c['ratio']}"]
    return lines


def child(args: argparse.Namespace) -> int:
    """One run in this (child) process; its result as one JSON line on stdout."""
    if args.bare_port:
        result = asyncio.run(bare_client(args.bare_port, args.bare_messages, args.bare_size))
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    run = deliver(args.config_file, args.notices_file, args.group_wait, args.timeout)
    if args.profile is None:
        result = asyncio.run(run)
    else:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU time: waiting for the server or a sync is not a cost
        result = profiler.runcall(asyncio.run, run)
        profiler.dump_stats(str(args.profile))
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    return 0


def target_rows(runs: list[dict[str, Any]], bare: dict[str, Any]) -> list[Any]:
    """The benchmark's rows of ``bench/targets.py``: per run, CPU per message (the target),
    the rates (reported), and whether every message marked sent arrived, once."""
    Target = load_by_path("targets", DIR / "targets.py").Target
    rows = []
    for r in runs:
        c = r["cpu_per_message"]
        what = "each notice alone" if r["group_wait_seconds"] == 0 else f"grouped ({r['group_wait_seconds']:g} s)"
        rows += [
            Target("delivery", f"sender CPU per message, {what}", f"{c['result']:.3f} ms",
                   f"{c['floor']:.3f} ms (SMTP server)", f"{c['ratio']:.2f}", "≤ 1", c["met"]),
            Target("delivery", f"end to end notices/s, {what}", f"{r['notices_per_s']:,.0f}"),
            Target("delivery", f"end to end messages/s, {what}", f"{r['messages_per_s']:,.0f}"),
            Target("delivery", f"messages sent = received, no duplicates, {what}",
                   f"{r['outbox_messages_sent']:,} / {r['server_messages_received']:,} "
                   f"({r['server_distinct_message_ids']:,} distinct)", target="equal, all distinct",
                   met=r["matches"] and not r["timed_out"]),
        ]
    if bare:
        c = bare["cpu_per_message"]
        rows.append(Target("delivery", "bare aiosmtplib client CPU per message (ready-made messages)",
                           f"{c['result']:.3f} ms", f"{c['floor']:.3f} ms (SMTP server)", f"{c['ratio']:.2f}"))
    return rows


def run_all(args: argparse.Namespace, county_yaml: str, notices_path: Path
            ) -> tuple[list[dict[str, Any]], dict[str, Any], int, int]:
    """The runs (each in a child of its own) against one server, then the bare client's; the
    runs' summaries, the bare client's, the number of departments and the server's port."""
    server = Server()
    server.start()
    work = Path(tempfile.mkdtemp(prefix="shian-notify-bench-"))
    runs = []
    try:
        plan = [("single", 0.0)] + ([("grouped", args.group_wait)] if args.group_wait > 0 else [])
        for name, wait in plan:
            run_dir = work / name
            run_dir.mkdir()
            config_path = run_dir / "county.yaml"
            config_path.write_text(bench_config(county_yaml, run_dir / "outbox.sqlite", server.port, wait,
                                                args.connections), encoding="utf-8")
            server.reset()
            print(f"run {name!r}: delivering …", flush=True)
            r = run_child(config_path, notices_path, wait, args.timeout, args.profile if name == "single" else None)
            runs.append(summarise(name, r, server.snapshot()))
        single = runs[0]
        server.reset()
        print("bare aiosmtplib client: sending …", flush=True)
        b = run_bare(server.port, single["server_messages_received"],
                     single["server_bytes"] // max(1, single["server_messages_received"]))
        bare = summarise_bare(b, server.snapshot())
        from shian.rules.config import load
        departments = len(load(str(work / "single" / "county.yaml")).departments)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return runs, bare, departments, server.port


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notices", type=int, help=f"notices to deliver (default {FULL_NOTICES:,}; --quick {QUICK_NOTICES:,})")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_NOTICES:,} notices (a minute or so)")
    ap.add_argument("--connections", type=int, default=1, help="smtp.connections of the runs (default 1)")
    ap.add_argument("--json", type=Path, help="write the target rows (bench/targets.py) here")
    ap.add_argument("--profile", type=Path, help="profile the single run's child (CPU time); its stats here")
    ap.add_argument("--out", type=Path, default=DIR / "out", help="work and report folder (default bench/out/)")
    ap.add_argument("--events", type=int, help="events of the replay (default 16 per notice, at least 20,000)")
    ap.add_argument("--townships", type=int, default=24)
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument("--group-wait", type=float, default=30.0,
                    help="group_wait_seconds of the grouped run (0: no grouped run)")
    ap.add_argument("--timeout", type=float, default=600.0, help="give up a run's delivery after this many seconds")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bare-port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--bare-messages", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--bare-size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--config-file", help=argparse.SUPPRESS)
    ap.add_argument("--notices-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    if args.quick and args.notices is None:
        args.notices = QUICK_NOTICES
    args.notices = args.notices or FULL_NOTICES

    args.out.mkdir(parents=True, exist_ok=True)
    events = args.events or max(20_000, 16 * args.notices)
    t0 = time.perf_counter()
    notices_path, data = make_notices(args.out, args.notices, events, args.townships, args.seed)
    print(f"notices: {notices_path} ({data['notices_from_replay']:,} from the replay, "
          f"{data['notices_copied']:,} copies; {time.perf_counter() - t0:.0f} s)", flush=True)
    county_yaml = Path(data.pop("config_path")).read_text(encoding="utf-8")

    runs, bare, departments, port = run_all(args, county_yaml, notices_path)

    rep = {
        "notices": args.notices, "smtp_port": port, "departments": departments, "data": data,
        "smtp_connections_configured": args.connections,
        "runs": runs, "bare_client": bare, "python": sys.version.split()[0], "platform": platform.platform(),
        "cpus": os.cpu_count(), "outbox_filesystem_dir": tempfile.gettempdir(),
    }
    print("\n".join(report_lines(rep)))
    path = args.out / "notify_bench.json"
    path.write_text(json.dumps(rep, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"report: {path}")
    if args.json is not None:
        load_by_path("targets", DIR / "targets.py").write_rows(args.json, target_rows(runs, bare))
        print(f"target rows: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
