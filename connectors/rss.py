"""RSS and Atom feeds: fetch with the project's client, parse with feedparser, yield RawItems.

Broken input is a result: a feed that is not well-formed but has usable entries yields them and
its error is counted (feedparser's ``bozo``); an entry without any text is counted and left
out; a document that is not a feed at all is a hard error of the poll. Text fields are plain
text (HTML converted, trailing subscribe/donate boilerplate removed).
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import io
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser
from newsmon.connectors.base import HARD_STATUSES, PollResult, Problem
from newsmon.connectors.extract import (
    canonical_url,
    clean_text,
    extract_article,
    html_to_text,
    strip_trailing_boilerplate,
    unextractable,
)
from newsmon.connectors.hosts import THROTTLE_STATUSES
from newsmon.connectors.http import FetchError, HttpClient
from newsmon.connectors.sources import Defaults, RssSource
from newsmon.connectors.state import Cursor
from newsmon.connectors.xmlguard import defuse
from newsmon.pipeline.models import RawItem

log = logging.getLogger(__name__)

ACCEPT_FEEDS = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9,"
    " application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
ACCEPT_HTML = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"

#: Languages written in Cyrillic: for them an undeclared single-byte encoding is far more
#: likely windows-1251 or koi8-r than the windows-1252 feedparser falls back to.
_CYRILLIC_LANGS = frozenset({"ru", "uk", "be", "bg", "sr", "mk", "kk", "ky", "tg", "mn"})
_CYRILLIC_CANDIDATES = ("windows-1251", "koi8-r")
_XML_DECL_ENCODING = re.compile(rb"^(\s*<\?xml[^>]*?)\sencoding=[\"'][^\"']*[\"']")
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ParsedFeed:
    """A feed document turned into items. ``fatal`` is set when the document is not a feed."""

    items: tuple[RawItem, ...]
    problems: tuple[Problem, ...]
    ttl_s: int | None = None
    fatal: str | None = None
    encoding: str | None = None


def _struct_to_utc(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _text(detail: Mapping[str, Any] | None, value: str) -> str:
    """feedparser keeps text/plain fields unescaped: only HTML ones are converted."""
    kind = (detail or {}).get("type", "text/html")
    return html_to_text(value) if kind in _HTML_TYPES else clean_text(value)


def _cyrillic_score(text: str) -> float:
    """Share of lower-case letters among Cyrillic ones: real text is mostly lower case, and a
    wrong single-byte guess (koi8-r read as windows-1251 or back) swaps the cases."""
    letters = [c for c in text if "\u0400" <= c <= "\u04ff"]
    if len(letters) < 10:
        return 0.0
    return sum(c.islower() for c in letters) / len(letters)


def _redecode_cyrillic(content: bytes) -> tuple[bytes, str] | None:
    """The document transcoded to UTF-8 (declaration rewritten) from the best Cyrillic
    single-byte encoding, or None when neither reads like Cyrillic text."""
    best: tuple[float, str, str] | None = None
    for encoding in _CYRILLIC_CANDIDATES:
        text = content.decode(encoding, errors="replace")
        score = _cyrillic_score(text)
        if score > 0.5 and (best is None or score > best[0]):
            best = (score, encoding, text)
    if best is None:
        return None
    data = _XML_DECL_ENCODING.sub(rb'\1 encoding="utf-8"', best[2].encode("utf-8"), count=1)
    return data, best[1]


def _parse(content: bytes, headers: Mapping[str, str]) -> Any:
    # A BytesIO, never the bytes themselves: feedparser treats a bytes/str argument it cannot
    # parse as a file name and opens it, so a body of "/etc/passwd" would read a local file.
    # feedparser's HTML sanitizer and relative-URI rewriting work on markup that html_to_text
    # turns into plain text right after (dropping scripts and styles): a quarter of the parse
    # time for nothing. Entry links are still resolved against the feed URL.
    return feedparser.parse(
        io.BytesIO(content),
        response_headers=dict(headers),
        sanitize_html=False,
        resolve_relative_uris=False,
    )


def parse_feed(
    content: bytes,
    headers: Mapping[str, str],
    source: RssSource,
    *,
    now: datetime,
    base_url: str | None = None,
) -> ParsedFeed:
    """Turn a feed document into items; pure apart from feedparser. ``headers`` are the HTTP
    response headers (lower-case names): their charset and Content-Location are used."""
    hdrs = {k.lower(): v for k, v in headers.items()}
    if base_url and "content-location" not in hdrs:
        hdrs["content-location"] = base_url  # relative links resolve against the feed URL
    problems: list[Problem] = []
    defused = defuse(content)  # entity bombs, impossible characters: connectors/xmlguard.py
    if defused.changed:
        content = defused.content
        if defused.transcoded:
            hdrs["content-type"] = "application/xml; charset=utf-8"
    if defused.removed:
        problems.append(Problem(kind="entities", message=f"{defused.removed} DTD subset(s) or"
                                " entity declaration(s) removed before parsing"))
        log.warning("source %s: entity declarations removed before parsing", source.id)
    if defused.replaced:
        problems.append(Problem(kind="char-refs", message=f"{defused.replaced} references to"
                                " no character replaced by U+FFFD"))
    parsed = _parse(content, hdrs)
    encoding = parsed.get("encoding")
    exc = parsed.get("bozo_exception")
    if (
        isinstance(exc, feedparser.CharacterEncodingOverride)
        and str(encoding).lower() in ("windows-1252", "iso-8859-1", "latin-1")
        and source.lang in _CYRILLIC_LANGS
    ):
        redecoded = _redecode_cyrillic(content)
        if redecoded is not None:
            data, guessed = redecoded
            hdrs["content-type"] = "application/xml; charset=utf-8"
            parsed = _parse(data, hdrs)
            problems.append(
                Problem(kind="encoding", message=f"undeclared encoding; read as {guessed}")
            )
            log.info("source %s: undeclared encoding, read as %s", source.id, guessed)
            encoding, exc = guessed, parsed.get("bozo_exception")
    # A wrong or missing Content-Type (text/html, none) says nothing about the document, and
    # many healthy feeds have one; counting it would bury the real parse errors.
    if parsed.get("bozo") and exc is not None and not isinstance(exc, feedparser.NonXMLContentType):
        problems.append(Problem(kind="bozo", message=f"{type(exc).__name__}: {exc}"))
    entries = parsed.get("entries") or []
    if not parsed.get("version") and not entries:
        reason = f"not a feed ({problems[-1].message})" if problems else "not a feed"
        return ParsedFeed(items=(), problems=tuple(problems), fatal=reason, encoding=encoding)

    ref = source.ref()
    items: list[RawItem] = []
    for index, entry in enumerate(entries):
        title = _text(entry.get("title_detail"), entry.get("title", ""))
        summary = strip_trailing_boilerplate(
            _text(entry.get("summary_detail"), entry.get("summary", ""))
        )
        parts = [_text(c, c.get("value", "")) for c in entry.get("content") or []]
        content_text = strip_trailing_boilerplate("\n\n".join(p for p in parts if p))
        if content_text and content_text == summary:
            summary = ""  # feedparser copies an Atom <content> into summary when there is none
        link = canonical_url(str(entry.get("link") or ""))
        if not link.startswith(("http://", "https://")):
            link = ""  # feedparser copies an Atom id such as "urn:..." into link
        guid = str(entry.get("id") or "").strip()
        if not (title or summary or content_text or link):
            problems.append(Problem(kind="empty-entry", message=f"entry {index} has no text"))
            continue
        published = _struct_to_utc(entry.get("published_parsed")) or _struct_to_utc(
            entry.get("updated_parsed")
        )
        items.append(
            RawItem.make(
                source=ref,
                guid=guid,
                url=link,
                title=title,
                summary=summary,
                content=content_text,
                published_at=published,
                first_seen_at=now,
            )
        )
    ttl_s = None
    ttl = str(parsed.get("feed", {}).get("ttl", "")).strip()
    if ttl.isdigit():
        ttl_s = int(ttl) * 60
    return ParsedFeed(items=tuple(items), problems=tuple(problems), ttl_s=ttl_s, encoding=encoding)


class RssConnector:
    """Polls one RSS/Atom feed. ``article_http`` (guarded unless private addresses are
    allowed) fetches article pages for full text; feed URLs use the unguarded ``http``."""

    def __init__(
        self,
        source: RssSource,
        defaults: Defaults,
        http: HttpClient,
        *,
        article_http: HttpClient | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._source = source
        self.defaults = defaults
        self.http = http
        self.article_http = article_http
        self.clock = clock

    @property
    def source(self) -> RssSource:
        return self._source

    def poll(self, cursor: Cursor) -> PollResult:
        sid = self._source.id
        try:
            response = self.http.get(
                self._source.url,
                etag=cursor.etag,
                last_modified=cursor.last_modified,
                accept=ACCEPT_FEEDS,
            )
        except FetchError as exc:
            log.warning("source %s: fetch failed (%s): %s", sid, exc.kind, exc)
            return PollResult.failed(cursor, exc.kind, str(exc), hard=exc.hard)
        now = self.clock()
        status = response.status
        if response.not_modified:
            log.debug("source %s: not modified", sid)
            kept = cursor.model_copy(
                update={
                    "etag": response.etag or cursor.etag,
                    "last_modified": response.last_modified or cursor.last_modified,
                }
            )
            return PollResult(status="not-modified", cursor=kept, http_status=status)
        if status in THROTTLE_STATUSES:
            throttled = PollResult.throttled(cursor, response, now)
            # One warning per 429; the sources that only met the host's cooldown say so quietly.
            log.log(logging.INFO if response.cooled_down else logging.WARNING,
                    "source %s: %s, retry after %s s", sid, throttled.error,
                    throttled.retry_after_s)
            return throttled
        if not response.ok:
            log.warning("source %s: HTTP %s from %s", sid, status, response.url)
            return PollResult.failed(
                cursor, f"http-{status}", f"HTTP {status} from {response.url}",
                hard=status in HARD_STATUSES, http_status=status,
            )
        digest = hashlib.sha256(response.content).hexdigest()
        validators = Cursor(
            etag=response.etag, last_modified=response.last_modified, body_sha256=digest
        )
        if digest == cursor.body_sha256:
            log.debug("source %s: same document as last time", sid)
            return PollResult(status="not-modified", cursor=validators, http_status=status)
        parsed = parse_feed(
            response.content, response.headers, self._source, now=now, base_url=response.url
        )
        problems = parsed.problems
        if response.moved_to:
            # Counted so the health table shows it: the configured URL should be updated.
            problems += (
                Problem(kind="moved", message=f"moved permanently to {response.moved_to}"),
            )
        for problem in problems:
            log.info("source %s: %s: %s", sid, problem.kind, problem.message)
        if parsed.fatal is not None:
            log.warning("source %s: %s", sid, parsed.fatal)
            return PollResult.failed(
                cursor, "not-a-feed", parsed.fatal, hard=True, http_status=status,
                problems=problems,
            )
        return PollResult(
            status="ok",
            cursor=validators,
            items=parsed.items,
            problems=problems,
            http_status=status,
            ttl_s=parsed.ttl_s,
        )

    def enrich(self, items: Sequence[RawItem]) -> tuple[tuple[RawItem, ...], tuple[Problem, ...]]:
        """Full text for new or updated items when the source asks for it. The item keeps the
        id and revision of its feed entry: the revision tells feed updates apart, and a page
        that changes its sidebar must not turn into an "update"."""
        if not self._source.full_text or self.article_http is None:
            return tuple(items), ()
        sid = self._source.id
        limit = self.defaults.full_text_max_items
        out: list[RawItem] = []
        problems: list[Problem] = []
        for index, item in enumerate(items):
            if not item.url or index >= limit:
                if index == limit:
                    log.info("source %s: full text limited to %s items per poll", sid, limit)
                out.append(item)
                continue
            text, problem = self._full_text(item.url)
            if problem is not None:
                problems.append(problem)
                log.info("source %s: full text of %s: %s", sid, item.url, problem.message)
            if text and len(text) > len(item.content):
                item = item.model_copy(update={"content": text})
            out.append(item)
        return tuple(out), tuple(problems)

    def _full_text(self, url: str) -> tuple[str | None, Problem | None]:
        assert self.article_http is not None
        try:
            response = self.article_http.get(url, accept=ACCEPT_HTML)
        except FetchError as exc:
            return None, Problem(kind=f"full-text-{exc.kind}", message=str(exc))
        if not response.ok:
            return None, Problem(
                kind=f"full-text-http-{response.status}", message=f"HTTP {response.status}: {url}"
            )
        html: str | bytes = response.content
        charset = _charset(response.headers.get("content-type", ""))
        if charset:
            # An unknown charset name: trafilatura detects the encoding itself.
            with contextlib.suppress(LookupError):
                html = response.content.decode(charset, errors="replace")
        reason = unextractable(html)
        if reason is not None:
            return None, Problem(kind="full-text-unextractable", message=f"{reason}: {url}")
        text = extract_article(html, url)
        if not text:
            return None, Problem(kind="full-text-empty", message=f"no main text found: {url}")
        return text, None


def _charset(content_type: str) -> str | None:
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else None
