"""Delivering alerts to their channels: claim, throttle, send with bounded retries, record.

Every alert document carries its delivery state (state.py): ``pending`` channels are owed a
message. A deliverer

1. claims the alert with a short lease (a version-guarded write), so two workers or a worker
   and the next run's sweep never send the same alert at once;
2. per pending channel: applies the rule's throttle (one delivery per channel per window:
   the first alert of a window creates the window's document atomically, later ones are
   recorded on it and on their alert as ``throttled``), then sends with bounded retries
   (tenacity; each try limited by the channel's ``timeout_s``);
3. records every outcome on the alert (``notified``, ``failed``, ``throttled``,
   ``deliveries``) and releases the lease.

A channel that fails stays pending and is tried again by the next run's sweep
(:meth:`Deliverer.deliver_pending`), no sooner than ``retry_after_s`` after the failure and
until ``give_up_after_s``; within one worker, a channel that just failed is not tried again
for ``circuit_s``, so a dead endpoint costs one bounded attempt, not one per alert.
Delivery is at least once: a crash between sending and recording means the lease expires and
the message goes out again, with the same delivery id (alert id + event + version), so
receivers can deduplicate. A story that grows (new sources or languages) owes the channels
that got an older version an ``alert.updated``; a receiver that refuses a message (HTTP 4xx
other than 429) has it parked as a dead letter with its reason; a ``Retry-After`` is honoured
up to ``max_retry_after_s`` within a run, and beyond that by the next run.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
)
from tenacity.wait import wait_exponential

from newsmon.models import DeadLetter, content_id
from newsmon.pipeline.alerts.channels import (
    ChannelConfigBase,
    DeliveryError,
    Message,
    Notifier,
    make_notifier,
)
from newsmon.pipeline.alerts.config import AlertsConfig
from newsmon.pipeline.alerts.content import (
    MAX_ARTICLES,
    AlertContent,
    Event,
    plain_text,
    story_content,
    surge_content,
)
from newsmon.pipeline.alerts.mutes import MuteBook
from newsmon.pipeline.alerts.state import (
    Attempt,
    DeliveryStatus,
    apply_attempts,
    delivery_latency,
    sent_version,
)
from newsmon.pipeline.store import DocumentStore, parse_time

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


def delivery_id(alert_id: str, event: str, version: int) -> str:
    """The id of one event of one alert version: the same for every retry and every
    redelivery, so a receiver that saw it can drop the repeat."""
    return content_id("delivery", alert_id, event, str(version))


def alert_content(doc: Mapping[str, Any], articles: Sequence[Mapping[str, Any]] = (),
                  topic_names: Mapping[str, str] | None = None) -> AlertContent:
    """The content of a stored alert, story (with its article documents) or surge."""
    if doc.get("kind") == "surge":
        return surge_content(doc, topic_names)
    return story_content(doc, articles, topic_names)


def message_for(content: AlertContent, event: Event) -> Message:
    """The message every channel renders for ``event`` of this alert content."""
    return Message(subject=content.subject, text=plain_text(content), url=content.url,
                   data=content.as_json(), content=content, event=event,
                   delivery_id=delivery_id(content.alert_id, event, content.version))


def event_for(doc: Mapping[str, Any], channel: str) -> Event:
    """What ``channel`` is owed: a surge, a new alert, or an update of one it already got."""
    if doc.get("kind") == "surge":
        return "surge.created"
    return "alert.updated" if sent_version(doc, channel) else "alert.created"


def throttle_window(now: datetime, throttle_s: int) -> tuple[datetime, datetime]:
    """The epoch-aligned window holding ``now``: fixed windows make "one delivery per channel
    per window" a single atomic create of the window's document."""
    epoch = int(now.timestamp())
    start = datetime.fromtimestamp(epoch - epoch % throttle_s, UTC)
    return start, start + timedelta(seconds=throttle_s)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, DeliveryError) and exc.retryable


def requeue_parked(store: DocumentStore, letters: Iterable[DeadLetter]) -> list[str]:
    """Owe the message of each parked delivery (a ``notify`` dead letter) again, once its
    receiver is fixed: the alert's channel goes back to pending for the next delivery run.
    Returns the alert ids requeued (an alert deleted meanwhile is skipped)."""
    done = []
    for letter in letters:
        owed = json.loads(letter.payload)
        alert_id, channel = str(owed["alert_id"]), str(owed["channel"])
        for _ in range(10):
            current = store.get("alerts", alert_id)
            if current is None:
                break
            doc = dict(current.source)
            doc["pending"] = sorted({*doc.get("pending", ()), channel})
            doc["failed"] = sorted(set(doc.get("failed", ())) - {channel})
            if store.replace_if("alerts", alert_id, doc, current.version):
                done.append(alert_id)
                break
    return done


class Deliverer:
    """Delivers alerts from one store to the channels of ``config``. One per worker."""

    def __init__(
        self,
        store: DocumentStore,
        config: AlertsConfig,
        *,
        notifiers: Mapping[str, Notifier] | None = None,
        backoff_s: float = 0.5,
        max_backoff_s: float = 4.0,
        max_retry_after_s: float = 30.0,
        circuit_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        topic_names: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self._notifiers: dict[str, Notifier] = dict(notifiers or {})
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        #: A receiver's Retry-After up to this long is waited out in the run; a longer one
        #: leaves the channel pending until then.
        self.max_retry_after_s = max_retry_after_s
        self.circuit_s = circuit_s
        self.sleep = sleep
        self.topic_names = topic_names
        self._open_until: dict[str, float] = {}
        self.mutes = MuteBook(store)

    # --- the sweep and one alert ---------------------------------------------------------

    def deliver_pending(self, now: datetime | None = None, limit: int = 1000) -> list[Attempt]:
        """Try every alert that still owes a channel a message (failed or never tried)."""
        if not self.config.channels:
            return []
        docs = self.store.find_terms("alerts", "pending", sorted(self.config.channels),
                                     size=limit)
        self.mutes.load(docs)
        out: list[Attempt] = []
        for alert_id in sorted({str(d["alert_id"]) for d in docs}):
            out.extend(self.deliver(alert_id, now))
        return out

    def deliver(self, alert_id: str, now: datetime | None = None) -> list[Attempt]:
        """Send one alert to the channels it owes; returns what happened per channel (nothing
        if another deliverer holds it or nothing is owed)."""
        now = now or datetime.now(UTC)
        mark = time.monotonic()  # notified_at: ``now`` plus the time until a receiver's ack
        doc = self._claim(alert_id, now)
        if doc is None:
            return []
        pending = list(doc.get("pending") or ())
        created = doc.get("created_at")
        age = (now - parse_time(created)).total_seconds() if created else 0.0
        if age > self.config.give_up_after_s:
            attempts = [Attempt(c, "expired", now, error=f"given up after {age:.0f}s")
                        for c in pending]
        elif (dropped := self.drop_reason(doc, now)) is not None:
            # Held back like a throttled channel: no longer owed, the reason on the record.
            attempts = [Attempt(c, "throttled", now, error=dropped) for c in pending]
        else:
            rule = self.config.rule(str(doc.get("rule", "")))
            throttle_s = rule.throttle_s if rule is not None else 0
            content = alert_content(doc, self._articles(doc), self.topic_names)
            attempts = []
            for channel in pending:
                message = message_for(content, event_for(doc, channel))
                attempt = self._deliver_one(channel, message, doc, throttle_s, now, mark)
                if attempt is not None:
                    attempts.append(attempt)
        self._record(alert_id, attempts)
        for a in attempts:
            level = logging.DEBUG if a.status in ("sent", "throttled") else logging.WARNING
            log.log(level, "alert %s (rule %s): %s %s%s", alert_id, doc.get("rule"), a.channel,
                    a.status, f": {a.error}" if a.error else "")
        return attempts

    def drop_reason(self, doc: Mapping[str, Any], now: datetime) -> str | None:
        """Why this alert must reach no channel (a mute set from the inbox), or None to
        deliver it. The one place an alert is dropped before notifying: its channels are
        recorded as held back (``throttled``) with the reason and are no longer owed."""
        return self.mutes.reason(doc, now)

    # --- steps ------------------------------------------------------------------------------

    def _articles(self, doc: Mapping[str, Any]) -> list[JsonDict]:
        doc_ids = [str(d) for d in (doc.get("doc_ids") or ())][:MAX_ARTICLES]
        if doc.get("kind") == "surge" or not doc_ids:
            return []
        return self.store.find_terms("articles", "doc_id", doc_ids, size=MAX_ARTICLES)

    def _park(self, channel: str, message: Message, error: str) -> None:
        """A message the receiver refused, as a dead letter with the receiver's reason."""
        payload = json.dumps({"alert_id": str(message.data.get("alert_id", "")),
                              "channel": channel, "event": message.event,
                              "delivery_id": message.delivery_id}, sort_keys=True)
        letter = DeadLetter.make(stage="notify", error=error, source_id=f"channel:{channel}",
                                 payload=payload)
        # Written over any earlier letter for this delivery: refused again after a replay,
        # it is pending again (same id), as every stage's dead letters are.
        failures = self.store.bulk_write("dead-letters", [(letter.dl_id, letter.document())])
        if failures:
            raise RuntimeError(f"dead-letter index rejected a parked delivery: {failures[0]}")

    def _claim(self, alert_id: str, now: datetime) -> JsonDict | None:
        for _ in range(10):
            current = self.store.get("alerts", alert_id)
            if current is None or not current.source.get("pending"):
                return None
            lease = current.source.get("lease_until")
            if lease and parse_time(lease) > now:
                return None  # another deliverer is on it; if it dies, the lease runs out
            until = now + timedelta(seconds=self.config.lease_s)
            doc = {**current.source, "lease_until": until.isoformat()}
            if self.store.replace_if("alerts", alert_id, doc, current.version):
                return doc
        return None

    def _record(self, alert_id: str, attempts: list[Attempt]) -> None:
        for _ in range(20):
            current = self.store.get("alerts", alert_id)
            if current is None:
                return
            doc = apply_attempts(current.source, attempts)
            if self.store.replace_if("alerts", alert_id, doc, current.version):
                return
        raise RuntimeError(f"alert {alert_id}: could not record deliveries (too many updates)")

    def _deliver_one(self, channel: str, message: Message, doc: Mapping[str, Any],
                     throttle_s: int, now: datetime, mark: float) -> Attempt | None:
        config = self.config.channels.get(channel)
        if config is None:
            return Attempt(channel, "failed", now, error="channel not configured")
        if self._open_until.get(channel, 0.0) > time.monotonic():
            return None  # failed moments ago in this worker: left pending, not hammered
        last = next((d for d in reversed(doc.get("deliveries") or ())
                     if d.get("channel") == channel), None)
        if last is not None and last.get("status") == "failed" and (
            now - parse_time(last["at"]) < timedelta(seconds=self.config.retry_after_s)
            or (last.get("retry_at") and parse_time(last["retry_at"]) > now)
        ):
            return None  # failed moments ago (another worker, this run), or asked us to wait
        version = message.content.version if message.content is not None else 0

        def outcome(status: DeliveryStatus, attempts: int = 0, error: str = "",
                    retry_at: datetime | None = None) -> Attempt:
            return Attempt(channel, status, now, attempts, error, message.event, version,
                           message.delivery_id, retry_at)

        if message.event not in config.events:
            return outcome("skipped")
        try:
            notifier = self._notifier(channel, config)
        except ValueError as exc:
            return outcome("failed", error=f"channel misconfigured: {exc}")
        alert_id = str(doc["alert_id"])
        if throttle_s and not self._may_use_window(str(doc.get("rule")), channel, alert_id,
                                                    throttle_s, now):
            return outcome("throttled")
        tries = 0

        def send_once() -> None:
            nonlocal tries
            tries += 1
            notifier.send(message)

        retrying = Retrying(
            stop=stop_after_attempt(config.attempts)
            | stop_after_delay(config.timeout_s * config.attempts),
            wait=self._wait,
            retry=retry_if_exception(self._retry_now),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            retrying(send_once)
        except DeliveryError as exc:
            if exc.rejected:
                self._park(channel, message, str(exc))
                return outcome("parked", tries, str(exc))
            self._open_until[channel] = time.monotonic() + self.circuit_s
            retry_at = (now + timedelta(seconds=exc.retry_after_s)
                        if exc.retry_after_s is not None else None)
            return outcome("failed", tries, str(exc), retry_at)
        acked = now + timedelta(seconds=time.monotonic() - mark)
        latency = (delivery_latency(doc, acked) if message.event == "alert.created" else None)
        return replace(outcome("sent", tries), notified_at=acked, latency=latency)

    def _retry_now(self, exc: BaseException) -> bool:
        """Worth another try in this run: retryable, and not asked to wait longer than a run
        waits."""
        if not _retryable(exc):
            return False
        after = getattr(exc, "retry_after_s", None)
        return after is None or after <= self.max_retry_after_s

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff, or the receiver's Retry-After when that is longer."""
        backoff = float(wait_exponential(multiplier=self.backoff_s,
                                         max=self.max_backoff_s)(state))
        exc = state.outcome.exception() if state.outcome is not None else None
        after = getattr(exc, "retry_after_s", None)
        return max(backoff, float(after)) if after is not None else backoff

    def _notifier(self, channel: str, config: ChannelConfigBase) -> Notifier:
        if channel not in self._notifiers:
            self._notifiers[channel] = make_notifier(config)
        return self._notifiers[channel]

    def _may_use_window(self, rule: str, channel: str, alert_id: str, throttle_s: int,
                        now: datetime) -> bool:
        """True if this alert may deliver on ``channel`` in the current throttle window:
        it is the first to ask (or asked before and failed). Otherwise it is recorded on the
        window's document as held back."""
        start, end = throttle_window(now, throttle_s)
        key = content_id("throttle", rule, channel, start.isoformat())
        fresh = {"key": key, "rule": rule, "channel": channel, "window_start": start.isoformat(),
                 "window_end": end.isoformat(), "alert_id": alert_id, "held_back": []}
        for _ in range(10):
            if self.store.create("alert-throttle", key, fresh):
                return True
            current = self.store.get("alert-throttle", key)
            if current is None:
                continue  # deleted meanwhile: try to create it again
            if current.source.get("alert_id") == alert_id:
                return True
            held = sorted({*current.source.get("held_back", ()), alert_id})
            if held == current.source.get("held_back"):
                return False
            if self.store.replace_if("alert-throttle", key,
                                     {**current.source, "held_back": held}, current.version):
                return False
        return False
