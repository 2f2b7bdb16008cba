"""Properties of replay and the rule engine over generated event streams (§3 clock, §4, §6).

The streams come from tests/event_strategies.py: valid events of every type over a small
county, a few months of event time with late arrivals and events at exactly the deadlines;
invalid lines are valid events with one thing broken. Example counts scale with the
Hypothesis profile (tests/conftest.py: ``ci`` by default, ``HYPOTHESIS_PROFILE=fuzz`` for long
runs). Another process (tests/replay_worker.py, another hash seed) replays the same input and
resumes snapshots taken here.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import selectors
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from event_strategies import (CONFIG, CONFIGS, Run, configs, encode, invalid_lines, replay, run_engine, streams,
                              untils)
from shian.rules.engine import SNAPSHOT_MAGIC, Status
from shian.rules.events import Rejected, Validator
from shian.rules.timeutil import parse_time

WORKER = Path(__file__).resolve().parent / "replay_worker.py"
RULE_FAILED = "处理失败"  # the reason replay gives a line on which a rule raised: never expected here
DUPLICATE_CHANGED = "duplicate id with different content; the first is kept"  # §1's words, in the reason


def examples(n: int) -> int:
    """``n`` examples under the ``ci`` profile (max_examples 100), scaled for the others."""
    return max(1, n * settings().max_examples // 100)


class OtherProcess:
    """tests/replay_worker.py under another hash seed, asked one request at a time."""

    def __init__(self) -> None:
        seed = "1" if os.environ.get("PYTHONHASHSEED") == "0" else "0"
        self.proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env={**os.environ, "PYTHONHASHSEED": seed})
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)

    def ask(self, config: str, lines: list[str], until: datetime | None, snapshot: bytes | None = None,
            first: int = 1) -> Run:
        request = {"config": config, "lines": lines,
                   "until": until.isoformat() if until else None, "first": first,
                   "snapshot": base64.b64encode(snapshot).decode() if snapshot is not None else None}
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        if not self.selector.select(timeout=60):
            raise AssertionError("the other process gave no answer within 60 s")
        text = self.proc.stdout.readline()
        if not text:
            raise AssertionError(f"the other process ended (exit status {self.proc.wait()})")
        got = json.loads(text)
        return Run(got["notices"], [tuple(r) for r in got["rejects"]], got["statuses"], got["duplicates"],
                   got["skipped"])

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.selector.close()


@pytest.fixture(scope="module")
def other_process() -> Iterator[OtherProcess]:
    worker = OtherProcess()
    yield worker
    worker.close()


def no_rule_failed(run: Run) -> None:
    failed = [r for r in run.rejects if r[1].startswith(RULE_FAILED)]
    assert not failed, f"a rule raised on these lines: {failed}"


def renumbered(run: Run, origin: list[int | None]) -> list[tuple[int | None, str]]:
    """The run's rejects with each line number replaced by the line's index in the stream
    before lines were inserted (None for an inserted line)."""
    return [(origin[line - 1], reason) for line, reason in run.rejects]


def as_before(base: Run) -> list[tuple[int | None, str]]:
    return [(line - 1, reason) for line, reason in base.rejects]


def insert(lines: list[str], extra: list[tuple[int, str]]) -> tuple[list[str], list[int | None]]:
    """``lines`` with each ``(position, line)`` of ``extra`` put before ``lines[position]``
    (at the end for ``len(lines)``); also each resulting line's index in ``lines`` (None: inserted)."""
    at: dict[int, list[str]] = {}
    for pos, line in extra:
        at.setdefault(pos, []).append(line)
    out: list[str] = []
    origin: list[int | None] = []
    for i in range(len(lines) + 1):
        out += at.get(i, [])
        origin += [None] * len(at.get(i, []))
        if i < len(lines):
            out.append(lines[i])
            origin.append(i)
    return out, origin


# -- 1. determinism ------------------------------------------------------------------------------

@settings(max_examples=examples(60), deadline=None)
@given(config=configs, lines=streams(), until=untils)
def test_replaying_the_same_events_gives_the_same_notices(other_process: OtherProcess, config, lines, until) -> None:
    """Replay is deterministic (§3): the same notices (ids, order, content) again and under another hash seed."""
    first = replay(lines, until, CONFIGS[config])
    no_rule_failed(first)
    again = replay(lines, until, CONFIGS[config])
    assert again.notices == first.notices
    assert again.rejects == first.rejects
    elsewhere = other_process.ask(config, lines, until)
    assert elsewhere.notices == first.notices
    assert elsewhere.rejects == first.rejects


# -- 2. duplicates ---------------------------------------------------------------------------------

@st.composite
def respelled(draw: st.DrawFn, obj: Any) -> Any:
    """The same JSON value with its objects' keys in another order (at every depth)."""
    if isinstance(obj, dict):
        keys = draw(st.permutations(list(obj)))
        return {k: draw(respelled(obj[k])) for k in keys}
    if isinstance(obj, list):
        return [draw(respelled(v)) for v in obj]
    return obj


@st.composite
def resent(draw: st.DrawFn, line: str) -> str:
    """``line`` sent again: the same JSON object, key order, spacing and escapes aside (§1)."""
    obj = draw(respelled(json.loads(line)))
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,  ", " :\t")]))
    return json.dumps(obj, ensure_ascii=draw(st.booleans()), separators=separators)


def taken(base: Run) -> list[int]:
    """Indexes of the lines the engine took (accepted, or dropped as duplicates)."""
    return [i for i, s in enumerate(base.statuses) if s in (Status.ACCEPTED, Status.DUPLICATE)]


@settings(max_examples=examples(80), deadline=None)
@given(lines=streams(), until=untils, data=st.data())
def test_a_resent_copy_anywhere_after_its_original_changes_nothing(lines, until, data) -> None:
    """Duplicates (§1): a copy of an accepted event anywhere after it is counted and dropped, and changes nothing."""
    originals = taken(run_engine(lines, until))
    assume(originals)
    copies = data.draw(st.lists(st.sampled_from(originals), min_size=1, max_size=3), label="originals copied")
    extra = [(data.draw(st.integers(i + 1, len(lines)), label="before line"), data.draw(resent(lines[i])))
             for i in copies]
    new, origin = insert(lines, extra)
    base, got = replay(lines, until), replay(new, until)
    no_rule_failed(base)
    assert got.notices == base.notices
    assert renumbered(got, origin) == as_before(base)
    assert got.duplicates == base.duplicates + len(copies)
    assert got.skipped == base.skipped


def changed(line: str) -> str:
    """``line`` with the same type, township and id but one other value changed (never its time)."""
    obj = json.loads(line)
    field = {"monthly_report": "period", "ack": "note", "disposal": "measures", "incident": "kind"}.get(
        obj["type"], "village")
    obj[field] = {"period": "2025-06", "measures": ["复检", "另报"]}.get(field, f"{obj.get(field) or ''}（重报）")
    return json.dumps(obj, ensure_ascii=False)


@settings(max_examples=examples(50), deadline=None)
@given(lines=streams(), until=untils, data=st.data())
def test_a_changed_resend_is_rejected_and_changes_nothing_else(lines, until, data) -> None:
    """Same id, other content (§1): the resend is rejected ("the first is kept") and every other line is as before."""
    originals = taken(run_engine(lines, until))
    assume(originals)
    i = data.draw(st.sampled_from(originals), label="original")
    new, origin = insert(lines, [(data.draw(st.integers(i + 1, len(lines)), label="before line"),
                                  changed(lines[i]))])
    base, got = replay(lines, until), replay(new, until)
    assert got.notices == base.notices
    rejects = renumbered(got, origin)
    [inserted] = [reason for line, reason in rejects if line is None]
    assert DUPLICATE_CHANGED in inserted
    assert [r for r in rejects if r[0] is not None] == as_before(base)


# -- 3. snapshot and restore ------------------------------------------------------------------------

@settings(max_examples=examples(80), deadline=None)
@given(config=configs, lines=streams(), until=untils, data=st.data())
def test_resuming_from_a_snapshot_gives_the_notices_of_one_run(other_process: OtherProcess, config, lines, until,
                                                               data) -> None:
    """Snapshot (shian-engine/3) and restore anywhere, here or in another process: the notices of one run."""
    cuts = tuple(data.draw(st.lists(st.integers(0, len(lines)), min_size=1, max_size=3), label="split before"))
    one = replay(lines, until, CONFIGS[config])
    here = run_engine(lines, until, splits=cuts, config=CONFIGS[config])
    assert here.notices == one.notices
    assert here.rejects == one.rejects

    def elsewhere(blob: bytes, rest: list[str], first: int) -> Run:
        assert blob.startswith(SNAPSHOT_MAGIC)
        return other_process.ask(config, rest, until, snapshot=blob, first=first)

    there = run_engine(lines, until, splits=cuts, restore=elsewhere, config=CONFIGS[config])
    assert there.notices == one.notices
    assert there.rejects == one.rejects


@settings(max_examples=examples(40), deadline=None)
@given(config=configs, lines=streams(), until=untils, data=st.data())
def test_the_same_lines_in_several_files_give_the_notices_of_one_file(config, lines, until, data) -> None:
    """Replay reads its files in order as one input (§5): splitting the input into files changes nothing."""
    files = tuple(data.draw(st.lists(st.integers(1, max(1, len(lines) - 1)), min_size=1, max_size=3),
                            label="a file starts at"))
    one = replay(lines, until, CONFIGS[config])
    several = replay(lines, until, CONFIGS[config], files=files)
    assert several.notices == one.notices
    assert several.rejects == one.rejects
    assert (several.duplicates, several.skipped) == (one.duplicates, one.skipped)


# -- 4. the clock ---------------------------------------------------------------------------------

def contract_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def clock_span(lines: list[str], until: datetime | None) -> tuple[datetime, datetime] | None:
    """From the first valid line's time (it starts the clock, §3) to the latest the clock can
    reach: the latest time of a valid line not beyond ``until``, or ``until``."""
    validator = Validator(CONFIG.known())
    times = []
    for line in lines:
        try:
            t = validator.from_json(encode(line)).time
        except Rejected:
            continue
        if until is None or t <= until:
            times.append(t)
    if not times:
        return None
    start = times[0].replace(microsecond=0)  # notices' ``at`` are written to the second (§4)
    return start, max(times + ([until] if until is not None and until > times[0] else []))


# On the county config only: with a short ``dedup_days`` an id used again later is a new event
# (§1), and its notices are those of a new event, ids included.
@settings(max_examples=examples(100), deadline=None)
@given(lines=streams(), until=untils)
def test_the_clock_fires_each_deadline_once_and_in_time_order(lines, until) -> None:
    """The clock (§3, §4): ``at`` never decreases, no notice id twice, nothing outside the clock's span."""
    run = replay(lines, until)
    no_rule_failed(run)
    ats = [parse_time(n["at"], CONFIG.tz) for n in run.notices]
    assert ats == sorted(ats), [(n["at"], n["key"]) for n in run.notices]
    ids = [n["id"] for n in run.notices]
    assert len(ids) == len(set(ids)), [n["key"] for n in run.notices if ids.count(n["id"]) > 1]
    assert all(n["id"] == contract_id(n["key"]) and n["key"].startswith(f"{n['rule']}|{n['township']}|")
               for n in run.notices)
    span = clock_span(lines, until)
    if span is None:
        assert not run.notices
    elif ats:
        assert span[0] <= ats[0] and ats[-1] <= span[1], (span, run.notices[0]["at"], run.notices[-1]["at"])


# -- 5. rejected lines ----------------------------------------------------------------------------

@settings(max_examples=examples(100), deadline=None)
@given(config=configs, lines=streams(), until=untils, data=st.data())
def test_a_line_rejected_by_validation_anywhere_changes_nothing_else(config, lines, until, data) -> None:
    """Rejects (§1): lines validation rejects, anywhere (first included), leave every other line's outcome unchanged."""
    bad = data.draw(st.lists(invalid_lines(), min_size=1, max_size=3), label="invalid lines")
    validator = Validator(CONFIGS[config].known())
    for line in bad:
        with pytest.raises(Rejected):
            validator.from_json(encode(line))
    extra = [(data.draw(st.integers(0, len(lines)), label="before line"), line) for line in bad]
    new, origin = insert(lines, extra)
    base, got = replay(lines, until, CONFIGS[config]), replay(new, until, CONFIGS[config])
    assert got.notices == base.notices
    rejects = renumbered(got, origin)
    assert len([r for r in rejects if r[0] is None]) == len(bad)
    assert [r for r in rejects if r[0] is not None] == as_before(base)
    assert (got.duplicates, got.skipped) == (base.duplicates, base.skipped)
