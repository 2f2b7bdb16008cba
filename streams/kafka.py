"""The Kafka side of shian: topics, and ``shian ingest`` (kafka-python).

Topics, created by ``shian topics`` (never by broker auto-create):

| topic | partitions | key | value |
|---|---|---|---|
| ``events`` | ``--partitions`` (default 4) | township | one event, JSON, as the office sent it |
| ``notices`` | ``--partitions`` | notice key | one notice, §4 JSON |
| ``rejects`` | 1 | source | ``{"source", "line", "raw", "reason"}`` |

Event-time records carry the header ``shian-clock`` (replay's clock after the event, ISO
8601), except register rows (``entity``) sent before the clock has started, which have no
clock yet and never move it; clock ticks are records with the header ``shian-tick`` (``start`` or ``until``) and
the instant as value, sent to every partition (see :mod:`shian.streams.partitioned`).
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Callable

from shian.rules.config import Config
from shian.rules.events import Rejected, Validator
from shian.rules.records import Record, Reject
from shian.rules.timeutil import fmt, parse_time

from .partitioned import Stamped, Stamper, check_live_time, partition_of

EVENTS, NOTICES, REJECTS = "events", "notices", "rejects"
CLOCK_HEADER, TICK_HEADER = "shian-clock", "shian-tick"
PRODUCER_SETTINGS: dict[str, Any] = {"linger_ms": 50, "acks": "all", "batch_size": 256 * 1024, "compression_type": "gzip"}


_STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")  # what fmt() writes


class ClockDecoder:
    """A clock header's (or tick's) value as a datetime in ``tz``, as ``parse_time`` reads it.

    The worker reads one per record: the shape ``fmt`` writes takes a short path (C
    ``fromisoformat``, a quarter of ``parse_time``'s cost), a stamp equal to the previous one
    is not parsed again; anything else goes through ``parse_time`` (ValueError if unreadable)."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._last: tuple[bytes, datetime] | None = None

    def __call__(self, raw: bytes) -> datetime:
        last = self._last
        if last is not None and last[0] == raw:
            return last[1]
        if _STAMP.fullmatch(raw):
            at = datetime.fromisoformat(raw.decode()).astimezone(self.tz)
        else:
            at = parse_time(raw.decode(), self.tz)
        self._last = (raw, at)
        return at


def bootstrap(url: str) -> str:
    """``kafka://HOST:PORT`` (or a bare ``HOST:PORT``) as a bootstrap server address."""
    return url.removeprefix("kafka://").rstrip("/")


def create_topics(broker: str, partitions: int) -> list[str]:
    """Create the three topics if missing; returns the ones created."""
    from kafka.admin import KafkaAdminClient, NewTopic

    settings: dict[str, Any] = {}
    if "bootstrap_timeout_ms" in KafkaAdminClient.DEFAULT_CONFIG:  # kafka-python ≥ 3.0
        settings["bootstrap_timeout_ms"] = int(ONE_SHOT_SECONDS * 1000)
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap(broker), client_id="shian-topics", **settings)
    except no_answer() as e:
        raise unreachable(broker, e) from None
    try:
        existing = set(admin.list_topics())
        wanted = [(EVENTS, partitions), (NOTICES, partitions), (REJECTS, 1)]
        new = [NewTopic(name, n, 1) for name, n in wanted if name not in existing]
        if new:
            admin.create_topics(new)
        return [t.name for t in new]
    finally:
        admin.close()


PROBE_SECONDS = 5.0  # one attempt to reach a broker that is waited for
ONE_SHOT_SECONDS = 10.0  # how long shian topics / ingest try before they say the broker is not there


class BrokerUnreachable(Exception):
    """The broker did not answer in time; ``str()`` says so in Chinese, naming its address."""


def no_answer() -> tuple[type[BaseException], ...]:
    """kafka-python's errors for a broker that does not answer (``NoBrokersAvailable`` before 3.0)."""
    from kafka import errors

    names = ("NoBrokersAvailable", "KafkaTimeoutError", "KafkaConnectionError")
    return tuple(getattr(errors, name) for name in names if hasattr(errors, name))


def unreachable(broker: str, error: BaseException) -> BrokerUnreachable:
    return BrokerUnreachable(f"无法连接 Kafka {bootstrap(broker)}（{type(error).__name__}）："
                             f"请确认 broker 已启动、--broker 地址正确（如 kafka://127.0.0.1:9092）")


def event_partitions(broker: str, wait: float | None = 0.0,
                     log: Callable[[str], None] | None = None, pause: float = 5.0) -> int:
    """The partition count of ``events``. While the broker does not answer, or answers without
    an ``events`` topic, retry every ``pause`` seconds (saying so through ``log``) for up to
    ``wait`` seconds — ``None``: until it works — then :class:`BrokerUnreachable`, or
    ``SystemExit`` naming ``shian topics`` for the missing topic."""
    started = time.monotonic()
    while True:
        try:
            parts = _partitions_for_events(broker, probe=wait is None or wait > 0)
        except no_answer() as e:
            problem, fail = f"Kafka {bootstrap(broker)} 尚未就绪（{type(e).__name__}）", unreachable(broker, e)
        else:
            if parts:
                return len(parts)
            problem = f"Kafka {bootstrap(broker)} 上还没有主题 {EVENTS}"
            fail = SystemExit(f"主题 {EVENTS} 不存在：请先运行 shian topics --broker {broker}")
        if wait is not None and time.monotonic() - started + pause > wait:
            raise fail from None
        if log is not None:
            log(f"{problem}，{pause:g} 秒后重试")
        time.sleep(pause)


def _partitions_for_events(broker: str, probe: bool) -> set[int] | None:
    from kafka import KafkaConsumer

    settings: dict[str, Any] = {}
    if "bootstrap_timeout_ms" in KafkaConsumer.DEFAULT_CONFIG:  # kafka-python ≥ 3.0
        settings["bootstrap_timeout_ms"] = int((PROBE_SECONDS if probe else ONE_SHOT_SECONDS) * 1000)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap(broker), **settings)
    try:
        return consumer.partitions_for_topic(EVENTS)
    finally:
        consumer.close()


@dataclass
class IngestSummary:
    read: int = 0
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    ticks: int = 0
    partitions: int = 0

    def lines(self) -> list[str]:
        return [
            f"读入 {self.read} 条，发送 {self.sent}，重复 {self.duplicates}，拒收 {self.rejected}，"
            f"超出 --until 未发送 {self.skipped}；时钟信号 {self.ticks} 条（{self.partitions} 个分区）"
        ]


class Ingest:
    """Validates input like replay and publishes it to ``events``; rejects go to ``rejects``.

    With ``event_time`` every record is stamped with replay's clock and every partition gets
    the start tick before the first event and the ``until`` tick after the last."""

    def __init__(self, config: Config, producer: Any, partitions: int, *, event_time: bool,
                 until: datetime | None = None, on_reject: Callable[[Reject], None] | None = None) -> None:
        self.config, self.producer, self.partitions = config, producer, partitions
        self.event_time, self.until = event_time, until
        self.validator = Validator(config.known())
        self.stamper = Stamper(config, until)
        self.summary = IngestSummary(partitions=partitions)
        self._on_reject = on_reject
        self._started = False

    def _tick(self, kind: str, at: datetime) -> None:
        for p in range(self.partitions):
            self.producer.send(EVENTS, key=None, value=fmt(at).encode(), partition=p,
                               headers=[(TICK_HEADER, kind.encode())])
            self.summary.ticks += 1

    def _reject(self, rec: Record, reason: str) -> None:
        self.summary.rejected += 1
        reject = rec.reject(reason)
        self.producer.send(REJECTS, key=rec.source.encode(), value=json.dumps(reject.to_json(), ensure_ascii=False).encode())
        if self._on_reject is not None:
            self._on_reject(reject)

    def add(self, rec: Record) -> None:
        self.summary.read += 1
        try:
            if rec.reason is not None:
                raise Rejected(rec.reason)
            if rec.obj is not None:
                value = json.dumps(rec.obj, ensure_ascii=False)
                ev = self.validator.from_object(rec.obj)
            else:
                raw = rec.raw.encode() if isinstance(rec.raw, str) else rec.raw
                ev = self.validator.from_json(raw)
                value = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if self.event_time:
                out = self.stamper.stamp(ev)
            else:
                check_live_time(ev, datetime.now(self.config.tz))
                out = Stamped(ev, None)  # type: ignore[arg-type]
        except Rejected as r:
            self._reject(rec, r.reason)
            return
        if not isinstance(out, Stamped):
            if out == "duplicate":
                self.summary.duplicates += 1
            else:
                self.summary.skipped += 1
            return
        headers = []
        if self.event_time and out.clock is not None:
            if not self._started:
                self._tick("start", self.stamper.start)  # type: ignore[arg-type]
                self._started = True
            headers.append((CLOCK_HEADER, fmt(out.clock).encode()))
        self.producer.send(EVENTS, key=ev.township.encode(), value=value.encode(),
                           partition=partition_of(ev.township, self.partitions), headers=headers)
        self.summary.sent += 1

    def finish(self) -> IngestSummary:
        if self.event_time and self.until is not None and self._started:
            self._tick("until", self.until)
        self.producer.flush()
        return self.summary
