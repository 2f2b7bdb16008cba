"""The office's reads of the stored notices (``shian.streams.noticeview``): the same pages and
counts as the outbox's own queries, one count for the list's panel, and reads on a thread of
their own beside the runtime's writes."""
from __future__ import annotations

import dataclasses
import importlib.util
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from office_support import service_in
from shian.notifiers.outbox import ORDER, NoticeQuery, Outbox
from shian.streams.noticeview import NoticeView


def _outbox_cases() -> Any:
    """The outbox's own paging cases (tests/notifiers/test_outbox.py), loaded by path."""
    name = "outbox_paging_cases"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "notifiers" / "test_outbox.py")
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return sys.modules[name]


cases = _outbox_cases()


def stored(tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    settings = cases.make_settings(tmp_path)
    made = {name: cases.make_notice(rule, tw, name, at=at, severity=sev, recipients=rec)
            for name, (rule, tw, at, sev, rec) in cases.PAGED.items()}
    with Outbox(settings.outbox, settings) as ob:
        for n in made.values():
            ob.add(n, cases.NOW)
    return settings, made


def real(query: NoticeQuery, made: dict[str, Any]) -> NoticeQuery:
    return dataclasses.replace(query, ids=None if query.ids is None else tuple(made[i].id if i in made else i
                                                                                for i in query.ids),
                               exclude=tuple(made[i].id for i in query.exclude))


@pytest.mark.parametrize("query, offset, limit, names, total", cases.PAGE_CASES)
def test_view_pages_as_the_outbox_does(tmp_path, query, offset, limit, names, total):
    """Each filter, order and page of the outbox's own cases comes out the same from the view
    (ordered on the keys, then only its rows read), and its counts by severity agree."""
    settings, made = stored(tmp_path)
    by_id = {n.id: name for name, n in made.items()}
    q = real(query, made)
    view = NoticeView(settings.outbox, cases.TZ)
    try:
        count, page = view.notice_page(q, offset, limit)
        assert ("".join(by_id[n.id] for n in page), count) == (names, total)
        with Outbox(settings.outbox, settings) as ob:
            assert [n.to_json() for n in page] == [n.to_json() for n in ob.notice_page(q, offset, limit)[1]]
            assert view.notice_counts(q) == ob.notice_counts(q)
    finally:
        view.close()


def test_a_page_whose_count_is_known_is_not_counted_again(tmp_path):
    """The list hands its tally's count to the page: the view and the outbox read the page's
    rows only (no COUNT query), and give that count back with the same rows."""
    settings, made = stored(tmp_path)
    q = NoticeQuery(township="板桥镇")
    view, ob = NoticeView(settings.outbox, cases.TZ), Outbox(settings.outbox, settings)
    try:
        for reader in (view, ob):
            count, rows = reader.notice_page(q, 0, 50)
            asked: list[str] = []
            reader.db.set_trace_callback(asked.append)
            assert reader.notice_page(q, 0, 50, total=count) == (count, rows)
            reader.db.set_trace_callback(None)
            assert asked and not [sql for sql in asked if "COUNT(" in sql.upper()], asked
    finally:
        view.close()
        ob.close()


@pytest.mark.parametrize("query", [NoticeQuery(), NoticeQuery(township="板桥镇"), NoticeQuery(dept="hh-fso"),
                                   NoticeQuery(severity="warning"), NoticeQuery(ids=())])
def test_tally_is_the_three_counts_in_one(tmp_path, query):
    """The count panel's one query gives, by severity, what three counts gave: all matching,
    those among the signed-for ids, those among the closed ids."""
    settings, made = stored(tmp_path)
    acked, closed = (made["a"].id, made["b"].id, made["e"].id, "unknown"), (made["b"].id, made["e"].id)
    q = real(query, made)
    view = NoticeView(settings.outbox, cases.TZ)
    try:
        tally = view.notice_tally(q, acked, closed)
        every = view.notice_counts(q)
        signed = view.notice_counts(dataclasses.replace(q, ids=acked if q.ids is None else
                                                        tuple(i for i in q.ids if i in acked)))
        done = view.notice_counts(dataclasses.replace(q, ids=closed if q.ids is None else
                                                      tuple(i for i in q.ids if i in closed)))
        assert tally == {s: (every[s], signed.get(s, 0), done.get(s, 0)) for s in every}
        assert sum(c[0] for c in tally.values()) == view.notice_page(q, 0, 50)[0]
    finally:
        view.close()


def test_a_runtime_reads_on_a_thread_of_its_own(tmp_path):
    """A runtime asked from another thread answers on connections of that thread (no error
    for using the loop's), sees what the loop's thread wrote, and closes them at its close."""
    import asyncio

    service = service_in(tmp_path)
    try:
        n = cases.make_notice(recipients=("hh-fso",))
        service.outbox.add(n, cases.NOW)
        answers: list[Any] = []

        def read() -> None:
            answers.append((service.notice_page(NoticeQuery(), 0, 10), service.notice(n.id), service.acks_after(0)))

        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
        (total, page), found, (_, acks) = answers[0]
        assert (total, [x.id for x in page], found.id, acks) == (1, [n.id], n.id, [])
        assert len(service._opened) == 1
    finally:
        asyncio.run(service.close())
    assert service._opened == []


@pytest.mark.parametrize("state", ["pending", "all", "open"])
def test_the_lists_page_and_counts_read_indexes_not_every_notice(tmp_path, state):
    """The list's default page (most urgent first) walks the ``notices_urgency`` index and
    stops after its rows, and the count panel reads ``notices_severity`` alone: neither sorts
    or reads the JSON of every stored notice (a month of a busy county: tens of thousands)."""
    settings, made = stored(tmp_path)
    view = NoticeView(settings.outbox, cases.TZ)
    try:
        exclude = () if state == "all" else (next(iter(made.values())).id,)
        q = dataclasses.replace(NoticeQuery(), order="severity", exclude=exclude)
        frm, args = view._matching(q)
        plans = {
            "page": f"SELECT n.rowid {frm} ORDER BY {ORDER['severity']} LIMIT 50",
            "counts": f"SELECT n.severity, COUNT(*) {frm} GROUP BY n.severity",
        }
        seen = {name: " | ".join(r[3] for r in view.db.execute("EXPLAIN QUERY PLAN " + sql, args))
                for name, sql in plans.items()}
    finally:
        view.close()
    assert "USING INDEX notices_urgency" in seen["page"] and "TEMP B-TREE" not in seen["page"], seen
    assert "COVERING INDEX notices_severity" in seen["counts"], seen


def test_once_the_notices_grow_a_departments_list_walks_the_orders_index(tmp_path):
    """The outbox samples SQLite's statistics when its notices double (from 256): a
    department's page then walks ``notices_urgency`` and stops after its rows instead of
    joining and sorting every notice of the department, also on a view opened before; the
    silenced ones are read from their own small index."""
    settings = cases.make_settings(tmp_path)
    with Outbox(settings.outbox, settings) as ob:
        view = NoticeView(settings.outbox, cases.TZ)   # open before the statistics are
        for i in range(300):
            ob.add(cases.make_notice(subject=f"S{i}", severity=("warning", "critical")[i % 2],
                                     recipients=("hh-fso", "hh-agri") if i % 3 else ("hh-fso",)), cases.NOW)
    try:
        q = dataclasses.replace(NoticeQuery(dept="hh-agri"), order="severity", exclude=("x",))
        frm, args = view._matching(q)
        page = " | ".join(r[3] for r in view.db.execute(
            f"EXPLAIN QUERY PLAN SELECT n.rowid {frm} ORDER BY {ORDER['severity']} LIMIT 50", args))
        silenced = " | ".join(r[3] for r in view.db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM notices WHERE silenced = 1"))
        assert len(view.notice_page(q, 0, 50)[1]) == 50
    finally:
        view.close()
    assert "notices_urgency" in page and "TEMP B-TREE" not in page, page
    assert "notices_silenced" in silenced, silenced
