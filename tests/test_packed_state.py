"""The compact forms of long-kept state give back exactly what they were made from: a time as
its wall-clock number (:func:`wall_micros`) orders as the times do and comes back with its
zone, offset and fold; a notice the acks keep (:class:`Issued`) gives back its id, title, time
and kind, also through a snapshot; so does an unqualified sample the disposal tally keeps; only
a true notice id is looked up as one."""
from __future__ import annotations

import pickle
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shian.rules.families.acks import Issued, id_number
from shian.rules.measures.disposals import Unqualified
from shian.rules.notice import notice_id
from shian.rules.timeutil import from_wall_stamp, wall_micros, wall_stamp

SHANGHAI, NEW_YORK = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")
KIND = ("红河镇", ("hh-fso", "county-fso"), "town", "warning", "sample.unqualified")

times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59, 999999),
                     timezones=st.sampled_from([SHANGHAI, NEW_YORK]), allow_imaginary=True)


@given(times, times)
def test_wall_micros_order_times_of_one_zone_as_python_compares_them(a: datetime, b: datetime) -> None:
    """Python compares datetimes sharing a tzinfo by wall clock: the numbers must agree."""
    b = b.replace(tzinfo=a.tzinfo)
    assert (wall_micros(a) < wall_micros(b)) == (a < b)
    assert (wall_micros(a) == wall_micros(b)) == (a.replace(fold=0) == b.replace(fold=0))


@given(times)
def test_a_time_comes_back_from_its_number_with_zone_offset_and_fold(dt: datetime) -> None:
    """The round trip keeps what the notices show (isoformat) and the fold."""
    back = from_wall_stamp(wall_stamp(dt), dt.tzinfo)  # type: ignore[arg-type]
    assert (back, back.fold, back.tzinfo, back.isoformat()) == (dt, dt.fold, dt.tzinfo, dt.isoformat())


@pytest.mark.parametrize("at", [
    datetime(2026, 4, 1, 9, 0, tzinfo=SHANGHAI),
    datetime(2026, 4, 1, 9, 0, 0, 123456, tzinfo=SHANGHAI),
    datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NEW_YORK),   # the second 01:30 (EST)
    datetime(2026, 3, 8, 2, 30, tzinfo=NEW_YORK),            # a wall time the change skips
])
@pytest.mark.parametrize("title", ["", "【预警】红河镇老王蔬菜店韭菜抽检不合格", "𠀋记饭店（扩展区汉字）"])
def test_a_kept_notice_gives_back_what_it_was_made_from(at: datetime, title: str) -> None:
    """id, title, time and kind out of the packed bytes, unchanged by a pickle round trip."""
    nid = notice_id(f"sample.unqualified|红河镇|{title}{at}")
    kept = Issued(nid, KIND, title, at)
    for ref in (kept, pickle.loads(pickle.dumps(kept))):
        assert (ref.id, ref.title, ref.kind, ref.township, ref.rule) == (nid, title, KIND, "红河镇", KIND[4])
        assert (ref.at(at.tzinfo).isoformat(), ref.at(at.tzinfo).fold) == (at.isoformat(), at.fold)  # type: ignore[arg-type]
        assert ref.number == id_number(nid) and ref.wall == wall_micros(at)
        assert ref == kept and hash(ref) == hash(kept)


def test_a_kept_notice_of_the_earlier_layout_loads() -> None:
    """Snapshots before the packing kept (id, kind, title, at)."""
    at = datetime(2026, 4, 1, 9, 0, tzinfo=SHANGHAI)
    nid = notice_id("x")
    old = Issued.__new__(Issued)
    old.__setstate__((nid, KIND, "标题", at))
    assert old == Issued(nid, KIND, "标题", at)


@pytest.mark.parametrize("text, number", [
    ("0123456789abcdef", 0x0123456789ABCDEF),
    ("ffffffffffffffff", 2**64 - 1),
    ("0123456789ABCDEF", None),    # ids are lowercase: an uppercase one is not the same id
    ("0x23456789abcdef", None),    # int() would take the prefix
    ("0123_56789abcdef", None),    # and the underscore
    (" 123456789abcdef", None),
    ("0123456789abcde", None),
    ("sample.unqualified|红河镇|S1", None),
])
def test_only_a_true_notice_id_is_looked_up_as_one(text: str, number: int | None) -> None:
    """An ack naming anything else goes on to be read as a notice key, as before."""
    assert id_number(text) == number


def test_times_one_microsecond_apart_stay_apart() -> None:
    """Microseconds count: two notices one µs apart keep their order."""
    a = datetime(2026, 4, 1, 9, 0, tzinfo=SHANGHAI)
    assert wall_micros(a + timedelta(microseconds=1)) - wall_micros(a) == 1


@pytest.mark.parametrize("at", [datetime(2026, 4, 1, 9, 0, 0, 654321, tzinfo=SHANGHAI),
                                datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NEW_YORK)])
@pytest.mark.parametrize("banned", [False, True])
def test_a_kept_unqualified_sample_gives_back_its_time_and_banned(at: datetime, banned: bool) -> None:
    """Time (with fold), banned and what out of the one number, also through a pickle and from the earlier layout."""
    what = ("老王蔬菜店", "food_sampling", "蔬菜", "韭菜")
    old = Unqualified.__new__(Unqualified)
    old.__setstate__((what, at, banned))
    for u in (Unqualified(what, at, banned), pickle.loads(pickle.dumps(Unqualified(what, at, banned))), old):
        back = u.time(at.tzinfo)  # type: ignore[arg-type]
        assert (back.isoformat(), back.fold, u.banned, u.entity, u.food) == (at.isoformat(), at.fold, banned, "老王蔬菜店", "韭菜")
