"""The pipeline on real Kafka and a real search server: batch with a crash between the writes
and the offset commit, backfill equal to live, stream latency, story grouping."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from newsmon.config import KafkaSettings, SearchSettings, Settings
from newsmon.kafka import topic_layout
from newsmon.models import RawItem, SourceRef
from newsmon.pipeline.alerts.channels.console import ConsoleChannel
from newsmon.pipeline.alerts.config import AlertRule, AlertsConfig
from newsmon.pipeline.app import RunContext
from newsmon.pipeline.io_kafka import ensure_topics
from newsmon.pipeline.jobs import (
    CRASH_BEFORE_COMMIT_ENV,
    InjectedCrash,
    run_backfill,
    run_kafka_batch,
)
from newsmon.pipeline.latency import searchable_latencies, url_is_searchable
from tests.conftest import produce
from tests.pipeline.samples import CLOCKS, NOW, OTHER, sample_item, story_items

ROOT = Path(__file__).resolve().parents[2]


def items() -> list[RawItem]:
    return [*story_items(), sample_item("wire-a", "4", "Grain prices fall", OTHER)]


def ctx_for(tmp: Path, kafka: KafkaSettings, search: SearchSettings) -> RunContext:
    settings = Settings(state_dir=tmp / "state", topics=ROOT / "config" / "topics.yaml",
                        kafka=kafka, search=search)
    alerts = AlertsConfig(
        channels={"console": ConsoleChannel()},
        rules=(AlertRule(name="lrs", topic="long_range_strike"),
               AlertRule(name="troops", topic="troop_deployment")),
    )
    # The samples' clock: they are news at NOW, not on the day the test runs.
    return RunContext(settings=settings, alerts=alerts, now=NOW)


def hits(search: SearchSettings, kind: str) -> list[dict[str, object]]:
    index = f"{search.index_prefix}-{kind}"
    httpx.post(f"{search.url}/{index}/_refresh", timeout=30)
    resp = httpx.post(f"{search.url}/{index}/_search", json={"size": 500}, timeout=30)
    if resp.status_code == 404:
        return []
    resp.raise_for_status()
    return [h["_source"] for h in resp.json()["hits"]["hits"]]


@pytest.mark.integration
def test_crash_between_write_and_commit_then_rerun_loses_and_duplicates_nothing(
    tmp_path: Path, kafka_settings: KafkaSettings, search_settings: SearchSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = ctx_for(tmp_path, kafka_settings, search_settings)
    produce(kafka_settings, [(i.source.id, i.to_json()) for i in items()]
            + [("broken-source", b"{not json")])

    monkeypatch.setenv(CRASH_BEFORE_COMMIT_ENV, "1")
    with pytest.raises(InjectedCrash):
        run_kafka_batch(ctx)
    monkeypatch.delenv(CRASH_BEFORE_COMMIT_ENV)

    again = run_kafka_batch(ctx)
    assert again.records == 5  # nothing was committed, so everything is read again
    assert run_kafka_batch(ctx).records == 0  # now it was

    articles = hits(search_settings, "articles")
    assert len(articles) == 4
    stories = {a["title"]: a["story_id"] for a in articles}
    assert stories["ATACMS strike on Kursk airfield"] == stories[
        "Kyiv: ATACMS hit airfield in Kursk"]
    assert len(set(stories.values())) == 3
    alerts = hits(search_settings, "alerts")
    assert sorted(str(a["rule"]) for a in alerts) == ["lrs", "troops"]
    lrs = next(a for a in alerts if a["rule"] == "lrs")
    assert lrs["source_count"] == 2 and lrs["notified"] == ["console"]
    dead = hits(search_settings, "dead-letters")
    assert [(d["stage"], d["source_id"]) for d in dead] == [("decode", "broken-source")]


@pytest.mark.integration
def test_backfill_gives_the_same_documents_and_alerts_as_live(
    tmp_path: Path, kafka_settings: KafkaSettings, search_settings: SearchSettings,
) -> None:
    live = ctx_for(tmp_path / "live", kafka_settings, search_settings)
    produce(kafka_settings, [(i.source.id, i.to_json()) for i in items()])
    run_kafka_batch(live)

    archive = tmp_path / "archive.jsonl"
    # Blank lines are skipped; a corrupt line is a record, parked as a decode dead letter.
    archive.write_bytes(b"\n".join(i.to_json() for i in items()) + b"\n\n{not json\r\n")
    replay_search = search_settings.model_copy(
        update={"index_prefix": search_settings.index_prefix + "-bf"})
    backfill = ctx_for(tmp_path / "bf", kafka_settings, replay_search)
    assert run_backfill(archive, backfill) == 5
    assert [d["stage"] for d in hits(replay_search, "dead-letters")] == ["decode"]

    def comparable(search: SearchSettings, kind: str) -> list[dict[str, object]]:
        return sorted(({k: v for k, v in d.items() if k not in CLOCKS}
                       for d in hits(search, kind)), key=str)

    assert comparable(search_settings, "articles") == comparable(
        replay_search, "articles")
    assert comparable(search_settings, "alerts") == comparable(
        replay_search, "alerts")
    httpx.delete(f"{replay_search.url}/{replay_search.index_prefix}-*", timeout=30)


@pytest.mark.integration
def test_stream_mode_makes_items_searchable_within_seconds(
    tmp_path: Path, kafka_settings: KafkaSettings, search_settings: SearchSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ctx = ctx_for(tmp_path, kafka_settings, search_settings)
    produce(kafka_settings, [("warm-up", items()[3].to_json())])
    latencies = searchable_latencies(
        ctx, items()[:3], interval_s=0.5,
        ready=lambda: url_is_searchable(ctx, items()[3].url))
    with capsys.disabled():
        print(f"\nstream latency produce->searchable: "
              f"{', '.join(f'{s:.2f}s' for s in latencies)}")
    assert max(latencies) < 60


def test_topic_layout_follows_the_brokers() -> None:
    assert [(t.partitions, t.replicas, t.min_insync) for t in map(topic_layout, (1, 2, 3, 5))] \
        == [(6, 1, 1), (6, 2, 1), (6, 3, 2), (6, 3, 2)]


@pytest.mark.integration
def test_topics_are_created_for_one_broker_and_then_left_alone(
        kafka_settings: KafkaSettings) -> None:
    """On the single broker: 6 partitions, one copy. (Three brokers: 3 replicas,
    min.insync.replicas 2, tests/faults/test_cluster_kafka.py.)"""
    first = ensure_topics(kafka_settings)
    assert first == [f"{topic}: created with 6 partitions, 1 replica(s), min.insync.replicas 1"
                     " for 1 broker(s)"
                     for topic in (kafka_settings.raw_topic, kafka_settings.dead_letter_topic)]
    assert ensure_topics(kafka_settings) == [
        f"{topic}: exists, 6 partitions, 1 replica(s) (left as it is; 1 broker(s) alive)"
        for topic in (kafka_settings.raw_topic, kafka_settings.dead_letter_topic)]


# The wire story told in Russian: no word bigram in common, the same facts.
TRANSLATION = ("Украинские военные ночью нанесли удар американскими ракетами ATACMS по военному "
               "аэродрому в Курской области, сообщили в Киеве, спустя несколько дней после "
               "того, как Белый дом разрешил применять это оружие по целям на территории России.")


@pytest.mark.integration
def test_a_translation_joins_the_story_and_its_alert(
    tmp_path: Path, kafka_settings: KafkaSettings, search_settings: SearchSettings,
) -> None:
    ctx = ctx_for(tmp_path, kafka_settings, search_settings)
    ref = SourceRef(id="gazeta-c", type="rss", name="gazeta-c", lang="ru", country="RU")
    translated = RawItem.make(
        source=ref, guid="5", url="https://gazeta-c.example/5",
        title="Удар ATACMS по аэродрому в Курской области", summary=TRANSLATION,
        published_at=NOW, first_seen_at=NOW)
    # The translation arrives in a later batch: its candidates come from the store.
    produce(kafka_settings, [(i.source.id, i.to_json()) for i in items()])
    run_kafka_batch(ctx)
    produce(kafka_settings, [(translated.source.id, translated.to_json())])
    run_kafka_batch(ctx)

    articles = {str(a["title"]): a for a in hits(search_settings, "articles")}
    assert len(articles) == 5
    wire = articles["ATACMS strike on Kursk airfield"]
    assert articles["Удар ATACMS по аэродрому в Курской области"]["story_id"] == wire["story_id"]
    assert articles["Troops for Ukraine discussed"]["story_id"] != wire["story_id"]
    assert "e:weapon:ATACMS@" in " ".join(wire["story_keys"])  # type: ignore[arg-type]
    assert wire["story_features"]["entities"]  # type: ignore[index]
    lrs = next(a for a in hits(search_settings, "alerts") if a["rule"] == "lrs")
    assert lrs["source_count"] == 3
    assert sorted(lrs["languages"]) == ["en", "ru"]  # type: ignore[arg-type]
