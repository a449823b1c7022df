"""Issue 12, the feed side: one bad field or byte must cost at most its own entry, never the
feed (defects 2 and 4). Through the real Poller against a server on 127.0.0.1 that serves
the bytes as given: ``<ttl>`` values that are no plain number, dates out of range, fields of
unexpected types, invalid bytes anywhere in a UTF-8 (or other) document, charset names that
are no character set. Each class with several triggers.
"""

from __future__ import annotations

import codecs
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from feedparser import FeedParserDict

from newsmon.connectors.items import DEAD_LETTER_PROBLEMS
from newsmon.connectors.rss import RssSource, entries_to_items, parse_feed
from tests.connectors.feeds import fixture
from tests.hostile.polling import (
    GOOD_TITLES,
    START,
    assert_dropped_are_dead_letters,
    feed_xml,
    good_feed,
    good_items,
    item_xml,
    poll_pass,
)
from tests.hostile.server import hostile_server, respond

pytestmark = pytest.mark.timeout(60)

RSS = "application/rss+xml"
SOURCE = RssSource(id="fields", type="rss", url="https://fields.example/feed", name="F",
                   lang="de", country="DE")


def serve(tmp_path: Path, body: bytes, content_type: str = f"{RSS}; charset=utf-8",
          lang: str = "en"):  # type: ignore[no-untyped-def]
    with hostile_server({"/feed": respond(body, headers={"Content-Type": content_type})}
                        ) as srv:
        return poll_pass(tmp_path, srv.url("/feed"), lang=lang)


# --- <ttl> -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", ["²", "٣", "9" * 5000, "-1", "1.5", "1e3", "６０", "+60",
                                 "0x3c", "60 minutes", "sixty"])
def test_a_ttl_that_is_no_plain_number_is_ignored_and_counted(ttl: str, tmp_path: Path) -> None:
    """``'²'.isdigit()`` then ``int('²')``: ValueError, and the feed's good items were lost
    as an ``internal`` error."""
    run = serve(tmp_path, good_feed(channel=f"<ttl>{ttl}</ttl>"))
    result = run.result()
    assert result.status == "ok" and run.titles() == list(GOOD_TITLES)
    assert run.problems.get("bad-field") == 1, run.problems
    assert result.next_due_at is not None
    assert result.next_due_at - START <= timedelta(seconds=990)  # the interval, not a ttl
    assert_dropped_are_dead_letters(run)


def test_a_plain_ttl_is_read_but_stretches_nothing_unasked(tmp_path: Path) -> None:
    # Honoured only with defaults.respect_ttl (tests/connectors/test_schedule.py): a CMS's
    # <ttl> must not make a watched source hourly without the operator choosing it.
    source = RssSource(id="s", type="rss", url="https://n.example/f", name="s", lang="en",
                       country="GB")
    parsed = parse_feed(good_feed(channel="<ttl>120</ttl>"), {}, source, now=START)
    assert parsed.ttl_s == 7200 and not parsed.problems
    run = serve(tmp_path, good_feed(channel="<ttl>120</ttl>"))
    due = run.result().next_due_at
    assert due is not None and due - START <= timedelta(seconds=900 * 1.1)
    assert "bad-field" not in run.problems


# --- dates and fields of unexpected types ----------------------------------------------------

BAD_DATES = [
    "<pubDate>Mon, 01 Jan 99999 00:00:00 GMT</pubDate>",
    "<pubDate>Fri, 31 Dec 9999 23:59:59 -1400</pubDate>",
    "<pubDate>Sat, 01 Jan 0000 00:00:00 GMT</pubDate>",
    "<pubDate>Tue, 32 Jan 2026 25:61:61 GMT</pubDate>",
    "<pubDate>" + "9" * 5000 + "</pubDate>",
    "<dc:date>0000-00-00T00:00:00Z</dc:date>",
    "<dc:date>9999-12-31T23:59:59-14:00</dc:date>",
    "<pubDate>²³ Jan 2026</pubDate>",
]


@pytest.mark.parametrize("date", BAD_DATES, ids=range(len(BAD_DATES)))
def test_an_entry_date_out_of_range_costs_only_the_date(date: str, tmp_path: Path) -> None:
    items = [*good_items(), item_xml("dated", "Dated entry", date)]
    body = feed_xml(items).replace('<rss version="2.0">', '<rss version="2.0" xmlns:dc='
                                   '"http://purl.org/dc/elements/1.1/">').encode()
    run = serve(tmp_path, body)
    assert run.result().status == "ok"
    assert run.titles() == [*GOOD_TITLES, "Dated entry"]
    dated = run.published[-1]
    assert dated.published_at is None or datetime(1, 1, 2, tzinfo=UTC) < dated.published_at


@pytest.mark.parametrize("extra", [
    "<description><dc:date>",            # feedparser leaves summary None: TypeError before
    "<description><category>c</category>",
    "<description><enclosure url='x'/>",
])
def test_an_unclosed_element_in_a_description_costs_nothing(extra: str, tmp_path: Path) -> None:
    """The entry keeps its title; the summary that feedparser could not build is empty.
    (Before: ``TypeError: argument of type 'NoneType' is not iterable``, the feed lost.)"""
    body = feed_xml([*good_items(), item_xml("broken", "Broken description", extra)]).replace(
        '<rss version="2.0">',
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">').encode()
    run = serve(tmp_path, body)
    assert run.result().status == "ok"
    assert run.titles() == [*GOOD_TITLES, "Broken description"]


@pytest.mark.parametrize("bad", [
    {"title": "T", "summary_detail": "not a mapping"},
    {"title": "T", "content": "a string, not a list"},
    {"title": "T", "content": [None]},
    {"title": "T", "title_detail": ["x"]},
    {"title": "T", "published_parsed": "yesterday", "id": "\ud800"},
], ids=range(5))
def test_an_entry_whose_fields_cannot_be_read_costs_that_entry_alone(bad: dict) -> None:
    """feedparser's entries with fields of types it does not usually build: the entry is a
    ``bad-entry`` (a dead letter, with its reason), the others are items."""
    entries = [FeedParserDict(title="First", id="a"), FeedParserDict(bad),
               FeedParserDict(title="Last", id="b")]
    items, problems = entries_to_items(entries, SOURCE, now=START)
    assert [i.title for i in items] == ["First", "Last"]
    assert [p.kind for p in problems] == ["bad-entry"] and "bad-entry" in DEAD_LETTER_PROBLEMS
    assert problems[0].message.startswith("entry 1 (")


# --- invalid bytes (defect 4) ----------------------------------------------------------------

#: Where the bad byte goes: in the channel title, before, inside and after the good items'
#: text, inside a guid, in markup.
SPOTS = ["<title>Hos", "<title>Truppen", "für", "ВОЙСКА", "у границы", "</channel>",
         "<guid>good-1", "<link>https://news"]
BAD = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xe2\x82", b"\x80"]


def corrupt(body: bytes, spot: str, bad: bytes) -> bytes:
    at = body.index(spot.encode()) + len(spot.encode())
    return body[:at] + bad + body[at:]


@pytest.mark.parametrize("bad", BAD, ids=lambda b: b.hex())
@pytest.mark.parametrize("spot", SPOTS)
def test_one_invalid_byte_anywhere_leaves_every_good_item_readable(
        spot: str, bad: bytes, tmp_path: Path) -> None:
    """feedparser fell back to windows-1252 for the whole document: ``fÃ¼r``, ``Đ'ĐžĐ™``.
    Now the bad bytes alone become U+FFFD; the problem is counted (nothing is lost: no dead
    letter)."""
    run = serve(tmp_path, corrupt(good_feed(), spot, bad))
    assert run.result().status == "ok"
    titles = [t.replace("\ufffd", "") for t in run.titles()]
    assert titles == list(GOOD_TITLES), run.titles()
    assert run.problems.get("invalid-bytes") == 1, run.problems
    assert run.letters == []


@pytest.mark.parametrize(("declared", "content_type"), [
    ("", RSS), (' encoding="utf-8"', RSS), ("", f"{RSS}; charset=utf-8"),
    (' encoding="UTF8"', "text/xml"), ("", "text/html; charset=utf-8"),
    (' encoding="utf-8"', f"{RSS}; charset=windows-1252"),  # the server's default charset
])
def test_invalid_bytes_are_replaced_however_utf8_is_declared(
        declared: str, content_type: str, tmp_path: Path) -> None:
    body = corrupt(good_feed(decl=declared), "für", b"\xff\xfe")
    run = serve(tmp_path, body, content_type)
    assert run.titles() == ["Truppen für\ufffd\ufffd die Ukraine", *GOOD_TITLES[1:]]
    assert run.problems.get("invalid-bytes") == 1


def test_a_bom_and_several_bad_bytes_keep_the_text() -> None:
    body = codecs.BOM_UTF8 + corrupt(corrupt(good_feed(), "für", b"\xff"), "ВОЙСКА", b"\xc0")
    parsed = parse_feed(body, {}, SOURCE, now=START)
    assert [i.title.replace("\ufffd", "") for i in parsed.items] == list(GOOD_TITLES)
    assert [p.kind for p in parsed.problems] == ["invalid-bytes"]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16", "utf-32"])
def test_a_lone_surrogate_in_utf16_or_32_costs_one_character(encoding: str) -> None:
    text = feed_xml(good_items(), decl=f' encoding="{encoding[:6]}"')
    body = text.encode(encoding)
    unit = "für".encode(encoding.replace("utf-16", "utf-16-le").replace("utf-32", "utf-32-le")
                        if encoding in ("utf-16", "utf-32") else encoding)
    lone = {"utf-16-le": b"\x00\xd8", "utf-16-be": b"\xd8\x00", "utf-16": b"\x00\xd8",
            "utf-32": b"\x00\xd8\x00\x00"}[encoding]
    body = body.replace(unit, unit + lone, 1)
    parsed = parse_feed(body, {}, SOURCE, now=START)
    assert [i.title.replace("\ufffd", "") for i in parsed.items] == list(GOOD_TITLES)
    assert "invalid-bytes" in [p.kind for p in parsed.problems]


@pytest.mark.parametrize(("encoding", "bad"), [("windows-1251", b"\x98"), ("koi8-r", b""),
                                               ("iso-8859-5", b""), ("windows-1252", b"\x81")])
def test_a_declared_single_byte_encoding_with_an_undefined_byte_keeps_its_text(
        encoding: str, bad: bytes, tmp_path: Path) -> None:
    """A byte the declared code page leaves undefined made the whole declaration fail."""
    titles = ["Войска у границы", "Новые данные"] if encoding != "windows-1252" else [
        "Défense européenne", "Truppen für die Ukraine"]
    items = [item_xml(f"g{i}", t) for i, t in enumerate(titles)]
    body = feed_xml(items, decl=f' encoding="{encoding}"').encode(encoding)
    at = body.index(titles[0][:3].encode(encoding))
    body = body[:at] + bad + body[at:]
    run = serve(tmp_path, body, RSS, lang="ru")
    assert [t.replace("\ufffd", "") for t in run.titles()] == titles
    assert ("invalid-bytes" in run.problems) == bool(bad)


def test_undeclared_cyrillic_single_byte_feeds_are_still_guessed() -> None:
    """The repair leaves single-byte text that says nothing of its encoding to feedparser's
    fallback and the Cyrillic guess (tests/connectors/test_rss.py has the fixtures)."""
    for content_type in ("application/xml", "application/xml; charset=utf-8"):
        parsed = parse_feed(fixture("rss-windows-1251-undeclared.xml"),
                            {"content-type": content_type}, SOURCE.model_copy(
                                update={"lang": "uk"}), now=START)
        assert parsed.items[0].title.startswith("Британія та Франція")
        assert "invalid-bytes" not in [p.kind for p in parsed.problems]


# --- charset names ---------------------------------------------------------------------------

BAD_CHARSETS = ["undefined", "unicode_escape", "raw_unicode_escape", "idna", "punycode",
                "rot13", "base64", "hex", "zlib", "x" * 300, "²", "utf-8\x00", "'", ""]


@pytest.mark.parametrize("charset", BAD_CHARSETS, ids=lambda c: repr(c)[:12])
@pytest.mark.parametrize("where", ["http", "xml"])
def test_a_charset_that_is_no_character_set_is_ignored(charset: str, where: str,
                                                       tmp_path: Path) -> None:
    """``charset=undefined`` made feedparser raise UnicodeError: the feed was lost."""
    if where == "http":
        body, content_type = good_feed(decl=""), f"{RSS}; charset={charset}"
    else:
        body, content_type = good_feed(decl=f' encoding="{charset}"'), RSS
    if "\x00" in content_type:
        content_type = content_type.replace("\x00", "")
    run = serve(tmp_path, body, content_type)
    assert run.result().status == "ok" and run.titles() == list(GOOD_TITLES), run.result()
