"""What a delivery channel says about itself, for the registry (:mod:`shian.notifiers.channels`).

A channel module declares one :class:`ChannelSpec`: the name the outbox records, its Chinese
labels, the model of the contact a department gives it (``departments.<id>.<name>``), the
``notifiers:`` section it needs, the checks of both beyond their models, and the factory of its
sender. Nothing outside the module knows these.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pydantic import ConfigDict, TypeAdapter

from shian.rules.config import Department, Problems, Section, Strict

from shian.notifiers.message import BODIES

if TYPE_CHECKING:
    from shian.notifiers.message import Channel
    from shian.notifiers.settings import Settings


class SectionModel(Strict):
    """A channel's config model: strict like the rest; a key may be an alias (smtp's ``from``)."""
    model_config = ConfigDict(**Strict.model_config, populate_by_name=True)


@dataclass(frozen=True)
class Label:
    """A channel's name in Chinese: ``short`` in a notice's title (通知未能送达…（邮件）),
    ``full`` in a letter's text and the channel's own errors (电子邮件), ``ledger`` in the notice
    ledger when it is not the short one."""
    short: str
    full: str
    ledger: str = ""

    @property
    def in_ledger(self) -> str:
        return self.ledger or self.short


def secret(name: str | None) -> str | None:
    """The value of an environment variable named in the config (never logged)."""
    return os.environ.get(name) if name else None


def strict(tp: Any) -> TypeAdapter:
    """The validator of a contact that is not a model (email's list of addresses), as strict
    as the models."""
    return TypeAdapter(tp, config=ConfigDict(strict=True))


def _settled(section: Any, where: Section, env: Mapping[str, str]) -> Any:
    return section


def _fine(contact: Any, keys: tuple[str, ...], problems: Problems, env: Mapping[str, str]) -> None:
    return None


@dataclass(frozen=True, eq=False)
class ChannelSpec:
    """One channel. ``contact`` validates ``departments.<id>.<name>`` (None: the channel takes no
    contact and reaches every department). ``section`` names the ``notifiers:`` key it needs,
    validated by ``section_model`` (None: the channel is always set up). ``settle`` checks the
    section beyond its model (adding to ``where.problems``) and returns it with paths resolved
    against the config's folder; ``check_contact`` checks a department's contact beyond its model.
    ``show`` is what ``check-config`` prints of a contact (never a secret), ``destination`` what
    ``shian run`` says of where the messages go, from the section. ``bodies``: the bodies of a
    message it sends (:data:`~shian.notifiers.message.BODIES`), the only ones rendered for it."""
    name: str
    label: Label
    make: Callable[[Settings], Channel]
    contact: TypeAdapter | None = None
    section: str | None = None
    section_model: type[SectionModel] | None = None
    settle: Callable[[Any, Section, Mapping[str, str]], Any] = _settled
    check_contact: Callable[[Any, tuple[str, ...], Problems, Mapping[str, str]], None] = _fine
    show: Callable[[Any], str] = lambda contact: ""
    destination: Callable[[Any], str] = lambda section: ""
    bodies: frozenset[str] = BODIES

    def contact_of(self, dept: Department) -> Any:
        """The department's contact for this channel, typed; None when it gives none. A contact
        the model refuses raises ValueError (a checked config has none)."""
        if self.contact is None or self.name not in dept.contacts:
            return None
        return self.contact.validate_python(dept.contacts[self.name])

    def set_up(self, sections: Mapping[str, Any]) -> bool:
        """Its ``notifiers:`` section is given (``sections``: the settled ones, by channel name),
        or it needs none."""
        return self.section is None or sections.get(self.name) is not None

    def reaches(self, sections: Mapping[str, Any], dept: Department) -> bool:
        """Set up, and the department gives a contact that is not empty (an e-mail list with no
        address reaches no one); a channel that takes no contact reaches every department."""
        return self.set_up(sections) and (self.contact is None or bool(self.contact_of(dept)))
