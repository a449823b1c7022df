"""Hostile documents: XML entity bombs and external entities, invalid UTF-8, markup nested
hundreds of thousands deep, script in titles. Each parses to a result in bounded time and
memory; text stays text.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from newsmon.connectors import extract
from newsmon.connectors.rss import ParsedFeed, RssSource, parse_feed
from newsmon.connectors.telegram import parse_preview
from newsmon.connectors.xmlguard import defuse
from newsmon.html import flat_text, html_to_text, too_deep
from newsmon.models import RawItem, SourceRef
from newsmon.pipeline import normalize
from tests.hostile.server import hostile_server, respond

pytestmark = pytest.mark.timeout(60)

NOW = datetime(2026, 1, 5, tzinfo=UTC)
SOURCE = RssSource(id="hostile", type="rss", url="https://hostile.example/feed", name="H",
                   lang="en", country="GB")


def rss(title: str, *, prolog: str = "", extra: str = "") -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n{prolog}<rss version="2.0"><channel>'
            f"<title>Feed</title><item><title>{title}</title><guid>g1</guid>"
            f"<description>Summary.</description>{extra}</item></channel></rss>")


def bounded(fn: Callable[[], ParsedFeed], *, seconds: float, megabytes: int
            ) -> tuple[ParsedFeed, float, int]:
    """Run ``fn``; return its result, its time and its peak of Python allocations."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"took {elapsed:.1f}s"
    assert peak < megabytes * 1024 * 1024, f"peak {peak / 2**20:.0f} MB"
    return result, elapsed, peak


LAUGHS = "\n".join(['<!ENTITY lol0 "lol">'] + [
    f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)])


@pytest.mark.parametrize("layout", ["one-per-line", "one-line"])
def test_billion_laughs_is_not_expanded(layout: str) -> None:
    decls = LAUGHS if layout == "one-per-line" else LAUGHS.replace("\n", "")
    doc = rss("&lol9;", prolog=f"<!DOCTYPE rss [{decls}]>\n").encode()
    parsed, _, _ = bounded(lambda: parse_feed(doc, {}, SOURCE, now=NOW), seconds=5, megabytes=50)
    assert parsed.fatal is None and len(parsed.items) == 1
    assert len(parsed.items[0].title) < 100  # 10^9 "lol"s were asked for
    assert "entities" in [p.kind for p in parsed.problems]


@pytest.mark.parametrize(("where", "encoding"), [
    ("in-doctype", "utf-8"), ("in-doctype", "utf-16"), ("in-doctype", "utf-32"),
    ("one-line", "utf-8"), ("outside-doctype", "utf-8"), ("after-markup", "utf-8"),
])
def test_quadratic_blowup_is_not_expanded(where: str, encoding: str) -> None:
    """One flat entity of 20 KB used 50,000 times: 1 GB once expanded. feedparser keeps flat
    entities and its loose parser expands them without limit (a MemoryError before the
    defence in connectors/xmlguard.py)."""
    decl = '<!ENTITY a "' + "a" * 20_000 + '">'
    prolog = {
        "in-doctype": f"<!DOCTYPE rss [\n{decl}\n]>\n",
        "one-line": f"<!DOCTYPE rss [{decl}]>",
        "outside-doctype": f"<!DOCTYPE rss>\n{decl}\n",
        # an entity value with markup ends feedparser's prolog early: the rest reaches expat
        "after-markup": f'<!DOCTYPE rss [\n<!ENTITY x "<b>">\n{decl}\n]>\n',
    }[where]
    text = rss("&a;" * 50_000, prolog=prolog, extra="<broken>")
    doc = text.replace('encoding="utf-8"', f'encoding="{encoding}"').encode(encoding)
    parsed, _, _ = bounded(lambda: parse_feed(doc, {}, SOURCE, now=NOW), seconds=20,
                           megabytes=max(64, len(doc) * 40 // 2**20))
    assert parsed.fatal is None
    assert sum(len(i.title) + len(i.summary) for i in parsed.items) <= len(text)


def test_external_entities_and_dtds_are_never_fetched_nor_read() -> None:
    with hostile_server({"/x": respond(b"FETCHED"), "/dtd": respond(b'<!ENTITY e "FETCHED">')}
                       ) as srv:
        docs = [
            rss("a &xxe; b", prolog=f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{srv.url("/x")}">]>'),
            rss("a &xxe; b", prolog='<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'),
            rss("a &e; b", prolog=f'<!DOCTYPE rss SYSTEM "{srv.url("/dtd")}">\n'),
            rss("a &e; b", prolog=f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "{srv.url("/dtd")}"> %p;]>'),
        ]
        for doc in docs:
            parsed = parse_feed(doc.encode(), {}, SOURCE, now=NOW)
            text = " ".join(f"{i.title} {i.summary}" for i in parsed.items)
            assert "FETCHED" not in text and "root:" not in text
        assert srv.hits == []


def test_a_feed_that_only_names_an_external_dtd_keeps_its_doctype() -> None:
    """RSS 0.91 feeds name Netscape's DTD: such a DOCTYPE declares nothing and stays."""
    doc = rss("Plain", prolog='<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"'
              ' "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n').encode()
    assert defuse(doc).removed == 0 and defuse(doc).content == doc
    parsed = parse_feed(doc, {}, SOURCE, now=NOW)
    assert parsed.problems == () and parsed.items[0].title == "Plain"


@pytest.mark.parametrize("garbage", [b"\xff\xfe\xfd", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80",
                                     b"\x00\x01\x02"])
def test_invalid_utf8_in_a_feed_is_a_counted_problem_not_a_crash(garbage: bytes) -> None:
    doc = rss("Good title GARBAGE here").encode().replace(b"GARBAGE", garbage)
    parsed = parse_feed(doc, {"content-type": "application/rss+xml; charset=utf-8"}, SOURCE,
                        now=NOW)
    assert parsed.fatal is None and len(parsed.items) == 1
    title = parsed.items[0].title
    assert title.startswith("Good title") and title.endswith("here")
    title.encode("utf-8")  # no lone surrogates: every stored text encodes
    RawItem.from_json(parsed.items[0].to_json())  # and survives the trip through Kafka


def test_invalid_utf8_in_a_telegram_page_and_in_the_pipeline() -> None:
    page = (b'<div class="tgme_widget_message" data-post="chan/7"><div class="tgme_widget_'
            b'message_text js-message_text">Text \xff\xfe with \xc3\x28 junk</div></div>')
    posts = parse_preview(page.decode("utf-8", errors="replace"), "chan").posts
    assert posts[0].text.startswith("Text") and posts[0].text.endswith("junk")
    # A message on Kafka that is not valid UTF-8, or escapes a lone surrogate, is refused
    # by the decoder with ValueError: the pipeline's decode stage makes it a dead letter.
    good = RawItem.make(source=SourceRef(id="s", type="rss", name="S", lang="en", country="GB"),
                        guid="g", title="Title", content="Body", first_seen_at=NOW).to_json()
    for bad in (good.replace(b"Title", b"Ti\xfftle"), good.replace(b"Title", b"Ti\\udcfftle")):
        with pytest.raises(ValueError):
            RawItem.from_json(bad)


NESTINGS = ["<div>", "<ul><li>", "<b><div></b>", "<div></span>", "<p><div>", "<a>x",
            "<table><tr><td>", "<div/>"]


@pytest.mark.parametrize("pattern", NESTINGS)
def test_deeply_nested_markup_is_text_in_bounded_time(pattern: str) -> None:
    """2 MB of one pattern (up to 500,000 levels). lexbor needs over a minute for 100,000
    nested divs; the guard (newsmon/html.py) takes the text without a tree."""
    markup = "<html><body>" + pattern * (2_000_000 // len(pattern)) + "deep text"
    assert too_deep(markup)
    checks: list[tuple[str, Callable[[], object]]] = [
        ("html_to_text", lambda: html_to_text(markup)),
        ("telegram.parse_preview", lambda: parse_preview(markup, "chan")),
        ("extract_article", lambda: extract.extract_article(markup, "https://e.example/a")),
    ]
    for name, check in checks:
        started = time.monotonic()
        out = check()
        elapsed = time.monotonic() - started
        assert elapsed < 8, f"{name}: {elapsed:.1f}s"
        if isinstance(out, str):
            assert "deep text" in out, name


def test_deep_markup_in_a_feed_summary_and_through_normalize() -> None:
    summary = "<div>" * 200_000 + "The deep summary." + "</div>" * 200_000
    doc = rss("Title", extra=f"<content:encoded><![CDATA[{summary}]]></content:encoded>").replace(
        '<rss version="2.0">',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">').encode()
    started = time.monotonic()
    parsed = parse_feed(doc, {}, SOURCE, now=NOW)
    item = parsed.items[0]
    article = normalize.normalize_item(item.model_copy(update={"content": summary}))
    assert time.monotonic() - started < 10
    assert item.content == "The deep summary." and article.text == "The deep summary."


def test_ordinary_markup_is_not_flattened() -> None:
    page = "<html><body>" + "<div><p>para <b>bold</b> <a href='x'>link</a></p></div>" * 5000
    nested = "<div>" * 300 + "inner" + "</div>" * 300
    svg = "<svg>" + "<path d='M0'/>" * 5000 + "</svg>"
    sloppy = "<p>one<p>two<li>three<li>four" * 2000
    for markup in (page, nested, svg, sloppy):
        assert not too_deep(markup)


def test_flat_text_drops_scripts_styles_and_comments() -> None:
    markup = ("<p>a &amp; b<script>alert('<p>x')</script><style>p{}</style><!-- c --></p>"
              "<div>d<br>e</div><script>never closed")
    assert flat_text(markup).split() == ["a", "&", "b", "d", "e"]


def test_script_in_titles_and_summaries_is_stored_as_text() -> None:
    doc = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>F</title>'
        b'<entry><id>e1</id><title type="html">&lt;script&gt;alert(1)&lt;/script&gt;Headline'
        b'</title><summary type="html">&lt;img src=x onerror="alert(2)"&gt;Body'
        b"&lt;script&gt;steal()&lt;/script&gt;</summary></entry>"
        b'<entry><id>e2</id><title type="text">&lt;b&gt;Bold&lt;/b&gt; claim</title></entry>'
        b'<entry><id>e3</id><title type="text">&amp;lt;script&amp;gt;alert(3)&amp;lt;/script'
        b"&amp;gt; Escaped twice</title></entry></feed>")
    items = parse_feed(doc, {}, SOURCE, now=NOW).items
    # HTML fields: markup is removed and scripts dropped, only the words stay
    assert items[0].title == "Headline" and items[0].summary == "Body"
    # a text field that *says* <b> keeps saying it, as text
    assert items[1].title == "<b>Bold</b> claim"
    # The pipeline treats every incoming text as possibly HTML (other producers may write to
    # the raw topic): elements are dropped again, and escaped markup is stored as plain text,
    # which every renderer must escape (tests/hostile/test_report.py).
    assert normalize.normalize_item(items[0]).title == "Headline"
    assert normalize.normalize_item(items[1]).title == "Bold claim"
    assert items[2].title == "&lt;script&gt;alert(3)&lt;/script&gt; Escaped twice"
    stored = normalize.normalize_item(items[2]).title
    assert stored == "<script>alert(3)</script> Escaped twice"
