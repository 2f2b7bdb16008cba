"""Shared test helpers: a small two-township config and an in-process replay.

Everything here follows the shared specification's CONTRACT.md; tests assert the contract, not the
implementation.
"""
from __future__ import annotations

import copy
import importlib.util
import sys
import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, settings

from shian.rules.config import parse
from shian.rules.timeutil import parse_time
from shian.streams.replay import Replay

TZ = ZoneInfo("Asia/Shanghai")

# Hypothesis profiles (tests/test_properties.py), chosen with HYPOTHESIS_PROFILE: "ci" (the
# default) runs the same examples on every run and keeps no example database; "dev" draws new
# ones each run and remembers failures in .hypothesis/; "fuzz" draws 20 times as many, for long
# runs. Each test's example count is written for max_examples=100 and scales with it. Generation
# is slow on a busy machine, which is no failure of the code under test.
_SLOW_OK = [HealthCheck.too_slow]
settings.register_profile("ci", derandomize=True, database=None, max_examples=100, deadline=None, print_blob=True,
                          suppress_health_check=_SLOW_OK)
settings.register_profile("dev", max_examples=100, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("fuzz", max_examples=2000, deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BASE_CONFIG: dict[str, Any] = {
    "timezone": "Asia/Shanghai",
    "county": {"name": "西平县", "office": "county-fso", "escalation": ["county-lead"]},
    "departments": {
        "county-fso": {"name": "县食安办"},
        "county-lead": {"name": "县食安办分管领导"},
        "hh-fso": {"name": "红河镇食安办"},
        "hh-agri": {"name": "红河镇农技中心"},
        "hh-vet": {"name": "红河镇畜牧站"},
        "hh-edu": {"name": "红河镇中心学校"},
        "bq-fso": {"name": "板桥镇食安办"},
    },
    "townships": {
        "红河镇": {
            "population": 30000,
            "office": "hh-fso",
            "reporters": ["红河村", "新寨村", "镇卫生院"],
            "routing": {"蔬菜": "hh-agri", "畜禽肉": "hh-vet", "学校食堂": "hh-edu"},
        },
        "板桥镇": {"office": "bq-fso", "reporters": ["板桥村"]},
    },
    "rules": {},
}


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) replaces."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def config_dict(rules: dict[str, Any] | None = None, config_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    data = deep_merge(BASE_CONFIG, config_overrides or {})
    if rules:
        data["rules"] = deep_merge(data.get("rules") or {}, rules)
    return data


def t(text: str) -> datetime:
    """A contract time string as an aware datetime (local Asia/Shanghai when no offset)."""
    return parse_time(text, TZ)


def nid(key: str) -> str:
    """The contract's notice id: first 16 hex digits of SHA-256 of the UTF-8 key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def write_events(path: Path, events: list[dict[str, Any] | str]) -> Path:
    lines = [e if isinstance(e, str) else json.dumps(e, ensure_ascii=False) for e in events]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def of(notices: list[dict[str, Any]], rule: str, township: str | None = None) -> list[dict[str, Any]]:
    """The notices of one rule (optionally one township), in output order."""
    return [n for n in notices if n["rule"] == rule and (township is None or n["township"] == township)]


def check(n: dict[str, Any], **expected: Any) -> None:
    """Compare the named §4 fields; ``recipients`` as a set (and without repeats), ``facts``
    as a subset; the id is always checked against the key."""
    for name, want in expected.items():
        if name == "recipients":
            assert len(n["recipients"]) == len(set(n["recipients"])), n
            assert set(n["recipients"]) == set(want), n
        elif name == "facts":
            for k, v in want.items():
                assert k in n["facts"], (k, n)
                if isinstance(v, float):
                    assert n["facts"][k] == pytest.approx(v, abs=5e-5), (k, n)
                else:
                    assert n["facts"][k] == v, (k, n)
        else:
            assert n[name] == want, (name, n)
    assert n["id"] == nid(n["key"]), n


@pytest.fixture
def replay(tmp_path: Path) -> Callable[..., tuple[list[dict[str, Any]], list[dict[str, Any]], Any]]:
    counter = iter(range(1_000_000))

    def run(
        events: list[dict[str, Any] | str],
        *,
        rules: dict[str, Any] | None = None,
        until: datetime | str | None = None,
        config_overrides: dict[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
        config = parse(config_dict(rules, config_overrides), path="<test>")
        path = write_events(tmp_path / f"events-{next(counter)}.jsonl", events)
        if isinstance(until, str):
            until = t(until)
        notices: list[dict[str, Any]] = []
        rejects: list[dict[str, Any]] = []
        summary = Replay(config, lambda n: notices.append(n.to_json()), lambda r: rejects.append(r.to_json()), until=until).run([str(path)])
        return notices, rejects, summary

    return run


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., str]:
    """Writes the base config (with overrides) as a YAML file; returns its path."""

    def write(rules: dict[str, Any] | None = None, config_overrides: dict[str, Any] | None = None,
              name: str = "county.yaml") -> str:
        p = tmp_path / name
        p.write_text(yaml.safe_dump(config_dict(rules, config_overrides), allow_unicode=True), encoding="utf-8")
        return str(p)

    return write


KAFKA_BROKER_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "kafka_broker.py"


def load_kafka_broker():
    """scripts/ is not a package: import the broker script by path."""
    if "kafka_broker" not in sys.modules:
        spec = importlib.util.spec_from_file_location("kafka_broker", KAFKA_BROKER_SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["kafka_broker"] = module
        spec.loader.exec_module(module)
    return sys.modules["kafka_broker"]


@pytest.fixture(scope="session")
def kafka_broker():
    """A real broker (scripts/kafka_broker.py) per test session and xdist worker, on free
    ports, removed afterwards. It needs java (and mvn once, for the jars): never skipped."""
    with load_kafka_broker().Broker() as broker:
        yield broker
