"""Chinese notices (预警通知 / 催报通知 / 督办通知 / 工作提示) rendered from §4 notice dicts.

The wording lives in jinja2 templates (packaged flat in ``templates/``; a file of the same name
in ``notifiers.templates`` replaces the packaged one), so an office can adjust it without code.
This module decides what the templates cannot be trusted with: who issues a notice and to whom
(:func:`addressing`: 落款, 主送, 抄送 — a message never names its recipient as its issuer), the
delivery ref, a subject that is always one line, and markdown cards whose every printed value
is text (:func:`md_text`), so links, mentions and headings come from the templates alone. The
kind of notice and the rule's name come from the rule's :class:`~shian.rules.params.RuleSpec`
(:func:`spec_of`), as on every page. Output depends only on the notices and the config (no
current time), so a redelivery renders the same bytes. A group or digest marks where each
notice begins (``{{ cut }}`` in its templates, :attr:`Message.markdown_breaks`), so a chat robot
that must split it splits between notices.
"""
from __future__ import annotations

import hashlib
import logging
import math
import re
import unicodedata
from collections import OrderedDict, abc
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, meta, select_autoescape

from shian.rules.config import Config
from shian.rules.families import RULES
from shian.rules.notice import PROGRAM_NAMES, SEVERITY_RANK, Notice
from shian.rules.params import RuleSpec

from . import catchup
from .channels import FULL_LABELS
from .dispatch import DELIVERY_FAILED
from .links import notice_page, public_url
from .message import BODIES, Message
from .resolved import RESOLVED
from .settings import Settings
from .stencil import Skeleton, Stencil, escaped, skeleton, token

log = logging.getLogger("shian.notifiers.render")

PACKAGED = Path(__file__).resolve().parent / "templates"
FALLBACK = "generic"
# Layouts with a subject of their own (else subject.txt): the catch-up summary, a late notice alone.
SUBJECTS = {"catch_up": "catch_up_subject.txt", "catch_up_notice": "catch_up_notice_subject.txt"}
NOTIFIER_RULES: dict[str, RuleSpec] = {DELIVERY_FAILED.id: DELIVERY_FAILED, RESOLVED.id: RESOLVED}
# Layouts whose subject, text and HTML are written from stencils (:mod:`.stencil`) when neither
# they nor a template they include is an office's own; ``mode`` is the one text they compare.
STENCILED = frozenset({"notice", "group"})
_LITERAL = frozenset({"mode"})
_STENCILS_KEPT = 2048
# ... and at most this weight of them: the items of their shapes' keys and the characters of
# their pieces. A digest's shape grows with its items, and its stencil with its text: 2,048 of
# them for departments' long digests held hundreds of megabytes in a long-running service.
_STENCILS_WEIGHT = 1_000_000
# New shapes of a layout checked against jinja2 before its stencils are trusted unchecked (a
# group's shapes are many: each item's rows and flags); one that differs ends its stencils.
_STENCILS_CHECKED = 32


def spec_of(rule: str, severity: str = "warning") -> RuleSpec:
    """The spec of a notice's rule — a rule family's, or one the notifiers raise — from which
    every message and page takes the notice's kind and name. A rule this version does not
    know (a notice from a newer one) is a 工作提示 if ``severity`` is info, else a 预警, has
    no name of its own and is worded by the generic template."""
    spec = RULES.get(rule) or NOTIFIER_RULES.get(rule)
    if spec is not None:
        return spec
    kind = "工作提示" if severity == "info" else "预警"
    return RuleSpec(rule, "town", "info" if severity == "info" else "warning", kind=kind, template=FALLBACK)


def rule_name(rule: str) -> str:
    """The rule's Chinese name (its spec's summary); its id when it has none."""
    return spec_of(rule).summary or rule


# The sentence that leads from the facts' summary into the facts block, per kind.
INTROS = {"预警": "现将有关情况通知如下：", "督办": "现予督办，有关情况如下：", "催报": "", "工作提示": ""}

CHANNEL_NAMES = FULL_LABELS  # a channel's full label (电子邮件), from its module
SEVERITY_NAMES = {"critical": "紧急", "warning": "警示", "info": "提示"}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SPACES = re.compile(r"[ \t\u3000]{2,}")


def one_line(text: str) -> str:
    """No control, format or line-separator character survives, so a name carrying
    ``\\r\\nBcc:`` cannot start a new mail header; runs of spaces shrink to one."""
    # printable (str.isprintable): no character of the categories "Other" or "Separator" but
    # the space, so none to replace; the common case, without a look-up per character. Line
    # breaks at the end (a template's last line) would become spaces that strip() removes.
    core = text.rstrip("\r\n")
    out = core if core.isprintable() else \
        "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in core)
    return _SPACES.sub(" ", out).strip()


# Where a notice begins in a group or digest: printed by the layouts as ``{{ cut }}`` at the start
# of its first line, taken out of the text after rendering and kept as an offset (:func:`_cuts`).
CUT = "\ue002"
_WORDINGS_KEPT = 4096  # notices whose wording is kept for their other recipients
# ... and at most this weight of them (:func:`_wording_weight`): a notice that lists every sample
# of a year (entity.repeat_offender) grows with the history, so 4,096 of them grew without end.
_WORDINGS_WEIGHT = 1_500_000
_MARKS = re.compile("[\ue000-\ue002]")
_UNCLEAN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ue000-\ue002]")  # what _CONTROL or _MARKS replace


class Fields(dict):  # type: ignore[type-arg]
    """A mapping a template reads as ``f.name``: jinja2 asks for an attribute first and only
    then for the key, so a plain dict raises (and catches) an AttributeError for every field a
    template prints; here the attribute is the key. A name that is a dict method (``items``)
    is the method, as for a plain dict; a missing one is undefined, as before."""
    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


_DICT_NAMES = frozenset(dir(Fields))  # attributes of the mapping itself (``items``): not its keys


class _Environment(Environment):
    """jinja2's environment, reading a :class:`Fields`' key (``f.entity``) at once: the same
    value as jinja2's own getattr (an attribute first, then the key), without two calls per
    field printed."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is Fields and attribute not in _DICT_NAMES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def _clean(value: Any) -> Any:
    """Event text is single-line data: a newline in an entity name would fake a row, and none of
    the renderer's own marks (a notice's start, a printed value's ends) may come from it."""
    t = type(value)
    if t is str or (t is not dict and t is not list and isinstance(value, str)):
        return _MARKS.sub("", _CONTROL.sub(" ", value)) if _UNCLEAN.search(value) else value
    if t is dict or (t is not list and isinstance(value, abc.Mapping)):
        return Fields({k: _clean(v) for k, v in value.items()})
    if t is list or t is tuple:
        return [_clean(v) for v in value]
    return value


# -- markdown cards (the robots) ---------------------------------------------------------------
# A card shows event text; it never reads it as markup. Every value a markdown template prints
# passes through md_text (the markdown environment's ``finalize``), so an entity named
# ``[点此签收](http://…)`` or ``<@userid>`` shows as written and links, mentions, tags and
# headings come only from the templates themselves. The characters WeCom's and DingTalk's
# markdown act on become their full-width forms rather than backslash escapes: neither robot
# documents backslash escapes, a renderer that ignored them would still draw ``\[…](…)`` as a
# link, and （）［］＜＞ read naturally in Chinese text. A value that begins a line cannot begin
# a list or a heading underline either (md_lines); one inside a line keeps its ``1.`` and ``-``.
_MD_CHARS = str.maketrans({
    "\\": "＼", "`": "｀", "*": "＊", "_": "＿", "~": "～", "|": "｜", "[": "［", "]": "］", "(": "（", ")": "）",
    "<": "＜", ">": "＞", "&": "＆", "#": "＃", "@": "＠",
})
_CODE_CHARS = str.maketrans({"`": "ˋ", "<": "＜", ">": "＞", "@": "＠", "&": "＆"})
_OPEN, _CLOSE = "\ue000", "\ue001"      # around each printed value while a card is rendered
_SENTINELS = re.compile("[\ue000\ue001]")
_MD_WWW = re.compile(r"(?i)\b(www)\.")
_MD_LIST = re.compile(r"([-+=])|(\d{1,9})\.(?=\s|$)")   # - + item, === underline, 1. item
_MD_CONTAINER = re.compile(r"(?:[-+*]|\d{1,9}[.)])[ \t]+|>[ \t]?")
_FULL_WIDTH = {"-": "－", "+": "＋", "=": "＝"}


class MdLiteral(str):
    """Markdown the product wrote, printed by a markdown template as it is (see :func:`in_code`)."""


def _md_chars(value: str) -> str:
    text = _MARKS.sub("", _CONTROL.sub(" ", value)).translate(_MD_CHARS)
    return _MD_WWW.sub(r"\1．", text.replace("://", "：//"))


def md_text(value: Any) -> Any:
    """A value printed into a markdown card, as text: none of ``\\ ` * _ ~ | [ ] ( ) < > & # @``
    nor a line break is left to act as markup, nor a ``scheme://`` or ``www.`` a renderer
    would link; it is marked so :func:`md_lines` can tell where it starts. Numbers and
    :class:`MdLiteral` pass unchanged."""
    if not isinstance(value, str) or isinstance(value, MdLiteral):
        return value
    return _OPEN + _md_chars(value) + _CLOSE


def in_code(value: Any) -> MdLiteral:
    """The content of a code span the template itself opens and closes (the ack command:
    ``{{ item.ack | in_code }}`` between backticks): kept as it is, to be copied, but for what
    could end the span or be read as a tag or mention (backtick, ``< > @ &``, line breaks)."""
    return MdLiteral(_MARKS.sub("", _CONTROL.sub(" ", str(value))).translate(_CODE_CHARS))


def _plain(value: Any) -> Any:
    """A value printed into plain text or HTML: a string keeps none of the renderer's marks."""
    if type(value) is str:  # the common case, without the two isinstance checks
        return _MARKS.sub("", value)
    return _MARKS.sub("", value) if isinstance(value, str) and not isinstance(value, MdLiteral) else value


def _md_line(line: str) -> str:
    if line.startswith(CUT):  # a notice begins here: the line is read after the mark
        return CUT + _md_line(line[len(CUT):])
    depth, i = 0, 0
    while i < len(line):
        ch = line[i]
        if ch in (_OPEN, _CLOSE):
            depth += 1 if ch == _OPEN else -1
        elif depth > 0 and not ch.isspace():  # a value begins the line's content: no marker
            rest = _SENTINELS.sub("", line[i:])
            m = _MD_LIST.match(rest)
            if m:
                at = m.start(1) if m.group(1) else m.end(2)
                rest = rest[:at] + _FULL_WIDTH.get(rest[at], "．") + rest[at + 1:]
            return _SENTINELS.sub("", line[:i]) + rest
        elif not ch.isspace():
            container = _MD_CONTAINER.match(line, i)  # the template's own "- " or "> "
            if container is None:
                break
            i = container.end()
            continue
        i += 1
    return _SENTINELS.sub("", line)


def md_lines(card: str) -> str:
    """A rendered card without the marks of :func:`md_text`: where a printed value begins a
    line's content (at its start, or after the template's own list or quote marker), its
    ``-`` / ``+`` / ``=`` or ``1.`` there becomes full-width, so event text cannot start a
    list or turn the line above into a heading."""
    return "\n".join(_md_line(line) for line in card.split("\n"))


def _when(value: Any) -> datetime | date | None:
    if value is None or value == "":
        return None
    if isinstance(value, (datetime, date)):
        return value
    text = str(value)
    try:
        return datetime.fromisoformat(text) if len(text) > 10 else date.fromisoformat(text)
    except ValueError:
        return None


def cn_date(value: Any) -> str:
    """2026年4月26日, in the notice's own offset (the configured timezone)."""
    d = _when(value)
    return f"{d.year}年{d.month}月{d.day}日" if d is not None else str(value or "")


def cn_datetime(value: Any) -> str:
    d = _when(value)
    if isinstance(d, datetime):
        return f"{d.year}年{d.month}月{d.day}日 {d:%H:%M}"
    return cn_date(value)


def cn_month(period: Any) -> str:
    text = str(period or "")
    if re.fullmatch(r"\d{4}-\d{2}", text):
        return f"{text[:4]}年{int(text[5:])}月"
    return text


def pct(value: Any, digits: int = 1) -> str:
    try:
        return f"{float(value) * 100:.{digits}f}%"
    except (TypeError, ValueError):
        return str(value)


def num(value: Any) -> str:
    """12.17 stays 12.17, 2.0 becomes 2."""
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e15 else str(value)
    return str(value)


def _span(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest}分钟"
    return f"{hours}小时" + (f"{rest}分" if rest else "")


def hours_cn(value: Any) -> str:
    """A number of hours as an office writes a time span: 2 → 2小时, 1.5 → 1小时30分,
    0.75 → 45分钟, 12.17 (hours rounded to two decimals) → 约12小时10分."""
    try:
        minutes = float(value) * 60
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(minutes) or minutes < 0:
        return str(value)
    whole = round(minutes)
    if whole == 0 < minutes:
        return "不到1分钟"
    return ("" if abs(minutes - whole) < 1e-6 else "约") + _span(whole)


def elapsed(start: Any, end: Any, hours: Any = None) -> str:
    """The time from ``start`` to ``end`` (two datetimes): 12小时10分, exact to the minute
    (约 when seconds were rounded away); from ``hours`` (:func:`hours_cn`) when either is missing."""
    a, b = _when(start), _when(end)
    if not isinstance(a, datetime) or not isinstance(b, datetime) or b < a:
        return hours_cn(hours) if hours is not None else ""
    seconds = (b - a).total_seconds()
    return ("" if seconds % 60 == 0 else "约") + _span(round(seconds / 60))


_TAG = re.compile(r"^(?:\s*【[^】]{0,12}】)+\s*")


def untagged(title: Any) -> str:
    """A notice's title without the bracketed tags the rules begin it with (【预警】, 【催办】…):
    a message names a notice's kind from its rule's spec, never from the title's own word."""
    return _TAG.sub("", str(title or ""))


def document(rule: str) -> str:
    """The kind of document a notice of ``rule`` is (预警通知, 督办通知 …), from its spec."""
    return spec_of(rule).document


# The levels a place name ends with; a unit named after its level (镇卫生院, 村卫生室) is that
# place's unit, a village is not (镇东村, 镇南社区 are names of their own).
_LEVELS = "镇乡村"
_PLACES_OF_THEIR_OWN = ("村", "社区", "居委会", "村委会")


def _join(prefix: str, name: str) -> str:
    """红河镇 + 镇卫生院 → 红河镇卫生院 (not 红河镇镇卫生院); 红河镇 + 镇东村 → 红河镇镇东村."""
    if prefix and name and prefix[-1] in _LEVELS and name[0] == prefix[-1] \
            and not name.endswith(_PLACES_OF_THEIR_OWN):
        return prefix + name[1:]
    return prefix + name


def placed(entity: Any, *places: Any) -> str:
    """红河镇 + 红河村 + entity, broad to narrow, stopping at the first place the entity's name
    already carries (红河镇中心学校食堂 needs no prefix, 坝心村张记豆腐坊 only the township), and
    never doubling a level (红河镇 + 镇卫生院 is 红河镇卫生院)."""
    name = str(entity or "")
    prefix = ""
    for p in places:
        if not p:
            continue
        if str(p) in name:
            break
        prefix = _join(prefix, str(p))
    return _join(prefix, name)


def _wording_weight(notice: Notice, wording: dict[str, Any]) -> int:
    """What a kept wording holds, in characters: its texts and rows, and the notice beside it
    (its event ids and facts, read as the characters of their values)."""
    texts = sum(len(wording[k]) for k in ("label", "detail", "lead", "action"))
    rows = sum(len(label) + len(value) for label, value in wording["rows"])
    return 256 + texts + rows + len(notice.title) + 20 * len(notice.event_ids) + _weight_of(notice.facts)


def _weight_of(value: Any) -> int:
    """The characters of a fact's value (a list or mapping: of its items), at least one each."""
    if isinstance(value, str):
        return len(value) or 1
    if isinstance(value, abc.Mapping):
        return sum(len(str(k)) + _weight_of(v) for k, v in value.items()) or 1
    if isinstance(value, (list, tuple)):
        return sum(_weight_of(v) for v in value) or 1
    return 8


def _rows(text: str) -> list[tuple[str, str]]:
    """The facts block, one ``标签：内容`` per line, as (label, value) pairs."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        label, sep, value = line.partition("：")
        out.append((label.strip(), value.strip()) if sep else ("", line))
    return out


def _para(text: str) -> str:
    return "".join(line.strip() for line in str(text).splitlines())


def _cuts(text: str) -> tuple[str, tuple[int, ...]]:
    """The text without its :data:`CUT` marks, and where each mark was (offsets in it)."""
    pieces = text.split(CUT)
    out, at = [pieces[0]], len(pieces[0])
    breaks = []
    for piece in pieces[1:]:
        if at:
            breaks.append(at)
        out.append(piece)
        at += len(piece)
    return "".join(out), tuple(dict.fromkeys(breaks))


def _tidy(text: str) -> str:
    """Plain text and markdown: no trailing blanks, at most one empty line in a row."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n") + "\n"


def group_ref(ids: Iterable[str]) -> str:
    return "g" + hashlib.sha256(",".join(sorted(ids)).encode("utf-8")).hexdigest()[:15]


def _highest(severities: Iterable[str]) -> str:
    return max(severities, key=lambda s: SEVERITY_RANK.get(s, 0), default="info")


@dataclass(frozen=True)
class Wording:
    """What a notice's messages say of it, for a page that shows it: the opening sentence, the
    facts as (label, content) rows, and what the recipients are asked to do."""
    lead: str
    rows: tuple[tuple[str, str], ...]
    action: str


@dataclass(frozen=True)
class Addressing:
    """Who a notice is from and to, as an office's document says it: ``issuer`` the department
    whose name it is signed with (落款; None: the system itself), ``main`` the departments it is
    addressed to (主送) and ``copies`` those that receive it for information (抄送)."""
    issuer: str | None
    main: tuple[str, ...]
    copies: tuple[str, ...]


def addressing(spec: RuleSpec, notice: Notice, config: Config) -> Addressing:
    """Who issues a notice and to whom; never a department to itself.

    - A 督办 and every county-level notice are issued by the county office (the level above the
      towns); a town-level 预警, 催报 or 工作提示 — one that asks the town office or a town
      department to chase a village or a business — comes from the system, as does a notice
      whose only recipient would be its issuer (a delivery failure, the county's own 工作提示)
      and the closing word (办结通报).
    - 主送: every recipient but the issuer; for one from the system, the departments responsible
      for the matter (routing), else the town office; the closing word to every recipient.
    - 抄送: the other recipients — the town office beside a routed department, the county office
      beside the departments it issued to (its copy comes from the system, in its name).
    """
    recipients = tuple(dict.fromkeys(notice.recipients))
    town_offices = {t.office for t in config.townships.values()}
    issuer: str | None = config.county.office if spec.kind == "督办" or notice.level == "county" else None
    if spec.id == RESOLVED.id or (issuer is not None and set(recipients) <= {issuer}):
        issuer = None
    others = tuple(r for r in recipients if r != issuer)
    main = others
    if issuer is None and spec.id != RESOLVED.id:
        main = tuple(r for r in others if r not in town_offices) or others
    return Addressing(issuer, main, tuple(r for r in recipients if r not in main))


@dataclass(frozen=True)
class _Stencils:
    """A layout's subject, text and HTML for one shape of context (:mod:`.stencil`)."""
    subject: Stencil
    text: Stencil | None
    html: Stencil | None

    @property
    def weight(self) -> int:
        """The characters of its pieces (what it holds, for :data:`_STENCILS_WEIGHT`)."""
        return sum(sum(map(len, s.pieces)) + len(s.slots) for s in (self.subject, self.text, self.html) if s is not None)

    def fill(self, values: list[str]) -> dict[str, Any]:
        """What :meth:`Renderer._rendered` makes of a context of this shape with these texts."""
        subject = one_line(self.subject.fill(values))
        values = [*values, subject]
        text, breaks = _cuts(_tidy(self.text.fill(values))) if self.text is not None else ("", ())
        html = self.html.fill(values, escaped(values) if self.html.escapes else ()) if self.html is not None else ""
        return {"subject": subject, "text": text, "html": html, "markdown": "", "text_breaks": breaks,
                "markdown_breaks": ()}


class Renderer:
    """Renders notices for one recipient department at a time (the salutation, the 主送 / 抄送
    lines and the ack command name it); every channel gets the same strings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = settings.config
        self.base = public_url(self.config.service)
        loaders: list[FileSystemLoader] = [FileSystemLoader(str(PACKAGED))]
        if settings.templates is not None:
            loaders.insert(0, FileSystemLoader(str(settings.templates)))
        loader = ChoiceLoader(loaders)
        self.env = self._environment(loader, finalize=_plain)
        # The robots' cards: every printed value is text (md_text), whatever the template.
        self.md_env = self._environment(loader, finalize=md_text)
        self.md_env.filters["in_code"] = in_code
        # The oldest one makes room for a new one: the live heap stays level (a dict cleared and
        # built up again made a sawtooth of tens of MB in a long run).
        self._wordings: OrderedDict[tuple[str, str, str], tuple[Notice, dict[str, Any], int]] = OrderedDict()
        self._wordings_weight = 0  # of the wordings kept (:data:`_WORDINGS_WEIGHT`)
        self._recipient_named: dict[str, bool] = {}
        self._stencils: dict[tuple[Any, ...], _Stencils] = {}
        self._packaged: dict[str, bool] = {}
        self._checked: dict[str, int] = {}
        self._sighted: set[tuple[Any, ...]] = set()  # shapes seen once, without a stencil yet
        self._stencils_weight = 0  # of the stencils and shapes kept (:data:`_STENCILS_WEIGHT`)

    def _environment(self, loader: ChoiceLoader, **options: Any) -> Environment:
        """Templates of one kind of output: ``.html`` ones autoescaped, the others as written
        (plain text) or through ``options['finalize']`` (markdown)."""
        env = _Environment(
            loader=loader,
            auto_reload=False,  # read once per process: no stat of the file for every message
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            **options,
        )
        env.filters.update(
            cn_date=cn_date, cn_datetime=cn_datetime, cn_month=cn_month, pct=pct, num=num, placed=placed,
            hours_cn=hours_cn, elapsed=elapsed, untagged=untagged, document=document,
            dept=self.dept_name, program=lambda p: PROGRAM_NAMES.get(p, p),
            channel=lambda c: CHANNEL_NAMES.get(c, c),
            rule_name=rule_name,
            join_cn=lambda xs, sep="、": sep.join(map(str, xs or ())),
        )
        env.globals["cut"] = MdLiteral(CUT)
        return env

    def load_templates(self) -> int:
        """Reads and compiles every template now (each is otherwise compiled on its first
        use, then kept): a long-running sender calls this at start so that its first messages
        do not pay for it. Returns how many were loaded."""
        names = self.env.list_templates()
        for name in names:
            (self.md_env if name.endswith(".md") else self.env).get_template(name)
        return len(names)

    def dept_name(self, dept_id: str) -> str:
        d = self.config.departments.get(dept_id)
        return d.name if d is not None else str(dept_id)

    def system(self) -> str:
        """The system's own name, for what no office issues: 西平县食品安全预警系统."""
        return f"{self.config.county.name}食品安全预警系统" if self.config.county.name else "食品安全预警系统"

    def _addressed(self, notice: Notice, spec: RuleSpec, dept_id: str) -> dict[str, Any]:
        """This recipient's copy: who signs it (the system for a copy in the recipient's own
        name), whether it is a 抄送 and what it says so, and the 主送 / 抄送 lines."""
        a = addressing(spec, notice, self.config)
        own = a.issuer == dept_id
        signer = self.system() if own or a.issuer is None else self.dept_name(a.issuer)
        main = [self.dept_name(d) for d in a.main]
        copy = dept_id in a.copies
        note = ""
        if copy:
            sent = "已由系统以你单位名义主送" if own else "主送"
            note = f"本{spec.document}{sent}{'、'.join(main)}，现抄送你单位，原文如下。"
        sent_by = "系统以你单位名义发出" if own else f"{signer}发出"
        return {"issuer": signer, "sent_by": sent_by, "is_copy": copy, "by_system": a.issuer is None, "copy_note": note, "main_names": main,
                "copy_names": [self.dept_name(d) for d in a.copies], "show_roles": bool(a.copies) or len(a.main) > 1}

    def _context(self, township: str, dept_id: str) -> dict[str, Any]:
        """What a family template may say about the places and offices (``c``)."""
        office = self.config.townships[township].office if township in self.config.townships else None
        return {
            "recipient": self.dept_name(dept_id),
            "dept_id": dept_id,
            "township": township,
            "town_office": self.dept_name(office) if office else self.dept_name(self.config.county.office),
            "county_office": self.dept_name(self.config.county.office),
            "county": self.config.county.name,
        }

    def _item(self, notice: Notice, dept_id: str) -> dict[str, Any]:
        """Everything the layouts need about one notice: its kind and name from its rule's spec,
        its wording from the spec's template (whose ``label``, if an office's own template sets
        one, replaces the name in this office's messages), its addressing for this recipient.
        Templates see the notice as its §4 JSON, cleaned of control characters (``n``, its facts
        as ``f``). The wording is the same for every recipient (:meth:`_wording_of`), made once."""
        spec = spec_of(notice.rule, notice.severity)
        return {
            **self._wording_of(notice, spec, dept_id),
            "ack": f"shian ack {notice.id} --by {dept_id}",
            "close": f"shian ack {notice.id} --by {dept_id} --action 办结",
            **self._addressed(notice, spec, dept_id),
        }

    def _wording_of(self, notice: Notice, spec: RuleSpec, dept_id: str) -> dict[str, Any]:
        """The part of a notice's item that is the same for all its recipients, rendered once
        per notice and reused for each of them (and each channel): the family template's
        wording, unless the template names the recipient (``c.recipient``, ``c.dept_id``: then
        once per recipient)."""
        key = (notice.id, spec.template, dept_id if self._names_recipient(f"{spec.template}.txt") else "")
        known = self._wordings.get(key)
        if known is not None and known[0] == notice:
            return known[1]
        wording = self._word(notice, spec, dept_id)
        self._keep_wording(key, notice, wording)
        return wording

    def _keep_wording(self, key: tuple[str, str, str], notice: Notice, wording: dict[str, Any]) -> None:
        """Keeps a notice's wording; the oldest ones make room for it (count and weight)."""
        if key in self._wordings:
            self._wordings_weight -= self._wordings.pop(key)[2]
        weight = _wording_weight(notice, wording)
        while self._wordings and (len(self._wordings) >= _WORDINGS_KEPT
                                  or self._wordings_weight + weight > _WORDINGS_WEIGHT):
            self._wordings_weight -= self._wordings.popitem(last=False)[1][2]
        self._wordings[key] = (notice, wording, weight)
        self._wordings_weight += weight

    def _word(self, notice: Notice, spec: RuleSpec, dept_id: str) -> dict[str, Any]:
        """The wording of ``notice`` for ``dept_id`` (see :meth:`_wording_of`), made now."""
        n = _clean(notice.to_json())
        context = {"n": n, "f": n["facts"], "c": Fields(self._context(n["township"], dept_id))}
        module = self.env.get_template(f"{spec.template}.txt").make_module(context)

        def get(name: str) -> str:
            return str(getattr(module, name, "") or "")

        label = one_line(get("label")) or spec.summary or one_line(untagged(n["title"])) or notice.rule
        page = notice_page(self.base, str(n["facts"].get("notice_id")) if spec.id == RESOLVED.id else notice.id)
        by_system = addressing(spec, notice, self.config).issuer is None
        # Only an office 督办s (现予督办); what the system itself sends tells (现将…通知如下).
        intro = INTROS["预警" if spec.kind == "督办" and by_system else spec.kind]
        wording = {
            "id": notice.id,
            "rule": notice.rule,
            "severity": notice.severity,
            "critical": notice.severity == "critical",
            "level": notice.level,
            "township": n["township"],
            "kind": spec.document,
            "label": label,
            "detail": one_line(get("detail")),
            "lead": _para(get("lead")),
            "intro": intro,
            "rows": _rows(get("facts")),
            "action": _para(get("action")),
            "at": n["at"],
            "date": cn_date(n["at"]),
            "due": n["due"],
            "due_date": cn_date(n["due"]) if n["due"] else "",
            "url": MdLiteral(page) if page else "",
            "needs_ack": spec.id != RESOLVED.id,
        }
        return wording

    def _names_recipient(self, template: str) -> bool:
        """Whether a family template's source names the recipient (its wording then differs
        per recipient)."""
        known = self._recipient_named.get(template)
        if known is None:
            source = self.env.loader.get_source(self.env, template)[0] if self.env.loader else ""
            known = self._recipient_named[template] = "recipient" in source or "dept_id" in source
        return known

    def wording(self, notice: Notice) -> Wording:
        """The notice's wording as its messages have it (as to its first recipient)."""
        item = self._item(notice, notice.recipients[0] if notice.recipients else self.config.county.office)
        return Wording(item["lead"], tuple(item["rows"]), item["action"])

    def _render(self, layout: str, subject_vars: dict[str, Any], ctx: dict[str, Any],
                bodies: Collection[str] = BODIES) -> dict[str, Any]:
        """The subject and the bodies of a layout (those in ``bodies``, the others empty), with
        where each notice begins: from the layout's stencils when it has them, else jinja2."""
        out = self._stenciled(layout, subject_vars, ctx, bodies) if layout in STENCILED else None
        if out is None:
            return self._rendered(layout, subject_vars, ctx, bodies)
        if "markdown" in bodies:
            out["markdown"], out["markdown_breaks"] = self._markdown(layout, out["subject"], ctx)
        return out

    def _rendered(self, layout: str, subject_vars: dict[str, Any], ctx: dict[str, Any],
                  bodies: Collection[str]) -> dict[str, Any]:
        """:meth:`_render` by jinja2."""
        subject = one_line(self.env.get_template(SUBJECTS.get(layout, "subject.txt")).render(**subject_vars))
        out: dict[str, Any] = {"subject": subject, "text": "", "html": "", "markdown": "",
                               "text_breaks": (), "markdown_breaks": ()}
        if "text" in bodies:
            out["text"], out["text_breaks"] = _cuts(
                _tidy(self.env.get_template(f"{layout}.txt").render(subject=subject, **ctx)))
        if "markdown" in bodies:
            out["markdown"], out["markdown_breaks"] = self._markdown(layout, subject, ctx)
        if "html" in bodies:
            out["html"] = self.env.get_template(f"{layout}.html").render(subject=subject, **ctx)
        return out

    def _markdown(self, layout: str, subject: str, ctx: dict[str, Any]) -> tuple[str, tuple[int, ...]]:
        return _cuts(_tidy(md_lines(self.md_env.get_template(f"{layout}.md").render(subject=subject, **ctx))))

    def _stenciled(self, layout: str, subject_vars: dict[str, Any], ctx: dict[str, Any],
                   bodies: Collection[str]) -> dict[str, Any] | None:
        """The subject, text and HTML of a packaged layout from its stencils for this shape of
        context (made on its second sight; the first :data:`_STENCILS_CHECKED` stencils of a
        layout are checked against jinja2, and one that differs ends the layout's stencils);
        the markdown is left to the caller. None: rendered by jinja2 (an office's own layout,
        a context no stencil can stand for, a shape seen for the first time)."""
        if not self._is_packaged(layout):
            return None
        both = {"v": subject_vars, "c": ctx}
        sk = skeleton(both, literal=_LITERAL)
        if sk is None:
            return None
        wanted = tuple(b for b in ("text", "html") if b in bodies)
        key = (layout, wanted, sk.key)
        made = self._stencils.get(key)
        if made is not None:
            return made.fill(sk.values)
        if len(self._stencils) + len(self._sighted) >= _STENCILS_KEPT or self._stencils_weight >= _STENCILS_WEIGHT:
            self._stencils.clear()
            self._sighted.clear()
            self._stencils_weight = 0
        if key not in self._sighted:  # a shape seen once may never come again (a big group's)
            self._sighted.add(key)
            self._stencils_weight += len(sk.key)
            return None
        self._sighted.discard(key)
        full = skeleton(both, literal=_LITERAL, tokens=True)
        assert full is not None
        made = self._stencils[key] = self._stencils_for(layout, wanted, full)
        self._stencils_weight += made.weight
        checked = self._checked.get(layout, 0)
        if checked >= _STENCILS_CHECKED:
            return made.fill(sk.values)
        real = self._rendered(layout, subject_vars, ctx, wanted)
        if made.fill(sk.values) != real:
            log.warning("layout %s: its stencils do not write what jinja2 writes (shape %r); rendered by jinja2 from now on",
                        layout, sk.key)
            self._packaged[layout] = False
            self._stencils = {k: v for k, v in self._stencils.items() if k[0] != layout}
        else:
            self._checked[layout] = checked + 1
        return real

    def _stencils_for(self, layout: str, wanted: tuple[str, ...], sk: Skeleton) -> _Stencils:
        v, c = sk.tokens["v"], sk.tokens["c"]
        subject = token(len(sk.values))  # the one-line subject, a text of its own for the bodies
        bodies = {b: Stencil.of(self.env.get_template(f"{layout}.{'txt' if b == 'text' else b}").render(
            subject=subject, **c)) for b in wanted}
        return _Stencils(Stencil.of(self.env.get_template(SUBJECTS.get(layout, "subject.txt")).render(**v)),
                         bodies.get("text"), bodies.get("html"))

    def _is_packaged(self, layout: str) -> bool:
        """Whether the layout's subject, text and HTML templates, and every template they
        include or extend, are the packaged ones (an office's own may compare texts)."""
        known = self._packaged.get(layout)
        if known is None:
            own = self.settings.templates
            names: set[str | None] = set()
            todo: list[str | None] = [SUBJECTS.get(layout, "subject.txt"), f"{layout}.txt", f"{layout}.html"]
            while todo:
                name = todo.pop()
                if name in names or name is None:  # None: a template named at run time
                    names.add(name)
                    continue
                names.add(name)
                source = self.env.loader.get_source(self.env, name)[0] if self.env.loader else ""
                todo += meta.find_referenced_templates(self.env.parse(source))
            known = self._packaged[layout] = None not in names and (
                own is None or not any((Path(own) / n).exists() for n in names if n is not None))
        return known

    def notice(self, notice: Notice, dept_id: str, layout: str = "notice", *,
               bodies: Collection[str] = BODIES) -> Message:
        """One notice for one recipient (``bodies``: only those, for a channel that sends no other)."""
        item = self._item(notice, dept_id)
        ctx = {"item": item, "recipient": self.dept_name(dept_id), "dept_id": dept_id}
        rendered = self._render(layout, {"mode": "notice", "item": item}, ctx, bodies)
        return Message(
            ref=item["id"], notice_ids=(item["id"],), dept=dept_id, severity=item["severity"], **rendered,
            headers=(("X-Shian-Ref", item["id"]), ("X-Shian-Notice-Ids", item["id"]), ("X-Shian-Rule", item["rule"])),
        )

    def group(self, notices: list[Notice], dept_id: str, *, bodies: Collection[str] = BODIES) -> Message:
        """Notices of one rule and township in one message; a group of one is that notice."""
        if not notices:
            raise ValueError("group() needs at least one notice")
        if len({(n.rule, n.township) for n in notices}) > 1:
            raise ValueError("group() takes notices of one rule and one township")
        if len(notices) == 1:
            return self.notice(notices[0], dept_id, bodies=bodies)
        items = [self._item(n, dept_id) for n in notices]
        ids = tuple(i["id"] for i in items)
        ref = group_ref(ids)
        first = items[0]
        latest = max(items, key=lambda i: (str(i["at"]), i["id"]))
        signers = {i["issuer"] for i in items}
        notes = {i["copy_note"] for i in items}
        roles = {(tuple(i["main_names"]), tuple(i["copy_names"])) for i in items}
        ctx = {
            "items": items, "ref": ref, "kind": first["kind"], "label": first["label"],
            "township": first["township"], "critical": any(i["critical"] for i in items),
            "issuer": signers.pop() if len(signers) == 1 else self.system(),
            "is_copy": all(i["is_copy"] for i in items), "copy_note": notes.pop() if len(notes) == 1 else "",
            "roles": first if len(roles) == 1 else None,
            "date": latest["date"], "recipient": self.dept_name(dept_id), "dept_id": dept_id,
        }
        rendered = self._render("group", dict(ctx, mode="group"), ctx, bodies)
        return Message(
            ref=ref, notice_ids=ids, dept=dept_id, severity=_highest(i["severity"] for i in items), **rendered,
            headers=(("X-Shian-Ref", ref), ("X-Shian-Notice-Ids", ",".join(ids)), ("X-Shian-Rule", first["rule"])),
        )

    def digest(self, dept_id: str, day: date, notices: list[Notice], open_deadlines: list[Notice]) -> Message:
        """The day's notices and the deadlines still ahead, for one office."""
        today = sorted((self._item(n, dept_id) for n in notices), key=lambda i: (str(i["at"]), i["id"]))
        pending = sorted((self._item(n, dept_id) for n in open_deadlines), key=lambda i: (str(i["due"]), i["id"]))
        for i in pending:
            due = _when(i["due"])
            i["days_left"] = ((due.date() if isinstance(due, datetime) else due) - day).days if due else None
        ids = tuple(dict.fromkeys([i["id"] for i in today] + [i["id"] for i in pending]))
        ref = f"digest-{dept_id}-{day.isoformat()}"
        ctx = {
            "today": today, "pending": pending, "ref": ref, "day": cn_date(day), "system": self.system(),
            "recipient": self.dept_name(dept_id), "dept_id": dept_id, "home": MdLiteral(self.base or ""),
        }
        rendered = self._render("digest", dict(ctx, mode="digest"), ctx)
        return Message(
            ref=ref, notice_ids=ids, dept=dept_id, severity="info", **rendered,
            headers=(("X-Shian-Ref", ref), ("X-Shian-Notice-Ids", ",".join(ids))),
        )

    def drill(self, dept_id: str, channel: str, at: datetime) -> Message:
        """A fire drill's message (``shian notify test``): it asks nothing of the department, says
        over which channel it came and when, and is no notice (no notice id, nothing to sign for)."""
        dept, label = self.dept_name(dept_id), CHANNEL_NAMES.get(channel, channel)
        ref = f"drill-{dept_id}-{channel}-{at:%Y%m%d%H%M%S}"
        when = cn_datetime(at.isoformat(timespec="seconds"))
        lines = [f"这是{self.system()}发出的测试消息，用于确认{dept}能经{label}收到食品安全预警通知。"
                 "收到本消息即说明该渠道畅通，无需签收或回复。",
                 f"发送时间：{when}", f"测试编号：{ref}"]
        if self.base:
            lines.append(f"系统地址：{self.base}")
        subject = one_line(f"【通知渠道测试】{dept}（{label}）{when}")
        text = "通知渠道测试\n\n" + f"{dept}：\n" + "".join(f"　　{x}\n" for x in lines) \
            + f"\n{self.system()}\n{cn_date(at.date())}\n"
        md = [f"### 通知渠道测试（{_md_chars(label)}）", f"**{_md_chars(dept)}：**"] + [_md_chars(x) for x in lines]
        markdown = "\n\n".join(md + [f"{_md_chars(self.system())}　{cn_date(at.date())}"]) + "\n"
        html = self.env.from_string(
            '{% extends "base.html" %}{% block body %}<h1>通知渠道测试</h1><p class="to">{{ dept }}：</p>'
            '{% for x in lines %}<p class="para">{{ x }}</p>{% endfor %}'
            '<p class="sign">{{ system }}<br>{{ day }}</p>{% endblock %}'
        ).render(subject=subject, dept=dept, lines=lines, system=self.system(), day=cn_date(at.date()))
        return Message(ref=ref, notice_ids=(), dept=dept_id, severity="info", subject=subject, text=text,
                       html=html, markdown=markdown, headers=(("X-Shian-Ref", ref), ("X-Shian-Drill", channel)))

    def catch_up(self, notices: list[Notice], dept_id: str, *, bodies: Collection[str] = BODIES) -> Message:
        """补发汇总: the late notices for one office (:mod:`shian.notifiers.catchup`), by month
        and rule, one line each; a late critical notice, which always goes alone, is the notice
        itself under a 补发 note (its time, and that its deadline has passed, if it has one)."""
        if not notices:
            raise ValueError("catch_up() needs at least one notice")
        if len(notices) == 1 and notices[0].severity == "critical":
            return self.notice(notices[0], dept_id, "catch_up_notice", bodies=bodies)
        items = {n.id: self._item(n, dept_id) for n in notices}
        months = []
        for period, rules in catchup.sections(notices, self.config.tz):
            groups = [{"rule": rule, "label": items[ns[0].id]["label"], "kind": items[ns[0].id]["kind"],
                       "count": len(ns), "notices": [items[n.id] for n in ns]} for rule, ns in rules]
            months.append({"period": period, "month": cn_month(period), "rules": groups,
                           "count": sum(g["count"] for g in groups)})
        ordered = [i for m in months for g in m["rules"] for i in g["notices"]]
        ids = tuple(i["id"] for i in ordered)
        ref = "c" + group_ref(ids)[1:]
        ats = sorted(str(i["at"]) for i in ordered)
        towns = {i["township"] for i in ordered}
        county = len(towns) > 1 or any(i["level"] == "county" for i in ordered)
        ctx = {
            "months": months, "total": len(ordered), "ref": ref, "first": cn_date(ats[0]), "last": cn_date(ats[-1]),
            "issuer": self.dept_name(self.config.county.office) if county and dept_id != self.config.county.office
            else self.system(),  # never the recipient itself (see addressing)
            "date": cn_date(ats[-1]),
            "recipient": self.dept_name(dept_id), "dept_id": dept_id,
        }
        rendered = self._render("catch_up", ctx, ctx, bodies)
        return Message(
            ref=ref, notice_ids=ids, dept=dept_id, severity=_highest(i["severity"] for i in ordered), **rendered,
            headers=(("X-Shian-Ref", ref), ("X-Shian-Notice-Ids", ",".join(ids))),
        )
