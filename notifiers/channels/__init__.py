"""The delivery channels, by the name the outbox records: email, wecom, dingtalk, file."""
from __future__ import annotations

from typing import Callable

from shian.notifiers.channels.dingtalk import DingtalkChannel
from shian.notifiers.channels.email import EmailChannel
from shian.notifiers.channels.file import FileChannel
from shian.notifiers.channels.wecom import WecomChannel
from shian.notifiers.message import Channel
from shian.notifiers.settings import Settings

FACTORIES: dict[str, Callable[[Settings], Channel]] = {
    "email": EmailChannel,
    "wecom": WecomChannel,
    "dingtalk": DingtalkChannel,
    "file": FileChannel,
}


def build(settings: Settings) -> dict[str, Channel]:
    """The channels the settings can use: email with SMTP set, the robots always (departments
    decide who has one), the file outbox when its directory is set."""
    names = [n for n in FACTORIES
             if (n != "email" or settings.smtp is not None) and (n != "file" or settings.file_dir is not None)]
    return {n: FACTORIES[n](settings) for n in names}
