"""How a source is fed while push is configured: the poll interval the runner keeps for it
(its one hook, :func:`push_schedule`) and the words ``newsmon sources`` shows.

While the hub pushes a source (verified, lease running), or a subscription awaits its
verification, the source is polled only every ``push.poll_interval_s``: pushes carry the news,
the slow poll catches what a hub dropped. A subscription never confirmed, refused, or whose
lease ended without a renewal puts the source back on its normal interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from newsmon.connectors.base import SourceBase
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.records import Health
from newsmon.connectors.state import StateStore
from newsmon.connectors.websub.records import PushSettings, Subscription


def slowed(sub: Subscription | None, push: PushSettings, now: datetime) -> bool:
    """True when the source needs only the slow safety poll."""
    return push.callback_url is not None and sub is not None and (
        sub.pushed(now) or sub.awaiting(now, push.verify_timeout_s))


def push_schedule(state: StateStore, config: FeedsConfig, source: SourceBase, health: Health,
                  now: datetime) -> Health:
    """``health`` after a poll, its next due time pushed back to the slow interval when the
    source is pushed or awaits verification; unchanged otherwise (and always without push)."""
    push = config.defaults.push
    if push.callback_url is None or health.next_due_at is None or health.disabled:
        return health
    if not slowed(state.subscription(source.id), push, now):
        return health
    slow = now + timedelta(seconds=max(push.poll_interval_s, config.interval_for(source)))
    return health.model_copy(update={"next_due_at": max(health.next_due_at, slow)})


@dataclass(frozen=True)
class FeedMode:
    """How one source is fed: ``push`` (the hub pushes; lease ends at ``lease_expires_at``)
    or ``poll``, with the subscription's state when there is one (pending, unconfirmed...)."""

    fed_by: str
    subscription: str | None = None
    lease_expires_at: datetime | None = None

    @property
    def label(self) -> str:
        if self.fed_by == "push" or self.subscription is None:
            return self.fed_by
        return f"{self.fed_by} ({self.subscription})"


def feed_mode(sub: Subscription | None, push: PushSettings, now: datetime) -> FeedMode:
    if push.callback_url is None or sub is None:
        return FeedMode("poll")
    if sub.pushed(now):
        return FeedMode("push", sub.state, sub.expires_at)
    state = "expired" if sub.state == "active" else sub.state
    return FeedMode("poll", state, sub.expires_at)


def feed_modes(config: FeedsConfig, state_path: Path, now: datetime) -> Mapping[str, FeedMode]:
    """Every configured source's feed mode; a missing state file means "polled" (it is not
    created by looking)."""
    subs: Mapping[str, Subscription] = {}
    if state_path.exists():
        with StateStore(state_path) as store:
            subs = store.subscriptions()
    return {s.id: feed_mode(subs.get(s.id), config.defaults.push, now) for s in config.sources}
