"""What every alert channel shares: the message, the notifier protocol, the delivery error,
the config base (with the required fields each channel declares) and the registry entry type.

A delivery either succeeds or raises :class:`DeliveryError`, which says whether trying again
soon may help (a timeout, HTTP 429 or 5xx, an SMTP 4xx reply) or not (a bad token, a refused
recipient). Retrying, throttling and recording the outcome on the alert document are
delivery.py's job; a notifier sends one message once, within its channel's ``timeout_s``.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import Field, field_validator, model_validator

from newsmon.config import StrictModel
from newsmon.pipeline.alerts.content import PEOPLE_EVENTS, AlertContent, Event
from newsmon.urls import redacted_url
from newsmon.values import checked, http_url_problem


class DeliveryError(RuntimeError):
    """A message did not get through; ``retryable`` if trying again soon may help.

    ``rejected``: the receiver refused this message (an HTTP 4xx other than 429), so it is
    parked as a dead letter with the receiver's reason instead of being tried again.
    ``retry_after_s``: how long the receiver asked us to wait (``Retry-After``), if it did.
    """

    def __init__(self, message: str, *, retryable: bool = True, rejected: bool = False,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.rejected = rejected
        self.retry_after_s = retry_after_s

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only state is not in ``args``: without this, unpickling forgets it.
        return _delivery_error, (str(self), self.retryable, self.rejected, self.retry_after_s)


def _delivery_error(message: str, retryable: bool, rejected: bool = False,
                    retry_after_s: float | None = None) -> DeliveryError:
    return DeliveryError(message, retryable=retryable, rejected=rejected,
                         retry_after_s=retry_after_s)


@dataclass(frozen=True)
class Message:
    """What every channel renders: a one-line subject, a plain-text body, a link, the alert
    as JSON, and (for alerts) the :class:`AlertContent` each channel renders in its own form,
    the event and the delivery id (the same for every retry of this event and version)."""

    subject: str
    text: str
    url: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    content: AlertContent | None = None
    event: Event = "alert.created"
    delivery_id: str = ""


class Notifier(Protocol):
    def send(self, message: Message) -> None: ...


class ChannelConfigBase(StrictModel):
    """The fields every channel has. A channel's own model adds its fields, a ``type`` Literal
    and ``required``: the fields that must be set, checked with one message for all types.

    Secrets (a webhook token, the SMTP password, the Telegram bot token) are never written
    in the file: ``secret_env`` names the environment variable that holds them.
    """

    #: Fields this channel type cannot work without.
    required: ClassVar[tuple[str, ...]] = ()

    type: str
    #: Name of the environment variable holding this channel's secret (token, password).
    secret_env: str | None = None
    #: One request's time limit, and how many tries one delivery gets before the alert is
    #: left pending for the next run: together they bound how long a dead channel can hold
    #: up the pipeline.
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    attempts: int = Field(default=3, ge=1, le=10)
    #: The events this channel is sent. People get a story once (no ``alert.updated``
    #: each time a copy joins it); webhooks get every event (WebhookChannel).
    events: tuple[Event, ...] = PEOPLE_EVENTS

    @field_validator("secret_env")
    @classmethod
    def _variable(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
            raise ValueError("must be the name of an environment variable, like NEWSMON_TOKEN")
        return value

    @model_validator(mode="after")
    def _complete(self) -> ChannelConfigBase:
        missing = [f for f in self.required if not getattr(self, f)]
        if missing:
            raise ValueError(f"a {self.type} channel needs {', '.join(missing)}")
        return self

    def secret(self, env: Mapping[str, str]) -> str | None:
        """The channel's secret, only ever from the environment variable it names."""
        return env.get(self.secret_env) if self.secret_env else None


class HttpChannelBase(ChannelConfigBase):
    """A channel that talks HTTP: ``url`` (where to POST, or the API's base URL) must be an
    http(s) URL."""

    url: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else checked(http_url_problem(value), value)


@dataclass(frozen=True)
class ChannelType:
    """A registry entry: everything newsmon knows about one channel type."""

    name: str
    config_model: type[ChannelConfigBase]
    #: Builds the notifier from the channel's config and the environment (for the secret);
    #: raises ValueError when the config cannot work (a secret not set).
    notifier: Callable[[Any, Mapping[str, str]], Notifier]
    #: Doctor's check: (reachable, what was found), within the timeout in seconds.
    check: Callable[[Any, float], tuple[bool, str]]


# --- helpers for the channel modules ---------------------------------------------------------


def http_client() -> httpx.Client:
    # One client per notifier: a new connection and TLS context per message cost ~70 ms each
    # (measured), a pooled client ~1.5 ms.
    return httpx.Client(headers={"User-Agent": "newsmon"}, follow_redirects=False)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date, RFC 9110
    10.2.3); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - (now or datetime.now(UTC))).total_seconds())


def http_error(where: str, resp: httpx.Response) -> DeliveryError:
    # 429 (rate limited) and 5xx may pass on a retry; other 4xx (bad token, bad payload) are
    # the receiver refusing this message: parked with its reason.
    retryable = resp.status_code == 429 or resp.status_code >= 500
    return DeliveryError(f"{where}: HTTP {resp.status_code} {resp.text[:200]!r}",
                         retryable=retryable, rejected=not retryable and resp.status_code >= 400,
                         retry_after_s=retry_after(resp.headers.get("Retry-After")))


def tcp_problem(host: str, port: int, timeout_s: float) -> str | None:
    """None when a TCP connection to host:port opens within the timeout, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except TimeoutError:
        return f"no answer within {timeout_s:.0f}s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def check_url(kind: str, url: str, field_name: str, timeout_s: float) -> tuple[bool, str]:
    """Doctor's check of an HTTP endpoint: does its host accept a TCP connection."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    error = tcp_problem(parts.hostname or "", port, timeout_s)
    return reachability(kind, redacted_url(url), field_name, error)


def reachability(kind: str, target: str, fields: str, error: str | None) -> tuple[bool, str]:
    if error is not None:
        return False, (f"{kind} endpoint {target} is not reachable ({error}) -> check the "
                       f"channel's {fields} in alerts.yaml and the network (alerts to it stay "
                       "pending and are retried)")
    return True, f"{kind} endpoint {target} is reachable"


def post_json(client: httpx.Client, url: str, payload: Mapping[str, Any] | bytes, *,
              where: str, timeout_s: float, headers: Mapping[str, str] | None = None,
              name_only: bool = False) -> httpx.Response:
    """POSTs ``payload`` as JSON (a mapping, or its exact bytes when they are signed) and
    returns the 2xx answer; a transport failure or any other answer raises
    :class:`DeliveryError` named by ``where``. ``name_only`` keeps the exception's text out of
    the message (httpx puts the URL, a token in it too, in some)."""
    try:
        if isinstance(payload, bytes):
            resp = client.post(url, content=payload, timeout=timeout_s,
                               headers={"Content-Type": "application/json", **(headers or {})})
        else:
            resp = client.post(url, json=payload, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        detail = "" if name_only else f": {exc}"
        raise DeliveryError(f"{where}: {type(exc).__name__}{detail}") from exc
    if resp.status_code >= 300:
        raise http_error(where, resp)
    return resp
