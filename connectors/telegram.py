"""Public Telegram channels through the web preview, ``https://t.me/s/<channel>``, no credentials.

The preview page lists the newest ~20 posts of a channel, oldest first. Each post is a
``div.tgme_widget_message`` with ``data-post="<channel>/<id>"``; inside it: the text
(``.tgme_widget_message_text.js-message_text``, also the caption of a photo or video),
forwarded-from (``.tgme_widget_message_forwarded_from_name``), media wraps, the views
(``.tgme_widget_message_views``, "1.2K") and the date (``.tgme_widget_message_date time``).
``?before=<id>`` gives the page of posts older than ``<id>``.

A poll reads the newest page and pages backwards until it reaches the stored cursor (the last
message id seen), at most ``telegram_max_pages`` pages and with a pause between them; the first
poll of a channel reads only the newest page (no backfill of a whole history). Every post of the
pages read goes to the runner's dedup, so an edited post on the newest page comes back as an
update. A credentialed MTProto connector (Telethon) would implement the same ``poll``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import urljoin

from pydantic import BaseModel, ConfigDict, Field, field_validator
from selectolax.lexbor import LexborHTMLParser, LexborNode

from newsmon.connectors import base
from newsmon.connectors.base import ConnectorBase, PollResult, Problem, SourceBase
from newsmon.connectors.fields import MAX_STORED_INT, ascii_int, parse_post_date, parse_views
from newsmon.connectors.guard import FetchError
from newsmon.connectors.http import HttpClient
from newsmon.connectors.records import Cursor
from newsmon.html import MAX_DEPTH, clean_text, html_to_text, too_deep
from newsmon.models import RawItem
from newsmon.urls import canonical_url
from newsmon.values import http_url_problem, matching

log = logging.getLogger(__name__)

#: Item ids derive from the public post URL, whatever base URL the page was read from (tests
#: read from 127.0.0.1), so an item keeps its id if the base URL changes.
CANONICAL_BASE = "https://t.me"
_TITLE_CHARS = 160
#: The largest message id a post may have: what the state store keeps as the cursor (MTProto
#: ids are 32-bit today; anything beyond the store's range is hostile, not a future Telegram).
MAX_MESSAGE_ID = MAX_STORED_INT
#: A channel username as t.me spells it in ``data-post`` (sources.py checks configured ones).
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9_]{1,64}", re.ASCII)
#: Telegram caps a message at 4,096 characters (a caption at 1,024); with its markup a post's
#: text stays far below this. A longer one is hostile and parked as a bad post: cleaning
#: megabytes of text (extract.clean_text's regexes) would take hundreds of MB of memory.
MAX_POST_HTML_CHARS = 100_000
#: Longest forwarded-from name or link kept (they only go into the summary).
_MAX_NAME_CHARS = 1_000
#: A poll stops paging back once it holds this many posts (50 pages of a busy channel): what
#: one poll keeps in memory is then about one page at the size limit, not several.
MAX_POSTS_PER_POLL = 1_000
#: How much of a hostile attribute a problem message quotes.
_SHOWN_CHARS = 120
_MEDIA_CLASSES = (
    ("photo", ".tgme_widget_message_photo_wrap"),
    ("video", ".tgme_widget_message_video_player"),
    ("document", ".tgme_widget_message_document"),
    ("audio", ".tgme_widget_message_voice"),
    ("sticker", ".tgme_widget_message_sticker"),
    ("poll", ".tgme_widget_message_poll"),
    ("location", ".tgme_widget_message_location"),
)


#: Failures of one page that say nothing about the channel: a page nested too deeply to parse
#: or over the size limit is hostile or broken markup, not a gone channel, so it is retried
#: with backoff and never counts towards disabling (a 404 or a missing preview does).
SOFT_PAGE_FAILURES = frozenset({"too-deep", "too-large"})


# Telegram public usernames: a letter, then letters, digits or underscores, 4-32 in all.
_CHANNEL = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")


class TelegramSource(SourceBase):
    """A public Telegram channel, read through its web preview ``<base_url>/s/<channel>``."""

    type: Literal["telegram"]
    channel: str
    base_url: str = "https://t.me"

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        return matching(_CHANNEL, value.removeprefix("@"),
                        "a public channel username (letters, digits, '_')")

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        problem = http_url_problem(value)
        if problem:
            raise ValueError(f"must be an http(s):// URL: {problem}")
        return value.rstrip("/")

    @property
    def location(self) -> str:
        return f"{self.base_url}/s/{self.channel}"


class TelegramPost(BaseModel):
    """One post as the preview shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: str
    message_id: int = Field(ge=1, le=MAX_MESSAGE_ID)
    date: datetime | None = None
    #: The post's text; for a photo, video or document post this is its caption.
    text: str = ""
    links: tuple[str, ...] = ()
    forwarded_from: str | None = None
    forwarded_from_url: str | None = None
    media: tuple[str, ...] = ()
    views: int | None = Field(default=None, ge=0)
    edited: bool = False

    @property
    def url(self) -> str:
        return f"{CANONICAL_BASE}/{self.channel}/{self.message_id}"


@dataclass(frozen=True)
class PreviewPage:
    posts: tuple[TelegramPost, ...]
    problems: tuple[Problem, ...]
    #: False when the page is no channel preview at all (a private or unknown channel:
    #: t.me redirects /s/<name> to a plain landing page).
    is_preview: bool
    #: Set when the page was not parsed at all (nested too deeply): whether it is a preview
    #: cannot be told, so this is not the hard "no preview" failure.
    refused: Problem | None = None


def parse_post_ref(post_ref: str, channel: str) -> tuple[str, int] | Problem:
    """``data-post="<channel>/<id>"`` -> (channel, message id); a ref without a channel is of
    ``channel``. The id must be plain ASCII digits in ``1..MAX_MESSAGE_ID`` (what the state
    store can keep as a cursor); anything else costs the post, as a ``bad-post`` problem."""
    name, _, number = post_ref.rpartition("/")
    message_id = ascii_int(number, max_digits=None, minimum=1, maximum=MAX_MESSAGE_ID)
    if message_id is None:
        return Problem(kind="bad-post", message=f"data-post {_shown(post_ref)}: no message id"
                       f" in 1..{MAX_MESSAGE_ID}")
    if name and not _CHANNEL_NAME.fullmatch(name):
        return Problem(kind="bad-post",
                       message=f"data-post {_shown(post_ref)}: not a channel username")
    return name or channel, message_id


def _shown(value: str) -> str:
    """``value`` for a message: quoted, and cut (an attribute may be megabytes long)."""
    return repr(value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…")


def _too_long(post_ref: str, size: int) -> Problem:
    return Problem(kind="bad-post", message=f"data-post {_shown(post_ref)}: text of {size}"
                   f" characters, over {MAX_POST_HTML_CHARS}")


def _first(node: LexborNode, selector: str) -> LexborNode | None:
    return node.css_first(selector)


def _links(node: LexborNode, text_node: LexborNode | None, page_url: str) -> tuple[str, ...]:
    links: list[str] = []
    link_nodes = list(text_node.css("a[href]")) if text_node is not None else []
    link_nodes += node.css("a.tgme_widget_message_link_preview[href]")
    for a in link_nodes:
        href = str(a.attributes.get("href") or "")
        # Hashtag links (?q=%23tag) and mentions are navigation within Telegram, not links.
        if href.startswith("?") or not href:
            continue
        try:
            absolute = canonical_url(urljoin(page_url, href))
        except ValueError:  # "http://[::1": a broken link costs itself, not the post
            continue
        if absolute.startswith(("http://", "https://")) and absolute not in links:
            links.append(absolute)
    return tuple(links)


def _parse_post(node: LexborNode, channel: str, page_url: str) -> TelegramPost | Problem:
    post_ref = str(node.attributes.get("data-post") or "")
    ref = parse_post_ref(post_ref, channel)
    if isinstance(ref, Problem):
        return ref
    name, message_id = ref
    time_node = _first(node, ".tgme_widget_message_date time") or _first(node, "time[datetime]")
    date = parse_post_date(time_node.attributes.get("datetime")) if time_node else None
    text_node = _first(node, ".tgme_widget_message_text.js-message_text")
    text = ""
    if text_node is not None:
        markup = text_node.html or ""
        if len(markup) > MAX_POST_HTML_CHARS:
            return _too_long(post_ref, len(markup))
        text = html_to_text(markup)
    media = tuple(kind for kind, selector in _MEDIA_CLASSES if _first(node, selector) is not None)
    if not text:
        # A document or poll without caption still says what it is about.
        for selector in (
            ".tgme_widget_message_document_title",
            ".tgme_widget_message_poll_question",
        ):
            extra = _first(node, selector)
            raw = extra.text() if extra is not None else ""
            if len(raw) > MAX_POST_HTML_CHARS:
                return _too_long(post_ref, len(raw))
            if raw.strip():
                text = clean_text(raw)
                break
    fwd = _first(node, ".tgme_widget_message_forwarded_from_name")
    fwd_name = fwd.text() if fwd is not None else ""
    fwd_url = str(fwd.attributes.get("href") or "") if fwd is not None else ""
    views_node = _first(node, ".tgme_widget_message_views")
    meta = _first(node, ".tgme_widget_message_meta")
    return TelegramPost(
        channel=name,
        message_id=message_id,
        date=date,
        text=text,
        links=_links(node, text_node, page_url),
        # A name or link longer than any real one only went into the summary: ignored.
        forwarded_from=(clean_text(fwd_name)
                        if fwd is not None and len(fwd_name) <= _MAX_NAME_CHARS else None),
        forwarded_from_url=fwd_url if 0 < len(fwd_url) <= _MAX_NAME_CHARS else None,
        media=media,
        views=parse_views(views_node.text()) if views_node is not None else None,
        edited=meta is not None and "edited" in meta.text().lower(),
    )


def parse_preview(html: str, channel: str, page_url: str = CANONICAL_BASE) -> PreviewPage:
    """All posts of one preview page, in page order; broken posts become problems.

    Each post is read innermost first and then taken out of the tree: a post nested inside
    another (hostile markup; t.me never does it) is a post of its own, and the outer one keeps
    only its own text, links and media. It also makes reading linear: every node is searched
    for one post only, however deep the posts are nested.
    """
    if too_deep(html):  # a tree builder would take quadratic time (newsmon/html.py)
        problem = Problem(kind="too-deep", message=f"{page_url}: markup nested deeper than"
                          f" {MAX_DEPTH} elements, not parsed")
        return PreviewPage(posts=(), problems=(problem,), is_preview=False, refused=problem)
    tree = LexborHTMLParser(html)
    nodes = tree.css("div.tgme_widget_message[data-post]")
    is_preview = bool(nodes) or tree.css_first(".tgme_channel_history") is not None
    parsed: list[TelegramPost | Problem] = []
    # Reversed document order: every post comes after the posts nested in it.
    for node in reversed(nodes):
        try:
            parsed.append(_parse_post(node, channel, page_url))
        except (ValueError, OverflowError) as exc:  # a field no check foresaw: this post only
            ref = _shown(str(node.attributes.get("data-post") or ""))
            parsed.append(Problem(kind="bad-post", message=f"data-post {ref}: "
                                  f"{type(exc).__name__}: {str(exc)[:_SHOWN_CHARS]}"))
        node.decompose()
    parsed.reverse()
    posts = tuple(p for p in parsed if isinstance(p, TelegramPost))
    problems = tuple(p for p in parsed if isinstance(p, Problem))
    return PreviewPage(posts=posts, problems=problems, is_preview=is_preview)


def post_to_item(post: TelegramPost, source: TelegramSource, now: datetime) -> RawItem:
    """The RawItem of a post. Views are left out on purpose: they change on every poll and
    would make every post look updated (RawItem has no field for them yet)."""
    first_line = next((line for line in post.text.split("\n") if line.strip()), "")
    title = first_line
    if len(title) > _TITLE_CHARS:
        title = title[:_TITLE_CHARS].rsplit(" ", 1)[0] + "…"
    summary = f"Forwarded from {post.forwarded_from}" if post.forwarded_from else ""
    return RawItem.make(
        source=source.ref(),
        guid=post.url,
        url=post.url,
        title=title,
        summary=summary,
        content=post.text,
        published_at=post.date,
        first_seen_at=now,
    )



class TelegramConnector(ConnectorBase[TelegramSource]):
    """Polls one public channel's web preview, paging back to the stored cursor."""

    def __init__(
        self,
        source: TelegramSource,
        defaults: base.Defaults,
        http: HttpClient,
        *,
        clock: Callable[[], datetime] = base.utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(source, defaults, http, clock=clock)
        self.sleep = sleep

    def poll(self, cursor: Cursor) -> PollResult:
        sid = self._source.id
        last_id = cursor.last_message_id
        location = self._source.location
        posts: dict[int, TelegramPost] = {}
        problems: list[Problem] = []
        skipped = 0
        url = location
        status: int | None = None
        for page_number in range(1, self.defaults.telegram_max_pages + 1):
            if page_number > 1 and self.defaults.telegram_page_delay_s:
                self.sleep(self.defaults.telegram_page_delay_s)
            try:
                response = self.http.get(url, accept="text/html")
            except FetchError as exc:
                log.warning("source %s: fetch of %s failed (%s): %s", sid, url, exc.kind, exc)
                return self._partial(
                    cursor, posts, problems, skipped,
                    PollResult.failed(cursor, exc.kind, str(exc),
                                      hard=exc.hard and exc.kind not in SOFT_PAGE_FAILURES),
                )
            status = response.status
            refused = PollResult.refused(log, sid, cursor, response, self.clock(), url)
            if refused is not None:
                return self._partial(cursor, posts, problems, skipped, refused)
            page = parse_preview(
                response.content.decode("utf-8", errors="replace"), self._source.channel, url
            )
            if page.refused is not None:
                log.warning("source %s: %s", sid, page.refused.message)
                if page_number == 1:
                    # Nothing read: a soft failure (retried with backoff, never disabling).
                    return PollResult.failed(cursor, page.refused.kind, page.refused.message,
                                             http_status=status)
                # An older page: its posts are parked as one dead letter (the problem) and
                # the cursor moves past them, as at the paging limit; stopping here for good
                # would leave the channel stuck on this page.
                problems.append(page.refused)
                break
            problems.extend(page.problems)
            if page_number == 1 and not page.is_preview:
                log.warning("source %s: %s is not a public channel preview", sid, url)
                return PollResult.failed(
                    cursor, "no-preview", f"{url} shows no public channel preview",
                    hard=True, http_status=status,
                )
            for post in page.posts:
                posts[post.message_id] = post
            if last_id is None or not page.posts:
                break  # first poll of the channel: the newest page only
            if len(posts) >= MAX_POSTS_PER_POLL:
                # Pages of thousands of posts are hostile (t.me shows ~20): paging on would
                # hold several pages' worth of items at once. Counted like the page limit.
                problems.append(Problem(kind="paging-limit", message=f"stopped after"
                                        f" {len(posts)} posts before reaching message {last_id}"))
                log.warning("source %s: post limit reached before message %s", sid, last_id)
                break
            oldest = min(p.message_id for p in page.posts)
            if oldest <= last_id + 1:
                break  # reached the cursor
            url = f"{location}?before={oldest}"
        else:
            # Stopped by the page limit before reaching the cursor: the posts in between
            # are not read. Counted, so the health table shows a channel that is too busy
            # for its interval.
            problems.append(
                Problem(
                    kind="paging-limit",
                    message=f"stopped after {self.defaults.telegram_max_pages} pages before"
                    f" reaching message {last_id}",
                )
            )
            log.warning("source %s: paging limit reached before message %s", sid, last_id)
        for problem in problems:
            log.info("source %s: %s: %s", sid, problem.kind, problem.message)
        items, skipped = self._items(posts)
        newest = max(posts, default=last_id)
        if last_id is not None and newest is not None:
            newest = max(newest, last_id)
        return PollResult(
            status="ok",
            cursor=cursor.model_copy(update={"last_message_id": newest}),
            items=items,
            problems=tuple(problems),
            skipped=skipped,
            http_status=status,
        )

    def _items(self, posts: dict[int, TelegramPost]) -> tuple[tuple[RawItem, ...], int]:
        now = self.clock()
        items: list[RawItem] = []
        skipped = 0
        for message_id in sorted(posts):  # oldest first: one source's items stay in order
            post = posts[message_id]
            if not post.text:
                # A sticker, or a photo without caption: nothing to read, not broken input.
                skipped += 1
                log.debug("source %s: post %s has no text (%s)", self._source.id, message_id,
                          ",".join(post.media) or "no media")
                continue
            items.append(post_to_item(post, self._source, now))
        return tuple(items), skipped

    def _partial(
        self,
        cursor: Cursor,
        posts: dict[int, TelegramPost],
        problems: list[Problem],
        skipped: int,
        failure: PollResult,
    ) -> PollResult:
        """A failure after some pages were read: their posts are still worth publishing, but
        the cursor stays where it was, so the next poll pages back over the gap again (posts
        already published are then filtered by the seen marks)."""
        if not posts:
            return failure.model_copy(update={"problems": tuple(problems)})
        items, skipped = self._items(posts)
        return failure.model_copy(
            update={"items": items, "problems": tuple(problems), "skipped": skipped}
        )


def _connect(source: TelegramSource, wiring: base.Wiring) -> TelegramConnector:
    return TelegramConnector(source, wiring.defaults, wiring.http, clock=wiring.clock,
                             sleep=wiring.sleep)


#: The ``telegram`` entry of the source registry (registry.py).
SOURCE_TYPE = base.SourceType(name="telegram", model=TelegramSource, connect=_connect,
                         default_interval=lambda defaults: defaults.telegram_interval_s)
