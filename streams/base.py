"""What every runtime behind the office's pages has in common: the event journal and rejects
(:class:`~shian.streams.store.Store`), the delivery outbox, the counters, and the answers the
office asks for (notices, 签收 / 办结, rejects, silences, counts).

The embedded service (:mod:`shian.streams.service`) and the Kafka follower
(:mod:`shian.streams.follower`) each build on it and add how events come in and where the
rules run; together they implement the office's ``Runtime`` interface
(:mod:`shian.office.runtime`) structurally — this package does not import the office.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from shian.notifiers.delivery import open_dispatcher
from shian.notifiers.outbox import Delivery, NoticeQuery
from shian.notifiers.settings import Settings as DeliverySettings
from shian.notifiers.silences import StoredSilence
from shian.rules.config import Config
from shian.rules.events import Validator
from shian.rules.notice import Notice
from shian.rules.records import REJECTED, Outcome, Record, Reject, ack_event

from .sources import read_bytes
from .store import Store

CHUNK = 200  # records accepted between two yields to the event loop


class Storage(Protocol):
    """Where a runtime keeps its data (the ``service:`` section gives it)."""

    @property
    def events_db(self) -> Path: ...
    snapshot_every: int
    drop_dir: Path | None


@dataclass
class Metrics:
    events: Counter = field(default_factory=Counter)      # accepted, by type
    duplicates: int = 0
    rejects: int = 0
    notices: Counter = field(default_factory=Counter)     # by rule
    started: float = field(default_factory=time.time)
    last_tick: float = 0.0


class RuntimeBase:
    """The journal, the outbox and the office's questions; subclasses say how events come in
    (``accept_records``, ``ack``), where the clock is (``clock``) and how they run (``run``)."""

    def __init__(self, config: Config, storage: Storage, delivery: DeliverySettings, *,
                 now: Callable[[], datetime] | None = None) -> None:
        self.config, self.storage, self.delivery = config, storage, delivery
        self.now = now or (lambda: datetime.now(config.tz))
        self.store = Store(storage.events_db, config.tz)
        self.dispatcher = open_dispatcher(delivery, now=self.now)
        self.outbox = self.dispatcher.outbox
        self.validator = Validator(config.known())
        self.metrics = Metrics()

    # -- input ---------------------------------------------------------------------------

    def accept_records(self, records: Iterable[Record], *, mode: str = "live") -> list[Outcome]:
        raise NotImplementedError

    def accept_object(self, obj: Any, source: str, line: Any = None, *, mode: str = "live") -> Outcome:
        """One event as a JSON value (already parsed) or text."""
        text = isinstance(obj, (str, bytes))
        [outcome] = self.accept_records([Record(source, line, obj if text else "", None if text else obj)], mode=mode)
        return outcome

    def ack(self, notice_id: str, dept: str, action: str = "签收", note: str | None = None) -> Outcome:
        """签收 / 办结 of a notice by one of its recipients, as an ``ack`` event at this clock."""
        notice = self.outbox.notice(notice_id)
        if notice is None:
            return Outcome(REJECTED, reason=f"没有编号为 {notice_id} 的通知")
        if dept not in notice.recipients:
            return Outcome(REJECTED, reason=f"部门 {dept} 不是该通知的接收部门")
        obj = ack_event(notice_id, notice.township, dept, action, self.now(), note)
        return self.accept_object(obj, f"ack:{dept}")

    async def accept_file(self, data: bytes, filename: str, source: str) -> list[Outcome]:
        """An upload or a request body, read like a file of that name (off the event loop),
        then accepted in chunks so that the clock, the sender and other requests keep running.
        Raises :class:`~shian.rules.records.UnreadableInput` for a JSON body that is not JSON."""
        records = await asyncio.to_thread(read_bytes, data, filename, source)
        outcomes: list[Outcome] = []
        for start in range(0, len(records), CHUNK):
            outcomes += self.accept_records(records[start:start + CHUNK])
            await asyncio.sleep(0)
        return outcomes

    def reject(self, rec: Record, reason: str | None = None) -> Outcome:
        """``rec`` refused: kept in the store's rejects (the office sees them) and answered."""
        r = rec.reject(reason)
        self.store.add_reject(r, self.now())
        self.metrics.rejects += 1
        return Outcome(REJECTED, rec.line, reason=r.reason)

    # -- what the office reads ---------------------------------------------------------------

    def notice(self, notice_id: str) -> Notice | None:
        return self.outbox.notice(notice_id)

    def notices(self, since: datetime | None = None, until: datetime | None = None,
                dept: str | None = None) -> list[Notice]:
        return self.outbox.notices(since, until, dept)

    def notices_after(self, row: int) -> tuple[int, list[Notice]]:
        return self.outbox.notices_after(row)

    def deliveries_of(self, notice_id: str) -> list[Delivery]:
        return self.outbox.deliveries_of(notice_id)

    def notice_page(self, query: NoticeQuery, offset: int = 0, limit: int = 50) -> tuple[int, list[Notice]]:
        return self.outbox.notice_page(query, offset, limit)

    def notice_counts(self, query: NoticeQuery) -> dict[str, int]:
        return self.outbox.notice_counts(query)

    def notice_span(self) -> tuple[datetime, datetime] | None:
        return self.outbox.notice_span()

    def silenced_ids(self) -> set[str]:
        return self.outbox.silenced_ids()

    def acks_after(self, seq: int) -> tuple[int, list[dict[str, Any]]]:
        """The ack events journalled after row ``seq``, and the last row read."""
        return self.store.events_after(seq, ("ack",))

    def rejects(self, limit: int = 100) -> list[Reject]:
        return self.store.rejects(limit)

    def counts(self) -> dict[str, Any]:
        """Events and rejects kept, deliveries by state (raises when the databases fail)."""
        return {**self.store.counts(), "outbox": self.outbox.state_counts()}

    def next_delivery(self) -> datetime | None:
        return self.outbox.next_due()

    # -- silences ------------------------------------------------------------------------------

    def configured_silences(self) -> list[Any]:
        return list(self.delivery.silences)

    def silences(self, now: datetime) -> list[StoredSilence]:
        return self.outbox.silences(now)

    def add_silence(self, rule: str | None, township: str | None, start: datetime, end: datetime,
                    comment: str, by: str) -> StoredSilence:
        now = self.now()
        sid = self.outbox.add_silence(rule, township, start, end, comment, by, now=now)
        return next(s for s in self.outbox.silences(now) if s.id == sid)

    def expire_silence(self, silence_id: int) -> StoredSilence | None:
        """Ends an active or future silence now; returns it as ended (None: no such silence)."""
        now = self.now()
        silence = next((s for s in self.outbox.silences(now) if s.id == silence_id), None)
        if silence is None:
            return None
        self.outbox.expire_silence(silence_id, now)
        return dataclasses.replace(silence, start=min(silence.start, now), end=now)

    # -- lifecycle ---------------------------------------------------------------------------

    async def close(self) -> None:
        await self.dispatcher.close()
        self.outbox.close()
        self.store.close()
