"""The e-mail channel: SMTP with STARTTLS, implicit TLS or plain, login if a password is set."""

from __future__ import annotations

import html
import logging
import smtplib
import socket
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from newsmon.pipeline.alerts.channels.base import (
    ChannelConfigBase,
    ChannelType,
    DeliveryError,
    Message,
    reachability,
    tcp_problem,
)
from newsmon.pipeline.alerts.content import AlertContent
from newsmon.values import CONTROL, checked, host_problem

log = logging.getLogger(__name__)

#: The port for each ``tls`` mode when ``port`` is not set (RFC 8314, RFC 6409, RFC 5321).
DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}


class SmtpChannel(ChannelConfigBase):
    required: ClassVar[tuple[str, ...]] = ("host", "sender", "to")

    type: Literal["smtp"] = "smtp"
    #: Recipients, sender, server, login name; ``tls`` is starttls, ssl or none.
    to: tuple[str, ...] = ()
    sender: str | None = None
    host: str | None = None
    port: int | None = Field(default=None, gt=0, lt=65536)
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        return None if value is None else checked(host_problem(value), value)

    @field_validator("sender", "to")
    @classmethod
    def _addresses(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        # One bare address each: a newline would be a header of its own (injection), and a
        # name or a list in one entry is refused by the server only at delivery time.
        for address in (value,) if isinstance(value, str) else value or ():
            local, at, domain = address.rpartition("@")
            if (not at or not local or CONTROL.search(address) or " " in address
                    or "," in address or host_problem(domain)):
                raise ValueError(f"{address!r} is not an e-mail address (user@example.org)")
        return value

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.tls]


def html_mail(content: AlertContent) -> str:
    """The alert as the mail's HTML part: everything escaped, the matched terms in <mark>."""
    esc = html.escape
    title = esc(content.title or content.url)
    link = f'<a href="{esc(content.url, quote=True)}">{title}</a>' if content.url else title
    rows = "".join(f"<tr><th align=\"left\">{esc(k)}</th><td>{esc(v)}</td></tr>"
                   for k, v in content.facts())
    parts = [f"<p>{esc(content.topic_name)}</p>", f"<h2>{link}</h2>", f"<table>{rows}</table>"]
    if content.lead:
        parts.append(f"<p>{esc(content.lead)}</p>")
    if content.evidence:
        items = "".join(f"<li>{s.marked('<mark>', '</mark>', esc)}</li>"
                        for s in content.evidence)
        parts.append(f"<h3>Evidence</h3><ul>{items}</ul>")
    stories = content.surge.get("top_stories", ())[:5]
    if stories:
        items = "".join(f'<li>{st["count"]}× <a href="{esc(st["url"], quote=True)}">'
                        f'{esc(st["title"])}</a></li>' for st in stories)
        parts.append(f"<ul>{items}</ul>")
    return "<html><body>" + "".join(parts) + "</body></html>"


class SmtpNotifier:
    """Transient failures (connection refused or dropped, timeouts, 4xx replies) are
    retryable; a 5xx reply (recipient refused, authentication failed) is not."""

    def __init__(self, channel: SmtpChannel, password: str | None = None) -> None:
        assert channel.host and channel.sender and channel.to  # checked by SmtpChannel
        self.host = channel.host
        self.tls = channel.tls
        self.port = channel.effective_port
        self.sender = channel.sender
        self.to = channel.to
        self.username = channel.username
        self.password = password
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
        if message.content is not None:
            # multipart/alternative: mail readers show the HTML, others the same in text.
            mail.add_alternative(html_mail(message.content), subtype="html")
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


def _notifier(channel: SmtpChannel, env: Mapping[str, str]) -> SmtpNotifier:
    return SmtpNotifier(channel, channel.secret(env))


def _greeting(host: str, port: int, timeout_s: float) -> str:
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            return sock.recv(512).decode("ascii", "replace").strip()
    except OSError as exc:
        return f"({exc.strerror or type(exc).__name__})"


def check(channel: SmtpChannel, timeout_s: float) -> tuple[bool, str]:
    """Reachable, and (without implicit TLS, where the greeting is encrypted) greeting 220."""
    host, port = channel.host or "", channel.effective_port
    target = f"smtp://{host}:{port}"
    ok, found = reachability("smtp", target, "host and port", tcp_problem(host, port, timeout_s))
    if ok and channel.tls != "ssl":
        greeting = _greeting(host, port, timeout_s)
        if not greeting.startswith("220"):
            return False, (f"{target} accepts connections but is not ready to take mail "
                           f"(greeting {greeting[:60]!r}) -> check the mail server")
    return ok, found


CHANNEL = ChannelType("smtp", SmtpChannel, _notifier, check)
