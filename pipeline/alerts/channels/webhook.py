"""The webhook and Slack channels: the alert POSTed as JSON, generic or Slack-shaped.

The generic webhook follows a versioned contract (docs/alerts.md, docs/schema/webhook-v1.json):
the payload names its schema version, event and delivery id, and with a secret configured
every request is signed with HMAC-SHA256 over ``timestamp + "." + body``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

from newsmon.pipeline.alerts.channels import base
from newsmon.pipeline.alerts.channels.base import Message
from newsmon.pipeline.alerts.content import EVENTS, SCHEMA_VERSION, AlertContent, Event

#: The request headers of the webhook contract.
SIGNATURE_HEADER = "X-Newsmon-Signature"
TIMESTAMP_HEADER = "X-Newsmon-Timestamp"
DELIVERY_HEADER = "X-Newsmon-Delivery"
EVENT_HEADER = "X-Newsmon-Event"


class _HookChannel(base.HttpChannelBase):
    """``url`` is where to POST."""

    required: ClassVar[tuple[str, ...]] = ("url",)


class WebhookChannel(_HookChannel):
    type: Literal["webhook"] = "webhook"
    events: tuple[Event, ...] = EVENTS


class SlackChannel(_HookChannel):
    type: Literal["slack"] = "slack"


def slack_escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as control characters; feed titles may contain them."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Newsmon-Signature`` value: ``v1=`` and the hex HMAC-SHA256 of
    ``timestamp + "." + body`` under the channel's secret (the timestamp inside the signed
    text lets a receiver refuse replays of old requests)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def webhook_payload(message: Message) -> dict[str, Any]:
    """The generic webhook's payload (docs/schema/webhook-v1.json)."""
    if message.content is None:
        # Only alerts have a contract; a bare message would break every receiver's schema.
        raise base.DeliveryError("webhook: a message without alert content cannot be sent",
                            retryable=False)
    return {"schema_version": SCHEMA_VERSION, "event": message.event,
            "delivery_id": message.delivery_id, "alert": message.content.as_json()}


def slack_blocks(content: AlertContent) -> list[dict[str, Any]]:
    """The alert as Slack Block Kit blocks: the topic's name, the title linked once, the
    facts, the lead and the evidence with its terms in bold."""
    title = slack_escape(content.title or content.url)
    link = f"*<{content.url}|{title}>*" if content.url else f"*{title}*"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": content.topic_name[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": link}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{label}*\n{slack_escape(value)}"[:2000]}
            for label, value in content.facts()[:10]]},
    ]
    if content.lead:
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": slack_escape(content.lead)}})
    if content.evidence:
        lines = "\n".join(f"• {s.marked('*', '*', slack_escape)}" for s in content.evidence)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": lines[:3000]}})
    for story in content.surge.get("top_stories", ())[:5]:
        text = f"{story['count']}× <{story['url']}|{slack_escape(story['title'])}>"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
    return blocks


def slack_payload(message: Message) -> dict[str, Any]:
    """Slack's message: blocks from the content; ``text`` is the notification line."""
    if message.content is None:
        link = f"<{message.url}|{slack_escape(message.subject)}>" if message.url else (
            slack_escape(message.subject))
        return {"text": f"*{link}*", "unfurl_links": False}
    return {"text": slack_escape(message.content.subject), "unfurl_links": False,
            "unfurl_media": False, "blocks": slack_blocks(message.content)}


class WebhookNotifier:
    """POSTs the alert as JSON (``type: webhook``, the v1 contract) or as a Slack message.

    With a secret configured (``secret_env``), the generic webhook's requests carry
    ``X-Newsmon-Signature``; every request names its event, delivery id and timestamp.
    """

    def __init__(self, channel: _HookChannel, secret: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not channel.url:
            raise ValueError("webhook channel needs a url")
        self.url = channel.url
        self.slack = channel.type == "slack"
        self.timeout_s = channel.timeout_s
        self.secret = secret
        self.clock = clock
        self.client = base.http_client()

    def payload(self, message: Message) -> dict[str, Any]:
        return slack_payload(message) if self.slack else webhook_payload(message)

    def send(self, message: Message) -> None:
        where = f"webhook {self.url}"
        if self.slack:
            base.post_json(self.client, self.url, self.payload(message), where=where,
                      timeout_s=self.timeout_s)
            return
        body = json.dumps(self.payload(message), ensure_ascii=False,
                          separators=(",", ":")).encode()
        timestamp = str(int(self.clock()))
        headers = {EVENT_HEADER: message.event, DELIVERY_HEADER: message.delivery_id,
                   TIMESTAMP_HEADER: timestamp}
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, timestamp, body)
        base.post_json(self.client, self.url, body, where=where, timeout_s=self.timeout_s,
                  headers=headers)


def _notifier(channel: _HookChannel, env: Mapping[str, str]) -> WebhookNotifier:
    return WebhookNotifier(channel, channel.secret(env))


def check(channel: _HookChannel, timeout_s: float) -> tuple[bool, str]:
    return base.check_url(channel.type, channel.url or "", "url", timeout_s)


WEBHOOK = base.ChannelType("webhook", WebhookChannel, _notifier, check)
SLACK = base.ChannelType("slack", SlackChannel, _notifier, check)
