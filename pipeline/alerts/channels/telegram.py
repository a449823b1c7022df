"""The Telegram channel: the Bot API's ``sendMessage``; the bot token is never logged."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import field_validator

from newsmon.pipeline.alerts.channels.base import (
    ChannelType,
    DeliveryError,
    HttpChannelBase,
    Message,
    check_url,
    http_client,
    post_json,
)
from newsmon.pipeline.alerts.content import AlertContent

#: Telegram refuses longer messages.
TELEGRAM_MAX_CHARS = 4096
#: The default Bot API server.
TELEGRAM_API = "https://api.telegram.org"


class TelegramChannel(HttpChannelBase):
    """``url`` is the Bot API base URL (a local Bot API server, a test server)."""

    required: ClassVar[tuple[str, ...]] = ("chat_id", "secret_env")

    type: Literal["telegram"] = "telegram"
    #: The chat (``@channelname`` or a numeric id) the bot writes to.
    chat_id: str | None = None

    @field_validator("chat_id")
    @classmethod
    def _chat(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(@[A-Za-z][A-Za-z0-9_]{3,31}|-?[0-9]{1,20})$",
                                              value):
            raise ValueError("must be @channelname or a numeric chat id")
        return value


def telegram_html(content: AlertContent, limit: int = TELEGRAM_MAX_CHARS) -> str:
    """The alert in Telegram's HTML (parse_mode HTML): text escaped, the title linked, terms
    in bold. Evidence, then the lead, are left out as needed to stay within ``limit``, so a
    tag is never cut."""
    esc = html.escape
    title = esc(content.title or content.url, quote=False)
    link = f'<a href="{esc(content.url)}">{title}</a>' if content.url else title
    head = [f"<b>{esc(content.topic_name, quote=False)}</b>", link]
    head += [f"<i>{esc(k, quote=False)}:</i> {esc(v, quote=False)}" for k, v in content.facts()]
    lead = [esc(content.lead, quote=False)] if content.lead else []
    evidence = [f"• {s.marked('<b>', '</b>', lambda t: esc(t, quote=False))}"
                for s in content.evidence]
    stories = [f'{st["count"]}× <a href="{esc(st["url"])}">{esc(st["title"], quote=False)}</a>'
               for st in content.surge.get("top_stories", ())[:5]]
    while True:
        text = "\n".join([*head, *(["", *lead] if lead else []),
                          *(["", *evidence] if evidence else []), *stories])
        if len(text) <= limit or not (evidence or lead or stories):
            return text[:limit]
        if stories:
            stories.pop()
        elif evidence:
            evidence.pop()
        else:
            lead = []


class TelegramNotifier:
    def __init__(self, channel: TelegramChannel, token: str | None) -> None:
        if not token:
            raise ValueError(f"telegram channel: environment variable {channel.secret_env} "
                             "(the bot token) is not set")
        assert channel.chat_id
        self.base = (channel.url or TELEGRAM_API).rstrip("/")
        self.token = token
        self.chat_id = channel.chat_id
        self.timeout_s = channel.timeout_s
        self.client = http_client()

    def send(self, message: Message) -> None:
        where = f"telegram {self.base}/bot***/sendMessage"
        payload: dict[str, object]
        if message.content is not None:
            payload = {"chat_id": self.chat_id, "text": telegram_html(message.content),
                       "parse_mode": "HTML", "disable_web_page_preview": True}
        else:
            text = message.text
            if len(text) > TELEGRAM_MAX_CHARS:
                text = text[: TELEGRAM_MAX_CHARS - 1] + "…"
            payload = {"chat_id": self.chat_id, "text": text, "disable_web_page_preview": True}
        # The URL holds the token: the failure names only the exception's kind.
        resp = post_json(self.client, f"{self.base}/bot{self.token}/sendMessage", payload,
                         where=where, timeout_s=self.timeout_s, name_only=True)
        try:
            ok = bool(resp.json().get("ok"))
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise DeliveryError(f"{where}: answer without ok: {resp.text[:200]!r}",
                                retryable=False)


def _notifier(channel: TelegramChannel, env: Mapping[str, str]) -> TelegramNotifier:
    return TelegramNotifier(channel, channel.secret(env))


def check(channel: TelegramChannel, timeout_s: float) -> tuple[bool, str]:
    return check_url("telegram", channel.url or TELEGRAM_API, "url", timeout_s)


CHANNEL = ChannelType("telegram", TelegramChannel, _notifier, check)
