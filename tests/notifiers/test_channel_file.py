"""The development file outbox, and the registry that builds the channels from the settings."""
from __future__ import annotations

import asyncio
import email
import email.policy

from channel_support import make_message, make_settings
from shian.notifiers.channels import build
from shian.notifiers.channels.file import FileChannel
from shian.notifiers.message import Outcome
from shian.rules.config import Department

DEPT = Department(name="红河镇食安办", contacts={"email": ["zhang@hh.example"]})


def send_all(channel, *sends):
    async def go():
        try:
            return [await channel.send(dept_id, dept, msg) for dept_id, dept, msg in sends]
        finally:
            await channel.close()
    return asyncio.run(go())


def test_same_message_twice_leaves_one_eml_and_one_md_that_parse(tmp_path):
    channel = FileChannel(make_settings(file={"dir": str(tmp_path / "outbox")}))
    msg = make_message()
    results = send_all(channel, ("hh-fso", DEPT, msg), ("hh-fso", DEPT, msg))
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 2
    files = sorted(p.relative_to(tmp_path / "outbox").as_posix() for p in (tmp_path / "outbox").rglob("*"))
    assert files == ["hh-fso", f"hh-fso/{msg.ref}.eml", f"hh-fso/{msg.ref}.md"]
    m = email.message_from_bytes((tmp_path / "outbox" / "hh-fso" / f"{msg.ref}.eml").read_bytes(),
                                 policy=email.policy.default)
    assert m["Subject"] == msg.subject
    assert m["Message-ID"] == f"<{msg.ref}.hh-fso.email@shian>"
    assert m.get_body(("plain",)).get_content().rstrip("\n") == msg.text
    assert (tmp_path / "outbox" / "hh-fso" / f"{msg.ref}.md").read_text(encoding="utf-8") == msg.markdown


def test_ids_cannot_escape_the_outbox_directory(tmp_path):
    channel = FileChannel(make_settings(file={"dir": str(tmp_path / "outbox")}))
    [result] = send_all(channel, ("../up", DEPT, make_message(ref="../../etc/x")))
    assert result.outcome is Outcome.DELIVERED, result
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outbox"]


def test_unwritable_directory_is_retry(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    [result] = send_all(FileChannel(make_settings(file={"dir": str(blocker)})), ("hh-fso", DEPT, make_message()))
    assert result.outcome is Outcome.RETRY, result


def test_registry_builds_the_channels_the_settings_use(tmp_path):
    smtp = {"host": "127.0.0.1", "from": "西平县食安办 <fso@xp.example>"}
    assert set(build(make_settings())) == {"wecom", "dingtalk"}
    full = build(make_settings(smtp=smtp, file={"dir": str(tmp_path)}))
    assert set(full) == {"email", "wecom", "dingtalk", "file"}
    assert all(ch.name == name for name, ch in full.items())
