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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin

from newsmon.connectors.base import HARD_STATUSES, PollResult, Problem
from newsmon.connectors.extract import canonical_url, clean_text, html_to_text
from newsmon.connectors.hosts import THROTTLE_STATUSES
from newsmon.connectors.http import FetchError, HttpClient
from newsmon.connectors.sources import Defaults, TelegramSource
from newsmon.connectors.state import Cursor
from newsmon.pipeline.htmlguard import too_deep
from newsmon.pipeline.models import RawItem
from pydantic import BaseModel, ConfigDict
from selectolax.lexbor import LexborHTMLParser, LexborNode

log = logging.getLogger(__name__)

#: Item ids derive from the public post URL, whatever base URL the page was read from (tests
#: read from 127.0.0.1), so an item keeps its id if the base URL changes.
CANONICAL_BASE = "https://t.me"
_TITLE_CHARS = 160
_VIEWS = re.compile(r"^\s*([\d.,]+)\s*([KkMm]?)\s*$")
_MEDIA_CLASSES = (
    ("photo", ".tgme_widget_message_photo_wrap"),
    ("video", ".tgme_widget_message_video_player"),
    ("document", ".tgme_widget_message_document"),
    ("audio", ".tgme_widget_message_voice"),
    ("sticker", ".tgme_widget_message_sticker"),
    ("poll", ".tgme_widget_message_poll"),
    ("location", ".tgme_widget_message_location"),
)


class TelegramPost(BaseModel):
    """One post as the preview shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: str
    message_id: int
    date: datetime | None = None
    #: The post's text; for a photo, video or document post this is its caption.
    text: str = ""
    links: tuple[str, ...] = ()
    forwarded_from: str | None = None
    forwarded_from_url: str | None = None
    media: tuple[str, ...] = ()
    views: int | None = None
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


def parse_views(text: str) -> int | None:
    """ "401" -> 401, "1.2K" -> 1200, "3M" -> 3000000; None when unreadable."""
    match = _VIEWS.match(text or "")
    if not match:
        return None
    number, suffix = match.group(1).replace(",", "."), match.group(2).upper()
    try:
        value = float(number)
    except ValueError:
        return None
    return round(value * {"": 1, "K": 1_000, "M": 1_000_000}[suffix])


def _first(node: LexborNode, selector: str) -> LexborNode | None:
    return node.css_first(selector)


def _parse_post(node: LexborNode, channel: str, page_url: str) -> TelegramPost | Problem:
    post_ref = node.attributes.get("data-post") or ""
    name, _, number = post_ref.rpartition("/")
    if not number.isdigit():
        return Problem(kind="bad-post", message=f"data-post {post_ref!r} has no message id")
    date = None
    time_node = _first(node, ".tgme_widget_message_date time") or _first(node, "time[datetime]")
    if time_node is not None and time_node.attributes.get("datetime"):
        try:
            date = datetime.fromisoformat(str(time_node.attributes["datetime"]))
        except ValueError:
            date = None
        if date is not None:
            date = date.astimezone(UTC) if date.tzinfo else date.replace(tzinfo=UTC)
    text_node = _first(node, ".tgme_widget_message_text.js-message_text")
    text = html_to_text(text_node.html or "") if text_node is not None else ""
    links: list[str] = []
    link_nodes = list(text_node.css("a[href]")) if text_node is not None else []
    link_nodes += node.css("a.tgme_widget_message_link_preview[href]")
    for a in link_nodes:
        href = str(a.attributes.get("href") or "")
        # Hashtag links (?q=%23tag) and mentions are navigation within Telegram, not links.
        if href.startswith("?") or not href:
            continue
        absolute = canonical_url(urljoin(page_url, href))
        if absolute.startswith(("http://", "https://")) and absolute not in links:
            links.append(absolute)
    media = tuple(kind for kind, selector in _MEDIA_CLASSES if _first(node, selector) is not None)
    if not text:
        # A document or poll without caption still says what it is about.
        for selector in (
            ".tgme_widget_message_document_title",
            ".tgme_widget_message_poll_question",
        ):
            extra = _first(node, selector)
            if extra is not None and extra.text(strip=True):
                text = clean_text(extra.text())
                break
    fwd = _first(node, ".tgme_widget_message_forwarded_from_name")
    fwd_url = str(fwd.attributes.get("href") or "") if fwd is not None else ""
    views_node = _first(node, ".tgme_widget_message_views")
    meta = _first(node, ".tgme_widget_message_meta")
    return TelegramPost(
        channel=name or channel,
        message_id=int(number),
        date=date,
        text=text,
        links=tuple(links),
        forwarded_from=clean_text(fwd.text()) if fwd is not None else None,
        forwarded_from_url=fwd_url or None,
        media=media,
        views=parse_views(views_node.text()) if views_node is not None else None,
        edited=meta is not None and "edited" in meta.text().lower(),
    )


def parse_preview(html: str, channel: str, page_url: str = CANONICAL_BASE) -> PreviewPage:
    """All posts of one preview page, in page order; broken posts become problems."""
    if too_deep(html):  # a tree builder would take quadratic time (pipeline/htmlguard.py)
        problem = Problem(kind="too-deep", message="markup nested too deeply to parse")
        return PreviewPage(posts=(), problems=(problem,), is_preview=False)
    tree = LexborHTMLParser(html)
    posts: list[TelegramPost] = []
    problems: list[Problem] = []
    for node in tree.css("div.tgme_widget_message[data-post]"):
        parsed = _parse_post(node, channel, page_url)
        if isinstance(parsed, Problem):
            problems.append(parsed)
        else:
            posts.append(parsed)
    is_preview = bool(posts) or tree.css_first(".tgme_channel_history") is not None
    return PreviewPage(posts=tuple(posts), problems=tuple(problems), is_preview=is_preview)


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


def utc_now() -> datetime:
    return datetime.now(UTC)


class TelegramConnector:
    """Polls one public channel's web preview, paging back to the stored cursor."""

    def __init__(
        self,
        source: TelegramSource,
        defaults: Defaults,
        http: HttpClient,
        *,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._source = source
        self.defaults = defaults
        self.http = http
        self.clock = clock
        self.sleep = sleep

    @property
    def source(self) -> TelegramSource:
        return self._source

    def enrich(self, items: Sequence[RawItem]) -> tuple[tuple[RawItem, ...], tuple[Problem, ...]]:
        return tuple(items), ()

    def poll(self, cursor: Cursor) -> PollResult:
        sid = self._source.id
        last_id = cursor.last_message_id
        base = self._source.location
        posts: dict[int, TelegramPost] = {}
        problems: list[Problem] = []
        skipped = 0
        url = base
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
                    PollResult.failed(cursor, exc.kind, str(exc), hard=exc.hard),
                )
            status = response.status
            if status in THROTTLE_STATUSES:
                throttled = PollResult.throttled(cursor, response, self.clock())
                # One warning per 429; the sources that only met the host's cooldown say so
                # quietly.
                log.log(logging.INFO if response.cooled_down else logging.WARNING,
                        "source %s: %s, retry after %s s", sid, throttled.error,
                        throttled.retry_after_s)
                return self._partial(cursor, posts, problems, skipped, throttled)
            if not response.ok:
                log.warning("source %s: HTTP %s from %s", sid, status, url)
                return self._partial(
                    cursor, posts, problems, skipped,
                    PollResult.failed(
                        cursor, f"http-{status}", f"HTTP {status} from {url}",
                        hard=status in HARD_STATUSES, http_status=status,
                    ),
                )
            page = parse_preview(
                response.content.decode("utf-8", errors="replace"), self._source.channel, url
            )
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
            oldest = min(p.message_id for p in page.posts)
            if oldest <= last_id + 1:
                break  # reached the cursor
            url = f"{base}?before={oldest}"
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
