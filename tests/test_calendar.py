"""The one calendar of official working days (CONTRACT.md §3 "official working day", §6
Revision 5): ``calendar:`` owns the years it lists a date of, the pinned library the years it
has, and the statutory fallback the rest (2027 now); the config refuses a bad ``calendar:``;
``check-config`` warns about a year nobody covers."""
from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import pytest
import yaml
from lunardate import LunarDate

from conftest import config_dict
from shian.cli import main
from shian.rules.calendar import Calendar, library_covers, statutory_holidays
from shian.rules.config import ConfigError, load, parse

D = date.fromisoformat
LIBRARY = Calendar()


def calendar_of(holidays: list[str] = (), workdays: list[str] = ()) -> Calendar:
    """A Calendar as the config builds it from ``calendar:``."""
    cal = {"holidays": list(holidays), "workdays": list(workdays)}
    return parse(config_dict(config_overrides={"calendar": cal}), path="<test>").calendar


def test_pinned_library_covers_2026_and_not_2027():
    """The tables below rely on chinese-calendar 1.11.0 (pinned): 2026 published, 2027 not."""
    assert library_covers(2026) and not library_covers(2027)
    assert (LIBRARY.source(2026), LIBRARY.source(2027)) == ("library", "statutory")


# 2027's statutory holidays: 除夕 2027-02-05 … 初三 02-08, 清明 04-05, 端午 06-09, 中秋 09-15.
FALLBACK_2027 = [
    ("2026-12-31", True),    # Thursday, from the library (2026)
    ("2027-01-01", False),   # 元旦
    ("2027-01-04", True),    # Monday after: no substitute day guessed
    ("2027-02-04", True),    # the day before 除夕
    ("2027-02-05", False),   # 除夕 (Friday)
    ("2027-02-06", False),   # 正月初一 (Saturday)
    ("2027-02-08", False),   # 初三 (Monday)
    ("2027-02-09", True),    # 初四: 春节 is four days
    ("2027-02-20", False),   # Saturday: no 调休 workday guessed
    ("2027-04-05", False),   # 清明 solar term (Monday)
    ("2027-04-06", True),
    ("2027-04-30", True),    # Friday before 劳动节: no bridging
    ("2027-05-03", True),    # 劳动节 is 1–2 May (a weekend in 2027); Monday works
    ("2027-06-09", False),   # 端午 五月初五 (Wednesday)
    ("2027-06-10", True),
    ("2027-09-15", False),   # 中秋 八月十五 (Wednesday)
    ("2027-10-01", False),   # 国庆 (Friday)
    ("2027-10-04", True),    # 国庆 is 1–3 Oct
    ("2027-10-09", False),   # Saturday
]


@pytest.mark.parametrize("day, working", FALLBACK_2027)
def test_2027_statutory_fallback(day, working):
    """§6: a year without a published schedule is Monday to Friday less its statutory holidays."""
    assert LIBRARY.is_working_day(D(day)) is working


def test_2027_statutory_holidays_come_from_the_lunar_and_solar_term_libraries():
    """除夕–初三, 端午, 中秋 from lunardate and 清明 from chinese_calendar's solar terms, not typed."""
    spring = LunarDate(2027, 1, 1).to_solar_date()
    qingming = [d for d, name in chinese_calendar.get_solar_terms(D("2027-04-01"), D("2027-04-30")) if name == "清明"]
    assert dict(statutory_holidays(2027)) == {
        "元旦": (D("2027-01-01"),), "春节": tuple(spring + timedelta(days=i) for i in range(-1, 3)),
        "清明节": tuple(qingming), "劳动节": (D("2027-05-01"), D("2027-05-02")),
        "端午节": (LunarDate(2027, 5, 5).to_solar_date(),), "中秋节": (LunarDate(2027, 8, 15).to_solar_date(),),
        "国庆节": (D("2027-10-01"), D("2027-10-02"), D("2027-10-03")),
    }
    assert spring == D("2027-02-06") and qingming == [D("2027-04-05")]


@pytest.mark.parametrize("year", [2025, 2026])
def test_fallback_holidays_are_days_off_in_the_published_years_under_the_same_law(year):
    """The fallback's holidays (2025 rules: 除夕 and 1–2 May added) are off in every published year since."""
    for name, days in statutory_holidays(year):
        for d in days:
            assert not chinese_calendar.is_workday(d), (name, d)


def test_years_beyond_the_lunar_tables_still_answer():
    """2100 (a deadline may reach it) has no lunar holidays but still counts: no crash."""
    names = [name for name, _ in statutory_holidays(2100)]
    assert "春节" not in names and "国庆节" in names
    assert LIBRARY.nth_working_day_after(D("2099-12-30"), 3) == D("2100-01-05")


@pytest.mark.parametrize("holidays, workdays, day, working", [
    # calendar: owns 2027 once it lists a date of it: Mon–Fri except its holidays, plus its workdays
    (["2027-02-05", "2027-02-09"], ["2027-02-20"], "2027-02-09", False),
    (["2027-02-05", "2027-02-09"], ["2027-02-20"], "2027-02-20", True),
    (["2027-02-05", "2027-02-09"], ["2027-02-20"], "2027-02-08", True),    # 初三 not listed: works
    (["2027-02-05", "2027-02-09"], ["2027-02-20"], "2027-10-01", True),    # 国庆 not listed: works
    (["2027-02-05"], [], "2028-01-03", True),                               # 2028: fallback, Monday
    # calendar: owns 2026 over the library: 劳动节 (1–5 May) not listed, so 4 May works
    (["2026-06-19"], [], "2026-05-04", True),
    (["2026-06-19"], [], "2026-05-09", False),   # the library's 调休 Saturday is not calendar:'s
    ([], [], "2026-05-09", True),                # without calendar: it is
    ([], ["2026-05-09"], "2026-05-09", True),
])
def test_calendar_owns_the_years_it_lists_a_date_of(holidays, workdays, day, working):
    """§6: a year of which calendar: lists any date is taken from calendar: alone."""
    assert calendar_of(holidays, workdays).is_working_day(D(day)) is working


# A 2027 schedule as an office might type it: 春节 off Fri 5 – Thu 11 Feb (weekdays 5, 8, 9, 10, 11),
# 调休 workdays Sunday 31 Jan and Saturday 20 Feb.
SPRING_2027 = {"holidays": [f"2027-02-{d:02d}" for d in range(5, 12)], "workdays": ["2027-01-31", "2027-02-20"]}


@pytest.mark.parametrize("after, through, without, with_calendar", [
    # February 2027 has 20 weekdays (the 1st is a Monday)
    ("2027-01-31", "2027-02-28", 20 - 2, 20 - 5 + 1),   # fallback: 除夕 5th and 初三 8th off
    ("2027-01-30", "2027-02-04", 4, 5),                 # Sunday 31 Jan is a listed workday
    ("2027-02-04", "2027-02-12", 4, 1),                 # fallback: 9–12 work; calendar: only the 12th
    ("2027-02-04", "2027-02-04", 0, 0),                 # empty range
    ("2027-02-12", "2027-02-04", 0, 0),                 # reversed: none
])
def test_working_day_count_across_spring_festival_2027(after, through, without, with_calendar):
    """Counting official working days in (after, through] across 春节 2027, without and with calendar:."""
    plain, typed = LIBRARY, calendar_of(**SPRING_2027)
    assert plain.count_working_days(D(after), D(through)) == without
    assert typed.count_working_days(D(after), D(through)) == with_calendar
    for cal in (plain, typed):  # the count is the day-by-day count
        days = [D(after) + timedelta(days=i + 1) for i in range(max((D(through) - D(after)).days, 0))]
        assert cal.count_working_days(D(after), D(through)) == sum(map(cal.is_working_day, days))


@pytest.mark.parametrize("start, n, expected", [
    ("2026-06-05", 10, "2026-06-22"),   # §6 example: 8–12, 15–18, 22 June (19th is 端午)
    ("2026-06-05", 1, "2026-06-08"),
    ("2026-06-18", 1, "2026-06-22"),
    ("2027-02-04", 1, "2027-02-09"),    # fallback: 除夕 to 初三 skipped
    ("2026-12-31", 1, "2027-01-04"),    # across the year's end, into the fallback
])
def test_nth_working_day_after(start, n, expected):
    """The n-th official working day after a date (the date itself never counts)."""
    assert LIBRARY.nth_working_day_after(D(start), n) == D(expected)


# --------------------------------------------------------------------------- refused configs

@pytest.mark.parametrize("section, where, what", [
    ("  holidays: [2027-02-05]\n  workdays: [2027-02-20, 2027-02-05]\n", "calendar.workdays.1（第 3 行）",
     "同时列在 holidays 和 workdays 中"),
    ("  holidays: [2027-02-30]\n", "calendar.holidays.0（第 2 行）", "“2027-02-30”不是有效的日期"),
    ("  holidays:\n    - 2027-02-05\n    - '2027-13-01'\n", "calendar.holidays.1（第 4 行）", "不是有效的日期"),
    ("  workdays: ['2027/2/20']\n", "calendar.workdays.0（第 2 行）", "不是有效的日期"),
    ("  workdays: [2027-02-20 08:00:00]\n", "calendar.workdays.0（第 2 行）", "不是有效的日期"),
    ("  holiday: [2027-02-05]\n", "calendar.holiday（第 2 行）", "未知的键"),
    ("  holidays: 2027-02-05\n", "calendar.holidays（第 2 行）", "应为列表"),
])
def test_bad_calendar_section_refuses_the_config_naming_file_key_and_line(tmp_path, section, where, what):
    """§6: a date in both lists, an invalid date or an unknown key under calendar refuses the config."""
    base = config_dict()
    path = tmp_path / "county.yaml"
    path.write_text("calendar:\n" + section + yaml.safe_dump(base, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load(path)
    [problem] = err.value.problems
    assert problem.startswith(f"{path}: {where}") and what in problem, problem


def test_valid_calendar_section_is_read_into_the_config(tmp_path):
    """YAML dates and quoted ISO dates are both accepted; the Calendar is on the Config."""
    path = tmp_path / "county.yaml"
    path.write_text("calendar:\n  holidays: [2027-02-05, '2027-02-08']\n  workdays: [2027-02-20]\n"
                    + yaml.safe_dump(config_dict(), allow_unicode=True), encoding="utf-8")
    cal = load(path).calendar
    assert cal == Calendar(frozenset({D("2027-02-05"), D("2027-02-08")}), frozenset({D("2027-02-20")}))
    assert cal.owned_years == {2027}


# --------------------------------------------------------------------------- check-config

@pytest.mark.parametrize("now, calendar, warned, around", [
    ("2026-04-20T00:00", None, [2027], "元旦（2027-01-01）"),          # the next year is uncovered
    ("2027-01-20T00:00", None, [2027, 2028], "春节（2027-02-05 至 2027-02-08）"),
    ("2026-11-20T00:00", {"holidays": ["2027-01-01"]}, [], None),      # calendar: covers 2027
    ("2027-03-01T00:00", {"holidays": ["2027-01-01"]}, [2028], "元旦（2028-01-01）"),
])
def test_check_config_warns_about_a_year_nobody_covers(write_config, capsys, now, calendar, warned, around):
    """§5: a warning (exit 0) for the year of --now or the next one, and the days around the next holiday."""
    path = write_config(config_overrides={"calendar": calendar} if calendar else None)
    assert main(["check-config", "--config", path, "--now", now]) == 0
    out = capsys.readouterr().out
    assert [y for y in (2026, 2027, 2028) if f"警告：{y} 年" in out] == warned
    if around is None:
        assert "前后将使用的工作日" not in out
    else:
        assert f"下一个节假日{around}前后将使用的工作日" in out
    if around and "春节" in around:
        assert "2027-02-08  周一  休息" in out and "2027-02-09  周二  上班" in out
