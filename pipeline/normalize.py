"""Normalize raw items into articles: clean text, language, canonical URL, trusted times.

Pure functions; the Beam transform in app.py only calls :func:`normalize_item`.
"""

from __future__ import annotations

import functools
import html
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser

from .htmlguard import flat_text, too_deep
from .models import Article, RawItem, content_id

#: A feed date further ahead than this is a wrong clock or a wrong zone, not the future.
FUTURE_TOLERANCE = timedelta(minutes=10)

#: Query parameters that only track the reader; removing them makes copies of one page
#: share a canonical URL. (w3lib's list is similar; it is not worth a dependency.)
_TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "msclkid", "yclid", "mc_cid", "mc_eid", "igshid",
        "_ga", "_gl", "ref", "ref_src", "cmpid", "ito", "at_medium", "at_campaign",
        "ocid", "smid", "cid", "s_cid", "icid", "rss", "from", "utm",
    }
)
_TRACKING_PREFIXES = ("utm_", "at_", "pk_", "mtm_")

_BOILERPLATE_LINES = re.compile(
    r"^(?:bild:|foto:|photo:|image:|read more|mehr zum thema|abonnieren sie|subscribe to|"
    r"werden sie teil unserer community|gerne können sie auch|follow us on|подписывайтесь|"
    r"підписуйтесь|читайте также|читайте також)",
    re.IGNORECASE,
)
_WS = re.compile(r"[ \t\u00a0]+")
_BLANKS = re.compile(r"\n{3,}")
_MIN_BYTES_FOR_LANGID = 40


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no fragment, no default port, no tracking parameters.

    An IPv6 host keeps its brackets (``http://[2001:db8::1]:8080/``). A URL whose port or
    IPv6 address does not parse is returned stripped, as given.
    """
    if not url:
        return ""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    host = parts.hostname or ""  # lower case, and without an IPv6 address's brackets
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or (parts.scheme, port) in (("http", 80), ("https", 443)) else (
        f"{host}:{port}"
    )
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _TRACKING_PARAMS and not k.lower().startswith(_TRACKING_PREFIXES)
    ]
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), netloc, path, urlencode(query), ""))


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment or page, one paragraph per line, boilerplate dropped."""
    if not markup:
        return ""
    if "<" not in markup:
        text = html.unescape(markup)
    elif too_deep(markup):  # a tree builder would take quadratic time (htmlguard.py)
        text = flat_text(markup)
    else:
        tree = LexborHTMLParser(markup)
        for node in tree.css("script, style, noscript, iframe, svg, form, nav, footer, aside"):
            node.decompose()
        body = tree.body or tree.root
        text = body.text(separator="\n", strip=False) if body is not None else ""
    lines = []
    for raw_line in text.splitlines():
        line = _WS.sub(" ", raw_line).strip()
        if not line:
            lines.append("")
        elif not _BOILERPLATE_LINES.match(line):
            lines.append(line)
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def text_hash(text: str) -> str:
    """Hash of the text with case and white space folded: equal for exact copies."""
    return content_id("text", " ".join(text.lower().split()))


#: Below this probability the identifier's best guess is no better than a coin: the article's
#: language is then the source's, or "und" (undetermined). On the labelled sets (dev, dev2,
#: gold) every text scores far above it; mixed and name-only texts fall below.
_MIN_CONFIDENCE = 0.5
#: Codes the identifier uses for a member of a macrolanguage, written as the macrolanguage's
#: ISO 639-1 code as feeds and rules write it; "zxx" is its "no linguistic content".
_LANG_ALIASES = {"nb": "no", "nn": "no", "arz": "ar", "ary": "ar", "yue": "zh", "wuu": "zh",
                 "uzs": "uz", "zxx": "und"}


@functools.cache
def _identifier() -> object:
    # py3langid (a maintained fork of langid.py) ships its model in the wheel (nothing is
    # downloaded) and knows 140 languages in 4 MB. On the labelled sets it is right on 99% of
    # texts, faster than lingua with the eight languages newsmon first covered and at half its
    # memory; lingua restricted to the 28 languages with rules was less accurate, three times
    # slower and took 835 MB (docs/detection.md, "Language identification").
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str, hint: str = "") -> str:
    """ISO 639-1 code (639-3 where a language has none); the source's configured language, or
    "und", when the text is too short or no language is likely enough."""
    # Bytes, not characters: the identifier reads byte n-grams, and 15 Chinese characters say
    # as much as 40 Latin letters.
    if len(text.encode("utf-8", "surrogatepass")) < _MIN_BYTES_FOR_LANGID:
        return hint or "und"
    # The first 600 characters decide as well as the whole text and cost a third as much.
    head = text[:600]
    code, probability = _identifier().classify(head)  # type: ignore[attr-defined]
    lang = _LANG_ALIASES.get(code, code)
    if probability < _MIN_CONFIDENCE:
        # Mandarin splits its probability with Wu and Cantonese, Bokmål with Nynorsk: summed
        # as one language they may be sure enough (the full ranking only in this rare case).
        totals: dict[str, float] = {}
        for code, share in _identifier().rank(head):  # type: ignore[attr-defined]
            alias = _LANG_ALIASES.get(code, code)
            totals[alias] = totals.get(alias, 0.0) + share
        lang, probability = max(totals.items(), key=lambda item: item[1])
    if lang == "und" or probability < _MIN_CONFIDENCE:
        return hint or "und"
    return str(lang)


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
    )
