"""The fault-injection scenarios on Kafka (see ``bench/chaos.py``): the broker stopped and
restarted under load, the worker SIGKILLed three times, a damaged snapshot on the changelog.

The stream is the synthetic county of ``tests/kafka/synthetic.py`` (eight townships on four
partitions, about four months, many rules firing, late arrivals, resends, bad lines); the
expected notices are an in-process replay of the same file (the event-time pipeline must give
exactly those). ``shian notify`` delivers them to an SMTP server through its outbox, so a
redelivery on ``notices`` must still reach a mailbox once.

The stream's dates are months behind the wall clock, which the fault has nothing to do with:
catch-up summaries are off (``catch_up_after: null``, as in ``bench/notify_bench.py``), so
each notice goes as it would live. The reminders whose date has passed are still held by the
outbox (``notifiers/catchup.py``); which ones is asked of the same function the dispatcher
calls (:func:`shian.notifiers.catchup.holds`), and each must be found ``held`` in the outbox
(not mailed, not missing).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Literal

import yaml

from chaos_parts import ROOT, Mailbox, Row, SmtpSink, Tally, delivery_config, say, wait_for

PARTITIONS = 4
CHANGELOG = "shian-shian-engines-changelog"


from pathload import load_by_path  # noqa: E402


def broker_module() -> Any:
    return load_by_path("kafka_broker", ROOT / "scripts" / "kafka_broker.py")


def synthetic() -> Any:
    return load_by_path("synthetic", ROOT / "tests" / "kafka" / "synthetic.py")


def county(work: Path, sink: SmtpSink, **notifiers: Any) -> Path:
    """The synthetic county with an address for every department and delivery to ``sink``."""
    data = yaml.safe_load(synthetic().config_yaml())
    for dept, d in data["departments"].items():
        d["email"] = [f"{dept}@xiping.example"]
    data["notifiers"] = delivery_config(smtp=sink.smtp_config(), group_wait_seconds=5, catch_up_after=None,
                                        **notifiers)
    path = work / "county.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def replayed(config: Any, events: Path) -> dict[str, Any]:
    """Replay's notices of the file, by id (the first of each id)."""
    from shian.rules.timeutil import parse_time
    from shian.streams.replay import Replay

    notices: dict[str, Any] = {}
    Replay(config, lambda n: notices.setdefault(n.id, n), lambda r: None,
           until=parse_time(synthetic().UNTIL, config.tz)).run([str(events)])
    return notices


def held_by_catch_up(config: Any, notices: Iterable[Any], now: datetime,
                     within: timedelta = timedelta(hours=2)) -> dict[str, Literal["yes", "maybe"]]:
    """The notices the outbox's catch-up holds, by :func:`catchup.holds` (what the dispatcher
    asks before each send): ``yes`` when held at ``now`` with nothing stored (a reminder whose
    date has passed stays so), ``maybe`` when it depends on what is stored by then (its
    overdue notice) or on a date passing within ``within``."""
    from shian.notifiers import catchup

    everything = list(notices)
    by_rule: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for n in everything:
        by_rule[(n.rule, n.township)].append(n)

    def stored(rules: tuple[str, ...], township: str) -> list[Any]:
        return [n for r in rules for n in by_rule[(r, township)]]

    sure = catchup.holds(everything, now, config, lambda rules, township: [])
    later = catchup.holds(everything, now + within, config, stored)
    return {**{i: "maybe" for i in later}, **{i: "yes" for i in sure}}


class Notices:
    """The ``notices`` topic from the start, every record kept (kafka-python, no group)."""

    def __init__(self, bootstrap: str) -> None:
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer("notices", bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                      enable_auto_commit=False, group_id=None, reconnect_backoff_max_ms=2000)
        self.records: list[bytes] = []
        self.ids: set[str] = set()

    def poll(self, timeout: float = 0.5) -> int:
        got = 0
        for batch in self.consumer.poll(timeout_ms=int(timeout * 1000)).values():
            for msg in batch:
                self.records.append(msg.value)
                self.ids.add(json.loads(msg.value)["id"])
                got += 1
        return got

    def close(self) -> None:
        self.consumer.close()


class Deployment:
    """A broker, the topics, ``shian notify`` to an SMTP sink, and workers / ingest as
    subprocesses of one working folder."""

    def __init__(self, work: Path, lines: int, *, seed: int = 20260501) -> None:
        self.work = work
        self.tally = Tally()
        self.sink = SmtpSink(Mailbox(self.tally)).up()
        self.config = county(work, self.sink)
        self.events = work / "events.jsonl"
        synthetic().generate(self.events, lines, seed)
        from shian.notifiers.settings import parse
        from shian.rules.config import load

        config = load(self.config)
        self.outbox_path = parse(config).outbox
        made = replayed(config, self.events)
        self.expected = {i: json.loads(json.dumps(n.to_json(), ensure_ascii=False)) for i, n in made.items()}
        self.held = held_by_catch_up(config, made.values(), datetime.now(config.tz))
        for n in made.values():
            for dept in n.recipients:
                self.tally.expect(n.id, dept, "email", self.held.get(n.id, "no"))
        self._outbox: Any = None
        self.broker = broker_module().Broker(data_dir=work / "kafka")
        self.procs: dict[str, subprocess.Popen] = {}
        self.notices: Notices | None = None
        self.kills = 0  # worker crashes: each may redeliver a notice once more
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")

    @property
    def url(self) -> str:
        return f"kafka://{self.broker.bootstrap}"

    def start(self) -> None:
        self.broker.start()
        subprocess.run([sys.executable, "-m", "shian.cli", "topics", "--config", str(self.config), "--broker", self.url,
                        "--partitions", str(PARTITIONS)], check=True, timeout=120, env=self.env,
                       capture_output=True)
        self.notices = Notices(self.broker.bootstrap)
        self.spawn("notify", ["notify", "--loglevel", "info"])

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "a")
        log.write(f"\n===== {name} at {time.strftime('%H:%M:%S')} =====\n")
        log.flush()
        base = args[:1] + [*args[1:], "--config", str(self.config), "--broker", self.url]
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "shian.cli", *base], env=self.env,
                                            stdout=log, stderr=log, cwd=self.work)
        log.close()
        return self.procs[name]

    def worker(self, name: str) -> subprocess.Popen:
        return self.spawn(name, ["worker", "--event-time", "--data-dir", str(self.work / f"{name}-data"),
                                 "--loglevel", "info"])

    def ingest(self, path: Path | None = None) -> subprocess.Popen:
        return self.spawn("ingest", ["ingest", str(path or self.events), "--until", synthetic().UNTIL,
                                     "--no-progress"])

    def ready(self, name: str, timeout: float) -> bool:
        """Waits until the worker ``name`` says it is ready (False: it exited or timed out)."""
        return bool(wait_for(lambda: "Worker]: Ready" in self.log(name) or self.procs[name].poll() is not None,
                             timeout, 0.5)) and self.procs[name].poll() is None

    def log(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def follow(self, until: Any, timeout: float, alive: tuple[str, ...] = ()) -> bool:
        """Reads ``notices`` until ``until()`` or ``timeout``; False when it timed out or a
        process in ``alive`` exited."""
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                return False
            if any(self.procs[n].poll() is not None for n in alive):
                return False
            self.notices.poll(0.5)
        return True

    def all_out(self) -> bool:
        return self.notices.ids >= self.expected.keys()

    def drain(self, quiet: float = 5.0) -> None:
        """Reads until no record has come for ``quiet`` seconds (redeliveries, extras)."""
        until = time.monotonic() + quiet
        while time.monotonic() < until:
            if self.notices.poll(0.5):
                until = time.monotonic() + quiet

    def read_held(self) -> None:
        """The outbox's ``held`` rows into the tally (the outbox of ``shian notify``, read as
        the dashboard reads it)."""
        from shian.notifiers.outbox import Outbox

        if self._outbox is None:
            if not self.outbox_path.exists():
                return
            self._outbox = Outbox(self.outbox_path)
        self.tally.saw_held((d.notice_id, d.dept, d.channel) for d in self._outbox.deliveries(state="held")
                            if d.notice_id is not None)

    def accounted(self) -> bool:
        self.read_held()
        return not self.tally.lost()

    def mailed(self, timeout: float) -> bool:
        """Waits until every expected message reached the SMTP server and every reminder the
        catch-up holds is held in the outbox, then for quiet."""
        ok = wait_for(self.accounted, timeout, 1.0)
        last = -1
        while self.sink.mailbox.count != last:
            last = self.sink.mailbox.count
            time.sleep(2.0)
        self.read_held()
        return bool(ok)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(20)
        if self.notices is not None:
            self.notices.close()
        if self._outbox is not None:
            self._outbox.close()
        self.broker.stop()
        self.sink.down()

    def judge(self, row: Row) -> None:
        """The row's figures: the topic against replay, then the mailbox."""
        by_id: dict[str, list[bytes]] = defaultdict(list)
        for value in self.notices.records:
            by_id[json.loads(value)["id"]].append(value)
        extra = set(by_id) - set(self.expected)
        different = [i for i, vs in by_id.items() if i in self.expected
                     and any(json.loads(v) != self.expected[i] for v in vs)]
        topic_repeats = sum(len(vs) - 1 for vs in by_id.values())
        most = max((len(vs) for vs in by_id.values()), default=0)
        row.check("no notice on `notices` more often than once per worker crash, plus one", most <= self.kills + 1,
                  f"one id {most} times, {self.kills} crashes")
        row.check("every notice on `notices` is replay's (same id, same content)", not extra and not different,
                  f"{len(extra)} ids replay does not give, {len(different)} ids with other content")
        missing = set(self.expected) - set(by_id)
        row.note(f"`notices`: {len(self.notices.records)} records, {len(by_id)} ids of {len(self.expected)} expected, "
                 f"{len(missing)} missing; redelivered records {topic_repeats} "
                 f"({dict(Counter(json.loads(by_id[i][0])['rule'] for i, vs in by_id.items() if len(vs) > 1).most_common(4))})")
        mail_repeats = self.tally.repeats()
        self.read_held()
        row.expected = len(self.expected)
        row.delivered = self.tally.delivered_notices()
        row.lost = len(set(self.expected) - (set(by_id) & {n for n in self.expected if self.tally.notice_accounted(n)}))
        sure = sum(v == "yes" for v in self.held.values())
        held_rules = dict(Counter(self.expected[i]["rule"] for i in self.held).most_common())
        row.note(f"catch-up (notifiers/catchup.py): {sure} reminders held whatever comes first, "
                 f"{len(self.held) - sure} held or sent by what the outbox has stored by then {held_rules}; "
                 f"{self.tally.held_notices()} found held in the outbox, "
                 f"{len(self.tally.must_hold & set(self.tally.received))} of the must-hold ones mailed")
        row.redeliveries = topic_repeats
        row.duplicates = mail_repeats + len(extra) + len(different) + len(self.tally.unexpected())
        want, got = self.tally.messages()
        mailed = sum(1 for k in self.tally.received if k[1:] in self.tally.expected.get(k[0], ()))
        row.note(f"mailbox: {want} notice deliveries expected, {got} accounted for: {mailed} received in "
                 f"{self.sink.mailbox.count} messages ({mail_repeats} repeated), {len(self.tally.held)} held in the outbox")


# -- 3. broker stopped and restarted under load ----------------------------------------------------

def events_on_topic(bootstrap: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        tps = [TopicPartition("events", p) for p in range(PARTITIONS)]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def broker_restart(work: Path, quick: bool) -> Row:
    row = Row("3. Kafka broker stopped and restarted under load")
    lines = 20_000 if quick else 100_000
    dep = Deployment(work, lines)
    dep.kills = 1  # the broker's restart: what the worker had not committed comes again
    try:
        dep.start()
        dep.worker("worker")
        # the fault is the broker going away under a running worker: a worker still starting
        # exits on it (Faust declaring the changelog topic) and is its supervisor's to restart
        row.require("the worker started", dep.ready("worker", 300), dep.log("worker")[-400:])
        ingest = dep.ingest()
        half = wait_for(lambda: events_on_topic(dep.broker.bootstrap) >= lines * 0.4, 300, 0.2)
        row.check("ingest got under way", half and ingest.poll() is None,
                  "ingest already done" if ingest.poll() is not None else "")
        on_topic = events_on_topic(dep.broker.bootstrap)
        t = time.monotonic()
        dep.broker.stop()
        dep.notices.poll(0.5)
        say(f"  broker stopped with {on_topic} of {lines} events and {len(dep.notices.ids)} notices on the topics;"
            " down for 15 s")
        time.sleep(15)
        dep.broker.start()
        row.note(f"broker down {time.monotonic() - t:.0f} s (stop, 15 s, start) with {on_topic} of {lines} events on `events`; "
                 f"ingest {'still running' if ingest.poll() is None else 'exited ' + str(ingest.returncode)} at the restart")
        row.require("every expected notice on `notices`", dep.follow(dep.all_out, 600, ("worker",)),
                    f"{len(dep.notices.ids & dep.expected.keys())}/{len(dep.expected)}; worker "
                    f"{'exited ' + str(dep.procs['worker'].returncode) if dep.procs['worker'].poll() is not None else 'running'}")
        row.check("ingest finished without error", ingest.wait(120) == 0, dep.log("ingest")[-300:])
        dep.drain()
        row.check("the worker kept going", dep.procs["worker"].poll() is None)
        row.check("every message mailed or held as catch-up decides (shian notify through the outbox)", dep.mailed(600),
                  f"{len(dep.tally.lost())} deliveries missing; notify "
                  f"{'running' if dep.procs['notify'].poll() is None else 'exited ' + str(dep.procs['notify'].returncode)}")
        row.check("shian notify kept going", dep.procs["notify"].poll() is None, dep.log("notify")[-300:])
    finally:
        row.events = lines
        if dep.notices is not None:
            dep.judge(row)
        dep.stop()
    return row


# -- 4. worker SIGKILLed three times ----------------------------------------------------------------

def worker_killed(work: Path, quick: bool) -> Row:
    row = Row("4. Kafka worker SIGKILLed 3× during the run")
    lines = 20_000 if quick else 100_000
    dep = Deployment(work, lines)
    dep.kills = 3
    try:
        dep.start()
        name = "worker1"
        dep.worker(name)
        ingest = dep.ingest()
        for k, share in enumerate((0.2, 0.45, 0.7), start=2):
            want = int(share * len(dep.expected))
            row.require(f"{name} got to {share:.0%} of the notices",
                        dep.follow(lambda: len(dep.notices.ids) >= want, 600, (name,)),
                        f"{len(dep.notices.ids)}/{want}\n{dep.log(name)[-400:]}")
            os.kill(dep.procs[name].pid, signal.SIGKILL)
            dep.procs[name].wait(20)
            say(f"  {name} SIGKILLed with {len(dep.notices.ids)} notice ids out; "
                f"ingest {'running' if ingest.poll() is None else 'done'}")
            name = f"worker{k}"
            dep.worker(name)
        row.require("every expected notice on `notices`", dep.follow(dep.all_out, 900, (name,)),
                    f"{len(dep.notices.ids & dep.expected.keys())}/{len(dep.expected)}\n{dep.log(name)[-400:]}")
        row.check("ingest finished without error", ingest.wait(120) == 0, dep.log("ingest")[-300:])
        dep.drain()
        restored = dep.log("worker2") + dep.log("worker3") + dep.log("worker4")
        row.note(f"restored from the changelog: {restored.count('state restored')} partition states in workers 2–4")
        row.check("every message mailed once or held as catch-up decides (shian notify through the outbox)",
                  dep.mailed(900),
                  f"{len(dep.tally.lost())} deliveries missing")
    finally:
        row.events = lines
        if dep.notices is not None:
            dep.judge(row)
        dep.stop()
    return row


# -- 7b. damaged snapshot on the changelog ----------------------------------------------------------

def heads(bootstrap: str) -> dict[int, dict[bytes, bytes]]:
    """The table's latest value per key on each changelog partition."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    try:
        parts = sorted(consumer.partitions_for_topic(CHANGELOG) or ())
        consumer.assign([TopicPartition(CHANGELOG, p) for p in parts])
        state: dict[int, dict[bytes, bytes]] = {p: {} for p in parts}
        while True:
            got = consumer.poll(timeout_ms=2000)
            if not got:
                return state
            for tp, msgs in got.items():
                for m in msgs:
                    state[tp.partition][m.key] = m.value
    finally:
        consumer.close()


def damage(bootstrap: str, p: int, table: dict[bytes, bytes], how: str) -> tuple[bytes, bytes, str]:
    """Writes a damaged copy of partition ``p``'s current snapshot chunk 0 to the changelog;
    returns the key, the good value and what was done."""
    slot = table[f"engine-{p}".encode()].decode().split(":")[0]
    key = f"engine-{p}-{slot}-0".encode()
    value = table[key]
    if how == "truncated":
        bad = value[:len(value) // 2]
    else:  # "bit flipped at k/4"
        b = bytearray(value)
        b[len(b) * int(how[-3]) // 4] ^= 0x10
        bad = bytes(b)
    produce(bootstrap, CHANGELOG, p, key, bad)
    return key, value, f"{key.decode()} {how} ({len(value)} → {len(bad)} bytes)"


def produce(bootstrap: str, topic: str, p: int, key: bytes | None, value: bytes,
            headers: list[tuple[str, bytes]] | None = None) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(topic, key=key, value=value, partition=p, headers=headers or []).get(30)
    producer.close()


def resend_one(dep: Deployment, p: int) -> None:
    """An event the partition has already run, sent again at the end of the run's clock: a
    worker with its state takes it as a duplicate (no notice); one that starts from nothing
    would take it as new."""
    from shian.streams.partitioned import partition_of

    syn = synthetic()
    for line in dep.events.read_text(encoding="utf-8").splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict) and ev.get("type") in ("inspection", "sampling_result") and partition_of(ev["township"], PARTITIONS) == p:
            stamp = syn.UNTIL + "+08:00"
            produce(dep.broker.bootstrap, "events", p, ev["township"].encode(), line.encode(),
                    [("shian-clock", stamp.encode())])
            return
    raise RuntimeError(f"no event of partition {p} to send again")


def corrupt_worker_snapshot(work: Path, quick: bool) -> Row:  # long: one story, told in order
    row = Row("7b. corrupt worker snapshot on the changelog")
    lines = 6_000
    dep = Deployment(work, lines)
    dep.kills = 1
    try:
        dep.start()
        dep.worker("worker1")
        dep.ingest()
        row.require("first run complete", dep.follow(dep.all_out, 300, ("worker1",)), dep.log("worker1")[-300:])
        dep.drain(3)
        dep.procs["worker1"].send_signal(signal.SIGKILL)
        dep.procs["worker1"].wait(20)
        table = heads(dep.broker.bootstrap)
        ps = [p for p, t in table.items() if f"engine-{p}".encode() in t]
        row.require("snapshots on the changelog", ps, str({p: len(t) for p, t in table.items()}))
        p = ps[0]
        kinds = ("truncated", "bit flipped at 1/4", "bit flipped at 2/4", "bit flipped at 3/4")
        for k, how in enumerate(kinds, start=2):
            key, good, what = damage(dep.broker.bootstrap, p, table[p], how)
            say(f"  damaged {what}")
            before = len(dep.notices.records)
            name = f"worker{k}"
            proc = dep.worker(name)
            resend_one(dep, p)
            try:
                code = proc.wait(90)
            except subprocess.TimeoutExpired:
                code = None
            dep.notices.poll(1.0)
            said = next((ln.strip() for ln in dep.log(name).splitlines() if "无法恢复" in ln), "")
            row.check(f"{how}: the worker stops with a Chinese reason", code not in (None, 0) and said,
                      f"exit {code}; {said[:160] or 'no such line in its log'}")
            row.note(f"{how}: {what}; worker exit {code}; {len(dep.notices.records) - before} notice records after")
            if proc.poll() is None:
                proc.kill()
                proc.wait(20)
            produce(dep.broker.bootstrap, CHANGELOG, p, key, good)  # as it was, for the next case
        row.check("every message of the first run mailed once or held as catch-up decides", dep.mailed(600),
                  f"{len(dep.tally.lost())} deliveries missing")
    finally:
        row.events = lines
        if dep.notices is not None:
            dep.judge(row)
        dep.stop()
    return row
