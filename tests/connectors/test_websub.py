"""WebSub push against the hub in tests/websubhub.py (real HTTP on 127.0.0.1 both ways):
discovery, verification of intent, signatures, leases, the polling fallback, unsubscribing
removed sources, and pushed items taking the poller's path (dedup, seen marks)."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from newsmon.connectors.base import Defaults
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.publisher import ListPublisher
from newsmon.connectors.rss import RssSource
from newsmon.connectors.runner import Poller
from newsmon.connectors.websub.protocol import discover, signature_problem
from newsmon.connectors.websub.schedule import feed_modes
from newsmon.connectors.websub.server import server as callback_server
from newsmon.connectors.websub.server import serving
from newsmon.connectors.websub.subscriber import Subscriber
from newsmon.metrics import REGISTRY
from tests.connectors.feeds import Entry, rss
from tests.connectors.server import LocalServer, Reply
from tests.connectors.test_runner import Clock
from tests.websubhub import Hub, serve_hub

ONE = [Entry(guid="a", title="Troops for Ukraine", link="https://n.example/a")]
TWO = [*ONE, Entry(guid="b", title="ATACMS strikes", link="https://n.example/b")]


def hub_feed(entries: list[Entry], hub: str, self_url: str) -> bytes:
    """An RSS feed naming its hub and itself with atom:link, as WordPress and Blogger do."""
    links = (f'<atom:link rel="hub" href="{hub}"/>'
             f'<atom:link rel="self" href="{self_url}"/>')
    return rss(entries).replace(b'<rss version="2.0">',
                                b'<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">'
                                ).replace(b"<channel>", b"<channel>" + links.encode())


def source(feeds: LocalServer, sid: str = "feed-a") -> RssSource:
    return RssSource.model_validate({"id": sid, "type": "rss", "url": feeds.url(f"/{sid}"),
                                     "name": sid, "lang": "en", "country": "GB"})


def config(port: int, *sources: RssSource, **push: object) -> FeedsConfig:
    settings = {"callback_url": f"http://127.0.0.1:{port}/websub", "listen": f"127.0.0.1:{port}",
                "verify_timeout_s": 60, "retry_s": 3600, "poll_interval_s": 3600, **push}
    defaults = Defaults.model_validate({"min_interval_s": 0, "interval_s": 900,
                                        "push": settings})
    return FeedsConfig(defaults=defaults, sources=sources)


@dataclass
class Push:
    """A poller with its subscriber and callback server, the hub and the feed server."""

    hub: Hub
    feeds: LocalServer
    poller: Poller
    subscriber: Subscriber
    published: ListPublisher
    clock: Clock

    def serve_feed(self, sid: str, entries: list[Entry]) -> str:
        url = self.feeds.url(f"/{sid}")
        self.feeds.route(f"/{sid}", Reply(hub_feed(entries, self.hub.url, url),
                                          headers={"Content-Type": "application/rss+xml"}))
        return url

    def subscribed(self, sid: str = "feed-a") -> None:
        self.subscriber.maintain()
        self.hub.wait_for("subscribe")
        sub = self.poller.state.subscription(sid)
        assert sub is not None and sub.state == "active", sub


@pytest.fixture
def push(server: LocalServer, free_port: int, tmp_path: Path,
         request: pytest.FixtureRequest) -> Iterator[Push]:
    options = getattr(request, "param", {})
    clock = Clock()
    with serve_hub(**options) as hub:
        published = ListPublisher()
        feeds = config(free_port, source(server))
        with Poller(feeds, tmp_path / "state.sqlite", published, allow_private=True,
                    clock=clock) as poller:
            subscriber = Subscriber(feeds, poller, allow_private=True, clock=clock)
            with serving(callback_server(subscriber)):
                fixture = Push(hub, server, poller, subscriber, published, clock)
                fixture.serve_feed("feed-a", ONE)
                yield fixture
            subscriber.close()


def test_discovery_prefers_the_link_header_and_takes_the_self_url_as_topic() -> None:
    doc = hub_feed(ONE, "https://doc-hub.example/", "https://feeds.example/self")
    headers = {"link": '<https://hdr-hub.example/>; rel="hub", </topic>; rel=self'}
    found = discover("https://feeds.example/a", headers, doc)
    assert (found.hub, found.topic) == ("https://hdr-hub.example/", "https://feeds.example/topic")
    assert discover("https://feeds.example/a", {}, doc).hub == "https://doc-hub.example/"
    bare = discover("https://feeds.example/a", {}, rss(ONE))
    assert (bare.hub, bare.topic) == (None, "https://feeds.example/a")


@pytest.mark.parametrize("method", ["sha1", "sha256", "sha384", "sha512"])
def test_every_signature_method_of_the_spec_is_checked(method: str) -> None:
    body = b"<rss/>"
    good = hmac.new(b"s3cret", body, getattr(hashlib, method)).hexdigest()
    assert signature_problem(f"{method}={good}", "s3cret", body) is None
    assert signature_problem(f"{method}={good}", "other", body) == f"wrong {method} signature"
    assert signature_problem(None, "s3cret", body) == "no X-Hub-Signature"
    assert signature_problem(f"md5={good}", "s3cret", body) == "unknown signature method 'md5'"
    assert signature_problem(f"{method}=\u00e9{good}", "s3cret", body) is not None


def test_a_verified_subscription_pushes_items_through_the_pollers_path(push: Push) -> None:
    push.subscribed()
    sub = push.poller.state.subscription("feed-a")
    assert sub is not None and sub.hub == push.hub.url and sub.lease_s == 10 * 86400
    assert push.hub.requests[0]["hub.secret"] == sub.secret and len(sub.secret) == 64
    url = push.serve_feed("feed-a", TWO)
    assert push.hub.publish(url, hub_feed(TWO, push.hub.url, url)) == [202]
    assert [i.guid for i in push.published.items] == ["a", "b"]
    # The same document again: dedup by the poller's seen marks, nothing published twice.
    assert push.hub.publish(url, hub_feed(TWO, push.hub.url, url)) == [202]
    assert len(push.published.items) == 2
    assert push.poller.state.seen_count("feed-a") == 2
    sub = push.poller.state.subscription("feed-a")
    assert sub is not None and sub.pushes == 2
    # A pushed source is polled at the slow pace only.
    push.poller.poll_once(force=True)
    due = push.poller.state.health("feed-a").next_due_at
    assert due is not None and due >= push.clock.now + timedelta(seconds=3600)
    mode = feed_modes(push.subscriber.config, push.poller.state.path, push.clock.now)["feed-a"]
    assert (mode.label, mode.lease_expires_at) == ("push", sub.expires_at)


@pytest.mark.parametrize("push", [{"signing_secret": "forged"}], indirect=True)
def test_a_wrong_signature_is_acknowledged_counted_and_discarded(push: Push) -> None:
    push.subscribed()
    before = REGISTRY.get_sample_value("newsmon_websub_pushes_total",
                                       {"outcome": "bad-signature"}) or 0
    url = push.feeds.url("/feed-a")
    assert push.hub.publish(url, hub_feed(TWO, push.hub.url, url)) == [202]
    unsigned = httpx.post(push.subscriber.push.callback_for("feed-a") or "",
                          content=hub_feed(TWO, push.hub.url, url))
    assert unsigned.status_code == 202
    assert push.published.items == []
    sub = push.poller.state.subscription("feed-a")
    assert sub is not None and (sub.bad_signatures, sub.pushes) == (2, 0)
    assert REGISTRY.get_sample_value("newsmon_websub_pushes_total",
                                     {"outcome": "bad-signature"}) == before + 2


def test_verification_is_refused_unless_it_matches_a_pending_request(push: Push) -> None:
    callback = push.subscriber.push.callback_for("feed-a") or ""
    params = {"hub.mode": "subscribe", "hub.topic": push.feeds.url("/feed-a"),
              "hub.challenge": "c1", "hub.lease_seconds": "60"}
    assert httpx.get(callback, params=params).status_code == 404  # nothing requested yet
    push.subscribed()
    # Subscribed now: a second "subscribe" (none pending), an unsubscribe nobody asked for,
    # another topic, another source: all 404.
    for change in ({}, {"hub.mode": "unsubscribe"}, {"hub.topic": "https://x.example/"}):
        assert httpx.get(callback, params={**params, **change}).status_code == 404
    assert httpx.get(callback.replace("feed-a", "feed-b"), params=params).status_code == 404
    sub = push.poller.state.subscription("feed-a")
    assert sub is not None and sub.state == "active"


def test_a_lease_is_renewed_before_it_ends_and_lost_without_renewal(push: Push) -> None:
    push.subscribed()
    first = push.poller.state.subscription("feed-a")
    assert first is not None and first.expires_at is not None
    push.clock.advance(10 * 86400 - 1800)  # inside renew_before_s (3600 s)
    push.subscriber.maintain()
    push.hub.wait_for("subscribe", 2)
    renewed = push.poller.state.subscription("feed-a")
    assert renewed is not None and renewed.state == "active" and renewed.pending is None
    assert renewed.expires_at is not None and renewed.expires_at > first.expires_at
    assert renewed.secret == first.secret  # pushes signed before the renewal still count
    # The hub stops confirming: the renewal goes unanswered, the lease runs out.
    push.hub.confirm = False
    push.clock.advance(10 * 86400 - 1800)
    push.subscriber.maintain()
    pending = push.poller.state.subscription("feed-a")
    assert pending is not None and pending.state == "active" and pending.pending == "subscribe"
    push.clock.advance(3600)
    push.subscriber.maintain()
    lost = push.poller.state.subscription("feed-a")
    assert lost is not None and lost.state == "pending" and lost.last_error == "lease ended"
    push.clock.advance(120)
    push.subscriber.maintain()
    mode = feed_modes(push.subscriber.config, push.poller.state.path, push.clock.now)
    assert mode["feed-a"].label == "poll (unconfirmed)"


@pytest.mark.parametrize("push", [{"confirm": False}], indirect=True)
def test_a_hub_that_never_confirms_leaves_the_source_polled(push: Push) -> None:
    push.subscriber.maintain()
    sub = push.poller.state.subscription("feed-a")
    assert sub is not None and sub.state == "pending"
    # While the hub may still verify: polled, at the slow pace.
    report = push.poller.poll_once(force=True)
    assert report.results[0].new_items == 1
    due = push.poller.state.health("feed-a").next_due_at
    assert due is not None and due >= push.clock.now + timedelta(seconds=3600)
    # Past verify_timeout_s: unconfirmed, due now, then polled at its normal interval.
    push.clock.advance(61)
    push.subscriber.maintain()
    assert push.poller.state.health("feed-a").next_due_at == push.clock.now
    assert push.poller.state.subscription("feed-a").state == "unconfirmed"  # type: ignore[union-attr]
    push.poller.poll_once()
    due = push.poller.state.health("feed-a").next_due_at
    assert due is not None and due < push.clock.now + timedelta(seconds=1000)
    assert push.hub.verifications == []


@pytest.mark.parametrize("push", [{"deny": True}], indirect=True)
def test_a_denied_subscription_is_recorded_and_the_source_polled(push: Push) -> None:
    push.subscriber.maintain()
    deadline = time.monotonic() + 10
    sub = push.poller.state.subscription("feed-a")
    while sub is not None and sub.state == "pending" and time.monotonic() < deadline:
        time.sleep(0.02)
        sub = push.poller.state.subscription("feed-a")
    assert sub is not None and sub.state == "denied" and sub.last_error == "denied: not today"
    mode = feed_modes(push.subscriber.config, push.poller.state.path, push.clock.now)
    assert mode["feed-a"].label == "poll (denied)"


def test_a_removed_source_is_unsubscribed(push: Push, tmp_path: Path) -> None:
    push.subscribed()
    url = push.feeds.url("/feed-a")
    assert len(push.hub.active(url)) == 1
    # feeds.yaml without the source: a new subscriber over the same state, as after a restart.
    removed = config(int(push.subscriber.push.host_port[1]))
    push.subscriber.config = removed
    push.subscriber.maintain()
    push.hub.wait_for("unsubscribe")
    assert push.hub.requests[-1]["hub.mode"] == "unsubscribe"
    assert push.hub.active(url) == []
    assert push.poller.state.subscription("feed-a") is None
    assert push.hub.publish(url, b"<rss/>") == []


def test_a_feed_without_a_hub_is_polled(push: Push) -> None:
    push.feeds.route("/feed-a", Reply(rss(ONE)))
    push.subscriber.maintain()
    sub = push.poller.state.subscription("feed-a")
    assert sub is not None and sub.state == "no-hub" and push.hub.requests == []
    mode = feed_modes(push.subscriber.config, push.poller.state.path, push.clock.now)
    assert mode["feed-a"].label == "poll (no-hub)"


def test_a_pushed_body_over_the_limit_is_refused_before_parsing(push: Push) -> None:
    push.subscribed()
    limit = push.subscriber.config.defaults.http.max_bytes
    answer = httpx.post(push.subscriber.push.callback_for("feed-a") or "",
                        content=b"x" * (limit + 1))
    assert answer.status_code == 413
    assert push.published.items == []


def signed_post(push: Push, body: bytes, **headers: str) -> httpx.Response:
    """A push signed with the subscription's own secret, as its hub would send it."""
    sub = push.poller.state.subscription("feed-a")
    assert sub is not None
    digest = hmac.new(sub.secret.encode(), body, hashlib.sha1).hexdigest()
    return httpx.post(sub.callback, content=body,
                      headers={"X-Hub-Signature": f"sha1={digest}", **headers})


def test_a_compressed_push_is_decoded_within_the_fetch_limits(push: Push) -> None:
    push.subscribed()
    url = push.feeds.url("/feed-a")
    assert signed_post(push, gzip.compress(hub_feed(TWO, push.hub.url, url)),
                       **{"Content-Encoding": "gzip"}).status_code == 202
    assert [i.guid for i in push.published.items] == ["a", "b"]
    # A gzip bomb: past max_bytes once inflated; parked as the source's dead letter.
    limit = push.subscriber.config.defaults.http.max_bytes
    bomb = gzip.compress(b" " * (limit + 1))
    assert len(bomb) < limit
    assert signed_post(push, bomb, **{"Content-Encoding": "gzip"}).status_code == 202
    letters = push.poller.state.dead_letters()
    assert len(letters) == 1 and "push-undecodable" in letters[0].error
    assert len(push.published.items) == 2


def test_an_authentic_push_that_is_no_feed_is_a_dead_letter(push: Push) -> None:
    push.subscribed()
    assert signed_post(push, b"<html>hello</html>").status_code == 202
    (letter,) = push.poller.state.dead_letters()
    assert "not-a-feed" in letter.error and letter.source_id == "feed-a"
    assert push.poller.state.health("feed-a").last_error_kind == "not-a-feed"


def test_push_settings_refuse_a_callback_with_a_query_and_a_bad_listen_address() -> None:
    with pytest.raises(ValueError, match="no query"):
        Defaults.model_validate({"push": {"callback_url": "https://n.example/cb?x=1"}})
    with pytest.raises(ValueError, match="host:port"):
        Defaults.model_validate({"push": {"listen": "8095"}})
    push = Defaults.model_validate({"push": {"callback_url": "https://n.example/cb/"}}).push
    assert push.callback_for("feed-a") == "https://n.example/cb/feed-a"


def test_a_hub_named_in_the_link_header_is_subscribed_with_the_self_topic(push: Push) -> None:
    topic = "http://feeds.example/canonical"
    links = f'<{push.hub.url}>; rel="hub", <{topic}>; rel="self"'
    push.feeds.route("/feed-a", Reply(rss(ONE), headers={"Link": links}))
    push.subscribed()
    assert push.hub.requests[0]["hub.topic"] == topic
    assert push.hub.publish(topic, rss(TWO)) == [202]
    assert [i.guid for i in push.published.items] == ["a", "b"]


def test_a_feed_that_moves_is_unsubscribed_at_its_old_url_first(push: Push) -> None:
    push.subscribed()
    old = push.feeds.url("/feed-a")
    new = push.serve_feed("feed-a-new", ONE)
    moved = source(push.feeds).model_copy(update={"url": new})
    push.subscriber.config = config(int(push.subscriber.push.host_port[1]), moved)
    push.subscriber.maintain()
    push.hub.wait_for("unsubscribe")
    assert push.hub.active(old) == [] and push.poller.state.subscription("feed-a") is None
    push.subscriber.maintain()
    push.hub.wait_for("subscribe", 2)
    sub = push.poller.state.subscription("feed-a")
    assert sub is not None and (sub.state, sub.topic) == ("active", new)
