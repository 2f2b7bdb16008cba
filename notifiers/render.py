"""Chinese notices (预警通知 / 催报通知 / 督办通知 / 工作提示) rendered from §4 notice dicts.

The wording lives in jinja2 templates (packaged flat in ``templates/``; a file of the same name
in ``notifiers.templates`` replaces the packaged one), so an office can adjust it without code.
This module decides what the templates cannot be trusted with: who issues a notice, the
delivery ref, a subject that is always one line, and markdown cards whose every printed value
is text (:func:`md_text`), so links, mentions and headings come from the templates alone. The
kind of notice and the rule's name come from the rule's :class:`~shian.rules.params.RuleSpec`
(:func:`spec_of`), as on every page. Output depends only on the notices and the config (no
current time), so a redelivery renders the same bytes.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable, Mapping

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from shian.rules.families import RULES
from shian.rules.notice import PROGRAM_NAMES, SEVERITY_RANK, Notice
from shian.rules.params import RuleSpec

from . import catchup
from .channels import FULL_LABELS
from .dispatch import DELIVERY_FAILED
from .message import Message
from .settings import Settings

PACKAGED = Path(__file__).resolve().parent / "templates"
FALLBACK = "generic"
# Layouts with a subject of their own (else subject.txt): the catch-up summary, a late notice alone.
SUBJECTS = {"catch_up": "catch_up_subject.txt", "catch_up_notice": "catch_up_notice_subject.txt"}
NOTIFIER_RULES: dict[str, RuleSpec] = {DELIVERY_FAILED.id: DELIVERY_FAILED}


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
    out = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text)
    return _SPACES.sub(" ", out).strip()


def _clean(value: Any) -> Any:
    """Event text is single-line data: a newline in an entity name would fake a row."""
    if isinstance(value, str):
        return _CONTROL.sub(" ", value)
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
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
    text = _SENTINELS.sub("", _CONTROL.sub(" ", value)).translate(_MD_CHARS)
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
    return MdLiteral(_SENTINELS.sub("", _CONTROL.sub(" ", str(value))).translate(_CODE_CHARS))


def _md_line(line: str) -> str:
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


def placed(entity: Any, *places: Any) -> str:
    """红河镇 + 红河村 + entity, broad to narrow, stopping at the first place the entity's name
    already carries (红河镇中心学校食堂 needs no prefix, 坝心村张记豆腐坊 only the township)."""
    name = str(entity or "")
    prefix = ""
    for p in places:
        if not p:
            continue
        if str(p) in name:
            break
        prefix += str(p)
    return prefix + name


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


class Renderer:
    """Renders notices for one recipient department at a time (the salutation and the ack
    command name it); every channel gets the same strings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = settings.config
        loaders: list[FileSystemLoader] = [FileSystemLoader(str(PACKAGED))]
        if settings.templates is not None:
            loaders.insert(0, FileSystemLoader(str(settings.templates)))
        loader = ChoiceLoader(loaders)
        self.env = self._environment(loader)
        # The robots' cards: every printed value is text (md_text), whatever the template.
        self.md_env = self._environment(loader, finalize=md_text)
        self.md_env.filters["in_code"] = in_code

    def _environment(self, loader: ChoiceLoader, **options: Any) -> Environment:
        """Templates of one kind of output: ``.html`` ones autoescaped, the others as written
        (plain text) or through ``options['finalize']`` (markdown)."""
        env = Environment(
            loader=loader,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            **options,
        )
        env.filters.update(
            cn_date=cn_date, cn_datetime=cn_datetime, cn_month=cn_month, pct=pct, num=num, placed=placed,
            dept=self.dept_name, program=lambda p: PROGRAM_NAMES.get(p, p),
            channel=lambda c: CHANNEL_NAMES.get(c, c),
            rule_name=rule_name,
            join_cn=lambda xs, sep="、": sep.join(map(str, xs or ())),
        )
        return env

    def dept_name(self, dept_id: str) -> str:
        d = self.config.departments.get(dept_id)
        return d.name if d is not None else str(dept_id)

    def issuer(self, township: str, level: str) -> str:
        """County-level notices come from the county office, town-level ones from the
        township's office."""
        town = self.config.townships.get(township)
        if level == "county" or town is None:
            return self.dept_name(self.config.county.office)
        return self.dept_name(town.office)

    def _item(self, notice: Notice, dept_id: str) -> dict[str, Any]:
        """Everything the layouts need about one notice: its kind and name from its rule's spec,
        its wording from the spec's template (whose ``label``, if an office's own template sets
        one, replaces the name in this office's messages). Templates see the notice as its §4
        JSON, cleaned of control characters (``n``, its facts as ``f``)."""
        n = _clean(notice.to_json())
        spec = spec_of(notice.rule, notice.severity)
        township = n["township"]
        office = self.config.townships[township].office if township in self.config.townships else None
        c = {
            "recipient": self.dept_name(dept_id),
            "dept_id": dept_id,
            "township": township,
            "town_office": self.dept_name(office) if office else self.dept_name(self.config.county.office),
            "county_office": self.dept_name(self.config.county.office),
            "county": self.config.county.name,
        }
        module = self.env.get_template(f"{spec.template}.txt").make_module({"n": n, "f": n["facts"], "c": c})

        def get(name: str) -> str:
            return str(getattr(module, name, "") or "")

        label = one_line(get("label")) or spec.summary or one_line(n["title"]) or notice.rule
        return {
            "id": notice.id,
            "rule": notice.rule,
            "severity": notice.severity,
            "critical": notice.severity == "critical",
            "level": notice.level,
            "township": township,
            "kind": spec.document,
            "label": label,
            "detail": one_line(get("detail")),
            "lead": _para(get("lead")),
            "intro": INTROS[spec.kind],
            "rows": _rows(get("facts")),
            "action": _para(get("action")),
            "at": n["at"],
            "date": cn_date(n["at"]),
            "due": n["due"],
            "due_date": cn_date(n["due"]) if n["due"] else "",
            "issuer": self.issuer(township, notice.level),
            "others": [self.dept_name(r) for r in notice.recipients if r != dept_id],
            "ack": f"shian ack {notice.id} --by {dept_id}",
            "close": f"shian ack {notice.id} --by {dept_id} --action 办结",
        }

    def _render(self, layout: str, subject_vars: dict[str, Any], **ctx: Any) -> tuple[str, str, str, str]:
        subject = one_line(self.env.get_template(SUBJECTS.get(layout, "subject.txt")).render(**subject_vars))
        text = _tidy(self.env.get_template(f"{layout}.txt").render(subject=subject, **ctx))
        markdown = _tidy(md_lines(self.md_env.get_template(f"{layout}.md").render(subject=subject, **ctx)))
        html = self.env.get_template(f"{layout}.html").render(subject=subject, **ctx)
        return subject, text, html, markdown

    def notice(self, notice: Notice, dept_id: str, layout: str = "notice") -> Message:
        item = self._item(notice, dept_id)
        subject, text, html, markdown = self._render(
            layout, {"mode": "notice", "item": item}, item=item, recipient=self.dept_name(dept_id), dept_id=dept_id)
        return Message(
            ref=item["id"], notice_ids=(item["id"],), dept=dept_id, severity=item["severity"],
            subject=subject, text=text, html=html, markdown=markdown,
            headers=(("X-Shian-Ref", item["id"]), ("X-Shian-Notice-Ids", item["id"]), ("X-Shian-Rule", item["rule"])),
        )

    def group(self, notices: list[Notice], dept_id: str) -> Message:
        """Notices of one rule and township in one message; a group of one is that notice."""
        if not notices:
            raise ValueError("group() needs at least one notice")
        if len({(n.rule, n.township) for n in notices}) > 1:
            raise ValueError("group() takes notices of one rule and one township")
        if len(notices) == 1:
            return self.notice(notices[0], dept_id)
        items = [self._item(n, dept_id) for n in notices]
        ids = tuple(i["id"] for i in items)
        ref = group_ref(ids)
        first = items[0]
        latest = max(items, key=lambda i: (str(i["at"]), i["id"]))
        issuer = self.issuer(first["township"], "county" if any(i["level"] == "county" for i in items) else "town")
        ctx = {
            "items": items, "ref": ref, "kind": first["kind"], "label": first["label"],
            "township": first["township"], "critical": any(i["critical"] for i in items),
            "issuer": issuer, "date": latest["date"], "recipient": self.dept_name(dept_id), "dept_id": dept_id,
        }
        subject, text, html, markdown = self._render("group", dict(ctx, mode="group"), **ctx)
        return Message(
            ref=ref, notice_ids=ids, dept=dept_id, severity=_highest(i["severity"] for i in items),
            subject=subject, text=text, html=html, markdown=markdown,
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
            "today": today, "pending": pending, "ref": ref, "day": cn_date(day),
            "recipient": self.dept_name(dept_id), "dept_id": dept_id,
        }
        subject, text, html, markdown = self._render("digest", dict(ctx, mode="digest"), **ctx)
        return Message(
            ref=ref, notice_ids=ids, dept=dept_id, severity="info",
            subject=subject, text=text, html=html, markdown=markdown,
            headers=(("X-Shian-Ref", ref), ("X-Shian-Notice-Ids", ",".join(ids))),
        )

    def catch_up(self, notices: list[Notice], dept_id: str) -> Message:
        """补发汇总: the late notices for one office (:mod:`shian.notifiers.catchup`), by month
        and rule, one line each; a late critical notice, which always goes alone, is the notice
        itself under a 补发 note (its time, and that its deadline has passed, if it has one)."""
        if not notices:
            raise ValueError("catch_up() needs at least one notice")
        if len(notices) == 1 and notices[0].severity == "critical":
            return self.notice(notices[0], dept_id, "catch_up_notice")
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
            "issuer": self.issuer(min(towns), "county" if county else "town"), "date": cn_date(ats[-1]),
            "recipient": self.dept_name(dept_id), "dept_id": dept_id,
        }
        subject, text, html, markdown = self._render("catch_up", ctx, **ctx)
        return Message(
            ref=ref, notice_ids=ids, dept=dept_id, severity=_highest(i["severity"] for i in ordered),
            subject=subject, text=text, html=html, markdown=markdown,
            headers=(("X-Shian-Ref", ref), ("X-Shian-Notice-Ids", ",".join(ids))),
        )
