"""The Kafka worker's snapshots in its Faust table (no broker: the table is a stand-in with the
two calls the worker makes): a damaged snapshot is refused at load, never taken as state."""
from __future__ import annotations

import hashlib
from typing import Any

import pytest

from shian.rules.engine import SnapshotError
from shian.streams import worker
from shian.streams.worker import Snapshots


class Table(dict):
    """What ``Snapshots`` uses of a Faust table: ``get``, ``[]``, ``data`` and the changelog."""

    def __init__(self) -> None:
        super().__init__()
        self.data = self
        self.changelog: list[tuple[int, bytes, bytes]] = []

    def send_changelog(self, p: int, key: bytes, value: bytes) -> None:
        self.changelog.append((p, key, value))


BLOB = bytes(range(256)) * 3000  # 768,000 bytes: two chunks


def saved(monkeypatch: Any) -> tuple[Snapshots, Table]:
    monkeypatch.setattr(worker, "CHUNK", 500_000)
    table = Table()
    snaps = Snapshots(table)
    snaps.save(2, BLOB)
    return snaps, table


def test_a_saved_snapshot_loads_back_whole_and_its_head_names_its_digest(monkeypatch):
    """Two chunks, then the head with slot, chunk count and SHA-256."""
    snaps, table = saved(monkeypatch)
    assert snaps.load(2) == BLOB
    assert table[b"engine-2"] == f"a:2:{hashlib.sha256(BLOB).hexdigest()}".encode()
    assert [k for _, k, _ in table.changelog] == [b"engine-2-a-0", b"engine-2-a-1", b"engine-2"]
    assert snaps.load(3) is None


def flip(value: bytes, pos: int) -> bytes:
    b = bytearray(value)
    b[pos] ^= 0x10
    return bytes(b)


@pytest.mark.parametrize("damage", [
    pytest.param(lambda t: t.__setitem__(b"engine-2-a-0", flip(t[b"engine-2-a-0"], 250_000)), id="bit flipped"),
    pytest.param(lambda t: t.__setitem__(b"engine-2-a-1", t[b"engine-2-a-1"][:-1]), id="last chunk truncated"),
    pytest.param(lambda t: t.__setitem__(b"engine-2-a-1", t[b"engine-2-a-0"]), id="chunk replaced by another"),
    pytest.param(lambda t: t.pop(b"engine-2-a-1"), id="chunk missing"),
    pytest.param(lambda t: t.__setitem__(b"engine-2", b"a:x"), id="head unreadable"),
])
def test_a_damaged_snapshot_is_refused_with_a_chinese_reason(monkeypatch, damage):
    """A flipped bit loads as a pickle more often than not (a state silently not the one
    saved); the digest in the head makes every such damage a SnapshotError."""
    snaps, table = saved(monkeypatch)
    damage(table)
    with pytest.raises(SnapshotError, match="分区 2 的状态快照"):
        snaps.load(2)


def test_a_head_written_before_digests_loads_unchecked(monkeypatch):
    """Changelogs written by the version before the digest keep working."""
    snaps, table = saved(monkeypatch)
    table[b"engine-2"] = b"a:2"
    assert snaps.load(2) == BLOB


def test_the_next_snapshot_goes_to_the_other_slot_and_the_old_one_stays_whole(monkeypatch):
    """Slots take turns; the head is written last, so the previous slot is intact until then."""
    snaps, table = saved(monkeypatch)
    newer = BLOB[::-1]
    snaps.save(2, newer)
    assert table[b"engine-2"].startswith(b"b:2:") and snaps.load(2) == newer
    assert table[b"engine-2-a-0"] + table[b"engine-2-a-1"] == BLOB
