"""The fast path of time parsing (``parse_local``) gives exactly what ``parse_time`` gives:
the same aware datetime for every text it takes, the same error words for every text it
refuses."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from shian.rules.timeutil import cn_date, parse_local, parse_time

TZ = ZoneInfo("Asia/Shanghai")
BASE = "2026-03-15T11:30:45"


def outcome(parse, text: str) -> tuple[str, object]:
    try:
        return "ok", parse(text, TZ)
    except ValueError as e:
        return "error", str(e)


def test_every_one_character_change_of_a_local_time_reads_alike() -> None:
    """Each position of YYYY-MM-DDTHH:MM:SS replaced by any ASCII or a few other characters."""
    for pos in range(len(BASE)):
        for ch in [*map(chr, range(128)), "２", "٣", "\u00a0", "\ud800"]:
            text = BASE[:pos] + ch + BASE[pos + 1:]
            assert outcome(parse_local, text) == outcome(parse_time, text), text


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="0123456789-T:+Z. ", min_size=17, max_size=21))
def test_time_like_texts_read_alike(text: str) -> None:
    """Texts of time characters around the fast path's length: same datetime or same words."""
    assert outcome(parse_local, text) == outcome(parse_time, text)


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 99), st.integers(0, 99),
       st.integers(0, 99))
def test_dates_that_do_or_do_not_exist_read_alike(y: int, mo: int, d: int, h: int, mi: int, s: int) -> None:
    """Out-of-range months, days, hours and seconds (31 February, 24:00, :60) are refused alike."""
    text = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
    assert outcome(parse_local, text) == outcome(parse_time, text)


@given(st.dates(min_value=date(1000, 1, 1)), st.booleans())
@settings(max_examples=300, deadline=None)
def test_cn_date_writes_what_strftime_wrote(day: date, aware: bool) -> None:
    """A title's date (cn_date) is the text ``%Y年%-m月%-d日`` gave, of a date or a datetime."""
    value = datetime(day.year, day.month, day.day, 23, 59, tzinfo=TZ) if aware else day
    assert cn_date(value) == f"{value:%Y年%-m月%-d日}"
