"""办结通报 (notifiers.resolved_messages): when a notice is closed, its other recipients hear who
closed it and what they wrote — the notice made from a 办结 ack, the dispatcher's watcher that
reads the journal's acks, and the embedded service wired as ``shian run`` wires it."""
from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import TZ, config_dict, nid
from notice_month import CLOSING_ACK, RESOLVED, april
from shian.cli.run import watch_closings
from shian.notifiers.outbox import Outbox
from shian.notifiers.resolved import MARK, ClosingWords, closing_notice
from shian.notifiers.settings import parse as delivery_settings
from shian.office.settings import parse as service_settings
from shian.rules.config import load
from shian.rules.notice import Notice
from shian.streams.service import Service

NOW = datetime(2026, 4, 16, 16, 0, tzinfo=TZ)
UNQUALIFIED = nid("sample.unqualified|红河镇|XP-NJ-2026-0317")


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Notice]]:
    return april(tmp_path_factory.mktemp("closing"))


@pytest.fixture(scope="module")
def unqualified(month: tuple[Any, list[Notice]]) -> Notice:
    return next(n for n in month[1] if n.id == UNQUALIFIED)


def test_the_closing_word_is_the_notice_the_renderer_goldens_show(month, unqualified) -> None:
    """For the 办结 of the April notice: the closing word written by hand in notice_month, to the
    recipients but the closer, with who closed it, when and the note."""
    assert closing_notice(month[0], unqualified, CLOSING_ACK) == RESOLVED


@pytest.mark.parametrize("ack, recipients", [
    ({"action": "签收"}, None),                                   # a 签收 closes nothing
    ({"by": "hh-fso"}, ("hh-agri",)),                             # the other recipient closed it
    ({"by": "county-fso"}, None),                                 # not a recipient: not a closing
    ({"note": None}, ("hh-fso",)),                                # no note: still told, 未填写
])
def test_who_hears_of_a_closing(month, unqualified, ack: dict[str, Any], recipients) -> None:
    """Only a 办结 by a recipient makes a closing word, addressed to every other recipient."""
    word = closing_notice(month[0], unqualified, {**CLOSING_ACK, **ack})
    assert (word.recipients if word else None) == recipients
    if word is not None and ack.get("note", "") is None:
        assert "note" not in word.facts


def test_no_closing_word_for_a_notice_of_one_recipient(month, unqualified) -> None:
    """A notice no one else received: nobody to tell."""
    alone = dataclasses.replace(unqualified, recipients=("hh-agri",))
    assert closing_notice(month[0], alone, CLOSING_ACK) is None


class Journal:
    """What a runtime answers for acks_after: the ack events after a row, and the last row."""

    def __init__(self) -> None:
        self.acks: list[dict[str, Any]] = [{**CLOSING_ACK, "id": "old", "action": "签收"}]

    def __call__(self, seq: int) -> tuple[int, list[dict[str, Any]]]:
        return len(self.acks), self.acks[seq:]


def test_watcher_reads_new_acks_once_and_starts_at_the_journals_end(tmp_path: Path, month, unqualified) -> None:
    """First run: it starts at the journal's end (no closing words for what was closed before the
    option); a 办结 journalled since gives one closing word; a second 办结, the same acks read again
    by a new watcher after a restart: nothing more."""
    settings = delivery_settings(month[0], env={})
    journal = Journal()
    with Outbox(tmp_path / "outbox.sqlite", settings) as outbox:
        outbox.add(unqualified, NOW)
        watcher = ClosingWords(month[0], outbox, journal)
        journal.acks.append(CLOSING_ACK)
        assert watcher(NOW) == 0 and outbox.mark(MARK) == "2"       # closed before the first run: not told
        journal.acks.append({**CLOSING_ACK, "id": "again", "acked_at": "2026-04-16T15:30:00"})
        journal.acks.append({**CLOSING_ACK, "id": "other", "by": "hh-fso"})
        outbox.set_mark(MARK, "1")                                   # as if the first 办结 came after the start
        assert watcher(NOW) == 1 and watcher(NOW) == 0
        assert ClosingWords(month[0], outbox, journal)(NOW) == 0
        outbox.set_mark(MARK, "0")
        assert ClosingWords(month[0], outbox, journal)(NOW) == 0      # read again from the start: known ids
        words = [n for n in outbox.notices() if n.rule == "notice.resolved"]
        assert [(n.id, n.recipients, n.facts["closed_by"]) for n in words] == [(RESOLVED.id, ("hh-fso",), "hh-agri")]


def test_watcher_by_key_and_unknown_notices(tmp_path: Path, month, unqualified) -> None:
    """An ack may name its notice by key (§1); an ack of a notice the outbox does not hold is passed over."""
    settings = delivery_settings(month[0], env={})
    journal = Journal()
    with Outbox(tmp_path / "outbox.sqlite", settings) as outbox:
        outbox.add(unqualified, NOW)
        watcher = ClosingWords(month[0], outbox, journal)
        watcher(NOW)
        journal.acks.append({**CLOSING_ACK, "notice_id": "sample.unqualified|红河镇|nope"})
        journal.acks.append({**CLOSING_ACK, "notice_id": unqualified.key})
        assert watcher(NOW) == 1


def _service(tmp_path: Path, resolved: bool, clock: list[datetime]) -> Service:
    data = config_dict(config_overrides={
        "notifiers": {"outbox": "outbox.sqlite", "file": {"dir": "发件箱"}, "quiet_hours": False,
                      "group_wait_seconds": 0, "digest": None, "resolved_messages": resolved},
        "service": {"listen": "127.0.0.1:0", "data_dir": "data"}})
    path = tmp_path / "county.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load(path)
    delivery = delivery_settings(config, env={})
    return watch_closings(Service(config, service_settings(config, env={}), delivery, now=lambda: clock[0]), delivery)


SAMPLE = {"type": "sampling_result", "id": "XP-NJ-2026-0317", "program": "agri_monitoring", "township": "红河镇",
          "village": "新寨村", "sampled_at": "2026-04-03T10:00:00", "entity": "王建军蔬菜批发部", "category": "蔬菜",
          "food": "韭菜", "items": [{"item": "腐霉利", "value": 0.86, "limit": 0.2}]}


@pytest.mark.parametrize("resolved", [True, False])
def test_shian_run_tells_the_other_recipients_of_a_closing_when_asked(tmp_path: Path, resolved: bool) -> None:
    """The embedded service as ``shian run`` builds it: with resolved_messages, 办结 by 农技中心
    through the service sends the town office a 办结通报 (file outbox) naming the closer and the
    note; the closer gets none; without the option nothing is sent."""
    clock = [datetime(2026, 4, 3, 10, 0, tzinfo=TZ)]
    svc = _service(tmp_path, resolved, clock)
    try:
        assert svc.accept_object(SAMPLE, "test").status == "accepted"
        asyncio.run(svc.dispatcher.step())
        clock[0] += timedelta(days=3)
        assert svc.ack(UNQUALIFIED, "hh-agri", "办结", "已下架并监督销毁").status == "accepted"
        asyncio.run(svc.dispatcher.step())
        folder = tmp_path / "发件箱"
        words = sorted(p.parent.name for p in folder.glob("*/*.md") if "办结通报" in p.read_text(encoding="utf-8"))
        assert words == (["hh-fso"] if resolved else [])
        if resolved:
            card = next(p for p in (folder / "hh-fso").glob("*.md") if "办结通报" in p.read_text("utf-8"))
            text = card.read_text("utf-8")
            assert "红河镇农技中心" in text and "已下架并监督销毁" in text and "shian ack" not in text
    finally:
        svc.store.close()
        svc.outbox.close()
