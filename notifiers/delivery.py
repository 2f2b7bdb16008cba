"""Delivery wired together: the outbox, the channels, the renderer and the dispatcher.

Every runtime (``replay --deliver``, ``shian notify`` on Kafka, the embedded service) opens
delivery through :func:`open_dispatcher` on the outbox file named in the config, so they
share one store and one set of semantics (see :mod:`shian.notifiers.dispatch`).
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Callable

from .channels import build
from .dispatch import Dispatcher
from .outbox import Outbox
from .render import Renderer
from .settings import Settings


def open_dispatcher(settings: Settings, *, now: Callable[[], datetime] | None = None) -> Dispatcher:
    settings.outbox.parent.mkdir(parents=True, exist_ok=True)
    outbox = Outbox(settings.outbox, settings)
    return Dispatcher(settings, outbox, build(settings), Renderer(settings), now=now)


async def deliver_due(dispatcher: Dispatcher, *, within: float, poll: float = 0.5) -> int:
    """Sends what is due now and what falls due in the next ``within`` seconds (a group's
    wait, a quick retry), then returns; later deliveries (working hours, long backoffs) stay
    in the outbox for the next run. Returns the messages delivered."""
    sent = 0
    horizon = dispatcher.now() + timedelta(seconds=within)
    deadline = time.monotonic() + within + 5 * poll
    while True:
        sent += await dispatcher.step()
        due = dispatcher.outbox.next_due()
        if due is None or due > horizon or time.monotonic() > deadline:
            return sent
        await asyncio.sleep(min(poll, max(0.0, (due - dispatcher.now()).total_seconds())))


def state_line(outbox: Outbox) -> str:
    names = {"sent": "已发送", "pending": "等待中", "sending": "发送中", "failed": "失败", "silenced": "已静默"}
    counts = outbox.state_counts()
    parts = [f"{names.get(k, k)} {v}" for k, v in sorted(counts.items()) if v]
    return f"发件箱 {outbox.path}：" + ("，".join(parts) if parts else "空")
