"""Development outbox: each message written to ``<dir>/<dept_id>/<ref>.eml`` (the very message
the email channel would send, to open in a mail client) and ``<ref>.md`` (the robot card).

Writing the same (department, ref) again replaces the files, each written whole (temporary
file, then rename), so a redelivery leaves one copy. OSError → RETRY; a message that cannot
be built → FAILED.
"""
from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path

from shian.notifiers.channels.email import DEFAULT_SENDER, as_bytes, build_message
from shian.notifiers.message import DELIVERED, Message, Outcome, Result
from shian.notifiers.settings import Settings
from shian.rules.config import Department

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
        if settings.file_dir is None:
            raise ValueError("file channel needs notifiers.file.dir")
        self.dir = Path(settings.file_dir)
        self._sender = settings.smtp.sender if settings.smtp is not None else DEFAULT_SENDER

    def _write(self, dept_id: str, eml: bytes, md: bytes, ref: str) -> None:
        folder = self.dir / safe_name(dept_id)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / f"{safe_name(ref)}.md", md)
        write_atomic(folder / f"{safe_name(ref)}.eml", eml)

    async def send(self, dept_id: str, dept: Department, message: Message) -> Result:
        try:
            eml = as_bytes(build_message(self._sender, dept_id, dept, message))
        except (ValueError, TypeError) as e:
            return Result(Outcome.FAILED, f"无法生成邮件：{e}")
        try:
            await asyncio.to_thread(self._write, dept_id, eml, message.markdown.encode(), message.ref)
        except OSError as e:
            return Result(Outcome.RETRY, f"写入发件箱目录 {self.dir} 失败：{e.strerror or e}")
        return DELIVERED

    async def close(self) -> None:
        return None
