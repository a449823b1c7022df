"""Politeness per host: requests in flight, spacing between requests, and a shared cooldown.

Sources are polled in parallel, but many of them share a host: the twenty Telegram channels
of the starter list are all ``t.me``, a publisher offers one feed per section, and full-text
mode fetches up to ``full_text_max_items`` article pages from the feed's own site. Without a
limit per host, one poll pass sends a burst to the same server, and the server answers 429.

:class:`HostGate` is shared by every HTTP client of a poller (feeds and article pages), and
keeps per host:

- at most ``concurrency`` requests in flight (Scrapy's per-domain default is 8; 4 here,
  because a news poller is never in a hurry);
- at least ``interval_s`` between the starts of two requests (0 by default; the shipped
  feeds.yaml sets it for ``t.me``);
- a *cooldown*: once a host answered 429 or 503, no request goes to it until its
  ``Retry-After`` has passed (``DEFAULT_COOLDOWN_S`` without one). The other sources on that
  host get a throttled result without a request, so one 429 throttles them all, as the
  server meant, instead of each of them earning its own.

Why not a library: rate limiters on PyPI (pyrate-limiter, limits) count requests per window,
but none bounds requests *in flight* per key or takes a deadline from a server's answer; the
three rules are a few lines with a lock and a condition.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

#: Answers asking a client to slow down; they cool the whole host down.
THROTTLE_STATUSES = frozenset({429, 503})
#: A 429 or 503 without a readable Retry-After cools its host down for this long.
DEFAULT_COOLDOWN_S = 60.0
#: A Retry-After beyond this is taken as this (a server asking for a day cools one host only
#: for an hour; the source's own backoff still honours the full value).
MAX_COOLDOWN_S = 3600.0


class HostLimit(BaseModel):
    """Limits for one host (or, as ``defaults.per_host``, for every host)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Requests in flight to the host at once.
    concurrency: int = Field(default=4, gt=0, le=256)
    #: Minimum seconds between the starts of two requests to the host.
    interval_s: float = Field(default=0.0, ge=0, le=3600)


@dataclass
class _HostState:
    in_flight: int = 0
    last_start: float = float("-inf")
    cooldown_until: float = float("-inf")


@dataclass
class HostGate:
    """Thread-safe gate in front of every request; see the module docstring."""

    default: HostLimit = field(default_factory=HostLimit)
    hosts: Mapping[str, HostLimit] = field(default_factory=dict)
    #: Wall clock of cooldowns (a Retry-After is wall time; the poller passes its own clock,
    #: so tests can let a cooldown pass). Spacing uses the monotonic clock.
    now: Callable[[], float] = time.time
    _lock: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _state: dict[str, _HostState] = field(default_factory=dict, repr=False)

    def limit(self, host: str) -> HostLimit:
        return self.hosts.get(host.lower(), self.default)

    def cooldown_left(self, host: str) -> float:
        """Seconds until ``host`` may be asked again (0 when it may be asked now)."""
        with self._lock:
            state = self._state.get(host.lower())
            if state is None:
                return 0.0
            return max(0.0, state.cooldown_until - self.now())

    def cool_down(self, host: str, seconds: float | None) -> None:
        """The host answered 429/503: keep every request away from it for ``seconds``."""
        wait = DEFAULT_COOLDOWN_S if seconds is None else min(max(seconds, 0.0), MAX_COOLDOWN_S)
        with self._lock:
            state = self._state.setdefault(host.lower(), _HostState())
            state.cooldown_until = max(state.cooldown_until, self.now() + wait)

    @contextmanager
    def request(self, host: str) -> Iterator[float]:
        """Hold one of the host's slots for the duration of a request; yields the seconds
        spent waiting for it. Waiting happens outside any fetch deadline."""
        key = host.lower()
        limit = self.limit(key)
        started = time.monotonic()
        with self._lock:
            state = self._state.setdefault(key, _HostState())
            while True:
                if state.in_flight < limit.concurrency:
                    gap = state.last_start + limit.interval_s - time.monotonic()
                    if gap <= 0:
                        break
                    self._lock.wait(gap)
                else:
                    self._lock.wait()
            state.in_flight += 1
            state.last_start = time.monotonic()
        try:
            yield state.last_start - started
        finally:
            with self._lock:
                state.in_flight -= 1
                self._lock.notify_all()
