"""Mute look-ups in delivery, on the embedded store: one query for a batch of alerts (not one
per alert), and a mute set while a worker runs honoured once its interval has passed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from newsmon.models import Article, SourceRef, TopicMatch
from newsmon.pipeline.alerts import rules as alerting
from newsmon.pipeline.alerts.channels.console import ConsoleChannel
from newsmon.pipeline.alerts.config import AlertRule, AlertsConfig
from newsmon.pipeline.alerts.delivery import Deliverer
from newsmon.pipeline.alerts.mutes import MUTED_KEYS_FIELD, MuteBook
from newsmon.pipeline.alerts.state import initial_state
from newsmon.pipeline.store import SqliteStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RULE = AlertRule(name="lrs", topic="lrs_topic", threshold=0.5, channels=("desk",))
CONFIG = AlertsConfig(channels={"desk": ConsoleChannel()}, rules=(RULE,))


class CountingStore(SqliteStore):
    """The embedded store, counting the mute look-ups made on it."""

    mute_lookups = 0

    def _scan(self, kind: str, since: datetime | None, until: datetime | None,
              terms: Mapping[str, Sequence[str]],
              fields: Sequence[str] | None) -> Iterator[dict[str, Any]]:
        if MUTED_KEYS_FIELD in terms:
            self.mute_lookups += 1
        return super()._scan(kind, since, until, terms, fields)


def alert_doc(story: str, source: str = "wire") -> tuple[str, dict[str, Any]]:
    article = Article(doc_id=f"d-{story}", item_id=f"i-{story}", revision="r", story_id=story,
                      source=SourceRef(id=source, type="rss"), url=f"https://x/{story}",
                      title=story, text="text", lang="en", published_at=NOW,
                      first_seen_at=NOW, topics=(TopicMatch(topic="lrs_topic", score=1.0),))
    alert = alerting.new_alert(RULE, article, article.topics[0], NOW)
    return alert.alert_id, {**alerting.alert_document(alert), **initial_state(RULE.channels)}


def muting(store: SqliteStore, story: str) -> None:
    """An alert of another rule carrying a story mute, as the inbox records one."""
    store.create("alerts", f"muter-{story}", {
        "alert_id": f"muter-{story}", "kind": "story", "created_at": NOW.isoformat(),
        MUTED_KEYS_FIELD: [f"story:{story}"],
        "feedback": {"mutes": [{"scope": "story", "target": story, "by": "alice",
                                "until": (NOW + timedelta(hours=1)).isoformat()}]}})


def test_a_sweep_looks_up_the_mutes_of_all_its_alerts_at_once(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "docs.sqlite")
    store.setup()
    for n in range(20):
        alert_id, doc = alert_doc(f"s{n}")
        assert store.create("alerts", alert_id, doc)
    muting(store, "s3")
    attempts = Deliverer(store, CONFIG).deliver_pending(NOW)
    assert sorted(a.status for a in attempts) == ["sent"] * 19 + ["throttled"]
    assert [a.error for a in attempts if a.status == "throttled"] == [
        f"muted: story s3 until {(NOW + timedelta(hours=1)).isoformat()} by alice"]
    assert store.mute_lookups == 1


def test_a_mute_set_mid_stream_is_read_again_after_the_interval(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "docs.sqlite")
    store.setup()
    clock = [0.0]
    book = MuteBook(store, refresh_s=10.0, clock=lambda: clock[0])
    _, doc = alert_doc("s1")
    assert book.reason(doc, NOW) is None
    muting(store, "s1")
    clock[0] = 9.0
    assert book.reason(doc, NOW) is None and store.mute_lookups == 1  # still the first read
    clock[0] = 10.0
    assert book.reason(doc, NOW) == (
        f"muted: story s1 until {(NOW + timedelta(hours=1)).isoformat()} by alice")
    assert store.mute_lookups == 2
    # Past its end, the mute silences nothing.
    assert book.reason(doc, NOW + timedelta(hours=2)) is None
