"""The config file's bytes to plain data and the line of every key, refusing in Chinese what
is not a small, well-formed UTF-8 YAML mapping.

Checked before anything is built, so that no file can crash, hang or exhaust memory:

- size: at most :data:`MAX_BYTES` (a county's config is a few KB);
- encoding: UTF-8 (a byte-order mark is allowed); GBK / GB18030, UTF-16 and a file cut off
  in the middle of a character are named as such;
- characters: none of the control characters YAML refuses, no unpaired surrogate;
- YAML syntax, with PyYAML's message said in Chinese with its line and column;
- shape, on the composed node tree before any value is built: nesting at most
  :data:`MAX_DEPTH` deep, at most :data:`MAX_ALIASES` aliases (``*name``), at most
  :data:`MAX_NODES` values once every alias is expanded (a "billion laughs" file is refused
  in milliseconds instead of expanding), no recursive alias, no key twice in one mapping.
"""
from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from typing import Any

import yaml

from .problems import ConfigError, Problems
from .yamlzh import MAX_ALIASES, MAX_DEPTH, MAX_NODES, Loader, Refused, problem_of

__all__ = ["MAX_ALIASES", "MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "Document", "decode", "parse_text", "read", "walk"]

MAX_BYTES = 1 << 20  # 1 MiB

# What YAML 1.1 (and PyYAML's reader) refuses in a stream, surrogates included.
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")
# What a value written with escapes ("\ud800", "\x00") may not hold either.
_BAD_IN_VALUE = re.compile("[\x00-\x08\x0B\x0C\x0E-\x1F\x7F\uD800-\uDFFF]")
_RESAVE = "用记事本等编辑器“另存为”UTF-8 编码（或 iconv -f {src} -t UTF-8），配置文件须为 UTF-8"


_CANNOT = {errno.ENOENT: "文件不存在", errno.EACCES: "没有读取权限", errno.EPERM: "没有读取权限",
           errno.EISDIR: "这是文件夹，不是文件", errno.ENOTDIR: "路径中有一段不是文件夹", errno.ELOOP: "符号链接循环",
           errno.ENAMETOOLONG: "路径太长"}


@dataclass(frozen=True)
class Document:
    """The file's data (plain dicts, lists, scalars) and the 1-based line of each key path."""
    data: Any
    lines: dict[tuple[str, ...], int]


def read(path: str) -> Document:
    """The config file at ``path``, checked; raises ConfigError with one Chinese sentence."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ConfigError([f"{path}: 无法读取配置文件：{_CANNOT.get(e.errno or 0, f'系统错误 {e.errno}')}；"
                           "检查 --config 给出的路径"]) from None
    if len(raw) > MAX_BYTES:
        raise ConfigError([f"{path}: 文件太大（超过 {MAX_BYTES} 字节，即 1 MiB），不像是配置文件；"
                           "确认 --config 指向的是配置文件（一个县的配置通常只有几 KB）"])
    return parse_text(decode(raw, path), path)


def _line_col(raw: bytes, offset: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, len(raw[line_start:offset].decode("utf-8", "replace")) + 1


def _wide_guess(raw: bytes) -> str | None:
    """UTF-16 (or UTF-32) by its byte-order mark or by its zero bytes, in words; else None."""
    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32 编码（带 BOM）"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 编码（带 BOM）"
    head = raw[:4096]
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if odd > len(head) // 8 and even < odd // 4:
        return "UTF-16 LE 编码（无 BOM）"
    if even > len(head) // 8 and odd < even // 4:
        return "UTF-16 BE 编码（无 BOM）"
    return None


def decode(raw: bytes, path: str) -> str:
    """UTF-8 text (a byte-order mark dropped); any other encoding refused, named if recognised."""
    problems = Problems(path, {})
    guess = _wide_guess(raw)
    if guess:
        problems.items.append(f"{path}: 文件似乎是 {guess}，不是 UTF-8；" + _RESAVE.format(src=guess.split()[0]))
        raise ConfigError(problems.items)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line, col = _line_col(raw, e.start)
        bad = raw[e.start:e.start + 2]
        if e.end >= len(raw) and e.reason == "unexpected end of data":
            problems.at(line, col, "文件在最后一个字符的中间被截断（不完整的 UTF-8 字符）",
                        "文件可能没有完整保存或复制：从原件重新复制，或删去末尾不完整的字符")
        elif len(bad) == 2 and bad[0] == 0xED and 0xA0 <= bad[1] <= 0xBF:
            problems.at(line, col, "含有以字节写入的代理字符（surrogate），UTF-8 不允许",
                        "删除该字符后以 UTF-8 重新保存")
        elif _is_gb18030(raw):
            problems.at(line, col, "文件似乎是 GBK（GB18030）编码，不是 UTF-8", _RESAVE.format(src="GB18030"))
        else:
            problems.at(line, col, "含有不是 UTF-8 编码的字节", "以 UTF-8 编码重新保存该文件")
        raise ConfigError(problems.items) from None


def _is_gb18030(raw: bytes) -> bool:
    try:
        raw.decode("gb18030")
    except UnicodeDecodeError:
        return False
    return True


def _check_characters(text: str, problems: Problems) -> None:
    m = _NON_PRINTABLE.search(text)
    if m is None:
        return
    line = text.count("\n", 0, m.start()) + 1
    col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
    problems.at(line, col, f"含有不允许的控制字符 U+{ord(m.group()):04X}", "删除该字符（可能是从别处复制来的不可见字符）")
    raise ConfigError(problems.items)


def parse_text(text: str, path: str) -> Document:
    """The YAML text checked and built; raises ConfigError."""
    problems = Problems(path, {})
    _check_characters(text, problems)
    loader = Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return Document(None, {})
        lines, found = walk(root)
        if found:
            problems = Problems(path, lines)
            for keys, line, what, fix in found:
                problems.add(keys, what, fix, line=line)
            raise ConfigError(problems.items)
        return Document(loader.construct_document(root), lines)
    except (yaml.YAMLError, Refused) as e:
        line, col, what, fix = problem_of(e, text)
        problems.at(line, col, what, fix)
        raise ConfigError(problems.items) from None
    finally:
        loader.dispose()


def _key(node: yaml.Node) -> tuple[str, str] | None:
    """What makes two keys of one mapping the same key: tag and text (a merge key ``<<`` is
    not a key of its own)."""
    if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:merge":
        return None
    return node.tag, node.value


Finding = tuple[tuple[str, ...], int, str, str]  # key path, line, what is wrong, fix


def walk(root: yaml.Node) -> tuple[dict[tuple[str, ...], int], list[Finding]]:
    """Key path → 1-based line, so that errors point at the line to edit; and what is wrong
    beyond syntax: a key written twice in one mapping (both lines named), a value or key
    holding a control character or an unpaired surrogate (written as an escape, "\\ud800").
    The tree is at most :data:`MAX_DEPTH` deep and :data:`MAX_NODES` large (the loader saw to
    it); a node an alias reaches twice is checked once."""
    lines: dict[tuple[str, ...], int] = {}
    found: list[Finding] = []
    seen: set[int] = set()

    def visit(node: yaml.Node, path: tuple[str, ...]) -> None:
        first = id(node) not in seen
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            m = _BAD_IN_VALUE.search(node.value)
            if m and first:
                found.append((path, node.start_mark.line + 1,
                              f"含有不允许的字符 U+{ord(m.group()):04X}（控制字符或不成对的代理字符）",
                              "删除该字符或转义（如 \\ud800）"))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                p = path + (str(i),)
                lines[p] = v.start_mark.line + 1
                visit(v, p)
        elif isinstance(node, yaml.MappingNode):
            keys: dict[tuple[str, str], int] = {}
            for k, v in node.value:
                p, line, ident = path + (str(k.value),), k.start_mark.line + 1, _key(k)
                if first and ident is not None and ident in keys:
                    found.append((p, line, f"键 {k.value} 重复（第 {keys[ident]} 行已有）",
                                  "同一映射中每个键只能写一次：删除或合并其中一处"))
                elif ident is not None:
                    keys[ident] = line
                lines.setdefault(p, line)
                visit(k, p)
                visit(v, p)

    visit(root, ())
    return lines, found
