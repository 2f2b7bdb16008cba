"""service.public_url: the address the messages link each notice's page under, checked with the
rest of the service: section (office.settings, through notifiers.links)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import config_dict
from shian.notifiers.links import notice_page, public_url, url_problem
from shian.office.settings import parse as service_settings
from shian.rules.config import ConfigError, load


def _settings(tmp_path: Path, url: Any):
    data = config_dict(config_overrides={"service": {"listen": "127.0.0.1:0", "public_url": url}})
    path = tmp_path / "county.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return service_settings(load(path), env={})


@pytest.mark.parametrize("url, kept", [
    ("https://shian.xiping.gov.cn", "https://shian.xiping.gov.cn"),
    ("https://shian.xiping.gov.cn/", "https://shian.xiping.gov.cn"),
    ("http://10.0.0.5:8080/shian/", "http://10.0.0.5:8080/shian"),
])
def test_a_public_address_is_kept_without_its_trailing_slash(tmp_path: Path, url: str, kept: str) -> None:
    """An http(s) address of a host, with a port or a path: accepted, the pages under it."""
    assert _settings(tmp_path, url).public_url == kept
    assert public_url({"public_url": url}) == kept
    assert notice_page(kept, "8601f249ce79decb") == f"{kept}/notices/8601f249ce79decb"


@pytest.mark.parametrize("url", [
    "shian.xiping.gov.cn", "ftp://shian.xiping.gov.cn", "https://", "https://shian.example/a b",
    "https://shian.example/(x)", "https://shian.example/?token=1", "https://shian.example/#top",
    "https://user:pw@shian.example", "https://shian.example:99999", "javascript:alert(1)", "", 8080,
])
def test_an_unusable_public_address_refuses_the_config_naming_file_and_key(tmp_path: Path, url: Any) -> None:
    """Anything else refuses the config, the problem naming the file, service.public_url and the line;
    the messages never carry it (no link rather than a broken one)."""
    with pytest.raises(ConfigError) as err:
        _settings(tmp_path, url)
    assert any("county.yaml" in p and "service.public_url" in p and "第" in p for p in err.value.problems), err.value.problems
    assert url_problem(url) is not None and public_url({"public_url": url}) is None


def test_without_public_url_there_is_no_page_to_link(tmp_path: Path) -> None:
    """Not set: None, and no page address is made up."""
    data = config_dict(config_overrides={"service": {"listen": "127.0.0.1:0"}})
    path = tmp_path / "county.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert service_settings(load(path), env={}).public_url is None
    assert public_url({}) is None and notice_page(None, "x") is None
