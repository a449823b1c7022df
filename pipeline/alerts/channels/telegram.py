"""The Telegram channel: the Bot API's ``sendMessage``; the bot token is never logged."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar, Literal

import httpx
from pydantic import field_validator

from newsmon.pipeline.alerts.channels.base import (
    ChannelConfigBase,
    ChannelType,
    DeliveryError,
    Message,
    check_url,
    http_client,
    http_error,
)
from newsmon.values import checked, http_url_problem

#: Telegram refuses longer messages.
TELEGRAM_MAX_CHARS = 4096
#: The default Bot API server.
TELEGRAM_API = "https://api.telegram.org"


class TelegramChannel(ChannelConfigBase):
    required: ClassVar[tuple[str, ...]] = ("chat_id", "secret_env")

    type: Literal["telegram"] = "telegram"
    #: The Bot API base URL (a local Bot API server, a test server).
    url: str | None = None
    #: The chat (``@channelname`` or a numeric id) the bot writes to.
    chat_id: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else checked(http_url_problem(value), value)

    @field_validator("chat_id")
    @classmethod
    def _chat(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(@[A-Za-z][A-Za-z0-9_]{3,31}|-?[0-9]{1,20})$",
                                              value):
            raise ValueError("must be @channelname or a numeric chat id")
        return value


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
        text = message.text
        if len(text) > TELEGRAM_MAX_CHARS:
            text = text[: TELEGRAM_MAX_CHARS - 1] + "…"
        payload = {"chat_id": self.chat_id, "text": text, "disable_web_page_preview": True}
        try:
            resp = self.client.post(f"{self.base}/bot{self.token}/sendMessage", json=payload,
                                    timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            # httpx puts the URL (with the token) in some messages: name only the kind.
            raise DeliveryError(f"{where}: {type(exc).__name__}") from exc
        if resp.status_code >= 300:
            raise http_error(where, resp)
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
