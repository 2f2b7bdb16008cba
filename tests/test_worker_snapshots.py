"""The Kafka worker's saved state in its Faust table (no broker: the table is a stand-in with the
two calls the worker makes): full snapshots and the deltas after them load back as saved, a
worker restored from them raises exactly the notices still due, and damaged state is refused
at load, never taken as state."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from shian.rules.config import load
from shian.rules.engine import SnapshotError
from shian.rules.records import Record
from shian.rules.timeutil import parse_time
from shian.streams import snapshots
from shian.streams.kafka import EVENTS, ClockDecoder, Ingest
from shian.streams.snapshots import EVENT, LIVE, TICK, Snapshots, decode_delta, encode_delta, from_instant, instant
from shian.streams.worker import PartitionWorker

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONFIG = load(EXAMPLES / "county.yaml")
UNTIL = parse_time("2026-05-01T00:00:00", CONFIG.tz)


class Table(dict):
    """What ``Snapshots`` uses of a Faust table: ``get``, ``[]``, ``data`` and the changelog."""

    def __init__(self) -> None:
        super().__init__()
        self.data = self
        self.changelog: list[tuple[int, bytes, bytes]] = []

    def send_changelog(self, p: int, key: bytes, value: bytes) -> None:
        self.changelog.append((p, key, value))


BLOB = bytes(range(256)) * 3000  # 768,000 bytes: two chunks
DELTA = bytes(range(255, -1, -1)) * 2500  # 640,000 bytes: two chunks


def saved(monkeypatch: Any) -> tuple[Snapshots, Table]:
    monkeypatch.setattr(snapshots, "CHUNK", 500_000)
    table = Table()
    snaps = Snapshots(table)
    snaps.save(2, BLOB)
    return snaps, table


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_a_saved_snapshot_loads_back_whole_and_its_head_names_its_digest(monkeypatch):
    """Two chunks, then the head with slot, chunk count and SHA-256."""
    snaps, table = saved(monkeypatch)
    assert snaps.load(2).base == BLOB and snaps.load(2).deltas == []
    assert table[b"engine-2"] == f"a:2:{sha(BLOB)}".encode()
    assert [k for _, k, _ in table.changelog] == [b"engine-2-a-0", b"engine-2-a-1", b"engine-2"]
    assert snaps.load(3) is None


def test_deltas_follow_the_full_snapshot_in_its_slot_and_the_head_names_each(monkeypatch):
    """A delta's chunks, then the head naming the full snapshot and every delta, in order."""
    snaps, table = saved(monkeypatch)
    assert snaps.save_delta(2, DELTA) == 1
    assert snaps.save_delta(2, b"second") == 2
    assert snaps.load(2).base == BLOB and snaps.load(2).deltas == [DELTA, b"second"]
    assert table[b"engine-2"] == f"a:2:{sha(BLOB)}+2:{sha(DELTA)}+1:{sha(b'second')}".encode()
    assert [k for _, k, _ in table.changelog][3:] == [b"engine-2-a-d1-0", b"engine-2-a-d1-1", b"engine-2",
                                                       b"engine-2-a-d2-0", b"engine-2"]


def test_a_delta_needs_a_full_snapshot_first(monkeypatch):
    snaps, _ = saved(monkeypatch)
    with pytest.raises(ValueError):
        snaps.save_delta(5, DELTA)


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
    pytest.param(lambda t: t.__setitem__(b"engine-2-a-d1-1", flip(t[b"engine-2-a-d1-1"], 9)), id="delta bit flipped"),
    pytest.param(lambda t: t.pop(b"engine-2-a-d1-0"), id="delta chunk missing"),
    pytest.param(lambda t: t.__setitem__(b"engine-2", t[b"engine-2"] + b"+1:00"), id="head names a delta never saved"),
])
def test_a_damaged_snapshot_is_refused_with_a_chinese_reason(monkeypatch, damage):
    """A flipped bit loads as a pickle more often than not (a state silently not the one
    saved); the digests in the head make every such damage a SnapshotError."""
    snaps, table = saved(monkeypatch)
    snaps.save_delta(2, DELTA)
    damage(table)
    with pytest.raises(SnapshotError, match="分区 2 的状态快照"):
        snaps.load(2)


def test_a_head_written_before_digests_loads_unchecked(monkeypatch):
    """Changelogs written by the version before the digest keep working."""
    snaps, table = saved(monkeypatch)
    table[b"engine-2"] = b"a:2"
    assert snaps.load(2).base == BLOB


def test_the_next_full_snapshot_goes_to_the_other_slot_and_the_old_one_stays_whole(monkeypatch):
    """Slots take turns; the head is written last, so the previous slot is intact until then."""
    snaps, table = saved(monkeypatch)
    snaps.save_delta(2, DELTA)
    newer = BLOB[::-1]
    snaps.save(2, newer)
    assert table[b"engine-2"].startswith(b"b:2:") and snaps.load(2).base == newer and snaps.load(2).deltas == []
    assert table[b"engine-2-a-0"] + table[b"engine-2-a-1"] == BLOB


@pytest.mark.parametrize("blob, reason", [
    (b"shian-delta/0\n...", "格式"),
    (b"shian-delta/1\nnot a pickle", "无法读取"),
    (b"", "格式"),
])
def test_a_delta_of_another_format_or_unreadable_is_refused(blob, reason):
    """Old or foreign delta bytes stop the worker, loudly, instead of being skipped."""
    with pytest.raises(SnapshotError, match=reason):
        decode_delta(blob, "分区 0 第 1 个")


def test_a_delta_round_trips_its_entries():
    entries = [(TICK, b"2026-04-02T10:00:00+08:00", b""), (EVENT, None, b'{"type": "entity"}'),
               (EVENT, b"2026-04-02T10:00:01+08:00", b"{}"), (LIVE, 1775095200123456, b"{}")]
    assert decode_delta(encode_delta(entries), "x") == entries


@pytest.mark.parametrize("text", ["2026-04-02T10:00:00.123456+08:00", "2026-04-02T02:00:00+00:00",
                                  "1970-01-01T08:00:00+08:00", "2026-10-25T01:30:00.5+01:00"])
def test_a_wall_clock_instant_comes_back_exactly(text):
    """Live entries keep the wall clock as microseconds: the same instant, in the config's zone."""
    at = datetime.fromisoformat(text).astimezone(CONFIG.tz)
    back = from_instant(instant(at), CONFIG.tz)
    assert (back, back.tzinfo, back.utcoffset()) == (at, at.tzinfo, at.utcoffset())


# -- a worker restored from a full snapshot and deltas ---------------------------------------

@dataclass
class Rec:
    """What the worker reads of an aiokafka record."""
    partition: int
    offset: int
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


class Producer:
    def __init__(self) -> None:
        self.sent: list[Rec] = []

    def send(self, topic: str, key: Any = None, value: bytes = b"", partition: int = 0, headers: Any = None) -> None:
        if topic == EVENTS:
            self.sent.append(Rec(partition, len(self.sent), value, list(headers or ())))

    def flush(self) -> None:
        pass


def ingested() -> list[Rec]:
    """The example's events as ``shian ingest --until`` puts them on one partition."""
    producer = Producer()
    ingest = Ingest(CONFIG, producer, 1, event_time=True, until=UNTIL)
    for i, line in enumerate((EXAMPLES / "events.jsonl").read_bytes().splitlines(), 1):
        ingest.add(Record("events.jsonl", i, line))
    ingest.finish()
    return producer.sent


def run(worker: PartitionWorker, records: list[Rec]) -> list[dict]:
    """The records through the worker's engine (rejects left aside); the notices raised."""
    part = worker.part_for(TP(EVENTS, 0))
    out = []
    for rec in records:
        try:
            worker._run(part, rec)
        except Exception:  # a rejected record: the worker sets it aside
            pass
        part.offset = rec.offset
        out += [n.to_json() for n in worker.outbox]
        worker.outbox.clear()
    return out


def fresh(table: Table) -> PartitionWorker:
    return PartitionWorker(None, CONFIG, 1, event_time=True, snapshots=Snapshots(table))


@pytest.mark.parametrize("cuts, deltas", [
    ((0.5,), 0),              # one full snapshot
    ((0.2, 0.5), 1),          # a full snapshot, then a delta
    ((0.1, 0.3, 0.6, 0.8), 3),  # a full snapshot, then three deltas
])
def test_a_worker_restored_from_a_full_snapshot_and_deltas_raises_exactly_what_is_still_due(cuts, deltas):
    """Saved state = the full snapshot with the deltas run again (their notices dropped): the
    next worker raises the notices after the last checkpoint, no more, no fewer."""
    records = ingested()
    straight = run(fresh(Table()), records)
    assert len(straight) > 20

    table = Table()
    first = fresh(table)
    split, done = [], 0
    for cut in cuts:
        upto = int(len(records) * cut)
        split += run(first, records[done:upto])
        first._save(first.parts[0], full=False)
        done = upto
    head = table[b"engine-0"].decode()
    assert head.count("+") == deltas
    second = fresh(table)
    assert second.part_for(TP(EVENTS, 0)).deltas == deltas and not second.outbox
    split += run(second, records[done:])
    assert split == straight


def test_a_worker_does_not_start_on_a_damaged_delta():
    """A delta whose bytes changed stops the worker with a SnapshotError, never a fresh start."""
    records = ingested()
    table = Table()
    first = fresh(table)
    run(first, records[:50])
    first._save(first.parts[0], full=False)
    run(first, records[50:100])
    first._save(first.parts[0], full=False)
    table[b"engine-0-a-d1-0"] = flip(table[b"engine-0-a-d1-0"], 20)
    with pytest.raises(SnapshotError, match="SHA-256"):
        fresh(table).part_for(TP(EVENTS, 0))


@pytest.mark.parametrize("text", [
    "2026-04-02T10:00:00+08:00",   # what ingest's fmt() writes: the short path
    "2026-04-02T02:00:00+00:00",   # another offset, same instant
    "2026-04-02T10:00:00-05:00",
    "2026-04-02T10:00",            # other contract shapes: parse_time itself
    "2026-04-02",
])
def test_a_clock_header_reads_as_parse_time_reads_it(text):
    """The worker's cheap clock decoding gives parse_time's datetime (value, zone, offset)."""
    decode = ClockDecoder(CONFIG.tz)
    want = parse_time(text, CONFIG.tz)
    for _ in range(2):  # the second time from the one-entry memo
        got = decode(text.encode())
        assert (got, got.tzinfo, got.utcoffset()) == (want, want.tzinfo, want.utcoffset())


@pytest.mark.parametrize("raw", [b"2026-02-30T10:00:00+08:00", b"2026-W14-4T10:00:00+08:00", b"yesterday", b""])
def test_an_unreadable_clock_header_is_a_value_error(raw):
    """A stamp the contract does not allow is refused (the record is set aside), never guessed."""
    with pytest.raises(ValueError):
        ClockDecoder(CONFIG.tz)(raw)
