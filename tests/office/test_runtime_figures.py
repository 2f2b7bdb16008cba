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


def test_kafka_office_clock_is_the_workers_clock_as_the_events_topic_shows_it(make_service):
    """/health of the Kafka office shows the workers' clock: none before anything is followed,
    then the latest event-time stamp or tick (never back), then the wall clock once live
    events (no stamp) are seen — not a clock of its own that never moves."""
    import json

    from shian.rules.timeutil import parse_time
    from shian.streams.follower import KafkaFollower
    from shian.streams.kafka import CLOCK_HEADER, TICK_HEADER

    svc = make_service(now=lambda: kc.NOW)
    config = svc.config
    svc.store.close()
    svc.outbox.close()
    office = KafkaFollower(config, service_settings(config, env={}), delivery_settings(config, env={}),
                           broker="kafka://127.0.0.1:1", now=lambda: kc.NOW)
    event = {"type": "monthly_report", "id": "R-1", "township": "红河镇", "reporter": "新寨村",
             "period": "2026-03", "submitted_at": "2026-04-02T09:00:00+08:00"}
    try:
        assert office.clock() is None
        office._take_event(b"2026-04-01T00:00:00+08:00", {TICK_HEADER: b"start"})
        assert office.clock() == parse_time("2026-04-01T00:00:00+08:00", config.tz)
        office._take_event(json.dumps(event).encode(), {CLOCK_HEADER: b"2026-04-02T09:00:00+08:00"})
        assert office.clock() == parse_time("2026-04-02T09:00:00+08:00", config.tz)
        office._take_event(json.dumps(dict(event, id="R-0")).encode(), {CLOCK_HEADER: b"2026-04-01T12:00:00+08:00"})
        assert office.clock() == parse_time("2026-04-02T09:00:00+08:00", config.tz), "a late stamp never moves it back"
        office._take_event(json.dumps(dict(event, id="R-2")).encode(), {})
        assert office.clock() == kc.NOW, "live events: the workers run on the wall clock"
    finally:
        office.store.close()
        office.outbox.close()
