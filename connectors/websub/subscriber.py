"""The subscription lifecycle of every pushed source, and pushed content into the poller.

Lifecycle (spec 5 and 6), run by :meth:`Subscriber.maintain` every few seconds:

- a configured, enabled http(s) feed without a subscription: fetch it, find its hub (none:
  ``no-hub``, polled as before), store the subscription as ``pending`` with a new secret, then
  POST the request (stored first: some hubs verify before they answer);
- ``pending`` past ``verify_timeout_s``: ``unconfirmed`` (normal polling, and one poll now),
  retried after ``retry_s``; a verification that still comes later is accepted;
- ``active`` near the end of its lease: the same request again (renewal; still pushed
  meanwhile); past its end without a verified renewal: ``expired``, polled now and subscribed
  anew;
- a subscription whose source left feeds.yaml (or was disabled, or moved to another URL):
  unsubscribed, and forgotten once the hub verified (or after ``verify_timeout_s``).

Verification of intent (:meth:`verify`) echoes ``hub.challenge`` only for the request this
side has pending with the same mode and topic; everything else is a 404. Pushed content
(:meth:`receive`) needs a valid ``X-Hub-Signature`` with the subscription's secret; without
one it is acknowledged (spec 7.1 wants a 2xx) and discarded, counted and logged. Authentic
content is decoded within the fetch limits, parsed by rss.parse_feed and handed to
``Poller.deliver``: dedup, enrichment, publishing, seen marks and health are the poller's own.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal

import httpx

from newsmon.config import MAX_PERIOD_S
from newsmon.connectors.base import PollResult, Problem, utc_now
from newsmon.connectors.codings import BodyTooLarge, CodingError, decode
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.fields import ascii_int
from newsmon.connectors.guard import FetchError
from newsmon.connectors.records import Cursor
from newsmon.connectors.rss import ACCEPT_FEEDS, RssConnector, RssSource, parse_feed
from newsmon.connectors.runner import Poller
from newsmon.connectors.websub.protocol import (
    discover,
    hub_client,
    hub_request,
    signature_problem,
)
from newsmon.connectors.websub.records import Subscription
from newsmon.metrics import WEBSUB_PUSHES
from newsmon.models import RawItem

log = logging.getLogger(__name__)

#: What became of one pushed request (the metric's label; the server maps it to a status).
Outcome = Literal["published", "bad-signature", "unknown", "failed"]
#: Longest challenge echoed: the spec sets none, and a hub needs a few dozen characters.
MAX_CHALLENGE = 1024


class _Pushed:
    """A connector whose poll returns a pushed document: the poller then takes it through
    its own steps. Enrichment (full text) is the source's own connector's."""

    def __init__(self, connector: RssConnector, result: PollResult) -> None:
        self._connector = connector
        self._result = result

    @property
    def source(self) -> RssSource:
        return self._connector.source

    def poll(self, cursor: Cursor) -> PollResult:
        # The stored cursor stays: it holds the validators of the last *polled* document.
        return self._result.model_copy(update={"cursor": cursor})

    def enrich(self, items: Sequence[RawItem]) -> tuple[tuple[RawItem, ...], tuple[Problem, ...]]:
        return self._connector.enrich(items)


class Subscriber:
    """The push side of one poller: its state store, its feed client and its publishing."""

    def __init__(self, config: FeedsConfig, poller: Poller, *, allow_private: bool = False,
                 clock: Callable[[], datetime] = utc_now,
                 client: httpx.Client | None = None) -> None:
        self.config = config
        self.push = config.defaults.push
        self.poller = poller
        self.state = poller.state
        self.clock = clock
        self._own_client = client is None
        self.client = client or hub_client(config.defaults.http, allow_private=allow_private)
        # Pushes of several sources may arrive at once; the poller publishes one at a time.
        self._deliver = threading.Lock()

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    # --- lifecycle ------------------------------------------------------------------------

    def pushable(self) -> dict[str, RssSource]:
        """The sources a hub may push: enabled feeds fetched over http(s)."""
        return {s.id: s for s in self.config.enabled
                if isinstance(s, RssSource) and s.url.startswith(("http://", "https://"))}

    def maintain(self) -> None:
        """One round of the lifecycle (module notes). Never raises for a hub or a feed that
        fails: that subscription records why and the next round goes on."""
        if self.push.callback_url is None:
            return
        now = self.clock()
        wanted = self.pushable()
        for sid, sub in self.state.subscriptions().items():
            source = wanted.get(sid)
            if source is None or source.url != sub.url:
                self._leave(sub, now)
        for sid, source in wanted.items():
            self._keep(source, self.state.subscription(sid), now)

    def _keep(self, source: RssSource, sub: Subscription | None, now: datetime) -> None:
        push = self.push
        if sub is not None and sub.state == "unsubscribing" and sub.url != source.url:
            return  # the old URL's unsubscribe first (forgotten after verify_timeout_s)
        if sub is None or sub.state == "unsubscribing":
            self._subscribe(source, None, now)
        elif sub.state == "pending" and not sub.awaiting(now, push.verify_timeout_s):
            log.warning("source %s: hub %s did not verify the subscription in %ss; polled"
                        " until it does", source.id, sub.hub, push.verify_timeout_s)
            self._fall_back(sub, "unconfirmed", "not verified in time", now)
        elif sub.state == "active" and sub.expires_at is not None and now >= sub.expires_at:
            log.warning("source %s: lease of hub %s ended without renewal; polled, subscribing"
                        " again", source.id, sub.hub)
            self._fall_back(sub, "expired", "lease ended", now)
            self._subscribe(source, self.state.subscription(source.id), now)
        elif sub.state == "active" and sub.pending is None and now >= (
                sub.renew_at(push.renew_before_s) or now):
            log.info("source %s: renewing the lease at hub %s", source.id, sub.hub)
            self._request(sub.model_copy(update={"pending": "subscribe", "requested_at": now}))
        elif sub.state in ("unconfirmed", "denied", "no-hub", "expired") and (
                now >= sub.requested_at + timedelta(seconds=push.retry_s)):
            self._subscribe(source, sub, now)

    def _subscribe(self, source: RssSource, old: Subscription | None, now: datetime) -> None:
        callback = self.push.callback_for(source.id)
        assert callback is not None
        try:
            response = self.poller.http.get(source.url, accept=ACCEPT_FEEDS)
        except FetchError as exc:
            response = None
            error = f"feed not fetched: {exc.kind}: {exc}"
        if response is not None and not response.ok:
            error = f"feed not fetched: HTTP {response.status}"
        if response is None or not response.ok:
            log.warning("source %s: no subscription: %s", source.id, error)
            self._store(Subscription(source_id=source.id, topic=source.url, url=source.url,
                                     callback=callback, secret="", state="unconfirmed",
                                     requested_at=now, last_error=error))
            return
        found = discover(response.url, response.headers, response.content)
        if found.hub is None:
            log.info("source %s: the feed names no WebSub hub: polled", source.id)
            self._store(Subscription(source_id=source.id, topic=found.topic, url=source.url,
                                     callback=callback, secret="", state="no-hub",
                                     requested_at=now))
            return
        # A renewal or a retry at the same hub keeps the secret its pushes are signed with.
        same = old is not None and (old.hub, old.topic) == (found.hub, found.topic)
        secret = old.secret if same and old is not None and old.secret else (
            secrets.token_hex(32))
        # Counts and the last error carry on: `newsmon sources` still says why it was lost.
        kept = {} if old is None else old.model_dump(
            include={"last_error", "pushes", "bad_signatures", "last_push_at"})
        self._request(Subscription(
            source_id=source.id, topic=found.topic, url=source.url, hub=found.hub,
            callback=callback, secret=secret, state="pending", pending="subscribe",
            requested_at=now, **kept))

    def _request(self, sub: Subscription) -> None:
        """Store ``sub`` (its request pending), then send the request; a refusal or a hub out
        of reach makes a subscribe ``unconfirmed`` unless verified meanwhile."""
        assert sub.hub is not None and sub.pending is not None
        self._store(sub)
        subscribing = sub.pending == "subscribe"
        error = hub_request(self.client, sub.hub, mode=sub.pending, topic=sub.topic,
                            callback=sub.callback, secret=sub.secret if subscribing else None,
                            lease_s=self.push.lease_s if subscribing else None)
        if error is None:
            log.info("source %s: %s requested at %s", sub.source_id, sub.pending, sub.hub)
            return
        log.warning("source %s: %s", sub.source_id, error)
        if subscribing:
            def refused(cur: Subscription | None) -> Subscription | None:
                if cur is None or cur.pending != "subscribe" or cur.requested_at != \
                        sub.requested_at:
                    return cur  # verified (or replaced) while the hub answered
                if cur.state == "active":  # a renewal refused: pushed until the lease ends
                    return cur.model_copy(update={"pending": None, "last_error": error})
                return cur.model_copy(update={"state": "unconfirmed", "last_error": error})
            self.state.change_subscription(sub.source_id, refused)
            self._poll_now(sub.source_id)

    def _leave(self, sub: Subscription, now: datetime) -> None:
        if sub.state == "unsubscribing":
            if not now < sub.requested_at + timedelta(seconds=self.push.verify_timeout_s):
                log.info("source %s: unsubscribe not verified by %s; forgotten (the lease"
                         " ends at the hub)", sub.source_id, sub.hub)
                self.state.change_subscription(sub.source_id, lambda _: None)
            return
        if sub.hub is None or sub.state in ("no-hub", "denied"):
            self.state.change_subscription(sub.source_id, lambda _: None)
            return
        log.info("source %s: removed from the configuration: unsubscribing at %s",
                 sub.source_id, sub.hub)
        self._request(sub.model_copy(update={"state": "unsubscribing", "pending": "unsubscribe",
                                             "requested_at": now}))

    def _fall_back(self, sub: Subscription, state: Literal["unconfirmed", "expired"],
                   error: str, now: datetime) -> None:
        self._store(sub.model_copy(update={"state": state, "last_error": error}))
        self._poll_now(sub.source_id)

    def _poll_now(self, source_id: str) -> None:
        """The source is no longer pushed: its next poll is due now, not at the slow pace."""
        health = self.state.health(source_id)
        now = self.clock()
        if health.next_due_at is not None and health.next_due_at > now:
            self.state.save_health(health.model_copy(update={"next_due_at": now}))

    def _store(self, sub: Subscription) -> None:
        self.state.change_subscription(sub.source_id, lambda _: sub)

    # --- the callback -----------------------------------------------------------------------

    def verify(self, source_id: str, params: Mapping[str, str]) -> str | None:
        """The body to answer a hub's GET with (the challenge; "" for a denial), or None for
        a 404: only the request this side has pending, same mode and topic, is confirmed."""
        mode, topic = params.get("hub.mode"), params.get("hub.topic")
        challenge = params.get("hub.challenge", "")
        now = self.clock()
        answer: list[str] = []

        def confirm(cur: Subscription | None) -> Subscription | None:
            if cur is None or cur.topic != topic or cur.pending is None:
                return cur
            if mode == "denied" and cur.pending == "subscribe":
                answer.append("")
                reason = params.get("hub.reason", "")[:200]
                log.warning("source %s: hub %s denied the subscription: %s", source_id,
                            cur.hub, reason)
                return cur.model_copy(update={"state": "denied", "pending": None,
                                              "last_error": f"denied: {reason}"})
            if mode != cur.pending or not challenge or len(challenge) > MAX_CHALLENGE:
                return cur
            answer.append(challenge)
            if mode == "unsubscribe":
                log.info("source %s: unsubscribed from %s", source_id, cur.hub)
                return None
            lease = ascii_int(params.get("hub.lease_seconds", "")) or self.push.lease_s
            lease = min(lease, MAX_PERIOD_S)
            log.info("source %s: subscription verified by %s, lease %ss", source_id, cur.hub,
                     lease)
            return cur.model_copy(update={
                "state": "active", "pending": None, "lease_s": lease, "last_error": None,
                "expires_at": now + timedelta(seconds=lease), "confirmed_at": now})

        self.state.change_subscription(source_id, confirm)
        if not answer:
            log.info("source %s: verification refused (mode %r, topic %r): not pending",
                     source_id, mode, topic)
        return answer[0] if answer else None

    def receive(self, source_id: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        """Take one pushed document (raw body within the fetch limit, lower-case headers).
        ``unknown``: no subscription (or no source) of that id; ``bad-signature``: discarded
        and counted; ``failed``: authentic but not a feed (counted and parked by the poller
        as a poll error); ``published``: through the poller (new items, if any, are in Kafka)."""
        sub = self.state.subscription(source_id)
        connector = self.poller.connectors.get(source_id)
        if sub is None or not sub.secret or not isinstance(connector, RssConnector):
            WEBSUB_PUSHES.labels("unknown").inc()
            log.info("push for %s: no subscription", source_id)
            return "unknown"
        problem = signature_problem(headers.get("x-hub-signature"), sub.secret, body)
        if problem is not None:
            self.state.change_subscription(source_id, lambda cur: None if cur is None else
                                           cur.model_copy(update={
                                               "bad_signatures": cur.bad_signatures + 1}))
            WEBSUB_PUSHES.labels("bad-signature").inc()
            log.warning("source %s: pushed content discarded: %s", source_id, problem)
            return "bad-signature"
        result = self._parse(connector.source, body, headers)
        with self._deliver:
            outcome = self.poller.deliver(_Pushed(connector, result))
        now = self.clock()
        self.state.change_subscription(source_id, lambda cur: None if cur is None else
                                       cur.model_copy(update={"pushes": cur.pushes + 1,
                                                              "last_push_at": now}))
        label: Outcome = "failed" if outcome.status == "error" else "published"
        WEBSUB_PUSHES.labels(label).inc()
        log.info("source %s: push: %s new, %s updated", source_id, outcome.new_items,
                 outcome.updated_items)
        return label

    def _parse(self, source: RssSource, body: bytes, headers: Mapping[str, str]) -> PollResult:
        """The pushed body as a poll result: decoded within the fetch limit (the same guard as
        a fetched feed), parsed like a fetched feed. Failures are results, never raised."""
        limit = self.config.defaults.http.max_bytes
        try:
            content = b"".join(decode([body], headers.get("content-encoding"), limit))
        except (BodyTooLarge, CodingError) as exc:
            return PollResult.failed(Cursor(), "push-undecodable", f"pushed body: {exc}")
        parsed = parse_feed(content, headers, source, now=self.clock(), base_url=source.url)
        if parsed.fatal is not None:
            return PollResult.failed(Cursor(), "not-a-feed", f"pushed body: {parsed.fatal}",
                                     problems=parsed.problems)
        # Marked as pushed: time-to-alert is measured per path (docs/alerts.md).
        items = tuple(item.model_copy(update={"fed_by": "push"}) for item in parsed.items)
        return PollResult(status="ok", cursor=Cursor(), items=items, problems=parsed.problems)
