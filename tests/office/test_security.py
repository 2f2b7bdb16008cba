"""Who may act, against the real server (``serve`` on a free loopback port): an ``ack`` over
HTTP only in the name of the token's own department (in every body format), the dashboard's
pages behind a login once tokens are configured, and failed authentications limited per
client address — never a feed that authenticates. The decision itself is a pure function
(``shian.office.access``), tested here as a table first."""
from __future__ import annotations

import asyncio
import json
import os
import re
import time
from datetime import datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from shian.notifiers.outbox import STATES
from shian.notifiers.silences import DELIVERY_RULES
from shian.office.access import Caller, FailureLimiter, address_key, may_post
from shian.office.settings import FailureLimit
from shian.rules.config import load
from shian.rules.events import EVENT_TYPES, Validator
from shian.rules.families import RULES
from shian.streams.service import Service

from api_support import client, parse_prometheus, running
from office_support import EXAMPLE, county, make_service  # noqa: F401  (a fixture)

NOW = datetime(2026, 4, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
A, B, COUNTY = "hh-fso", "hh-agri", "county-fso"     # A and B: both recipients of a 红河镇 vegetable notice
FEED = "feed-lab-sec-4b1e0c"
TOKENS = {A: "dept-a-sec-7f20aa", B: "dept-b-sec-19cd3e", COUNTY: "dept-county-sec-5a0b77"}
WRONG = "wrong-token-sec-000000"

# -- the decision, as a table ----------------------------------------------------------------

CALLERS = {
    "no tokens configured": Caller(open_access=True),
    "feed token": Caller(feed="lab"),
    "dept A token": Caller(dept=A),
    "dept B token": Caller(dept=B),
    "county office token": Caller(dept=COUNTY),
}
KINDS = ("ack by A", "ack by B", "sample")
#: caller → what it may post, per kind of line (True: accepted; False: rejected with a reason)
MAY = {
    "no tokens configured": (True, True, True),     # the person at the desk machine acts for anyone
    "feed token": (False, False, True),             # a feed posts events, never a 签收
    "dept A token": (True, False, True),
    "dept B token": (False, True, True),
    "county office token": (False, False, True),    # the county office signs only in its own name
}
TOKEN_OF = {"feed token": FEED, "dept A token": TOKENS[A], "dept B token": TOKENS[B],
            "county office token": TOKENS[COUNTY]}


def sample(sid: str, value: float = 0.5) -> dict[str, Any]:
    """A vegetable sample of 红河镇 (over its limit by default: a notice to hh-agri and hh-fso)."""
    return {"type": "sampling_result", "id": sid, "township": "红河镇", "sampled_at": "2026-04-08",
            "reported_at": "2026-04-09T10:00:00", "entity": f"农贸市场{sid}号摊", "category": "蔬菜",
            "food": "韭菜", "items": [{"item": "腐霉利", "value": value, "unit": "mg/kg", "limit": 0.2}]}


def ack(aid: str, notice_id: str, by: str, action: str = "签收") -> dict[str, Any]:
    return {"type": "ack", "id": aid, "township": "红河镇", "notice_id": notice_id, "by": by,
            "action": action, "acked_at": "2026-04-10T10:00:00"}


def lines_of(case: str, notice_id: str) -> list[dict[str, Any]]:
    """The three lines of a case, in :data:`KINDS` order: A signs for, B closes, a new sample."""
    return [ack(f"{case}-a", notice_id, A), ack(f"{case}-b", notice_id, B, "办结"), sample(f"{case}-s", value=0.1)]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("kind", KINDS)
def test_who_may_post_what(caller: str, kind: str) -> None:
    """The one decision: an ack only with the token of the department it names (any with no
    tokens configured); every caller may post other events; a refusal says why, in Chinese."""
    validator = Validator(load(EXAMPLE).known())
    event = validator.from_object(lines_of("T", "0123456789abcdef")[KINDS.index(kind)])
    why = may_post(CALLERS[caller], event)
    if MAY[caller][KINDS.index(kind)]:
        assert why is None
    else:
        assert why is not None and "签收部门" in why and "此行未接受" in why and event.by in why


# -- the decision over HTTP, in every body format ---------------------------------------------

def config(**over: Any) -> dict[str, Any]:
    section = {"listen": "127.0.0.1:0", "data_dir": "data",
               "feeds": {"lab": {"name": "县食品检验检测中心", "token": FEED}},
               "tokens": {dept: {"token": tok} for dept, tok in TOKENS.items()}}
    section.update(over)
    return county(service=section)


def go(make_service: Callable[..., Service], scenario: Callable[[Service, str], Any], cfg: dict | None = None) -> Any:
    service = make_service(cfg or config(), now=lambda: NOW)

    async def main() -> Any:
        async with running(service, service.storage) as base:
            return await scenario(service, base)

    return asyncio.run(main())


ACK_HEADERS = "签收编号,乡镇,通知编号,签收部门,动作,签收时间"
BOUNDARY = "shianSecurityBoundary"


def ack_csv(events: list[dict[str, Any]]) -> bytes:
    rows = [",".join([e["id"], e["township"], e["notice_id"], e["by"], e["action"], e["acked_at"]]) for e in events]
    return ("\n".join([ACK_HEADERS, *rows]) + "\n").encode()


def requests_of(fmt: str, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``POST /api/events`` requests (their keyword arguments) carrying ``lines`` in
    format ``fmt``. A CSV file holds one event type: the acks go as 签收回执.csv (a text/csv
    body, or a file of a multipart upload), the sample after them as JSON Lines."""
    jsonl = [json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in lines]
    if fmt == "json":
        return [{"json": lines}]
    if fmt == "ndjson":
        return [{"data": b"".join(jsonl), "headers": {"Content-Type": "application/x-ndjson"}}]
    if fmt == "csv":
        return [{"data": ack_csv(lines[:2]), "params": {"filename": "签收回执.csv"}, "headers": {"Content-Type": "text/csv"}},
                {"data": jsonl[2], "headers": {"Content-Type": "application/x-ndjson"}}]
    # written out by hand: a browser or curl -F sends the file name as UTF-8 (aiohttp's client
    # would percent-encode it)
    parts = [(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
              f"Content-Type: {ctype}\r\n\r\n").encode() + content + b"\r\n"
             for name, ctype, content in (("签收回执.csv", "text/csv", ack_csv(lines[:2])),
                                          ("抽检.jsonl", "application/x-ndjson", jsonl[2]))]
    return [{"data": b"".join(parts) + f"--{BOUNDARY}--\r\n".encode(),
             "headers": {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}}]


FORMATS = ("json", "ndjson", "csv", "multipart")


async def post_case(api: Any, token: str | None, fmt: str, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-line results of posting ``lines`` in format ``fmt``."""
    results: list[dict[str, Any]] = []
    for kw in requests_of(fmt, lines):
        st, body = await api.call("POST", "/api/events", token=token, **kw)
        assert st == 200, body
        results += body["results"]
    return results


async def fresh_notice(api: Any, sid: str) -> str:
    st, body = await api.call("POST", "/api/events", token=FEED, json=sample(sid))
    assert (st, body["accepted"]) == (200, 1), body
    st, listed = await api.call("GET", "/api/notices", token=TOKENS[COUNTY])
    [notice] = [n for n in listed["notices"] if sid in n["event_ids"]]
    assert sorted(notice["recipients"]) == sorted([A, B])
    return notice["id"]


async def notice_state(api: Any, notice_id: str) -> dict[str, str]:
    st, listed = await api.call("GET", "/api/notices", token=TOKENS[COUNTY])
    [notice] = [n for n in listed["notices"] if n["id"] == notice_id]
    return {s["dept"]: s["state"] for s in notice["recipient_states"]}


def expected_states(allowed: tuple[bool, ...]) -> dict[str, str]:
    return {A: "acked" if allowed[0] else "open", B: "closed" if allowed[1] else "open"}


def check_results(results: list[dict[str, Any]], allowed: tuple[bool, ...], where: str) -> None:
    assert len(results) == 3, (where, results)
    for kind, result, ok in zip(KINDS, results, allowed):
        if ok:
            assert result["status"] == "accepted", (where, kind, result)
        else:
            assert result["status"] == "rejected" and "不能" in result["reason"] and "此行未接受" in result["reason"], \
                (where, kind, result)


def test_an_ack_over_http_needs_the_token_of_the_department_it_names(make_service):
    """Every token × every body format (JSON, NDJSON, CSV, multipart): an ack line is taken only
    with the token of its ``by`` department; the refused lines are rejected with their reason,
    kept among the rejects, and change nothing; the other lines of the request still run."""
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            for n, (caller, token) in enumerate(TOKEN_OF.items()):
                for fmt in FORMATS:
                    case = f"c{n}-{fmt}"
                    notice_id = await fresh_notice(api, f"N-{case}")
                    results = await post_case(api, token, fmt, lines_of(case, notice_id))
                    check_results(results, MAY[caller], f"{caller} / {fmt}")
                    assert await notice_state(api, notice_id) == expected_states(MAY[caller]), (caller, fmt)
        refused = sum(not ok for ok in (a for c in TOKEN_OF for a in MAY[c])) * len(FORMATS)
        reasons = [r.reason for r in service.rejects(1000)]
        assert sum("此行未接受" in why for why in reasons) == refused

    go(make_service, scenario)


def test_with_no_tokens_configured_the_desk_machine_acks_for_any_department(make_service):
    """Open access (loopback only): the person at the machine acts for any recipient, in every format."""
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            for fmt in FORMATS:
                notice_id = await fresh_notice(api, f"O-{fmt}")
                results = await post_case(api, None, fmt, lines_of(f"open-{fmt}", notice_id))
                check_results(results, MAY["no tokens configured"], fmt)
                assert await notice_state(api, notice_id) == {A: "acked", B: "closed"}

    go(make_service, scenario, county(service={"listen": "127.0.0.1:0", "data_dir": "data"}))


def test_the_machines_own_inputs_ack_for_any_department_with_tokens_configured(make_service, tmp_path):
    """The drop folder and the service's own ``accept_object`` (backfill, ``shian ack`` files)
    carry no caller: their acks stay accepted while tokens guard the HTTP API."""
    service = make_service(config(drop_dir="投放"), now=lambda: NOW)
    assert service.accept_object(sample("M-1"), "test").status == "accepted"
    [notice] = service.notices()
    drop = tmp_path / "投放"
    drop.mkdir()
    (drop / "签收.jsonl").write_text(json.dumps(ack("M-b", notice.id, B, "办结"), ensure_ascii=False) + "\n",
                                    encoding="utf-8")
    old = time.time() - 5
    os.utime(drop / "签收.jsonl", (old, old))            # the folder takes files left alone for a second
    assert asyncio.run(service.scan_drop_folder()) == 1
    assert service.accept_object(ack("M-a", notice.id, A), "ack:hh-fso").status == "accepted"
    assert sorted(e["by"] for e in service.store.events(types=["ack"])) == sorted([A, B])


def test_the_kafka_follower_checks_the_same_policy_before_publishing(make_service, tmp_path):
    """``shian run --broker``: events posted to it go to Kafka; a refused ack is rejected with
    the policy's reason before any broker is asked (here none is connected)."""
    from functools import partial

    from shian.notifiers.settings import parse as delivery_settings
    from shian.office.settings import parse as service_settings
    from shian.rules.records import Record
    from shian.streams.follower import KafkaFollower

    make_service(config())  # writes the config
    cfg = load(tmp_path / "county.yaml")
    follower = KafkaFollower(cfg, service_settings(cfg, env={}), delivery_settings(cfg, env={}),
                             broker="kafka://127.0.0.1:9", now=lambda: NOW)
    try:
        lines = lines_of("K", "0123456789abcdef")
        records = [Record("test", i, "", obj) for i, obj in enumerate(lines, 1)]
        out = follower.accept_records(records, policy=partial(may_post, Caller(feed="lab")))
        assert [("此行未接受" in (o.reason or ""), "Kafka" in (o.reason or "")) for o in out] == \
            [(True, False), (True, False), (False, True)]
    finally:
        follower.store.close()
        follower.outbox.close()


# -- the dashboard behind a login ----------------------------------------------------------------

PAGES = ("/", "/?scope=all", "/reports", "/rates", "/pace", "/calendar", "/no-such-page")
OPEN = {"/login": 200, "/static/dashboard.css": 200, "/health": 200, "/metrics": 200, "/api/openapi.yaml": 200,
        "/api/notices": 401}


def jar_session() -> aiohttp.ClientSession:
    """A client keeping the session cookie of 127.0.0.1 (an IP address: ``unsafe`` jar)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def csrf_of(s: aiohttp.ClientSession, base: str) -> str:
    async with s.get(base + "/login") as r:
        m = re.search(r'name="csrf" value="([^"]+)"', await r.text())
    assert m, "the login page has no CSRF token"
    return m.group(1)


async def login(s: aiohttp.ClientSession, base: str, token: str) -> aiohttp.ClientResponse:
    form = {"csrf": await csrf_of(s, base), "token": token}
    async with s.post(base + "/login", data=form, allow_redirects=False) as r:
        await r.read()
        return r


def test_with_tokens_every_page_needs_a_login(make_service):
    """Tokens configured: each page sends an anonymous visitor to the login and shows no
    notice (no entity, no recipient); a form posted anonymously is refused, a feed's token
    does not log in; the login page, static files, /health, /metrics and the spec stay open,
    the API keeps its own 401."""
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            await fresh_notice(api, "P-1")
        async with jar_session() as s:
            for path in PAGES:
                async with s.get(base + path, allow_redirects=False) as r:
                    text = await r.text()
                    assert (r.status, r.headers.get("Location")) == (303, "/login"), path
                    assert "农贸市场" not in text and "红河镇食安办" not in text, path
            for path, status in OPEN.items():
                async with s.get(base + path, allow_redirects=False) as r:
                    assert r.status == status, path
            async with s.post(base + "/board/ack", data={"csrf": await csrf_of(s, base), "notice_id": "x"},
                              allow_redirects=False) as r:
                assert r.status == 403 and "请先登录" in await r.text()
            assert (await login(s, base, FEED)).status == 403     # a feed posts events, it does not log in
            assert (await login(s, base, TOKENS[A])).status == 303
            for path in PAGES[:-1]:
                async with s.get(base + path, allow_redirects=False) as r:
                    assert r.status == 200, path
            async with s.get(base + "/?scope=all") as r:
                assert "农贸市场P-1号摊" in await r.text()

    go(make_service, scenario)


def test_without_tokens_the_pages_stay_open_on_loopback(make_service):
    """No token configured (a desk machine, loopback only): the pages need no login, as before."""
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            await fresh_notice(api, "P-2")
        async with jar_session() as s:
            for path in PAGES[:-1]:
                async with s.get(base + path, allow_redirects=False) as r:
                    assert r.status == 200, path
            async with s.get(base + "/") as r:
                assert "农贸市场P-2号摊" in await r.text()

    go(make_service, scenario, county(service={"listen": "127.0.0.1:0", "data_dir": "data"}))


def test_metrics_carry_no_names_of_places_people_or_departments(make_service):
    """/metrics is open: its labels are event types, rule ids and delivery states only."""
    async def scenario(service: Service, base: str) -> str:
        async with client(base) as api:
            await fresh_notice(api, "MX-1")
            st, text = await api.call("GET", "/metrics")
            assert st == 200
            return text

    text = go(make_service, scenario)
    known = {"type": set(EVENT_TYPES), "rule": {*RULES, *DELIVERY_RULES}, "state": set(STATES)}
    pairs = {pair for (_, labels) in parse_prometheus(text) for pair in labels}
    assert pairs and all(value in known[name] for name, value in pairs), pairs
    for secret in ("红河镇", "农贸市场", A, B, COUNTY, *TOKENS.values(), FEED):
        assert secret not in text


# -- failed authentications, limited per address ---------------------------------------------

LIMITS = {"burst": 5, "per_minute": 60, "addresses": 100}


@pytest.mark.parametrize("headers", [
    {"Authorization": f"Bearer {WRONG}"}, {"X-Shian-Token": WRONG}, {},
], ids=["wrong bearer", "wrong X-Shian-Token", "no token"])
def test_failed_tokens_run_out_then_429_with_retry_after(make_service, headers):
    """After ``burst`` missing or wrong tokens an address is answered 429 with Retry-After and
    a Chinese message — before its token is looked at, so the right one waits too."""
    async def scenario(service: Service, base: str) -> None:
        async with client(base) as api:
            for _ in range(LIMITS["burst"]):
                st, body = await api.call("GET", "/api/notices", headers=headers)
                assert st == 401, body
            st, body = await api.call("POST", "/api/events", headers=headers, json=sample("R-1"))
            assert (st, body["code"]) == (429, "too_many_failures") and "秒后再试" in body["error"]
            assert 1 <= body["retry_after"] <= 60
            async with api.session.get(base + "/api/notices", headers={"Authorization": f"Bearer {TOKENS[A]}"}) as r:
                assert r.status == 429 and r.headers["Retry-After"] == str(body["retry_after"])
            st, _ = await api.call("GET", "/health")
            assert st == 200                                   # no token needed: not limited

    go(make_service, scenario, config(auth_failures=LIMITS))


def test_300_wrong_tokens_in_a_burst_get_20_answers_then_429(make_service):
    """The defaults (20 failures, then 10 a minute): a guessing client gets 20 answers out of 300."""
    async def scenario(service: Service, base: str) -> tuple[dict[int, int], float]:
        seen: dict[int, int] = {}
        async with aiohttp.ClientSession() as s:
            began = time.monotonic()
            for i in range(300):
                async with s.get(base + "/api/notices", headers={"Authorization": f"Bearer {WRONG}{i}"}) as r:
                    seen[r.status] = seen.get(r.status, 0) + 1
            return seen, time.monotonic() - began

    seen, took = go(make_service, scenario)
    assert seen == {401: 20, 429: 280}
    print(f"300 wrong tokens in {took:.2f} s ({300 / took:.0f}/s): {seen}")


def test_failed_logins_from_fresh_sessions_run_out_too(make_service):
    """Failed logins count per address, not per session (a fresh session per guess gains
    nothing), and share the count with failed API tokens; out of failures, even the right token
    gets 429 with Retry-After."""
    async def scenario(service: Service, base: str) -> None:
        async with aiohttp.ClientSession() as s:
            async with s.get(base + "/api/notices", headers={"Authorization": f"Bearer {WRONG}"}) as r:
                assert r.status == 401
        for _ in range(LIMITS["burst"] - 1):
            async with jar_session() as s:
                r = await login(s, base, WRONG)
                assert r.status == 403
        async with jar_session() as s:
            form = {"csrf": await csrf_of(s, base), "token": TOKENS[A]}
            async with s.post(base + "/login", data=form, allow_redirects=False) as r:
                assert r.status == 429 and "登录失败次数过多" in await r.text()
                assert 1 <= int(r.headers["Retry-After"]) <= 60

    go(make_service, scenario, config(auth_failures=LIMITS))


def test_a_lab_posting_200_events_a_second_with_its_token_is_never_throttled(make_service):
    """Valid tokens never count: 200 single-event posts at once from one address under the
    strictest limit (1 failure) are all accepted; the same address is limited on its first
    wrong tokens all the same."""
    async def scenario(service: Service, base: str) -> tuple[list[int], float, list[int]]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=20)) as s:
            headers = {"Authorization": f"Bearer {FEED}"}

            async def post(i: int) -> int:
                async with s.post(base + "/api/events", json=sample(f"F-{i}", value=0.1), headers=headers) as r:
                    body = await r.json()
                    return r.status if body.get("accepted") == 1 else -r.status

            began = time.monotonic()
            statuses = await asyncio.gather(*(post(i) for i in range(200)))
            took = time.monotonic() - began
            after = []
            for token in (WRONG, WRONG, FEED):
                async with s.get(base + "/api/notices", headers={"Authorization": f"Bearer {token}"}) as r:
                    after.append(r.status)
            return list(statuses), took, after

    statuses, took, after = go(make_service, scenario, config(auth_failures={"burst": 1, "per_minute": 1}))
    assert statuses == [200] * 200
    assert took < 10, f"200 posts took {took:.1f} s"
    assert after == [401, 429, 429]
    print(f"200 posts with a valid token in {took:.2f} s ({200 / took:.0f}/s), none throttled")


# -- the limiter itself ------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize("failures, wait_s, expect", [
    (0, 0, 0),          # nothing failed: free
    (2, 0, 0),          # within the burst
    (3, 0, 20),         # burst of 3 used up: one failure grows back in 60/3 = 20 s
    (3, 10, 10),        # half way there
    (3, 20, 0),         # grown back
    (5, 0, 20),         # failures beyond the burst (none are made while refused) cost nothing more
    (3, 3600, 0),       # long after: the whole burst back, never more
])
def test_the_bucket_refills_per_minute_and_says_how_long_to_wait(failures, wait_s, expect):
    """A token bucket of ``burst`` failures refilling ``per_minute``; Retry-After in whole seconds."""
    clock = Clock()
    limiter = FailureLimiter(FailureLimit(burst=3, per_minute=3, addresses=100), clock=clock)
    for _ in range(failures):
        limiter.failed("192.0.2.1")
    clock.t += wait_s
    assert limiter.retry_after("192.0.2.1") == expect
    assert limiter.retry_after("192.0.2.2") == 0       # another address is not affected


def test_the_limiter_remembers_a_bounded_number_of_addresses():
    """Memory stays bounded: beyond ``addresses``, the least recently failing are forgotten."""
    limiter = FailureLimiter(FailureLimit(burst=1, per_minute=1, addresses=100), clock=Clock())
    for i in range(10_000):
        limiter.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(limiter) == 100
    assert limiter.retry_after("10.0.39.15") > 0        # the last one is remembered
    assert limiter.retry_after("10.0.0.0") == 0         # the first one is forgotten


@pytest.mark.parametrize("remote, key", [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),     # one IPv6 host holds its whole /64
    ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),                 # IPv4 as IPv6: the same client
    ("fe80::1%eth0", "fe80::/64"),
    (None, "-"),
])
def test_addresses_are_counted_per_client(remote, key):
    """What one client is: an IPv4 address, or an IPv6 /64."""
    assert address_key(remote) == key
