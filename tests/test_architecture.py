"""The shape of the code: which package may import which (every import, function-level ones
included), and which modules stay free of a Kafka client."""
from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rules", "streams", "notifiers", "office", "cli")

# package → the shian packages it may import (itself always). The CLI is the composition root.
ALLOWED = {
    "rules": set(),
    "notifiers": {"rules"},
    "streams": {"rules", "notifiers"},
    "office": {"rules", "notifiers"},
    "cli": {"rules", "notifiers", "streams", "office"},
}
KAFKA_CLIENTS = ("kafka", "aiokafka", "faust", "mode")
# Modules that run without a broker: replay, the embedded service and what they share.
KAFKA_FREE = ("streams/replay.py", "streams/service.py", "streams/base.py", "streams/sources.py",
              "streams/store.py", "streams/noticeview.py", "streams/partitioned.py")


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported(path: Path, root: Path = ROOT) -> set[str]:
    """Every module an import statement in ``path`` names, at any depth, resolved to
    ``shian.<package>…`` for relative imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = ["shian", *path.relative_to(root).with_suffix("").parts]
    if here[-1] == "__init__":
        here.pop()
    else:
        here[-1:] = []  # the package the module is in
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.add(name)
    return out


def shian_packages(names: set[str]) -> set[str]:
    return {n.split(".")[1] for n in names if n.startswith("shian.") and len(n.split(".")) > 1}


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_the_packages_below_it(package: str) -> None:
    """rules/ imports none of the others; office/ and streams/ never each other; only the CLI
    wires them together."""
    wrong = {}
    for path in modules(package):
        bad = shian_packages(imported(path)) - ALLOWED[package] - {package}
        if bad:
            wrong[str(path.relative_to(ROOT))] = sorted(bad)
    assert not wrong, f"{package}/ may import only {sorted(ALLOWED[package])}: {wrong}"


def test_the_graph_checker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The checker itself: an import inside a function and a relative one both count."""
    probe = tmp_path / "office" / "probe.py"
    probe.parent.mkdir()
    probe.write_text("def f():\n    from shian.streams import service\n", encoding="utf-8")
    assert imported(probe, tmp_path) == {"shian.streams"}
    probe.write_text("def g():\n    if True:\n        from ..streams.kafka import EVENTS\n", encoding="utf-8")
    assert imported(probe, tmp_path) == {"shian.streams.kafka"}


@pytest.mark.parametrize("module", KAFKA_FREE)
def test_kafka_free_modules_import_no_kafka_client(module: str) -> None:
    """Replay and the embedded service run where no broker (or Kafka client) is."""
    names = imported(ROOT / module) | {n for dep in _local_deps(ROOT / module) for n in imported(dep)}
    clients = {n for n in names if n.split(".")[0] in KAFKA_CLIENTS}
    assert not clients, f"{module} reaches a Kafka client: {sorted(clients)}"


def _local_deps(path: Path) -> list[Path]:
    """The streams/ modules ``path`` imports (one level): a Kafka-free module must not lean on
    one that is not."""
    out = []
    for name in imported(path):
        parts = name.split(".")
        if parts[:2] == ["shian", "streams"] and len(parts) > 2:
            dep = ROOT / "streams" / f"{parts[2]}.py"
            if dep.exists() and dep != path:
                out.append(dep)
    return out


def test_partitions_agree_with_kafkas_default_partitioner() -> None:
    """The partitioner written out in streams/partitioned.py is Kafka's murmur2, byte for byte."""
    from kafka.partitioner.default import murmur2 as kafka_murmur2

    from shian.streams.partitioned import murmur2

    rng = random.Random(7)
    keys = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))) for _ in range(3000)]
    keys += [t.encode() for t in ("红河镇", "板桥镇", "盆尧镇", "a", "ab", "abc", "abcd", "")]
    assert [murmur2(k) for k in keys] == [kafka_murmur2(k) for k in keys]


MAX_LINES = 60
LONG_REASON = "# long:"  # a function over MAX_LINES says why on its def line or the line above


def long_functions(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for node in ast.walk(ast.parse("\n".join(lines), filename=str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            said = any(LONG_REASON in lines[i - 1] for i in (first - 1, node.lineno) if i >= 1)
            if length > MAX_LINES and not said:
                out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return out


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_over_sixty_lines_without_a_reason_beside_it(package: str) -> None:
    """Small units: a long function is split, or says beside it why it is not."""
    found = [f for path in modules(package) for f in long_functions(path)]
    assert not found, f"functions over {MAX_LINES} lines: {found}"


def test_every_package_with_modules_is_installed() -> None:
    """A non-editable install (the Docker image) ships every subpackage: each folder holding
    modules is listed in pyproject.toml's packages."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    folders = {"shian." + ".".join(p.parent.relative_to(ROOT).parts)
               for package in PACKAGES for p in (ROOT / package).rglob("__init__.py")}
    assert folders <= listed, f"not installed: {sorted(folders - listed)}"
