"""An alert's delivery state, kept on the alert document beside the alert's own fields.

``pending`` channels are owed a message; ``notified``, ``failed`` and ``throttled`` record the
outcome per channel, ``sent_versions`` the story version each channel last got
(``channel@version``: a channel that got an older version is owed an ``alert.updated``), and
``deliveries`` the latest attempts. Pure logic over documents; delivery.py does the sending
and the store writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from newsmon.metrics import LAGS, UNLABELLED, Lag
from newsmon.models import FedBy
from newsmon.pipeline.alerts.content import story_version
from newsmon.pipeline.store.base import parse_time

JsonDict = dict[str, Any]


#: sent; failed (stays pending); throttled (held back by the rule's throttle or a mute, the
#: reason in ``error``); expired (given up after ``give_up_after_s``); parked (the receiver
#: refused it: a dead letter with its reason, not retried); skipped (the channel does not
#: take this event).
DeliveryStatus = Literal["sent", "failed", "throttled", "expired", "parked", "skipped"]
#: Outcomes after which the channel has what it is owed for this version.
DONE: frozenset[str] = frozenset({"sent", "skipped"})

#: Entries kept in an alert's ``deliveries`` list: the latest attempts tell the story.
MAX_DELIVERY_RECORDS = 50


@dataclass(frozen=True)
class Latency:
    """Time-to-alert of one delivery, for the lag histogram (metrics.ALERT_LAG): each lag in
    seconds, under the source kind of the story's first copy and how it came."""

    source_kind: str
    fed_by: FedBy
    lags: tuple[tuple[Lag, float], ...]


@dataclass(frozen=True)
class Attempt:
    """One channel's outcome for one alert: sent, failed (stays pending), throttled (held back
    by the rule's throttle) or expired (given up after ``give_up_after_s``)."""

    channel: str
    status: DeliveryStatus
    at: datetime
    attempts: int = 0
    error: str = ""
    event: str = ""
    version: int = 0
    delivery_id: str = ""
    #: Not before this time (the receiver's ``Retry-After`` beyond what one run waits).
    retry_at: datetime | None = None
    #: When the receiver acknowledged it (sent only): the end of time-to-alert.
    notified_at: datetime | None = None
    #: A channel's first message of a story (sent ``alert.created``): its time-to-alert.
    latency: Latency | None = None

    def as_json(self) -> JsonDict:
        out: JsonDict = {"channel": self.channel, "status": self.status,
                         "at": self.at.isoformat(), "attempts": self.attempts,
                         "error": self.error[:500], "event": self.event,
                         "version": self.version, "delivery_id": self.delivery_id}
        if self.retry_at is not None:
            out["retry_at"] = self.retry_at.isoformat()
        if self.notified_at is not None:
            out["notified_at"] = self.notified_at.isoformat()
        return out


def initial_state(channels: Iterable[str]) -> JsonDict:
    """The delivery state of a new alert: every channel of its rule owed."""
    return {"notified": [], "pending": sorted(set(channels)), "failed": [], "throttled": [],
            "deliveries": []}


def sent_version(doc: Mapping[str, Any], channel: str) -> int:
    """The story version ``channel`` last got (1 for a channel notified before versions were
    recorded), 0 if it got none."""
    versions = [int(v.rpartition("@")[2]) for v in doc.get("sent_versions") or ()
                if v.rpartition("@")[0] == channel]
    if versions:
        return max(versions)
    return 1 if channel in (doc.get("notified") or ()) else 0


def owed(channels: Iterable[str], doc: Mapping[str, Any]) -> list[str]:
    """Channels an existing alert still owes: its pending ones, any channel of its rule (the
    rule may have gained one) not yet sent, held back or given up, and, for a story that grew
    (``doc`` is the alert as merged), the channels that got an older version of it."""
    pending = set(doc.get("pending") or ())
    given_up = set(doc.get("failed") or ()) - pending
    done = set(doc.get("notified") or ()) | set(doc.get("throttled") or ()) | given_up
    grown: set[str] = set()
    if doc.get("kind", "story") == "story":
        version = story_version(doc)
        grown = {c for c in doc.get("notified") or () if c in set(channels)
                 and c not in given_up and sent_version(doc, c) < version}
    return sorted(((pending | set(channels)) - done) | grown)


def apply_attempts(doc: Mapping[str, Any], attempts: Iterable[Attempt]) -> JsonDict:
    """The document with these outcomes recorded and the delivery lease released. Pure; set
    unions, so recording the same outcome twice changes nothing."""
    out = dict(doc)
    notified = set(doc.get("notified") or ())
    pending = set(doc.get("pending") or ())
    failed = set(doc.get("failed") or ())
    throttled = set(doc.get("throttled") or ())
    records = list(doc.get("deliveries") or ())
    versions = {c: sent_version(doc, c) for c in notified}
    first_notified = doc.get("notified_at")
    for attempt in attempts:
        if attempt.status == "sent" and attempt.notified_at is not None and not first_notified:
            # The alert's first delivery, kept: later ones (updates, escalation) do not move it.
            first_notified = attempt.notified_at.isoformat()
        if attempt.status in DONE:
            notified.add(attempt.channel)
            pending.discard(attempt.channel)
            failed.discard(attempt.channel)
            versions[attempt.channel] = max(versions.get(attempt.channel, 0), attempt.version)
        elif attempt.status == "throttled":
            throttled.add(attempt.channel)
            pending.discard(attempt.channel)
        elif attempt.status == "failed":
            failed.add(attempt.channel)  # still pending: the next run tries again
        else:
            failed.add(attempt.channel)
            pending.discard(attempt.channel)
        if attempt.status != "skipped":  # nothing was sent: the log stays about messages
            records.append(attempt.as_json())
    out.update(notified=sorted(notified), pending=sorted(pending), failed=sorted(failed),
               throttled=sorted(throttled), deliveries=records[-MAX_DELIVERY_RECORDS:],
               sent_versions=sorted(f"{c}@{v}" for c, v in versions.items() if v))
    if first_notified:
        out["notified_at"] = first_notified
    out.pop("lease_until", None)
    return out


#: The two ends of each time-to-alert lag, as fields of an alert document.
_LAG_ENDS: dict[Lag, tuple[str, str]] = dict(zip(LAGS, (
    ("published_at", "first_seen_at"), ("first_seen_at", "indexed_at"),
    ("indexed_at", "notified_at"), ("published_at", "notified_at")), strict=True))


def alert_lags(doc: Mapping[str, Any]) -> dict[Lag, float]:
    """The time-to-alert lags (seconds) of a stored story alert, from its ``published_at``,
    ``first_seen_at``, ``indexed_at`` and ``notified_at`` (datetimes or ISO strings); a lag
    whose ends are not both there (an alert not notified yet, or stored before the times) is
    left out. Pure."""
    times = {k: parse_time(v) for k in ("published_at", "first_seen_at", "indexed_at",
                                          "notified_at") if (v := doc.get(k))}
    return {lag: (times[end] - times[start]).total_seconds()
            for lag, (start, end) in _LAG_ENDS.items() if start in times and end in times}


def delivery_latency(doc: Mapping[str, Any], notified_at: datetime) -> Latency:
    """The time-to-alert of a story alert ``doc`` notified at ``notified_at``, labelled by
    its first copy's source kind (``unlabelled`` without one) and path. Pure."""
    first = (doc.get("sources") or [{}])[0]
    fed_by: FedBy = "push" if doc.get("fed_by") == "push" else "poll"
    lags = alert_lags({**doc, "notified_at": notified_at})
    return Latency(str(first.get("kind") or UNLABELLED), fed_by, tuple(lags.items()))
