"""A message a chat robot cannot take in one piece, split into numbered parts.

The robots refuse a message over their size limit (WeCom: markdown 4,096 bytes, text 2,048,
UTF-8; DingTalk: a request body of 20,000 bytes). A longer message goes out as parts, each
within the limit and numbered on its first line — the message's own first line (its heading)
with （1/3）, （2/3，接上条，编号 …） … — so a chat group sees which message it belongs to:

- a part ends only where a notice of a group or a digest begins (the message's breaks, see
  :attr:`~shian.notifiers.message.Message.markdown_breaks`), as many whole notices to a part
  as fit, a part that is not the last ending with 未完，接下条（k/n）;
- a single notice longer than a part is split at line ends, each piece but its last ending
  with :data:`CONTINUED`; a line longer than a part (hostile event text) at a character;
- never more than :data:`MAX_PARTS` parts (a minute of a robot's rate): the rest is left out,
  the last part saying so (:data:`OMITTED`) — the e-mail and the notice pages keep it all.

Sizes are measured by the channel's own function (UTF-8 bytes; DingTalk: bytes of the text
as written in the JSON body), which must add up piece by piece.
"""
from __future__ import annotations

from typing import Callable

MAX_PARTS = 20
CONTINUED = "……（本条未完，接下条）"
OMITTED = "……（内容过长，其余从略；完整内容请见电子邮件或系统中的通知页面）"
Size = Callable[[str], int]


def utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def _segments(text: str, breaks: tuple[int, ...]) -> list[str]:
    cuts = sorted(b for b in set(breaks) if 0 < b < len(text))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


def _cut_line(line: str, room: int, size: Size) -> list[str]:
    """A line longer than ``room``, cut where characters meet (no character is ever halved)."""
    out, rest = [], line
    while size(rest) > room:
        lo, hi = 1, len(rest)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if size(rest[:mid]) <= room:
                lo = mid
            else:
                hi = mid - 1
        out.append(rest[:lo])
        rest = rest[lo:]
    return out + [rest]


def _pieces(segment: str, room: int, size: Size) -> list[str]:
    """The segment if it fits in ``room``; else its lines packed into pieces that do, each but
    the last ending with :data:`CONTINUED` (each then needs a part of its own)."""
    if size(segment) <= room:
        return [segment]
    inner = room - size("\n" + CONTINUED)
    lines = [piece for line in segment.split("\n") for piece in _cut_line(line, inner, size)]
    pieces, current = [], None
    for line in lines:
        candidate = line if current is None else current + "\n" + line
        if current is not None and size(candidate) > inner:
            pieces.append(current.rstrip("\n") + "\n" + CONTINUED)
            current = line
        else:
            current = candidate
    return pieces + [current or ""]


def _heading(first: str, limit: int, size: Size, ref: str) -> str:
    """What each part's first line repeats: the message's own, unless it would crowd the part."""
    return first if first.strip() and size(first) <= limit // 8 else f"通知编号 {ref}"


def split(text: str, breaks: tuple[int, ...], limit: int, *, size: Size = utf8, ref: str = "") -> list[str]:
    """``text`` as parts within ``limit`` (one part, unchanged, if it fits); see the module."""
    if size(text) <= limit:
        return [text]
    first, _, _ = text.partition("\n")
    heading = _heading(first, limit, size, ref)
    room = limit - size(f"{heading}（99/99，接上条，编号 {ref}）\n\n") - max(size("\n\n……未完，接下条（99/99）"),
                                                                        size("\n\n" + OMITTED))
    if room < 64:
        raise ValueError(f"limit {limit} leaves no room for a part")
    bodies: list[str] = []
    current = ""
    for segment in _segments(text, breaks):
        for piece in _pieces(segment, room, size):
            if current and size((current + piece).strip("\n")) > room:
                bodies.append(current)
                current = ""
            current += piece
    bodies.append(current)
    return _numbered([b.strip("\n") for b in bodies], first, heading, ref)


def _numbered(bodies: list[str], first: str, heading: str, ref: str) -> list[str]:
    omitted = len(bodies) > MAX_PARTS
    bodies = bodies[:MAX_PARTS]
    n = len(bodies)
    out = []
    for k, body in enumerate(bodies, 1):
        if k == 1 and heading == first:
            head = f"{first}（1/{n}）" + body[len(first):]
        elif k == 1:
            head = f"{heading}（1/{n}）\n\n{body}"
        else:
            head = f"{heading}（{k}/{n}，接上条，编号 {ref}）\n\n{body}"
        tail = f"\n\n……未完，接下条（{k + 1}/{n}）" if k < n else ("\n\n" + OMITTED if omitted else "")
        out.append(head + tail)
    return out
