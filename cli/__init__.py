"""The ``shian`` command line (§5): the composition root.

Each command group is one module here that registers its parser and its handler; this is
the one place that wires runtimes (``shian.streams``), delivery (``shian.notifiers``) and the
office (``shian.office``) together. Adding a command touches its module and :data:`COMMANDS`.
"""
from __future__ import annotations

import argparse
from typing import Sequence

from . import ack, argwords, check, kafka, office, replay, run, silence

COMMANDS = (replay, kafka, run, office, ack, silence, check)


def parser() -> argparse.ArgumentParser:
    argwords.install()  # argparse's own words (usage, errors) in Chinese too
    p = argwords.Parser(prog="shian", description="食安：食品安全合规预警")
    sub = p.add_subparsers(dest="command", required=True, title="命令", metavar="命令")
    for module in COMMANDS:
        module.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)
