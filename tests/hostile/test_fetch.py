"""Hostile servers against a real poll: every one ends as a result of the poll, in bounded time
and memory, never as a hang, a crash or a fetch of something it should not reach.

The polls go through ``RssConnector.poll`` with the project's HTTP client, against servers on
127.0.0.1 that misbehave on purpose (tests/hostile/server.py).
"""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime

import pytest

from newsmon.connectors.base import Defaults, PollResult
from newsmon.connectors.guard import AddressGuard
from newsmon.connectors.http import HttpClient, HttpSettings
from newsmon.connectors.records import Cursor
from newsmon.connectors.rss import RssConnector, RssSource
from tests.hostile.server import (
    HostileServer,
    drip,
    endless_chunks,
    hostile_server,
    huge,
    redirect,
    respond,
    slow_start,
)

pytestmark = pytest.mark.timeout(60)

MB = 1024 * 1024
#: Short limits so a test takes seconds; test_default_limits_bound_every_fetch checks the
#: shipped ones.
FAST = HttpSettings(connect_timeout_s=2, read_timeout_s=1.0, total_timeout_s=2.5,
                    max_bytes=10 * MB)
#: Stands for a public address: the article guard lets it through, and nothing else local.
PUBLIC = "127.0.0.2"
GUARD = AddressGuard(is_allowed=lambda address: address == PUBLIC)
FEED = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        b"<item><title>Headline</title><link>LINK</link><guid>g1</guid>"
        b"<description>Short summary.</description></item></channel></rss>")


def poll(url: str, settings: HttpSettings = FAST, *, full_text: bool = False,
         article_guard: AddressGuard | None = None) -> tuple[PollResult, float, RssConnector]:
    source = RssSource(id="hostile", type="rss", url=url, name="Hostile", lang="en",
                       country="GB", full_text=full_text)
    defaults = Defaults(http=settings)
    http = HttpClient(settings)
    article_http = HttpClient(settings, guard=article_guard or AddressGuard())
    connector = RssConnector(source, defaults, http, article_http=article_http,
                             clock=lambda: datetime(2026, 1, 5, tzinfo=UTC))
    started = time.monotonic()
    try:
        result = connector.poll(Cursor())
        if result.items:
            items, problems = connector.enrich(result.items)
            result = result.model_copy(update={"items": items,
                                               "problems": result.problems + problems})
    finally:
        http.close()
        article_http.close()
    return result, time.monotonic() - started, connector


def test_default_limits_bound_every_fetch() -> None:
    defaults = HttpSettings()
    assert defaults.max_bytes <= 16 * MB
    assert defaults.total_timeout_s <= 120 and defaults.read_timeout_s <= defaults.total_timeout_s
    assert 0 < defaults.max_redirects <= 10


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "until-close"])
def test_a_100_mb_body_is_cut_at_the_size_limit(declare_length: bool) -> None:
    with hostile_server({"/feed": huge(100 * MB, declare_length=declare_length)}) as srv:
        result, elapsed, _ = poll(srv.url("/feed"))
    assert result.status == "error" and result.error_kind == "too-large" and result.hard
    assert elapsed < 10
    # The client stopped reading: the server got nowhere near 100 MB out.
    assert srv.sent["/feed"] < 40 * MB


def test_a_compressed_bomb_is_cut_after_decompressing_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (200 * MB), compresslevel=9)  # ~200 KB on the wire
    route = respond(bomb, headers={"Content-Encoding": "gzip",
                                   "Content-Type": "application/rss+xml"})
    with hostile_server({"/feed": route}) as srv:
        result, elapsed, _ = poll(srv.url("/feed"))
    assert result.error_kind == "too-large" and elapsed < 10


def test_an_endless_fast_chunked_body_hits_the_size_limit() -> None:
    with hostile_server({"/feed": endless_chunks()}) as srv:
        result, elapsed, _ = poll(srv.url("/feed"))
    assert result.error_kind == "too-large" and elapsed < 10


def test_an_endless_slow_chunked_body_hits_the_total_deadline() -> None:
    # One chunk every 0.3 s: every read succeeds well within the read timeout.
    with hostile_server({"/feed": endless_chunks(every_s=0.3, size=16)}) as srv:
        result, elapsed, _ = poll(srv.url("/feed"))
    assert result.error_kind == "timeout" and not result.hard
    assert FAST.total_timeout_s <= elapsed < FAST.total_timeout_s + 1.5


def test_headers_sent_one_byte_at_a_time_hit_the_total_deadline() -> None:
    # The case a per-read timeout cannot catch: the status line and headers trickle in, each
    # byte well within the read timeout, and no body is ever reached.
    slow_head = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 10_000 + b"\r\n\r\n"
    with hostile_server({"/feed": drip(slow_head, every_s=0.2)}) as srv:
        result, elapsed, _ = poll(srv.url("/feed"))
    assert result.error_kind == "timeout"
    assert elapsed < FAST.total_timeout_s + 1.5
    assert "in total" in (result.error or "")


def test_a_server_that_never_answers_hits_the_read_timeout() -> None:
    with hostile_server({"/feed": slow_start(30, respond(FEED))}) as srv:
        result, elapsed, _ = poll(srv.url("/feed"))
    assert result.error_kind == "timeout" and elapsed < FAST.read_timeout_s + 1.5


@pytest.mark.parametrize("loop", ["self", "ping-pong"])
def test_redirect_loops_end_at_the_redirect_limit(loop: str) -> None:
    routes = {"/feed": redirect("/feed")} if loop == "self" else {
        "/feed": redirect("/other"), "/other": redirect("/feed")}
    with hostile_server(routes) as srv:
        result, elapsed, _ = poll(srv.url("/feed"))
        hits = len(srv.hits)
    assert result.error_kind == "redirects" and result.hard and elapsed < 5
    assert hits == FAST.max_redirects + 1


def test_article_links_to_private_addresses_are_never_fetched() -> None:
    """A feed may point its items (whose pages full-text mode fetches) anywhere: at the
    loopback admin port of a search server, at a cloud metadata address, or at a public name
    that redirects to one. None of them is contacted."""
    with hostile_server({}) as inner:
        secret = inner.url("/_cluster/settings")
        links = [secret, "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/admin",
                 "http://[::1]/", "file:///etc/passwd", "http://0x7f.1/"]
        items = "".join(
            f"<item><title>Item {i}</title><link>{link}</link><guid>g{i}</guid>"
            "<description>Teaser.</description></item>" for i, link in enumerate(links))
        feed = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}'
                "</channel></rss>").encode()
        with hostile_server({"/feed": respond(feed)}) as srv:
            result, elapsed, _ = poll(srv.url("/feed"), full_text=True)
        assert inner.hits == []
    assert result.status == "ok" and len(result.items) == len(links)
    blocked = [p for p in result.problems if p.kind.startswith("full-text-")]
    assert len(blocked) == len(links) - 1  # the file: link is no http link: never an article
    assert all(p.kind == "full-text-blocked-address" for p in blocked), blocked
    assert all(item.content == "" for item in result.items)
    assert elapsed < 10


def test_a_public_article_redirecting_to_a_private_address_is_stopped() -> None:
    """The first hop passes the guard (here 127.0.0.2 stands for a public address); its
    redirect to 127.0.0.1 does not."""
    with hostile_server({}) as inner:
        with hostile_server({}, host=PUBLIC) as outer:
            outer.routes["/article"] = redirect(inner.url("/private"))
            article = outer.url("/article")
            feed = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
                    b"<item><title>A</title><link>" + article.encode() + b"</link>"
                    b"<guid>a</guid><description>x</description></item></channel></rss>")
            outer.routes["/feed"] = respond(feed)
            result, _, _ = poll(outer.url("/feed"), full_text=True, article_guard=GUARD)
            assert outer.hits == ["/feed", "/article"]
        assert inner.hits == []
    assert [p.kind for p in result.problems] == ["full-text-blocked-address"]


def hostile_page(server: HostileServer, page: bytes) -> tuple[PollResult, float]:
    link = server.url("/article")
    feed = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
            b"<item><title>A</title><link>" + link.encode() + b"</link><guid>a</guid>"
            b"<description>The feed's own summary.</description></item></channel></rss>")
    server.routes["/feed"] = respond(feed)
    server.routes["/article"] = respond(page, headers={"Content-Type": "text/html"})
    result, elapsed, _ = poll(server.url("/feed"), full_text=True, article_guard=GUARD)
    return result, elapsed


@pytest.mark.parametrize("pattern", ["<div>", "<a>x", "<ul><li>", "<b><div></b>", "<p>x</p>"])
def test_hostile_article_pages_are_refused_in_bounded_time(pattern: str) -> None:
    """A 5 MB page of one tag repeated: nested 100,000s deep, or just 1,000,000 tags. The tree
    builders need minutes to hours for these; the poll keeps the feed's summary."""
    page = b"<html><body>" + pattern.encode() * (5 * MB // len(pattern))
    with hostile_server({}, host=PUBLIC) as srv:
        result, elapsed = hostile_page(srv, page)
    assert result.status == "ok" and result.items[0].summary == "The feed's own summary."
    assert [p.kind for p in result.problems] == ["full-text-unextractable"]
    assert elapsed < 15
