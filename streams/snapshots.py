"""A Kafka worker's saved state: a full engine snapshot and the deltas after it, per partition.

Pickling a partition's whole engine at every checkpoint cost more the longer the partition ran
(its state grows with the year). A checkpoint now writes a *delta*: the input the engine ran
since the previous checkpoint — each record's value with the clock it ran at (or the tick) —
which a restarted worker runs again, silently, on top of the full snapshot. Every
``FULL_EVERY`` events (and at a clean stop) the state is compacted into a new full snapshot.
The engine is deterministic (same input, same state, same notices), so base + deltas is the
state the engine had at the checkpoint.

Layout in the table (changelog partition p holds the state of ``events`` partition p), in two
slots that take turns at each full snapshot:

- ``engine-P-S-I``: chunk I of the full snapshot in slot S (``a`` or ``b``);
- ``engine-P-S-dJ-I``: chunk I of delta J after it;
- ``engine-P``, the head, written last: ``S:N:<sha256>`` for the full snapshot of N chunks,
  then ``+N:<sha256>`` for each delta, in order.

Each piece's SHA-256 in the head is checked at load: a chunk with a flipped bit, truncated,
missing or replaced by another is a :class:`~shian.rules.engine.SnapshotError`, never state.
A head without a digest (written before digests) is loaded unchecked; a head naming deltas
cannot be read by a version before them (its digest check fails: it stops, loudly).
"""
from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from shian.rules.engine import SnapshotError

CHUNK = 512 * 1024
DELTA_MAGIC = b"shian-delta/1\n"  # bump when the entries' layout changes
TICK, EVENT, LIVE = "t", "e", "l"  # a clock tick; an event at its stamp (event time); one at the wall clock
EPOCH, MICROSECOND = datetime(1970, 1, 1, tzinfo=timezone.utc), timedelta(microseconds=1)

# One entry: (kind, clock, record value). The clock is the stamp as the record carried it
# (bytes: its clock header, or a tick's value), an instant of the wall clock in microseconds
# since the epoch (int: live events and the worker's own ticks), or None (a register row sent
# before the clock started). TICK's value is empty. Plain bytes and ints pickle several times
# faster than datetimes.
Clock = "bytes | int | None"
Entry = tuple[str, Clock, bytes]


def instant(at: datetime) -> int:
    """A wall-clock instant as microseconds since the epoch (exact)."""
    return (at - EPOCH) // MICROSECOND


def from_instant(us: int, tz: tzinfo) -> datetime:
    """The instant back as a datetime in ``tz`` (exact; ``fromtimestamp`` picks the offset)."""
    return datetime.fromtimestamp(us // 1_000_000, tz).replace(microsecond=us % 1_000_000)


def encode_delta(entries: list[Entry]) -> bytes:
    """The entries as bytes. Not compressed: zlib took several times as long as the pickle on
    the worker's event-loop thread, and the broker stores the bytes for less."""
    return DELTA_MAGIC + pickle.dumps(entries, protocol=pickle.HIGHEST_PROTOCOL)


def decode_delta(blob: bytes, where: str) -> list[Entry]:
    """The entries of a delta; SnapshotError when it is of another format or unreadable."""
    if not blob.startswith(DELTA_MAGIC):
        head = blob[:len(DELTA_MAGIC)].split(b"\n")[0].decode("ascii", "replace")
        raise SnapshotError(f"{where}的增量快照格式为“{head}”，本版本只能读取“{DELTA_MAGIC.decode().strip()}”")
    try:
        entries = pickle.loads(blob[len(DELTA_MAGIC):])
    except Exception as e:  # any failure means the same: unreadable state
        raise SnapshotError(f"{where}的增量快照无法读取：{type(e).__name__}: {e}") from e
    if not isinstance(entries, list):
        raise SnapshotError(f"{where}的增量快照无法读取：内容不是记录列表")
    return entries


@dataclass
class Saved:
    """A partition's saved state: the full snapshot and the deltas after it, in order."""
    base: bytes
    deltas: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class Head:
    slot: str
    pieces: tuple[tuple[int, str | None], ...]  # (chunks, sha256) of the full snapshot, then of each delta

    @classmethod
    def parse(cls, text: str) -> "Head":
        base, *deltas = text.split("+")
        slot, chunks, *digest = base.split(":")
        if slot not in ("a", "b"):
            raise ValueError(f"slot {slot!r}")
        pieces = [(int(chunks), digest[0] if digest else None)]
        for d in deltas:
            n, sha = d.split(":")
            pieces.append((int(n), sha))
        return cls(slot, tuple(pieces))

    def text(self) -> str:
        (n, sha), *deltas = self.pieces
        return f"{self.slot}:{n}:{sha}" + "".join(f"+{k}:{s}" for k, s in deltas)


class Snapshots:
    """The saved states in the Faust table (see the module docstring)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def head(self, p: int) -> Head | None:
        raw = self.table.get(f"engine-{p}".encode())
        if not raw:
            return None
        try:
            return Head.parse(raw.decode())
        except (ValueError, UnicodeDecodeError) as e:
            raise SnapshotError(f"分区 {p} 的状态快照不完整（{raw[:80]!r}）：{type(e).__name__}: {e}") from e

    def load(self, p: int) -> Saved | None:
        """Partition ``p``'s saved state (None: there is none). Raises SnapshotError when a
        chunk is missing or the bytes are not those that were saved."""
        head = self.head(p)
        if head is None:
            return None
        blobs = [self._piece(p, head, j) for j in range(len(head.pieces))]
        return Saved(blobs[0], blobs[1:])

    def _piece(self, p: int, head: Head, j: int) -> bytes:
        chunks, digest = head.pieces[j]
        prefix = f"engine-{p}-{head.slot}-" + (f"d{j}-" if j else "")
        try:
            blob = b"".join(self.table[f"{prefix}{i}".encode()] for i in range(chunks))
        except (KeyError, TypeError) as e:
            raise SnapshotError(f"分区 {p} 的状态快照不完整（{head.text()[:80]}）：{type(e).__name__}: {e}") from e
        if digest is not None and hashlib.sha256(blob).hexdigest() != digest:
            what = "快照" if j == 0 else f"第 {j} 个增量快照"
            raise SnapshotError(f"分区 {p} 的状态快照校验失败：{what}的内容与保存时的 SHA-256 不符，快照已损坏")
        return blob

    def save(self, p: int, blob: bytes) -> None:
        """A full snapshot: its chunks into the slot the head does not name, then the head
        (no deltas). A worker killed half-way through leaves the previous state whole."""
        head = self.head_or_none(p)
        slot = "b" if head is not None and head.slot == "a" else "a"
        n = self._write(p, f"engine-{p}-{slot}-", blob)
        self._put(p, f"engine-{p}".encode(), Head(slot, ((n, hashlib.sha256(blob).hexdigest()),)).text().encode())

    def save_delta(self, p: int, blob: bytes) -> int:
        """A delta after the current full snapshot: its chunks, then the head naming it too.
        Returns the number of deltas now saved; ValueError when there is no full snapshot."""
        head = self.head_or_none(p)
        if head is None:
            raise ValueError(f"partition {p}: a delta needs a full snapshot first")
        j = len(head.pieces)
        n = self._write(p, f"engine-{p}-{head.slot}-d{j}-", blob)
        new = Head(head.slot, head.pieces + ((n, hashlib.sha256(blob).hexdigest()),))
        self._put(p, f"engine-{p}".encode(), new.text().encode())
        return j

    def head_or_none(self, p: int) -> Head | None:
        """The head, or None when there is none or it cannot be read (then the next save
        starts a new full snapshot over it)."""
        try:
            return self.head(p)
        except SnapshotError:
            return None

    def _write(self, p: int, prefix: str, blob: bytes) -> int:
        chunks = [blob[i:i + CHUNK] for i in range(0, len(blob), CHUNK)] or [b""]
        for i, chunk in enumerate(chunks):
            self._put(p, f"{prefix}{i}".encode(), chunk)
        return len(chunks)

    def _put(self, p: int, key: bytes, value: bytes) -> None:
        """A table write on partition ``p`` of the changelog, outside Faust's stream iteration
        (which would take the partition from the current event)."""
        self.table.data[key] = value
        self.table.send_changelog(p, key, value)
