"""M pipeline workers sharing the raw topic's partitions (issue 17, point 4): `--worker i/M`
reads each item once between the M, and each commits only its own partitions, in batch and
in stream mode; two workers at once make the stories and alerts one makes (MergeStories)."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.config import KafkaSettings, SearchSettings
from newsmon.kafka import TOPIC_PARTITIONS
from newsmon.models import RawItem
from newsmon.pipeline.app import find_prism
from newsmon.pipeline.io_kafka import (
    EVERY_PARTITION,
    WorkerShare,
    ensure_topics,
    snapshot_ranges,
)
from newsmon.pipeline.jobs import run_kafka_batch, run_kafka_stream
from tests.cli.test_config_errors import config_dir
from tests.conftest import produce
from tests.pipeline.samples import OTHER, TROOPS, WIRE, sample_item
from tests.pipeline.test_pipeline_kafka import ctx_for, hits
from tests.pipeline.test_stream import _docs, _kafka, _search, _wait


@pytest.mark.parametrize("count", range(1, 8))
def test_the_shares_of_m_workers_cover_every_partition_once(count: int) -> None:
    owners = {p: [i for i in range(count) if WorkerShare(i, count).owns(p)]
              for p in range(2 * TOPIC_PARTITIONS)}
    assert all(len(found) == 1 for found in owners.values()), owners


@pytest.mark.parametrize("text", ["2/2", "0/0", "-1/2", "a/b", "1", "1/", ""])
def test_a_bad_worker_share_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="worker"):
        WorkerShare.parse(text)


def test_a_worker_share_reads_as_written() -> None:
    assert WorkerShare.parse("1/4") == WorkerShare(1, 4)
    assert str(WorkerShare.parse(" 3 / 4")) == "3/4"


@pytest.mark.parametrize(("args", "said"), [
    (["--mode", "backfill", "--from", "x.jsonl", "--worker", "0/2"],
     "--worker is for --mode batch and stream"),
    (["--worker", "2/2"], "want i/M with 0 <= i < M"),
])
def test_the_cli_refuses_a_worker_it_cannot_honour(
        tmp_path: Path, args: list[str], said: str) -> None:
    result = CliRunner().invoke(app, ["pipeline", "run", "-c", str(config_dir(tmp_path)),
                                      *args])
    assert result.exit_code == 2, result.output
    assert said in result.stderr


@pytest.mark.integration
def test_two_workers_read_every_item_once_and_commit_only_their_own(
    tmp_path: Path, kafka_settings: KafkaSettings, search_settings: SearchSettings,
) -> None:
    ensure_topics(kafka_settings)  # 6 partitions on the shared broker
    items = [sample_item(f"wire-{n}", str(n), f"Grain prices fall in region {n}",
                         f"{OTHER} Region {n} reported its own figures on day {n}.")
             for n in range(24)]
    produce(kafka_settings, [(i.source.id, i.to_json()) for i in items])
    keyed = [r for r in snapshot_ranges(kafka_settings, kafka_settings.raw_topic,
                                        kafka_settings.group_id) if r.size]
    assert len(keyed) > 2  # 24 source ids spread over several partitions

    first = run_kafka_batch(ctx_for(tmp_path / "w0", kafka_settings, search_settings),
                            share=WorkerShare(0, 2))
    # Worker 0 committed its partitions only: worker 1's are all still to read.
    left = snapshot_ranges(kafka_settings, kafka_settings.raw_topic, kafka_settings.group_id)
    assert {r.partition for r in left if r.size} == {r.partition for r in keyed
                                                     if r.partition % 2 == 1}
    second = run_kafka_batch(ctx_for(tmp_path / "w1", kafka_settings, search_settings),
                             share=WorkerShare(1, 2))

    assert {r.partition for r in first.ranges} == {0, 2, 4}
    assert {r.partition for r in second.ranges} == {1, 3, 5}
    assert first.records + second.records == len(items)
    assert first.records and second.records
    assert run_kafka_batch(ctx_for(tmp_path / "all", kafka_settings, search_settings),
                           share=EVERY_PARTITION).records == 0
    assert sorted(str(a["url"]) for a in hits(search_settings, "articles")) == sorted(
        i.url for i in items)


def _committed_per_partition(kafka: KafkaSettings) -> dict[int, int | None]:
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers,
                             group_id=kafka.group_id, enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(kafka.raw_topic, p))
                for p in range(TOPIC_PARTITIONS)}
    finally:
        consumer.close()


@pytest.mark.integration
def test_a_stream_worker_reads_and_commits_only_its_share(tmp_path: Path) -> None:
    find_prism()  # no Prism: fail here, loudly
    tag = uuid.uuid4().hex[:8]
    kafka, search = _kafka(tag), _search(f"sw{tag}")
    ensure_topics(kafka)
    items = [sample_item("wire-w", f"{n}-{tag}", f"Grain market {n} {tag}",
                         f"Wheat prices moved in session {n} ({tag}), dealers said.")
             for n in range(TOPIC_PARTITIONS)]
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    for n, item in enumerate(items):  # item n in partition n
        producer.send(kafka.raw_topic, key=b"w", value=item.to_json(), partition=n).get(30)
    producer.close()
    stop, failure = threading.Event(), []

    def run() -> None:
        try:
            run_kafka_stream(ctx_for(tmp_path, kafka, search), stop, interval_s=0.3,
                             share=WorkerShare(0, 2))
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        even = {items[n].url for n in (0, 2, 4)}
        assert _wait(lambda: {str(a["url"]) for a in _docs(search, "articles")} >= even, 240)
        assert _wait(lambda: [_committed_per_partition(kafka)[p] for p in (0, 2, 4)]
                     == [1, 1, 1], 60), _committed_per_partition(kafka)
        time.sleep(3)  # time enough to read the odd partitions, were they read
    finally:
        stop.set()
        worker.join(timeout=90)
    try:
        assert not failure, failure
        assert {str(a["url"]) for a in _docs(search, "articles")} == even
        assert [_committed_per_partition(kafka)[p] for p in (1, 3, 5)] == [None] * 3
    finally:
        httpx.delete(f"{search.url}/{search.index_prefix}-*", timeout=30)


def _run_share(tmp: str, kafka: KafkaSettings, search: SearchSettings, share: str) -> int:
    """One worker in a process of its own (as `--worker i/M` runs): its records."""
    return run_kafka_batch(ctx_for(Path(tmp), kafka, search),
                           share=WorkerShare.parse(share)).records


def _story_items() -> list[RawItem]:
    """Six stories of six copies each, every copy from another source (so spread over the
    partitions): two that alert (a strike, troops), four that do not."""
    texts = [WIRE, TROOPS, OTHER,
             "The city council approved a new budget for harbour repairs and a ferry depot "
             "after a long vote on Tuesday evening, the mayor told reporters outside the hall.",
             "A rail bridge over the canal will close for three months of inspections, the "
             "operator said, and commuters should expect replacement buses on weekday mornings.",
             "Clinics in the northern district ran out of flu vaccines within a week, health "
             "officials said, blaming a late delivery and unusually high demand from pensioners."]
    return [sample_item(f"src-{copy}", f"s{story}-c{copy}", "", f"{text} ({copy})",
                        minutes=story * 60 + copy)
            for story, text in enumerate(texts) for copy in range(6)]


def _stories_and_alerts(search: SearchSettings) -> tuple[int, int, int]:
    docs = hits(search, "articles")
    return len(docs), len({d["story_id"] for d in docs}), len(hits(search, "alerts"))


@pytest.mark.integration
def test_two_workers_at_once_make_the_stories_and_alerts_one_worker_makes(
    tmp_path: Path, kafka_settings: KafkaSettings, search_settings: SearchSettings,
) -> None:
    """Two workers grouping at the same time split a story when neither copy is searchable
    yet; MergeStories joins the parts again (pipeline/story_merge.py). Compared with one
    worker on the same records: the same documents, story count and alert count."""
    items = _story_items()
    runs = {}
    for m in (1, 2):
        kafka = kafka_settings.model_copy(update={
            "raw_topic": f"{kafka_settings.raw_topic}-{m}",
            "group_id": f"{kafka_settings.group_id}-{m}"})
        search = search_settings.model_copy(
            update={"index_prefix": f"{search_settings.index_prefix}m{m}"})
        ensure_topics(kafka)
        produce(kafka, [(i.source.id, i.to_json()) for i in items])
        spawn = multiprocessing.get_context("spawn")
        with spawn.Pool(m) as pool:
            records = pool.starmap(_run_share, [(str(tmp_path / f"m{m}w{i}"), kafka, search,
                                                 f"{i}/{m}") for i in range(m)])
        assert sum(records) == len(items)
        try:
            runs[m] = _stories_and_alerts(search)
        finally:
            httpx.delete(f"{search.url}/{search.index_prefix}-*", timeout=30)
    assert runs[1] == (len(items), 6, 2)  # six stories; the strike and the troops alert
    assert runs[2] == runs[1]
