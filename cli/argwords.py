"""argparse's own words — usage, its errors, the help's headings — in Chinese, like every other
message of the ``shian`` command.

argparse looks its messages up through ``gettext`` (the module's ``_`` and ``ngettext``) each
time it says something; :func:`install` puts this table in front of that lookup. A message
not listed here (a newer Python's) stays as argparse words it.
"""
from __future__ import annotations

import argparse
from typing import NoReturn

MESSAGES = {
    "usage: ": "用法：",
    "positional arguments": "位置参数",
    "options": "选项",
    "optional arguments": "选项",
    "show this help message and exit": "显示此帮助并退出",
    "argument %(argument_name)s: %(message)s": "参数 %(argument_name)s：%(message)s",
    "invalid choice: %(value)r (choose from %(choices)s)": "无效的取值 %(value)r（可选：%(choices)s）",
    "invalid %(type)s value: %(value)r": "%(value)r 不是有效的%(type)s",
    "expected one argument": "需要给出一个值",
    "expected at most one argument": "最多只能给出一个值",
    "expected at least one argument": "至少要给出一个值",
    "expected %s argument": "需要给出 %s 个值",
    "expected %s arguments": "需要给出 %s 个值",
    "unrecognized arguments: %s": "无法识别的参数：%s",
    "not allowed with argument %s": "不能与参数 %s 同时使用",
    "the following arguments are required: %s": "缺少必需的参数：%s",
    "one of the arguments %s is required": "参数 %s 须给出其中一个",
    "ignored explicit argument %r": "多余的值 %r",
    "ambiguous option: %(option)s could match %(matches)s": "选项 %(option)s 不明确，可能是 %(matches)s",
    "unexpected option string: %s": "意外的选项：%s",
    "%(prog)s: error: %(message)s\n": "%(prog)s：错误：%(message)s\n（用 %(prog)s -h 查看用法）\n",
    "unknown parser %(parser_name)r (choices: %(choices)s)": "未知的命令 %(parser_name)r（可用：%(choices)s）",
    "can't open '%(filename)s': %(error)s": "无法打开“%(filename)s”：%(error)s",
}
TYPE_NAMES = {"int": "整数", "float": "数字", "str": "文字"}


def words(message: str) -> str:
    return MESSAGES.get(message, message)


def plural_words(singular: str, plural: str, n: int) -> str:
    return words(singular if n == 1 else plural)


def install() -> None:
    """argparse speaks Chinese in this process from now on."""
    argparse._ = words  # type: ignore[attr-defined]
    argparse.ngettext = plural_words  # type: ignore[attr-defined]


class Parser(argparse.ArgumentParser):
    """The ``shian`` parser (its subcommands' parsers are of the same class): errors with the
    type an option needs named in Chinese."""

    def error(self, message: str) -> NoReturn:
        for name, word in TYPE_NAMES.items():
            message = message.replace(f"不是有效的{name}", f"不是有效的{word}")
        super().error(message)
