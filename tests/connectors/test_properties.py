"""Invariants over arbitrary input: bad input is a result, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from newsmon.connectors.rss import RssSource, parse_feed
from newsmon.connectors.telegram import parse_preview
from newsmon.html import html_to_text, strip_trailing_boilerplate
from newsmon.urls import canonical_url

NOW = datetime(2024, 11, 25, tzinfo=UTC)
SOURCE = RssSource(id="p", type="rss", url="https://p.example/f", name="P", lang="ru",
                   country="RU")
FEEDISH = st.one_of(
    st.binary(max_size=2_000),
    st.text(max_size=500).map(
        lambda t: f'<?xml version="1.0"?><rss version="2.0"><channel><item><title>{t}'
        "</title></item></channel></rss>".encode("utf-8", "surrogatepass")
    ),
)


@settings(max_examples=150, deadline=None)
@given(FEEDISH, st.sampled_from(["", "application/rss+xml", "text/html; charset=koi8-r"]))
def test_any_bytes_parse_to_a_result(content: bytes, content_type: str) -> None:
    parsed = parse_feed(content, {"content-type": content_type}, SOURCE, now=NOW)
    assert parsed.fatal is not None or parsed.items is not None


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=2_000))
def test_any_page_parses_to_posts_and_problems(html: str) -> None:
    page = parse_preview(html, "chan")
    assert all(p.message_id >= 0 for p in page.posts)


@given(st.text(max_size=300))
def test_html_to_text_gives_clean_lines(html: str) -> None:
    text = html_to_text(html)
    assert text == text.strip() and "\n\n\n" not in text
    assert all(line == line.strip() for line in text.split("\n"))


@given(st.from_regex(r"https?://[A-Za-z0-9.-]{1,20}(:[0-9]{1,4})?(/[A-Za-z0-9_./-]{0,20})?"
                     r"(\?[a-z_]{1,8}=[a-z0-9]{0,5}(&utm_[a-z]{1,6}=x)?)?(#[a-z]{0,5})?",
                     fullmatch=True))
def test_canonical_urls_are_a_fixed_point(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once
    assert "utm_" not in once and "#" not in once


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=80),
                max_size=8))
def test_boilerplate_removal_only_cuts_the_end(paragraphs: list[str]) -> None:
    text = "\n".join(paragraphs)
    kept = [p for p in strip_trailing_boilerplate(text).split("\n") if p.strip()]
    original = [p for p in text.split("\n") if p.strip()]
    assert kept == original[: len(kept)]
