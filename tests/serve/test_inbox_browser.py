"""The inbox in real headless Chromium against the real Elasticsearch: login, the list and its
filters, a story page, every action, CSRF and unauthenticated refusals, and screenshots."""

from __future__ import annotations

import os
import struct
import zlib
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from newsmon.pipeline.alerts.channels.console import ConsoleChannel
from newsmon.pipeline.alerts.config import AlertsConfig, ChannelConfig
from newsmon.pipeline.alerts.delivery import Deliverer
from newsmon.pipeline.store import DocumentStore
from tests.serve.conftest import API_KEY, HEIGHT, NOW, PASSWORD, WIDTH
from tests.serve.seed import RULES

ROOT = Path(__file__).resolve().parents[2]


def login(driver: webdriver.Chrome, base: str, password: str = PASSWORD) -> None:
    driver.delete_all_cookies()
    driver.get(base + "/")
    assert driver.current_url.startswith(base + "/login")  # sent to the login page
    driver.find_element(By.ID, "username").send_keys("alice")
    driver.find_element(By.ID, "password").send_keys(password)
    click_and_wait(driver, driver.find_element(By.ID, "login-submit"))


def click_and_wait(driver: webdriver.Chrome, button: WebElement) -> None:
    """Click, and wait until the page it leads to has replaced this one."""
    old = driver.find_element(By.TAG_NAME, "html")
    button.click()

    def replaced(_driver: webdriver.Chrome) -> bool:
        # Chromium may answer for a node of the page just left with a generic inspector
        # error ("Node with given id does not belong to the document") rather than a stale
        # reference: both mean the page was replaced.
        try:
            old.is_enabled()
        except WebDriverException:  # StaleElementReferenceException is one of these
            return True
        return False

    WebDriverWait(driver, 15).until(replaced)


def rows(driver: webdriver.Chrome) -> list[str]:
    return [r.get_attribute("data-alert") or ""
            for r in driver.find_elements(By.CSS_SELECTOR, "tr.alert-row")]


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB(A) pixel bytes of an 8-bit truecolour PNG (what Chromium
    writes), unfiltered by the PNG specification's five filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert depth == 8 and colour in (2, 6)
    bpp = 3 if colour == 2 else 4
    idat, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    out: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        row = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        kind, line = row[0], bytearray(row[1:])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        out.append(bytes(line))
        prev = line
    return width, height, out


def png_check(data: bytes) -> tuple[int, int]:
    """The PNG's size; fails unless it shows a page with content: many colours (text is
    anti-aliased) and no single colour over 97% of the pixels (a blank page is one)."""
    width, height, lines = png_pixels(data)
    bpp = len(lines[0]) // width
    colours = Counter(line[i:i + bpp] for line in lines[::4] for i in range(0, len(line), bpp * 4))
    assert len(colours) > 20, "screenshot is (nearly) blank"
    assert colours.most_common(1)[0][1] < 0.97 * sum(colours.values()), "one colour"
    return width, height


def shoot(driver: webdriver.Chrome, name: str) -> None:
    data = driver.get_screenshot_as_png()
    assert png_check(data) == (WIDTH, HEIGHT)
    # The README's pictures are refreshed on request only: a test run must leave the
    # checkout as it found it.
    if os.environ.get("NEWSMON_UPDATE_SCREENSHOTS") == "1":
        (ROOT / "docs" / "img" / name).write_bytes(data)


def test_nothing_is_readable_or_writable_without_authentication(
        inbox: str, alert_ids: dict[str, str], es_store: DocumentStore,
        browser: webdriver.Chrome) -> None:
    a = alert_ids["a"]
    before = es_store.get("alerts", a)
    assert before is not None
    with httpx.Client(base_url=inbox) as http:
        assert http.get("/").status_code == 401
        assert http.get(f"/alerts/{a}").status_code == 401
        page = http.get("/", headers={"accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert http.post(f"/alerts/{a}/action", data={"action": "confirm"}).status_code == 401
        wrong = {"authorization": "Bearer not-the-key"}
        assert http.get("/", headers=wrong).status_code == 401
        assert "Troops move north" not in http.get("/", headers=wrong).text
    after = es_store.get("alerts", a)
    assert after is not None and "feedback" not in after.source
    browser.delete_all_cookies()
    browser.get(f"{inbox}/alerts/{a}")
    assert "/login" in browser.current_url
    assert "Missiles hit depot" not in browser.page_source


def test_a_wrong_password_is_refused(inbox: str, browser: webdriver.Chrome) -> None:
    login(browser, inbox, password="wrong")
    assert browser.find_element(By.ID, "login-error").text == "Wrong name or password."
    browser.get(inbox + "/")
    assert "/login" in browser.current_url


def test_login_list_filters_and_inbox_screenshot(inbox: str, alert_ids: dict[str, str],
                                                 browser: webdriver.Chrome) -> None:
    login(browser, inbox)
    assert browser.current_url == inbox + "/"
    assert set(rows(browser)) == {alert_ids["a"], alert_ids["b"]}  # open, last 7 days
    shoot(browser, "inbox.png")

    Select(browser.find_element(By.ID, "f-topic")).select_by_value("troop_deployment")
    click_and_wait(browser, browser.find_element(By.ID, "f-apply"))
    assert rows(browser) == [alert_ids["b"]]

    browser.get(inbox + "/")
    Select(browser.find_element(By.ID, "f-lang")).select_by_value("de")
    click_and_wait(browser, browser.find_element(By.ID, "f-apply"))
    assert rows(browser) == [alert_ids["a"]]

    browser.get(inbox + "/")
    Select(browser.find_element(By.ID, "f-label")).select_by_value("unlabelled")
    Select(browser.find_element(By.ID, "f-since")).select_by_value("30d")
    click_and_wait(browser, browser.find_element(By.ID, "f-apply"))
    assert set(rows(browser)) == {alert_ids["a"], alert_ids["b"], alert_ids["c"]}
    browser.get(inbox + "/?since=24h&topic=long_range_strike")
    assert rows(browser) == [alert_ids["a"]]


def test_story_page_shows_copies_sources_timeline(inbox: str, alert_ids: dict[str, str],
                                                  browser: webdriver.Chrome) -> None:
    login(browser, inbox)
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR,
                                                 f'tr[data-alert="{alert_ids["a"]}"] a'))
    assert browser.find_element(By.ID, "story-title").text == "Missiles hit depot"
    copies = browser.find_elements(By.CSS_SELECTOR, "#copies tr.copy")
    assert [c.find_elements(By.TAG_NAME, "td")[3].text for c in copies] == [
        "Missiles hit depot", "Raketen treffen Depot", "Depot getroffen"]
    sources = [s.text for s in browser.find_elements(By.CSS_SELECTOR, "#sources tr.source")]
    assert len(sources) == 2 and sources[0].startswith("Paper src-b")  # two copies first
    events = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#timeline tr.event")]
    assert sum("published" in e for e in events) == 3
    assert any("alert raised" in e for e in events)
    shoot(browser, "story.png")


def submit(browser: webdriver.Chrome, form: str, **fields: str) -> None:
    el = browser.find_element(By.ID, form)
    for name, value in fields.items():
        box = el.find_element(By.NAME, name)
        if box.tag_name == "select":
            Select(box).select_by_value(value)
        else:
            box.clear()
            box.send_keys(value)
    click_and_wait(browser, el.find_element(By.CSS_SELECTOR, "button[type=submit]"))


def test_each_action_is_stored_with_who_and_when_and_mutes_stop_delivery(
        inbox: str, alert_ids: dict[str, str], es_store: DocumentStore,
        browser: webdriver.Chrome) -> None:
    a, b = alert_ids["a"], alert_ids["b"]
    login(browser, inbox)

    def feedback(alert_id: str) -> dict[str, object]:
        got = es_store.get("alerts", alert_id)
        assert got is not None
        return dict(got.source.get("feedback") or {})

    browser.get(f"{inbox}/alerts/{a}")
    submit(browser, "act-confirm")
    assert browser.find_element(By.ID, "status").text == "confirmed"
    assert feedback(a)["status"] == "confirmed" and feedback(a)["by"] == "alice"

    submit(browser, "act-false_positive", reason="about a grain deal, not a strike")
    assert browser.find_element(By.ID, "status").text == "false positive"
    assert feedback(a)["reason"] == "about a grain deal, not a strike"

    submit(browser, "act-acknowledge")  # seen; the label stays
    assert feedback(a)["status"] == "false_positive"

    # the list's status filter follows the labels
    browser.get(inbox + "/?status=false_positive")
    assert rows(browser) == [a]
    browser.get(inbox + "/")
    assert rows(browser) == [b]

    # both mutes: the story of a; the only source of b for 2 hours
    browser.get(f"{inbox}/alerts/{a}")
    submit(browser, "act-mute_story")
    browser.get(f"{inbox}/alerts/{b}")
    submit(browser, "act-mute_source", source_id="src-c", hours="2")
    assert "muted source src-c" in browser.find_element(By.ID, "mutes").text
    history = feedback(a)["history"]
    assert isinstance(history, list)
    assert [h["action"] for h in history] == [
        "confirm", "false_positive", "acknowledge", "mute_story"]
    assert all(h["by"] == "alice" and h["at"] for h in history)
    stored_b = es_store.get("alerts", b)
    assert stored_b is not None and stored_b.source["muted_keys"] == ["source:src-c"]

    # delivery: both alerts still owe "spy", neither is sent while muted
    channels: dict[str, ChannelConfig] = {"spy": ConsoleChannel()}
    cfg = AlertsConfig(channels=channels, rules=(RULES["strikes"], RULES["troops"]))
    deliverer = Deliverer(es_store, cfg)
    for alert_id, why in ((a, "muted: story story-a"), (b, "muted: source src-c")):
        [attempt] = deliverer.deliver(alert_id, NOW)
        assert attempt.status == "throttled" and attempt.error.startswith(why)
    # once the source mute has run out, an alert of that source would notify again
    later = Deliverer(es_store, cfg)
    stored = es_store.get("alerts", b)
    assert stored is not None
    fresh = {**stored.source, "pending": ["spy"], "throttled": []}
    assert es_store.replace_if("alerts", b, fresh, stored.version)
    [attempt] = later.deliver(b, NOW + timedelta(hours=3))
    assert attempt.status == "sent"


def test_forms_without_the_csrf_token_are_refused(inbox: str, alert_ids: dict[str, str],
                                                  es_store: DocumentStore,
                                                  browser: webdriver.Chrome) -> None:
    c = alert_ids["c"]
    login(browser, inbox)
    browser.get(f"{inbox}/alerts/{c}")
    browser.execute_script(
        "document.querySelector('#act-confirm input[name=csrf]').value = 'forged'")
    submit(browser, "act-confirm")
    assert "CSRF token missing or wrong" in browser.page_source
    cookie = browser.get_cookie("newsmon_inbox")
    assert cookie is not None
    with httpx.Client(base_url=inbox, cookies={"newsmon_inbox": cookie["value"]}) as http:
        # the logged-in session alone (what another site's form would send) is not enough
        refused = http.post(f"/alerts/{c}/action", data={"action": "confirm"})
        assert refused.status_code == 403
        assert http.get(f"/alerts/{c}").status_code == 200  # the session itself is good
    stored = es_store.get("alerts", c)
    assert stored is not None and "feedback" not in stored.source


def test_an_api_key_reads_and_acts_without_a_form_token(inbox: str, alert_ids: dict[str, str],
                                                        es_store: DocumentStore) -> None:
    c = alert_ids["c"]
    with httpx.Client(base_url=inbox,
                      headers={"authorization": f"Bearer {API_KEY}"}) as http:
        assert "Old strike report" in http.get("/?since=30d").text
        done = http.post(f"/alerts/{c}/action", data={"action": "confirm"})
        assert done.status_code == 200, done.text
        bad = http.post(f"/alerts/{c}/action", data={"action": "false_positive"})
        assert bad.status_code == 400 and "reason" in bad.text
    stored = es_store.get("alerts", c)
    assert stored is not None and stored.source["feedback"]["by"] == "robot"


def test_logging_out_ends_the_session_and_login_needs_its_token(
        inbox: str, browser: webdriver.Chrome) -> None:
    login(browser, inbox)
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "header button"))
    assert "/login" in browser.current_url
    browser.get(inbox + "/")
    assert "/login" in browser.current_url
    with httpx.Client(base_url=inbox) as http:
        # a password alone, posted from elsewhere without the login page's token, is refused
        forged = http.post("/login", data={"username": "alice", "password": PASSWORD})
        assert forged.status_code == 403
        assert http.get("/").status_code == 401
