"""The Telegram web-preview connector: parsing the page and paging back to the cursor."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsmon.connectors.base import Defaults
from newsmon.connectors.fields import parse_views
from newsmon.connectors.http import HttpClient
from newsmon.connectors.records import Cursor
from newsmon.connectors.telegram import (
    TelegramConnector,
    TelegramPost,
    TelegramSource,
    parse_preview,
    post_to_item,
)
from tests.connectors.feeds import fixture
from tests.connectors.server import LocalServer, Reply, Request
from tests.connectors.tgpages import channel_pages, page, post

NOW = datetime(2024, 11, 25, 12, 0, tzinfo=UTC)
FAST = Defaults(telegram_page_delay_s=0, min_interval_s=0)


def channel(base_url: str = "https://t.me", name: str = "defence_watch") -> TelegramSource:
    return TelegramSource(id="tg-defence-watch", type="telegram", channel=name, base_url=base_url,
                          name="Defence Watch", lang="en", country="GB")


def preview() -> dict[int, TelegramPost]:
    parsed = parse_preview(fixture("telegram-preview.html").decode(), "defence_watch")
    assert parsed.is_preview and parsed.problems == ()
    return {p.message_id: p for p in parsed.posts}


def test_every_post_of_the_page_is_read_in_order() -> None:
    assert list(preview()) == [4100, 4101, 4102, 4103, 4104, 4105, 4106, 4107]


def test_text_links_date_and_views_of_a_post() -> None:
    p = preview()[4101]
    assert p.text.startswith("British and French troops for Ukraine?\n\nLondon and Paris have")
    assert "#Ukraine #NATO" in p.text
    assert p.links == (
        "https://www.lemonde.fr/international/article/2024/11/25/ukraine.html",
    )
    assert p.date == datetime(2024, 11, 25, 8, 15, 2, tzinfo=UTC)
    assert p.views == 8421 and not p.edited
    assert p.url == "https://t.me/defence_watch/4101"


def test_forwarded_photo_with_caption_edited() -> None:
    p = preview()[4102]
    assert p.forwarded_from == "Ministry of Defence of Russia"
    assert p.forwarded_from_url == "https://t.me/mod_russia_en/9876"
    assert p.media == ("photo",) and p.edited and p.views == 21_300
    assert p.text == "Statement on the use of ATACMS missiles against the Bryansk region."


def test_a_reply_keeps_only_its_own_text() -> None:
    assert preview()[4103].text.startswith("Update: the French foreign minister")


def test_media_captions_documents_and_polls() -> None:
    posts = preview()
    assert posts[4104].media == ("video",) and posts[4104].views == 1_200
    assert posts[4104].text.startswith("Video: Oreshnik launch footage")
    assert posts[4104].links == ("https://example.org/oreshnik",)
    assert posts[4106].text == "NATO-summit-declaration-2024.pdf"
    assert posts[4107].text == "Should European troops be deployed to Ukraine?"
    assert posts[4105].text == "" and posts[4105].media == ("sticker",)
    assert posts[4100].text == ""


@pytest.mark.parametrize(
    ("text", "views"),
    [("401", 401), ("1.2K", 1200), ("12.7K", 12700), ("3M", 3_000_000), ("", None), ("x", None)],
)
def test_views_read_like_the_page_shows_them(text: str, views: int | None) -> None:
    assert parse_views(text) == views


def test_a_post_becomes_an_item_with_a_stable_public_id() -> None:
    p = preview()[4102]
    local = post_to_item(p, channel("http://127.0.0.1:9"), NOW)
    public = post_to_item(p, channel(), NOW)
    assert local.item_id == public.item_id and local.url == "https://t.me/defence_watch/4102"
    assert local.title == "Statement on the use of ATACMS missiles against the Bryansk region."
    assert local.summary == "Forwarded from Ministry of Defence of Russia"


def test_views_do_not_change_the_revision() -> None:
    html_a = page("c_hannel", [post("c_hannel", 1, "Same text", views="1K")]).decode()
    html_b = page("c_hannel", [post("c_hannel", 1, "Same text", views="9K")]).decode()
    src = channel(name="c_hannel")
    a = post_to_item(parse_preview(html_a, "c_hannel").posts[0], src, NOW)
    b = post_to_item(parse_preview(html_b, "c_hannel").posts[0], src, NOW)
    assert a.revision == b.revision


def test_a_broken_post_is_counted_not_fatal() -> None:
    html = page("c_hannel", [post("c_hannel", 7, "fine")]).decode().replace(
        "<section", '<div class="tgme_widget_message" data-post="c_hannel/abc"></div><section', 1
    )
    parsed = parse_preview(html, "c_hannel")
    assert [p.message_id for p in parsed.posts] == [7]
    assert [p.kind for p in parsed.problems] == ["bad-post"]


def serve_channel(
    server: LocalServer, pages: dict[str, bytes], name: str = "defence_watch"
) -> None:
    def handler(request: Request) -> Reply:
        key = f"?before={request.query['before']}" if "before" in request.query else ""
        return Reply(pages[key]) if key in pages else Reply(page(name, []))

    server.route(f"/s/{name}", handler)


def test_first_poll_reads_only_the_newest_page(server: LocalServer) -> None:
    serve_channel(server, channel_pages("defence_watch", range(101, 121)))
    with HttpClient() as http:
        result = TelegramConnector(channel(server.url("")), FAST, http).poll(Cursor())
    assert [i.title for i in result.items] == [f"Post {n}" for n in range(116, 121)]
    assert result.cursor.last_message_id == 120
    assert len(server.requests) == 1


def test_pages_back_until_the_cursor(server: LocalServer) -> None:
    serve_channel(server, channel_pages("defence_watch", range(101, 121)))
    with HttpClient() as http:
        result = TelegramConnector(channel(server.url("")), FAST, http).poll(
            Cursor(last_message_id=108)
        )
    assert [r.query.get("before") for r in server.requests] == [None, "116", "111"]
    ids = [int(i.url.rsplit("/", 1)[1]) for i in result.items]
    assert ids == list(range(106, 121))  # oldest first; 106-108 are dropped later as seen
    assert result.cursor.last_message_id == 120 and result.problems == ()


def test_paging_stops_at_the_limit_and_says_so(server: LocalServer) -> None:
    serve_channel(server, channel_pages("defence_watch", range(101, 141)))
    defaults = FAST.model_copy(update={"telegram_max_pages": 2})
    with HttpClient() as http:
        result = TelegramConnector(channel(server.url("")), defaults, http).poll(
            Cursor(last_message_id=105)
        )
    assert len(server.requests) == 2
    assert [p.kind for p in result.problems] == ["paging-limit"]
    assert result.cursor.last_message_id == 140


def test_pages_are_spaced_out(server: LocalServer) -> None:
    serve_channel(server, channel_pages("defence_watch", range(101, 121)))
    pauses: list[float] = []
    with HttpClient() as http:
        TelegramConnector(
            channel(server.url("")), Defaults(telegram_page_delay_s=1.5), http, sleep=pauses.append
        ).poll(Cursor(last_message_id=108))
    assert pauses == [1.5, 1.5]


def test_429_backs_off_and_keeps_what_was_read(server: LocalServer) -> None:
    pages = channel_pages("defence_watch", range(101, 121))

    def handler(request: Request) -> Reply:
        if "before" in request.query:
            return Reply(b"Too Many Requests", 429, {"Retry-After": "90"})
        return Reply(pages[""])

    server.route("/s/defence_watch", handler)
    with HttpClient() as http:
        result = TelegramConnector(channel(server.url("")), FAST, http).poll(
            Cursor(last_message_id=100)
        )
    assert result.status == "throttled" and result.retry_after_s == 90
    assert len(result.items) == 5
    assert result.cursor.last_message_id == 100  # the gap is read again next time


def test_a_channel_without_a_public_preview_is_a_hard_error(server: LocalServer) -> None:
    # t.me answers /s/<private or unknown> with a redirect to a landing page without posts
    server.route("/s/closed_chan", Reply(status=302, headers={"Location": "/closed_chan"}))
    server.route("/closed_chan", Reply(b"<html><body><div class='tgme_page'>Contact</div>"
                                       b"</body></html>"))
    with HttpClient() as http:
        result = TelegramConnector(channel(server.url(""), "closed_chan"), FAST, http).poll(
            Cursor()
        )
    assert result.status == "error" and result.error_kind == "no-preview" and result.hard


def test_posts_without_text_are_skipped_and_counted(server: LocalServer) -> None:
    server.route("/s/defence_watch", Reply(fixture("telegram-preview.html")))
    with HttpClient() as http:
        result = TelegramConnector(channel(server.url("")), FAST, http).poll(Cursor())
    assert result.skipped == 2  # the service message and the sticker
    assert len(result.items) == 6
    assert result.cursor.last_message_id == 4107
