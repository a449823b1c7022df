"""GDELT 2.0 as a source (issue 16, point 2): fixture files in the documented column layouts
(tests/connectors/fixtures/gdelt: Event 2.0 export, Mentions, GKG 2.1), zipped and listed in a
``lastupdate.txt`` served on 127.0.0.1 with the article pages, read by the real Poller and
published to the real Kafka. Nothing here reaches GDELT itself."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from newsmon.config import KafkaSettings
from newsmon.connectors.base import Defaults
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.gdelt import GdeltSource
from newsmon.connectors.gdelt_parse import (
    BadFile,
    BatchRows,
    GdeltFilter,
    parse_lastupdate,
    read_rows,
    zip_lines,
)
from newsmon.connectors.publisher import KafkaPublisher, ListPublisher
from newsmon.connectors.runner import Poller
from newsmon.models import RawItem
from tests.connectors.feeds import FIXTURES
from tests.connectors.server import LocalServer, Reply
from tests.connectors.test_kafka import consume, topic  # noqa: F401 - the topic fixture
from tests.connectors.test_runner import Clock

GDELT = FIXTURES / "gdelt"
STAMP = "20241125120000"
#: The host the fixture rows name; the tests serve those pages on 127.0.0.1.
PLACEHOLDER = "http://articles.invalid"
FILTER = {"themes": ["ARMEDCONFLICT", "TAX_WEAPONS_*"], "countries": ["UP"]}
NAMES = {"export": f"{STAMP}.export.CSV", "mentions": f"{STAMP}.mentions.CSV",
         "gkg": f"{STAMP}.gkg.csv"}
#: The pages the matching rows name (missing-page is not served: unreachable).
PAGES = {
    "/kharkiv-strike": "Missile strike hits Kharkiv",
    "/kharkiv-followup": "Kharkiv counts the damage",
    "/drone-attack": "Drone attack on Zaporizhzhia",
}


def article(title: str) -> bytes:
    body = " ".join(f"{title}: paragraph {n} of the report, with enough words that the"
                    " extractor keeps it as the article's main text." for n in range(6))
    return (f"<html><head><title>{title}</title><meta property='og:title' content='{title}'>"
            f"</head><body><nav>Home | World</nav><article><h1>{title}</h1><p>{body}</p>"
            f"<p>{body}</p></article></body></html>").encode()


def zipped(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return out.getvalue()


def serve_batch(server: LocalServer, stamp: str = STAMP, *, md5: dict[str, str] | None = None,
                files: dict[str, bytes] | None = None) -> dict[str, str]:
    """Route ``/gdeltv2/lastupdate.txt`` and the batch's zips (the fixture files with the
    article host pointed at ``server``, or ``files``) and the article pages; the zip paths."""
    base = server.url("")
    paths = {}
    lines = []
    for kind, name in NAMES.items():
        name = name.replace(STAMP, stamp)
        text = (files or {}).get(kind) or (GDELT / NAMES[kind]).read_bytes()
        data = zipped(name, text.replace(PLACEHOLDER.encode(), base.encode()))
        path = f"/gdeltv2/{name}.zip"
        server.route(path, Reply(data))
        digest = (md5 or {}).get(kind) or hashlib.md5(data, usedforsecurity=False).hexdigest()
        lines.append(f"{len(data)} {digest} {server.url(path)}")
        paths[kind] = path
    server.route("/gdeltv2/lastupdate.txt", Reply(("\n".join(lines) + "\n").encode()))
    for path, title in PAGES.items():
        server.route(path, Reply(article(title), headers={"Content-Type": "text/html"}))
    return paths


def gdelt_source(server: LocalServer, **kw: Any) -> GdeltSource:
    return GdeltSource.model_validate({
        "id": "gdelt-ua", "type": "gdelt", "name": "GDELT Ukraine", "lang": "en",
        "country": "US", "url": server.url("/gdeltv2/lastupdate.txt"), "filter": FILTER, **kw})


def gdelt_poller(server: LocalServer, tmp_path: Path, publisher: Any, clock: Clock,
                 **kw: Any) -> Poller:
    config = FeedsConfig(defaults=Defaults(min_interval_s=0), sources=(gdelt_source(server, **kw),))
    return Poller(config, tmp_path / "state.sqlite", publisher, clock=clock, allow_private=True)


def letters(poller: Poller) -> list[dict[str, str]]:
    return [json.loads(letter.payload) for letter in poller.state.dead_letters()]


# --- through the poller to Kafka ------------------------------------------------------------


@pytest.mark.integration
def test_a_batch_reaches_kafka_as_articles_with_their_text(
        server: LocalServer, tmp_path: Path, kafka_settings: KafkaSettings,
        topic: str) -> None:  # noqa: F811 - the fixture
    paths = serve_batch(server)
    publisher = KafkaPublisher(kafka_settings)
    clock = Clock()
    try:
        with gdelt_poller(server, tmp_path, publisher, clock) as poller:
            report = poller.poll_once()
            result = report.results[0]
            parked = letters(poller)
            cursor = poller.state.cursor("gdelt-ua")
            # The same batch again: read once, never twice (the zips are not fetched again).
            clock.advance(900)
            again = poller.poll_once().results[0]
    finally:
        publisher.close()
    records = consume(kafka_settings.bootstrap_servers, topic, at_least=3)
    items = {RawItem.from_json(r.value).url: RawItem.from_json(r.value)  # type: ignore[attr-defined]
             for r in records}
    assert sorted(items) == sorted(server.url(p) for p in PAGES)
    for path, title in PAGES.items():
        got = items[server.url(path)]
        assert got.title == title and f"{title}: paragraph 5 of the report" in got.content
        assert got.source.type == "gdelt" and got.source.id == "gdelt-ua"
        assert got.published_at is not None and got.published_at.year == 2024
    assert result.status == "ok" and result.new_items == 3
    assert cursor.last_message_id == int(STAMP)
    # Three malformed rows (a short export row, an export row whose URL is no URL, a GKG row
    # of ten columns) and the unreachable page: each its own dead letter.
    kinds = sorted(letter["kind"] for letter in parked)
    assert kinds == ["article-unreachable", "bad-row", "bad-row", "bad-row"]
    assert any("/missing-page" in letter["detail"] for letter in parked)
    assert again.status == "not-modified" and again.new_items == 0
    assert all(len(server.hits(path)) == 1 for path in paths.values())


def test_the_next_batch_is_read_and_known_articles_are_not_fetched_again(
        server: LocalServer, tmp_path: Path) -> None:
    serve_batch(server)
    published = ListPublisher()
    clock = Clock()
    with gdelt_poller(server, tmp_path, published, clock) as poller:
        poller.poll_once()
        serve_batch(server, "20241125121500")
        clock.advance(900)
        result = poller.poll_once().results[0]
        cursor = poller.state.cursor("gdelt-ua")
    # Same rows in the new batch: every article already published, none fetched twice; the
    # unreachable one is tried again (it was parked, not marked seen).
    assert result.status == "ok" and result.new_items == 0
    assert cursor.last_message_id == 20241125121500
    assert all(len(server.hits(path)) == 1 for path in PAGES)
    assert len(server.hits("/missing-page")) == 2
    assert len(published.items) == 3


def test_a_file_that_fails_to_download_leaves_the_batch_for_the_next_poll(
        server: LocalServer, tmp_path: Path) -> None:
    paths = serve_batch(server)
    server.route(paths["gkg"], Reply(b"gone", 500))
    published = ListPublisher()
    clock = Clock()
    with gdelt_poller(server, tmp_path, published, clock) as poller:
        first = poller.poll_once().results[0]
        assert poller.state.cursor("gdelt-ua").last_message_id is None
        assert not published.items  # nothing of a half-read batch goes out
        serve_batch(server)
        clock.advance(3600)
        second = poller.poll_once().results[0]
    assert first.status == "error" and first.error_kind == "http-500"
    assert second.status == "ok" and second.new_items == 3


def test_a_throttled_file_honours_retry_after_and_moves_no_cursor(server: LocalServer,
                                                                   tmp_path: Path) -> None:
    paths = serve_batch(server)
    server.route(paths["mentions"], Reply(b"slow down", 429, headers={"Retry-After": "1200"}))
    clock = Clock()
    with gdelt_poller(server, tmp_path, ListPublisher(), clock) as poller:
        result = poller.poll_once().results[0]
        health = poller.state.health("gdelt-ua")
        cursor = poller.state.cursor("gdelt-ua")
    assert result.status == "throttled" and cursor.last_message_id is None
    assert health.next_due_at is not None
    assert (health.next_due_at - clock.now).total_seconds() >= 1200


def test_article_pages_go_through_the_address_guard(server: LocalServer,
                                                    tmp_path: Path) -> None:
    # The list and its zips are configured (their origin is trusted); the article URLs come
    # from GDELT's rows, and a row naming a private address is not fetched.
    serve_batch(server)
    config = FeedsConfig(defaults=Defaults(min_interval_s=0),
                         sources=(gdelt_source(server),))
    published = ListPublisher()
    with Poller(config, tmp_path / "state.sqlite", published, clock=Clock()) as poller:
        result = poller.poll_once().results[0]
        parked = letters(poller)
    assert result.status == "ok" and not published.items
    assert all(len(server.hits(path)) == 0 for path in PAGES)
    unreachable = [letter for letter in parked if letter["kind"] == "article-unreachable"]
    assert len(unreachable) == 4 and all("non-public" in u["detail"] for u in unreachable)


def test_a_corrupt_file_is_parked_and_the_others_are_read(server: LocalServer,
                                                          tmp_path: Path) -> None:
    serve_batch(server, md5={"gkg": "0" * 32})
    published = ListPublisher()
    with gdelt_poller(server, tmp_path, published, Clock()) as poller:
        result = poller.poll_once().results[0]
        parked = letters(poller)
    # The export and its mentions still give their two articles; drone-attack was in the GKG.
    assert result.status == "ok"
    assert sorted(i.url for i in published.items) == sorted(
        server.url(p) for p in ("/kharkiv-strike", "/kharkiv-followup"))
    assert any(letter["kind"] == "bad-file" and "MD5" in letter["detail"] for letter in parked)


def test_a_page_without_main_text_is_parked_not_published(server: LocalServer,
                                                           tmp_path: Path) -> None:
    serve_batch(server)
    server.route("/kharkiv-followup", Reply(b"<html><body><nav>Home | World</nav></body></html>",
                                            headers={"Content-Type": "text/html"}))
    published = ListPublisher()
    with gdelt_poller(server, tmp_path, published, Clock()) as poller:
        poller.poll_once()
        parked = letters(poller)
    assert server.url("/kharkiv-followup") not in {i.url for i in published.items}
    assert len(published.items) == 2
    empty = [letter for letter in parked if letter["kind"] == "article-empty"]
    assert len(empty) == 1 and "/kharkiv-followup: full-text-empty" in empty[0]["detail"]


def test_max_articles_parks_the_rest(server: LocalServer, tmp_path: Path) -> None:
    serve_batch(server)
    published = ListPublisher()
    with gdelt_poller(server, tmp_path, published, Clock(), max_articles=2) as poller:
        poller.poll_once()
        parked = letters(poller)
    assert len(published.items) == 2
    assert [letter for letter in parked if letter["kind"] == "over-limit"]


# --- the parts, without a server ------------------------------------------------------------


def _rows(kind: str, flt: GdeltFilter, batch: BatchRows) -> None:
    text = (GDELT / NAMES[kind]).read_text()
    read_rows(kind, iter(text.splitlines()), flt, batch)  # type: ignore[arg-type]


def test_each_layout_yields_its_matching_urls() -> None:
    batch = BatchRows()
    flt = GdeltFilter.model_validate(FILTER)
    for kind in ("export", "mentions", "gkg"):
        _rows(kind, flt, batch)
    urls = {c.url.removeprefix(PLACEHOLDER): c for c in batch.candidates.values()}
    assert sorted(urls) == ["/drone-attack", "/kharkiv-followup", "/kharkiv-strike",
                            "/missing-page"]
    assert urls["/kharkiv-strike"].kind == "export"
    assert "country:up" in urls["/kharkiv-strike"].matched
    assert urls["/kharkiv-followup"].matched == ("event:1201",)
    assert "theme:TAX_WEAPONS_MISSILE" in urls["/missing-page"].matched
    assert [(row.kind, row.line) for row in batch.bad] == [("export", 3), ("export", 4),
                                                           ("gkg", 5)]


@pytest.mark.parametrize(("terms", "url"), [
    ({"actors": ["zelensky"]}, "/drone-attack"),
    ({"locations": ["odesa"]}, "/missing-page"),
    ({"keywords": ["bank of japan"]}, "/stock-markets"),
    ({"keywords": ["trade-talks"]}, "/trade-talks"),
])
def test_actors_locations_and_keywords_select_rows(terms: dict[str, list[str]],
                                                   url: str) -> None:
    batch = BatchRows()
    flt = GdeltFilter.model_validate(terms)
    for kind in ("export", "gkg"):
        _rows(kind, flt, batch)
    assert [c.url.removeprefix(PLACEHOLDER) for c in batch.candidates.values()] == [url]


def test_an_empty_filter_and_mentions_without_export_are_refused() -> None:
    with pytest.raises(ValidationError, match="at least one of themes"):
        GdeltFilter()
    with pytest.raises(ValidationError, match="add export"):
        GdeltSource.model_validate({"id": "g", "type": "gdelt", "name": "g", "lang": "en",
                                    "country": "US", "filter": FILTER, "files": ["mentions"]})


def test_lastupdate_lines_that_are_no_gdelt_file_are_counted() -> None:
    listing = parse_lastupdate(
        "150383 297a16b493de7cf6ca809a7cc31d0b93 http://data.gdeltproject.org/gdeltv2/"
        "20150218230000.export.CSV.zip\n"
        "10768507 ea8dde0beb0ba98810a92db068c0ce99 http://data.gdeltproject.org/gdeltv2/"
        "20150218230000.gkg.csv.zip\n"
        "garbage line\n"
        "12 ea8dde0beb0ba98810a92db068c0ce99 file:///etc/20150218230000.gkg.csv.zip\n")
    assert [f.kind for f in listing.files] == ["export", "gkg"]
    assert listing.stamp == 20150218230000 and len(listing.bad_lines) == 2
    translated = parse_lastupdate(
        "318084 bb27f78ba45f69a17ea6ed7755e9f8ff http://data.gdeltproject.org/gdeltv2/"
        "20150218231500.translation.mentions.CSV.zip\n")
    assert [(f.kind, f.stamp) for f in translated.files] == [("mentions", 20150218231500)]


def test_zip_bombs_and_odd_archives_are_bad_files() -> None:
    bomb = zipped("x.export.CSV", b"\t" * 5_000_000)  # inflates about a thousand times
    with pytest.raises(BadFile, match="ratio"):
        list(zip_lines(bomb, max_bytes=10**9, max_ratio=100))
    with pytest.raises(BadFile, match="over the limit"):
        list(zip_lines(zipped("x.csv", b"a\tb\n" * 1000), max_bytes=100, max_ratio=1000))
    two = io.BytesIO()
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.csv", "a")
        archive.writestr("b.csv", "b")
    with pytest.raises(BadFile, match="2 members"):
        list(zip_lines(two.getvalue(), max_bytes=100, max_ratio=100))
    with pytest.raises(BadFile, match="BadZipFile"):
        list(zip_lines(b"PK not a zip", max_bytes=100, max_ratio=100))
    good = zipped("x.csv", "a\tb\r\nc\xe9\td\n".encode())
    assert list(zip_lines(good, max_bytes=100, max_ratio=100)) == ["a\tb", "c\xe9\td"]
