"""The runtimes answer the office's figures: the embedded service from its engine (also after
a restart from its snapshot), the Kafka office from a bare engine fed with its journal."""
from __future__ import annotations

import known_county as kc
from office_support import make_service  # noqa: F401  (a fixture)
from shian.notifiers.settings import parse as delivery_settings
from shian.office.settings import parse as service_settings

FIGURES = (("reports", kc.MONTHS), ("pass_rate", kc.MONTH), ("pass_rate", "2026"), ("pace", "2026"),
           ("health", kc.MONTH), ("campaigns", "2026"), ("campaigns", kc.MONTH), ("disposals", kc.MONTH))


def shown(runtime):
    return {(kind, str(period)): runtime.figures(kind, period) for kind, period in FIGURES}


def test_service_figures_survive_a_restart(make_service):
    """A restarted service (snapshot + journal after it) shows the same figures."""
    svc = make_service(now=lambda: kc.NOW)
    kc.fill(svc)
    before = shown(svc)
    assert before[("pass_rate", kc.MONTH)] and before[("disposals", kc.MONTH)]
    svc.snapshot()
    svc.store.close()
    svc.outbox.close()
    again = make_service(now=lambda: kc.NOW)
    assert shown(again) == before


def test_kafka_office_figures_come_from_its_journal(make_service):
    """The Kafka office runs no rules, yet shows the figures the service shows for the same
    journal (no broker needed: the journal is read at start)."""
    from shian.streams.follower import KafkaFollower

    svc = make_service(now=lambda: kc.NOW)
    kc.fill(svc)
    expected = shown(svc)
    config = svc.config
    svc.store.close()
    svc.outbox.close()
    office = KafkaFollower(config, service_settings(config, env={}), delivery_settings(config, env={}),
                         broker="kafka://127.0.0.1:1", now=lambda: kc.NOW)
    try:
        assert shown(office) == expected
    finally:
        office.store.close()
        office.outbox.close()
