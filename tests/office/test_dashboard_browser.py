"""The dashboard in a real headless Chromium (selenium + chromedriver) against the server
filled with the known-answer county: what staff see on /reports and /rates, 签收 by click,
the notice list's filter form and pager, a notice's own page and 办结 there, Chinese rendered
with a CJK font, and screenshots of the main page and a notice page kept as test artefacts
(test-artifacts/dashboard.png, notice.png).

Never skipped: without Chromium the test fails and says how to install it
(``scripts/install_browser.sh``)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

import known_county as kc
from shian.rules.notice import notice_id
from office_support import make_service  # noqa: F401  (a fixture)
from test_dashboard import TOKENS, Served, serve_known, token_county

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("SHIAN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SHIAN_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL = "run `bash scripts/install_browser.sh` (as root) to install chromium, chromium-driver and fonts-noto-cjk"
#: 新寨村 sent no report for April: an open warning to 红河镇食安办 nobody has acknowledged
XINZHAI_OVERDUE = notice_id("report.overdue|红河镇|新寨村|2026-04")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            pytest.fail(f"{path} not found: {INSTALL}", pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service as DriverService
    except ImportError:
        pytest.fail("selenium is not installed: run `make install` (it is in the test extra)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                "--lang=zh-CN", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=DriverService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def open_site(make_service) -> Iterator[Served]:
    with serve_known(make_service) as site:
        yield site


@pytest.fixture
def token_site(make_service) -> Iterator[Served]:
    with serve_known(make_service, token_county()) as site:
        yield site


def one(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, css)
    assert len(found) == 1, f"{css}: {len(found)} elements"
    return found[0]


def click_and_wait(driver: Any, element: Any) -> None:
    """Click a submit button and wait until the next page has replaced this one."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    html = driver.find_element("tag name", "html")
    element.click()
    WebDriverWait(driver, 15).until(ec.staleness_of(html))
    WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.readyState") == "complete")


def test_report_board_marks_late_and_missing(browser: Any, open_site: Served) -> None:
    browser.get(open_site.url + "/reports")
    assert browser.find_element("tag name", "h1").text.startswith("月报报送")

    def cell(reporter: str) -> Any:
        return one(browser, f'td[data-township="红河镇"][data-reporter="{reporter}"][data-period="2026-04"]')

    late, missing, on_time = cell("红河村"), cell("新寨村"), cell("坝心村")
    assert late.get_attribute("data-status") == "late" and late.text.startswith("逾期")
    assert missing.get_attribute("data-status") == "missing" and missing.text == "未报"
    assert on_time.get_attribute("data-status") == "on_time" and on_time.text == "按时"
    colours = {c.value_of_css_property("background-color") for c in (late, missing, on_time)}
    assert len(colours) == 3, colours                       # three different colours, and the words
    may = one(browser, 'td[data-township="红河镇"][data-reporter="红河村"][data-period="2026-05"]')
    assert may.get_attribute("data-status") == "pending" and may.text == "未到期"


def test_pass_rate_of_honghe_food_sampling_is_below_target(browser: Any, open_site: Served) -> None:
    browser.get(open_site.url + "/rates")
    row = one(browser, 'tr[data-township="红河镇"][data-program="food_sampling"]')
    field = {f: row.find_element("css selector", f'td[data-field="{f}"]').text
             for f in ("count", "rate", "target", "verdict")}
    assert field == {"count": "19/20", "rate": kc.EXPECTED_HONGHE_FOOD_RATE, "target": "98.0%", "verdict": "未达标"}
    assert "食品安全抽检" in row.text
    bar = one(browser, 'svg rect[data-township="红河镇"][data-program="food_sampling"]')
    assert bar.get_attribute("data-rate") == "95.0" and bar.get_attribute("data-below") == "true"
    target = one(browser, "#chart-food_sampling line.target")
    # the bar ends left of the 98% target line
    assert float(bar.get_attribute("x")) + float(bar.get_attribute("width")) < float(target.get_attribute("x1"))
    ok = one(browser, 'svg rect[data-township="板桥镇"][data-program="food_sampling"]')
    assert ok.get_attribute("data-rate") == "100.0" and ok.get_attribute("data-below") == "false"


def test_login_and_acknowledge_by_click(browser: Any, token_site: Served) -> None:
    browser.delete_all_cookies()
    browser.get(token_site.url + "/login")
    browser.find_element("id", "token").send_keys(TOKENS["hh-fso"])
    click_and_wait(browser, one(browser, "#login-form button[type=submit]"))
    assert one(browser, "#dept-name").text == "红河镇食安办"
    row = one(browser, f"#notice-{XINZHAI_OVERDUE}")
    assert row.get_attribute("data-acked") == "false" and "未签收" in row.text
    click_and_wait(browser, row.find_element("css selector", 'button[data-action="签收"]'))
    assert "已签收" in one(browser, "#flash").text
    row = one(browser, f"#notice-{XINZHAI_OVERDUE}")
    assert row.get_attribute("data-acked") == "true"
    assert "已签收" in row.text and "红河镇食安办" in row.find_element("css selector", "td.state").text
    last = token_site.acks()[-1]
    assert (last["notice_id"], last["by"], last["action"]) == (XINZHAI_OVERDUE, "hh-fso", "签收")
    # a notice of another township shows no buttons to 红河镇食安办
    browser.get(token_site.url + "/?scope=all")
    assert browser.find_elements("css selector", f"#notice-{kc.BQ_NOTICE}") == []   # 办结 in the fixture
    campaign = notice_id("campaign.missed|板桥镇|劳动节|2026-05-01")
    other = one(browser, f"#notice-{campaign}")
    assert other.find_elements("css selector", "form") == []


def test_main_page_screenshot_and_chinese_font(browser: Any, open_site: Served) -> None:
    browser.get(open_site.url + "/")
    assert one(browser, "h1").text.startswith("首页")
    assert browser.execute_script("return document.documentElement.lang") == "zh-CN"
    family = browser.execute_script("return getComputedStyle(document.body).fontFamily")
    assert "Noto Sans CJK SC" in family, family
    if _has_noto_cjk():
        assert browser.execute_script("return document.fonts.check('16px \"Noto Sans CJK SC\"', '食品安全')")
    counts = {e.get_attribute("data-severity"): int(e.get_attribute("data-count"))
              for e in browser.find_elements("css selector", ".count[data-severity]")}
    assert set(counts) == {"critical", "warning", "info"} and counts["warning"] > 0
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    assert browser.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000, len(data)


def _has_noto_cjk() -> bool:
    if shutil.which("fc-match") is None:
        return False
    out = subprocess.run(["fc-match", "Noto Sans CJK SC"], capture_output=True, text=True).stdout
    return "Noto Sans CJK" in out


def rows(driver: Any) -> list[dict[str, str]]:
    """The listed notices' data attributes (noticeId, township, severity …), in one call."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#notice-list tbody tr')].map(r => ({...r.dataset}))")


def test_filter_form_narrows_the_list_and_keeps_its_choices(browser: Any, open_site: Served) -> None:
    """Choosing 乡镇 and 状态 in the form and pressing 筛选 lists only those notices, and the form
    shows what was chosen."""
    from selenium.webdriver.support.ui import Select

    browser.get(open_site.url + "/")
    Select(one(browser, "#f-township")).select_by_visible_text("板桥镇")
    Select(one(browser, "#f-state")).select_by_visible_text("全部")
    Select(one(browser, "#f-severity")).select_by_visible_text("警示")
    click_and_wait(browser, one(browser, "#filter-form button[type=submit]"))
    query = parse_qs(urlsplit(browser.current_url).query)
    assert {k: v for k, v in query.items() if v != [""]} == {"township": ["板桥镇"], "state": ["all"],
                                                             "severity": ["warning"]}
    listed = rows(browser)
    assert listed and all(r["township"] == "板桥镇" and r["severity"] == "warning" for r in listed)
    assert one(browser, "#notice-list").get_attribute("data-total") == str(len(listed))
    assert Select(one(browser, "#f-township")).first_selected_option.text == "板桥镇"
    assert Select(one(browser, "#f-state")).first_selected_option.text == "全部"


def test_paging_by_click_keeps_the_filters(browser: Any, open_site: Served) -> None:
    """下一页 and 上一页 move through pages of 50, the filter staying in the address."""
    browser.get(open_site.url + "/?state=all")
    first = [r["noticeId"] for r in rows(browser)]
    assert len(first) == 50
    click_and_wait(browser, one(browser, '#pager a[rel="next"]'))
    assert parse_qs(urlsplit(browser.current_url).query) == {"state": ["all"], "page": ["2"]}
    assert one(browser, '#pager [aria-current="page"]').text == "2"
    second = [r["noticeId"] for r in rows(browser)]
    assert len(second) == 50 and not set(first) & set(second)
    click_and_wait(browser, one(browser, '#pager a[rel="prev"]'))
    assert [r["noticeId"] for r in rows(browser)] == first


def test_notice_page_from_the_list_and_closing_it_there(browser: Any, open_site: Served) -> None:
    """A notice's title opens its page (facts, deliveries, history); 办结 there by a chosen
    recipient adds to the history, with the department's name and the note."""
    from selenium.webdriver.support.ui import Select

    browser.get(open_site.url + "/?rule=sample.unqualified")
    click_and_wait(browser, one(browser, f"#notice-{kc.HH_NOTICE} a.title"))
    assert urlsplit(browser.current_url).path == f"/notices/{kc.HH_NOTICE}"
    assert one(browser, "h1").text == "通知详情"
    facts = {r.find_element("css selector", "th").text: r.find_element("css selector", "td").text
             for r in browser.find_elements("css selector", "#facts tr")}
    assert facts["被抽样单位"] == kc.FORMULA_ENTITY and facts["样品编号"] == kc.HH_UNQUALIFIED
    assert len(browser.find_elements("css selector", "#deliveries tbody tr")) == \
        len(open_site.call(open_site.service.deliveries_of, kc.HH_NOTICE))
    assert len(browser.find_elements("css selector", "#history tbody tr")) == 1
    Select(one(browser, f"#dept-{kc.HH_NOTICE}")).select_by_visible_text("红河镇食安办")
    one(browser, f"#note-{kc.HH_NOTICE}").send_keys("已下架，立案调查")
    click_and_wait(browser, one(browser, '#notice button[data-action="办结"]'))
    assert urlsplit(browser.current_url).path == f"/notices/{kc.HH_NOTICE}"
    assert "已办结" in one(browser, "#flash").text and one(browser, "#notice-state").text == "已办结"
    last = browser.find_elements("css selector", "#history tbody tr")[-1].text
    assert "红河镇食安办" in last and "办结" in last and "已下架，立案调查" in last
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "notice.png"))
