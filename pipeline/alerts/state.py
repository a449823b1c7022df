"""An alert's delivery state, kept on the alert document beside the alert's own fields.

``pending`` channels are owed a message; ``notified``, ``failed`` and ``throttled`` record the
outcome per channel and ``deliveries`` the latest attempts. Pure logic over documents;
delivery.py does the sending and the store writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

JsonDict = dict[str, Any]


DeliveryStatus = Literal["sent", "failed", "throttled", "expired"]

#: Entries kept in an alert's ``deliveries`` list: the latest attempts tell the story.
MAX_DELIVERY_RECORDS = 50


@dataclass(frozen=True)
class Attempt:
    """One channel's outcome for one alert: sent, failed (stays pending), throttled (held back
    by the rule's throttle) or expired (given up after ``give_up_after_s``)."""

    channel: str
    status: DeliveryStatus
    at: datetime
    attempts: int = 0
    error: str = ""

    def as_json(self) -> JsonDict:
        return {"channel": self.channel, "status": self.status, "at": self.at.isoformat(),
                "attempts": self.attempts, "error": self.error[:500]}


def initial_state(channels: Iterable[str]) -> JsonDict:
    """The delivery state of a new alert: every channel of its rule owed."""
    return {"notified": [], "pending": sorted(set(channels)), "failed": [], "throttled": [],
            "deliveries": []}


def owed(channels: Iterable[str], doc: Mapping[str, Any]) -> list[str]:
    """Channels an existing alert still owes: its pending ones and any channel of its rule
    (the rule may have gained one) not yet sent, held back or given up."""
    pending = set(doc.get("pending") or ())
    given_up = set(doc.get("failed") or ()) - pending
    done = set(doc.get("notified") or ()) | set(doc.get("throttled") or ()) | given_up
    return sorted((pending | set(channels)) - done)


def apply_attempts(doc: Mapping[str, Any], attempts: Iterable[Attempt]) -> JsonDict:
    """The document with these outcomes recorded and the delivery lease released. Pure; set
    unions, so recording the same outcome twice changes nothing."""
    out = dict(doc)
    notified = set(doc.get("notified") or ())
    pending = set(doc.get("pending") or ())
    failed = set(doc.get("failed") or ())
    throttled = set(doc.get("throttled") or ())
    records = list(doc.get("deliveries") or ())
    for attempt in attempts:
        if attempt.status == "sent":
            notified.add(attempt.channel)
            pending.discard(attempt.channel)
            failed.discard(attempt.channel)
        elif attempt.status == "throttled":
            throttled.add(attempt.channel)
            pending.discard(attempt.channel)
        elif attempt.status == "failed":
            failed.add(attempt.channel)  # still pending: the next run tries again
        else:
            failed.add(attempt.channel)
            pending.discard(attempt.channel)
        records.append(attempt.as_json())
    out.update(notified=sorted(notified), pending=sorted(pending), failed=sorted(failed),
               throttled=sorted(throttled), deliveries=records[-MAX_DELIVERY_RECORDS:])
    out.pop("lease_until", None)
    return out
