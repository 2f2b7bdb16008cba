"""What a rule family may touch: only the engine's ``Context`` (rules/families/base.py), which
the engine implements; and the one function that writes a notice's key (CONTRACT.md §4)."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from conftest import config_dict
from shian.rules.config import parse
from shian.rules.engine import Engine
from shian.rules.families import FAMILIES
from shian.rules.families.base import Context, Offices
from shian.rules.notice import notice_key

FAMILY_DIR = Path(inspect.getfile(Context)).parent
MEMBERS = sorted(name for name in vars(Context) if not name.startswith("_"))


@pytest.mark.parametrize("rule, township, tail, key", [
    ("sample.unqualified", "红河镇", ("XP-NJ-2026-0317",), "sample.unqualified|红河镇|XP-NJ-2026-0317"),
    ("report.overdue", "红河镇", ("新寨村", "2026-04"), "report.overdue|红河镇|新寨村|2026-04"),
    ("report.overdue", "红河镇", ("新寨村|2026-04",), "report.overdue|红河镇|新寨村|2026-04"),
    ("delivery.failed", "红河镇", ("0123456789abcdef", "hh-agri", "email"),
     "delivery.failed|红河镇|0123456789abcdef|hh-agri|email"),
])
def test_notice_key_is_rule_township_and_tail_joined_by_bars(rule, township, tail, key):
    """The §4 key table: rule|township|… (a tail given whole or in parts reads the same)."""
    assert notice_key(rule, township, *tail) == key


def _engine() -> Engine:
    return Engine(parse(config_dict(), path="<test>"), lambda *a: ("x",), lambda n: None)


def test_engine_is_a_context_with_the_same_signatures():
    """The engine offers every member of the Context, each called the way the protocol says."""
    engine = _engine()
    assert isinstance(engine, Context)
    for name in MEMBERS:
        want = getattr(Context, name)
        if isinstance(want, property):
            assert not callable(getattr(engine, name)), name
        else:
            assert inspect.signature(getattr(Engine, name)) == inspect.signature(want), name


def test_offices_and_reporters_come_from_the_config():
    """What the acknowledgement, banquet and report rules address, as the config names it."""
    engine = _engine()
    assert engine.offices("红河镇") == Offices("hh-fso", "county-fso", ("county-lead",))
    assert engine.reporters("红河镇") == tuple(parse(config_dict(), path="<t>").townships["红河镇"].reporters)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_family_reaches_the_engine_only_through_the_context(family):
    """No family reads ``ctx.config`` or any engine internal: every ``ctx.<x>`` is a protocol member."""
    tree = ast.parse(Path(inspect.getfile(family)).read_text(encoding="utf-8"))
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (
                (isinstance(node.value, ast.Name) and node.value.id == "ctx")
                or (isinstance(node.value, ast.Attribute) and node.value.attr == "ctx")):
            used.add(node.attr)
    assert used and used <= set(MEMBERS), sorted(used - set(MEMBERS))
