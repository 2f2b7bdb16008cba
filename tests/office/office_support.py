"""Fixtures for the office side: a Service on a temporary data folder, built from a config
written to disk (paths in the config are relative to it).

Not a conftest.py: tests/conftest.py is imported as ``conftest`` by the other tests, and a
second conftest module would shadow it. Test modules import what they use from here
(``from office_support import county, make_service``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from shian.notifiers.settings import parse as delivery_settings
from shian.office.settings import parse as service_settings
from shian.rules.config import load
from shian.streams.service import Service

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "county.yaml"


def county(**over: Any) -> dict[str, Any]:
    """The example county, delivering to a file outbox only, with the given top-level keys
    replaced (``service``, ``notifiers``, ``rules`` …)."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["notifiers"] = {"outbox": "outbox.sqlite", "file": {"dir": "发件箱"}, "quiet_hours": False,
                         "group_wait_seconds": 0, "digest": None}
    data["service"] = {"listen": "127.0.0.1:0", "data_dir": "data"}
    data.update(over)
    return data


def service_in(folder: Path, config_dict: dict[str, Any] | None = None, *, now: Any = None,
               env: dict[str, str] | None = None) -> Service:
    """A Service on ``config_dict`` (default: :func:`county`) written to ``folder``."""
    path = folder / "county.yaml"
    path.write_text(yaml.safe_dump(config_dict or county(), allow_unicode=True), encoding="utf-8")
    config = load(path)
    return Service(config, service_settings(config, env=env or {}), delivery_settings(config, env=env or {}), now=now)


@pytest.fixture
def make_service(tmp_path: Path) -> Callable[..., Service]:
    """``make_service(config_dict=None, now=None, env=None)`` → a Service in ``tmp_path``
    (closed by the caller or at the end of the test)."""
    made: list[Service] = []

    def make(config_dict: dict[str, Any] | None = None, *, now: Any = None,
             env: dict[str, str] | None = None) -> Service:
        svc = service_in(tmp_path, config_dict, now=now, env=env)
        made.append(svc)
        return svc

    yield make
    for svc in made:
        try:
            svc.store.close()
            svc.outbox.close()
        except Exception:
            pass
