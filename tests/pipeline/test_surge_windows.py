"""Surges as Beam windows (pipeline/stages/surges.py): the pure parts, and the same
timestamped articles through batch (Kafka, FnApiRunner), backfill (archive) and stream (one
unbounded pipeline on Prism, with an article arriving after its window fired) giving the same
surge alerts: same ids, same counts, same articles. Real Kafka, real Elasticsearch, the Prism
binary `make prism` builds (a missing one fails the stream test)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from apache_beam.utils.timestamp import Timestamp

from newsmon.models import Article, RawItem, SourceRef
from newsmon.pipeline.alerts.config import AlertsConfig, SurgeRule
from newsmon.pipeline.alerts.surge import (
    History,
    interval_floor,
    judge,
    surge_alert_id,
    window_shape,
)
from newsmon.pipeline.app import RunContext, find_prism
from newsmon.pipeline.io_kafka import ensure_topics
from newsmon.pipeline.jobs import run_backfill, run_kafka_batch
from newsmon.pipeline.normalize import normalize_item
from newsmon.pipeline.stages.store import Placed
from newsmon.pipeline.stages.surges import (
    CountPerIntervalFn,
    StampEventTimesFn,
    counts_for,
    event_time,
)
from tests.pipeline.samples import OTHER, WIRE
from tests.pipeline.test_pipeline_kafka import ctx_for
from tests.pipeline.test_stream import _docs, _kafka, _search, _streaming, _wait

STEP = 600
RULE = SurgeRule(name="lrs-win", topic="long_range_strike", interval_s=STEP,
                 baseline_intervals=4, k=1.0, min_count=3, min_history_intervals=2)


def test_a_window_spans_the_baseline_and_the_interval_judged() -> None:
    assert window_shape(RULE) == (5 * STEP, STEP)


def test_the_pipelines_count_and_the_stores_are_merged_by_the_larger() -> None:
    start = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    step = timedelta(seconds=STEP)
    # The store: one article in each baseline interval, 2 of the last interval written so far.
    history = History(start, [1, 1, 1, 1, 2], [1, 1, 1, 1, 1], [])
    assert not judge(RULE, history, 4).stats.surge  # 2 < min_count
    found = judge(RULE, history, 4, {start + 4 * step: 5})  # the window saw 5
    assert found.stats.surge and found.stats.count == 5
    assert found.interval_start == start + 4 * step
    assert found.alert_id == surge_alert_id(RULE.name, start + 4 * step)
    # A stream restarted mid-interval saw 1: the store's 2 stand.
    assert judge(RULE, history, 4, {start + 4 * step: 1}).stats.count == 2
    # Baseline intervals the store has nothing for but the window counted: history.
    empty = History(start, [0] * 5, [0] * 5, [])
    assert not judge(RULE, empty, 4, {start + 4 * step: 5}).stats.surge  # no history
    seen = {start + i * step: 1 for i in range(4)} | {start + 4 * step: 5}
    assert judge(RULE, empty, 4, seen).stats.surge


def _item(src: str, n: int, text: str, at: datetime, *, topic_text: bool = True,
          lang: str = "en", country: str = "GB") -> RawItem:
    ref = SourceRef(id=src, type="rss", name=src, lang=lang, country=country)
    title = f"ATACMS strike report {n}" if topic_text else f"Grain report {n}"
    return RawItem.make(source=ref, guid=str(n), url=f"https://{src}.example/{n}",
                        title=title, summary=f"{text} (report {n})", published_at=at,
                        first_seen_at=at)


def test_an_articles_event_time_is_its_trusted_published_time() -> None:
    at = datetime(2026, 11, 20, 10, 7, tzinfo=UTC)
    dated = normalize_item(_item("w", 1, WIRE, at))
    assert event_time(dated) == at
    undated = normalize_item(_item("w", 2, WIRE, at).model_copy(update={"published_at": None}))
    assert event_time(undated) == at  # first seen
    future = _item("w", 3, WIRE, at).model_copy(
        update={"published_at": at + timedelta(hours=5)})
    assert event_time(normalize_item(future)) == at  # a wrong clock: when we first saw it


def _with_topic(article: Article, topic: str) -> Article:
    from newsmon.models import TopicMatch

    return article.model_copy(update={"topics": (TopicMatch(topic=topic, score=2.0),)})


def test_an_article_counts_for_the_rules_of_its_topics_that_its_filters_admit() -> None:
    at = datetime(2026, 11, 20, 10, 7, tzinfo=UTC)
    article = _with_topic(normalize_item(_item("w", 1, WIRE, at, country="FR")),
                          "long_range_strike")
    interval = int(datetime(2026, 11, 20, 10, 0, tzinfo=UTC).timestamp())
    fr_only = RULE.model_copy(update={"name": "fr", "countries": ("FR",)})
    de_only = RULE.model_copy(update={"name": "de", "countries": ("DE",)})
    hourly = RULE.model_copy(update={"name": "hourly", "interval_s": 3600})
    other = RULE.model_copy(update={"name": "other", "topic": "troop_deployment"})
    assert counts_for(article, [RULE, fr_only, de_only, hourly, other]) == [
        ("lrs-win", interval), ("fr", interval), ("hourly", interval)]


def test_a_batch_is_counted_per_rule_and_interval_at_its_earliest_event_time() -> None:
    begin = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    times = [begin + timedelta(seconds=s) for s in (400, 100, 250, STEP + 5)]
    articles = [_with_topic(normalize_item(_item("w", n, WIRE, at)), "long_range_strike")
                for n, at in enumerate(times)]
    other = _with_topic(normalize_item(_item("f", 9, OTHER, begin)), "troop_deployment")
    batch = [Placed(a, None, None) for a in [*articles, other]]  # type: ignore[arg-type]
    out = sorted((tv.value, tv.timestamp) for tv in StampEventTimesFn([RULE]).process(batch))
    first, second = int(begin.timestamp()), int(begin.timestamp()) + STEP
    assert out == [(("lrs-win", (first, 3)), Timestamp.from_utc_datetime(times[1])),
                   (("lrs-win", (second, 1)), Timestamp.from_utc_datetime(times[3]))]
    fn = CountPerIntervalFn()
    acc = fn.add_input(fn.add_input(fn.create_accumulator(), (first, 3)), (second, 1))
    assert fn.extract_output(fn.merge_accumulators([acc, {first: 2}])) == {first: 5, second: 1}


def timeline(now: datetime) -> tuple[list[RawItem], RawItem, datetime]:
    """Six intervals of 10 minutes from about three hours before ``now``: one article of the
    topic and one of another in each of the first four (the baseline, and the monitor was
    collecting), five of the topic in the fifth (a surge), one in the sixth; and a sixth
    article of the fifth interval, the one a stream gets late. Returns (on time, late, the
    surging interval's start)."""
    t0 = interval_floor(now - timedelta(hours=3), STEP)
    items: list[RawItem] = []
    n = 0
    for i, topical in enumerate((1, 1, 1, 1, 5, 1)):
        begin = t0 + timedelta(seconds=i * STEP)
        for j in range(topical):
            n += 1
            items.append(_item("wire-s", n, WIRE, begin + timedelta(seconds=60 + 20 * j)))
        if i < 4:
            n += 1
            items.append(_item("farm-s", n, OTHER, begin + timedelta(seconds=300),
                               topic_text=False))
    surging = t0 + timedelta(seconds=4 * STEP)
    late = _item("wire-s", 99, WIRE, surging + timedelta(seconds=500))
    return items, late, surging


def surge_alerts(search_prefix: str) -> dict[str, tuple[object, ...]]:
    docs = _docs(_search(search_prefix), "alerts")
    return {str(d["alert_id"]): (d["count"], d["interval_start"], tuple(d["doc_ids"]))  # type: ignore[arg-type]
            for d in docs if d.get("kind") == "surge"}


def _context(tmp: Path, tag: str, now: datetime) -> RunContext:
    ctx = ctx_for(tmp, _kafka(tag), _search(f"sw{tag}"))
    alerts = AlertsConfig(channels=ctx.alerts.channels, surges=(RULE,))
    return RunContext(settings=ctx.settings, alerts=alerts, now=now)


def _produce(ctx: RunContext, items: Iterable[RawItem]) -> None:
    """Each record stamped with the item's published time (its event time)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=ctx.settings.kafka.bootstrap_servers,
                             acks="all")
    for item in items:
        assert item.published_at is not None
        producer.send(ctx.settings.kafka.raw_topic, key=item.source.id.encode(),
                      value=item.to_json(),
                      timestamp_ms=int(item.published_at.timestamp() * 1000))
    producer.flush()
    producer.close()


@pytest.mark.integration
def test_batch_backfill_and_stream_raise_the_same_surge_alerts(tmp_path: Path) -> None:
    find_prism()  # no Prism: fail here, loudly
    now = datetime.now(UTC)
    on_time, late, surging = timeline(now)
    everything = [*on_time, late]
    tag = uuid.uuid4().hex[:8]
    ctxs = {mode: _context(tmp_path / mode, f"{tag}{mode[0]}", now)
            for mode in ("batch", "backfill", "stream")}
    try:
        batch = ctxs["batch"]
        ensure_topics(batch.settings.kafka)
        _produce(batch, everything)
        assert run_kafka_batch(batch).records == len(everything)

        archive = tmp_path / "archive.jsonl"
        archive.write_bytes(b"\n".join(i.to_json() for i in everything) + b"\n")
        assert run_backfill(archive, ctxs["backfill"], progress=False) == len(everything)

        stream = ctxs["stream"]
        ensure_topics(stream.settings.kafka)
        _produce(stream, on_time)
        prefix = stream.settings.search.index_prefix
        expected_id = surge_alert_id(RULE.name, surging)
        read: list[int] = []
        with _streaming(stream, read):
            # The watermark passes the windows (the source goes idle: the wall clock); the
            # surge is raised on the five articles of its interval.
            assert _wait(lambda: surge_alerts(prefix).get(expected_id, (0,))[0] == 5, 120), \
                surge_alerts(prefix)
            # An article of that interval arrives after its window fired: the window fires
            # again (allowed lateness) and the same alert is updated, not duplicated.
            _produce(stream, [late])
            assert _wait(lambda: surge_alerts(prefix).get(expected_id, (0,))[0] == 6, 60), \
                surge_alerts(prefix)
        assert read == [len(everything)]

        results = {mode: surge_alerts(ctx.settings.search.index_prefix)
                   for mode, ctx in ctxs.items()}
        assert list(results["batch"]) == [expected_id]
        count, interval_start, doc_ids = results["batch"][expected_id]
        assert (count, interval_start, len(doc_ids)) == (6, surging.isoformat(), 6)
        assert results["batch"] == results["backfill"] == results["stream"]
    finally:
        for ctx in ctxs.values():
            httpx.delete(f"{ctx.settings.search.url}/{ctx.settings.search.index_prefix}-*",
                         timeout=30)
