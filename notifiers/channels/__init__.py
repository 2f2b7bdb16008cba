"""The delivery channels, one module each, listed once in :data:`CHANNELS`.

A channel's module owns its config (the contact a department gives it,
``departments.<id>.<name>``, and any ``notifiers:`` section it needs), its Chinese labels and
its sender (see :mod:`.spec`). Whatever asks about channels asks here: the labels, which
channels a department receives on, the check of the departments' contacts, the channel objects.
Adding a channel is one module and one line below; the order is the order a department's
channels are listed in.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from pydantic import ValidationError

from shian.notifiers.channels import dingtalk, email, file, wecom
from shian.notifiers.channels.spec import ChannelSpec, Label
from shian.rules.config import FIXES, Config, ConfigError, Department, Problems

if TYPE_CHECKING:
    from shian.notifiers.message import Channel
    from shian.notifiers.settings import Settings

CHANNELS: tuple[ChannelSpec, ...] = (email.SPEC, wecom.SPEC, dingtalk.SPEC, file.SPEC)


def find(name: str) -> ChannelSpec | None:
    """The channel the outbox records as ``name``."""
    return next((c for c in CHANNELS if c.name == name), None)


class Labels(Mapping[str, str]):
    """One of the labels of every channel, by name, read from the registry when asked (so
    ``CHANNEL_NAMES.get(name, name)`` keeps working for a name no channel has any more)."""

    def __init__(self, which: Callable[[Label], str]) -> None:
        self._which = which

    def __getitem__(self, name: str) -> str:
        found = find(name)
        if found is None:
            raise KeyError(name)
        return self._which(found.label)

    def __iter__(self) -> Iterator[str]:
        return iter([c.name for c in CHANNELS])

    def __len__(self) -> int:
        return len(CHANNELS)


SHORT_LABELS = Labels(lambda label: label.short)
FULL_LABELS = Labels(lambda label: label.full)
LEDGER_LABELS = Labels(lambda label: label.in_ledger)


def build(settings: Settings) -> dict[str, Channel]:
    """The channels the settings can use: each one whose ``notifiers:`` section is given or
    that needs none (email with SMTP set, the robots always — departments decide who has one —,
    the file outbox when its directory is set)."""
    return {c.name: c.make(settings) for c in CHANNELS if c.set_up(settings.sections)}


def routes(config: Config, sections: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Each department's channels: those set up (``sections``: the settled ``notifiers:``
    sections by channel name) that reach it."""
    return {dept_id: tuple(c.name for c in CHANNELS if c.reaches(sections, d))
            for dept_id, d in config.departments.items()}


def shown(dept: Department) -> str:
    """What ``check-config`` prints of a department's contacts (addresses, never a secret)."""
    return "".join(f"  {text}" for text in (c.show(c.contact_of(dept)) for c in CHANNELS if c.contact) if text)


def destinations(settings: Settings) -> list[str]:
    """Where messages go, in words (邮件服务器 host:port, 文件发件箱 dir), one per channel whose
    section is given."""
    return [text for c in CHANNELS if c.name in settings.sections
            for text in [c.destination(settings.sections[c.name])] if text]


def contact_problems(config: Config, env: Mapping[str, str] | None = None) -> list[str]:
    """Every problem of the departments' contacts: a key no channel takes, a contact its
    channel's model refuses, and (given ``env``, the environment delivery runs in) a contact its
    channel refuses beyond the model (an unset variable, two webhooks). Each names the config
    file, the key path and the line, like the rest of the config."""
    taken = [c.name for c in CHANNELS if c.contact is not None]
    items: list[str] = []
    for dept_id, d in config.departments.items():
        keys = ("departments", dept_id)
        problems = Problems(config.path, {keys + k: line for k, line in d.lines.items()})
        for key in d.contacts:
            if key not in taken:
                problems.add(keys + (key,), "未知的键",
                             f"{FIXES['extra_forbidden']}（部门下可写 name 和 {', '.join(taken)}）")
        for c in CHANNELS:
            if c.contact is None or c.name not in d.contacts:
                continue
            try:
                contact = c.contact_of(d)
            except ValidationError as err:
                problems.from_pydantic(keys + (c.name,), err)
                continue
            if env is not None:
                c.check_contact(contact, keys + (c.name,), problems, env)
        items += problems.items
    return items


def check_contacts(config: Config) -> None:
    """Refuses (ConfigError, every problem) departments whose contacts are malformed: what
    every command checks on loading, delivering or not; the environment is checked only by
    :func:`shian.notifiers.settings.parse`."""
    problems = contact_problems(config)
    if problems:
        raise ConfigError(problems)
