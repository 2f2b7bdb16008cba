"""``shian ledger``: the notice ledger (通知台账) as XLSX — every notice, who it went to,
whether it was delivered, and when each department signed for (签收) and closed (办结) it.

Offices keep such a ledger for inspections from above; it is built from the outbox (notices and
deliveries) and the ``ack`` events of the journal, so it always matches what was sent.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

from shian.notifiers.channels import LEDGER_LABELS
from shian.notifiers.render import rule_name, spec_of
from shian.rules.config import Config
from shian.rules.notice import Notice

from . import figures as fig
from .receipts import receipts
from .runtime import Runtime
from .report import Table, when, write_xlsx

DELIVERY_NAMES = fig.DELIVERY_STATUS  # a delivery row's state in words, as the notice page has it
CHANNEL_NAMES = LEDGER_LABELS  # a channel's label in the ledger, from its module
SHEETS = ("通知台账", "签收明细")


def delivery_state(rows: Sequence[Any]) -> str:
    """A department's delivery of one notice over all its channels, in words."""
    if not rows:
        return "无投递渠道"
    parts = []
    for state in ("sent", "failed", "silenced", "held", "sending", "pending"):
        chans = [CHANNEL_NAMES.get(d.channel, d.channel) for d in rows if d.state == state]
        if chans:
            parts.append(f"{DELIVERY_NAMES[state]}（{'、'.join(chans)}）")
    return "；".join(parts)


def build_tables(config: Config, notices: Sequence[Notice], acks: Iterable[Mapping[str, Any]],
                 deliveries: Callable[[str], Sequence[Any]] | Mapping[str, Sequence[Any]] | None = None) -> list[Table]:
    got = receipts(config.tz, acks)
    lookup = deliveries if callable(deliveries) else (lambda nid: (deliveries or {}).get(nid, ()))

    def dept_name(d: str) -> str:
        return config.departments[d].name if d in config.departments else d

    summary, detail = [], []
    for n in notices:
        recips = list(n.recipients)
        sent = list(lookup(n.id))
        by_dept = {d: got.of(n, d) for d in recips}
        acked = [d for d in recips if by_dept[d].acked_at]
        closed = [d for d in recips if by_dept[d].closed_at]
        base = {"编号": n.id, "时间": when(n.at.astimezone(config.tz)), "类别": spec_of(n.rule, n.severity).document,
                "规则": rule_name(n.rule),
                "级别": fig.SEVERITY_NAMES.get(n.severity, n.severity),
                "层级": fig.LEVEL_NAMES.get(n.level, n.level),
                "乡镇": n.township, "标题": n.title}
        summary.append({**base, "办理期限": when(n.due.astimezone(config.tz) if n.due else None), "接收部门": "、".join(dept_name(d) for d in recips),
                        "签收情况": f"{len(acked)}/{len(recips)}",
                        "办结": "已办结" if closed else ("已签收" if acked else "未签收")})
        for d in recips:
            r = by_dept[d]
            notes = [f"{at:%m-%d %H:%M} {text}" for at, text in sorted(r.notes, key=lambda x: x[0])]
            detail.append({**base, "接收部门": dept_name(d), "部门编号": d,
                           "投递状态": delivery_state([x for x in sent if x.dept == d]),
                           "签收时间": when(r.acked_at), "办结时间": when(r.closed_at), "反馈": "；".join(notes)})
    s_cols = ["编号", "时间", "类别", "规则", "级别", "层级", "乡镇", "标题", "办理期限", "接收部门", "签收情况", "办结"]
    d_cols = ["编号", "时间", "类别", "规则", "级别", "层级", "乡镇", "标题", "接收部门", "部门编号", "投递状态",
              "签收时间", "办结时间", "反馈"]
    return [Table(SHEETS[0], pd.DataFrame(summary, columns=s_cols)),
            Table(SHEETS[1], pd.DataFrame(detail, columns=d_cols))]


def write_ledger(config: Config, notices: Sequence[Notice], acks: Iterable[Mapping[str, Any]],
                 out_path: str | Path,
                 deliveries: Callable[[str], Sequence[Any]] | Mapping[str, Sequence[Any]] | None = None) -> Path:
    """The ledger of ``notices`` (in order) with the ``ack`` events and, per notice
    id, the outbox's delivery rows (``Outbox.deliveries_of`` or a mapping)."""
    return write_xlsx(build_tables(config, list(notices), acks, deliveries), Path(out_path))


def default_name(config: Config, since: datetime | None, until: datetime | None) -> str:
    span = "".join(["_" + f"{since:%Y%m%d}" if since else "", "-" + f"{until:%Y%m%d}" if until else ""])
    return f"{config.county.name or ''}食品安全预警通知台账{span}.xlsx"


def ledger_main(config: Config, runtime: Runtime, out_path: str | Path | None = None, *,
                since: datetime | None = None, until: datetime | None = None) -> Path:
    """For the CLI: the ledger of the runtime's notices with ``at`` in [since, until) and their
    签收 / 办结; without ``out_path`` a file named after the county in the current folder."""
    notices = runtime.notices(since, until)
    path = Path(out_path) if out_path else Path(default_name(config, since, until))
    return write_ledger(config, notices, runtime.acks_after(0)[1], path, runtime.deliveries_of)
