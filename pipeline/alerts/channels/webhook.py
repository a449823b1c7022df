"""The webhook and Slack channels: the alert POSTed as JSON, generic or Slack-shaped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from newsmon.pipeline.alerts.channels.base import (
    ChannelType,
    HttpChannelBase,
    Message,
    check_url,
    http_client,
    post_json,
)


class _HookChannel(HttpChannelBase):
    """``url`` is where to POST."""

    required: ClassVar[tuple[str, ...]] = ("url",)


class WebhookChannel(_HookChannel):
    type: Literal["webhook"] = "webhook"


class SlackChannel(_HookChannel):
    type: Literal["slack"] = "slack"


def slack_escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as control characters; feed titles may contain them."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class WebhookNotifier:
    """POSTs the alert as JSON (``type: webhook``) or as a Slack-compatible message.

    The generic payload is ``{"event", "subject", "text", "url", "alert"}`` where ``alert`` is
    the alert document without its delivery state; a secret, if configured, is sent as a
    bearer token.
    """

    def __init__(self, channel: _HookChannel, token: str | None = None) -> None:
        if not channel.url:
            raise ValueError("webhook channel needs a url")
        self.url = channel.url
        self.slack = channel.type == "slack"
        self.timeout_s = channel.timeout_s
        self.token = token
        self.client = http_client()

    def payload(self, message: Message) -> dict[str, Any]:
        if self.slack:
            link = f"<{message.url}|{slack_escape(message.subject)}>" if message.url else (
                slack_escape(message.subject))
            body = "\n".join(message.text.splitlines()[1:])
            return {"text": f"*{link}*\n{slack_escape(body)}", "unfurl_links": False}
        return {"event": "newsmon.alert", "subject": message.subject, "text": message.text,
                "url": message.url, "alert": dict(message.data)}

    def send(self, message: Message) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        post_json(self.client, self.url, self.payload(message), where=f"webhook {self.url}",
                  timeout_s=self.timeout_s, headers=headers)


def _notifier(channel: _HookChannel, env: Mapping[str, str]) -> WebhookNotifier:
    return WebhookNotifier(channel, channel.secret(env))


def check(channel: _HookChannel, timeout_s: float) -> tuple[bool, str]:
    return check_url(channel.type, channel.url or "", "url", timeout_s)


WEBHOOK = ChannelType("webhook", WebhookChannel, _notifier, check)
SLACK = ChannelType("slack", SlackChannel, _notifier, check)
