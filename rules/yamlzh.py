"""PyYAML with bounds, and its errors in Chinese.

:class:`Loader` is PyYAML's safe loader that measures the node tree while composing it and
stops (:class:`Refused`) at the first of: nesting deeper than :data:`MAX_DEPTH`, more than
:data:`MAX_ALIASES` aliases, more than :data:`MAX_NODES` values with every alias expanded
(counted as numbers, never expanded), an alias used inside its own anchor. Nothing is built
before the whole tree has passed. A scalar that looks like a date or a number but is none (a
13th month, an integer of thousands of digits) is kept as the text written, for the model to
refuse by its key.

:func:`problem_of` says a PyYAML error, or a refusal, in Chinese with its line and column.
"""
from __future__ import annotations

import ast
import re
from typing import Any

import yaml

MAX_DEPTH = 64           # mappings and lists inside each other
MAX_ALIASES = 500        # uses of an anchor (*name) in one file
MAX_NODES = 20_000       # values (keys included) with every alias expanded; a county uses a few thousand


class Refused(Exception):
    """The file's shape is beyond a bound; ``mark`` is where."""

    def __init__(self, mark: Any, what: str, fix: str) -> None:
        super().__init__(what)
        self.mark, self.what, self.fix = mark, what, fix


class Loader(yaml.SafeLoader):
    """The safe loader, measuring as it composes: ``_measure`` holds each finished node's
    (expanded size, expanded height)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._composed = 0
        self._measure: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            return self._alias(parent, index, event)
        self._depth += 1
        self._composed += 1
        if self._depth > MAX_DEPTH:
            raise Refused(event.start_mark, f"嵌套超过 {MAX_DEPTH} 层", "配置不需要这么深的嵌套：检查括号和缩进")
        if self._composed > MAX_NODES:
            raise Refused(event.start_mark, f"值的个数超过 {MAX_NODES} 个", "配置文件不应这么大：确认这是配置文件")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._measured(node)
        return node

    def _alias(self, parent: Any, index: Any, event: Any) -> Any:
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise Refused(event.start_mark, f"别名（*名字）用了超过 {MAX_ALIASES} 次",
                          "直接写出各值，少用锚点和别名")
        node = super().compose_node(parent, index)
        if id(node) not in self._measure:
            raise Refused(event.start_mark, f"别名 *{event.anchor} 在它自己的锚点内被引用（循环引用）",
                          "删除该别名，或改为直接写出值")
        size, height = self._measure[id(node)]
        if self._depth + height > MAX_DEPTH:
            raise Refused(event.start_mark, f"别名 *{event.anchor} 展开后嵌套超过 {MAX_DEPTH} 层",
                          "直接写出各值，少用锚点和别名")
        return node

    def _measured(self, node: Any) -> None:
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        sizes = [self._measure[id(c)] for c in children]
        size = 1 + sum(s for s, _ in sizes)
        height = 1 + max((h for _, h in sizes), default=0)
        if size > MAX_NODES:
            raise Refused(node.start_mark, f"展开别名后值的个数超过 {MAX_NODES} 个（“YAML 炸弹”？）",
                          "删除层层引用的锚点和别名，直接写出各值")
        self._measure[id(node)] = (size, height)

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        """A scalar PyYAML cannot build (2000-13-01, a number of thousands of digits) is kept
        as the text written."""
        if isinstance(node, yaml.ScalarNode) and node not in self.constructed_objects:
            try:
                return super().construct_object(node, deep)
            except (ValueError, OverflowError):
                self.constructed_objects[node] = node.value
                return node.value
        return super().construct_object(node, deep)


def _said(char: str) -> str:
    return {"\t": "制表符（Tab）", " ": "空格"}.get(char, f"“{char}”")


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_TAB = ("含有制表符（Tab）", "YAML 只能用空格缩进：把 Tab 换成空格")
_INDENT = ("缩进不一致", "同一层的键要对齐，用空格缩进；值中含有“: ”或“ #”时给整个值加上引号")
_ANCHOR = ("锚点（&）、别名（*）或标签（!）的名字无效", "值以 & * ! 开头时给整个值加上引号")
_BLOCK = ("块文字（| 或 >）的标记无效", "在 | 或 > 后直接换行，或给值加上引号")
_ESCAPE = ("双引号中的转义（\\）无效", "把 \\ 写成 \\\\，或改用单引号")
_TAG = ("不支持的 YAML 标签 {arg}", "删除该标签：配置只用映射、列表、文字、数字和日期")
_MERGE = ("合并键“<<”的值应为映射（或映射的列表）", "在 << 后引用一个映射的锚点，如 <<: *defaults")

# PyYAML's problem (a regex) → (what is wrong, fix) in Chinese; {arg} is the problem's first
# quoted part as written, {char} the same said in words (a tab, a space, “@”).
TRANSLATIONS: list[tuple[str, tuple[str, str]]] = [
    (r"mapping values are not allowed here",
     ("这里不能出现“键: 值”", "值中含有“: ”时给整个值加上引号；或检查这一行与上一行的缩进")),
    (r"could not find expected ':'", ("找不到键后应有的冒号“:”", "在键后写“: ”（冒号加空格）；检查引号、括号是否成对")),
    (r"found character '\\t' that cannot start any token", _TAB),
    (r"found a tab character", _TAB),
    (r"that cannot start any token",
     ("字符{char}不能出现在这里（YAML 不允许值以它开头）", "给整个值加上引号，如 \"@某某\"")),
    (r"sequence entries are not allowed here", ("这里不能出现列表项“- ”", "检查缩进：列表项应与同一列表的其他项对齐")),
    (r"mapping keys are not allowed here", ("这里不能出现“? ”", "删除“? ”，或给整个值加上引号")),
    (r"found unexpected end of stream", ("引号没有闭合，直到文件末尾", "补上配对的引号")),
    (r"found unexpected document separator", ("引号没有闭合", "补上配对的引号")),
    (r"found unknown escape character|expected escape sequence", _ESCAPE),
    (r"expected alphabetic or numeric character", _ANCHOR),
    (r"expected '>', but found|expected ' ', but found|expected URI", _ANCHOR),
    (r"expected chomping or indentation indicators|expected indentation indicator", _BLOCK),
    (r"expected a comment or a line break", ("这一行在值后面还有多余的内容", "删去多余内容，或给整个值加上引号")),
    (r"expected '<document start>'", ("顶层多出了内容", "检查第一层的缩进和引号")),
    (r"expected <block end>", _INDENT),
    (r"expected ',' or '\]'", ("方括号 [ ] 中的列表没有正确结束", "检查逗号和右方括号“]”是否成对")),
    (r"expected ',' or '\}'", ("花括号 {{ }} 中的映射没有正确结束", "检查逗号和右花括号“}}”是否成对")),
    (r"expected the node content", ("这里缺少值，或值以特殊字符开头", "补上值，或给整个值加上引号")),
    (r"found undefined alias", ("别名“*{arg}”引用了未定义的锚点", "先用 &{arg} 定义锚点再引用，或给以 * 开头的值加上引号")),
    (r"found duplicate anchor", ("锚点“&{arg}”重复定义", "锚点名在文件中只能定义一次")),
    (r"expected a single document|found another document", ("文件中有不止一个 YAML 文档（以“---”分隔）", "只保留一个文档")),
    (r"found undefined tag handle|could not determine a constructor for the tag", _TAG),
    (r"found unhashable key", ("键不能是列表或映射", "键只能是文字或数字")),
    (r"for merging", _MERGE),
    (r"found incompatible YAML document|found duplicate YAML directive|found duplicate tag handle",
     ("文件开头的 %YAML / %TAG 指令无效", "删除以 % 开头的指令行")),
    (r"failed to decode base64|incorrect padding", ("!!binary 的内容不是有效的 base64", "删除 !!binary 标签")),
]
GENERIC = ("YAML 格式错误", "检查这一行及上一行的缩进、冒号、引号和括号")


def _argument(problem: str) -> str:
    """The first quoted part of PyYAML's message (written with Python's repr), as text; a
    standard tag as written (``!!python/object``)."""
    m = _QUOTED.search(problem)
    if m is None:
        return ""
    try:
        arg = str(ast.literal_eval(m.group()))
    except (ValueError, SyntaxError):
        arg = m.group()[1:-1]
    return arg.replace("tag:yaml.org,2002:", "!!")


def translate(problem: str) -> tuple[str, str]:
    """PyYAML's ``problem`` as (what is wrong, fix) in Chinese; a generic sentence when it is
    not one of the known ones."""
    for pattern, (what, fix) in TRANSLATIONS:
        if re.search(pattern, problem):
            arg = _argument(problem)
            return what.format(arg=arg, char=_said(arg)), fix.format(arg=arg, char=_said(arg))
    return GENERIC


def problem_of(err: Exception, text: str) -> tuple[int, int | None, str, str]:
    """(line, column, what is wrong, fix) for a refusal or a PyYAML error."""
    if isinstance(err, Refused):
        return err.mark.line + 1, err.mark.column + 1, err.what, err.fix
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        what, fix = translate(" ".join(filter(None, (err.problem, err.context))))
        if "引号没有闭合" in what and err.context_mark is not None:
            what += f"（引号从第 {err.context_mark.line + 1} 行开始）"
        if mark is not None:
            return mark.line + 1, mark.column + 1, what, fix
        return 1, None, what, fix
    if isinstance(err, yaml.reader.ReaderError):
        line = text.count("\n", 0, err.position) + 1
        return line, None, f"含有不允许的字符 U+{err.character:04X}", "删除该字符"
    return 1, None, *GENERIC
