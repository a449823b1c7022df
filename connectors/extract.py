"""The main text of an article page (for sources with ``full_text``). No I/O here.

Every other text a connector puts into a RawItem passes through the kernel's
:func:`newsmon.html.html_to_text` (feeds carry HTML in titles and summaries), so the revision
of an item changes when its words change, not when a tracking attribute in its markup does.
"""

from __future__ import annotations

import trafilatura

from newsmon.html import clean_text, strip_trailing_boilerplate, too_deep

#: Below this, what the extractor found is a menu or a teaser, not an article (trafilatura's
#: fallbacks return whatever text a page has); the feed's own summary is then the better text.
MIN_ARTICLE_CHARS = 200


#: trafilatura needs about 75 us per tag (measured: 1 MB of ``<p>x</p>`` takes 10 s), and far
#: more on some nestings (1 MB of ``<a>`` takes 15 s); real article pages have a few thousand.
MAX_ARTICLE_TAGS = 50_000


def unextractable(html: str | bytes) -> str | None:
    """Why a page is not given to the extractor (too many tags, nested too deep), or None."""
    markup = html.decode("latin-1") if isinstance(html, bytes) else html
    tags = markup.count("<")
    if tags > MAX_ARTICLE_TAGS:
        return f"{tags} tags, over the limit of {MAX_ARTICLE_TAGS}"
    if too_deep(markup):
        return "markup nested too deeply"
    return None


def extract_article(html: str | bytes, url: str) -> str | None:
    """The main text of an article page (trafilatura, precision over recall: navigation,
    related links and comments are left out), minus trailing boilerplate; None when nothing
    usable was found or the page is :func:`unextractable`."""
    if unextractable(html) is not None:
        return None
    text = trafilatura.extract(
        html,
        url=url,
        include_comments=False,
        include_tables=False,
        include_images=False,
        favor_precision=True,
        # Not trafilatura's deduplicate: its cache is process-wide, so a second extraction of
        # the same page (an updated item) would come back emptied.
        deduplicate=False,
    )
    if not text:
        return None
    text = strip_trailing_boilerplate(clean_text(text))
    return text if len(text) >= MIN_ARTICLE_CHARS else None


def extract_title(html: str | bytes) -> str:
    """The article's headline from the page's metadata (Open Graph, ``<title>`` without the
    site's name), or "" (and "" for a page that is :func:`unextractable`). For sources whose
    items have no title of their own (GDELT lists bare URLs)."""
    if unextractable(html) is not None:
        return ""
    metadata = trafilatura.extract_metadata(html)
    title = metadata.title if metadata is not None else None
    return clean_text(title) if title else ""
