"""The webhook contract (docs/alerts.md) against a real receiver on 127.0.0.1 that verifies
the HMAC signature and validates every payload against docs/schema/webhook-v1.json: events,
delivery ids stable across retries, Retry-After, refused messages parked with the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.pipeline import deadletters as dl
from newsmon.pipeline.alerts import state
from newsmon.pipeline.alerts.channels.base import retry_after
from newsmon.pipeline.alerts.channels.console import ConsoleChannel
from newsmon.pipeline.alerts.channels.webhook import WebhookChannel
from newsmon.pipeline.alerts.config import AlertRule, AlertsConfig, SurgeRule
from newsmon.pipeline.alerts.content import story_version
from newsmon.pipeline.alerts.delivery import Deliverer, delivery_id, requeue_parked
from newsmon.pipeline.alerts.surge import SurgeFinding, SurgeStats, surge_document
from newsmon.pipeline.store import SqliteStore
from tests.alertservers import SignedReceiver, webhook_validator
from tests.localhttp import LocalServer, serve
from tests.pipeline.alerts import samples

SECRET = "receiver-and-newsmon-share-this"
NOW = samples.T0 + timedelta(minutes=1)


class Desk:
    """A store holding the sample story's articles, a signed receiver, and an alerts config
    with the webhook (``hook``) and a console (``desk``) on one rule."""

    def __init__(self, store: SqliteStore, receiver: SignedReceiver, srv: LocalServer) -> None:
        self.store, self.receiver = store, receiver
        hook = WebhookChannel(url=srv.url("/hook"), secret_env="HOOK_SECRET", timeout_s=2,
                              attempts=3)
        self.config = AlertsConfig(channels={"hook": hook, "desk": ConsoleChannel()},
                                   rules=(AlertRule(name=samples.RULE.name, topic=samples.TOPIC,
                                                    channels=("desk", "hook")),))
        self.sleeps: list[float] = []

    def deliverer(self) -> Deliverer:
        return Deliverer(self.store, self.config, sleep=self.sleeps.append, backoff_s=0.1)

    def raise_story(self, grown: bool = False) -> str:
        doc, articles = samples.grown_story() if grown else samples.story()
        self.store.bulk_write("articles", [(a["doc_id"], a) for a in articles])
        self.store.create("alerts", doc["alert_id"],
                          {**doc, **state.initial_state(self.config.rules[0].channels)})
        return str(doc["alert_id"])

    def grow(self, alert_id: str) -> list[str]:
        """What the pipeline's merge does when a copy from a new source arrives: the alert's
        own fields updated, the channels owed judged on the merged alert."""
        grown, articles = samples.grown_story()
        self.store.bulk_write("articles", [(a["doc_id"], a) for a in articles])
        current = self.store.get("alerts", alert_id)
        assert current is not None
        doc = {**current.source, **{k: v for k, v in grown.items()
                                   if k not in ("created_at",)}}
        doc["pending"] = state.owed(self.config.rules[0].channels, doc)
        assert self.store.replace_if("alerts", alert_id, doc, current.version)
        return list(doc["pending"])

    def doc(self, alert_id: str) -> dict[str, Any]:
        current = self.store.get("alerts", alert_id)
        assert current is not None
        return current.source


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    store = SqliteStore(tmp_path / "docs.sqlite")
    store.setup()
    receiver = SignedReceiver(secret=SECRET)
    with serve({"/hook": receiver}) as srv:
        yield Desk(store, receiver, srv)


def test_a_new_story_is_one_signed_schema_valid_alert_created(desk: Desk) -> None:
    alert_id = desk.raise_story()
    attempts = desk.deliverer().deliver(alert_id, NOW)
    assert sorted((a.channel, a.status, a.event) for a in attempts) == [
        ("desk", "sent", "alert.created"), ("hook", "sent", "alert.created")]
    assert [verdict for _, _, verdict in desk.receiver.requests] == ["ok"]
    headers, payload, _ = desk.receiver.requests[0]
    assert payload["delivery_id"] == delivery_id(alert_id, "alert.created", 1)
    assert headers["X-Newsmon-Event"] == "alert.created"
    alert = payload["alert"]
    assert alert["topic"] == {"id": samples.TOPIC, "name": "Long range strike"}
    assert alert["sources"] == [{"id": "bbc", "name": "BBC News", "kind": "public broadcaster",
                                 "country": "GB", "owner": "BBC"}]
    assert alert["attribute"] == "requested" and alert["published_at"].startswith("2026-11-20")
    assert {"Storm Shadow", "permission"} <= set(alert["matched_terms"])
    assert {"kind": "weapon", "name": "ATACMS"} in alert["entities"]
    assert 2 <= len(alert["evidence"]) <= 3


def test_a_grown_story_sends_alert_updated_to_the_webhook_only(desk: Desk) -> None:
    alert_id = desk.raise_story()
    desk.deliverer().deliver(alert_id, NOW)
    # a German copy from a second source: the story grew, so the webhook is owed an update
    assert desk.grow(alert_id) == ["desk", "hook"]
    attempts = desk.deliverer().deliver(alert_id, NOW + timedelta(hours=1))
    assert sorted((a.channel, a.status, a.event) for a in attempts) == [
        ("desk", "skipped", "alert.updated"), ("hook", "sent", "alert.updated")]
    first, update = desk.receiver.accepted
    assert update["event"] == "alert.updated"
    version = story_version(desk.doc(alert_id))
    assert (update["alert"]["version"], first["alert"]["version"]) == (version, 1)
    assert update["delivery_id"] == delivery_id(alert_id, "alert.updated", version)
    assert update["delivery_id"] != first["delivery_id"]
    assert [s["name"] for s in update["alert"]["sources"]] == ["BBC News", "Deutsche Welle"]
    assert update["alert"]["sources"][1]["kind"] is None  # a source without labels
    doc = desk.doc(alert_id)
    assert doc["pending"] == [] and doc["sent_versions"] == [f"desk@{version}",
                                                              f"hook@{version}"]
    # the same version again (a re-run merging nothing new) owes nothing
    assert state.owed(desk.config.rules[0].channels, doc) == []


def test_429_with_retry_after_is_waited_out_with_the_same_delivery_id(desk: Desk) -> None:
    desk.receiver.script = [(429, {"Retry-After": "2"}), (503, {})]
    alert_id = desk.raise_story()
    attempts = desk.deliverer().deliver(alert_id, NOW)
    assert [(a.status, a.attempts) for a in attempts if a.channel == "hook"] == [("sent", 3)]
    assert desk.sleeps[0] == 2.0  # the receiver's Retry-After, not the 0.1 s backoff
    assert desk.sleeps[1] < 2.0   # a 503 without Retry-After: our own backoff
    ids = {h["X-Newsmon-Delivery"] for h, _, _ in desk.receiver.requests}
    assert len(desk.receiver.requests) == 3 and len(ids) == 1


def test_a_long_retry_after_leaves_the_alert_pending_until_then(desk: Desk) -> None:
    until = NOW + timedelta(hours=1)
    desk.receiver.script = [(503, {"Retry-After": "3600"})]
    alert_id = desk.raise_story()
    hook = [a for a in desk.deliverer().deliver(alert_id, NOW) if a.channel == "hook"]
    assert [(a.status, a.attempts, a.retry_at) for a in hook] == [("failed", 1, until)]
    assert desk.sleeps == [] and desk.doc(alert_id)["pending"] == ["hook"]
    # the next run, ten minutes on, respects the receiver's wish
    assert desk.deliverer().deliver_pending(NOW + timedelta(minutes=10)) == []
    later = desk.deliverer().deliver_pending(until + timedelta(seconds=1))
    assert [(a.channel, a.status) for a in later] == [("hook", "sent")]
    first, second = (h["X-Newsmon-Delivery"] for h, _, _ in desk.receiver.requests)
    assert first == second


def test_retry_after_reads_seconds_and_http_dates() -> None:
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert retry_after("120") == 120.0
    assert retry_after(format_datetime(at + timedelta(minutes=5), usegmt=True), at) == 300.0
    assert retry_after(format_datetime(at - timedelta(minutes=5), usegmt=True), at) == 0.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_a_refused_message_is_parked_with_the_receivers_reason(desk: Desk) -> None:
    desk.receiver.script = [(422, {})]
    alert_id = desk.raise_story()
    hook = [a for a in desk.deliverer().deliver(alert_id, NOW) if a.channel == "hook"]
    assert [(a.status, a.attempts) for a in hook] == [("parked", 1)]
    assert "HTTP 422" in hook[0].error and "scripted 422" in hook[0].error
    doc = desk.doc(alert_id)
    assert doc["pending"] == [] and doc["failed"] == ["hook"]
    [letter] = desk.store.all_docs("dead-letters")
    assert letter["stage"] == "notify" and letter["source_id"] == "channel:hook"
    assert "HTTP 422" in letter["error"] and "scripted 422" in letter["error"]
    assert json.loads(letter["payload"])["alert_id"] == alert_id
    # not retried by later runs
    assert desk.deliverer().deliver_pending(NOW + timedelta(hours=1)) == []
    assert len(desk.receiver.requests) == 1
    # replayed while the receiver still refuses: parked again, pending again
    assert requeue_parked(desk.store, dl.pending(desk.store, "notify")) == [alert_id]
    dl.mark(desk.store, dl.pending(desk.store, "notify"), replayed=True)
    desk.receiver.script = [(422, {})]
    assert [a.status for a in desk.deliverer().deliver_pending(NOW + timedelta(hours=1))] == [
        "parked"]
    assert len(dl.pending(desk.store, "notify")) == 1
    # the receiver is fixed: replaying the dead letter owes the message again
    assert requeue_parked(desk.store, dl.pending(desk.store, "notify")) == [alert_id]
    later = desk.deliverer().deliver_pending(NOW + timedelta(hours=2))
    assert [(a.channel, a.status) for a in later] == [("hook", "sent")]
    assert desk.doc(alert_id)["notified"] == ["desk", "hook"]


def test_a_crash_before_recording_resends_with_the_same_delivery_id(desk: Desk) -> None:
    alert_id = desk.raise_story()
    before = desk.doc(alert_id)
    desk.deliverer().deliver(alert_id, NOW)
    # the worker died after sending, before recording: the stored state is as before
    current = desk.store.get("alerts", alert_id)
    assert current is not None
    assert desk.store.replace_if("alerts", alert_id, before, current.version)
    desk.deliverer().deliver(alert_id, NOW + timedelta(minutes=10))
    first, again = desk.receiver.accepted
    assert first["delivery_id"] == again["delivery_id"]  # the receiver drops the repeat


def test_a_surge_is_a_schema_valid_surge_created(desk: Desk) -> None:
    rule = SurgeRule(name="lrs-surge", topic=samples.TOPIC, channels=("hook",))
    config = desk.config.model_copy(update={"rules": (), "surges": (rule,)})
    _, articles = samples.grown_story()
    start = datetime(2026, 11, 20, 9, tzinfo=UTC)
    finding = SurgeFinding(rule, start, SurgeStats(count=9, mean=1.0, std=1.0,
                                                   expected_max=4.0, surge=True),
                           tuple(articles))
    doc = surge_document(finding, NOW)
    desk.store.create("alerts", finding.alert_id, {**doc, **state.initial_state(["hook"])})
    attempts = Deliverer(desk.store, config).deliver(finding.alert_id, NOW)
    assert [(a.status, a.event) for a in attempts] == [("sent", "surge.created")]
    [payload] = desk.receiver.accepted
    assert payload["alert"]["kind"] == "surge" and payload["alert"]["surge"]["count"] == 9
    assert samples.TOPIC not in payload["alert"]["title"]


def test_the_one_place_an_alert_is_dropped_before_notifying(desk: Desk) -> None:
    class Muting(Deliverer):
        def drop_reason(self, doc: Any, now: datetime) -> str | None:
            return "story muted by test"

    alert_id = desk.raise_story()
    attempts = Muting(desk.store, desk.config).deliver(alert_id, NOW)
    assert sorted((a.channel, a.status, a.error) for a in attempts) == [
        ("desk", "throttled", "story muted by test"),
        ("hook", "throttled", "story muted by test")]
    assert desk.receiver.requests == [] and desk.doc(alert_id)["pending"] == []


def test_the_receiver_refuses_what_breaks_the_contract() -> None:
    """The test receiver's checks can fail: a payload without its version, a bad signature."""
    receiver = SignedReceiver(secret=SECRET)
    body = json.dumps({"event": "alert.created", "delivery_id": "x", "alert": {}}).encode()
    assert receiver.verdict({"X-Newsmon-Timestamp": "1", "X-Newsmon-Signature": "v1=00"},
                            body) == (401, "bad signature")
    errors = list(webhook_validator().iter_errors(json.loads(body)))
    assert any("schema_version" in e.message for e in errors)


def test_the_operator_replays_a_refused_delivery_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    receiver = SignedReceiver(secret=SECRET, script=[(410, {})])
    with serve({"/hook": receiver}) as srv:
        (tmp_path / "alerts.yaml").write_text(yaml.safe_dump({
            "channels": {"hook": {"type": "webhook", "url": srv.url("/hook"),
                                  "secret_env": "HOOK_SECRET"}},
            "rules": [{"name": samples.RULE.name, "topic": samples.TOPIC,
                       "channels": ["hook"]}]}))
        config = tmp_path / "newsmon.yaml"
        config.write_text(yaml.safe_dump({
            "state_dir": str(tmp_path / "state"), "topics": str(samples.TOPICS),
            "alerts": "alerts.yaml", "search": {"backend": "embedded"}}))
        store = SqliteStore(tmp_path / "state" / "documents.sqlite")
        store.setup()
        doc, articles = samples.story()
        doc["created_at"] = datetime.now(UTC).isoformat()  # the command runs on the clock
        store.bulk_write("articles", [(a["doc_id"], a) for a in articles])
        store.create("alerts", doc["alert_id"], {**doc, **state.initial_state(["hook"])})

        def newsmon(*args: str) -> str:
            result = CliRunner().invoke(app, [*args, "--config", str(config)])
            assert result.exit_code == 0, result.output
            return result.output

        assert "hook: parked" in newsmon("alerts", "deliver")
        listed = newsmon("deadletters")
        assert "notify" in listed and "channel:hook" in listed and "HTTP 410" in listed
        assert "1 refused deliveries owed again" in newsmon("deadletters", "--replay")
        assert "hook: sent" in newsmon("alerts", "deliver")
    assert [r[2] for r in receiver.requests] == ["scripted 410", "ok"]
