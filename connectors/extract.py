"""Pure text helpers of the connectors: HTML to text, canonical URLs, article main text.

No I/O here. Every text a connector puts into a RawItem passes through :func:`html_to_text`
(feeds carry HTML in titles and summaries), so the revision of an item changes when its words
change, not when a tracking attribute in its markup does.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import trafilatura
from newsmon.pipeline.htmlguard import flat_text, too_deep
from selectolax.lexbor import LexborHTMLParser

_BLOCK_END = re.compile(
    r"(?i)(<br\s*/?>|</(?:p|div|li|h[1-6]|blockquote|tr|pre|section|article|figcaption)\s*>)"
)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Collapse runs of spaces, strip each line, keep at most one blank line in a row."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment; block ends and ``<br>`` become line breaks, scripts
    and styles are dropped, entities decoded. Plain text passes through (cleaned)."""
    if "<" not in html and "&" not in html:
        return clean_text(html)
    if too_deep(html):  # a tree builder would take quadratic time (pipeline/htmlguard.py)
        return clean_text(flat_text(html))
    tree = LexborHTMLParser("<body>" + _BLOCK_END.sub(r"\1\n", html) + "</body>")
    tree.strip_tags(["script", "style", "noscript", "template"])
    body = tree.body
    return clean_text(body.text(deep=True) if body is not None else "")


# Query parameters that only track a click; dropping them lets two links to one page agree.
_TRACKING = re.compile(
    r"^(utm_[a-z_]+|fbclid|gclid|dclid|yclid|msclkid|mc_cid|mc_eid|ocid|cmpid|_ga|igshid|"
    r"at_medium|at_campaign|at_custom\d|wt\.mc_id|ns_source|ns_mchannel|ns_campaign)$",
    re.IGNORECASE,
)


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no default port, no fragment, no tracking parameters; an
    IPv6 host in brackets. Not http(s), or not parseable: returned as is."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return url
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:  # IPv6: urlsplit drops the brackets
        host = f"[{host}]"
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(k, v) for k, v in pairs if not _TRACKING.match(k)])
    return urlunsplit((scheme, host, parts.path or "/", query, ""))


# --- boilerplate at the end of articles ----------------------------------------------------

# Calls to subscribe, donate or follow, in the languages of the starter feeds. They are only
# ever removed from the *end* of a text (see strip_trailing_boilerplate), where sites put them,
# so an article that discusses a newsletter keeps its words.
_BOILERPLATE = re.compile(
    r"(?i)("
    r"newsletter|subscribe|sign up|donat|support us|support our|become a (member|patron)|"
    r"follow us|appeared first on|"
    r"spende|unterstützen sie uns|premium-mitglied|abonnieren sie|folgen sie uns|"
    r"werden sie teil|erschien zuerst|"
    r"abonnez-vous|faire un don|soutenez|lettre d'information|suivez-nous|"
    r"est apparu en premier|"
    r"подпиш|подписыва|поддержите|пожертвова|рассылк|"
    r"підпиш|підтримайте|донат|розсилк|"
    r"zapisz się|wesprzyj|darowizn|subskryb|obserwuj nas|"
    r"iscriviti|abbonati|sostienici|donazion|seguici|"
    r"suscríbete|suscribete|donación|apóyanos|síguenos|boletín"
    r")"
)
_CREDIT = re.compile(
    r"(?i)^(bild|foto|photo|image|picture|fotografía|zdjęcie|фото|źródło|quelle|crédit|credit)"
    r"\s*[:©]"
)
#: A paragraph longer than this is article text even if it mentions a newsletter.
_MAX_BOILERPLATE_CHARS = 600


def strip_trailing_boilerplate(text: str) -> str:
    """Drop the trailing paragraphs that are calls to subscribe/donate/follow or image
    credits, stopping at the first one that is not (only the end of a text is touched)."""
    paragraphs = [p for p in text.split("\n") if p.strip()]
    end = len(paragraphs)
    while end > 0:
        para = paragraphs[end - 1].strip()
        is_call = len(para) <= _MAX_BOILERPLATE_CHARS and _BOILERPLATE.search(para)
        is_credit = len(para) <= 80 and _CREDIT.match(para)
        if not (is_call or is_credit):
            break
        end -= 1
    if end == len(paragraphs):
        return text
    return "\n".join(paragraphs[:end])


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
