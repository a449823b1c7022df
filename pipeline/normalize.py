"""Normalize raw items into articles: clean text, language, canonical URL, trusted times.

Pure functions; the Beam transform in app.py only calls :func:`normalize_item`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from newsmon.html import html_to_text
from newsmon.languages import detect_language
from newsmon.models import Article, RawItem, content_id
from newsmon.urls import canonical_url

#: A feed date further ahead than this is a wrong clock or a wrong zone, not the future.
FUTURE_TOLERANCE = timedelta(minutes=10)


def text_hash(text: str) -> str:
    """Hash of the text with case and white space folded: equal for exact copies."""
    return content_id("text", " ".join(text.lower().split()))


def trusted_published_at(item: RawItem) -> datetime:
    """The source's date, unless it is missing or in the future: then when we first saw it."""
    published = item.published_at
    if published is None or published > item.first_seen_at + FUTURE_TOLERANCE:
        return item.first_seen_at
    return published


def normalize_item(item: RawItem) -> Article:
    """Turn a raw item into an article without topics; ``story_id`` is its own ``doc_id``
    until story grouping finds an earlier copy."""
    body = item.content or item.summary
    text = html_to_text(body)
    title = html_to_text(item.title).replace("\n", " ")
    url = canonical_url(item.url)
    if not text and not title:
        raise ValueError("item has neither title nor text")
    doc_id = content_id("doc", url) if url else item.item_id
    return Article(
        doc_id=doc_id,
        item_id=item.item_id,
        revision=item.revision,
        story_id=doc_id,
        source=item.source,
        url=url,
        title=title,
        text=text,
        lang=detect_language(f"{title}\n{text}", item.source.lang),
        published_at=trusted_published_at(item),
        first_seen_at=item.first_seen_at,
        fed_by=item.fed_by,
    )
