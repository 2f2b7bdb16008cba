"""Every page and message names a notice's rule alike: the dashboard, the e-mail, the robot
card, the ledger and the report show the same kind (预警通知 / 催报通知 / 督办通知 / 工作提示)
and the same name for a notice of each rule, the families' and ``delivery.failed`` — both
taken from the rule's spec, never worked out by a page of its own."""
from __future__ import annotations

import asyncio
import re
from datetime import datetime
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from conftest import TZ, config_dict
from notice_month import RULE_OVERRIDES, april, first_of_each_rule
from shian.notifiers.render import NOTIFIER_RULES, Renderer, spec_of
from shian.notifiers.settings import parse as delivery_settings
from shian.office.api import make_app
from shian.notifiers.routing import recipients
from shian.office.ledger import build_tables as ledger_tables
from shian.rules.engine import Engine
from shian.office.report import build_tables as report_tables
from shian.office.settings import parse as service_settings
from shian.rules.config import load
from shian.rules.families import RULES
from shian.rules.notice import Notice
from shian.streams.service import Service

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=TZ)
EVERY_RULE = sorted({**RULES, **NOTIFIER_RULES})


@pytest.fixture(scope="module")
def notices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Notice]:
    return first_of_each_rule(april(tmp_path_factory.mktemp("april"))[1])


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, notices: dict[str, Notice]) -> Iterator[Service]:
    """A service on the April config (open access, nothing delivered) holding one notice of each rule."""
    folder: Path = tmp_path_factory.mktemp("office")
    data = config_dict(RULE_OVERRIDES)
    data["notifiers"] = {"outbox": "outbox.sqlite", "quiet_hours": False, "group_wait_seconds": 0, "digest": None}
    data["service"] = {"listen": "127.0.0.1:0", "data_dir": "data"}
    (folder / "county.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load(folder / "county.yaml")
    svc = Service(config, service_settings(config, env={}), delivery_settings(config, env={}), now=lambda: NOW)
    for n in notices.values():
        svc.outbox.add(n, NOW, deliver=False)
    yield svc
    svc.store.close()
    svc.outbox.close()


def dashboard_names(service: Service) -> dict[str, tuple[str, str]]:
    """Notice id → (kind, name) as the dashboard's main page shows it."""
    async def page() -> str:
        async with TestClient(TestServer(make_app(service, service.storage))) as client:
            reply = await client.get("/?scope=all")
            assert reply.status == 200
            return await reply.text()
    html = asyncio.run(page())
    rows = re.findall(r'<tr id="notice-(\w+)".*?<span class="kind">【(.+?)】</span><span class="rule">(.+?)</span>',
                      html, re.S)
    return {nid: (kind, name) for nid, kind, name in rows}


def message_names(renderer: Renderer, n: Notice) -> tuple[tuple[str, str], tuple[str, str]]:
    """(kind, name) in the e-mail's subject and in the robot card's heading."""
    m = renderer.notice(n, n.recipients[0])
    subject = re.fullmatch(r"(?:【紧急】)?【(.+?)】\S+ ([^：]+?)(?:：.*)?（通知编号 \w+）", m.subject)
    card = re.match(r"### (?:【紧急】)?(.+?)：(.+)", m.markdown)
    assert subject and card, (m.subject, m.markdown[:80])
    return (subject[1], subject[2]), (card[1], card[2])


def test_every_page_and_message_names_each_rule_with_the_kind_and_name_of_its_spec(
        service: Service, notices: dict[str, Notice]) -> None:
    assert sorted(notices) == EVERY_RULE
    config = service.config
    renderer = Renderer(service.delivery)
    board = dashboard_names(service)
    ledger = {r["编号"]: (r["类别"], r["规则"]) for r in ledger_tables(config, list(notices.values()), [])[0].frame.to_dict("records")}
    report: dict[str, tuple[str, str]] = {}
    for month in sorted({f"{n.at:%Y-%m}" for n in notices.values()}):
        empty = Engine(config, recipients, lambda n: None)  # the figures do not matter here, the names do
        counts = next(t for t in report_tables(config, empty, list(notices.values()), month, NOW) if t.name == "通知汇总")
        report.update({r["规则"]: (r["类别"], r["规则名称"]) for r in counts.frame.to_dict("records")})
    for rule in EVERY_RULE:
        n, spec = notices[rule], spec_of(rule)
        expected = (spec.document, spec.summary)
        email, card = message_names(renderer, n)
        assert {"dashboard": board[n.id], "e-mail": email, "robot card": card, "ledger": ledger[n.id],
                "report": report[rule]} == dict.fromkeys(("dashboard", "e-mail", "robot card", "ledger", "report"),
                                                         expected), rule
