"""Surge detection: the pure statistics, and the job on the embedded store (a synthetic
burst against a quiet baseline; deterministic ids; re-evaluation updates, never re-alerts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsmon.pipeline.alerts.channels.console import ConsoleChannel
from newsmon.pipeline.alerts.config import AlertsConfig, SurgeRule
from newsmon.pipeline.alerts.surge import (
    bucket_counts,
    evaluate,
    evaluate_surges,
    interval_floor,
    surge_alert_id,
    surge_stats,
    timeline,
)
from newsmon.pipeline.store import DocumentStore, SqliteStore

NOW = datetime(2026, 11, 20, 12, 40, tzinfo=UTC)
RULE = SurgeRule(name="lrs-surge", topic="long_range_strike", interval_s=3600,
                 baseline_intervals=24, k=3.0, min_count=5, channels=("console",))


def test_a_count_far_above_a_steady_baseline_is_a_surge() -> None:
    baseline = [2, 3, 1, 2, 2, 3, 2, 1, 2, 2]
    assert surge_stats(12, baseline, k=3, min_count=5).surge
    assert not surge_stats(5, baseline, k=3, min_count=5).surge  # within mean + 3 spread
    # the minimum count holds whatever the baseline: a first article on a quiet topic is news,
    # but not a surge
    assert not surge_stats(4, [0] * 24, k=3, min_count=5).surge
    assert surge_stats(5, [0] * 24, k=3, min_count=5).surge


def test_the_spread_is_at_least_poisson() -> None:
    # a perfectly flat baseline of 9 per hour: std 0, but counts of news vary like sqrt(9) = 3
    stats = surge_stats(17, [9] * 24, k=3, min_count=1)
    assert stats.std == 0 and stats.expected_max == pytest.approx(18)
    assert not stats.surge


@given(st.lists(st.integers(0, 50), min_size=2, max_size=48), st.integers(0, 200))
def test_more_articles_never_turn_a_surge_into_none(baseline: list[int], count: int) -> None:
    low = surge_stats(count, baseline, k=3, min_count=3)
    high = surge_stats(count + 1, baseline, k=3, min_count=3)
    assert not low.surge or high.surge


def test_intervals_are_epoch_aligned_and_counted() -> None:
    assert interval_floor(NOW, 3600) == datetime(2026, 11, 20, 12, tzinfo=UTC)
    start = datetime(2026, 11, 20, 10, tzinfo=UTC)
    times = [start + timedelta(minutes=m) for m in (0, 59, 60, 150, 200)]
    assert bucket_counts(times, start, 3600, 3) == [2, 1, 1]


def write_articles(store: DocumentStore, per_hour: list[int], end: datetime,
                   topic: str = "long_range_strike", lang: str = "en") -> None:
    """``per_hour[i]`` articles in the i-th hour before the hour holding ``end`` (the last
    entry is that hour itself), spread over it."""
    docs = []
    current = interval_floor(end, 3600)
    for i, n in enumerate(per_hour):
        hour = current - timedelta(hours=len(per_hour) - 1 - i)
        for j in range(n):
            doc_id = f"{topic}-{lang}-{i}-{j}"
            docs.append((doc_id, {
                "doc_id": doc_id, "story_id": f"story-{i}-{j % 3}", "title": f"t {i} {j}",
                "url": f"https://x.example/{doc_id}", "lang": lang,
                "source": {"id": f"src{j % 4}", "type": "rss", "country": "GB"},
                "published_at": (hour + timedelta(minutes=(j * 7) % 40)).isoformat(),
                "first_seen_at": (hour + timedelta(minutes=1)).isoformat(),
                "topic_names": [topic]}))
    assert store.bulk_write("articles", docs) == []
    store.refresh("articles")


def surge_contract(store: DocumentStore) -> None:
    """A synthetic burst: about two articles an hour for a day, then 14 in the current hour
    (another topic bursting alongside must not count)."""
    store.setup()
    quiet = [2, 1, 3, 2, 2, 1, 2, 3, 2, 2, 1, 2, 2, 3, 2, 1, 2, 2, 2, 3, 1, 2, 2, 2]
    write_articles(store, [*quiet, 14], NOW)
    write_articles(store, [0] * 24 + [40], NOW, topic="weather")
    finding = evaluate(store, RULE, NOW)
    assert finding.stats.count == 14 and finding.stats.surge
    assert finding.interval_start == datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert finding.stats.mean == pytest.approx(sum(quiet) / 24)

    config = AlertsConfig(channels={"console": ConsoleChannel()}, surges=(RULE,))
    found = evaluate_surges(store, config, NOW)
    assert [f.alert_id for f in found] == [surge_alert_id("lrs-surge", finding.interval_start)]
    alert = store.get("alerts", found[0].alert_id)
    assert alert is not None
    doc = alert.source
    assert (doc["kind"], doc["count"], doc["pending"]) == ("surge", 14, ["console"])
    assert doc["top_stories"][0]["count"] == 5  # story-24-0 has copies j = 0, 3, 6, 9, 12
    assert doc["interval_end"] == "2026-11-20T13:00:00+00:00"

    # later in the same hour: the same alert, updated, not a second one
    write_articles(store, [0] * 24 + [17], NOW + timedelta(minutes=10))
    again = evaluate_surges(store, config, NOW + timedelta(minutes=15))
    assert [f.alert_id for f in again] == [found[0].alert_id]
    store.refresh("alerts")
    surges = [d for d in store.all_docs("alerts") if d.get("kind") == "surge"]
    assert len(surges) == 1 and surges[0]["count"] == 17
    assert surges[0]["created_at"] == doc["created_at"]

    # the dry-run timeline sees the quiet hours as quiet
    hours = timeline(store, RULE, NOW - timedelta(hours=5), NOW)
    assert [h.stats.surge for h in hours] == [False] * 5 + [True]


def test_surge_on_a_synthetic_burst_embedded(tmp_path: Path) -> None:
    surge_contract(SqliteStore(tmp_path / "docs.sqlite"))


def test_filters_narrow_what_is_counted(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "docs.sqlite")
    store.setup()
    write_articles(store, [1] * 24 + [0], NOW, topic="weather")  # the monitor's history
    write_articles(store, [0] * 24 + [10], NOW, lang="de")
    assert evaluate(store, RULE, NOW).stats.surge
    french_only = RULE.model_copy(update={"languages": ("fr",)})
    assert evaluate(store, french_only, NOW).stats.count == 0


def test_a_fresh_index_raises_no_surge_until_the_baseline_has_history(tmp_path: Path) -> None:
    """Issue 18: the first articles of a fresh index raised a surge "usually up to 0.0"."""
    store = SqliteStore(tmp_path / "docs.sqlite")
    store.setup()
    write_articles(store, [0] * 24 + [8], NOW)  # everything the index holds is this hour's
    finding = evaluate(store, RULE, NOW)
    assert finding.stats.count == 8 and finding.stats.expected_max == 0.0
    assert finding.stats.history == 0 and not finding.stats.surge
    config = AlertsConfig(channels={"console": ConsoleChannel()}, surges=(RULE,))
    assert evaluate_surges(store, config, NOW) == []
    store.refresh("alerts")
    assert store.all_docs("alerts") == []

    # 11 hours of other topics: one short of the default (half of 24 baseline intervals)
    write_articles(store, [0] * 13 + [1] * 11 + [0], NOW, topic="weather")
    assert RULE.history_needed == 12
    assert evaluate(store, RULE, NOW).stats.history == 11
    assert not evaluate(store, RULE, NOW).stats.surge
    # the 12th: the monitor has been collecting long enough, and a quiet topic's burst is news
    write_articles(store, [0] * 12 + [1] + [0] * 12, NOW, topic="sport")
    stats = evaluate(store, RULE, NOW).stats
    assert (stats.history, stats.surge) == (12, True)


def test_min_history_is_configurable_and_checked() -> None:
    assert RULE.model_copy(update={"min_history_intervals": 0}).history_needed == 0
    odd = SurgeRule(name="s", topic="t", baseline_intervals=5)
    assert odd.history_needed == 3
    with pytest.raises(ValueError, match="cannot be more than baseline_intervals"):
        SurgeRule(name="s", topic="t", baseline_intervals=4, min_history_intervals=5)
    # the pure statistics: history short of the minimum is never a surge
    assert surge_stats(9, [0] * 24, k=3, min_count=5, history=23, min_history=24).surge is False
    assert surge_stats(9, [0] * 24, k=3, min_count=5, history=24, min_history=24).surge
