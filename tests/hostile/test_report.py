"""Script in a feed, all the way to the HTML report: polled from a hostile server, through the
pipeline into the embedded store, rendered by ``newsmon report``. What was markup in the feed
is gone; what was text that looks like markup is stored as text and shown escaped; nothing in
the page can run or load.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from newsmon.pipeline.io_search import SqliteStore
from tests.hostile.server import hostile_server, respond

ROOT = Path(__file__).resolve().parents[2]
NEWSMON = Path(sys.executable).parent / "newsmon"

pytestmark = pytest.mark.timeout(240)

#: Escaped three times in an RSS title (which feedparser reads as HTML): the item's title is
#: "&lt;script&gt;..." and the article's the *text* "<script>alert(1)</script> ...".
TITLE_TEXT = "&amp;amp;lt;script&amp;amp;gt;alert(1)&amp;amp;lt;/script&amp;amp;gt;"
BODY = ("Ukraine struck targets on Russian territory with ATACMS missiles overnight, "
        "officials said, after Washington lifted the range limits on the weapons.")


def feed() -> bytes:
    now = format_datetime(datetime.now(UTC))
    items = [
        # markup in an HTML title: removed; a script element and an event handler in the body
        f"<item><title>&lt;b onmouseover=alert(2)&gt;ATACMS&lt;/b&gt; strikes on Russia"
        f"</title><link>https://news.example/a1</link><guid>a1</guid><pubDate>{now}</pubDate>"
        f"<description>&lt;script&gt;alert(3)&lt;/script&gt;&lt;img src=x onerror=alert(4)&gt;"
        f"{BODY}</description></item>",
        # text that looks like markup: stored as text
        f"<item><title>{TITLE_TEXT} ATACMS hit Russian territory</title>"
        f"<link>javascript:alert(5)</link><guid>a2</guid><pubDate>{now}</pubDate>"
        f"<description>{BODY} Second report.</description></item>",
    ]
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Hostile</title>'
            f"{''.join(items)}</channel></rss>").encode()


def test_script_from_a_feed_never_runs_in_the_report(tmp_path: Path) -> None:
    with hostile_server({"/feed": respond(feed(), headers={
            "Content-Type": "application/rss+xml"})}) as srv:
        (tmp_path / "feeds.yaml").write_text(
            "sources:\n"
            f"  - {{id: hostile, type: rss, url: '{srv.url('/feed')}',"
            " name: '<img src=x onerror=alert(6)>Hostile & Co', lang: en, country: GB}\n")
        (tmp_path / "newsmon.yaml").write_text(
            f"state_dir: {tmp_path / 'state'}\nfeeds: feeds.yaml\n"
            f"topics: {ROOT / 'config' / 'topics.yaml'}\n"
            f"alerts: {ROOT / 'config' / 'alerts.yaml'}\nsearch:\n  backend: embedded\n")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        run = subprocess.run([str(NEWSMON), "run", "-c", str(tmp_path / "newsmon.yaml")],
                             capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
        assert run.returncode == 0, run.stderr[-3000:]
    out = tmp_path / "report.html"
    report = subprocess.run([str(NEWSMON), "report", "-c", str(tmp_path / "newsmon.yaml"),
                             "--since", "2d", "--out", str(out)],
                            capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]

    store = SqliteStore(tmp_path / "state" / "documents.sqlite")
    articles = {doc["url"]: doc for doc in store.all_docs("articles")}
    first = articles["https://news.example/a1"]
    assert first["title"] == "ATACMS strikes on Russia"
    assert "alert(" not in first["text"] and "onerror" not in first["text"]
    second = next(doc for url, doc in articles.items() if url != "https://news.example/a1")
    assert second["title"].startswith("<script>alert(1)</script>")  # text, as the feed meant
    assert second["url"] == ""  # a javascript: link is no link
    assert store.count("alerts") >= 1

    page = out.read_text(encoding="utf-8")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    for forbidden in ("<script", "<img", "javascript:"):
        assert forbidden not in page.lower(), forbidden
    for tag in re.findall(r"<[a-zA-Z][^>]*>", page):  # no element carries a handler or source
        assert not re.search(r"\s(src|on\w+)\s*=", tag), tag
    assert "&lt;script&gt;alert(1)&lt;/script&gt; ATACMS hit Russian territory" in page
    assert "&lt;img src=x onerror=alert(6)&gt;Hostile &amp; Co" in page
