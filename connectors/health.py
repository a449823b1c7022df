"""A configured source with its stored health, for ``newsmon sources [--json]``, doctor and the
search store's health index.

:class:`SourceHealth` *is* the stored :class:`~newsmon.connectors.records.Health` (one
declaration of the health fields) plus what the configuration says about the source and the
``state`` summarised from both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import Field

from newsmon.connectors.base import PollResult, SourceBase
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.records import Health
from newsmon.connectors.state import StateStore

log = logging.getLogger(__name__)

#: A Retry-After longer than this is treated as this (a misconfigured server asking for a year).
MAX_RETRY_AFTER_S = 24 * 3600.0


class SourceHealth(Health):
    """One source's health row. ``source_id`` is left out of dumps: ``id`` names the source."""

    source_id: str = Field(exclude=True)
    id: str
    type: str
    name: str
    lang: str
    country: str
    location: str
    enabled: bool
    interval_s: int
    #: never-polled, ok, failing, disabled (after hard failures) or off (enabled: false).
    state: str

    @staticmethod
    def of(source: SourceBase, health: Health, interval_s: int) -> SourceHealth:
        if not source.enabled:
            state = "off"
        elif health.disabled:
            state = "disabled"
        elif health.last_poll_at is None:
            state = "never-polled"
        elif health.consecutive_failures:
            state = "failing"
        else:
            state = "ok"
        return SourceHealth(
            **health.model_dump(),
            **source.model_dump(include={"id", "type", "name", "lang", "country", "enabled"}),
            location=source.location, interval_s=interval_s, state=state,
        )


def source_health(config: FeedsConfig, state_paths: Path | Sequence[Path]) -> list[SourceHealth]:
    """Every configured source with its health, once, merged over ``state_paths`` (the
    single poller's store and those of a shard group's members, each holding only the
    sources of its shards: ``merged_health``); a missing state file means "never polled"
    (it is not created by looking)."""
    stored = merged_health([state_paths] if isinstance(state_paths, Path) else state_paths)
    return [
        SourceHealth.of(s, stored.get(s.id) or Health(source_id=s.id), config.interval_for(s))
        for s in config.sources
    ]


def merged_health(state_paths: Iterable[Path]) -> dict[str, Health]:
    """Source id -> its latest reported health among the state stores that exist.

    Pollers of a shard group report only the sources they poll, and a source's former owner
    keeps its last report after the shard moved. The owner now is the one polling it (a new
    owner polls a source as soon as it is given it), so the report with the latest poll wins;
    a source no store has polled takes the first store's row (a disabled flag or due time)."""
    merged: dict[str, Health] = {}
    for path in state_paths:
        if not path.exists():
            continue
        with StateStore(path) as store:
            for source_id, health in store.all_health().items():
                held = merged.get(source_id)
                if held is None or _reported_at(health) > _reported_at(held):
                    merged[source_id] = health
    return merged


def _reported_at(health: Health) -> datetime:
    return health.last_poll_at or datetime.min.replace(tzinfo=UTC)


#: A tick's start varies (systemd's AccuracySec, a CronJob's pod start, Python start-up): a
#: pass polls early only what falls due before the next tick less this share of the period, so
#: a source due just as the next tick starts waits for it instead of going a period early.
TICK_MARGIN = 0.2


def is_due(health: Health, now: datetime, *, tick_s: float, floor_s: float) -> bool:
    """Whether a pass starting at ``now`` polls the source of ``health``.

    Due when never polled or ``next_due_at`` has passed. A pass run by a timer ticking every
    ``tick_s`` (0 for the long-running poller, which wakes when a source falls due) also takes
    a source falling due before the next tick (less :data:`TICK_MARGIN`): waiting for that tick
    made a 15 min feed under a 5 min timer a 20 min feed, as the jitter and the poll's own
    duration put its due time just after a tick. Early only after a success (a backoff or a
    ``Retry-After`` is kept to the second) and never sooner than ``floor_s`` after the last
    poll (the politeness floor, ``min_interval_s``)."""
    due = health.next_due_at
    if due is None or due <= now:
        return True
    if health.consecutive_failures or due > now + timedelta(seconds=tick_s * (1 - TICK_MARGIN)):
        return False
    last = health.last_poll_at
    return last is None or (now - last).total_seconds() >= floor_s


def backoff_s(config: FeedsConfig, interval: int, failures: int) -> float:
    """Exponential: the interval doubled per consecutive failure, capped."""
    cap = float(config.defaults.max_backoff_s)
    return min(cap, interval * 2.0 ** max(0, failures - 1))


def next_health(
    old: Health,
    config: FeedsConfig,
    source: SourceBase,
    result: PollResult,
    *,
    new: int,
    problems: int,
    now: datetime,
    jitter: Callable[[float], float],
) -> Health:
    """A source's health after one poll that found ``new`` new items and ``problems``
    problems: counters, the error of a failed poll, the next due time (the interval, or the
    feed's ttl, or the backoff and Retry-After after a failure, then ``jitter``), and the
    source disabled after ``disable_after`` consecutive hard failures."""
    defaults = config.defaults
    interval = config.interval_for(source)
    update: dict[str, object] = {
        "last_poll_at": now,
        "last_status": result.http_status if result.http_status is not None else
        old.last_status,
        "items_seen": old.items_seen + new,
        "parse_errors": old.parse_errors + problems,
    }
    if new:
        update["last_new_item_at"] = now
    if result.status in ("ok", "not-modified"):
        wait = float(interval)
        if result.ttl_s and defaults.respect_ttl:
            wait = max(wait, float(min(result.ttl_s, defaults.max_ttl_s)))
        update |= {
            "last_success_at": now,
            "consecutive_failures": 0,
            "hard_failures": 0,
        }
    else:
        failures = old.consecutive_failures + 1
        hard = old.hard_failures + 1 if result.hard else old.hard_failures
        wait = backoff_s(config, interval, failures)
        if result.retry_after_s is not None:
            wait = max(wait, min(result.retry_after_s, MAX_RETRY_AFTER_S))
        update |= {
            "last_error": result.error,
            "last_error_kind": result.error_kind,
            "last_error_at": now,
            "consecutive_failures": failures,
            "hard_failures": hard,
        }
        if hard >= defaults.disable_after and not old.disabled:
            reason = (
                f"disabled after {hard} consecutive hard failures;"
                f" last: {result.error_kind}: {result.error}"
            )
            update |= {"disabled": True, "disabled_reason": reason}
            log.error("source %s: %s", source.id, reason)
    update["next_due_at"] = now + timedelta(seconds=jitter(wait))
    return old.model_copy(update=update)
