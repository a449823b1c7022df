"""`newsmon report`: counts, a self-contained page (nothing loads, nothing runs), every feed
text escaped, and a real render in headless Chromium, from the embedded store and from both
search servers."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsmon.config import SearchSettings
from newsmon.ops.report import (
    build,
    collect,
    distinct_snippets,
    nice_tick,
    parse_duration,
    render,
    safe_href,
    summarize,
)
from newsmon.pipeline.store import DocumentStore, SqliteStore, open_store

UNTIL = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=7)
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="alert(1)">'


def seed(store: DocumentStore) -> None:
    """Articles over a week in three languages, a hostile title, alerts of both kinds, a dead
    letter and source health: every view of the page has something to show."""
    store.setup()
    articles = []
    for i in range(60):
        t = UNTIL - timedelta(hours=3 * i + 1)
        topic = ["long_range_strike"] if i % 3 == 0 else ["troop_deployment"] if i % 5 == 0 else []
        lang = ("en", "de", "fr")[i % 3]
        title = HOSTILE if i == 0 else f"Article {i} about things"
        articles.append((f"d{i}", {
            "doc_id": f"d{i}", "story_id": f"s{i % 7}", "title": title,
            "url": "javascript:alert(1)" if i == 0 else f"https://news.example/{i}",
            "lang": lang, "source": {"id": f"src-{i % 4}", "type": "rss",
                                     "name": f"Source {i % 4} & Co", "lang": lang,
                                     "country": "GB",
                                     **({"kind": "wire", "owner": "Thomson Reuters"}
                                        if i % 4 == 0 else {})},
            "published_at": t.isoformat(), "first_seen_at": t.isoformat(),
            "topic_names": topic, "text": "body"}))
    assert store.bulk_write("articles", articles) == []
    alerts = [
        ("a1", {"alert_id": "a1", "kind": "story", "rule": "lrs", "topic": "long_range_strike",
                "story_id": "s0", "doc_ids": ["d0"], "title": HOSTILE, "url": "https://x.example/a",
                "score": 2.0, "source_ids": ["src-0"], "languages": ["en"], "source_count": 1,
                "evidence": [{"group": "WEAPON", "term": "atacms", "start": 0, "end": 6,
                              "snippet": "ATACMS <b>struck</b> …"}],
                "created_at": (UNTIL - timedelta(hours=2)).isoformat(),
                "updated_at": (UNTIL - timedelta(hours=2)).isoformat(),
                "notified": ["mail"], "pending": ["hook"], "failed": ["hook"], "throttled": [],
                "deliveries": []}),
        ("a2", {"alert_id": "a2", "kind": "surge", "rule": "lrs-surge",
                "topic": "long_range_strike", "title": "surge: long_range_strike: 14 articles",
                "url": "https://x.example/s", "score": 1.4, "doc_ids": [], "source_ids": [],
                "languages": ["en"], "count": 14, "baseline_mean": 2.0, "baseline_std": 1.0,
                "expected_max": 5.0,
                "top_stories": [{"story_id": "s1", "title": "Big <story>", "url":
                                 "https://x.example/1", "count": 5}],
                "created_at": (UNTIL - timedelta(hours=1)).isoformat(),
                "updated_at": (UNTIL - timedelta(hours=1)).isoformat()}),
    ]
    for alert_id, doc in alerts:
        assert store.create("alerts", alert_id, doc)
    assert store.bulk_write("dead-letters", [("dl1", {
        "dl_id": "dl1", "stage": "decode", "error": "ValueError: <bad> json",
        "source_id": "broken", "payload": "{", "created_at": (UNTIL - timedelta(days=1))
        .isoformat(), "replayed": False})]) == []
    assert store.bulk_write("source-health", [
        ("src-0", {"source_id": "src-0", "name": "Source 0", "state": "ok",
                   "consecutive_failures": 0, "checked_at": UNTIL.isoformat(),
                   "last_success_at": UNTIL.isoformat()}),
        ("src-9", {"source_id": "src-9", "name": "<i>Broken</i> feed", "state": "failing",
                   "consecutive_failures": 4, "last_error": "HTTP 503 <html>",
                   "checked_at": UNTIL.isoformat()}),
    ]) == []
    for kind in ("articles", "alerts", "dead-letters", "source-health"):
        store.refresh(kind)


def check_page(page: str) -> None:
    # nothing can load or run: no script, no outside resource, a CSP that forbids both
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    for forbidden in ("<script", "<img", "<link", "<iframe", "<object", "@import", "url("):
        assert forbidden not in page.lower(), forbidden
    for tag in re.findall(r"<[a-zA-Z][^>]*>", page):
        assert not re.search(r"\s(src|on\w+)\s*=", tag), tag
        href = re.search(r'href="([^"]*)"', tag)
        assert href is None or href.group(1).startswith(("https://", "http://")), tag
    # the hostile title is shown as text
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;" in page
    assert "&lt;i&gt;Broken&lt;/i&gt; feed" in page and "HTTP 503 &lt;html&gt;" in page
    assert "Source 1 &amp; Co" in page  # src-0 is named by its health document
    for heading in ("Volume per topic", "Per language", "Per source", "Per source kind",
                    "Top stories", "Latest alerts", "Source health", "Dead letters"):
        assert heading in page
    assert page.count("<svg") == 4


def test_counts_and_page_from_the_embedded_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "docs.sqlite")
    seed(store)
    report = summarize(collect(store, SINCE, UNTIL))
    assert report.totals["articles"] == 56  # 60 every 3 h: the last 4 are older than 7 days
    assert report.totals["topical articles"] == 19 + 8  # i % 3 == 0, else i % 5 == 0
    assert report.totals["alerts"] == 2 and report.totals["dead letters"] == 1
    assert report.totals["sources failing"] == 1
    assert report.bucket_s == 3 * 3600
    assert sum(report.volume["all articles"]) == 56
    assert report.by_language == [("de", 19, 4), ("en", 19, 19), ("fr", 18, 4)]
    # src-0 (every 4th article) is a labelled wire; the rest were stored without labels
    assert report.by_kind == [("unlabelled", 42, 20), ("wire", 14, 7)]
    assert report.alerts[0]["alert_id"] == "a2"  # newest first
    assert report.sources[0]["state"] == "failing"  # trouble first
    page = render(report)
    check_page(page)
    assert "14 articles" in page and "Big &lt;story&gt;" in page
    assert "retrying: hook" in page and "sent: mail" in page


def test_helpers() -> None:
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("90m") == timedelta(minutes=90)
    with pytest.raises(ValueError):
        parse_duration("soon")
    assert safe_href("https://x.example/a?b=1") == "https://x.example/a?b=1"
    assert safe_href("javascript:alert(1)") is None and safe_href("data:text/html,x") is None
    assert [nice_tick(p) for p in (1, 4, 7, 30, 99, 1234)] == [1, 1, 2, 10, 50, 500]
    assert distinct_snippets(["… Ukraine fires …", "Ukraine fires ATACMS at …", "x"]) == [
        "… Ukraine fires ATACMS at …", "… x …"]


def test_an_empty_demo_window_says_where_the_articles_are(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "docs.sqlite")
    seed(store)
    later = UNTIL + timedelta(days=30)
    page, report = build(store, later - timedelta(days=1), later)
    assert report.totals["articles"] == 0
    assert "newest stored article was published 2026-11-20 17:00" in page


# --- headless Chromium ------------------------------------------------------------------------


def chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("CI") == "true":
        pytest.fail("chromium is needed for the report render test in CI: "
                    "apt-get install -y chromium", pytrace=False)
    return found


def render_in_chromium(html: Path, tmp: Path) -> tuple[Path, str]:
    """Screenshot and DOM of the page as headless Chromium renders it (no network)."""
    binary = chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    flags = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tempfile.mkdtemp(dir=tmp)}"]
    png = tmp / "report.png"
    subprocess.run([*flags, f"--screenshot={png}", "--window-size=1280,2000", html.as_uri()],
                   capture_output=True, timeout=120, check=True)
    dom = subprocess.run([*flags, "--dump-dom", html.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return png, dom


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assert_rendered(page: str, tmp: Path) -> None:
    html = tmp / "report.html"
    html.write_text(page, encoding="utf-8")
    png, dom = render_in_chromium(html, tmp)
    assert png_size(png) == (1280, 2000)
    assert png.stat().st_size > 30_000  # charts and tables, not a blank page
    # the hostile title stayed text: the document title is the report's, no <img> appeared
    assert re.search(r"<title>newsmon report</title>", dom)
    assert "<img" not in dom and "pwned" not in dom.split("</title>")[0]
    assert dom.count("<svg") == 4 and "<polyline" in dom


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "docs.sqlite")
    seed(store)
    page, _ = build(store, SINCE, UNTIL)
    assert_rendered(page, tmp_path)


@pytest.fixture
def server_store(search_settings: SearchSettings) -> Iterator[DocumentStore]:
    store = open_store(search_settings, Path("unused"))
    yield store
    store.close()


@pytest.mark.integration
def test_report_renders_with_data_from_the_search_server(
    server_store: DocumentStore, tmp_path: Path
) -> None:
    seed(server_store)
    page, report = build(server_store, SINCE, UNTIL)
    assert report.totals["articles"] == 56 and report.totals["alerts"] == 2
    embedded = SqliteStore(tmp_path / "docs.sqlite")
    seed(embedded)
    # the same data gives the same counts whatever the store
    assert summarize(collect(embedded, SINCE, UNTIL)).totals == report.totals
    assert report.by_kind == [("unlabelled", 42, 20), ("wire", 14, 7)]
    check_page(page)
    assert_rendered(page, tmp_path)
