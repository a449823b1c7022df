"""RSS and Atom feeds: fetch with the project's client, parse with feedparser, yield RawItems.

Broken input is a result: a feed that is not well-formed but has usable entries yields them and
its error is counted (feedparser's ``bozo``); an entry without any text, or one whose fields
make reading it fail in any way, is counted (``empty-entry``, ``bad-entry``: dead letters) and
left out, and the other entries go on; a feed-level field that cannot be read (a ``<ttl>`` that
is not a plain number) is counted and ignored; bytes invalid in the document's encoding become
U+FFFD (xmlguard.repair_encoding) and are counted; a document that is not a feed at all, or
that makes feedparser itself fail, is a hard error of the poll. Text fields are plain text
(HTML converted, trailing subscribe/donate boilerplate removed).
"""

from __future__ import annotations

import calendar
import hashlib
import io
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import feedparser
from pydantic import field_validator

from newsmon.connectors import base
from newsmon.connectors.base import ConnectorBase, PollResult, Problem, SourceBase
from newsmon.connectors.extract import extract_article, extract_title, unextractable
from newsmon.connectors.fields import ascii_int, charset_param, text_codec
from newsmon.connectors.guard import FetchError
from newsmon.connectors.http import HttpClient
from newsmon.connectors.records import Cursor
from newsmon.connectors.xmlguard import as_utf8, defuse, repair_encoding
from newsmon.html import clean_text, html_to_text, strip_trailing_boilerplate
from newsmon.models import RawItem, SourceRef
from newsmon.urls import canonical_url
from newsmon.values import http_url_problem

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
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


class RssSource(SourceBase):
    """An RSS or Atom feed. ``file://`` URLs are allowed here (offline demo and tests) because
    the URL is configured by an operator, not taken from feed content."""

    type: Literal["rss"]
    url: str
    #: Fetch each new item's article page and extract its main text.
    full_text: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if re.match(r"^file:///\S*$", value):
            return value
        problem = http_url_problem(value)
        if problem:
            raise ValueError(f"must be an http(s):// URL with a host, or a file:/// URL: "
                             f"{problem}")
        return value

    @property
    def location(self) -> str:
        return self.url



@dataclass(frozen=True)
class ParsedFeed:
    """A feed document turned into items. ``fatal`` is set when the document is not a feed."""

    items: tuple[RawItem, ...]
    problems: tuple[Problem, ...]
    ttl_s: int | None = None
    fatal: str | None = None
    encoding: str | None = None


def _struct_to_utc(value: Any) -> datetime | None:
    """A feedparser date (a UTC struct_time) as an aware datetime; None when absent or out
    of what datetime can hold (year 0, year 10000, nonsense)."""
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
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
    return as_utf8(best[2]), best[1]


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
    response headers (lower-case names): their charset and Content-Location are used.

    Never raises for any input: what cannot be read is a problem (one entry, one field) or
    ``fatal`` (the document)."""
    hdrs = {k.lower(): v for k, v in headers.items()}
    if base_url and "content-location" not in hdrs:
        hdrs["content-location"] = base_url  # relative links resolve against the feed URL
    problems: list[Problem] = []
    content = _repair(content, hdrs, problems, source.id)
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
    try:
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
    except Exception as error:  # feedparser's own bug on some input: the document is lost
        log.warning("source %s: feedparser failed", source.id, exc_info=True)
        return ParsedFeed(items=(), problems=tuple(problems),
                          fatal=f"the feed parser failed: {type(error).__name__}: {error}")
    # A wrong or missing Content-Type (text/html, none) says nothing about the document, and
    # many healthy feeds have one; counting it would bury the real parse errors.
    if parsed.get("bozo") and exc is not None and not isinstance(exc, feedparser.NonXMLContentType):
        problems.append(Problem(kind="bozo", message=f"{type(exc).__name__}: {exc}"))
    entries = parsed.get("entries") or []
    if not parsed.get("version") and not entries:
        reason = f"not a feed ({problems[-1].message})" if problems else "not a feed"
        return ParsedFeed(items=(), problems=tuple(problems), fatal=reason, encoding=encoding)

    items, dropped = entries_to_items(entries, source, now=now)
    problems += dropped
    ttl_s = _ttl_s(parsed, problems)
    return ParsedFeed(items=tuple(items), problems=tuple(problems), ttl_s=ttl_s,
                      encoding=encoding)


def entries_to_items(
    entries: Sequence[Any], source: RssSource, *, now: datetime
) -> tuple[list[RawItem], list[Problem]]:
    """feedparser's entries as items. An entry without text is an ``empty-entry``; one whose
    fields make reading it raise anything (fields of types feedparser does not usually build)
    is a ``bad-entry``: both are dropped, counted and parked as dead letters, and the other
    entries go on."""
    ref = source.ref()
    items: list[RawItem] = []
    problems: list[Problem] = []
    for index, entry in enumerate(entries):
        try:
            item = _item(entry, ref, now)
        except Exception as exc:  # noqa: BLE001 - one entry's fields cost that entry alone
            problems.append(Problem(kind="bad-entry", message=f"entry {index}"
                                    f" ({_entry_label(entry)}): {type(exc).__name__}: {exc}"))
            log.warning("source %s: entry %s dropped: %s: %s", source.id, index,
                        type(exc).__name__, exc)
            continue
        if item is None:
            problems.append(Problem(kind="empty-entry", message=f"entry {index} has no text"))
            continue
        items.append(item)
    return items, problems


def _repair(content: bytes, hdrs: dict[str, str], problems: list[Problem], sid: str) -> bytes:
    """The document with invalid bytes replaced and bogus charset names removed
    (xmlguard.repair_encoding); ``hdrs`` and ``problems`` updated to match."""
    content_type = hdrs.get("content-type", "")
    repaired = repair_encoding(content, charset_param(content_type))
    for name in repaired.dropped:
        problems.append(Problem(kind="bad-field",
                                message=f"charset {name[:40]!r} is no text encoding; ignored"))
    if repaired.transcoded:
        hdrs["content-type"] = "application/xml; charset=utf-8"
    elif repaired.dropped:
        hdrs["content-type"] = "application/xml"
    if repaired.replaced:
        problems.append(Problem(kind="invalid-bytes", message=f"{repaired.replaced} byte"
                                f" sequence(s) invalid in {repaired.encoding} replaced by U+FFFD"))
        log.info("source %s: %s invalid byte sequence(s) in %s replaced", sid,
                 repaired.replaced, repaired.encoding)
    return repaired.content


def _entry_label(entry: Any) -> str:
    """Something to find a dropped entry by, read as defensively as the entry itself."""
    try:
        label = entry.get("id") or entry.get("link") or entry.get("title") or "?"
    except Exception:  # noqa: BLE001 - an entry too broken to say its name
        return "?"
    return repr(label)[:200]


def _str(value: object) -> str:
    """A text field of an entry; anything but a string is no text. (feedparser leaves
    ``summary`` None when a ``<description>`` holds an unclosed element: reading it as text
    raised TypeError and lost the whole feed, issue 12.)"""
    return value if isinstance(value, str) else ""


def _item(entry: Any, ref: SourceRef, now: datetime) -> RawItem | None:
    """One feed entry as an item; None when it has no text at all. May raise on entries
    whose fields are not what feedparser usually builds: the caller counts that entry."""
    title = _text(entry.get("title_detail"), _str(entry.get("title")))
    summary = strip_trailing_boilerplate(
        _text(entry.get("summary_detail"), _str(entry.get("summary")))
    )
    parts = [_text(c, _str(c.get("value"))) for c in entry.get("content") or []]
    content_text = strip_trailing_boilerplate("\n\n".join(p for p in parts if p))
    if content_text and content_text == summary:
        summary = ""  # feedparser copies an Atom <content> into summary when there is none
    link = canonical_url(_str(entry.get("link")))
    if not link.startswith(("http://", "https://")):
        link = ""  # feedparser copies an Atom id such as "urn:..." into link
    guid = _str(entry.get("id")).strip()
    if not (title or summary or content_text or link):
        return None
    published = _struct_to_utc(entry.get("published_parsed")) or _struct_to_utc(
        entry.get("updated_parsed")
    )
    return RawItem.make(source=ref, guid=guid, url=link, title=title, summary=summary,
                        content=content_text, published_at=published, first_seen_at=now)


def _ttl_s(parsed: Any, problems: list[Problem]) -> int | None:
    """The channel's ``<ttl>`` (minutes) in seconds; a value that is not a plain number of at
    most nine ASCII digits is counted and ignored (the runner caps what it honours)."""
    feed = parsed.get("feed")
    raw = feed.get("ttl") if isinstance(feed, Mapping) else None
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    minutes = ascii_int(raw)
    if minutes is None:
        problems.append(Problem(kind="bad-field",
                                message=f"ttl {str(raw)[:40]!r} is not a number of minutes;"
                                " ignored"))
        return None
    return minutes * 60


class RssConnector(ConnectorBase[RssSource]):
    """Polls one RSS/Atom feed. ``article_http`` (guarded unless private addresses are
    allowed) fetches article pages for full text; feed URLs use the unguarded ``http``."""

    def __init__(
        self,
        source: RssSource,
        defaults: base.Defaults,
        http: HttpClient,
        *,
        article_http: HttpClient | None = None,
        clock: Callable[[], datetime] = base.utc_now,
    ) -> None:
        super().__init__(source, defaults, http, clock=clock)
        self.article_http = article_http

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
        refused = PollResult.refused(log, sid, cursor, response, now, response.url)
        if refused is not None:
            return refused
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
            page, problem = fetch_article(self.article_http, item.url)
            text = page.text if page is not None else None
            if problem is not None:
                problems.append(problem)
                log.info("source %s: full text of %s: %s", sid, item.url, problem.message)
            if text and len(text) > len(item.content):
                item = item.model_copy(update={"content": text})
            out.append(item)
        return tuple(out), tuple(problems)


@dataclass(frozen=True)
class ArticlePage:
    """The main text of an article page and, when asked for, its headline ("" if none)."""

    text: str
    title: str = ""


def fetch_article(http: HttpClient, url: str, *,
                  title: bool = False) -> tuple[ArticlePage | None, Problem | None]:
    """The article page at ``url`` fetched with ``http`` (the guarded client for URLs taken
    from content) and extracted, or the problem that prevented it: a failed fetch
    (``full-text-<kind>``), a non-2xx (``full-text-http-<status>``), a page the extractor is
    not given (``full-text-unextractable``) or one without main text (``full-text-empty``)."""
    try:
        response = http.get(url, accept=ACCEPT_HTML)
    except FetchError as exc:
        return None, Problem(kind=f"full-text-{exc.kind}", message=str(exc))
    if not response.ok:
        return None, Problem(
            kind=f"full-text-http-{response.status}", message=f"HTTP {response.status}: {url}"
        )
    html: str | bytes = response.content
    # No usable charset name: trafilatura detects the encoding itself.
    if charset := text_codec(charset_param(response.headers.get("content-type"))):
        html = response.content.decode(charset, errors="replace")
    reason = unextractable(html)
    if reason is not None:
        return None, Problem(kind="full-text-unextractable", message=f"{reason}: {url}")
    text = extract_article(html, url)
    if not text:
        return None, Problem(kind="full-text-empty", message=f"no main text found: {url}")
    return ArticlePage(text, extract_title(html) if title else ""), None


def _connect(source: RssSource, wiring: base.Wiring) -> RssConnector:
    return RssConnector(source, wiring.defaults, wiring.http, article_http=wiring.article_http,
                        clock=wiring.clock)


#: The ``rss`` entry of the source registry (registry.py).
SOURCE_TYPE = base.SourceType(name="rss", model=RssSource, connect=_connect,
                         default_interval=lambda defaults: defaults.interval_s)
