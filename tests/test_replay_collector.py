"""Replay puts off the garbage collector's full collections while it runs, and gives the
process its own setting back afterwards, also when the run fails."""
from __future__ import annotations

import gc
from pathlib import Path

import pytest

from conftest import config_dict, write_events
from shian.rules.config import parse
from shian.streams.replay import FULL_COLLECTION_EVERY, Replay


def lic(iid: str) -> dict[str, object]:
    return {"type": "inspection", "id": iid, "inspected_at": "2026-03-02T09:00:00", "township": "红河镇",
            "entity": "阳光餐馆", "entity_type": "餐饮服务", "inspection_type": "日常检查", "outcome": "合格",
            "license_valid": False}


def test_full_collections_are_put_off_during_a_replay_and_restored_after(tmp_path: Path) -> None:
    """During the run the third threshold is at least FULL_COLLECTION_EVERY; after it, as before."""
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    path = write_events(tmp_path / "e.jsonl", [lic("JC1")])
    Replay(parse(config_dict()), lambda n: seen.append(gc.get_threshold()), lambda r: None).run([str(path)])
    assert seen and all(s[2] >= FULL_COLLECTION_EVERY and s[:2] == before[:2] for s in seen)
    assert gc.get_threshold() == before


def test_the_setting_is_restored_when_the_run_fails(tmp_path: Path) -> None:
    """An input file that cannot be opened ends the run; the collector's setting is still restored."""
    before = gc.get_threshold()
    with pytest.raises(OSError):
        Replay(parse(config_dict()), lambda n: None, lambda r: None).run([str(tmp_path / "missing.jsonl")])
    assert gc.get_threshold() == before
