"""GDELT 2.0 as a source: the newest batch listed in ``lastupdate.txt`` (Event export,
Mentions, GKG 2.1; one batch every 15 minutes), its rows kept by a configured filter, and the
article URLs they name fetched and extracted like any full text.

One poll:

1. GET ``lastupdate.txt`` (conditional); a batch not newer than the cursor is "not modified":
   the cursor (``last_message_id``, the batch's YYYYMMDDHHMMSS) makes sure no file is read
   twice, across restarts too;
2. each listed zip of the configured ``files`` through the project's HTTP client (timeouts,
   ``max_zip_bytes``), its size and MD5 checked against the listing, and its one member
   streamed with an inflation budget (gdelt_parse.zip_lines: no zip bomb fills the memory);
3. the rows matched against ``filter``; every article URL a matching row names becomes an item
   (``guid`` = the URL, no text yet), at most ``max_articles`` per batch.

The runner then drops the URLs already published (dedup), and ``enrich`` fetches each new
article page with the guarded client and extracts its title and main text (rss.fetch_article,
the same path as RSS full text). Broken input costs only itself: a malformed row is a
``bad-row``, an archive that cannot be read a ``bad-file``, an article page that cannot be had
an ``article-unreachable`` or ``article-empty`` (all dead letters, with the URL or the row);
a file that cannot be downloaded fails the poll with the cursor unmoved, so the batch is
read again on the next poll.

GDELT keeps only the newest batch in ``lastupdate.txt``: batches published while the poller
was down are not read (``masterfilelist.txt`` would list them; backfill is not done here).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from newsmon.connectors.base import (
    ConnectorBase,
    PollResult,
    Problem,
    SourceBase,
    SourceType,
    Wiring,
    utc_now,
)
from newsmon.connectors.gdelt_parse import (
    FILE_KINDS,
    BadFile,
    BatchRows,
    FileKind,
    GdeltFilter,
    Listed,
    parse_lastupdate,
    read_rows,
    zip_lines,
)
from newsmon.connectors.guard import FetchError, url_port
from newsmon.connectors.http import HttpClient
from newsmon.connectors.records import Cursor
from newsmon.connectors.rss import fetch_article
from newsmon.models import RawItem
from newsmon.urls import canonical_url
from newsmon.values import http_url_problem

log = logging.getLogger(__name__)

LASTUPDATE_URL = "http://data.gdeltproject.org/gdeltv2/lastupdate.txt"
#: Bad rows parked one by one per file; past this, one letter counts the rest (a file in a
#: changed layout would otherwise be a hundred thousand letters).
MAX_BAD_ROWS_PARKED = 20


class GdeltSource(SourceBase):
    """GDELT 2.0's 15-minute batches (``url``: their ``lastupdate.txt``; the translingual
    stream's is ``lastupdate-translation.txt``). ``lang`` and ``country`` are what the items
    carry until the pipeline detects each article's language."""

    type: Literal["gdelt"]
    url: str = LASTUPDATE_URL
    #: Which rows become articles (gdelt_parse.GdeltFilter); at least one term is required.
    filter: GdeltFilter
    #: Which files of a batch are read; ``mentions`` adds the articles that mention an event
    #: the ``export`` rows matched, so it needs ``export``.
    files: tuple[FileKind, ...] = FILE_KINDS
    #: Article pages fetched per batch at most; the rest are parked as one ``over-limit``.
    max_articles: int = Field(default=100, gt=0, le=10_000)
    #: Largest zip downloaded (a GKG batch is 5-15 MB compressed).
    max_zip_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    #: Largest file a zip may inflate to (it is streamed, never held whole).
    max_file_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    #: Largest inflation ratio; GDELT's tab-separated text compresses about 5 to 10 times.
    max_ratio: int = Field(default=100, gt=1)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if problem := http_url_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("files")
    @classmethod
    def _files(cls, value: tuple[FileKind, ...]) -> tuple[FileKind, ...]:
        if not value:
            raise ValueError("name at least one of export, mentions, gkg")
        if "mentions" in value and "export" not in value:
            raise ValueError("mentions are kept for the events the export matched: add export")
        return tuple(kind for kind in FILE_KINDS if kind in value)

    @property
    def location(self) -> str:
        return self.url


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), url_port(parts)


class GdeltConnector(ConnectorBase[GdeltSource]):
    """Polls one GDELT stream. ``lastupdate.txt`` and the zips on its own origin are fetched
    like a configured feed; zips listed elsewhere, and every article page, through the guarded
    client (URLs taken from content)."""

    def __init__(self, source: GdeltSource, wiring: Wiring, *,
                 clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__(source, wiring.defaults, wiring.http, clock=clock)
        self.article_http = wiring.article_http

    def poll(self, cursor: Cursor) -> PollResult:
        sid, source = self._source.id, self._source
        try:
            response = self.http.get(source.url, etag=cursor.etag,
                                     last_modified=cursor.last_modified, accept="text/plain")
        except FetchError as exc:
            log.warning("source %s: fetch failed (%s): %s", sid, exc.kind, exc)
            return PollResult.failed(cursor, exc.kind, str(exc), hard=exc.hard)
        now = self.clock()
        if response.not_modified:
            return PollResult(status="not-modified", cursor=cursor, http_status=304)
        refused = PollResult.refused(log, sid, cursor, response, now, response.url)
        if refused is not None:
            return refused
        listing = parse_lastupdate(response.content.decode("utf-8", errors="replace"))
        problems = [Problem(kind="bad-entry", message=f"lastupdate line {line!r}")
                    for line in listing.bad_lines]
        stamp = listing.stamp
        if stamp is None:
            return PollResult.failed(cursor, "not-a-listing", f"{response.url}: no GDELT file"
                                     " listed", hard=True, http_status=response.status,
                                     problems=problems)
        moved = Cursor(etag=response.etag, last_modified=response.last_modified,
                       last_message_id=max(stamp, cursor.last_message_id or 0))
        if cursor.last_message_id is not None and stamp <= cursor.last_message_id:
            log.debug("source %s: batch %s already read", sid, stamp)
            return PollResult(status="not-modified", cursor=moved, http_status=response.status,
                              problems=tuple(problems))
        batch = BatchRows()
        wanted = [f for f in listing.files if f.stamp == stamp and f.kind in source.files]
        for kind in source.files:
            for listed in (f for f in wanted if f.kind == kind):
                failure = self._read_file(listed, batch, problems, cursor, now)
                if failure is not None:
                    return failure.model_copy(update={"problems": tuple(problems)})
        problems += self._bad_row_problems(batch)
        items = self._items(batch, problems, now)
        log.info("source %s: batch %s: %s candidate articles, %s rows passed over, %s bad",
                 sid, stamp, len(batch.candidates), batch.skipped, len(batch.bad))
        return PollResult(status="ok", cursor=moved, items=items, problems=tuple(problems),
                          skipped=batch.skipped, http_status=response.status)

    def _read_file(self, listed: Listed, batch: BatchRows, problems: list[Problem],
                   cursor: Cursor, now: datetime) -> PollResult | None:
        """Download one listed zip and add its rows to ``batch``. An archive that cannot be
        read is a ``bad-file`` problem (the other files go on); a download that failed is
        returned as the poll's result, failed or throttled with ``cursor`` unmoved: the batch
        is read again on the next poll."""
        source = self._source
        trusted = _origin(listed.url) == _origin(source.url)
        settings = self.defaults.http.model_copy(update={"max_bytes": source.max_zip_bytes})
        try:
            with HttpClient(settings, guard=None if trusted else self.article_http.guard,
                            gate=self.article_http.gate, max_connections=1) as client:
                response = client.get(listed.url)
        except FetchError as exc:
            log.warning("source %s: %s: %s", source.id, listed.url, exc)
            return PollResult.failed(cursor, exc.kind, f"{listed.kind} file: {exc}")
        refused = PollResult.refused(log, source.id, cursor, response, now, listed.url)
        if refused is not None:
            return refused
        try:
            content = response.content
            if len(content) != listed.size:
                raise BadFile(f"{len(content)} bytes, lastupdate.txt lists {listed.size}")
            digest = hashlib.md5(content, usedforsecurity=False).hexdigest()
            if digest != listed.md5:
                raise BadFile(f"MD5 {digest}, lastupdate.txt lists {listed.md5}")
            lines = zip_lines(content, max_bytes=source.max_file_bytes,
                              max_ratio=source.max_ratio)
            read_rows(listed.kind, lines, source.filter, batch)
        except BadFile as exc:
            log.warning("source %s: %s not read: %s", source.id, listed.url, exc)
            problems.append(Problem(kind="bad-file", message=f"{listed.url}: {exc}"))
        return None

    def _bad_row_problems(self, batch: BatchRows) -> list[Problem]:
        out = []
        for kind in FILE_KINDS:
            rows = [row for row in batch.bad if row.kind == kind]
            for row in rows[:MAX_BAD_ROWS_PARKED]:
                out.append(Problem(kind="bad-row", message=f"{kind} line {row.line}:"
                                   f" {row.reason}: {row.excerpt!r}"))
            if len(rows) > MAX_BAD_ROWS_PARKED:
                more = len(rows) - MAX_BAD_ROWS_PARKED
                out.append(Problem(kind="bad-row", message=f"{kind}: {more} more bad rows,"
                                   f" from line {rows[MAX_BAD_ROWS_PARKED].line}"))
        if batch.bad:
            log.warning("source %s: %s rows could not be read", self._source.id, len(batch.bad))
        return out

    def _items(self, batch: BatchRows, problems: list[Problem], now: datetime
               ) -> tuple[RawItem, ...]:
        ref = self._source.ref()
        candidates = list(batch.candidates.values())
        limit = self._source.max_articles
        if len(candidates) > limit:
            left = candidates[limit:]
            problems.append(Problem(kind="over-limit", message=f"{len(left)} articles over"
                                    f" max_articles ({limit}) not fetched, first:"
                                    f" {', '.join(c.url for c in left[:20])}"))
        items = []
        for candidate in candidates[:limit]:
            url = canonical_url(candidate.url)
            items.append(RawItem.make(source=ref, guid=url, url=url,
                                      published_at=candidate.published_at, first_seen_at=now))
        return tuple(items)

    def enrich(self, items: Sequence[RawItem]) -> tuple[tuple[RawItem, ...], tuple[Problem, ...]]:
        """Title and main text of each new article; one that cannot be had is left out and
        parked (``article-unreachable``, ``article-empty``), and comes back if a later batch
        names it again. Id and revision stay those of the URL, so a page that changes its
        sidebar is no update."""
        out: list[RawItem] = []
        problems: list[Problem] = []
        for item in items:
            page, problem = fetch_article(self.article_http, item.url, title=True)
            if page is not None:
                out.append(item.model_copy(update={"title": page.title, "content": page.text}))
                continue
            # fetch_article names every failure; the page was had but held no text, or not.
            kind, message = (problem.kind, problem.message) if problem else ("?", item.url)
            empty = kind in ("full-text-empty", "full-text-unextractable")
            problems.append(Problem(kind="article-empty" if empty else "article-unreachable",
                                    message=f"{item.url}: {kind}: {message}"))
            log.info("source %s: article %s: %s", self._source.id, item.url, kind)
        return tuple(out), tuple(problems)


def _connect(source: GdeltSource, wiring: Wiring) -> GdeltConnector:
    return GdeltConnector(source, wiring, clock=wiring.clock)


#: The ``gdelt`` entry of the source registry (registry.py). GDELT publishes a batch every 15
#: minutes: the RSS default interval fits.
SOURCE_TYPE = SourceType(name="gdelt", model=GdeltSource, connect=_connect,
                         default_interval=lambda defaults: defaults.interval_s)
