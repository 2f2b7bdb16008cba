"""What the office needs from the runtime behind it, and nothing more.

The HTTP API, the dashboard, the report and the ledger see the running system only through
this interface: they hand in events (files, bodies) and acks, and ask for notices (also
filtered and paged), 签收 / 办结, rejects (also filtered and paged), silences, the clock, counts and figures. The embedded service
(``shian.streams.service.Service``) and the Kafka follower
(``shian.streams.follower.KafkaFollower``) implement it; the composition root (``shian.cli``)
hands one of them to :func:`shian.office.api.make_app`. The office imports nothing from the
runtimes, and they import nothing from the office.

Threads: everything is asked on the event loop, except the reading of notices, 签收 / 办结
and rejects (the methods from ``notice`` to ``reject_page`` below), which the office may ask
on a thread of its own — its reader, one call at a time — so that a slow page never holds up
the events coming in meanwhile. The rules' own state (``figures``, ``upcoming``, ``clock``) is
read on the loop only.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Callable, Protocol, Sequence

from shian.notifiers.outbox import NoticeQuery
from shian.notifiers.settings import Settings as DeliverySettings
from shian.rules.config import Config
from shian.rules.notice import Notice
from shian.rules.records import Outcome, Reject


class Metrics(Protocol):
    events: Counter            # accepted, by type
    duplicates: int
    rejects: int
    notices: Counter           # by rule
    started: float             # Unix time
    last_tick: float


class Runtime(Protocol):
    config: Config
    delivery: DeliverySettings     # how notices are worded and sent (the notice page words them alike)
    metrics: Metrics

    def now(self) -> datetime: ...

    # -- handing in ---------------------------------------------------------------------------
    async def accept_file(self, data: bytes, filename: str, source: str,
                          policy: Callable[[Any], str | None] | None = None) -> list[Outcome]:
        """An upload or body read like a file of that name; one outcome per line or row.
        Raises :class:`~shian.rules.records.UnreadableInput` for a JSON document that is not JSON.
        ``policy``: who sent it may post this (validated) event? Why not, in Chinese, or None;
        an event it refuses is rejected with that reason (the caller's rights: ``shian.office.access``)."""
        ...

    async def accept_upload(self, data: bytes, filename: str, source: str,
                            policy: Callable[[Any], str | None] | None = None) -> list[Outcome]:
        """One file of an upload of several: as :meth:`accept_file`, but a file that cannot be
        read at all is one reject naming it, so that the files with it still run."""
        ...

    def ack(self, notice_id: str, dept: str, action: str = "签收", note: str | None = None) -> Outcome: ...

    # -- asking -------------------------------------------------------------------------------
    def clock(self) -> datetime | None: ...
    def notice(self, notice_id: str) -> Notice | None: ...
    def notices(self, since: datetime | None = None, until: datetime | None = None,
                dept: str | None = None) -> list[Notice]: ...
    def deliveries_of(self, notice_id: str) -> list[Any]: ...
    def notice_page(self, query: NoticeQuery, offset: int = 0, limit: int = 50, *,
                    total: int | None = None) -> tuple[int, list[Notice]]:
        """How many notices ``query`` matches, and ``limit`` of them from ``offset`` on (newest
        first, or in the order of ``query.ids``): the dashboard's list, filtered and paged
        where the notices are stored. ``total``: that count when the caller has it already
        (the list's own tally): handed back, not counted again."""
        ...
    def notice_counts(self, query: NoticeQuery) -> dict[str, int]:
        """How many notices ``query`` matches, by severity."""
        ...
    def notice_tally(self, query: NoticeQuery, acked: Sequence[str],
                     closed: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        """By severity, how many notices ``query`` matches, how many of them have their id
        among ``acked``, how many among ``closed``: the list's count panel, in one question."""
        ...
    def notice_span(self) -> tuple[datetime, datetime] | None: ...
    def silenced_ids(self) -> set[str]: ...
    def acks_after(self, seq: int) -> tuple[int, list[dict[str, Any]]]: ...
    def rejects(self, limit: int = 100) -> list[Reject]: ...
    def reject_page(self, source: str | None = None, since: datetime | None = None, offset: int = 0,
                    limit: int = 50) -> tuple[int, list[Reject]]:
        """How many rejects are kept whose source contains ``source``, refused at or after
        ``since`` (each input once), and ``limit`` of them from ``offset`` on, newest first: the
        拒收记录 page and ``GET /api/rejects``."""
        ...
    def counts(self) -> dict[str, Any]: ...
    def problems(self) -> dict[str, str]:
        """The parts failing now (``journal``, ``outbox``, ``delivery``, ``clock``) with their
        reasons in Chinese; empty when healthy (``/health`` answers 503 otherwise)."""
        ...
    def next_delivery(self) -> datetime | None: ...
    def upcoming(self, count: int = 20) -> list[tuple[datetime, str]]: ...
    def figures(self, kind: str, period: Any, now: datetime | None = None) -> list[Any]:
        """The office's figures (kinds and periods: ``shian.rules.measures.FIGURE_KINDS``), as
        the rules' own tallies give them at ``now`` (default: the runtime's clock)."""
        ...

    # -- silences -----------------------------------------------------------------------------
    def configured_silences(self) -> list[Any]: ...
    def silences(self, now: datetime) -> list[Any]: ...
    def add_silence(self, rule: str | None, township: str | None, start: datetime, end: datetime,
                    comment: str, by: str) -> Any: ...
    def expire_silence(self, silence_id: int) -> Any | None: ...
