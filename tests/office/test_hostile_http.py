"""Hostile input to ``POST /api/events`` against the real server (``serve`` on a loopback
port): never a 500, every answer as ``office/openapi.yaml`` documents it, each line of a
request with its own outcome, and the runtime unharmed — after every hostile request in the
table a valid event is still accepted."""
from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from shian.office.api import MAX_BODY
from shian.streams.service import Service

from api_support import client, running
from office_support import county, make_service  # noqa: F401  (a fixture)

NOW = datetime(2026, 4, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
FEED = "feed-hostile-77c1"
OFFICE = "dept-county-hostile-31a9"
BOUNDARY = "shianBoundary7"
HEADERS = "样品编号,任务类别,抽样日期,报告日期,乡镇,被抽样单位名称,食品大类,样品名称,检验项目,检验结果,计量单位,标准值,单项结论"
GBK = "红河".encode("gbk")  # b"\xba\xec\xba\xd3": not UTF-8


def config() -> dict[str, Any]:
    return county(service={"listen": "127.0.0.1:0", "data_dir": "data",
                           "feeds": {"lab": {"name": "县食品检验检测中心", "token": FEED}},
                           "tokens": {"county-fso": {"token": OFFICE}}})


def sample(sid: str, value: float = 0.5, **over: Any) -> dict[str, Any]:
    """A vegetable sample (over its limit by default: ``sample.unqualified``)."""
    ev = {"type": "sampling_result", "id": sid, "township": "红河镇", "sampled_at": "2026-04-08",
          "reported_at": "2026-04-09T10:00:00", "entity": f"农贸市场{sid}号摊", "category": "蔬菜",
          "food": "韭菜", "items": [{"item": "腐霉利", "value": value, "unit": "mg/kg", "limit": 0.2}]}
    ev.update(over)
    return ev


def line(ev: dict[str, Any]) -> bytes:
    return json.dumps(ev, ensure_ascii=False).encode()


def csv_row(sid: str, entity: str = "红河超市") -> str:
    return f"{sid},食品安全抽检,2026-04-07,2026-04-08,红河镇,{entity},蔬菜,芹菜,毒死蜱,0.5,mg/kg,0.05,不合格"


def part(disposition: str, content: bytes, headers: str = "") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; {disposition}\r\n{headers}\r\n").encode() \
        + content + b"\r\n"


def multipart(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def csv_file(sid: str) -> bytes:
    return (HEADERS + "\n" + csv_row(sid) + "\n").encode()

GZIPPED = gzip.compress(line(sample("GZ-1")), mtime=0)


@dataclass(frozen=True)
class Case:
    name: str
    ctype: str
    body: bytes
    status: int
    code: str | None = None                        # the error's code (a 4xx)
    lines: tuple[tuple[str, str], ...] = ()        # (status, a word of the reason) for each result, in order
    query: dict[str, str] | None = None
    headers: dict[str, str] | None = None


CASES = [
    Case("a JSON body nested 100,000 deep", "application/json", b"[" * 100_000 + b"]" * 100_000, 400, "invalid_json"),
    Case("a JSON Lines line nested 100,000 deep, between two good ones", "application/x-ndjson",
         line(sample("D-1")) + b"\n" + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"\n" + line(sample("D-2")),
         200, lines=(("accepted", ""), ("rejected", "嵌套过深"), ("accepted", ""))),
    Case("a lone surrogate escape in a JSON body", "application/json", line(sample("SU-1")).replace(b"SU-1", b"\\ud800"),
         200, lines=(("rejected", "代理项"),)),
    Case("a lone surrogate escape in a JSON Lines line", "application/x-ndjson",
         line(sample("SU-2", entity="\\ud800")).replace(b"\\\\ud800", b"\\ud800") + b"\n" + line(sample("SU-3")),
         200, lines=(("rejected", "代理项"), ("accepted", ""))),
    Case("a number of 5,000 digits in a JSON body", "application/json", b"[" + b"7" * 5000 + b"]", 400, "invalid_json"),
    Case("a JSON array of 200,001 events", "application/json", b"[" + b"1," * 200_000 + b"1]", 400, "invalid_json"),
    Case("JSON Lines of 200,000 lines", "application/x-ndjson", b"{}\n" * 200_000, 400, "invalid_json"),
    Case("GBK bytes in one JSON Lines line, a good line after it", "application/x-ndjson",
         line(sample("GB-1", entity="XX")).replace(b"XX", b"x" + GBK + b"y") + b"\n" + line(sample("GB-2")),
         200, lines=(("rejected", "第 1 行不是 UTF-8"), ("accepted", ""))),
    Case("GBK bytes in an unknown field of a JSON Lines line", "application/x-ndjson",
         line(sample("GB-3", note="XX")).replace(b"XX", GBK), 200, lines=(("rejected", "不是 UTF-8"),)),
    Case("a UTF-8 CSV body with one GBK row", "text/csv",
         (HEADERS + "\n" + csv_row("GC-1") + "\n").encode() + csv_row("GC-2", "XX").encode().replace(b"XX", GBK)
         + b"\n" + (csv_row("GC-3") + "\n").encode(),
         200, lines=(("accepted", ""), ("accepted", ""), ("rejected", "第 3 行含有不是 UTF-8 的字节")),
         query={"filename": "抽检.csv"}),
    Case("a CSV body with a 2 MiB cell", "text/csv", (HEADERS + "\n" + csv_row("HC-1") + "\n").encode()
         + b"HC-2," + b"x" * (2 << 20) + b"\n", 200, lines=(("accepted", ""), ("rejected", "超过")),
         query={"filename": "抽检.csv"}),
    Case("a CSV body named with control characters and 5,000 letters", "text/csv", csv_file("MP-1"), 200,
         lines=(("accepted", ""),), query={"filename": "抽\r\n检\x00" + "x" * 5000}),
    Case("multipart without a boundary", "multipart/form-data", b"--x\r\n\r\n", 400, "invalid_multipart"),
    Case("multipart whose boundary is not the body's", MULTIPART, b"--other\r\nstuff\r\n--other--\r\n",
         400, "invalid_multipart"),
    Case("a multipart file name with CR LF", MULTIPART, multipart(part('name="file"; filename="a\r\nb.csv"', csv_file("MP-2"))),
         400, "invalid_multipart"),
    Case("a multipart part name with NUL", MULTIPART, multipart(part('name="f\x00"; filename="a.csv"', csv_file("MP-3"))),
         400, "invalid_multipart"),
    Case("a multipart file name of 5,000 characters", MULTIPART,
         multipart(part(f'name="file"; filename="抽检{"x" * 5000}.csv"', csv_file("MP-4"))), 200, lines=(("accepted", ""),)),
    Case("a multipart file name of 5,000 Chinese characters (a header line over 8 KB)", MULTIPART,
         multipart(part(f'name="file"; filename="{"抽" * 5000}.csv"', csv_file("MP-5"))), 400, "invalid_multipart"),
    Case("a multipart part name of 5,000 characters", MULTIPART,
         multipart(part(f'name="{"f" * 5000}"; filename="抽检.csv"', csv_file("MP-6"))), 200, lines=(("accepted", ""),)),
    Case("a multipart file name holding NUL and CR (RFC 5987)", MULTIPART,
         multipart(part("name=\"file\"; filename*=UTF-8''%E6%8A%BD%00%0D%0A%E6%A3%80.csv", csv_file("MP-7"))), 200,
         lines=(("accepted", ""),)),
    Case("an unreadable JSON file, then a good CSV file", MULTIPART,
         multipart(part('name="a"; filename="坏.json"', b"{not json"), part('name="b"; filename="抽检.csv"', csv_file("MP-8"))),
         200, lines=(("rejected", "坏.json"), ("accepted", ""))),
    Case("a multipart file sent gzip-encoded (not inflated: its bytes are not UTF-8)", MULTIPART,
         multipart(part('name="file"; filename="x.jsonl"', GZIPPED, "Content-Encoding: gzip\r\n")), 200,
         lines=(("rejected", "UTF-8"),) * sum(1 for ln in GZIPPED.split(b"\n") if ln.strip())),
    Case("a nested multipart", MULTIPART,
         multipart(part('name="file"', b"--inner\r\n\r\nx\r\n--inner--", "Content-Type: multipart/mixed; boundary=inner\r\n")),
         400, "invalid_multipart"),
    Case("101 files in one upload", MULTIPART,
         multipart(*(part(f'name="f{i}"; filename="{i}.csv"', csv_file("MP-9")) for i in range(101))), 400, "too_many_files"),
    Case("a body that is not the gzip it says", "application/json", b"\x1f\x8bxxxxgarbage", 400, "bad_request",
         headers={"Content-Encoding": "gzip"}),
    Case("a gzip body that inflates past 50 MB", "application/x-ndjson", gzip.compress(b"\n" * (MAX_BODY + 1)), 413,
         "body_too_large", headers={"Content-Encoding": "gzip"}),
    Case("a year-0001 sample", "application/json",
         line(sample("Y-1", sampled_at="0001-01-01", reported_at="0001-01-01T00:00:00Z")), 200,
         lines=(("rejected", "min_event_date"),)),
]


def go(make_service: Callable[..., Service], scenario: Callable[[Service, str], Any]) -> Any:
    service = make_service(config(), now=lambda: NOW)

    async def main() -> Any:
        async with running(service, service.storage) as base:
            return await scenario(service, base)

    return asyncio.run(main())


def test_every_hostile_request_is_answered_as_documented_and_a_valid_event_is_accepted_after_it(make_service):
    """Each hostile request of the table gets its documented status (never 500) with a
    Chinese reason, or one outcome per line; right after it a valid event is accepted."""
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            for n, case in enumerate(CASES):
                st, body = await api.call("POST", "/api/events", token=FEED, data=case.body, params=case.query,
                                          headers={"Content-Type": case.ctype, **(case.headers or {})})
                assert st == case.status, (case.name, st, body)
                if case.code is not None:
                    assert body["code"] == case.code and any("\u4e00" <= ch <= "\u9fff" for ch in body["error"]), \
                        (case.name, body)
                got = [(r["status"], r.get("reason", "")) for r in body.get("results", [])]
                assert len(got) == len(case.lines), (case.name, got)
                for (status, reason), (want, word) in zip(got, case.lines):
                    assert status == want and word in reason, (case.name, got)
                st, after = await api.call("POST", "/api/events", token=FEED, json=sample(f"AFTER-{n}", value=0.1))
                assert (st, after["accepted"]) == (200, 1), (case.name, after)
            st, health = await api.call("GET", "/health")
            assert st == 200 and health["status"] == "ok"
        assert "\ufffd" not in json.dumps(service.store.events(), ensure_ascii=False), "nothing stored mangled"
        raws = [r.raw for r in service.store.rejects(1000)]
        assert any("\\xba\\xec\\xba\\xd3" in raw for raw in raws), "a GBK line's reject shows its bytes"
        assert not any("\ufffd" in raw for raw in raws)

    go(make_service, scenario)


def test_a_body_over_50_mb_is_refused_with_413_and_one_of_21_mb_is_read(make_service):
    """The body limit is 50 MB: a request declaring more gets a 413 naming the limit before its
    body is read; a body over the old 20 MB is read as usual (its one line rejected as too long)."""
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            host, port = base.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(f"POST /api/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {FEED}\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode())
            head, _, rest = (await reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
            length = next(int(h.split(b":")[1]) for h in rest.split(b"\r\n") if h.lower().startswith(b"content-length"))
            body = json.loads(await reader.readexactly(length))
            writer.close()
            assert head.split()[1] == b"413" and body["code"] == "body_too_large" and "上限 50 MB" in body["error"]
            api.spec.check("POST", "/api/events", 413, "application/json", body)
            big = b'{"pad": "' + b"x" * (21 << 20) + b'"}'
            st, body = await api.call("POST", "/api/events", token=FEED, data=big,
                                      headers={"Content-Type": "application/json"})
            assert st == 200 and body["results"][0]["status"] == "rejected" and "太长" in body["results"][0]["reason"]
        [kept] = service.store.rejects()
        assert len(kept.raw) < 2 << 20 and "只保留前" in kept.raw, "a huge line is kept cut"

    assert MAX_BODY == 50 * 1024 * 1024
    go(make_service, scenario)


def test_a_rule_that_raises_rejects_only_its_line_of_a_posted_batch(make_service, monkeypatch):
    """A failing handler (injected) on the second of three lines: that line is rejected with
    处理失败…, the first and third are accepted and notified, all in one 200 answer."""
    from shian.rules.families.samples import Samples

    original = Samples.handlers

    def handlers(self):
        real = original(self)
        on_sample = real["sampling_result"]

        def failing(ev, now):
            if ev.id == "BOOM":
                raise ZeroDivisionError("injected")
            on_sample(ev, now)

        return {**real, "sampling_result": failing}

    monkeypatch.setattr(Samples, "handlers", handlers)

    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            body = b"\n".join([line(sample("R-1")), line(sample("BOOM")), line(sample("R-3"))])
            st, out = await api.call("POST", "/api/events", token=FEED, data=body,
                                     headers={"Content-Type": "application/x-ndjson"})
            assert st == 200 and [r["status"] for r in out["results"]] == ["accepted", "rejected", "accepted"]
            assert "处理失败" in out["results"][1]["reason"] and "ZeroDivisionError" in out["results"][1]["reason"]
        notified = {eid for n in service.outbox.notices() for eid in n.event_ids}
        assert {"R-1", "R-3"} <= notified and "BOOM" not in notified
        assert [e["id"] for e in service.store.events()] == ["R-1", "R-3"]

    go(make_service, scenario)


def test_a_journal_write_failing_mid_request_refuses_that_line_only_and_the_engine_forgets_it(make_service):
    """The journal refuses one row (disk full, injected): that line is rejected saying so, the
    lines after it are accepted, and the refused event is not remembered — sent again, it is
    accepted, not a duplicate."""
    async def scenario(service: Service, base: str) -> None:
        append = service.store.append

        def full_for_j2(c, obj, ev, *args):
            if ev.id == "J-2":
                raise sqlite3.OperationalError("database or disk is full")
            return append(c, obj, ev, *args)

        service.store.append = full_for_j2
        async with client(base) as api:
            body = b"\n".join(line(sample(f"J-{i}")) for i in (1, 2, 3))
            st, out = await api.call("POST", "/api/events", token=FEED, data=body,
                                     headers={"Content-Type": "application/x-ndjson"})
            assert st == 200 and [r["status"] for r in out["results"]] == ["accepted", "rejected", "accepted"], out
            assert "事件日志暂时无法写入" in out["results"][1]["reason"]
            service.store.append = append
            st, again = await api.call("POST", "/api/events", token=FEED, json=sample("J-2"))
            assert again["results"] == [{"status": "accepted", "line": 1, "id": "J-2"}]
            st, health = await api.call("GET", "/health")
            assert st == 200, health
        assert sorted(e["id"] for e in service.store.events()) == ["J-1", "J-2", "J-3"]
        assert sum("J-2" in n.event_ids for n in service.outbox.notices()) == 1

    go(make_service, scenario)


def test_a_year_0001_event_is_rejected_and_the_valid_ones_after_it_are_notified(make_service):
    """End to end on the running service: the unqualified sample dated 0001-01-01 is rejected
    by validation, the valid samples posted after it are accepted, reach the outbox and are
    delivered (file channel), and /health stays ok."""
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            st, out = await api.call("POST", "/api/events", token=FEED,
                                     json=sample("Y-0", sampled_at="0001-01-01", reported_at="0001-01-01T00:00:00Z"))
            assert st == 200 and out["rejected"] == 1 and "min_event_date" in out["results"][0]["reason"]
            for i in (1, 2):
                st, out = await api.call("POST", "/api/events", token=FEED, json=sample(f"Y-{i}"))
                assert (st, out["accepted"]) == (200, 1)
            for _ in range(50):
                st, health = await api.call("GET", "/health")
                assert st == 200 and health["status"] == "ok", health
                if health["outbox"]["sent"] == 4:  # two notices, two recipient departments each
                    break
                await asyncio.sleep(0.1)
            assert health["outbox"]["sent"] == 4 and health["events"] == 2 and health["rejects"] == 1, health
        notified = sorted(eid for n in service.outbox.notices() for eid in n.event_ids)
        assert notified == ["Y-1", "Y-2"]

    go(make_service, scenario)


async def _health_until(api: Any, status: int, tries: int = 40) -> dict[str, Any]:
    for _ in range(tries):
        st, body = await api.call("GET", "/health")
        if st == status:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"/health stayed {st}: {body}")


def test_health_names_a_failing_journal_then_recovers(make_service):
    """A journal that cannot be written (the events db read-only): a valid event is refused
    saying so, /health answers 503 naming the journal; once writable, /health is ok again
    within seconds and the event is accepted."""
    async def scenario(service: Service, base: str) -> None:
        db = service.store.db
        service.store.db = sqlite3.connect(f"file:{service.store.path}?mode=ro", uri=True, isolation_level=None,
                                           check_same_thread=False)
        async with client(base) as api:
            st, out = await api.call("POST", "/api/events", token=FEED, json=sample("RO-1"))
            assert st == 200 and "事件日志暂时无法写入" in out["results"][0]["reason"], out
            st, health = await api.call("GET", "/health")
            assert st == 503 and set(health["failing"]) == {"journal"} and "事件日志" in health["error"], health
            service.store.db.close()
            service.store.db = db
            await _health_until(api, 200)
            st, out = await api.call("POST", "/api/events", token=FEED, json=sample("RO-1"))
            assert out["accepted"] == 1, out

    go(make_service, scenario)


def test_health_names_failing_delivery_and_an_unwritable_outbox_then_recovers(make_service):
    """The dispatcher's step raising marks delivery failing; an outbox that cannot take a
    notice marks the outbox failing with the notices waiting; both clear once they work, and
    the waiting notice reaches the outbox."""
    async def scenario(service: Service, base: str) -> None:
        step, add_all = service.dispatcher.step, service.outbox.add_all

        async def broken_step():
            raise sqlite3.OperationalError("disk I/O error")

        def full(*args, **kw):
            raise sqlite3.OperationalError("database or disk is full")

        async with client(base) as api:
            service.dispatcher.step = broken_step
            health = await _health_until(api, 503)
            assert set(health["failing"]) == {"delivery"} and "通知投递" in health["error"], health
            service.dispatcher.step = step
            await _health_until(api, 200)

            service.outbox.add_all = full
            st, out = await api.call("POST", "/api/events", token=FEED, json=sample("OB-1"))
            assert out["accepted"] == 1, "journalled: accepted, its notice waits for the outbox"
            st, health = await api.call("GET", "/health")
            assert st == 503 and set(health["failing"]) == {"outbox"} and "1 条通知等待写入" in health["failing"]["outbox"]
            service.outbox.add_all = add_all
            await _health_until(api, 200)
        assert [n.event_ids for n in service.outbox.notices()] == [("OB-1",)]

    go(make_service, scenario)


@pytest.mark.parametrize("ctype", ["application/x-ndjson", "text/csv"])
def test_a_whole_gb18030_body_is_still_read(make_service, ctype):
    """Whole-file GB18030 stays readable for CSV; JSON Lines in GBK is refused line by line, naming the encoding."""
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            text = (HEADERS + "\n" + csv_row("GBF-1") + "\n") if ctype == "text/csv" else line(sample("GBF-1")).decode()
            st, out = await api.call("POST", "/api/events", token=FEED, data=text.encode("gb18030"),
                                     params={"filename": "抽检.csv"}, headers={"Content-Type": ctype})
            want = "accepted" if ctype == "text/csv" else "rejected"
            assert st == 200 and out["results"][0]["status"] == want, out
            if want == "rejected":
                assert "UTF-8" in out["results"][0]["reason"] and "GBK" in out["results"][0]["reason"]

    go(make_service, scenario)


def test_a_lone_surrogate_in_a_silence_comment_is_refused_in_words(make_service):
    """A silence's comment holding "\\ud800" is a 400 (bad_field), not a failure of the outbox
    (was a 500); a silence with a proper comment is then added."""
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            silence = {"rule": "sample.unqualified", "start": "2026-04-10T09:00:00", "end": "2026-04-11T09:00:00"}
            body = json.dumps({**silence, "comment": "\ud800"}).encode()
            st, out = await api.call("POST", "/api/silences", token=OFFICE, data=body,
                                     headers={"Content-Type": "application/json"})
            assert (st, out["code"]) == (400, "bad_field") and "comment" in out["error"], out
            st, out = await api.call("POST", "/api/silences", token=OFFICE, json={**silence, "comment": "检修"})
            assert st == 201, out

    go(make_service, scenario)


@pytest.mark.parametrize("error, words", [
    (sqlite3.OperationalError("database or disk is full"), "磁盘空间已满"),
    (OSError(28, "No space left on device"), "磁盘空间已满"),
    (sqlite3.OperationalError("disk I/O error"), "磁盘读写出错"),
    (sqlite3.OperationalError("attempt to write a readonly database"), "数据库文件只读"),
    (sqlite3.OperationalError("database is locked"), "数据库被其他程序锁定"),
    (sqlite3.DatabaseError("database disk image is malformed"), "数据库文件已损坏"),
])
def test_a_storage_error_is_said_in_chinese_with_sqlites_own_words(error, words):
    """What /health, the log and a refused line say of a failing database: the Chinese meaning, then SQLite's text."""
    from shian.streams.base import storage_error

    text = storage_error(error)
    assert text.startswith(words) and str(error) in text


def test_an_unknown_storage_error_keeps_sqlites_words_alone():
    """An error with no known meaning is not given a wrong one."""
    from shian.streams.base import storage_error

    assert storage_error(sqlite3.OperationalError("something new")) == "OperationalError: something new"
