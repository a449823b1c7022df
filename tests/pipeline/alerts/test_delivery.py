"""Delivering alerts (on the embedded store, real channels on loopback): once per alert,
failures recorded and left pending, bounded retries, throttle windows, give-up, leases."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsmon.models import Article, Evidence, SourceRef, TopicMatch
from newsmon.pipeline.alerts import rules as alerting
from newsmon.pipeline.alerts import state
from newsmon.pipeline.alerts.channels import DeliveryError, Message
from newsmon.pipeline.alerts.channels.console import ConsoleChannel
from newsmon.pipeline.alerts.channels.webhook import WebhookChannel
from newsmon.pipeline.alerts.config import AlertRule, AlertsConfig, ChannelConfig
from newsmon.pipeline.alerts.delivery import Deliverer, throttle_window
from newsmon.pipeline.store import SqliteStore
from tests.alertservers import Recorder
from tests.localhttp import serve

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class Spy:
    """A notifier that records messages and fails as scripted (None: success)."""

    def __init__(self, script: list[DeliveryError | None] | None = None) -> None:
        self.script = list(script or [])
        self.sent: list[Message] = []
        self.calls = 0

    def send(self, message: Message) -> None:
        self.calls += 1
        error = self.script.pop(0) if self.script else None
        if error is not None:
            raise error
        self.sent.append(message)


def article(n: int, story: str = "s1", lang: str = "en") -> Article:
    match = TopicMatch(topic="lrs", score=2.0, groups=("WEAPON",), evidence=(
        Evidence(group="WEAPON", term="atacms", start=0, end=6, snippet=f"ATACMS {n}"),))
    return Article(doc_id=f"d{n}", item_id=f"i{n}", revision="r", story_id=story,
                   source=SourceRef(id=f"src{n}", type="rss", country="GB"),
                   url=f"https://x.example/{n}", title=f"Title {n}", text="t", lang=lang,
                   published_at=NOW, first_seen_at=NOW, topics=(match,))


def config(channels: dict[str, ChannelConfig] | None = None, throttle_s: int = 0,
           rule_channels: tuple[str, ...] = ("spy",)) -> AlertsConfig:
    channels = channels or {"spy": ConsoleChannel()}
    return AlertsConfig(channels=channels, rules=(AlertRule(
        name="r", topic="lrs", channels=rule_channels, throttle_s=throttle_s),))


def raise_alert(store: SqliteStore, cfg: AlertsConfig, art: Article,
                now: datetime = NOW) -> str:
    """What EvaluateAlertsFn does for a new story: create the alert with its channels owed."""
    rule = cfg.rules[0]
    match = art.topics[0]
    fresh = alerting.new_alert(rule, art, match, now)
    store.create("alerts", fresh.alert_id,
                 {**alerting.alert_document(fresh), **state.initial_state(rule.channels)})
    return fresh.alert_id


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(tmp_path / "docs.sqlite")
    s.setup()
    return s


def test_an_alert_is_delivered_once_however_often_delivery_runs(store: SqliteStore) -> None:
    cfg = config()
    spy = Spy()
    deliverer = Deliverer(store, cfg, notifiers={"spy": spy})
    alert_id = raise_alert(store, cfg, article(1))
    assert [a.status for a in deliverer.deliver(alert_id, NOW)] == ["sent"]
    assert deliverer.deliver(alert_id, NOW) == []
    assert deliverer.deliver_pending(NOW) == []
    # another worker (its own deliverer) agrees
    assert Deliverer(store, cfg, notifiers={"spy": spy}).deliver(alert_id, NOW) == []
    assert len(spy.sent) == 1
    doc = store.get("alerts", alert_id)
    assert doc is not None
    assert doc.source["notified"] == ["spy"] and doc.source["pending"] == []
    assert [(d["channel"], d["status"], d["attempts"]) for d in doc.source["deliveries"]] == [
        ("spy", "sent", 1)]
    assert "lease_until" not in doc.source


def test_transient_failures_are_retried_with_backoff_within_bounds(store: SqliteStore) -> None:
    cfg = config({"spy": ConsoleChannel(attempts=3)})
    spy = Spy([DeliveryError("HTTP 503"), DeliveryError("HTTP 503")])
    sleeps: list[float] = []
    deliverer = Deliverer(store, cfg, notifiers={"spy": spy}, backoff_s=0.5,
                          max_backoff_s=4, sleep=sleeps.append)
    alert_id = raise_alert(store, cfg, article(1))
    attempts = deliverer.deliver(alert_id, NOW)
    assert [(a.status, a.attempts) for a in attempts] == [("sent", 3)]
    assert sleeps == [0.5, 1.0]  # exponential, capped at max_backoff_s
    assert len(spy.sent) == 1


def test_a_failing_channel_stays_pending_and_the_next_run_delivers(store: SqliteStore) -> None:
    cfg = config({"spy": ConsoleChannel(attempts=2)})
    spy = Spy([DeliveryError("down"), DeliveryError("down")])
    alert_id = raise_alert(store, cfg, article(1))
    first = Deliverer(store, cfg, notifiers={"spy": spy}, sleep=lambda _: None)
    assert [(a.status, a.attempts) for a in first.deliver(alert_id, NOW)] == [("failed", 2)]
    doc = store.get("alerts", alert_id)
    assert doc is not None
    assert doc.source["pending"] == ["spy"] and doc.source["failed"] == ["spy"]
    assert doc.source["deliveries"][0]["error"] == "down"
    # the next run's sweep finds it by its pending channel
    later = Deliverer(store, cfg, notifiers={"spy": spy}, sleep=lambda _: None)
    assert [a.status for a in later.deliver_pending(NOW + timedelta(minutes=5))] == ["sent"]
    doc = store.get("alerts", alert_id)
    assert doc is not None
    assert doc.source["notified"] == ["spy"] and doc.source["failed"] == []
    assert [d["status"] for d in doc.source["deliveries"]] == ["failed", "sent"]


def test_a_permanent_failure_is_not_retried_in_the_run(store: SqliteStore) -> None:
    cfg = config({"spy": ConsoleChannel(attempts=5)})
    spy = Spy([DeliveryError("HTTP 401", retryable=False)])
    alert_id = raise_alert(store, cfg, article(1))
    attempts = Deliverer(store, cfg, notifiers={"spy": spy}).deliver(alert_id, NOW)
    assert [(a.status, a.attempts) for a in attempts] == [("failed", 1)]


def test_a_dead_channel_costs_one_bounded_attempt_per_run_not_one_per_alert(
    store: SqliteStore,
) -> None:
    # a real HTTP receiver that hangs longer than the channel's timeout
    hook = Recorder(delay_s=2)
    with serve({"/hook": hook}) as srv:
        cfg = config({"spy": WebhookChannel(url=srv.url("/hook"),
                                           timeout_s=0.3, attempts=2)})
        ids = [raise_alert(store, cfg, article(n, story=f"s{n}")) for n in range(5)]
        deliverer = Deliverer(store, cfg, backoff_s=0.1)
        started = time.monotonic()
        results = [deliverer.deliver(i, NOW) for i in ids]
        elapsed = time.monotonic() - started
    assert [[a.status for a in r] for r in results] == [["failed"], [], [], [], []]
    # two tries of 0.3 s and one 0.1 s pause, then the circuit keeps the rest pending
    assert elapsed < 2.0, elapsed
    pending = store.find_terms("alerts", "pending", ["spy"], size=10)
    assert len(pending) == 5


def test_throttle_sends_one_per_window_and_records_the_others(store: SqliteStore) -> None:
    cfg = config(throttle_s=3600)
    spy = Spy()
    deliverer = Deliverer(store, cfg, notifiers={"spy": spy})
    ids = [raise_alert(store, cfg, article(n, story=f"s{n}")) for n in range(3)]
    statuses = [[a.status for a in deliverer.deliver(i, NOW + timedelta(minutes=n))]
                for n, i in enumerate(ids)]
    assert statuses == [["sent"], ["throttled"], ["throttled"]]
    assert len(spy.sent) == 1
    held = store.get("alerts", ids[1])
    assert held is not None
    assert held.source["throttled"] == ["spy"] and held.source["pending"] == []
    start, _ = throttle_window(NOW, 3600)
    windows = store.all_docs("alert-throttle")
    assert [(w["alert_id"], w["held_back"], w["window_start"]) for w in windows] == [
        (ids[0], sorted(ids[1:]), start.isoformat())]
    # the next window delivers again
    later = raise_alert(store, cfg, article(9, story="s9"))
    assert [a.status for a in deliverer.deliver(later, NOW + timedelta(hours=1))] == ["sent"]


def test_a_failed_holder_of_a_throttle_window_may_retry_in_it(store: SqliteStore) -> None:
    cfg = config(throttle_s=3600)
    spy = Spy([DeliveryError("down", retryable=False)])
    alert_id = raise_alert(store, cfg, article(1))
    assert [a.status for a in Deliverer(store, cfg, notifiers={"spy": spy}).deliver(
        alert_id, NOW)] == ["failed"]
    assert [a.status for a in Deliverer(store, cfg, notifiers={"spy": spy}).deliver(
        alert_id, NOW + timedelta(minutes=10))] == ["sent"]


def test_deliveries_failing_for_a_day_are_given_up_and_recorded(store: SqliteStore) -> None:
    cfg = config()
    spy = Spy([DeliveryError("down", retryable=False)])
    alert_id = raise_alert(store, cfg, article(1))
    Deliverer(store, cfg, notifiers={"spy": spy}).deliver(alert_id, NOW)
    attempts = Deliverer(store, cfg, notifiers={"spy": spy}).deliver(
        alert_id, NOW + timedelta(days=2))
    assert [a.status for a in attempts] == ["expired"]
    doc = store.get("alerts", alert_id)
    assert doc is not None and doc.source["pending"] == [] and doc.source["failed"] == ["spy"]
    assert spy.calls == 1
    # a later copy of the story does not revive it
    assert state.owed(["spy"], doc.source) == []


def test_a_live_lease_keeps_a_second_deliverer_away(store: SqliteStore) -> None:
    cfg = config()
    alert_id = raise_alert(store, cfg, article(1))
    current = store.get("alerts", alert_id)
    assert current is not None
    leased = {**current.source, "lease_until": (NOW + timedelta(minutes=5)).isoformat()}
    assert store.replace_if("alerts", alert_id, leased, current.version)
    spy = Spy()
    assert Deliverer(store, cfg, notifiers={"spy": spy}).deliver(alert_id, NOW) == []
    # the holder died: once the lease ran out, the alert is delivered (at least once)
    later = NOW + timedelta(minutes=6)
    assert [a.status for a in Deliverer(store, cfg, notifiers={"spy": spy}).deliver(
        alert_id, later)] == ["sent"]


def test_owed_channels_follow_the_rule() -> None:
    doc = {"notified": ["a"], "pending": ["b"], "failed": ["b", "c"], "throttled": ["d"]}
    # b still owed (pending), c given up, d held back, e newly added to the rule
    assert state.owed(["a", "b", "c", "d", "e"], doc) == ["b", "e"]


def test_config_refuses_unknown_channels_and_duplicate_rule_names() -> None:
    with pytest.raises(ValueError, match="unknown channel mail"):
        AlertsConfig(rules=(AlertRule(name="r", topic="t", channels=("mail",)),))
    with pytest.raises(ValueError, match="unique: r"):
        AlertsConfig(rules=(AlertRule(name="r", topic="t"), AlertRule(name="r", topic="u")))
