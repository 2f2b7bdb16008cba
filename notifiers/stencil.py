"""Layouts rendered once per shape, the text of each message put in afterwards.

A layout (``notice.txt``, ``group.html`` …) prints a message's text — names, titles, facts —
and decides its lines from a few things only: flags (``is_copy``, ``critical``), whether a
value is empty, how many rows or items there are. Rendering it with jinja2 for every message
costs most of the sender's rendering time, though two messages of the same *shape* differ
only in the text they print.

:func:`skeleton` walks a rendering context and gives its shape (:attr:`Skeleton.key`: the
flags, numbers, lengths and empty texts as they are, any other text only as there), the texts in order
(:attr:`Skeleton.values`) and, when asked, the same context with every text replaced by a
token of its own (:func:`token`). The layout rendered once with that context is a
:class:`Stencil`: literal pieces and, between them, which text goes there and whether the
layout escaped it (HTML autoescaping turns the token's ``&`` into ``&amp;``, so a stencil
knows). :meth:`Stencil.fill` then writes any context of that shape in one join.

This is exact only for layouts that print their texts, join or concatenate them and test
whether they are empty, never compare them nor pass them to a filter that reads them: the
renderer uses stencils for its own packaged layouts only, and checks each new stencil against
a real rendering before keeping it (:mod:`shian.notifiers.render`). A context whose text
contains a token's or the renderer's private marks has no skeleton (None): it is rendered as
before.
"""
from __future__ import annotations

import re
from collections import abc
from dataclasses import dataclass
from itertools import chain
from typing import Any, Mapping, Sequence

from markupsafe import escape

_OPEN, _CLOSE = "\ue010", "\ue011"
# the renderer's marks (a notice's start, a printed value's ends) and a token's own
_RESERVED = re.compile("[\ue000-\ue002\ue010\ue011]")
_TOKEN = re.compile("\ue010([0-9]+)(&amp;|&)\ue011")
_TOKENS: list[str] = []
_HTML_SPECIAL = re.compile("[&<>\"']")  # what markupsafe.escape replaces


def token(i: int) -> str:
    """The stand-in for the ``i``-th text of a context (printed as is, or escaped to ``&amp;``)."""
    while len(_TOKENS) <= i:
        _TOKENS.append(f"{_OPEN}{len(_TOKENS)}&{_CLOSE}")
    return _TOKENS[i]


@dataclass(frozen=True)
class Skeleton:
    """A context's shape, its texts in order, and (when made for a new stencil) the context
    with tokens for its texts."""
    key: tuple[Any, ...]
    values: list[str]
    tokens: Any = None


def skeleton(ctx: Mapping[str, Any], *, literal: frozenset[str] = frozenset(), tokens: bool = False
             ) -> Skeleton | None:
    """The skeleton of ``ctx`` (None when a value is of a kind a stencil cannot stand in for,
    or a text holds a reserved mark). ``literal``: keys whose texts are part of the shape
    (a layout compares them: ``mode``). ``tokens``: also make the tokenised context. A dict
    met twice (the same object) is walked once: its texts have one token each."""
    walk = _Walk(literal, tokens)
    try:
        made = walk.value(ctx)
    except _Unfit:
        return None
    if walk.values and _RESERVED.search("".join(walk.values)):
        return None
    return Skeleton(tuple(walk.key), walk.values, made)


class _Unfit(Exception):
    """A value no token can stand in for."""


class _Walk:
    """One walk of a context (:func:`skeleton`); texts, flags and None inline, the common case."""

    def __init__(self, literal: frozenset[str], build: bool) -> None:
        self.key: list[Any] = []
        self.values: list[str] = []
        self.literal = literal
        self.build = build
        self.seen: dict[int, tuple[int, Any]] = {}

    def text(self, s: str) -> Any:
        if type(s) is not str and hasattr(s, "__html__"):
            raise _Unfit("markup")  # printed unescaped by autoescaping, which a token cannot tell
        if not s:  # an empty text is part of the shape: a layout tests it
            self.key.append("")
            return s
        self.key.append("s")
        self.values.append(s)
        return token(len(self.values) - 1) if self.build else None

    def value(self, obj: Any) -> Any:
        t = type(obj)
        if t is str:
            return self.text(obj)
        if obj is None or t is bool:
            self.key.append(obj)
            return obj
        if t is dict:
            return self.mapping(obj)
        if t is list or t is tuple:
            return self.sequence(obj)
        if t is int or t is float:
            self.key.append(("n", t.__name__, obj))
            return obj
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, abc.Mapping):
            return self.mapping(obj)
        raise _Unfit(t.__name__)

    def mapping(self, obj: Mapping[str, Any]) -> Any:
        known = self.seen.get(id(obj))
        if known is not None:
            self.key.append(("@", known[0]))
            return known[1]
        key, values, build, literal = self.key, self.values, self.build, self.literal
        mark = len(key)
        key.append(tuple(obj))
        out: dict[str, Any] | None = {} if build else None
        for k, v in obj.items():
            if type(v) is str and v and k not in literal:
                key.append("s")
                values.append(v)
                made: Any = token(len(values) - 1) if build else None
            elif k in literal and isinstance(v, str):
                key.append(("=", v))
                made = v
            else:
                made = self.value(v)
            if out is not None:
                out[k] = made
        self.seen[id(obj)] = (mark, out)
        return out

    def sequence(self, obj: list[Any] | tuple[Any, ...]) -> Any:
        key, values, build = self.key, self.values, self.build
        key.append(("[", len(obj)))
        items = []
        for v in obj:
            if type(v) is str and v:
                key.append("s")
                values.append(v)
                items.append(token(len(values) - 1) if build else None)
            else:
                items.append(self.value(v))
        return (tuple(items) if type(obj) is tuple else items) if build else None


@dataclass(frozen=True)
class Stencil:
    """A layout rendered with tokens: ``pieces`` around the texts; ``slots`` which text goes
    between piece i and i+1, ``escaped`` whether the layout HTML-escaped it there."""
    pieces: tuple[str, ...]
    slots: tuple[int, ...]
    escaped: tuple[bool, ...]

    @classmethod
    def of(cls, rendered: str) -> Stencil:
        pieces, slots, escaped, at = [], [], [], 0
        for m in _TOKEN.finditer(rendered):
            pieces.append(rendered[at:m.start()])
            slots.append(int(m.group(1)))
            escaped.append(m.group(2) == "&amp;")
            at = m.end()
        pieces.append(rendered[at:])
        return cls(tuple(pieces), tuple(slots), tuple(escaped))

    @property
    def escapes(self) -> bool:
        return any(self.escaped)

    def fill(self, values: Sequence[str], escaped: Sequence[str] = ()) -> str:
        """The layout as it renders a context of this shape whose texts are ``values``
        (``escaped``: the same, HTML-escaped, when the layout escapes any: :func:`escaped`)."""
        n = len(values)
        source = [*values, *escaped]
        parts = [source[slot + n if esc else slot] for slot, esc in zip(self.slots, self.escaped)]
        return "".join(chain.from_iterable(zip(self.pieces, parts))) + self.pieces[-1]


def escaped(values: Sequence[str]) -> Sequence[str]:
    """The texts as HTML autoescaping prints them (the same texts when none has a character
    to escape, the common case, found in one search)."""
    if _HTML_SPECIAL.search("".join(values)) is None:
        return values
    return [str(escape(v)) for v in values]
