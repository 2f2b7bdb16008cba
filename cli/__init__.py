"""The ``shian`` command line (§5): the composition root.

Each command group is one module here that registers its parser and its handler; this is
the one place that wires runtimes (``shian.streams``), delivery (``shian.notifiers``) and the
office (``shian.office``) together. Adding a command touches its module and :data:`COMMANDS`.
"""
from __future__ import annotations

import argparse
from typing import Sequence

from . import ack, check, kafka, office, replay, run, silence

COMMANDS = (replay, kafka, run, office, ack, silence, check)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shian", description="食安：食品安全合规预警")
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)
