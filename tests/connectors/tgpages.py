"""Builders of Telegram web-preview pages for paging tests, in the markup of
fixtures/telegram-preview.html (which documents the real structure)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def post(channel: str, message_id: int, text: str, *, views: str = "1.0K",
         date: str = "2024-11-25T10:00:00+00:00") -> str:
    return (
        '<div class="tgme_widget_message_wrap js-widget_message_wrap">'
        '<div class="tgme_widget_message text_not_supported_wrap js-widget_message"'
        f' data-post="{channel}/{message_id}"><div class="tgme_widget_message_bubble">'
        f'<div class="tgme_widget_message_text js-message_text" dir="auto">{escape(text)}</div>'
        '<div class="tgme_widget_message_footer compact js-message_footer">'
        '<div class="tgme_widget_message_info short js-message_info">'
        f'<span class="tgme_widget_message_views">{views}</span>'
        '<span class="tgme_widget_message_meta"><a class="tgme_widget_message_date"'
        f' href="https://t.me/{channel}/{message_id}"><time datetime="{date}" class="time">'
        "10:00</time></a></span></div></div></div></div></div>"
    )


def page(channel: str, posts: Sequence[str], *, before: int | None = None) -> bytes:
    more = (
        '<div class="tgme_widget_message_centered js-messages_more_wrap">'
        f'<a href="/s/{channel}?before={before}" class="tme_messages_more js-messages_more"'
        f' data-before="{before}"></a></div>'
        if before
        else ""
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Channel</title></head>'
        '<body class="widget_frame_base tgme_webpage_body"><main class="tgme_main">'
        f'<section class="tgme_channel_history js-message_history">{more}{"".join(posts)}'
        "</section></main></body></html>"
    ).encode()


def channel_pages(channel: str, ids: Sequence[int], *, per_page: int = 5,
                  text: str = "Post {id}") -> dict[str, bytes]:
    """The pages of a channel holding ``ids``: the newest page at ``""`` and older ones at
    ``"?before=<id>"``, as t.me serves them."""
    ordered = sorted(ids)
    pages: dict[str, bytes] = {}
    end = len(ordered)
    key = ""
    while end > 0:
        chunk = ordered[max(0, end - per_page) : end]
        older = ordered[max(0, end - per_page) - 1] if end - per_page > 0 else None
        pages[key] = page(
            channel,
            [post(channel, i, text.format(id=i)) for i in chunk],
            before=chunk[0] if older is not None else None,
        )
        key = f"?before={chunk[0]}"
        end -= per_page
    return pages
