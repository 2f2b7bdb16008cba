"""The fuzz of every input path at a small size (fixed seed, the hostile inputs that take
seconds left to ``make fuzz``): each input is answered within the timeout, without a crash,
good rows accepted and kept, bad rows rejected for their reason (tests/fuzz). Failures of
code owned elsewhere that tests/fuzz/known.py lists make the path an expected failure."""
from __future__ import annotations

import pytest

from fuzz.known import known_reason
from fuzz.paths import TARGETS
from fuzz.runner import FAST_SIZES as SIZE, details, run_path, table

SEED = 20260501


@pytest.mark.parametrize("path", list(TARGETS))
def test_every_input_of_the_path_is_answered_as_built(path: str) -> None:
    """Crashes, hangs, wrong accepts, wrong rejects, lost good rows and wrong reasons: all zero
    but for the listed known failures of other owners' code."""
    tally = run_path(path, SIZE[path], SEED, light=True)
    unknown = [f for f in tally.failures if known_reason(f) is None]
    report = table([tally]) + "\n" + details([tally])
    assert tally.tried == SIZE[path], report
    assert not unknown, report
    if tally.failures:
        pytest.xfail("known failures (tests/fuzz/known.py): "
                     + "; ".join(sorted({f.label for f in tally.failures}))[:500])


# -- the oracle itself: each rule reports what it should -------------------------------------

from collections import Counter  # noqa: E402

from fuzz.model import ACCEPT, DUPLICATE, REJECT, Case, Row  # noqa: E402
from fuzz.oracle import Seen, judge  # noqa: E402


def _case(*rows: Row) -> Case:
    return Case("jsonl", "synthetic", list(rows))


@pytest.mark.parametrize("seen, kind", [
    (Seen(rejects=[("1", "乡镇“x”未在配置中登记")]), "wrong_reject"),             # the good row rejected
    (Seen(accepted=Counter({"G": 1, "B": 1})), "wrong_accept"),                     # the bad row accepted
    (Seen(accepted=Counter({"B": 0})), "lost"),                                     # the good row nowhere
    (Seen(accepted=Counter({"G": 1}), rejects=[("2", "处理失败（KeyError）")]), "crash"),
    (Seen(accepted=Counter({"G": 1}), rejects=[("2", "Number out of range")]), "wrong_reason"),
    (Seen(accepted=Counter({"G": 1}), rejects=[("2", "字段 cases（发病人数）：Number out of range")]), "wrong_reason"),
    (Seen(accepted=Counter({"G": 1}), rejects=[("2", "缺少必填字段 kind"), ("", "文件为空")]), "wrong_reject"),
    (Seen(accepted=Counter({"G": 1}), rejects=[("2", "x")], journal=Counter()), "lost"),
    (Seen(accepted=Counter({"G": 1}), rejects=[("2", "x")], crashes=["HTTP 500"]), "crash"),
])
def test_the_oracle_reports_each_kind_of_failure(seen, kind):
    """A good row (line 1) and a bad one of a township fault (line 2): each way of getting them
    wrong is reported as its kind."""
    case = _case(Row("G", ACCEPT, line="1"), Row("B", REJECT, "township", line="2"))
    assert kind in {f.kind for f in judge(case, seen)}


def test_the_oracle_passes_what_was_answered_as_built():
    """Good accepted, bad rejected for its reason, the re-send dropped, an unreadable file's rows
    covered by its reject: nothing to report."""
    case = _case(Row("G", ACCEPT, line="1"), Row("B", REJECT, "township", line="2"), Row("G", DUPLICATE, line="3"),
                 Row("C", REJECT, "file", line=None))
    seen = Seen(accepted=Counter({"G": 1}), duplicates=Counter({"G": 1}),
                rejects=[("2", "乡镇“x”未在配置中登记"), ("", "工作簿已损坏，无法读取（ParseError）")])
    assert judge(case, seen) == []


def test_the_fuzz_finds_a_validator_that_lets_unknown_townships_through(tmp_path, monkeypatch):
    """The whole chain (generator, replay, oracle) in one process, against a validator broken
    on purpose: its wrong accepts are found."""
    from fuzz.paths import TARGETS as targets
    from shian.rules.events import Validator

    monkeypatch.setattr(Validator, "_check", lambda self, ev: ev)
    target = targets["jsonl"](tmp_path)
    failures = [f for i in range(20, 40) for f in target.check(target.case(SEED, i))]
    assert {"township", "reporter", "department"} & {f.why for f in failures if f.kind == "wrong_accept"}
