"""Notifiers: how an alert reaches people. Looked up by the channel's ``type`` in alerts.yaml.

A delivery either succeeds or raises :class:`DeliveryError`, which says whether trying again
soon may help (a timeout, HTTP 429 or 5xx, an SMTP 4xx reply) or not (a bad token, a refused
recipient). Retrying, throttling and recording the outcome on the alert document are
delivery.py's job; a notifier sends one message once, within its channel's ``timeout_s``.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol, TextIO

import httpx
from newsmon.pipeline.alerts.config import ChannelConfig

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    """A message did not get through; ``retryable`` if trying again soon may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Message:
    """What every channel renders: a one-line subject, a plain-text body, a link, and the
    alert as JSON for machine receivers (webhooks)."""

    subject: str
    text: str
    url: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


class Notifier(Protocol):
    def send(self, message: Message) -> None: ...


def _secret(channel: ChannelConfig) -> str | None:
    """The channel's secret, only ever from the environment variable it names."""
    return os.environ.get(channel.secret_env) if channel.secret_env else None


def _http_client() -> httpx.Client:
    # One client per notifier: a new connection and TLS context per message cost ~70 ms each
    # (measured), a pooled client ~1.5 ms.
    return httpx.Client(headers={"User-Agent": "newsmon"}, follow_redirects=False)


def _http_error(where: str, resp: httpx.Response) -> DeliveryError:
    # 429 (rate limited) and 5xx may pass on a retry; other 4xx (bad token, bad payload) not.
    retryable = resp.status_code == 429 or resp.status_code >= 500
    return DeliveryError(f"{where}: HTTP {resp.status_code} {resp.text[:200]!r}",
                         retryable=retryable)


class ConsoleNotifier:
    """Prints alerts: the embedded default's channel, and handy under cron (mail from cron)."""

    def __init__(self, channel: ChannelConfig, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, message: Message) -> None:
        stream = self.stream or sys.stdout
        print(message.text, file=stream, flush=True)


def slack_escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as control characters; feed titles may contain them."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class WebhookNotifier:
    """POSTs the alert as JSON (``type: webhook``) or as a Slack-compatible message.

    The generic payload is ``{"event", "subject", "text", "url", "alert"}`` where ``alert`` is
    the alert document without its delivery state; a secret, if configured, is sent as a
    bearer token.
    """

    def __init__(self, channel: ChannelConfig) -> None:
        if not channel.url:
            raise ValueError("webhook channel needs a url")
        self.url = channel.url
        self.slack = channel.type == "slack"
        self.timeout_s = channel.timeout_s
        self.token = _secret(channel)
        self.client = _http_client()

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
        try:
            resp = self.client.post(self.url, json=self.payload(message), headers=headers,
                                    timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 300:
            raise _http_error(f"webhook {self.url}", resp)


class SmtpNotifier:
    """E-mail over SMTP (smtplib): STARTTLS, implicit TLS or plain, login if a password is set.

    Transient failures (connection refused or dropped, timeouts, 4xx replies) are retryable;
    a 5xx reply (recipient refused, authentication failed) is not.
    """

    def __init__(self, channel: ChannelConfig) -> None:
        assert channel.host and channel.sender and channel.to  # checked by ChannelConfig
        self.host = channel.host
        self.tls = channel.tls
        self.port = channel.port or {"ssl": 465, "starttls": 587, "none": 25}[channel.tls]
        self.sender = channel.sender
        self.to = channel.to
        self.username = channel.username
        self.password = _secret(channel)
        self.timeout_s = channel.timeout_s

    def build(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        # Subjects are one line: a feed title with a newline must not inject headers.
        mail["Subject"] = "[newsmon] " + " ".join(message.subject.split())[:200]
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.to)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain="newsmon.local")
        mail.set_content(message.text)
        return mail

    def send(self, message: Message) -> None:
        where = f"smtp {self.host}:{self.port}"
        try:
            if self.tls == "ssl":
                server: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout_s,
                    context=ssl.create_default_context())
            else:
                server = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            with server:
                if self.tls == "starttls":
                    server.starttls(context=ssl.create_default_context())
                if self.username and self.password:
                    server.login(self.username, self.password)
                refused = server.send_message(self.build(message))
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"{where}: {exc.smtp_code} {exc.smtp_error!r}",
                                retryable=400 <= exc.smtp_code < 500) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"{where}: recipients refused: {list(exc.recipients)}",
                                retryable=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}") from exc
        if refused:
            # Some recipients got it: not retried, or those would get it twice.
            log.warning("%s: some recipients refused: %s", where, sorted(refused))


#: Telegram refuses longer messages.
TELEGRAM_MAX_CHARS = 4096


class TelegramNotifier:
    """Telegram Bot API ``sendMessage``; the base URL is configurable (a local Bot API
    server, a test server), the bot token comes from ``secret_env`` and is never logged."""

    def __init__(self, channel: ChannelConfig) -> None:
        token = _secret(channel)
        if not token:
            raise ValueError(f"telegram channel: environment variable {channel.secret_env} "
                             "(the bot token) is not set")
        assert channel.chat_id
        self.base = (channel.url or "https://api.telegram.org").rstrip("/")
        self.token = token
        self.chat_id = channel.chat_id
        self.timeout_s = channel.timeout_s
        self.client = _http_client()

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
            raise _http_error(where, resp)
        try:
            ok = bool(resp.json().get("ok"))
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise DeliveryError(f"{where}: answer without ok: {resp.text[:200]!r}",
                                retryable=False)


_REGISTRY: dict[str, Callable[[ChannelConfig], Notifier]] = {
    "console": ConsoleNotifier,
    "webhook": WebhookNotifier,
    "slack": WebhookNotifier,
    "smtp": SmtpNotifier,
    "telegram": TelegramNotifier,
}


def make_notifier(channel: ChannelConfig) -> Notifier:
    try:
        factory = _REGISTRY[channel.type]
    except KeyError:
        raise ValueError(f"channel type {channel.type!r} is not available") from None
    return factory(channel)


def message_json(message: Message) -> str:
    """The message as one JSON line (for ``newsmon alerts test`` and logs)."""
    return json.dumps({"subject": message.subject, "text": message.text, "url": message.url},
                      ensure_ascii=False)
