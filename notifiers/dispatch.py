"""The dispatcher: takes due batches from the outbox, renders them and drives the channels.

Delivery semantics (per notice, recipient department and channel):

- **Accepted means kept.** :meth:`Dispatcher.submit` stores the notice and its delivery rows
  in one SQLite transaction; a redelivered notice (same id) is ignored.
- **Exactly once, outside one window.** Before a channel is called the batch's rows are
  marked ``sending`` and committed — :data:`CLAIM` batches at a time, in one synced
  transaction (:meth:`Outbox.claim`); the channel's answer is committed right after it comes
  back (without a sync of its own: it reaches the disk with the next claim, so a power failure,
  not a crash of the process, can undo the answers since, which are then sent again); batches
  claimed but not handed to the channel when a step stops are released (pending again):
  DELIVERED → ``sent``; RETRY → ``pending`` again after a backoff (exponential from
  ``retry.first_seconds`` up to ``retry.max_seconds``, jittered; the far side's
  ``retry_after`` when longer), or ``failed`` once ``retry.give_up_hours`` have passed since
  the first attempt; FAILED → ``failed``. A channel that raises counts as RETRY. A stop or
  crash anywhere else leaves either ``pending`` rows (never handed to a channel, or handed
  and refused: sent later, once) or ``sent`` rows (never sent again). The one window is
  between the far side accepting the message and ``sent`` being committed (one message per
  send in flight: ``channel.concurrency``, the e-mail channel's ``smtp.connections``): rows
  found in ``sending`` when a dispatcher starts are sent again, so that message may arrive twice —
  with the same ``ref`` (email Message-ID, robot text), so the recipient can tell. A channel
  raising after the far side accepted is the same window within a run.
- **Permanent failure is itself a notice.** A notice's delivery that fails for good raises a
  ``delivery.failed`` notice (warning, county level, to the county office; key
  ``delivery.failed|township|notice id|dept|channel``) in the same transaction; it is
  delivered like any other. A failed ``delivery.failed`` raises nothing (no loops), nor does
  a failed digest (it is logged).
- **Grouping.** Notices of one rule and township for one department and channel arriving
  while their group waits (``group_wait_seconds`` after the first, default 30 s) go out as
  one message (``renderer.group``); ``group_wait_seconds: 0`` sends each on its own. All the
  group's rows share the outcome.
- **Quiet hours.** Info and warning notices wait for working hours on an official working
  day; critical ones go at once (:func:`timing.release_time`). A group flushes when its most
  urgent member is due. Retries are not held again; the daily digest is sent at its own time.
- **Catch-up** (:mod:`shian.notifiers.catchup`). A reminder whose date has passed when its
  message would be rendered, or that its own overdue notice supersedes, is held (rows
  ``held``, the reason recorded), also one already due; a message already rendered and
  retried is held only when all of its notices are. Late notices (``catch_up_after``) go as
  one summary per department and channel (``renderer.catch_up``); a late critical one alone,
  under a 补发 note (``renderer.catch_up`` of that one notice).
- **Silences.** A notice muted by a silence when it arrives, or (for a group still waiting)
  by one added before it goes out, is kept with its rows ``silenced`` and never sent.
- **Daily digest.** At ``digest.at`` local each day, each department with a channel gets
  ``renderer.digest`` of the notices addressed to it whose ``at`` is in the 24 hours before
  and its open deadlines (``due`` later than now); skipped when both are empty; recorded per
  (department, day, channel), so it goes out once and retries like any delivery. After a
  downtime only the latest day's digest is made, and none for a day whose digest time was
  before the outbox was first used.
- **Unknown channel.** A row whose channel has no object in ``channels`` waits (logged once).

Only one dispatcher may run on an outbox file.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import logging
import random
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any, Callable, Collection, Iterator, Mapping, Protocol, Sequence

from shian.rules.notice import Notice, notice_id, notice_key
from shian.rules.params import RuleSpec
from shian.rules.timeutil import fmt

from . import catchup, timing
from .channels import SHORT_LABELS
from .channels import find as find_channel
from .message import BODIES, Channel, Message, Outcome, Result
from .outbox import Batch, DueBatch, Outbox
from .settings import Settings, Silence
from .silences import muting

log = logging.getLogger("shian.notifiers.dispatch")

# Raised here, not by a rule family: a notice whose delivery failed for good. The county
# office follows it up (督办) until the original notice has reached its department.
DELIVERY_FAILED = RuleSpec("delivery.failed", "county", "warning", summary="通知送达失败", kind="督办", template="delivery")
_URL = re.compile(r"\w+://\S+")
CHANNEL_NAMES = SHORT_LABELS  # a channel's short label (邮件), from its module
# Batches read, rendered and claimed (marked sending) in one outbox transaction, then sent,
# before the next few are read: one synced commit per CLAIM messages instead of one per
# message, and only CLAIM batches' notices and messages held at a time (a channel sending more
# at once, ``concurrency``, claims that many).
CLAIM = 16
# ... and at most this many of their notices (a group bigger than that is claimed alone).
CLAIM_NOTICES = 64
# Due batch ids read from the outbox at a time (a step reads page after page until none is
# left); the batches themselves are read a few at a time (:func:`chunks`).
PAGE = 512


def redact(text: str) -> str:
    """An exception's words without addresses: a robot's webhook URL carries its token."""
    return _URL.sub("<URL>", text)


class Renderer(Protocol):
    """``bodies``: the bodies of the message the channel sends (the others may stay empty)."""

    def notice(self, notice: Notice, dept_id: str, *, bodies: Collection[str] = BODIES) -> Message: ...

    def group(self, notices: list[Notice], dept_id: str, *, bodies: Collection[str] = BODIES) -> Message: ...

    def digest(self, dept_id: str, day: date, notices: list[Notice], open_deadlines: list[Notice]) -> Message: ...

    def catch_up(self, notices: list[Notice], dept_id: str, *, bodies: Collection[str] = BODIES) -> Message: ...


def failure_notice(settings: Settings, notice: Notice, dept: str, channel: str,
                   error: str, now: datetime) -> Notice | None:
    """The ``delivery.failed`` notice for a delivery that failed for good (None for one about
    a ``delivery.failed`` notice)."""
    if notice.rule == DELIVERY_FAILED.id:
        return None
    config = settings.config
    key = notice_key(DELIVERY_FAILED.id, notice.township, notice.id, dept, channel)
    dept_name = config.departments[dept].name if dept in config.departments else dept
    return Notice(
        id=notice_id(key),
        rule=DELIVERY_FAILED.id,
        severity=DELIVERY_FAILED.severity,
        level=DELIVERY_FAILED.level,
        township=notice.township,
        recipients=(config.county.office,),
        title=f"通知未能送达{dept_name}（{CHANNEL_NAMES.get(channel, channel)}）：{notice.title or notice.id}",
        at=now.astimezone(config.tz).replace(microsecond=0),
        due=None,
        event_ids=(),
        key=key,
        facts={"notice_id": notice.id, "dept": dept, "dept_name": dept_name, "channel": channel,
               "error": error, "rule": notice.rule},
    )


def chunks(dues: Sequence[DueBatch], most: int, notices: int) -> Iterator[list[int]]:
    """The ids of ``dues`` in order, in runs of at most ``most`` batches that together hold at
    most ``notices`` due rows (a bigger batch alone): what is read and rendered at once."""
    run: list[int] = []
    rows = 0
    for due in dues:
        if run and (len(run) >= most or rows + due.rows > notices):
            yield run
            run, rows = [], 0
        run.append(due.id)
        rows += due.rows
    if run:
        yield run


class Dispatcher:
    """Sends what the outbox holds, when it is due. ``now`` and ``rand`` are injectable so
    tests drive it with a fake clock."""

    def __init__(self, settings: Settings, outbox: Outbox, channels: Mapping[str, Channel],
                 renderer: Renderer, *, now: Callable[[], datetime] | None = None,
                 rand: Callable[[], float] = random.random, jitter: timing.Jitter = "equal") -> None:
        self.settings = settings
        self.outbox = outbox
        self.channels = dict(channels)
        self.renderer = renderer
        self.now = now or (lambda: datetime.now(settings.config.tz))
        self.rand = rand
        self.jitter = jitter
        self._started = False
        self._digest_done: date | None = None
        self._warned: set[str] = set()
        self._watchers: list[Callable[[datetime], object]] = []
        self._renders: ThreadPoolExecutor | None = None  # the render thread (:meth:`_rendering`), made at first use

    def watch(self, watcher: Callable[[datetime], object]) -> None:
        """``watcher(now)`` runs at the start of every step, before what is due is taken: a reader
        that adds notices to the outbox from elsewhere (the closing words, :mod:`.resolved`)."""
        self._watchers.append(watcher)

    def submit(self, notice: Notice, *, whole_batch: bool = False) -> bool:
        """Accepts a notice for delivery; False if it was already accepted.
        ``whole_batch``: it comes with every notice of its run (a replay, a backfill), so its
        group has nothing more to wait for."""
        now = self.now()
        if whole_batch:
            now -= timedelta(seconds=self.settings.group_wait_seconds)
        return self.outbox.add(notice, now)

    def submit_all(self, notices: Sequence[Notice], *, whole_batch: bool = False) -> list[bool]:
        """:meth:`submit` for the notices one event raised, in one outbox transaction (one
        sync, not one per notice): once it returns, every one of them is kept; should it
        raise, none is. Whether each was new, in order."""
        now = self.now()
        if whole_batch:
            now -= timedelta(seconds=self.settings.group_wait_seconds)
        return self.outbox.add_all(notices, now)

    def submit_many(self, notices: Sequence[Notice], *, whole_batch: bool = False) -> int:
        """:meth:`submit` for many notices at once (many per outbox transaction); how many were new."""
        now = self.now()
        if whole_batch:
            now -= timedelta(seconds=self.settings.group_wait_seconds)
        return self.outbox.add_many(notices, now)

    async def step(self) -> int:
        """Sends everything due now; returns how many messages were delivered."""
        now = self.now()
        if not self._started:
            self.outbox.recover(now)
            self._started = True
        for watcher in self._watchers:
            try:
                watcher(now)
            except Exception:  # a reader that fails must not hold back what is due
                log.exception("watcher %r failed; delivering anyway", watcher)
        await asyncio.sleep(0)  # each part of a step is short; what else waits runs in between
        await self._make_digests(now)
        await asyncio.sleep(0)
        for name in sorted(self.outbox.due_channels(now) - set(self.channels)):
            self._warn_once(name, "channel %s is not set up; its deliveries wait", name)
        sent, seen = 0, set()
        while True:  # PAGE ids at a time, the earliest first, each page's channels side by side
            page = self.outbox.due_ids(now, PAGE, channels=self.channels, after=seen)
            if not page:
                return sent
            seen.update(d.id for d in page)
            sent += await self._send_page(page)
            if len(page) < PAGE:
                return sent

    async def _send_page(self, page: Sequence[DueBatch]) -> int:
        by_channel: dict[str, list[DueBatch]] = {}
        for due in page:
            by_channel.setdefault(due.channel, []).append(due)
        tasks = [asyncio.ensure_future(self._drain(self.channels[name], dues))
                 for name, dues in by_channel.items()]
        try:
            counts = await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return sum(counts)

    async def run(self, stop: asyncio.Event, poll_seconds: float = 1.0) -> None:
        """Steps until ``stop`` is set; an error in one step is logged and the loop goes on."""
        while not stop.is_set():
            try:
                await self.step()
            except Exception:
                log.exception("dispatch step failed; retrying in %.1f s", poll_seconds)
            try:
                await asyncio.wait_for(stop.wait(), poll_seconds)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        if self._renders is not None:
            self._renders.shutdown(wait=False)
            self._renders = None
        for channel in self.channels.values():
            try:
                await channel.close()
            except Exception:
                log.exception("closing channel %s failed", getattr(channel, "name", "?"))

    async def _drain(self, channel: Channel, dues: Sequence[DueBatch]) -> int:
        """One channel's due batches, in order, a few at a time (:func:`chunks`): read, rendered
        and claimed (:meth:`_claim_next`), then sent; only then are the next few read. Channels
        run side by side."""
        width = max(1, int(getattr(channel, "concurrency", 1)))
        sent = 0
        for ids in chunks(dues, max(CLAIM, width), max(CLAIM_NOTICES, width)):
            claimed = await self._claim_next(ids)
            sent += await self._send_all(channel, claimed) if claimed else 0
            await asyncio.sleep(0)  # a chunk that sent nothing (all held, muted) yields too
        return sent

    async def _claim_next(self, ids: Sequence[int]) -> list[Batch]:
        """The batches ``ids`` (those still pending), read now, their notices held and muted,
        rendered on the render thread (:meth:`_rendering`: a group of hundreds of notices does
        not hold up the event loop meanwhile), then claimed in one outbox transaction; the
        claimed ones, as they now are. A batch a notice joined while it was being rendered (a
        catch-up summary) is not claimed: the next step renders it again, with that notice."""
        # the stored notices a reminder is checked against, read once per claim (holding and
        # muting, all that happens meanwhile, add none)
        stored = functools.lru_cache(maxsize=None)(self.outbox.notices_of)
        silences = self.outbox.every_silence()
        holds: list[tuple[int, dict[str, str]]] = []  # written with the claim, in its transaction
        read = [b for b in (self._prepare(b, stored, silences, holds) for b in self.outbox.batches(ids))
                if b is not None]
        fresh = [b for b in read if b.message is None]
        messages = await self._rendering(fresh) if fresh else []
        ready: list[tuple[Batch, Message | None]] = [(b, None) for b in read if b.message is not None]
        for batch, rendered in zip(fresh, messages):
            if isinstance(rendered, Message):
                ready.append((batch, rendered))
            else:
                log.error("rendering notices %s for %s failed", ",".join(n.id for n in batch.notices), batch.dept,
                          exc_info=rendered)
                self._record(batch, Result(Outcome.RETRY, f"渲染失败：{type(rendered).__name__}: {rendered}"),
                             self.now(), attempted=False)
        if not ready and not holds:
            return []
        order = {batch_id: i for i, batch_id in enumerate(ids)}
        ready.sort(key=lambda item: order[item[0].id])  # the order they were due in
        return self.outbox.claim(ready, self.now(), holds, unchanged=True)

    async def _rendering(self, batches: Sequence[Batch]) -> list[Message | BaseException]:
        """The messages of ``batches`` (or what rendering each raised), on the render thread."""
        return await self._off_loop(self._render_each, list(batches))

    async def _off_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the dispatcher's one render thread: every rendering, of any channel
        or digest, takes its turn there (the renderer's caches are not shared between threads)."""
        if self._renders is None:
            self._renders = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shian-render")
        return await asyncio.get_running_loop().run_in_executor(self._renders, functools.partial(fn, *args))

    def _render_each(self, batches: list[Batch]) -> list[Message | BaseException]:
        out: list[Message | BaseException] = []
        for batch in batches:
            try:
                out.append(self._render(batch))
            except Exception as e:  # one batch's rendering; recorded as its attempt, the others go on
                out.append(e)
        return out

    def _prepare(self, batch: Batch, stored: Callable[[tuple[str, ...], str], list[Notice]],
                 silences: Sequence[Silence], holds: list[tuple[int, dict[str, str]]]) -> Batch | None:
        """The batch without its held and muted notices (its stored message kept, if it has
        one: that goes again); None when nothing is left to send. The notices held are added to
        ``holds``."""
        if batch.kind != "digest":
            batch = self._drop_held(batch, stored, holds)
            if not batch.notices:
                return None
        if batch.message is not None:
            return batch
        batch = self._drop_muted(batch, silences)
        return batch if batch.notices else None

    async def _send_all(self, channel: Channel, claimed: Sequence[Batch]) -> int:
        """Hands the claimed batches to the channel, ``channel.concurrency`` of them at once (one
        when it does not say), each outcome recorded as it comes; should this stop half-way,
        the batches not yet handed over are released (pending again, never sent twice)."""
        width = max(1, int(getattr(channel, "concurrency", 1)))
        todo = collections.deque(claimed)
        sent = 0

        async def worker() -> None:
            nonlocal sent
            while todo:
                got = await self._send_one(channel, todo.popleft())
                sent += got  # after the await: the other workers add to it meanwhile
                await asyncio.sleep(0)  # a channel that answers without waiting still lets others run

        try:
            if width == 1 or len(todo) == 1:
                await worker()
            else:
                tasks = [asyncio.ensure_future(worker()) for _ in range(min(width, len(todo)))]
                try:
                    await asyncio.gather(*tasks)
                except BaseException:
                    for t in tasks:
                        t.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    raise
        finally:
            if todo:
                self.outbox.release(b.id for b in todo)
        return sent

    async def _send_one(self, channel: Channel, batch: Batch) -> int:
        assert batch.message is not None
        dept = self.settings.config.departments[batch.dept]
        try:
            result = await channel.send(batch.dept, dept, batch.message)
        except Exception as e:
            error = redact(f"{type(e).__name__}: {e}")
            log.error("channel %s raised for %s: %s", batch.channel, self._what(batch), error)
            result = Result(Outcome.RETRY, error)
        self._record(batch, result, self.now())
        return int(result.outcome is Outcome.DELIVERED)

    def _render(self, batch: Batch) -> Message:
        """The batch's message, with only the bodies its channel sends."""
        notices = list(batch.notices)
        spec = find_channel(batch.channel)
        bodies = spec.bodies if spec is not None else BODIES
        if batch.kind == "catch_up":
            return self.renderer.catch_up(notices, batch.dept, bodies=bodies)
        if len(notices) == 1:
            return self.renderer.notice(notices[0], batch.dept, bodies=bodies)
        return self.renderer.group(notices, batch.dept, bodies=bodies)

    def _drop_held(self, batch: Batch, stored: Callable[[tuple[str, ...], str], list[Notice]],
                   holds: list[tuple[int, dict[str, str]]]) -> Batch:
        """Reminders past their date or superseded by their own overdue notice leave the batch
        (held: added to ``holds``, which the claim writes); a message already rendered stays
        whole unless every notice in it is held."""
        reasons = catchup.holds(batch.notices, self.now(), self.settings.config, stored)
        if not reasons or (batch.message is not None and len(reasons) < len(batch.notices)):
            return batch
        holds.append((batch.id, reasons))
        ids = list(reasons)
        log.info("%d notice(s) held, not sent to %s via %s (the reasons are in the outbox): %s%s",
                 len(ids), batch.dept, batch.channel, ",".join(ids[:5]), ",…" if len(ids) > 5 else "")
        return dataclasses.replace(batch, notices=tuple(n for n in batch.notices if n.id not in reasons))

    def _drop_muted(self, batch: Batch, silences: Sequence[Silence]) -> Batch:
        """Silences added while a group waited mute its notices before it is rendered
        (``silences``: every one, :meth:`Outbox.every_silence`)."""
        muted = [n.id for n in batch.notices if muting(n, silences) is not None]
        if not muted:
            return batch
        self.outbox.mute(batch.id, muted)
        log.info("notices %s silenced before delivery to %s", ",".join(muted), batch.dept)
        keep = tuple(n for n in batch.notices if n.id not in muted)
        return dataclasses.replace(batch, notices=keep)

    def _record(self, batch: Batch, result: Result, now: datetime, *, attempted: bool = True) -> None:
        """Decides (pure) and stores the outcome; ``attempted`` False when the batch never
        reached the channel (rendering failed), which still counts as an attempt."""
        attempts = batch.attempts if attempted else batch.attempts + 1
        if result.error:
            result = dataclasses.replace(result, error=redact(result.error))
        nxt = timing.after_attempt(result, attempts, batch.first_attempt_at or now, now,
                                   self.settings.retry, self.rand, self.jitter)
        raised: list[Notice] = []
        if nxt.state == "pending":
            log.warning("delivery of %s will be retried at %s (attempt %d): %s",
                        self._what(batch), fmt(nxt.next_at), attempts, result.error)
        elif nxt.state == "failed":
            log.error("delivery of %s failed for good after %d attempts: %s", self._what(batch), attempts, result.error)
            for n in batch.notices:
                f = failure_notice(self.settings, n, batch.dept, batch.channel, result.error, now)
                if f is not None:
                    raised.append(f)
        self.outbox.finish(batch.id, nxt, now, result.error, raised, attempted=attempted)

    async def _make_digests(self, now: datetime) -> None:
        day = timing.digest_day(now, self.settings)
        if day is None or day == self._digest_done:
            return
        started = self.outbox.started()
        if started is None or timing.digest_time(day, self.settings) < started:
            self._digest_done = day
            return
        start, end = timing.digest_window(day, self.settings)
        done = True
        for dept in self.settings.config.departments:
            recorded = self.outbox.digest_channels(dept, day)
            missing = [c for c in self.settings.channels_of(dept) if c not in recorded]
            if not missing:
                continue
            notices = self.outbox.notices(start, end, dept, include_silenced=False)
            deadlines = self.outbox.open_deadlines(dept, now)
            message = None
            if notices or deadlines:
                try:
                    message = await self._off_loop(self.renderer.digest, dept, day, notices, deadlines)
                except Exception:
                    self._warn_once(f"digest|{dept}|{day}", "rendering the digest of %s for %s failed", day, dept,
                                    exc=True)
                    done = False
                    continue
            self.outbox.add_digest(dept, day, missing, message, now)
        if done:
            self._digest_done = day

    def _warn_once(self, key: str, msg: str, *args: Any, exc: bool = False) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.error(msg, *args, exc_info=exc)

    @staticmethod
    def _what(batch: Batch) -> str:
        if batch.kind == "catch_up":
            return f"catch-up summary of {len(batch.notices)} notices to {batch.dept} via {batch.channel}"
        what = ",".join(n.id for n in batch.notices) if batch.kind == "notice" else f"digest {batch.message.ref if batch.message else ''}"
        return f"{what} to {batch.dept} via {batch.channel}"
