"""Notifiers: how an alert reaches people. Looked up by the channel's ``type`` in alerts.yaml.

A delivery either succeeds or raises :class:`DeliveryError`; the pipeline records which
channels an alert reached on the alert document, so a re-run delivers only what is missing
and a failed channel never blocks the others.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Protocol, TextIO

import httpx

from .alerting import format_alert
from .config import ChannelConfig
from .models import Alert

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    pass


class Notifier(Protocol):
    def send(self, alert: Alert) -> None: ...


class ConsoleNotifier:
    """Prints alerts: the embedded default's channel, and handy under cron (mail from cron)."""

    def __init__(self, channel: ChannelConfig, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, alert: Alert) -> None:
        stream = self.stream or sys.stdout
        print(format_alert(alert), file=stream, flush=True)


class WebhookNotifier:
    """POSTs the alert as JSON (``type: webhook``) or as a Slack-compatible message."""

    def __init__(self, channel: ChannelConfig, *, timeout_s: float = 10.0) -> None:
        if not channel.url:
            raise ValueError("webhook channel needs a url")
        self.url = channel.url
        self.slack = channel.type == "slack"
        self.timeout_s = timeout_s
        self.token = os.environ.get(channel.secret_env) if channel.secret_env else None

    def send(self, alert: Alert) -> None:
        payload = (
            {"text": format_alert(alert)} if self.slack else alert.model_dump(mode="json")
        )
        headers = {"User-Agent": "newsmon"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            resp = httpx.post(self.url, json=payload, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.url}: {exc}") from exc
        if resp.status_code >= 300:
            raise DeliveryError(f"webhook {self.url}: HTTP {resp.status_code}")


_REGISTRY: dict[str, Callable[[ChannelConfig], Notifier]] = {
    "console": ConsoleNotifier,
    "webhook": WebhookNotifier,
    "slack": WebhookNotifier,
}


def make_notifier(channel: ChannelConfig) -> Notifier:
    try:
        factory = _REGISTRY[channel.type]
    except KeyError:
        raise ValueError(f"channel type {channel.type!r} is not available yet") from None
    return factory(channel)
