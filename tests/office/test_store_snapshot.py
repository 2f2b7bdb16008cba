"""The journal keeps one engine snapshot: it reads back as written (a shorter one replaces a
longer one whole), and writing it leaves no copy of it in SQLite's memory (bound as a
parameter, the whole state stayed with the cached statement until the next snapshot)."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shian.streams.store import Store

TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("sizes", [(0,), (10,), (3 << 20, 100), (100, 3 << 20), (1 << 20, 0, 5)])
def test_the_last_snapshot_written_is_the_one_read(tmp_path: Path, sizes: tuple[int, ...]) -> None:
    """Every size in turn, each replacing the one before it; the reopened journal has the last."""
    store = Store(tmp_path / "events.sqlite", TZ)
    for seq, size in enumerate(sizes, 1):
        blob = os.urandom(size)
        store.save_snapshot(seq, blob)
        assert store.load_snapshot() == (seq, blob)
    store.close()
    again = Store(tmp_path / "events.sqlite", TZ)
    assert again.load_snapshot() == (len(sizes), blob)
    again.close()


def _sqlite_memory() -> ctypes.CDLL:
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        pytest.skip("no shared SQLite library to ask for its memory")
    lib = ctypes.CDLL(name)
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return lib


def test_a_written_snapshot_leaves_no_copy_in_sqlite_memory(tmp_path: Path) -> None:
    """8 MB of state written: SQLite holds well under 1 MB more than before (its page cache
    is 2 MB at most), not the 8 MB again."""
    lib = _sqlite_memory()
    store = Store(tmp_path / "events.sqlite", TZ)
    store.db.execute("PRAGMA shrink_memory")
    before = lib.sqlite3_memory_used()
    store.save_snapshot(1, os.urandom(8 << 20))
    store.db.execute("PRAGMA shrink_memory")   # the page cache let go: what is left is held
    held = lib.sqlite3_memory_used() - before
    store.close()
    assert held < 1 << 20, f"SQLite holds {held / 1e6:.1f} MB more after the snapshot"
