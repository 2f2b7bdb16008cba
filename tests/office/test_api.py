"""The HTTP API of ``shian run`` against the real server (``serve`` on a free loopback port),
every answer checked against ``office/openapi.yaml``."""
from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from openpyxl import Workbook

from shian.office.api import ServeRefused, make_app
from shian.streams.service import Service

from api_support import Spec, client, parse_prometheus, running
from office_support import county, make_service  # noqa: F401  (a fixture)

NOW = datetime(2026, 4, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
FEED = "feed-lab-6c1f0e9a"
TOKENS = {
    "county-fso": "dept-county-2b7d41",
    "hh-fso": "dept-hhfso-93aa10",
    "hh-agri": "dept-hhagri-5e0c72",
    "bq-fso": "dept-bqfso-1d88f3",
}
WRONG = "not-a-token-000000"
HEADERS = ["样品编号", "任务类别", "抽样日期", "报告日期", "乡镇", "被抽样单位名称", "食品大类", "样品名称",
           "检验项目", "检验结果", "计量单位", "标准值", "单项结论"]


def config(**service: Any) -> dict[str, Any]:
    section = {"listen": "127.0.0.1:0", "data_dir": "data",
               "feeds": {"lab": {"name": "县食品检验检测中心", "token": FEED}},
               "tokens": {dept: {"token": tok} for dept, tok in TOKENS.items()}}
    section.update(service)
    return county(service=section)


def sample(sid: str, *, township: str = "红河镇", category: str = "蔬菜", value: float = 0.5) -> dict[str, Any]:
    """A vegetable sample over its limit: ``sample.unqualified`` to the routed dept and the town office."""
    return {"type": "sampling_result", "id": sid, "township": township, "sampled_at": "2026-04-08",
            "reported_at": "2026-04-09T10:00:00", "entity": f"农贸市场{sid}号摊", "category": category,
            "food": "韭菜", "items": [{"item": "腐霉利", "value": value, "unit": "mg/kg", "limit": 0.2}]}


def go(make_service: Callable[..., Service], scenario: Callable[[Service, str], Any], cfg: dict | None = None) -> Any:
    """Runs ``scenario(service, base_url)`` against ``serve`` in a fresh event loop."""
    service = make_service(cfg or config(), now=lambda: NOW)

    async def main() -> Any:
        async with running(service, service.storage) as base:
            return await scenario(service, base)

    return asyncio.run(main())


async def notice_of(api: Any, event_id: str, token: str = TOKENS["county-fso"]) -> dict[str, Any]:
    status, body = await api.call("GET", "/api/notices", token=token)
    assert status == 200
    found = [n for n in body["notices"] if event_id in n["event_ids"]]
    assert found, f"no notice for {event_id}"
    return found[0]


def xlsx_bytes(rows: list[list[Any]], sheet: str = "抽检") -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# -- the spec and the router ---------------------------------------------------------------

def test_every_operation_in_the_spec_is_served_exercised_and_answers_as_documented(make_service):
    spec = Spec()
    svc_holder: dict[str, Service] = {}

    async def scenario(service: Service, base: str) -> set[tuple[str, str]]:
        svc_holder["s"] = service
        async with client(base, spec) as api:
            st, body = await api.call("POST", "/api/events", token=FEED, json=[sample("S-1"), {"type": "x"}])
            assert st == 200 and body["accepted"] == 1 and body["rejected"] == 1
            st, body = await api.call("GET", "/api/rejects", token=TOKENS["hh-fso"])
            assert st == 200 and body["total"] == 1 and body["rejects"][0]["raw"] == '{"type": "x"}'
            notice = await notice_of(api, "S-1")
            st, body = await api.call("POST", "/api/notices/{id}/ack", path={"id": notice["id"]},
                                      token=TOKENS["hh-agri"], json={"action": "签收"})
            assert st == 200 and body["status"] == "accepted"
            st, body = await api.call("POST", "/api/silences", token=TOKENS["county-fso"],
                                      json={"rule": "report.reminder", "end": "2026-04-20"})
            assert st == 201
            st, _ = await api.call("GET", "/api/silences", token=TOKENS["hh-fso"])
            assert st == 200
            st, _ = await api.call("DELETE", "/api/silences/{id}", path={"id": body["id"]}, token=TOKENS["county-fso"])
            assert st == 200
            st, text = await api.call("GET", "/api/openapi.yaml")
            assert st == 200 and text.startswith("openapi: 3.1.0")
            st, _ = await api.call("GET", "/health")
            assert st == 200
            st, _ = await api.call("GET", "/metrics")
            assert st == 200
            return api.seen

    seen = go(make_service, scenario)
    assert seen == spec.operations()

    app = make_app(svc_holder["s"], svc_holder["s"].storage)
    served = {(route.method, resource.canonical) for resource in app.router.resources() for route in resource
              if route.method != "HEAD" and (resource.canonical.startswith("/api")
                                             or resource.canonical in ("/health", "/metrics"))}
    assert served == spec.operations()


def test_the_served_spec_is_the_shipped_file(make_service):
    import yaml

    async def scenario(service: Service, base: str) -> None:
        async with aiohttp.ClientSession() as s, s.get(base + "/api/openapi.yaml") as r:
            assert r.status == 200 and r.content_type == "application/yaml"
            assert yaml.safe_load(await r.text()) == Spec().doc

    go(make_service, scenario)


def test_every_ref_in_the_spec_resolves_and_every_operation_is_described():
    spec = Spec()
    text = json.dumps(spec.doc)
    for ref in set(__import__("re").findall(r'"\$ref": "#/([^"]+)"', text)):
        node: Any = spec.doc
        for part in ref.split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    for path, item in spec.doc["paths"].items():
        for method, op in item.items():
            assert op.get("operationId") and op.get("summary") and op.get("responses"), (method, path)
            for name in __import__("re").findall(r"\{(\w+)\}", path):
                assert any(p["name"] == name and p["in"] == "path" for p in op.get("parameters", ())), (path, name)


# -- events in ----------------------------------------------------------------------------

def test_json_jsonl_csv_and_xlsx_are_accepted_and_their_notices_listed(make_service):
    csv_text = "\n".join([
        ",".join(HEADERS),
        "CSV-1,食品安全抽检,2026-04-07,2026/4/8,红河镇,红河超市,蔬菜,芹菜,毒死蜱,0.5,mg/kg,0.05,不合格",
        "CSV-1,,,,红河镇,,,,腐霉利,未检出,mg/kg,0.2,合格",
        "CSV-2,食品安全抽检,2026-04-07,2026年4月8日,红河镇,红河超市,水果,苹果,敌敌畏,未检出,mg/kg,0.1,合格",
        "CSV-3,食品安全抽检,2026-13-45,2026-04-08,红河镇,红河超市,蔬菜,菠菜,毒死蜱,0.01,mg/kg,0.05,合格",
    ]) + "\n"
    workbook = xlsx_bytes([HEADERS, ["XLSX-1", "食品安全抽检", "2026-04-07", datetime(2026, 4, 9, 9, 30), "板桥镇",
                                     "板桥镇肉联店", "畜禽肉", "猪肉", "克伦特罗", 0.8, "μg/kg", "不得检出", "不合格"]])

    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            st, body = await api.call("POST", "/api/events", token=FEED, json=sample("J-1"))
            assert (st, body["accepted"], body["results"]) == (200, 1, [{"status": "accepted", "line": 1, "id": "J-1"}])

            lines = json.dumps(sample("L-1"), ensure_ascii=False) + "\n\n" + json.dumps(sample("L-2", value=0.1)) + "\n"
            st, body = await api.call("POST", "/api/events", headers={"X-Shian-Token": FEED,
                                      "Content-Type": "application/x-ndjson"}, data=lines.encode())
            assert st == 200 and body["accepted"] == 2 and [r["line"] for r in body["results"]] == [1, 3]

            st, body = await api.call("POST", "/api/events", token=TOKENS["hh-fso"], params={"filename": "抽检结果.csv"},
                                      headers={"Content-Type": "text/csv"}, data=csv_text.encode("gb18030"))
            assert st == 200, body
            assert (body["accepted"], body["rejected"]) == (2, 1), body
            bad = [r for r in body["results"] if r["status"] == "rejected"]
            assert "2026-13-45" in bad[0]["reason"] or "日期" in bad[0]["reason"], bad

            form = aiohttp.FormData()
            form.add_field("file", workbook, filename="化验室抽检结果.xlsx",
                           content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
            st, body = await api.call("POST", "/api/events", token=FEED, data=form)
            assert (st, body["accepted"], body["rejected"]) == (200, 1, 0), body

            st, body = await api.call("POST", "/api/events", token=FEED, json=sample("J-1"))
            assert (st, body["duplicates"], body["results"][0]["status"]) == (200, 1, "duplicate")

            st, listed = await api.call("GET", "/api/notices", token=TOKENS["county-fso"])
            rules = {eid: n["rule"] for n in listed["notices"] for eid in n["event_ids"]}
            assert rules == {"J-1": "sample.unqualified", "L-1": "sample.unqualified",
                             "CSV-1": "sample.unqualified", "XLSX-1": "sample.banned_substance"}
            assert listed["total"] == 4, [(n["rule"], n["event_ids"]) for n in listed["notices"]]
            n = next(n for n in listed["notices"] if "J-1" in n["event_ids"])
            assert n["recipients"] == ["hh-agri", "hh-fso"] and n["state"] == "open"
            assert [s["state"] for s in n["recipient_states"]] == ["open", "open"]

            st, only = await api.call("GET", "/api/notices", token=TOKENS["bq-fso"],
                                      params={"township": "板桥镇", "severity": "critical"})
            assert [n["event_ids"] for n in only["notices"]] == [["XLSX-1"]]
            st, mine = await api.call("GET", "/api/notices", token=TOKENS["hh-agri"],
                                      params={"dept": "hh-agri", "rule": "sample.unqualified", "limit": "2"})
            assert mine["total"] == 3 and len(mine["notices"]) == 2
            st, none = await api.call("GET", "/api/notices", token=TOKENS["hh-agri"],
                                      params={"since": "2026-04-11", "until": "2026-05-01"})
            assert none == {"total": 0, "notices": []}
        assert service.store.counts()["by_type"] == {"sampling_result": 6}

    go(make_service, scenario)


def test_bad_lines_are_rejected_with_reasons_and_bad_requests_refused(make_service):
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            lines = "\n".join([
                json.dumps(sample("OK-1")),
                "这不是 JSON",
                json.dumps({"type": "weather", "id": "W-1", "township": "红河镇"}),
                json.dumps(sample("T-1", township="不存在镇")),
                json.dumps({**sample("M-1"), "entity": None}),
            ])
            st, body = await api.call("POST", "/api/events", token=FEED, data=lines.encode("utf-8"),
                                      headers={"Content-Type": "application/jsonl"})
            assert st == 200 and (body["accepted"], body["rejected"]) == (1, 4)
            for r in body["results"][1:]:
                assert r["status"] == "rejected" and r["reason"], r
            assert [r["line"] for r in body["results"]] == [1, 2, 3, 4, 5]
            assert "weather" in body["results"][2]["reason"]
            assert "不存在镇" in body["results"][3]["reason"]

            st, body = await api.call("POST", "/api/events", token=FEED, json=[sample("OK-2"), "text", 5, []])
            assert (st, body["accepted"], body["rejected"]) == (200, 1, 3)

            form = aiohttp.FormData()
            form.add_field("file", b"\xd0\xcf\x11\xe0 old excel", filename="抽检.xls")
            form.add_field("file", b"PK\x03\x04 not really a workbook", filename="抽检.xlsx")
            st, body = await api.call("POST", "/api/events", token=FEED, data=form)
            assert st == 200 and body["rejected"] == 2 and body["accepted"] == 0
            assert ".xls" in body["results"][0]["reason"] and "工作簿" in body["results"][1]["reason"]

            for data in (b"{not json", b"\xff\xfe\x00garbage", b'{"a": 1} {"b": 2}'):
                st, body = await api.call("POST", "/api/events", token=FEED, data=data,
                                          headers={"Content-Type": "application/json"})
                assert (st, body["code"]) == (400, "invalid_json"), body
            st, body = await api.call("POST", "/api/events", token=FEED, data=b"  ",
                                      headers={"Content-Type": "application/json"})
            assert (st, body["code"]) == (400, "empty_body")
            st, body = await api.call("POST", "/api/events", token=FEED, data=b"a=b",
                                      headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert (st, body["code"]) == (415, "unsupported_media_type")
            form = aiohttp.FormData()
            form.add_field("comment", "no file here")
            form.add_field("file", b"", filename="x.csv")  # forces multipart; an empty file is a reject
            st, body = await api.call("POST", "/api/events", token=FEED, data=form)
            assert st == 200 and body["rejected"] == 1

            st, body = await api.call("POST", "/api/events", json=sample("NT-1"))
            assert (st, body["code"]) == (401, "token_missing")
            st, body = await api.call("POST", "/api/events", token=WRONG, json=sample("NT-1"))
            assert (st, body["code"]) == (401, "token_invalid")
            st, body = await api.call("POST", "/api/events", headers={"X-Shian-Token": WRONG}, json=sample("NT-1"))
            assert st == 401
            st, body = await api.call("GET", "/api/notices")
            assert st == 401
            st, body = await api.call("GET", "/api/notices", token=FEED)
            assert (st, body["code"]) == (403, "department_required")
            for params in ({"state": "maybe"}, {"since": "昨天"}, {"limit": "0"}, {"township": "火星镇"}):
                st, body = await api.call("GET", "/api/notices", token=TOKENS["hh-fso"], params=params)
                assert (st, body["code"]) == (400, "bad_parameter"), params
        counts = service.store.counts()
        assert counts["events"] == 2 and counts["rejects"] == 4 + 3 + 2 + 1

    go(make_service, scenario)


def test_a_body_over_the_limit_is_refused_with_413(make_service):
    service = make_service(config(), now=lambda: NOW)

    async def main() -> None:
        runner = web.AppRunner(make_app(service, service.storage, max_body=2048))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        try:
            async with client(f"http://{host}:{port}") as api:
                big = [sample(f"B-{i}") for i in range(20)]
                st, body = await api.call("POST", "/api/events", token=FEED, json=big)
                assert (st, body["code"]) == (413, "body_too_large")
                assert "MB" in body["error"]
        finally:
            await runner.cleanup()

    asyncio.run(main())
    assert service.store.counts()["events"] == 0


# -- 签收 / 办结 ------------------------------------------------------------------------------

def test_a_recipient_signs_for_then_closes_a_notice_and_others_cannot(make_service):
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            await api.call("POST", "/api/events", token=FEED, json=sample("A-1"))
            notice = await notice_of(api, "A-1")
            nid = notice["id"]
            ack = {"id": nid}

            st, body = await api.call("POST", "/api/notices/{id}/ack", path=ack, token=TOKENS["bq-fso"],
                                      json={"action": "签收"})
            assert (st, body["code"]) == (403, "not_a_recipient") and "bq-fso" in body["error"]
            st, body = await api.call("POST", "/api/notices/{id}/ack", path=ack, token=TOKENS["county-fso"])
            assert (st, body["code"]) == (403, "not_a_recipient")
            st, body = await api.call("POST", "/api/notices/{id}/ack", path=ack, token=TOKENS["hh-agri"],
                                      json={"by": "hh-fso"})
            assert (st, body["code"]) == (403, "not_your_department")
            st, body = await api.call("POST", "/api/notices/{id}/ack", path=ack, token=FEED)
            assert (st, body["code"]) == (403, "department_required")
            st, body = await api.call("POST", "/api/notices/{id}/ack", path=ack, token=WRONG)
            assert st == 401
            assert service.store.events(types=["ack"]) == []
            assert (await notice_of(api, "A-1"))["state"] == "open"

            st, body = await api.call("POST", "/api/notices/{id}/ack", path={"id": "0123456789abcdef"},
                                      token=TOKENS["hh-agri"])
            assert (st, body["code"]) == (404, "notice_not_found")
            st, body = await api.call("POST", "/api/notices/{id}/ack", path=ack, token=TOKENS["hh-agri"],
                                      json={"action": "已阅"})
            assert (st, body["code"]) == (400, "bad_field")
            st, body = await api.call("POST", "/api/notices/{id}/ack", path=ack, token=TOKENS["hh-agri"],
                                      data=b"[1]", headers={"Content-Type": "application/json"})
            assert (st, body["code"]) == (400, "invalid_json")

            st, body = await api.call("POST", "/api/notices/{id}/ack", path=ack, token=TOKENS["hh-agri"])
            assert st == 200 and body["status"] == "accepted" and body["action"] == "签收"
            assert body["recipient_state"]["state"] == "acked"
            assert body["recipient_state"]["acked_at"] == "2026-04-10T10:00:00+08:00"
            st, again = await api.call("POST", "/api/notices/{id}/ack", path=ack, token=TOKENS["hh-agri"],
                                       json={"action": "签收"})
            assert (st, again["status"]) == (200, "duplicate")
            listed = await notice_of(api, "A-1")
            assert listed["state"] == "acked"
            assert {s["dept"]: s["state"] for s in listed["recipient_states"]} == {"hh-agri": "acked", "hh-fso": "open"}

            st, body = await api.call("POST", "/api/notices/{id}/ack", path=ack, token=TOKENS["hh-agri"],
                                      json={"action": "办结", "note": "已下架并立案，复检合格"})
            assert (st, body["status"], body["recipient_state"]["state"]) == (200, "accepted", "closed")
            st, closed = await api.call("GET", "/api/notices", token=TOKENS["hh-fso"], params={"state": "closed"})
            assert [n["id"] for n in closed["notices"]] == [nid]
            agri = next(s for s in closed["notices"][0]["recipient_states"] if s["dept"] == "hh-agri")
            assert agri["closed_at"] == "2026-04-10T10:00:00+08:00" and agri["note"] == "已下架并立案，复检合格"
            assert [(a["by"], a["action"]) for a in closed["notices"][0]["acks"]] == [("hh-agri", "签收"), ("hh-agri", "办结")]
            st, still_open = await api.call("GET", "/api/notices", token=TOKENS["hh-fso"], params={"state": "open"})
            assert nid not in [n["id"] for n in still_open["notices"]]
        assert [e["by"] for e in service.store.events(types=["ack"])] == ["hh-agri", "hh-agri"]

    go(make_service, scenario)


# -- silences -----------------------------------------------------------------------------

def test_silences_are_added_listed_and_ended_by_the_offices_that_may(make_service):
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            async def add(token: str, **body: Any) -> tuple[int, Any]:
                return await api.call("POST", "/api/silences", token=token, json=body)

            st, county_wide = await add(TOKENS["county-fso"], rule="report.reminder", end="2026-04-20",
                                        comment="月报系统升级")
            assert st == 201 and county_wide["by"] == "county-fso" and county_wide["active"]
            assert county_wide["township"] is None and county_wide["start"] == "2026-04-10T10:00:00+08:00"
            st, town = await add(TOKENS["hh-fso"], township="红河镇", start="2026-04-10T09:00", end="2026-04-11")
            assert st == 201 and town["by"] == "hh-fso"

            st, body = await add(TOKENS["hh-fso"], township="板桥镇", end="2026-04-11")
            assert (st, body["code"]) == (403, "not_your_township")
            st, body = await add(TOKENS["hh-fso"], rule="report.reminder", end="2026-04-11")
            assert (st, body["code"]) == (403, "not_your_township")
            st, body = await add(TOKENS["hh-agri"], township="红河镇", end="2026-04-11")
            assert (st, body["code"]) == (403, "silence_forbidden")
            st, body = await api.call("POST", "/api/silences", token=FEED, json={"township": "红河镇", "end": "2026-04-11"})
            assert (st, body["code"]) == (403, "department_required")
            st, body = await add(TOKENS["county-fso"], rule="no.such_rule", end="2026-04-01")
            assert (st, body["code"]) == (400, "invalid_silence") and len(body["problems"]) == 2
            st, body = await add(TOKENS["county-fso"], township="红河镇")
            assert (st, body["code"]) == (400, "bad_field")
            st, body = await add(TOKENS["county-fso"], township="红河镇", end="下周")
            assert (st, body["code"]) == (400, "bad_field")

            st, listed = await api.call("GET", "/api/silences", token=TOKENS["hh-agri"])
            assert [s["id"] for s in listed["silences"]] == [town["id"], county_wide["id"]]
            st, body = await api.call("GET", "/api/silences", token=FEED)
            assert st == 403

            # a notice of 红河镇 now is recorded but muted
            await api.call("POST", "/api/events", token=FEED, json=sample("Q-1"))
            assert (await notice_of(api, "Q-1"))["silenced"] is True

            st, body = await api.call("DELETE", "/api/silences/{id}", path={"id": town["id"]}, token=TOKENS["bq-fso"])
            assert (st, body["code"]) == (403, "not_your_township")
            st, body = await api.call("DELETE", "/api/silences/{id}", path={"id": county_wide["id"]},
                                      token=TOKENS["hh-fso"])
            assert (st, body["code"]) == (403, "not_your_township")
            st, ended = await api.call("DELETE", "/api/silences/{id}", path={"id": town["id"]}, token=TOKENS["hh-fso"])
            assert st == 200 and ended["active"] is False and ended["end"] == "2026-04-10T10:00:00+08:00"
            st, body = await api.call("DELETE", "/api/silences/{id}", path={"id": town["id"]}, token=TOKENS["hh-fso"])
            assert (st, body["code"]) == (404, "silence_not_found")
            st, body = await api.call("DELETE", "/api/silences/{id}", path={"id": 999}, token=TOKENS["county-fso"])
            assert st == 404
            st, listed = await api.call("GET", "/api/silences", token=TOKENS["county-fso"])
            assert [s["id"] for s in listed["silences"]] == [county_wide["id"]]
            st, body = await api.call("DELETE", "/api/silences/{id}", path={"id": county_wide["id"]}, token=WRONG)
            assert st == 401

            await api.call("POST", "/api/events", token=FEED, json=sample("Q-2"))
            assert (await notice_of(api, "Q-2"))["silenced"] is False

    go(make_service, scenario)


# -- health and metrics --------------------------------------------------------------------

def test_health_and_metrics_move_with_the_events(make_service):
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            st, health = await api.call("GET", "/health")
            assert st == 200 and health["status"] == "ok" and health["events"] == 0
            st, text = await api.call("GET", "/metrics")
            before = parse_prometheus(text)
            assert before[("shian_events_accepted_total", frozenset({("type", "sampling_result")}))] == 0
            assert before[("shian_deliveries", frozenset({("state", "pending")}))] == 0
            assert before[("shian_delivery_lag_seconds", frozenset())] == 0
            assert ("shian_clock_lag_seconds", frozenset()) in before

            await api.call("POST", "/api/events", token=FEED, json=[sample("M-1"), sample("M-1"), {"type": "?"}])
            async with api.session.get(base + "/metrics") as r:
                assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
                after = parse_prometheus(await r.text())
            assert after[("shian_events_accepted_total", frozenset({("type", "sampling_result")}))] == 1
            assert after[("shian_events_duplicate_total", frozenset())] == 1
            assert after[("shian_events_rejected_total", frozenset())] == 1
            assert after[("shian_notices_total", frozenset({("rule", "sample.unqualified")}))] == 1
            deliveries = sum(v for (name, _), v in after.items() if name == "shian_deliveries")
            assert deliveries == 2  # one email row per recipient department (hh-agri, hh-fso)
            assert after[("shian_delivery_failures_total", frozenset())] == 0
            st, health = await api.call("GET", "/health")
            assert health["events"] == 1 and health["rejects"] == 1 and sum(health["outbox"].values()) == 2
            assert health["clock"] == "2026-04-10T10:00:00+08:00"

    go(make_service, scenario)


# -- tokens stay out of the logs; open access -----------------------------------------------

def test_no_token_ever_reaches_the_log(make_service, caplog):
    caplog.set_level(logging.DEBUG)

    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            await api.call("POST", "/api/events", token=FEED, json=[sample("G-1"), {"bad": 1}])
            notice = await notice_of(api, "G-1", token=TOKENS["hh-fso"])
            await api.call("POST", "/api/notices/{id}/ack", path={"id": notice["id"]}, token=TOKENS["bq-fso"])
            await api.call("POST", "/api/notices/{id}/ack", path={"id": notice["id"]},
                           headers={"X-Shian-Token": TOKENS["hh-agri"]})
            await api.call("GET", "/api/notices", token=WRONG, params={"township": "红河镇"})
            await api.call("POST", "/api/silences", token=TOKENS["county-fso"], json={"township": "红河镇", "end": "2026-05-01"})

    go(make_service, scenario)
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert '"POST /api/events" 200' in text and "feed:lab" in text  # the access log was captured
    for secret in [FEED, WRONG, *TOKENS.values()]:
        assert secret not in text


def test_open_access_serves_loopback_only(make_service):
    """Without tokens the config refuses a non-loopback address; settings made another way
    (not from a config) are refused by the server all the same."""
    import dataclasses

    from shian.rules.config import ConfigError

    with pytest.raises(ConfigError, match="service.listen.*只能监听本机地址"):
        make_service(county(service={"listen": "0.0.0.0:0", "data_dir": "data"}), now=lambda: NOW)
    service = make_service(county(service={"listen": "127.0.0.1:0", "data_dir": "data"}), now=lambda: NOW)
    assert service.storage.open_access
    with pytest.raises(ServeRefused, match="只能监听本机地址"):
        asyncio.run(serve_on(service, dataclasses.replace(service.storage, host="0.0.0.0")))
    with pytest.raises(Exception):
        service.store.counts()  # serve closed the service on the way out


def test_a_port_in_use_is_refused_in_words(make_service):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = make_service(config(listen=f"127.0.0.1:{port}"), now=lambda: NOW)
        with pytest.raises(ServeRefused, match=f"无法监听 127.0.0.1:{port}"):
            asyncio.run(_serve_briefly(service))


async def _serve_briefly(service: Service) -> None:
    await serve_on(service, service.storage)


async def serve_on(service: Service, settings: Any) -> None:
    from shian.cli.run import serve

    stop = asyncio.Event()
    stop.set()
    await serve(service, settings, stop)


def test_open_access_on_loopback_needs_no_token(make_service):
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            st, body = await api.call("POST", "/api/events", json=sample("O-1"))
            assert (st, body["accepted"]) == (200, 1)
            notice = await notice_of(api, "O-1", token=None)  # type: ignore[arg-type]
            st, body = await api.call("POST", "/api/notices/{id}/ack", path={"id": notice["id"]}, json={})
            assert (st, body["code"]) == (400, "bad_field")
            st, body = await api.call("POST", "/api/notices/{id}/ack", path={"id": notice["id"]},
                                      json={"by": "hh-fso", "action": "办结"})
            assert (st, body["by"], body["recipient_state"]["state"]) == (200, "hh-fso", "closed")
            st, body = await api.call("POST", "/api/silences", json={"township": "板桥镇", "end": "2026-04-12"})
            assert st == 201 and body["by"] == ""

    go(make_service, scenario, county(service={"listen": "127.0.0.1:0", "data_dir": "data"}))


def test_shian_ack_service_signs_for_a_notice_through_the_running_service(make_service, monkeypatch, capsys):
    """``shian ack --service URL`` acts with the department token from the environment; the
    service refuses a department that did not receive the notice."""
    from shian.cli import main

    async def scenario(service: Service, base: str) -> tuple[int, int, dict]:
        service.accept_object(sample("CLI-1"), "test")
        notice = next(n for n in service.outbox.notices() if "CLI-1" in n.event_ids)
        outsider = next(d for d in TOKENS if d not in notice.recipients)
        recipient = next(d for d in notice.recipients if d in TOKENS)
        monkeypatch.setenv("SHIAN_TOKEN", TOKENS[outsider])
        refused = await asyncio.to_thread(main, ["ack", notice.id, "--by", outsider, "--config",
                                                 service.config.path, "--service", base])
        monkeypatch.setenv("SHIAN_TOKEN", TOKENS[recipient])
        done = await asyncio.to_thread(main, ["ack", notice.id, "--by", recipient, "--action", "办结",
                                              "--note", "已处置", "--config", service.config.path, "--service", base])
        return refused, done, {"acks": service.store.events(["ack"]), "recipient": recipient}

    refused, done, seen = go(make_service, scenario)
    said = capsys.readouterr()
    assert refused == 2 and "拒收：部门" in said.err and "（HTTP 403）" in said.err
    assert done == 0 and said.out.startswith("已办结：通知 ")
    assert [(a["by"], a["action"], a.get("note")) for a in seen["acks"]] == [(seen["recipient"], "办结", "已处置")]
