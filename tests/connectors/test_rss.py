"""RSS/Atom parsing and the RSS connector against a local server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsmon.connectors.base import Defaults
from newsmon.connectors.http import HttpClient
from newsmon.connectors.records import Cursor
from newsmon.connectors.rss import RssConnector, RssSource, parse_feed
from tests.connectors.feeds import Entry, fixture, rss
from tests.connectors.server import LocalServer, Reply

NOW = datetime(2024, 11, 25, 12, 0, tzinfo=UTC)


def source(lang: str = "en", url: str = "https://news.example/feed.xml", **kw: object) -> RssSource:
    return RssSource.model_validate(
        {"id": "test-feed", "type": "rss", "url": url, "name": "Test", "lang": lang,
         "country": "GB", **kw}
    )


@pytest.mark.parametrize(
    ("name", "content_type", "lang", "title"),
    [
        ("rss-windows-1251.xml", "application/rss+xml", "ru",
         "Британские и французские войска могут отправиться на Украину"),
        ("rss-koi8-r.xml", "application/rss+xml; charset=koi8-r", "ru",
         "Британские и французские войска могут отправиться на Украину"),
        ("rss-latin-1.xml", "application/rss+xml", "fr",
         "Défense : Paris et Londres relancent l'idée d'un déploiement en Ukraine"),
    ],
)
def test_declared_encodings_decode(name: str, content_type: str, lang: str, title: str) -> None:
    parsed = parse_feed(fixture(name), {"content-type": content_type}, source(lang), now=NOW)
    assert parsed.fatal is None and parsed.problems == ()
    assert parsed.items[0].title == title
    assert len(parsed.items) == 2


def test_an_undeclared_cyrillic_encoding_is_recognised_and_counted() -> None:
    parsed = parse_feed(
        fixture("rss-windows-1251-undeclared.xml"), {"content-type": "application/xml"},
        source("uk"), now=NOW,
    )
    assert parsed.items[0].title == "Британія та Франція обговорюють відправлення військ до України"
    assert "Ґрунтовний" in parsed.items[1].summary
    assert [p.kind for p in parsed.problems] == ["encoding"]


def test_a_broken_feed_yields_its_usable_entries_and_counts_the_error() -> None:
    parsed = parse_feed(fixture("rss-bozo.xml"), {"content-type": "application/rss+xml"},
                        source(), now=NOW)
    assert parsed.fatal is None
    assert [i.title for i in parsed.items][:1] == ["NATO & EU ministers meet in Brussels"]
    assert len(parsed.items) >= 2
    assert [p.kind for p in parsed.problems] == ["bozo"]


def test_an_html_page_is_not_a_feed() -> None:
    parsed = parse_feed(fixture("not-a-feed.html"), {"content-type": "text/html"},
                        source(), now=NOW)
    assert parsed.fatal is not None and parsed.items == ()


def test_a_body_that_names_a_local_file_is_not_opened() -> None:
    # feedparser opens its argument as a file name when it can; the body must stay a body
    parsed = parse_feed(b"/etc/hostname", {"content-type": "text/plain"}, source(), now=NOW)
    assert parsed.items == () and parsed.fatal is not None


def test_atom_entries_become_plain_text_items_with_canonical_links() -> None:
    parsed = parse_feed(
        fixture("atom-relative.xml"), {"content-type": "application/atom+xml"}, source(),
        now=NOW, base_url="https://mod.example/feeds/news.atom",
    )
    first, second = parsed.items
    assert first.title == "Minister visits troops in Estonia"
    assert first.url == "https://mod.example/news/1001"
    assert first.guid == "urn:example:mod:1001"
    assert first.content == (
        "The Defence Secretary met British troops deployed to Estonia.\n"
        "Training continues through winter."
    )
    assert first.published_at == datetime(2024, 11, 25, 9, 0, tzinfo=UTC)
    assert second.url == "https://mod.example/feeds/news/1002"
    assert second.published_at == datetime(2024, 11, 24, 17, 30, tzinfo=UTC)
    assert [p.kind for p in parsed.problems] == ["empty-entry"]


def test_item_ids_follow_guid_then_link_then_text() -> None:
    feed = rss([
        Entry(guid="g-1", title="With guid", link="https://n.example/1"),
        Entry(guid="", title="Only link", link="https://n.example/2?utm_source=rss"),
    ])
    a, b = parse_feed(feed, {}, source(), now=NOW).items
    again_a, again_b = parse_feed(feed, {}, source(), now=NOW).items
    assert (a.item_id, b.item_id) == (again_a.item_id, again_b.item_id)
    assert b.guid == "" and b.url == "https://n.example/2"
    moved = rss([Entry(guid="g-1", title="With guid", link="https://n.example/moved")])
    assert parse_feed(moved, {}, source(), now=NOW).items[0].item_id == a.item_id


def test_ttl_is_read_in_seconds() -> None:
    parsed = parse_feed(rss([Entry(guid="a", title="A")], ttl=45), {}, source(), now=NOW)
    assert parsed.ttl_s == 45 * 60


def test_connector_reports_304_without_parsing(server: LocalServer) -> None:
    server.route("/feed", Reply(status=304, headers={"ETag": '"v2"'}))
    with HttpClient() as http:
        connector = RssConnector(source(url=server.url("/feed")), Defaults(), http)
        result = connector.poll(Cursor(etag='"v1"', last_modified="Mon, 25 Nov 2024 10:00:00 GMT"))
    assert result.status == "not-modified" and result.items == ()
    assert result.cursor.etag == '"v2"'
    assert result.cursor.last_modified == "Mon, 25 Nov 2024 10:00:00 GMT"
    assert server.requests[0].headers["if-none-match"] == '"v1"'


@pytest.mark.parametrize(
    ("status", "hard"), [(404, True), (410, True), (500, False), (502, False)]
)
def test_connector_http_errors_are_results(server: LocalServer, status: int, hard: bool) -> None:
    server.route("/feed", Reply(b"error", status))
    with HttpClient() as http:
        result = RssConnector(source(url=server.url("/feed")), Defaults(), http).poll(Cursor())
    assert result.status == "error" and result.error_kind == f"http-{status}"
    assert result.hard is hard


def test_connector_429_is_throttled_with_retry_after(server: LocalServer) -> None:
    server.route("/feed", Reply(b"", 429, {"Retry-After": "600"}))
    with HttpClient() as http:
        result = RssConnector(source(url=server.url("/feed")), Defaults(), http).poll(Cursor())
    assert result.status == "throttled" and result.retry_after_s == 600


def test_connector_serves_koi8_r_by_header(server: LocalServer) -> None:
    server.route("/feed", Reply(fixture("rss-koi8-r.xml"),
                                headers={"Content-Type": "application/rss+xml; charset=KOI8-R"}))
    with HttpClient() as http:
        result = RssConnector(source("ru", url=server.url("/feed")), Defaults(), http).poll(
            Cursor()
        )
    assert result.items[1].title == "Удары ATACMS по территории России: реакция Кремля"


def test_a_feed_that_moved_for_good_is_counted(server: LocalServer) -> None:
    server.route("/old-feed", Reply(status=301, headers={"Location": "/feed"}))
    server.route("/feed", Reply(rss([Entry(guid="a", title="A")])))
    with HttpClient() as http:
        result = RssConnector(source(url=server.url("/old-feed")), Defaults(), http).poll(Cursor())
    assert result.status == "ok" and len(result.items) == 1
    assert [p.kind for p in result.problems] == ["moved"]
    assert server.url("/feed") in result.problems[0].message
