"""The push settings (``defaults.push`` in feeds.yaml) and the stored subscription record.

Pure models: the state store (connectors/state.py) keeps :class:`Subscription` rows, and
base.Defaults carries :class:`PushSettings`, so neither may import anything of the connectors.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from newsmon.config import MAX_PERIOD_S, StrictModel
from newsmon.values import http_url_problem

_LISTEN = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})$")


class PushSettings(StrictModel):
    """WebSub push. Without ``callback_url`` nothing is subscribed and every source is polled
    on its interval; with one, ``newsmon push`` subscribes every enabled http(s) feed whose
    document or answer names a hub."""

    #: The public base URL hubs call back (``https://newsmon.example.org/websub``); each
    #: source's callback is this plus ``/<source id>``. It must reach ``listen``, usually
    #: through a reverse proxy that terminates TLS.
    callback_url: str | None = None
    #: Where ``newsmon push`` serves the callback (``host:port``).
    listen: str = "127.0.0.1:8095"
    #: Lease asked of the hub (``hub.lease_seconds``); the hub may grant another.
    lease_s: int = Field(default=10 * 86400, gt=0, le=MAX_PERIOD_S)
    #: A lease is renewed this long before it ends (at most half the granted lease).
    renew_before_s: int = Field(default=3600, gt=0, le=MAX_PERIOD_S)
    #: A subscription the hub has not confirmed after this is given up for now: the source
    #: goes back to its normal polling and is subscribed again after ``retry_s``.
    verify_timeout_s: int = Field(default=600, gt=0, le=MAX_PERIOD_S)
    #: How long after a failed subscription (no hub, refused, never confirmed) to try again.
    retry_s: int = Field(default=6 * 3600, gt=0, le=MAX_PERIOD_S)
    #: Polling of a source while it is pushed or its subscription awaits confirmation: hubs
    #: drop pushes now and then, so a slow poll still catches what they missed.
    poll_interval_s: int = Field(default=3600, gt=0, le=MAX_PERIOD_S)

    @field_validator("callback_url")
    @classmethod
    def _callback(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = http_url_problem(value)
        if problem or "?" in value or "#" in value:
            raise ValueError(f"must be an http(s):// URL with a host and no query: "
                             f"{problem or 'query or fragment'}")
        return value.rstrip("/")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        match = _LISTEN.match(value)
        if not match or not 0 < int(match["port"]) < 65536:
            raise ValueError("must be host:port, like 127.0.0.1:8095 or [::1]:8095")
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    def callback_for(self, source_id: str) -> str | None:
        return None if self.callback_url is None else f"{self.callback_url}/{source_id}"


#: pending: subscribe sent, not yet verified; active: verified, lease running; unconfirmed:
#: the hub did not verify in time (or refused the request); denied: the hub said no; no-hub:
#: the feed names none; expired: the lease ended without a renewal; unsubscribing: the source
#: was removed, unsubscribe sent.
SubscriptionState = Literal[
    "pending", "active", "unconfirmed", "denied", "no-hub", "expired", "unsubscribing"
]
PendingMode = Literal["subscribe", "unsubscribe"]


class Subscription(BaseModel):
    """One source's subscription as kept in the state store. ``secret`` is generated per
    subscription (never configured, never logged); ``pending`` is the request whose
    verification of intent the callback accepts (mode and topic must match it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_id: str
    #: The feed URL configured when subscribing (a new URL in feeds.yaml: a new subscription).
    url: str
    topic: str
    hub: str | None = None
    callback: str
    secret: str
    state: SubscriptionState
    pending: PendingMode | None = None
    requested_at: datetime
    lease_s: int | None = None
    expires_at: datetime | None = None
    confirmed_at: datetime | None = None
    last_error: str | None = None
    pushes: int = 0
    bad_signatures: int = 0
    last_push_at: datetime | None = None

    def pushed(self, now: datetime) -> bool:
        """The hub pushes this source now: verified and the lease not over."""
        return self.state == "active" and self.expires_at is not None and now < self.expires_at

    def awaiting(self, now: datetime, timeout_s: int) -> bool:
        """A subscribe request still within its time to be verified."""
        return self.state == "pending" and now < self.requested_at + timedelta(seconds=timeout_s)

    def renew_at(self, renew_before_s: int) -> datetime | None:
        if self.expires_at is None or self.lease_s is None:
            return None
        return self.expires_at - timedelta(seconds=min(renew_before_s, self.lease_s / 2))
