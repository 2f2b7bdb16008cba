"""`make bench`'s one table: rows round-trip through JSON, a failed benchmark is a row, not a crash."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import run  # noqa: E402
from targets import Target, read_rows, table, write_rows  # noqa: E402

ROWS = [
    Target("replay", "replay, light feed", "80,000 ev/s", "200,000 ev/s", "2.50", "≤ 2.5", True),
    Target("delivery", "CPU per message", "1.2 ms", "0.9 ms", "1.33", "≤ 1", False),
    Target("service", "RSS at minute 5", "80 MB"),
]


def test_rows_round_trip_through_json(tmp_path: Path) -> None:
    """What a benchmark writes with --json is what make bench reads back, field for field."""
    write_rows(tmp_path / "rows.json", ROWS)
    assert read_rows(tmp_path / "rows.json") == ROWS


@pytest.mark.parametrize("met, last", [(True, "yes"), (False, "NO"), (None, "result-only")])
def test_met_column(met: bool | None, last: str) -> None:
    """A target met, missed, or a figure without a target (nothing after its result), each shown as such."""
    lines = table([Target("b", "m", "result-only", met=met)])
    assert lines[1].split()[-1] == last


def test_markdown_table_escapes_pipes() -> None:
    """A '|' inside a cell cannot split the README's Markdown table."""
    md = table([Target("b", "a | b", "1")], markdown=True)
    assert md[2].count(" | ") == 6 and "a \\| b" in md[2]


def test_failed_benchmark_is_a_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A benchmark that exits non-zero without rows gives a 'failed' row and make bench exits 1."""
    script = tmp_path / "broken_bench.py"
    script.write_text("import sys\nsys.exit(3)\n")
    monkeypatch.setattr(run, "DIR", tmp_path)
    monkeypatch.setattr(run, "BENCHES", (run.Bench("broken", script.name),))
    assert run.main(["--out", str(tmp_path / "out")]) == 1
    rows = read_rows(tmp_path / "out" / "bench.json")
    assert rows == [Target("broken", "benchmark run", "failed (exit 3)", met=False)]
