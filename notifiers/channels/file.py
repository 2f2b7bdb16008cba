"""Development outbox: each message written to ``<dir>/<dept_id>/<ref>.eml`` (the very message
the email channel would send, to open in a mail client) and ``<ref>.md`` (the robot card).

Writing the same (department, ref) again replaces the files, each written whole (temporary
file, then rename), so a redelivery leaves one copy. OSError → RETRY; a message that cannot
be built → FAILED.

Config: ``notifiers.file: {dir: …}`` (relative to the config file's folder); it then receives
every department's messages, and takes no contact of its own.
"""
from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from shian.notifiers.channels import email
from shian.notifiers.channels.email import DEFAULT_SENDER, addresses_of, as_bytes, build_message
from shian.notifiers.channels.spec import ChannelSpec, Label, SectionModel
from shian.notifiers.message import DELIVERED, Message, Outcome, Result
from shian.rules.config import Department, Section

if TYPE_CHECKING:
    from shian.notifiers.settings import Settings


class FileOutbox(SectionModel):
    """``notifiers.file``: the folder the messages are written to."""
    dir: str


def settle(section: FileOutbox, where: Section, env: Mapping[str, str]) -> FileOutbox:
    return section.model_copy(update={"dir": str(where.path(section.dir))})

_UNSAFE = re.compile(r"[^\w.@-]+")


def safe_name(name: str) -> str:
    """A single path component: no separators, no leading dot (so no ``..`` either)."""
    s = _UNSAFE.sub("_", name)
    return "_" + s if not s or s.startswith(".") else s


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class FileChannel:
    name = "file"

    def __init__(self, settings: Settings) -> None:
        section: FileOutbox | None = settings.section(self.name)
        if section is None:
            raise ValueError("file channel needs notifiers.file.dir")
        self.dir = Path(section.dir)
        smtp: email.Smtp | None = settings.section(email.SPEC.name)
        self._sender = smtp.sender if smtp is not None else DEFAULT_SENDER

    def _write(self, dept_id: str, eml: bytes, md: bytes, ref: str) -> None:
        folder = self.dir / safe_name(dept_id)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / f"{safe_name(ref)}.md", md)
        write_atomic(folder / f"{safe_name(ref)}.eml", eml)

    async def send(self, dept_id: str, dept: Department, message: Message) -> Result:
        try:
            eml = as_bytes(build_message(self._sender, dept_id, addresses_of(dept), message))
        except (ValueError, TypeError) as e:
            return Result(Outcome.FAILED, f"无法生成邮件：{e}")
        try:
            await asyncio.to_thread(self._write, dept_id, eml, message.markdown.encode(), message.ref)
        except OSError as e:
            return Result(Outcome.RETRY, f"写入发件箱目录 {self.dir} 失败：{e.strerror or e}")
        return DELIVERED

    async def close(self) -> None:
        return None


SPEC = ChannelSpec(
    name="file",
    label=Label(short="文件", full="文件", ledger="文件发件箱"),
    make=FileChannel,
    section="file",
    section_model=FileOutbox,
    settle=settle,
    destination=lambda section: f"文件发件箱 {section.dir}",
)
