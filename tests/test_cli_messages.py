"""The command line does not surprise: argparse's own words are Chinese, ``shian ack`` needs a
target and answers in words, ``shian run --listen`` is checked like ``service.listen``, and
``check-config`` refuses exactly what ``run``, ``replay --deliver`` and ``notify`` refuse —
every problem at once, in the same sentences."""
from __future__ import annotations

import logging
import socket
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shian.cli import main
from shian.cli.ack import service_result
from shian.cli.common import LocalFormatter, checked_config
from shian.rules.config import load

ENGLISH = ("usage:", "error:", "the following arguments", "invalid choice", "unrecognized arguments",
           "show this help", "expected one argument", "invalid int value")


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv) or 0
    except SystemExit as e:
        return int(e.code or 0)


def problems(err: str) -> list[str]:
    """The problem lines of a refused config (indented under 配置有误：)."""
    return [line.strip() for line in err.splitlines() if line.startswith("  ")]


# -- argparse ------------------------------------------------------------------------------

ARGV_WORDS = [
    ([], "缺少必需的参数：命令"),
    (["frobnicate"], "无效的取值 'frobnicate'"),
    (["check-config"], "缺少必需的参数：--config"),
    (["check-config", "--config", "c.yaml", "--deadlines", "many"], "'many' 不是有效的整数"),
    (["run", "--config", "c.yaml", "--loglevel", "loud"], "无效的取值 'loud'"),
    (["replay", "--config"], "需要给出一个值"),
    (["ack", "N", "--by", "d", "--config", "c", "--out", "a", "--service", "http://x"], "不能与参数 --out 同时使用"),
    (["silence", "list", "--config", "c", "--bogus"], "无法识别的参数：--bogus"),
]


@pytest.mark.parametrize("argv, words", ARGV_WORDS, ids=[" ".join(a[:2]) or "nothing" for a, _ in ARGV_WORDS])
def test_argparse_speaks_chinese(argv: list[str], words: str, capsys) -> None:
    """A mistyped command line is answered in Chinese: usage, the error, how to get help."""
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert "用法：shian" in err and "错误：" in err and words in err and "-h 查看用法" in err, err
    assert not [w for w in ENGLISH if w in err], err


def test_help_is_chinese(capsys) -> None:
    """``-h`` lists the options under Chinese headings."""
    assert exit_code(["run", "-h"]) == 0
    out = capsys.readouterr().out
    assert "用法：shian run" in out and "显示此帮助并退出" in out and "--listen HOST:PORT" in out
    assert not [w for w in ENGLISH if w in out], out


# -- shian ack -----------------------------------------------------------------------------

def test_ack_without_a_target_refuses_with_a_hint_and_records_nothing(write_config, tmp_path, capsys) -> None:
    """No --out, --broker or --service: exit 2 with the three ways named, nothing printed as if done."""
    path = write_config()
    assert exit_code(["ack", "0123456789abcdef", "--by", "hh-fso", "--township", "红河镇", "--config", path]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert all(w in captured.err for w in ("--service http://127.0.0.1:8080", "--out", "--broker")), captured.err
    assert list(tmp_path.iterdir()) == [Path(path)]


@pytest.mark.parametrize("answer, action, words", [
    ({"status": "accepted", "by": "hh-fso", "notice_id": "n1"}, "签收", "已签收：通知 n1，红河镇食安办"),
    ({"status": "accepted", "by": "hh-agri", "notice_id": "n1"}, "办结", "已办结：通知 n1，红河镇农技中心"),
    ({"status": "duplicate", "by": "hh-fso", "notice_id": "n1"}, "签收", "已签收（此前已记录过同一签收，未重复记录）：通知 n1，红河镇食安办"),
], ids=["signed", "closed", "again"])
def test_ack_by_service_says_what_was_recorded(write_config, answer, action, words) -> None:
    """The service's answer to ``shian ack --service``, as one Chinese sentence with the department's name."""
    assert service_result(answer, action, "n1", load(write_config())) == words


# -- the same config problems everywhere -----------------------------------------------------

BAD = [
    # (id, config keys, a words each run must report)
    ("loopback only without tokens", {"service": {"listen": "0.0.0.0:8080"}}, ["service.listen（第", "只能监听本机地址"]),
    ("an e-mail address", {"departments": {"hh-fso": {"name": "红河镇食安办", "email": ["hh-fso.example"]}}},
     ["departments.hh-fso.email.0（第", "不是有效的邮件地址"]),
    ("a webhook without host", {"departments": {"bq-fso": {"name": "板桥镇食安办", "wecom": {"webhook": "https://"}}}},
     ["departments.bq-fso.wecom.webhook（第", "主机名"]),
    ("the smtp sender", {"notifiers": {"smtp": {"host": "mail.example", "from": "食安办"}}},
     ["notifiers.smtp.from（第", "不是有效的邮件地址"]),
    ("three sections at once", {"service": {"listen": "127.0.0.1:99999"}, "notifiers": {"group_wait_seconds": -1},
                                "departments": {"hh-fso": {"name": "红河镇食安办", "email": ["@x"]}}},
     ["service.listen", "notifiers.group_wait_seconds", "departments.hh-fso.email.0"]),
]


@pytest.mark.parametrize("keys, words", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_check_config_refuses_what_run_replay_and_notify_refuse(write_config, tmp_path, capsys, keys, words) -> None:
    """check-config and run exit 2 with the same problem lines (every one of them at once);
    replay --deliver and notify with those of the sections they use (the service section is not
    theirs: a config wrong only there does not stop replay)."""
    path = write_config(config_overrides=keys, name="bad.yaml")
    events = tmp_path / "e.jsonl"
    events.write_text("", encoding="utf-8")
    said = {}
    for name, argv in (("check", ["check-config", "--config", path]), ("run", ["run", "--config", path])):
        assert exit_code(argv) == 2, name
        said[name] = problems(capsys.readouterr().err)
    assert said["check"] == said["run"] and said["check"]
    for word in words:
        assert any(word in p for p in said["run"]), (word, said["run"])
    delivering = [p for p in said["check"] if ": service." not in p]
    if not delivering:
        assert exit_code(["replay", str(events), "--config", path, "--deliver"]) == 0
        return
    for name, argv in (("replay", ["replay", str(events), "--config", path, "--deliver"]),
                       ("notify", ["notify", "--config", path, "--broker", "kafka://127.0.0.1:1"])):
        assert exit_code(argv) == 2, name
        assert problems(capsys.readouterr().err) == delivering, name


def test_run_listen_overrides_service_listen_and_is_checked_alike(write_config, capsys) -> None:
    """--listen takes the place of service.listen, with the same checks, named as the option."""
    path = write_config(config_overrides={"service": {"listen": "127.0.0.1:8080"}})
    settings = checked_config(path, service=True, listen="127.0.0.1:8181").service
    assert (settings.host, settings.port) == ("127.0.0.1", 8181)
    for listen, words in (("8181", "--listen：“8181”不是 主机:端口"), ("127.0.0.1:70000", "--listen：端口 70000 超出范围"),
                          ("0.0.0.0:8181", "--listen：未配置任何令牌"), ("bad host:80", "不是有效的主机名")):
        assert exit_code(["run", "--config", path, "--listen", listen]) == 2
        assert words in capsys.readouterr().err, listen
    tokens = write_config(config_overrides={"service": {"tokens": {"hh-fso": {"token": "hh-fso-token-1234"}}}},
                          name="tokens.yaml")
    assert checked_config(tokens, service=True, listen="0.0.0.0:8181").service.host == "0.0.0.0"


def test_check_config_warns_when_the_address_cannot_be_listened_on_now(write_config, capsys) -> None:
    """A port another program holds: check-config says so (a warning, exit 0), as run would fail."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = write_config(config_overrides={"service": {"listen": f"127.0.0.1:{port}"}})
        assert exit_code(["check-config", "--config", path, "--now", "2026-04-20T00:00"]) == 0
    err = capsys.readouterr().err
    assert f"警告：现在无法监听 127.0.0.1:{port}（端口已被占用）" in err, err


# -- logs ------------------------------------------------------------------------------------

def test_log_lines_are_stamped_in_the_county_time_zone_with_the_level_in_chinese() -> None:
    """06:02 UTC is 14:02 in Asia/Shanghai, whatever zone the machine is set to."""
    record = logging.LogRecord("shian.service", logging.INFO, __file__, 1, "投放文件夹：%s 已读完", ("a.csv",), None)
    record.created = datetime(2026, 4, 20, 6, 2, tzinfo=timezone.utc).timestamp()
    line = LocalFormatter(ZoneInfo("Asia/Shanghai")).format(record)
    assert line == "2026-04-20 14:02:00 信息 shian.service: 投放文件夹：a.csv 已读完"


def test_run_refuses_in_words_when_its_data_cannot_be_opened(write_config, tmp_path, capsys) -> None:
    """A snapshot this version cannot read, a data folder that cannot be made: exit 2 with a
    Chinese sentence naming the file and what to do, never a traceback."""
    from shian.streams.store import Store

    data = tmp_path / "data"
    store = Store(data / "events.sqlite", ZoneInfo("Asia/Shanghai"))
    store.save_snapshot(0, b"shian-engine/0\njunk")
    store.close()
    path = write_config(config_overrides={"service": {"listen": "127.0.0.1:0", "data_dir": str(data)}})
    assert exit_code(["run", "--config", path]) == 2
    err = capsys.readouterr().err
    assert "无法恢复保存的规则状态" in err and "删除旧快照" in err and "Traceback" not in err, err
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    path = write_config(config_overrides={"service": {"listen": "127.0.0.1:0", "data_dir": str(tmp_path / "a-file" / "d")}},
                        name="blocked.yaml")
    assert exit_code(["run", "--config", path]) == 2
    err = capsys.readouterr().err
    assert f"无法打开数据目录 {tmp_path / 'a-file' / 'd'}" in err and "Traceback" not in err, err


@pytest.mark.parametrize("option", ["--out", "--rejects"])
def test_replay_refuses_in_words_an_output_it_cannot_write(tmp_path, capsys, option) -> None:
    """An output file that is a folder stops replay with exit 2 and a Chinese reason, no traceback."""
    root = Path(__file__).resolve().parent.parent / "examples"
    code = exit_code(["replay", "--no-progress", "--config", str(root / "county.yaml"), option, str(tmp_path),
                      str(root / "events.jsonl")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{option} 指定的输出文件“{tmp_path}”无法写入：这是一个文件夹" in err and "Traceback" not in err


def test_ack_refuses_in_words_an_events_file_it_cannot_append_to(write_config, tmp_path, capsys) -> None:
    """ack --out naming a folder: exit 2 and a Chinese reason, as replay's outputs, no traceback."""
    path = write_config()
    code = exit_code(["ack", "0123456789abcdef", "--by", "hh-fso", "--township", "红河镇", "--config", path,
                      "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"--out 指定的输出文件“{tmp_path}”无法写入：这是一个文件夹" in err and "Traceback" not in err
