"""A throw-away channel for the registry's tests: 短信 (SMS) handed to a gateway through a
spool folder, one JSON file per message.

It is what a new channel is: this one module (its config, labels and sender) and one line in
the registry, ``CHANNELS`` of :mod:`shian.notifiers.channels` — which the tests add.

Config: ``departments.<id>.sms: [11-digit mobile numbers]`` and ``notifiers.sms: {spool: dir}``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

from shian.notifiers.channels.spec import ChannelSpec, Label, SectionModel, strict
from shian.notifiers.message import DELIVERED, Message, Outcome, Result
from shian.rules.config import Department, Problems, Section

PHONES = strict(list[str])
_MOBILE = re.compile(r"^1\d{10}$")


class Gateway(SectionModel):
    """``notifiers.sms``: the folder the SMS gateway picks messages up from."""
    spool: str


def settle(gateway: Gateway, where: Section, env: Mapping[str, str]) -> Gateway:
    return gateway.model_copy(update={"spool": str(where.path(gateway.spool))})


def check(phones: list[str], keys: tuple[str, ...], problems: Problems, env: Mapping[str, str]) -> None:
    for i, phone in enumerate(phones):
        if not _MOBILE.match(phone):
            problems.add(keys + (i,), f"“{phone}”不是手机号", "写上 11 位手机号，如 13800000000")


class SmsChannel:
    name = "sms"

    def __init__(self, settings: Any) -> None:
        self.spool = Path(settings.section(self.name).spool)

    async def send(self, dept_id: str, dept: Department, message: Message) -> Result:
        phones = SPEC.contact_of(dept) or []
        if not phones:
            return Result(Outcome.FAILED, f"部门 {dept_id} 没有配置手机号")
        self.spool.mkdir(parents=True, exist_ok=True)
        record = {"to": phones, "dept": dept_id, "ref": message.ref, "notice_ids": list(message.notice_ids),
                  "text": message.subject}
        (self.spool / f"{dept_id}.{message.ref}.json").write_text(json.dumps(record, ensure_ascii=False),
                                                                  encoding="utf-8")
        return DELIVERED

    async def close(self) -> None:
        return None


SPEC = ChannelSpec(
    name="sms",
    label=Label(short="短信", full="手机短信"),
    make=SmsChannel,
    contact=PHONES,
    section="sms",
    section_model=Gateway,
    settle=settle,
    check_contact=check,
    show=lambda phones: f"☎ {', '.join(phones)}" if phones else "",
    destination=lambda gateway: f"短信网关 {gateway.spool}",
)
