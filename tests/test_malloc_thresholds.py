"""A long-running process keeps glibc's mmap threshold fixed: once a snapshot's buffer of
many MB is freed, a block of a few hundred kB (a digest, a page) is still mapped on its own
and unmapped when freed — with glibc's moving threshold it comes from the heap, where each
one freed among long-lived objects leaves a hole the heap cannot give back."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from shian.streams import base

PATTERN = textwrap.dedent("""
    import ctypes, sys
    from shian.streams.base import fix_malloc_thresholds
    if sys.argv[1] == "fixed":
        assert fix_malloc_thresholds()
    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                    "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    snapshot = b"s" * (8 << 20)   # mapped, then freed: glibc's own threshold rises to 8 MB
    del snapshot
    before = libc.mallinfo2().hblkhd
    # glibc serves a block from a free chunk of the heap when one is large enough, mapped or
    # not, and what the interpreter's start left free differs from machine to machine: forty
    # digests (16 MB) are more than any such leftover
    digests = [bytes(400_000) for _ in range(40)]
    print(libc.mallinfo2().hblkhd - before)
""")


def mapped_for_a_digest(how: str) -> int:
    """The bytes mapped on their own for forty 400 kB blocks made after an 8 MB one was freed."""
    out = subprocess.run([sys.executable, "-c", PATTERN, how], capture_output=True, text=True, check=True)
    return int(out.stdout)


@pytest.mark.skipif(base._TRIM is None, reason="glibc's malloc only")
def test_a_block_above_the_fixed_threshold_is_mapped_even_after_a_larger_one_was_freed() -> None:
    assert mapped_for_a_digest("fixed") >= 30 * 400_000
    assert mapped_for_a_digest("moving") == 0, "glibc's own threshold does not move: the test shows nothing"
